//! TLS on the listener against the real binary: Python's smtplib and swaks
//! over STARTTLS and implicit TLS, the pipelined-injection rule over a raw
//! connection and rustls, TLS required from a network, and `config check`
//! on a bad certificate or key. Every certificate is made here with rcgen.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;

use crate::support::harness::*;

/// A test CA and a server certificate signed by it, as PEM files.
pub(crate) struct Pki {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) ca: PathBuf,
    pub(crate) ca_pem: String,
    pub(crate) certificate: PathBuf,
    pub(crate) key: PathBuf,
}

/// `expired`: the server certificate ran out on 2020-01-01.
pub(crate) fn pki(expired: bool) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Names of their own: with rcgen's one default name for both, OpenSSL
    // takes the server certificate for a self-signed one.
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "jobmail test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    // 127.0.0.1 too: smtplib checks the name it connected to.
    let names = ["mx.test.example", "localhost", "127.0.0.1"].map(String::from);
    let mut params = CertificateParams::new(names.to_vec()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mx.test.example");
    if expired {
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    }
    let cert = params.signed_by(&key, &ca).unwrap();
    let certificate = dir.path().join("fullchain.pem");
    std::fs::write(&certificate, format!("{}{}", cert.pem(), ca.pem())).unwrap();
    let key_path = dir.path().join("privkey.pem");
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    Pki {
        ca: ca_path,
        ca_pem: ca.pem(),
        certificate,
        key: key_path,
        dir,
    }
}

fn toml_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// A `[tls]` section for `pki`, with `more` lines.
pub(crate) fn tls_section(pki: &Pki, more: &str) -> String {
    format!(
        "\n[tls]\ncertificate = {}\nkey = {}\n{more}\n",
        toml_path(&pki.certificate),
        toml_path(&pki.key)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A line-by-line SMTP client over any stream (plain or rustls).
pub(crate) struct Smtp<S: Read + Write> {
    io: BufReader<S>,
}

impl<S: Read + Write> Smtp<S> {
    pub(crate) fn new(stream: S) -> Self {
        Smtp {
            io: BufReader::new(stream),
        }
    }

    pub(crate) fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = self.io.read_line(&mut line).expect("read reply");
            assert!(n > 0, "closed; so far {text:?}");
            text.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return (line[..3].parse().expect("code"), text);
            }
        }
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).expect("send");
        self.io.get_mut().flush().expect("flush");
    }

    pub(crate) fn cmd(&mut self, line: &str) -> (u16, String) {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    pub(crate) fn expect(&mut self, line: &str, code: u16) -> String {
        let (got, text) = self.cmd(line);
        assert_eq!(got, code, "{line:?} → {text:?}");
        text
    }

    /// The stream, once nothing is left unread in our buffer.
    pub(crate) fn into_stream(self) -> S {
        assert!(
            self.io.buffer().is_empty(),
            "unread: {:?}",
            self.io.buffer()
        );
        self.io.into_inner()
    }
}

pub(crate) type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// The rustls handshake over `stream`, trusting the test CA.
pub(crate) fn handshake(stream: TcpStream, ca_pem: &str) -> Tls {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("mx.test.example").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, stream);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).expect("TLS handshake");
    }
    tls
}

pub(crate) fn connect(d: &Daemon) -> Smtp<TcpStream> {
    let stream = TcpStream::connect(d.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut smtp = Smtp::new(stream);
    assert_eq!(smtp.reply().0, 220);
    smtp
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn smtplib_starttls(
    d: &Daemon,
    pki: &Pki,
    eml: &Path,
    max_version: Option<&str>,
) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/smtplib_starttls.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["127.0.0.1", &d.addr.port().to_string()])
        .arg(&pki.ca)
        .args(["erika@example.org", "jobs@acme.example"])
        .arg(eml)
        .args(max_version)
        .output()
        .expect("python3 must be installed (see .ci/run)");
    assert!(
        out.status.success(),
        "smtplib: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client prints JSON")
}

/// The stored mail's `Received:` line, unfolded.
fn received(d: &Daemon, id: i64) -> String {
    let raw = d.reader().raw(id).unwrap().unwrap();
    let text = String::from_utf8_lossy(&raw);
    let start = text.find("Received: ").expect("Received");
    let end = text[start..].find(";").expect("date") + start;
    text[start..end].replace("\r\n\t", " ")
}

#[test]
fn smtplib_starttls_mail_is_received_with_esmtps_version_and_cipher() {
    let pki = pki(false);
    let d = Daemon::start_with(&tls_section(&pki, ""));
    let sent = smtplib_starttls(&d, &pki, &fixture_path("application-pdf.eml"), None);
    eprintln!("smtplib over STARTTLS: {sent}");
    assert_eq!(sent["code"], 250, "{sent}");
    assert_eq!(sent["offered"], true, "STARTTLS offered in the clear");
    assert_eq!(sent["offered_inside"], false, "not offered again in TLS");
    assert_eq!(sent["version"], "TLSv1.3");

    let id = latest(&d.reader(), 1)[0].id;
    // What OpenSSL negotiated is what the stored mail says (rustls names
    // TLS 1.3 suites TLS13_…, OpenSSL TLS_…).
    let cipher = sent["cipher"]
        .as_str()
        .unwrap()
        .replacen("TLS_", "TLS13_", 1);
    let line = received(&d, id);
    assert_eq!(
        line,
        format!(
            "Received: from python.test.example ([127.0.0.1]) by mx.test.example (jobmail) with ESMTPS id {} (version=TLS1.3 cipher={cipher}) for <jobs@acme.example>",
            d.reader().message(id).unwrap().unwrap().session_id
        )
    );
    // Byte-exact under the trace headers, as in the clear.
    assert_eq!(d.content(id), fixture("application-pdf.eml"));

    let m = json(d.cli(&["message", "show", &id.to_string(), "--json"]));
    assert_eq!(m["tls"]["version"], "TLS1.3", "{m}");
    assert_eq!(m["tls"]["cipher"], cipher.as_str(), "{m}");
    let human = d.cli(&["message", "show", &id.to_string()]);
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains(&format!("TLS          TLS1.3 {cipher}\n")),
        "{human}"
    );

    // TLS 1.2 as well, with an ECDHE suite (another mail: the same bytes
    // again would be stored once, with the first delivery's facts).
    let eml = d.dir.path().join("tls12.eml");
    std::fs::write(&eml, simple_mail("tls12-1", "over TLS 1.2")).unwrap();
    let sent = smtplib_starttls(&d, &pki, &eml, Some("1.2"));
    eprintln!("smtplib over STARTTLS, TLS 1.2 at most: {sent}");
    assert_eq!(sent["version"], "TLSv1.2", "{sent}");
    let id = latest(&d.reader(), 1)[0].id;
    let m = json(d.cli(&["message", "show", &id.to_string(), "--json"]));
    assert_eq!(m["tls"]["version"], "TLS1.2", "{m}");
    assert!(
        m["tls"]["cipher"]
            .as_str()
            .unwrap()
            .starts_with("TLS_ECDHE_"),
        "{m}"
    );
    assert!(received(&d, id).contains("(version=TLS1.2 cipher=TLS_ECDHE_"));

    // A mail in the clear says so.
    let mut c = d.connect();
    let (code, _) = c.send_mail(
        "erika@example.org",
        "jobs@acme.example",
        &stuff(&simple_mail("plain-1", "in the clear")),
    );
    assert_eq!(code, 250);
    let id = latest(&d.reader(), 1)[0].id;
    assert!(received(&d, id).contains(" with ESMTP id "));
    assert!(!received(&d, id).contains("version="));
    let m = json(d.cli(&["message", "show", &id.to_string(), "--json"]));
    assert!(m["tls"].is_null(), "{m}");
}

fn swaks(args: &[&str], d: &Daemon) -> String {
    let out = Command::new("swaks")
        .args(["--from", "erika@example.org", "--to", "jobs@acme.example"])
        .args(["--helo", "swaks.test.example", "--timeout", "30"])
        .args(args)
        .current_dir(d.dir.path())
        .output()
        .expect("swaks must be installed (see .ci/run)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "swaks {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn swaks_delivers_over_starttls_and_over_implicit_tls() {
    let pki = pki(false);
    let implicit = free_port();
    let d = Daemon::start_with(&tls_section(
        &pki,
        &format!("implicit_listen = [\"127.0.0.1:{implicit}\"]"),
    ));
    let server = d.addr.to_string();
    let out = swaks(&["--server", &server, "--tls"], &d);
    assert!(out.contains("<-  220 2.0.0 Ready to start TLS"), "{out}");
    assert!(out.contains("=== TLS started with cipher TLSv1.3"), "{out}");
    let id = latest(&d.reader(), 1)[0].id;
    assert!(
        received(&d, id).contains("with ESMTPS id"),
        "{}",
        received(&d, id)
    );

    let out = swaks(
        &[
            "--server",
            &format!("127.0.0.1:{implicit}"),
            "--tls-on-connect",
        ],
        &d,
    );
    assert!(out.contains("=== TLS started with cipher TLSv1.3"), "{out}");
    // EHLO inside implicit TLS offers no STARTTLS.
    assert!(!out.contains("250-STARTTLS"), "{out}");
    let id = latest(&d.reader(), 1)[0].id;
    let m = json(d.cli(&["message", "show", &id.to_string(), "--json"]));
    assert_eq!(m["tls"]["version"], "TLS1.3", "{m}");
    assert_eq!(d.reader().count_messages().unwrap(), 2);

    // A client that speaks plaintext to the implicit port is closed
    // (one log line), and the daemon goes on.
    let mut plain = TcpStream::connect(("127.0.0.1", implicit)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain.write_all(b"EHLO plain.example\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = plain.read_to_end(&mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("220 "), "{rest:?}");
    // The connection closes as the handshake fails; the line follows it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !d.log().contains("TLS handshake failed; closing") && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = d.log();
    assert!(
        log.contains("TLS handshake failed; closing") && log.contains("127.0.0.1"),
        "{log}"
    );
    swaks(&["--server", &server, "--tls"], &d);
}

#[test]
fn commands_pipelined_after_starttls_are_discarded_and_the_session_starts_over() {
    let pki = pki(false);
    let d = Daemon::start_with(&tls_section(&pki, ""));
    let mut smtp = connect(&d);
    let ehlo = smtp.expect("EHLO client.test.example", 250);
    assert!(ehlo.contains("250-STARTTLS\r\n"), "{ehlo}");
    // The injection: one write, read by the server in one read.
    smtp.send(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example.org>\r\n");
    let (code, text) = smtp.reply();
    assert_eq!(code, 220, "{text}");
    let mut smtp = Smtp::new(handshake(smtp.into_stream(), &pki.ca_pem));
    // Had RSET and MAIL been read inside TLS, this would be their 250.
    let (code, text) = smtp.cmd("RCPT TO:<jobs@acme.example>");
    assert_eq!(
        (code, text.as_str()),
        (503, "503 5.5.1 Error: need MAIL command\r\n")
    );
    let (code, text) = smtp.cmd("DATA");
    assert_eq!(code, 503, "{text}");
    // The EHLO from before TLS is forgotten too.
    let (code, text) = smtp.cmd("MAIL FROM:<erika@example.org>");
    assert_eq!(
        (code, text.as_str()),
        (503, "503 5.5.1 Error: send HELO/EHLO first\r\n")
    );
    let ehlo = smtp.expect("EHLO client.test.example", 250);
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    let (code, text) = smtp.cmd("STARTTLS");
    assert_eq!(
        (code, text.as_str()),
        (503, "503 5.5.1 Error: TLS is already active\r\n")
    );
    // The session goes on in TLS: a mail, from the real sender.
    smtp.expect("MAIL FROM:<erika@example.org>", 250);
    smtp.expect("RCPT TO:<jobs@acme.example>", 250);
    smtp.expect("DATA", 354);
    smtp.send(&stuff(&simple_mail("inside-tls-1", "inside TLS")));
    smtp.expect(".", 250);
    smtp.expect("QUIT", 221);
    let inbox = latest(&d.reader(), 10);
    assert_eq!(inbox.len(), 1);
    let m = d.reader().message(inbox[0].id).unwrap().unwrap();
    assert_eq!(m.envelope_sender, "erika@example.org");
    assert!(d.log().contains("discarded input pipelined after STARTTLS"));
}

#[test]
fn starttls_with_a_parameter_is_refused_and_without_tls_it_is_not_offered() {
    let pki = pki(false);
    let d = Daemon::start_with(&tls_section(&pki, ""));
    let mut smtp = connect(&d);
    smtp.expect("EHLO client.test.example", 250);
    let (code, text) = smtp.cmd("STARTTLS now");
    assert_eq!(code, 501, "{text}");
    // Still in the clear, and STARTTLS still works.
    smtp.expect("STARTTLS", 220);
    let mut smtp = Smtp::new(handshake(smtp.into_stream(), &pki.ca_pem));
    smtp.expect("EHLO client.test.example", 250);

    // Without [tls]: 502, as before.
    let plain = Daemon::start();
    let mut c = plain.connect();
    c.ehlo();
    assert_eq!(c.cmd("STARTTLS").0, 502);
}

#[test]
fn a_network_that_must_use_tls_gets_530_before_starttls_and_mails_after() {
    let pki = pki(false);
    let d = Daemon::start_with(&tls_section(
        &pki,
        "require_from = [\"10.0.0.0/8\", \"127.0.0.1\"]",
    ));
    let mut smtp = connect(&d);
    smtp.expect("EHLO client.test.example", 250);
    let (code, text) = smtp.cmd("MAIL FROM:<erika@example.org>");
    assert_eq!(
        (code, text.as_str()),
        (530, "530 5.7.0 Must issue a STARTTLS command first\r\n")
    );
    smtp.expect("STARTTLS", 220);
    let mut smtp = Smtp::new(handshake(smtp.into_stream(), &pki.ca_pem));
    smtp.expect("EHLO client.test.example", 250);
    smtp.expect("MAIL FROM:<erika@example.org>", 250);
    smtp.expect("RCPT TO:<jobs@acme.example>", 250);
    smtp.expect("DATA", 354);
    smtp.send(&stuff(&simple_mail("required-1", "over TLS as required")));
    smtp.expect(".", 250);
    assert_eq!(d.reader().count_messages().unwrap(), 1);

    // Another network may still send in the clear.
    let other = Daemon::start_with(&tls_section(&pki, "require_from = [\"10.0.0.0/8\"]"));
    let mut c = other.connect();
    c.ehlo();
    c.expect_cmd("MAIL FROM:<erika@example.org>", 250);
}

/// A config for `config check` with this `[tls]` section.
fn check(dir: &Path, tls: &str) -> (Option<i32>, String) {
    let path = dir.join("jobmail.toml");
    std::fs::write(
        &path,
        format!("[server]\nlisten = [\"127.0.0.1:2525\"]\ndatabase = \"jobmail.db\"\n{tls}\n[authentication]\nverify = false\n{DIRECTORY}"),
    )
    .unwrap();
    let out = cli(&path, &["config", "check"]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn config_check_names_an_expired_certificate_and_a_key_that_does_not_match() {
    let good = pki(false);
    let (code, text) = check(good.dir.path(), &tls_section(&good, ""));
    assert_eq!(code, Some(0), "{text}");

    let expired = pki(true);
    let (code, text) = check(expired.dir.path(), &tls_section(&expired, ""));
    assert_eq!(code, Some(2), "{text}");
    let config = expired.dir.path().join("jobmail.toml");
    assert!(
        text.contains(&format!(
            "{}: tls.certificate: {}: the certificate expired on 2020-01-01T00:00:00+00:00",
            config.display(),
            expired.certificate.display()
        )),
        "{text}"
    );
    // serve refuses the same, with the same words.
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr), text);

    // The key of another certificate.
    let other = pki(false);
    let mismatched = format!(
        "\n[tls]\ncertificate = {}\nkey = {}\n",
        toml_path(&good.certificate),
        toml_path(&other.key)
    );
    let (code, text) = check(other.dir.path(), &mismatched);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "tls.key: {} does not match the certificate in {}",
            other.key.display(),
            good.certificate.display()
        )),
        "{text}"
    );

    // A file that is not there, and a key where the certificate belongs.
    let swapped = format!(
        "\n[tls]\ncertificate = {}\nkey = \"missing.pem\"\n",
        toml_path(&good.key)
    );
    let (code, text) = check(good.dir.path(), &swapped);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "tls.certificate: {}: holds no certificate",
            good.key.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "tls.key: cannot read {}:",
            good.dir.path().join("missing.pem").display()
        )),
        "{text}"
    );
}
