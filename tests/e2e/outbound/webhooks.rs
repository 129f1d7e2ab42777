//! Webhooks end to end: the real binary delivering to a receiver on
//! loopback written as an ATS would (Python's standard library, checking
//! the signature as the README shows), a real SMTP upstream for the
//! acknowledgements. A receiver that fails twice gets every event once,
//! signed, each candidate's in order; events pending at a kill -9 all
//! arrive after the restart.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::support::harness::*;
use crate::support::upstream::{Upstream, relayed_directory};

const EVENTS: &str = r#"["message.received", "message.unassigned", "application.created", "outbox.sent", "auto_reply.suppressed"]"#;

/// The Python receiver, answering 500 to its first `fail_first` requests.
struct Receiver {
    child: Child,

    out: PathBuf,
}

impl Receiver {
    fn start(port: u16, secret: &Path, out: &Path, fail_first: usize) -> Receiver {
        Receiver::start_tls(port, secret, out, fail_first, None)
    }

    /// With `tls` (certificate and key files), on HTTPS.
    fn start_tls(
        port: u16,
        secret: &Path,
        out: &Path,
        fail_first: usize,
        tls: Option<(&Path, &Path)>,
    ) -> Receiver {
        let mut command = Command::new("python3");
        command
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/clients/webhook_receiver.py"
            ))
            .arg(port.to_string())
            .arg(secret)
            .arg(out)
            .arg(fail_first.to_string());
        if let Some((certificate, key)) = tls {
            command.arg(certificate).arg(key);
        }
        let child = command
            .spawn()
            .expect("python3 must be installed (see .ci/run)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the receiver did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Receiver {
            child,

            out: out.to_path_buf(),
        }
    }

    /// Every delivery it accepted, in the order it got them.
    fn accepted(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// Bodies it refused for a bad signature.
    fn refused(&self) -> String {
        std::fs::read_to_string(self.out.with_extension("refused")).unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A secret file and the `[[webhook]]` section for a receiver on `port`.
fn webhook_section(dir: &Path, port: u16) -> (PathBuf, String) {
    let secret = dir.join("ats.secret");
    std::fs::write(
        &secret,
        "3f1c9a7e5b2d4f608e1a3c5b7d9f0e2a4c6b8d0f1e3a5c7b\n",
    )
    .expect("secret file");
    let section = format!(
        "\n[[webhook]]\nid = \"ats\"\nurl = \"http://127.0.0.1:{port}/hooks/jobmail\"\n\
secret_file = {:?}\nevents = {EVENTS}\nretry_after = \"200ms\"\n",
        secret.display().to_string()
    );
    (secret, section)
}

/// A mail from `from` to the backend position; returns its candidate.
fn apply(d: &Daemon, from: &str, extra: &str, id: &str) -> i64 {
    let mail = format!(
        "From: Test Person <{from}>\r\nTo: jobs+backend@acme.example\r\nSubject: Bewerbung {id}\r\n\
Message-ID: <{id}@example.org>\r\nContent-Language: de\r\n{extra}\r\nGuten Tag,\r\nanbei meine Bewerbung.\r\n"
    );
    let (code, text) = d
        .connect()
        .send_mail(from, "jobs+backend@acme.example", mail.as_bytes());
    assert_eq!(code, 250, "{text}");
    let message = text.trim().rsplit(' ').next().unwrap().to_string();
    let m = json(d.cli(&["message", "show", &message, "--json"]));
    m["candidate"]["id"].as_i64().unwrap_or(0)
}

/// Every delivery the store has, oldest event first.
fn deliveries(d: &Daemon) -> Vec<serde_json::Value> {
    let v = json(d.cli(&["webhooks", "events", "--limit", "1000", "--json"]));
    let mut rows = v["deliveries"].as_array().expect("deliveries").clone();
    rows.reverse();
    rows
}

fn wait_all_delivered(d: &Daemon, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = deliveries(d);
        if rows.len() >= n && rows.iter().all(|r| r["state"] == "delivered") {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "not all delivered: {rows:#?}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Each candidate's event ids in the order given.
fn per_candidate(events: impl Iterator<Item = (Option<i64>, String)>) -> Vec<(i64, Vec<String>)> {
    let mut out: Vec<(i64, Vec<String>)> = Vec::new();
    for (candidate, id) in events {
        let c = candidate.unwrap_or(0);
        match out.iter_mut().find(|(k, _)| *k == c) {
            Some((_, ids)) => ids.push(id),
            None => out.push((c, vec![id])),
        }
    }
    out.sort();
    out
}

#[test]
fn a_receiver_that_fails_twice_gets_every_event_once_signed_and_in_order() {
    let up = Upstream::start();
    let secrets = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let (secret, section) = webhook_section(secrets.path(), port);
    let receiver = Receiver::start(port, &secret, &secrets.path().join("got.jsonl"), 2);
    let directory = with_acknowledgements(&relayed_directory(&up)) + &section;
    let d = Daemon::start_world("", &directory, None);

    // Erika applies and writes again; Tom's mail client asks for no
    // automatic answers.
    let cv = mail_with_pdfs(
        "Erika Muster <erika@example.org>",
        "jobs+backend@acme.example",
        &[("Lebenslauf.pdf", b"%PDF-1.4 CV of Erika")],
    );
    let (code, text) = d.connect().send_mail(
        "erika@example.org",
        "jobs+backend@acme.example",
        &stuff(&cv),
    );
    assert_eq!(code, 250, "{text}");
    let erika = json(d.cli(&["candidate", "list", "--json"]))["candidates"][0]["id"]
        .as_i64()
        .expect("a candidate");
    assert_eq!(apply(&d, "erika@example.org", "", "w2"), erika);
    let tom = apply(
        &d,
        "tom@example.net",
        "X-Auto-Response-Suppress: All\r\n",
        "w3",
    );
    assert!(tom > 0 && tom != erika);
    up.wait_for(1, 20);

    // application.created ×2, message.received ×3, outbox.sent (Erika's
    // acknowledgement), auto_reply.suppressed (Tom's).
    let rows = wait_all_delivered(&d, 7);
    let kinds: Vec<&str> = rows.iter().map(|r| r["type"].as_str().unwrap()).collect();
    for (kind, n) in [
        ("application.created", 2),
        ("message.received", 3),
        ("outbox.sent", 1),
        ("auto_reply.suppressed", 1),
    ] {
        assert_eq!(
            kinds.iter().filter(|k| **k == kind).count(),
            n,
            "{kind}: {kinds:?}"
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let got = receiver.accepted();
    assert_eq!(receiver.refused(), "", "every signature verified");
    // Every event once: no repeat after the retries.
    let mut ids: Vec<&str> = got.iter().map(|g| g["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "a repeat: {got:#?}");
    assert_eq!(got.len(), rows.len());
    for g in &got {
        assert_eq!(g["header_id"], g["id"], "Jobmail-Event-Id is the body's id");
        assert_eq!(g["path"], "/hooks/jobmail");
    }
    // Two requests failed, so they were tried again.
    let attempts: i64 = rows.iter().map(|r| r["attempts"].as_i64().unwrap()).sum();
    assert_eq!(attempts, rows.len() as i64 + 2, "{rows:#?}");
    assert!(got.iter().any(|g| g["attempt"].as_i64() > Some(1)));
    // Each candidate's events arrived in the order they happened.
    let happened = per_candidate(rows.iter().map(|r| {
        (
            r["candidate"].as_i64(),
            r["event"].as_str().unwrap().to_string(),
        )
    }));
    let arrived = per_candidate(got.iter().map(|g| {
        (
            g["event"]["candidate"].as_i64(),
            g["id"].as_str().unwrap().to_string(),
        )
    }));
    assert_eq!(arrived, happened);

    // What the ATS reads: the mail and why it was filed so.
    let received = got
        .iter()
        .find(|g| g["type"] == "message.received" && g["event"]["candidate"] == erika)
        .expect("message.received");
    let data = &received["event"]["data"];
    assert_eq!(received["event"]["candidate"], erika);
    assert_eq!(data["message"]["from"], "erika@example.org");
    assert_eq!(data["message"]["subject"], "Bewerbung");
    assert_eq!(data["reason"], "new-application");
    let documents = &data["message"]["documents"];
    assert_eq!(documents[0]["file_name"], "Lebenslauf.pdf", "{data}");
    assert_eq!(documents[0]["category"], "cv");
    assert_eq!(documents[0]["size"], 20);
    assert!(documents[0]["id"].as_i64().is_some());
    assert!(data["application"].as_i64().is_some(), "{data}");
    let suppressed = got
        .iter()
        .find(|g| g["type"] == "auto_reply.suppressed")
        .expect("auto_reply.suppressed");
    assert_eq!(suppressed["event"]["candidate"], tom);
    assert_eq!(
        suppressed["event"]["data"]["rule"],
        "auto-response-suppress"
    );
    let sent = got.iter().find(|g| g["type"] == "outbox.sent").unwrap();
    assert_eq!(sent["event"]["candidate"], erika);
    assert_eq!(sent["event"]["data"]["code"], 250);

    // The operator's view.
    let list = d.cli(&["webhooks", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("pending 0  failed 0  delivered 7"), "{text}");
    let status = json(d.cli(&["status", "--json"]));
    assert_eq!(status["webhooks"][0]["endpoint"], "ats");
    assert_eq!(status["webhooks"][0]["pending"], 0);
    // No secret or signature in the log.
    let log = d.log();
    assert!(log.contains("webhook delivery"), "one line per attempt");
    assert!(
        !log.contains("3f1c9a7e5b2d4f60"),
        "the secret is never logged"
    );
    assert!(!log.contains("v1="), "nor a signature");
    drop(receiver);
}

#[test]
fn events_pending_at_a_kill_9_all_arrive_after_the_restart() {
    let secrets = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let (secret, section) = webhook_section(secrets.path(), port);
    let mut d = Daemon::start_world("", &(example_directory() + &section), None);
    // No receiver yet: every attempt is refused a connection.
    let mut candidates = Vec::new();
    for (i, from) in ["a@example.org", "b@example.org", "c@example.org"]
        .iter()
        .enumerate()
    {
        candidates.push(apply(&d, from, "", &format!("k{i}")));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !deliveries(&d)
        .iter()
        .any(|r| r["attempts"].as_i64() > Some(0))
    {
        assert!(Instant::now() < deadline, "no attempt: {}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    d.kill9();
    let pending = deliveries(&d);
    // Per candidate: the application, the mail, and the acknowledgement
    // not sent (the example company's are off in the tests).
    assert_eq!(pending.len(), 9, "{pending:#?}");
    assert!(
        pending.iter().all(|r| r["state"] == "pending"),
        "{pending:#?}"
    );
    assert!(
        pending.iter().any(|r| r["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("cannot connect")),
        "{pending:#?}"
    );

    let receiver = Receiver::start(port, &secret, &secrets.path().join("got.jsonl"), 0);
    d.spawn();
    let rows = wait_all_delivered(&d, 9);
    std::thread::sleep(Duration::from_millis(300));
    let got = receiver.accepted();
    assert_eq!(receiver.refused(), "");
    for r in &rows {
        assert!(
            got.iter().any(|g| g["id"] == r["event"]),
            "{} never arrived",
            r["event"]
        );
    }
    // Each candidate's events arrived in the order they happened.
    for c in candidates {
        let kinds: Vec<&str> = got
            .iter()
            .filter(|g| g["event"]["candidate"] == c)
            .map(|g| g["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "application.created",
                "message.received",
                "auto_reply.suppressed"
            ]
        );
    }
}

#[test]
fn a_reload_adds_an_endpoint_and_takes_one_out() {
    use crate::daemon::reload::{sighup, wait_log};
    let secrets = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let (secret, section) = webhook_section(secrets.path(), port);
    let receiver = Receiver::start(port, &secret, &secrets.path().join("got.jsonl"), 0);
    let d = Daemon::start_world("", &example_directory(), None);
    assert!(apply(&d, "before@example.org", "", "r1") > 0);
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, format!("{text}{section}")).unwrap();
    let from = d.log().len();
    sighup(&d);
    wait_log(&d, from, "webhooks: delivering");
    let after = apply(&d, "after@example.org", "", "r2");
    let rows = wait_all_delivered(&d, 3);
    assert!(
        rows.iter().all(|r| r["candidate"] == after),
        "only what happened after the reload: {rows:#?}"
    );

    // Taken out again: it is no longer served, and no event is written for it.
    drop(receiver);
    std::fs::write(&d.config, &text).unwrap();
    let from = d.log().len();
    sighup(&d);
    wait_log(&d, from, "config reloaded");
    let deadline = Instant::now() + Duration::from_secs(10);
    let list = loop {
        let list = String::from_utf8_lossy(&d.cli(&["webhooks", "list"]).stdout).into_owned();
        if list.contains("(not served)") {
            break list;
        }
        assert!(Instant::now() < deadline, "still served: {list}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(apply(&d, "later@example.org", "", "r3") > 0);
    assert!(list.contains("ats  http://127.0.0.1:"), "{list}");
    assert!(list.contains("(not served)"), "{list}");
    assert_eq!(deliveries(&d).len(), 3, "no endpoint wants the next events");
}

#[test]
fn an_https_receiver_behind_a_private_ca_is_trusted_only_with_its_ca_file() {
    let pki = crate::inbound::tls::pki(false);
    let secrets = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let (secret, section) = webhook_section(secrets.path(), port);
    let section = section.replace("http://127.0.0.1", "https://127.0.0.1");
    let receiver = Receiver::start_tls(
        port,
        &secret,
        &secrets.path().join("got.jsonl"),
        0,
        Some((&pki.certificate, &pki.key)),
    );
    // The system's roots alone do not know the company's CA.
    let mut d = Daemon::start_world("", &(example_directory() + &section), None);
    let first = apply(&d, "first@example.org", "", "t1");
    let deadline = Instant::now() + Duration::from_secs(10);
    let error = loop {
        let rows = deliveries(&d);
        if let Some(e) = rows.iter().find_map(|r| r["last_error"].as_str()) {
            break e.to_string();
        }
        assert!(Instant::now() < deadline, "no attempt: {rows:#?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(error.starts_with("TLS with 127.0.0.1:"), "{error}");
    assert!(receiver.accepted().is_empty());

    // With its CA trusted, what waited goes, and the next ones.
    d.kill9();
    let text = std::fs::read_to_string(&d.config).unwrap();
    let ca = format!("ca_file = {:?}\n", pki.ca.display().to_string());
    std::fs::write(
        &d.config,
        text.replace(
            "retry_after = \"200ms\"\n",
            &format!("retry_after = \"200ms\"\n{ca}"),
        ),
    )
    .unwrap();
    d.spawn();
    let second = apply(&d, "second@example.org", "", "t2");
    let rows = wait_all_delivered(&d, 6);
    let got = receiver.accepted();
    assert_eq!(got.len(), rows.len(), "{got:#?}");
    for c in [first, second] {
        assert!(
            got.iter()
                .any(|g| g["event"]["candidate"] == c && g["type"] == "message.received")
        );
    }
}
