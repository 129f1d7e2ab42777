//! Real clients against the real binary: Python's smtplib, lettre and swaks.
//! Each mail must be stored byte-exact, with its attachments, and listed by
//! `jobmail inbox --json`.

use std::process::Command;

use crate::support::harness::*;

fn python_send(d: &Daemon, from: &str, to: &str, eml: &std::path::Path) -> serde_json::Value {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/smtplib_send.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["127.0.0.1", &d.addr.port().to_string(), from, to])
        .arg(eml)
        .output()
        .expect("python3 must be installed (see .ci/run)");
    assert!(
        out.status.success(),
        "smtplib client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client prints JSON")
}

fn fixture_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

#[test]
fn smtplib_mail_with_pdf_is_stored_byte_exact_and_listed() {
    let d = Daemon::start();
    let sent = python_send(
        &d,
        "erika@example.org",
        "jobs@acme.example",
        &fixture_path("application-pdf.eml"),
    );
    assert_eq!(sent["code"], 250, "{sent}");

    let inbox = d.inbox_json(10);
    let messages = inbox["messages"].as_array().expect("messages array");
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    let id = m["id"].as_i64().expect("id");
    assert_eq!(m["envelope_sender"], "erika@example.org");
    assert!(!m["subject"].as_str().unwrap_or("").is_empty(), "{m}");

    // Byte-exact: what smtplib sent, under our two trace headers.
    assert_eq!(d.content(id), fixture("application-pdf.eml"));
    let raw = d.reader().raw(id).unwrap().unwrap();
    assert!(raw.starts_with(
        b"Return-Path: <erika@example.org>\r\nReceived: from python.test.example ([127.0.0.1])"
    ));

    // Every attachment Python's email package sees is a document with the same bytes.
    let expected = sent["attachments"].as_array().expect("attachments");
    assert!(!expected.is_empty());
    let docs = m["attachments"].as_array().expect("attachments listed");
    for a in expected {
        assert!(
            docs.iter()
                .any(|doc| doc["sha256"] == a["sha256"] && doc["filename"] == a["filename"]),
            "attachment {a} missing from {docs:?}"
        );
    }
    let pdf = docs
        .iter()
        .find(|doc| doc["content_type"] == "application/pdf")
        .expect("a PDF");
    let bytes = d
        .reader()
        .document_content(pdf["id"].as_i64().unwrap())
        .unwrap()
        .unwrap();
    assert!(bytes.starts_with(b"%PDF-"));

    // `message show --raw` writes the stored bytes exactly.
    let out = d.cli(&["message", "show", &id.to_string(), "--raw"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, raw);
}

#[test]
fn null_sender_and_a_dsn_are_accepted_and_flagged() {
    let d = Daemon::start();
    let sent = python_send(&d, "", "jobs@acme.example", &fixture_path("dsn-bounce.eml"));
    assert_eq!(sent["code"], 250, "{sent}");
    let inbox = d.inbox_json(10);
    let m = &inbox["messages"][0];
    assert_eq!(m["envelope_sender"], "");
    assert_eq!(m["delivery_report"], true, "{m}");
    assert_eq!(m["automatic"], true, "{m}");
    let id = m["id"].as_i64().unwrap();
    assert!(
        d.reader()
            .raw(id)
            .unwrap()
            .unwrap()
            .starts_with(b"Return-Path: <>\r\n")
    );
    assert_eq!(d.content(id), fixture("dsn-bounce.eml"));

    let out = d.cli(&["inbox"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("[bounce]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lettre_mail_with_attachment_is_stored_byte_exact() {
    use lettre::message::{Attachment, MultiPart, SinglePart, header::ContentType};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let d = tokio::task::spawn_blocking(Daemon::start).await.unwrap();
    // A real PDF's second line is binary, which makes lettre use base64. (An
    // all-ASCII body with bare LFs would go out as 7bit and be refused 5.5.2.)
    let pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n".to_vec();
    let message = Message::builder()
        .from("Max Mustermann <max@example.net>".parse().unwrap())
        .to("jobs+backend@acme.example".parse().unwrap())
        .subject("Application: Backend Engineer (Rust)")
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(
                    ".leading dot\r\n..two dots\r\nBest regards".to_string(),
                ))
                .singlepart(
                    Attachment::new("Lebenslauf Max.pdf".to_string())
                        .body(pdf.clone(), ContentType::parse("application/pdf").unwrap()),
                ),
        )
        .unwrap();
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(d.addr.port())
        .build();
    let response = transport.send(message.clone()).await.expect("lettre send");
    assert_eq!(response.code().to_string(), "250");

    let d = std::sync::Arc::new(d);
    let d2 = d.clone();
    let (id, content, docs) = tokio::task::spawn_blocking(move || {
        let inbox = d2.inbox_json(1);
        let id = inbox["messages"][0]["id"].as_i64().unwrap();
        (id, d2.content(id), d2.reader().documents(id).unwrap())
    })
    .await
    .unwrap();
    assert!(id > 0);
    // lettre always writes CRLF "." CRLF after the message, even when the
    // message already ends in CRLF: on the wire, the mail is formatted + CRLF.
    let mut on_the_wire = message.formatted();
    on_the_wire.extend_from_slice(b"\r\n");
    assert_eq!(content, on_the_wire, "stored bytes are what lettre sent");
    let doc = docs
        .iter()
        .find(|doc| doc.content_type == "application/pdf")
        .expect("PDF stored");
    assert_eq!(doc.filename, "Lebenslauf Max.pdf");
    assert_eq!(doc.sha256, jobmail::store::sha256_hex(&pdf));
}

#[test]
fn swaks_attachment_is_stored() {
    let d = Daemon::start();
    let pdf = d.dir.path().join("Zeugnis.pdf");
    let pdf_bytes = b"%PDF-1.7\n% swaks test\n%%EOF\n".to_vec();
    std::fs::write(&pdf, &pdf_bytes).unwrap();
    let out = Command::new("swaks")
        .args([
            "--server",
            &d.addr.to_string(),
            "--helo",
            "swaks.test.example",
        ])
        .args(["--from", "kim@example.com", "--to", "karriere@acme.example"])
        .args(["--header", "Subject: Bewerbung mit Zeugnis"])
        .args([
            "--attach-type",
            "application/pdf",
            "--attach-name",
            "Zeugnis.pdf",
        ])
        .arg("--attach")
        .arg(format!("@{}", pdf.display()))
        .output()
        .expect("swaks must be installed (see .ci/run)");
    assert!(
        out.status.success(),
        "swaks: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let inbox = d.inbox_json(1);
    let m = &inbox["messages"][0];
    assert_eq!(m["subject"], "Bewerbung mit Zeugnis", "{m}");
    let docs = m["attachments"].as_array().unwrap();
    assert!(
        docs.iter().any(|doc| doc["filename"] == "Zeugnis.pdf"
            && doc["sha256"] == jobmail::store::sha256_hex(&pdf_bytes)),
        "{docs:?}"
    );
}

#[test]
fn twenty_sessions_at_once_are_all_greeted_and_served() {
    let d = Daemon::start();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(20));
    let addr = d.addr;
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut c = Conn::open(addr);
                // Everyone connected and greeted before anyone sends.
                c.expect(220);
                barrier.wait();
                let (code, text) = c.send_mail(
                    "erika@example.org",
                    "jobs@acme.example",
                    &simple_mail(&format!("parallel-{i}"), &format!("Parallel {i}")),
                );
                assert_eq!(code, 250, "{text}");
                c.expect_cmd("QUIT", 221);
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread");
    }
    assert_eq!(d.reader().count_messages().unwrap(), 20);
}

#[test]
fn the_same_mail_twice_is_stored_once_and_answered_250_both_times() {
    let d = Daemon::start();
    let mail = simple_mail("retry-1", "Retried after a lost 250");
    let (code, first) = d
        .connect()
        .send_mail("erika@example.org", "jobs@acme.example", &mail);
    assert_eq!(code, 250, "{first}");
    let (code, second) = d
        .connect()
        .send_mail("erika@example.org", "karriere@acme.example", &mail);
    assert_eq!(code, 250, "{second}");
    assert!(second.contains("already stored"), "{second}");
    assert_eq!(d.reader().count_messages().unwrap(), 1);
    // The second envelope recipient is kept.
    let detail = d.reader().message(1).unwrap().unwrap();
    assert_eq!(
        detail.envelope_recipients,
        vec!["jobs@acme.example", "karriere@acme.example"]
    );
}

#[test]
fn dot_unstuffing_is_exact() {
    let d = Daemon::start();
    let meant: &[u8] = b"Subject: dots\r\n\r\n.\r\n..\r\n. x\r\n...three\r\nend.\r\n.\r\n";
    let stuffed = stuff(meant);
    let (code, text) = d
        .connect()
        .send_mail("a@example.org", "jobs@acme.example", &stuffed);
    assert_eq!(code, 250, "{text}");
    assert_eq!(d.content(1), meant);
}

#[test]
fn cli_shows_a_message_for_humans_and_as_json() {
    let d = Daemon::start();
    let (code, _) = d.connect().send_mail(
        "erika@example.org",
        "jobs+backend@acme.example",
        &simple_mail("show-1", "Hello there"),
    );
    assert_eq!(code, 250);
    let out = d.cli(&["message", "show", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Subject      Hello there"), "{text}");
    assert!(
        text.contains("<erika@example.org> -> jobs+backend@acme.example"),
        "{text}"
    );
    let out = d.cli(&["message", "show", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["message_id"], "show-1@example.org");
    assert_eq!(v["from"]["address"], "erika@example.org");
    assert_eq!(v["from"]["name"], "Erika Mustermann");
    assert_eq!(v["envelope_recipients"][0], "jobs+backend@acme.example");
    let out = d.cli(&["message", "show", "99"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no message 99"));
}

#[test]
fn every_fixture_is_stored_byte_exact_with_every_document() {
    let d = Daemon::start();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    let mut c = d.connect();
    c.ehlo();
    for name in &names {
        let mail = fixture(name);
        let (code, text) = c.transaction("sender@example.org", "jobs@acme.example", &stuff(&mail));
        assert_eq!(code, 250, "{name}: {text}");
        let id: i64 = text.trim().rsplit(' ').next().unwrap().parse().unwrap();
        assert_eq!(d.content(id), mail, "{name}: stored bytes");
        let expected = jobmail::inbound::parse::parse_message(&mail, false).documents;
        let stored = d.reader().documents(id).unwrap();
        let got: Vec<_> = stored
            .iter()
            .map(|s| (s.part.clone(), s.filename.clone(), s.sha256.clone()))
            .collect();
        let want: Vec<_> = expected
            .iter()
            .map(|e| {
                (
                    e.part.clone(),
                    e.filename.clone(),
                    jobmail::store::sha256_hex(&e.bytes),
                )
            })
            .collect();
        assert_eq!(got, want, "{name}: documents");
    }
    // Outlook's winmail.dat arrives as the files it carries.
    let inbox = d.inbox_json(100);
    let winmail = inbox["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["attachments"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["part"].as_str().unwrap().contains("/tnef:"))
        })
        .expect("a mail with files unpacked from winmail.dat");
    let tnef_files = winmail["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["part"].as_str().unwrap().contains("/tnef:"))
        .count();
    assert!(tnef_files >= 2, "{winmail}");
}
