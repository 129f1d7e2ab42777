//! Reloading a running daemon (SIGHUP, `jobmail reload`): a broken config
//! is refused and the old one keeps serving; a good one applies to the
//! next session while an open one finishes on its own; a new certificate
//! is served to the next TLS session; what needs a restart is said.

use std::process::Command;
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::inbound::tls::{Pki, connect, handshake, pki, tls_section};
use crate::support::harness::*;

/// Sends SIGHUP to the daemon.
pub(crate) fn sighup(d: &Daemon) {
    let status = Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
}

/// Waits until the log, past byte `from`, has `needle`; returns that part.
pub(crate) fn wait_log(d: &Daemon, from: usize, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = d.log();
        let part = log.get(from..).unwrap_or("").to_string();
        if part.contains(needle) {
            return part;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{part}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Rewrites the daemon's config with `edit`, reloads, and waits for the
/// outcome (`config reloaded` or `reload refused`); returns the log of it.
fn reload_with(d: &Daemon, edit: impl Fn(String) -> String, outcome: &str) -> String {
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, edit(text)).unwrap();
    let from = d.log().len();
    let started = Instant::now();
    sighup(d);
    let log = wait_log(d, from, outcome);
    eprintln!(
        "reload ({outcome}) seen in the log after {:?}",
        started.elapsed()
    );
    log
}

/// A new application from `from` to `to`.
fn application(from: &str, to: &str, id: &str) -> Vec<u8> {
    format!(
        "From: Kim Example <{from}>\r\nTo: {to}\r\nSubject: Bewerbung\r\nMessage-ID: <{id}@example.org>\r\nDate: Wed, 25 Nov 2026 09:00:00 +0100\r\n\r\nHallo,\r\nanbei meine Unterlagen.\r\n"
    )
    .into_bytes()
}

fn rcpt(d: &Daemon, to: &str) -> u16 {
    let mut c = d.connect();
    c.ehlo();
    c.expect_cmd("MAIL FROM:<kim@example.org>", 250);
    c.cmd(&format!("RCPT TO:<{to}>")).0
}

const NEW_ALIAS: &str = r#"aliases = ["karriere@acme.example", "bewerbung@acme.example"]"#;

#[test]
fn a_broken_config_is_refused_with_every_error_and_the_old_one_keeps_serving() {
    let d = Daemon::start();
    assert_eq!(rcpt(&d, "bewerbung@acme.example"), 550);

    // The alias the new config would add, and two mistakes in it.
    let log = reload_with(
        &d,
        |text| {
            text.replace(r#"aliases = ["karriere@acme.example"]"#, NEW_ALIAS)
                .replace("category = \"engineering\"", "category = \"sales\"")
                .replace("[[category]]", "[[category]]\ncolour = \"red\"")
        },
        "reload refused; still serving",
    );
    assert!(log.contains("errors=2"), "{log}");
    // In the log the problem is a quoted value, its quotes escaped.
    assert!(
        log.contains(r#"position[0].category: no [[category]] has id \"sales\""#),
        "{log}"
    );
    assert!(log.contains("category[0].colour: unknown key"), "{log}");
    assert!(!log.contains("config reloaded"), "{log}");

    // The old config serves: the new alias is still refused, the old
    // addresses take mail, in a new session.
    assert_eq!(rcpt(&d, "bewerbung@acme.example"), 550);
    let mut c = d.connect();
    let (code, _) = c.send_mail(
        "kim@example.org",
        "karriere@acme.example",
        &stuff(&application(
            "kim@example.org",
            "karriere@acme.example",
            "broken-1",
        )),
    );
    assert_eq!(code, 250);

    // A config without a config error that serve would still refuse: a
    // certificate that is not there.
    let log = reload_with(
        &d,
        |text| {
            let fixed = text
                .replace("category = \"sales\"", "category = \"engineering\"")
                .replace("[[category]]\ncolour = \"red\"", "[[category]]");
            format!("{fixed}\n[tls]\ncertificate = \"missing.pem\"\nkey = \"missing-key.pem\"\n")
        },
        "reload refused; still serving",
    );
    assert!(log.contains("tls.certificate: cannot read"), "{log}");
    assert!(log.contains("tls.key: cannot read"), "{log}");
    assert_eq!(rcpt(&d, "bewerbung@acme.example"), 550);
    let ehlo = d.connect().expect_cmd("EHLO client.test.example", 250);
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
}

#[test]
fn a_good_config_applies_to_the_next_session_and_an_open_one_finishes_on_its_own() {
    let d = Daemon::start();
    // A session opened before the reload, in the middle of a transaction.
    let mut before = d.connect();
    before.ehlo();
    before.expect_cmd("MAIL FROM:<early@example.org>", 250);
    before.expect_cmd("RCPT TO:<jobs@acme.example>", 250);

    let old_port = d.addr.port();
    let log = reload_with(
        &d,
        |text| {
            let text = text
                .replace(r#"aliases = ["karriere@acme.example"]"#, NEW_ALIAS)
                .replace("[server]\n", "[server]\nmax_recipients = 1\n")
                .replace(
                    &format!("127.0.0.1:{old_port}"),
                    &format!("127.0.0.1:{}", old_port.wrapping_add(1).max(1024)),
                );
            format!(
                "{text}\n[[position]]\nid = \"frontend\"\ntitle = \"Frontend Engineer\"\nsubsidiary = \"acme-de\"\ncategory = \"engineering\"\nalias = \"jobs+frontend@acme.example\"\n"
            )
        },
        "config reloaded",
    );
    assert!(log.contains("changed=server,subsidiary,position"), "{log}");
    assert!(
        log.contains("needs a restart: server.listen changed"),
        "{log}"
    );

    // The open session finishes on the settings it started with: the old
    // limit of recipients, the old company.
    before.expect_cmd("RCPT TO:<karriere@acme.example>", 250);
    before.expect_cmd("RCPT TO:<bewerbung@acme.example>", 550);
    before.expect_cmd("DATA", 354);
    before.send(&stuff(&application(
        "early@example.org",
        "jobs@acme.example",
        "early-1",
    )));
    before.send(b".\r\n");
    assert_eq!(before.reply().0, 250);

    // The next session, on the old address still: the new alias, the new
    // limit of one recipient.
    let mut after = d.connect();
    after.ehlo();
    after.expect_cmd("MAIL FROM:<late@example.org>", 250);
    after.expect_cmd("RCPT TO:<bewerbung@acme.example>", 250);
    after.expect_cmd("RCPT TO:<jobs@acme.example>", 452);
    after.expect_cmd("DATA", 354);
    after.send(&stuff(&application(
        "late@example.org",
        "bewerbung@acme.example",
        "late-1",
    )));
    after.send(b".\r\n");
    assert_eq!(after.reply().0, 250);

    // Newly stored mail is filed with the new company: the new position's
    // alias makes an application for it.
    let mut c = d.connect();
    let (code, _) = c.send_mail(
        "front@example.org",
        "jobs+frontend@acme.example",
        &stuff(&application(
            "front@example.org",
            "jobs+frontend@acme.example",
            "front-1",
        )),
    );
    assert_eq!(code, 250);
    let candidates = json(d.cli(&["candidate", "list", "--json"]));
    let front = candidates["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["addresses"][0] == "front@example.org")
        .unwrap_or_else(|| panic!("no candidate for front@: {candidates}"))
        .clone();
    let shown = json(d.cli(&["candidate", "show", &front["id"].to_string(), "--json"]));
    assert_eq!(shown["applications"][0]["position"], "frontend", "{shown}");
}

/// The DER of the server certificate in `pki` (the first in its file).
fn served_by(pki: &Pki) -> Vec<u8> {
    CertificateDer::pem_file_iter(&pki.certificate)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// The certificate a new STARTTLS session is served.
fn certificate_served(d: &Daemon, ca_pem: &str) -> Vec<u8> {
    let mut smtp = connect(d);
    smtp.expect("EHLO client.test.example", 250);
    smtp.expect("STARTTLS", 220);
    let tls = handshake(smtp.into_stream(), ca_pem);
    tls.conn.peer_certificates().unwrap()[0].to_vec()
}

#[test]
fn a_new_certificate_is_served_to_the_next_tls_session() {
    let first = pki(false);
    let d = Daemon::start_with(&tls_section(&first, ""));
    let first_der = served_by(&first);
    assert_eq!(certificate_served(&d, &first.ca_pem), first_der);

    // A session that has its TLS keeps it across the reload.
    let mut open = connect(&d);
    open.expect("EHLO client.test.example", 250);
    open.expect("STARTTLS", 220);
    let mut open = crate::inbound::tls::Smtp::new(handshake(open.into_stream(), &first.ca_pem));

    // Renewed in place, as certbot's deploy hook does: same paths, new files.
    let second = pki(false);
    std::fs::copy(&second.certificate, &first.certificate).unwrap();
    std::fs::copy(&second.key, &first.key).unwrap();
    let log = reload_with(&d, |text| text, "config reloaded");
    assert!(log.contains("TLS certificate loaded"), "{log}");
    assert!(log.contains("changed=tls"), "{log}");
    let served = certificate_served(&d, &second.ca_pem);
    assert_eq!(served, served_by(&second));
    assert_ne!(served, first_der);

    // The open session goes on in its TLS.
    open.expect("EHLO client.test.example", 250);
    open.expect("MAIL FROM:<kim@example.org>", 250);
    open.expect("QUIT", 221);

    // An expired certificate put in its place is refused; the last good
    // one is still served.
    let expired = pki(true);
    let good_certificate = std::fs::read(&first.certificate).unwrap();
    let good_key = std::fs::read(&first.key).unwrap();
    std::fs::copy(&expired.certificate, &first.certificate).unwrap();
    std::fs::copy(&expired.key, &first.key).unwrap();
    let log = reload_with(&d, |text| text, "reload refused; still serving");
    assert!(
        log.contains("the certificate expired on 2020-01-01"),
        "{log}"
    );
    std::fs::write(&first.certificate, good_certificate).unwrap();
    std::fs::write(&first.key, good_key).unwrap();
    assert_eq!(certificate_served(&d, &second.ca_pem), served);
}

#[test]
fn jobmail_reload_signals_the_daemon_and_fails_clearly_without_one() {
    let mut d = Daemon::start();
    assert_eq!(rcpt(&d, "bewerbung@acme.example"), 550);
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        text.replace(r#"aliases = ["karriere@acme.example"]"#, NEW_ALIAS),
    )
    .unwrap();
    let from = d.log().len();
    let out = d.cli(&["reload"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains(&format!("pid {}", d.pid())), "{said}");
    wait_log(&d, from, "config reloaded");
    assert_eq!(rcpt(&d, "bewerbung@acme.example"), 250);

    // A config with errors is not sent: the CLI shows them (exit 2) and
    // the daemon hears nothing.
    let good = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        good.replace("[[category]]", "[[category]]\ncolour = \"red\""),
    )
    .unwrap();
    let from = d.log().len();
    let out = d.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("category[0].colour: unknown key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !d.log()[from..].contains("reloading"),
        "{}",
        &d.log()[from..]
    );
    std::fs::write(&d.config, good).unwrap();

    // No daemon: it says so, and exits 1.
    let mut child = d.terminate();
    child.wait().unwrap();
    let out = d.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no jobmail serve is running on") && err.contains("nothing to reload"),
        "{err}"
    );
}

#[test]
fn an_upstream_changed_at_a_reload_takes_the_waiting_mail() {
    let up = crate::support::upstream::Upstream::start();
    // First the upstream is somewhere nothing listens: every attempt fails
    // to connect and is retried soon (the breaker out of the way).
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let directory = example_directory()
        .replace(
            "port = 2600",
            &format!("port = {nowhere}\nbreaker_threshold = 1000"),
        )
        .replace(
            "retry_initial = \"5m\"",
            "retry_initial = \"100ms\"\npoll_interval = \"20ms\"",
        )
        .replace("retry_max = \"1h\"", "retry_max = \"200ms\"");
    let d = Daemon::start_world("", &directory, None);
    let (code, _) = d.connect().send_mail(
        "anna.schmidt@posteo.de",
        "jobs+backend@acme.example",
        &fixture("application-pdf.eml"),
    );
    assert_eq!(code, 250);
    let sent = json(d.cli(&[
        "send",
        "--json",
        "--template",
        "interview-invitation",
        "--candidate",
        "1",
        "--sender",
        "anna",
    ]));
    let item = sent["queued"][0]["item"].as_i64().unwrap();
    wait_log(&d, 0, &format!("cannot connect to 127.0.0.1:{nowhere}"));
    assert!(up.accepted().is_empty());

    let log = reload_with(
        &d,
        |text| {
            text.replace(
                &format!("port = {nowhere}"),
                &format!("port = {}", up.addr.port()),
            )
        },
        "config reloaded",
    );
    assert!(log.contains("changed=subsidiary"), "{log}");
    wait_log(&d, 0, "relay: config reloaded; upstream routes built again");
    let delivered = up.wait_for(1, 20);
    assert!(
        delivered[0].from.starts_with(&format!("bounce+{item}.")),
        "{}",
        delivered[0].from
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let q = json(d.cli(&["queue", "show", &item.to_string(), "--json"]));
        if q["item"]["state"] == "sent" {
            break;
        }
        assert!(Instant::now() < deadline, "never sent: {q}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
