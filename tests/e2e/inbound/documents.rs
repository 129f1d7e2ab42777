//! Issue 15: every attachment a candidate sent, whatever the mail client.
//! Each fixture of a MIME shape mail-parser misreads is sent to the real
//! daemon over SMTP; `message show --json` must list exactly the documents
//! a mail client would show (part, name, type, size, SHA-256), and the
//! stored bytes must be the mail as sent.

use crate::support::harness::{Daemon, fixture, json, stuff};

const PDF: (usize, &str) = (
    69,
    "cfa3181c1ee36e8bce5e39f84959f4558ea7ba32c0e4539a8ab3c8ce8c716ec6",
);
const PNG: (usize, &str) = (
    33,
    "4ffd8bb30991e3a6f28d1d03f1aedcd02ccf8e0cc16bb9e969e7bc2bda1ddf03",
);

type Doc = (
    &'static str,
    &'static str,
    &'static str,
    usize,
    &'static str,
);

fn pdf(part: &'static str, name: &'static str) -> Doc {
    (part, name, "application/pdf", PDF.0, PDF.1)
}

fn png(part: &'static str, name: &'static str) -> Doc {
    (part, name, "image/png", PNG.0, PNG.1)
}

/// Sends `name`, checks the stored bytes, returns `message show --json`.
fn deliver(d: &Daemon, name: &str) -> serde_json::Value {
    let mail = fixture(name);
    let mut c = d.connect();
    c.ehlo();
    let (code, text) = c.transaction("sender@example.org", "jobs@acme.example", &stuff(&mail));
    assert_eq!(code, 250, "{name}: {text}");
    let id: i64 = text
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{name}: no id in {text:?}"));
    assert_eq!(d.content(id), mail, "{name}: stored bytes");
    json(d.cli(&["message", "show", &id.to_string(), "--json"]))
}

fn documents(show: &serde_json::Value) -> Vec<(String, String, String, usize, String)> {
    show["attachments"]
        .as_array()
        .expect("attachments")
        .iter()
        .map(|a| {
            (
                a["part"].as_str().unwrap_or_default().to_string(),
                a["filename"].as_str().unwrap_or_default().to_string(),
                a["content_type"].as_str().unwrap_or_default().to_string(),
                a["size"].as_u64().unwrap_or_default() as usize,
                a["sha256"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn owned(docs: &[Doc]) -> Vec<(String, String, String, usize, String)> {
    docs.iter()
        .map(|&(p, n, t, s, h)| (p.into(), n.into(), t.into(), s, h.into()))
        .collect()
}

#[test]
fn every_shape_yields_the_documents_a_mail_client_shows() {
    let d = Daemon::start();
    let cases: Vec<(&str, Vec<Doc>)> = vec![
        (
            "rfc822-in-rfc822.eml",
            vec![
                (
                    "2",
                    "Fwd_ Bewerbung.eml",
                    "message/rfc822",
                    205,
                    "2d9d00cd923c42214f53dc30838e33e85a275306067c2071d0217f310514c840",
                ),
                pdf("3", "Lebenslauf.pdf"),
            ],
        ),
        (
            "unterminated-multipart-in-rfc822.eml",
            vec![
                (
                    "2",
                    "Bewerbung.eml",
                    "message/rfc822",
                    343,
                    "a5580f558022b57db916da8cc35515d41d361a69dcfd8ea175d2937439871c37",
                ),
                png("2.2", "inner.png"),
                png("3", "foto.png"),
                pdf("4", "Lebenslauf.pdf"),
            ],
        ),
        (
            "folded-boundary.eml",
            vec![
                pdf("1.2", "Lebenslauf.pdf"),
                (
                    "2",
                    "smime.p7s",
                    "application/pkcs7-signature",
                    52,
                    "90c3d8d4f2c554779448932313090e7f6b954312214c011a3c05c1d864c587a9",
                ),
            ],
        ),
        (
            "part-without-blank-line.eml",
            vec![pdf("2", "Lebenslauf.pdf")],
        ),
        ("text-without-subtype.eml", vec![pdf("2", "Lebenslauf.pdf")]),
        (
            "base64-without-padding.eml",
            vec![
                (
                    "2",
                    "Lebenslauf.pdf",
                    "application/pdf",
                    1001,
                    "2e044028d10687c6922f86d6a0ee7eb48458cbf0723cbe275ebff3f25faa8e69",
                ),
                (
                    "3",
                    "Zeugnis.pdf",
                    "application/pdf",
                    1000,
                    "369e9b095401d555728ac73657775b40861158d1ff329f53ec2f88afc25e1688",
                ),
            ],
        ),
        (
            "cjk-charsets.eml",
            vec![
                pdf("2", "履歴書.pdf"),
                pdf("3", "職務経歴書.pdf"),
                pdf("4", "成績証明書.pdf"),
                pdf("5", "이력서.pdf"),
                pdf("6", "자기소개서.pdf"),
                pdf("7", "简历.pdf"),
                pdf("8", "推荐信.pdf"),
                pdf("9", "履歷表.pdf"),
            ],
        ),
        (
            "raw-8bit-in-encoded-word.eml",
            vec![
                pdf("2", "Lebenslauf Jörg.pdf"),
                pdf("3", "Zeugnis Jörg.pdf"),
            ],
        ),
        (
            "encoded-words-in-quoted-name.eml",
            vec![
                pdf("2", "Lebenslauf_Jörg_Weiß.pdf"),
                (
                    "3",
                    "because_ofpath3d-compress.gif",
                    "image/gif",
                    6,
                    "610f5ae4d76e332636a17bd357fd6ce99029316a99d320280d4d77a746bf29e8",
                ),
                pdf("4", "Zeugnis 2024.pdf"),
            ],
        ),
        (
            "uuencode.eml",
            vec![pdf("1/uu:1", "Lebenslauf.pdf"), png("2", "greenball.png")],
        ),
        (
            "broken-multipart-body.eml",
            vec![pdf("3", "Lebenslauf.pdf")],
        ),
        ("headers-only.eml", vec![]),
        (
            "unterminated-inner-multipart.eml",
            vec![pdf("2", "Lebenslauf.pdf")],
        ),
        ("raw-8bit-cjk-names.eml", vec![pdf("2", "이력서.pdf")]),
        (
            "winmail-embedded-item.eml",
            vec![
                (
                    "2",
                    "winmail.dat",
                    "application/ms-tnef",
                    802,
                    "3ce3e866358289bf74c627c78dd7758edb1ad2299c9e27af34a218e751b6b6dc",
                ),
                pdf("2/tnef:1", "Lebenslauf.pdf"),
                (
                    "2/tnef:2",
                    "Anschreiben.txt",
                    "text/plain",
                    57,
                    "ba4c94bec220d5dfc55ec8ae7660ea15d9da41942ffa3b89b72ace22e17862d7",
                ),
            ],
        ),
        // Issue 15 class 5: what Outlook packs into winmail.dat.
        (
            "winmail-embedded-message.eml",
            vec![
                (
                    "2",
                    "winmail.dat",
                    "application/ms-tnef",
                    1817,
                    "a261d365fdbdcf9a1d86d7aaba6a06fde7dadc40899b19287fbd4f15c734bae9",
                ),
                (
                    "2/tnef:1",
                    "WG_ Bewerbung Jan Berg.rtf",
                    "application/rtf",
                    165,
                    "84514ed6c845404a9c73988ca6f7bf1e92788e7d6490d44845ae5da2c88c428b",
                ),
                pdf("2/tnef:1/tnef:1", "Lebenslauf Jan Berg.pdf"),
                (
                    "2/tnef:1/tnef:2",
                    "Bewerbung Jan Berg.txt",
                    "text/plain",
                    53,
                    "01215099e0950f8ae05a687bcb5f5ee5b6ae44c81ed2fe1b654fb0e67119cdfe",
                ),
                pdf("2/tnef:1/tnef:2/tnef:1", "Zeugnis.pdf"),
                (
                    "2/tnef:2",
                    "Notiz.txt",
                    "text/plain",
                    28,
                    "bbe262ab0dbdb42f225036f6488b962d0ef5735e602107c312c161952293b195",
                ),
            ],
        ),
        (
            "winmail-appointment.eml",
            vec![
                (
                    "2",
                    "winmail.dat",
                    "application/ms-tnef",
                    1485,
                    "39b8204016fe9435f3fc6124fdd01bd334234736de7e8b09c6b9df38bc419f77",
                ),
                (
                    "2/tnef:1",
                    "Vorstellungsgespräch Jan Berg.ics",
                    "text/calendar",
                    379,
                    "e3e80b31c24850f6c89f062fa562ca5cc860115c7af3b54d6b23c59b3637c7c2",
                ),
                pdf("2/tnef:1/tnef:1", "Anfahrt.pdf"),
                (
                    "2/tnef:2",
                    "Unterlagen prüfen.txt",
                    "text/plain",
                    48,
                    "911d25622ba6754129e571adb76d7fd6ff1c6ac326d6190ac551de001520e9f9",
                ),
            ],
        ),
        (
            "winmail-rtf-body.eml",
            vec![
                (
                    "1/tnef:body",
                    "body.rtf",
                    "application/rtf",
                    241,
                    "d22759a5dd7443ad87db35033579251b3614c9d99901ae7d407006afd08f333a",
                ),
                pdf("1/tnef:1", "Lebenslauf.pdf"),
            ],
        ),
        (
            "winmail-ole-object.eml",
            vec![pdf("2/tnef:1", "Lebenslauf.pdf")],
        ),
        (
            "winmail-contact.eml",
            vec![
                (
                    "2",
                    "winmail.dat",
                    "application/ms-tnef",
                    1714,
                    "6c0be9b5717ccc4a1ec9f420e48d3f251e01ddbd49ecd88e50c656af3e1c1096",
                ),
                (
                    "2/tnef:1",
                    "Dr. Anna Berg.vcf",
                    "text/vcard",
                    447,
                    "d6c0e9679d0b273ef323958976896167f81d36e7c652b5ad769d5225edba3842",
                ),
                pdf("2/tnef:2", "Lebenslauf.pdf"),
            ],
        ),
    ];
    for (name, want) in &cases {
        let show = deliver(&d, name);
        assert_eq!(documents(&show), owned(want), "{name}");
    }
}

#[test]
fn headers_are_decoded_whatever_the_client() {
    let d = Daemon::start();
    let show = deliver(&d, "cjk-charsets.eml");
    assert_eq!(show["subject"], "応募書類の送付");
    assert_eq!(show["from"]["name"], "山田 太郎");
    // The candidate made from that mail has the name (it had none before).
    let out = d.cli(&["candidate", "list"]);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.contains("山田 太郎"), "{list}");
    let show = deliver(&d, "raw-8bit-in-encoded-word.eml");
    assert_eq!(show["subject"], "Bewerbung Frösche");
    assert_eq!(show["from"]["name"], "Jörg Frösche");
    let show = deliver(&d, "address-without-comma.eml");
    assert_eq!(show["from"]["address"], "jan@example.com");
    assert_eq!(show["to"].as_array().map(Vec::len), Some(3));
    assert_eq!(show["cc"][0]["name"], "Joerg Weiss");
    // Angle brackets without a comma: two mailboxes, not one glued.
    assert_eq!(show["reply_to"][0]["address"], "jan.privat@example.com");
    assert_eq!(show["reply_to"][1]["address"], "jan.work@example.com");
}

#[test]
fn a_mail_with_more_parts_than_kept_says_its_list_was_cut() {
    let d = Daemon::start();
    let mut mail = String::from(
        "From: a@example.org\r\nTo: jobs@acme.example\r\nSubject: many parts\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n",
    );
    for n in 0..1_200 {
        mail.push_str(&format!(
            "--b\r\nContent-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=\"f{n}.bin\"\r\n\r\nx\r\n"
        ));
    }
    mail.push_str("--b--\r\n");
    let mut c = d.connect();
    c.ehlo();
    let (code, text) = c.transaction(
        "a@example.org",
        "jobs@acme.example",
        &stuff(mail.as_bytes()),
    );
    assert_eq!(code, 250, "{text}");
    let id = text.trim().rsplit(' ').next().unwrap().to_string();
    let show = json(d.cli(&["message", "show", &id, "--json"]));
    assert_eq!(show["documents_truncated"], true, "the JSON says so");
    assert_eq!(show["attachments"].as_array().unwrap().len(), 1_000);
    let out = d.cli(&["message", "show", &id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("the list stops at 1000 documents"), "{text}");
    // A mail within the cap does not say it.
    let (code, text) = d.connect().send_mail(
        "a@example.org",
        "jobs@acme.example",
        &fixture("application-pdf.eml"),
    );
    assert_eq!(code, 250, "{text}");
    let id = text.trim().rsplit(' ').next().unwrap().to_string();
    assert_eq!(
        json(d.cli(&["message", "show", &id, "--json"]))["documents_truncated"],
        false
    );
}

#[test]
fn a_cv_five_forwards_deep_is_kept_and_the_mail_takes_twice_its_size_at_most() {
    let d = Daemon::start();
    let pdf: Vec<u8> = b"%PDF-1.4\n"
        .iter()
        .copied()
        .chain(std::iter::repeat_n(b'x', 1 << 20))
        .collect();
    let encoded: String = {
        let b64 = data_encoding::BASE64.encode(&pdf);
        b64.as_bytes()
            .chunks(76)
            .map(|l| format!("{}\r\n", String::from_utf8_lossy(l)))
            .collect()
    };
    let mut mail = format!(
        "From: cand@example.org\r\nSubject: level0\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n--b0\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
--b0\r\nContent-Type: application/pdf; name=\"cv.pdf\"\r\nContent-Disposition: attachment; filename=\"cv.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{encoded}--b0--\r\n"
    )
    .into_bytes();
    for level in 1..=5 {
        let mut outer = format!(
            "From: fwd{level}@example.org\r\nSubject: level{level}\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n--b{level}\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
--b{level}\r\nContent-Type: message/rfc822\r\n\r\n"
        )
        .into_bytes();
        outer.extend_from_slice(&mail);
        outer.extend_from_slice(format!("\r\n--b{level}--\r\n").as_bytes());
        mail = outer;
    }
    let mut c = d.connect();
    c.ehlo();
    let (code, text) = c.transaction("a@example.org", "jobs@acme.example", &stuff(&mail));
    assert_eq!(code, 250, "{text}");
    let id = text.trim().rsplit(' ').next().unwrap().to_string();
    let show = json(d.cli(&["message", "show", &id, "--json"]));
    let docs = show["attachments"].as_array().unwrap();
    let cv = docs
        .iter()
        .find(|a| a["filename"] == "cv.pdf")
        .unwrap_or_else(|| panic!("the CV is a document: {show}"));
    assert_eq!(cv["size"].as_u64(), Some(pdf.len() as u64));
    let total: u64 = docs.iter().map(|a| a["size"].as_u64().unwrap()).sum();
    assert!(
        total <= 2 * mail.len() as u64,
        "{total} bytes of documents for a {} byte mail: {docs:?}",
        mail.len()
    );
    // The forwarded mail as a whole is there once, the mails inside it not again.
    let emls = docs
        .iter()
        .filter(|a| a["content_type"] == "message/rfc822")
        .count();
    assert_eq!(emls, 1, "{docs:?}");
}
