//! The parser against fixtures and hand-made mail.

use super::*;
use crate::mail::filename::{MAX_FILENAME_BYTES, is_invisible};
use sha2::{Digest, Sha256};

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// (part, filename, content type, size, sha256) of each document.
fn docs(parsed: &ParsedMessage) -> Vec<(String, String, String, usize, String)> {
    parsed
        .documents
        .iter()
        .map(|d| {
            (
                d.part.clone(),
                d.filename.clone(),
                d.content_type.clone(),
                d.bytes.len(),
                sha(&d.bytes),
            )
        })
        .collect()
}

fn doc(
    part: &str,
    name: &str,
    ct: &str,
    size: usize,
    digest: &str,
) -> (String, String, String, usize, String) {
    (part.into(), name.into(), ct.into(), size, digest.into())
}

fn mb(name: Option<&str>, address: &str) -> Mailbox {
    Mailbox {
        name: name.map(str::to_string),
        address: address.to_string(),
    }
}

/// What every result must satisfy, whatever the input.
fn check_invariants(parsed: &ParsedMessage) {
    let h = &parsed.headers;
    let mut texts: Vec<&str> = Vec::new();
    for m in h.from.iter().chain(&h.to).chain(&h.cc).chain(&h.reply_to) {
        texts.push(&m.address);
        assert!(!m.address.is_empty());
        if let Some(n) = &m.name {
            texts.push(n);
        }
    }
    texts.extend(h.subject.as_deref());
    texts.extend(h.message_id.as_deref());
    texts.extend(h.in_reply_to.iter().map(String::as_str));
    texts.extend(h.references.iter().map(String::as_str));
    texts.extend(h.auto_submitted.as_deref());
    texts.extend(h.list_id.as_deref());
    texts.extend(h.precedence.as_deref());
    for t in texts {
        assert!(!t.chars().any(char::is_control), "control char in {t:?}");
    }
    if h.delivery_report {
        assert!(h.automatic);
    }
    assert!(parsed.documents.len() <= MAX_DOCUMENTS);
    for d in &parsed.documents {
        assert!(!d.filename.is_empty());
        assert!(d.filename.len() <= MAX_FILENAME_BYTES, "{:?}", d.filename);
        assert!(!d.filename.chars().any(is_invisible), "{:?}", d.filename);
        assert!(
            !d.filename
                .contains(['/', '\\', ':', '*', '?', '"', '<', '>', '|']),
            "{:?}",
            d.filename
        );
        assert!(!d.filename.starts_with('.'), "{:?}", d.filename);
        assert!(!d.part.is_empty());
        assert_eq!(d.content_type, d.content_type.to_ascii_lowercase());
        assert!(d.content_type.contains('/'), "{:?}", d.content_type);
    }
}

fn parse(raw: &[u8], null_sender: bool) -> ParsedMessage {
    let parsed = parse_message(raw, null_sender);
    check_invariants(&parsed);
    parsed
}

const APPLICATION_PDF: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/application-pdf.eml"
));
const RFC2231: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/rfc2231-filename.eml"
));
const ENCODED_WORD: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/encoded-word-filename.eml"
));
const FORWARDED: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/forwarded-rfc822.eml"
));
const INLINE_IMAGE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/inline-image.eml"
));
const WINMAIL: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/winmail-dat.eml"
));
const DSN: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/dsn-bounce.eml"
));
const AUTO_REPLY: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/auto-reply.eml"
));
const HOSTILE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/hostile-filenames.eml"
));
const NO_MESSAGE_ID: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/no-message-id.eml"
));
const PART_WITHOUT_NAME: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/part-without-name.eml"
));

const RFC822_IN_RFC822: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/rfc822-in-rfc822.eml"
));
const UNTERMINATED_IN_RFC822: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/unterminated-multipart-in-rfc822.eml"
));
const FOLDED_BOUNDARY: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/folded-boundary.eml"
));
const NO_BLANK_LINE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/part-without-blank-line.eml"
));
const TEXT_WITHOUT_SUBTYPE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/text-without-subtype.eml"
));
const BASE64_NO_PADDING: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/base64-without-padding.eml"
));

/// The small PDF and PNG of the fixtures written for issue 15.
const PDF_69: &str = "cfa3181c1ee36e8bce5e39f84959f4558ea7ba32c0e4539a8ab3c8ce8c716ec6";
const PNG_33: &str = "4ffd8bb30991e3a6f28d1d03f1aedcd02ccf8e0cc16bb9e969e7bc2bda1ddf03";

const CJK: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/cjk-charsets.eml"
));
const RAW_8BIT_WORD: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/raw-8bit-in-encoded-word.eml"
));
const WORDS_IN_NAME: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/encoded-words-in-quoted-name.eml"
));

const UUENCODE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/uuencode.eml"
));
const RAW_CJK: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/raw-8bit-cjk-names.eml"
));
const UNCLOSED_INNER: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/unterminated-inner-multipart.eml"
));
const WINMAIL_EMBEDDED: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/winmail-embedded-item.eml"
));
const NO_COMMA: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/address-without-comma.eml"
));
const BROKEN_MULTIPART: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/broken-multipart-body.eml"
));
const HEADERS_ONLY: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/headers-only.eml"
));

const WINMAIL_MESSAGE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/winmail-embedded-message.eml"
));
const WINMAIL_APPOINTMENT: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/winmail-appointment.eml"
));
const WINMAIL_RTF: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/winmail-rtf-body.eml"
));
const WINMAIL_OLE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/winmail-ole-object.eml"
));

const WINMAIL_CONTACT: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/winmail-contact.eml"
));

const ALL_FIXTURES: &[(&str, &[u8])] = &[
    ("winmail-contact", WINMAIL_CONTACT),
    ("base64-without-padding", BASE64_NO_PADDING),
    ("winmail-embedded-message", WINMAIL_MESSAGE),
    ("winmail-appointment", WINMAIL_APPOINTMENT),
    ("winmail-rtf-body", WINMAIL_RTF),
    ("winmail-ole-object", WINMAIL_OLE),
    ("uuencode", UUENCODE),
    ("raw-8bit-cjk-names", RAW_CJK),
    ("unterminated-inner-multipart", UNCLOSED_INNER),
    ("winmail-embedded-item", WINMAIL_EMBEDDED),
    ("address-without-comma", NO_COMMA),
    ("broken-multipart-body", BROKEN_MULTIPART),
    ("headers-only", HEADERS_ONLY),
    ("cjk-charsets", CJK),
    ("raw-8bit-in-encoded-word", RAW_8BIT_WORD),
    ("encoded-words-in-quoted-name", WORDS_IN_NAME),
    ("rfc822-in-rfc822", RFC822_IN_RFC822),
    ("unterminated-multipart-in-rfc822", UNTERMINATED_IN_RFC822),
    ("folded-boundary", FOLDED_BOUNDARY),
    ("part-without-blank-line", NO_BLANK_LINE),
    ("text-without-subtype", TEXT_WITHOUT_SUBTYPE),
    ("application-pdf", APPLICATION_PDF),
    ("rfc2231-filename", RFC2231),
    ("encoded-word-filename", ENCODED_WORD),
    ("forwarded-rfc822", FORWARDED),
    ("inline-image", INLINE_IMAGE),
    ("winmail-dat", WINMAIL),
    ("dsn-bounce", DSN),
    ("auto-reply", AUTO_REPLY),
    ("hostile-filenames", HOSTILE),
    ("no-message-id", NO_MESSAGE_ID),
    ("part-without-name", PART_WITHOUT_NAME),
];

#[test]
fn fixtures_use_crlf() {
    for (name, raw) in ALL_FIXTURES {
        for (i, &b) in raw.iter().enumerate() {
            if b == b'\n' {
                assert!(i > 0 && raw[i - 1] == b'\r', "{name}: bare LF at {i}");
            }
        }
    }
}

#[test]
fn application_pdf() {
    let p = parse(APPLICATION_PDF, false);
    let h = &p.headers;
    assert_eq!(
        h.from,
        Some(mb(Some("Anna Schmidt"), "anna.schmidt@posteo.de"))
    );
    assert_eq!(
        h.to,
        vec![mb(Some("Jobs Example GmbH"), "jobs@example-company.de")]
    );
    assert!(h.cc.is_empty() && h.reply_to.is_empty());
    assert_eq!(
        h.subject.as_deref(),
        Some("Bewerbung als Softwareentwicklerin (Ref. 2026-17)")
    );
    assert_eq!(h.date.as_deref(), Some("2026-03-02T09:14:37+01:00"));
    assert_eq!(
        h.message_id.as_deref(),
        Some("8f3c2a1e-5b7d-4e2a-9c1f-3d2e1a0b9c8d@posteo.de")
    );
    assert!(h.in_reply_to.is_empty() && h.references.is_empty());
    assert!(!h.automatic && !h.delivery_report);
    assert_eq!(
        docs(&p),
        vec![doc(
            "2",
            "Lebenslauf_Anna_Schmidt.pdf",
            "application/pdf",
            689,
            "732261b098863ba1aee96a49f47ce1b58ea47e8d4da4ab1cab0230400e792639"
        )]
    );
    assert!(p.documents[0].bytes.starts_with(b"%PDF-1.4"));
    assert!(p.documents[0].bytes.ends_with(b"%%EOF\n"));
    // The null sender alone makes a mail automatic.
    assert!(parse(APPLICATION_PDF, true).headers.automatic);
}

#[test]
fn rfc2231_filename() {
    let p = parse(RFC2231, false);
    let h = &p.headers;
    assert_eq!(
        h.from,
        Some(mb(Some("Jürgen Müller"), "juergen.mueller@gmx.de"))
    );
    assert_eq!(
        h.cc,
        vec![
            mb(Some("Personalabteilung"), "hr@example-company.de"),
            mb(None, "recruiting@example-company.de"),
        ]
    );
    assert_eq!(
        h.reply_to,
        vec![mb(Some("Jürgen Müller"), "jm.privat@example.org")]
    );
    assert_eq!(
        h.subject.as_deref(),
        Some("Bewerbung – Softwareentwickler (m/w/d)")
    );
    assert!(!h.automatic);
    assert_eq!(
        docs(&p),
        vec![
            doc(
                "2",
                "Lebenslauf_Jürgen_Müller_Softwareentwicklung_März_2026.pdf",
                "application/pdf",
                658,
                "f273ce692eab48a3a4b7fc3696b4f9c042b1acc55bbb8c4bc5f7fefa133997d3"
            ),
            doc(
                "3",
                "Zeugnisse_Jörg_Weiß.pdf",
                "application/pdf",
                643,
                "0fa74402bc06d7544b52b23e500cabb9bd59959678de9b4e2d0fd430f8dbe93c"
            ),
        ]
    );
}

#[test]
fn encoded_word_filename() {
    let p = parse(ENCODED_WORD, false);
    let h = &p.headers;
    assert_eq!(
        h.from,
        Some(mb(Some("Elif Özdemir"), "elif.oezdemir@gmail.com"))
    );
    assert_eq!(
        h.subject.as_deref(),
        Some("Bewerbung als Kauffrau für Büromanagement")
    );
    assert_eq!(h.date.as_deref(), Some("2026-03-04T07:50:48+01:00"));
    assert_eq!(
        h.message_id.as_deref(),
        Some("CAF3x9k+Jq2vB0dTn8Lw5yQh1rZ7sUoE4mPaXc6Gi9N_u2e=Vw@mail.gmail.com")
    );
    assert_eq!(
        docs(&p),
        vec![
            // Two adjacent encoded words: no space between them.
            doc(
                "2",
                "Bewerbungsunterlagen_Özdemir_Gül_2026.pdf",
                "application/pdf",
                642,
                "fb907678f7868db866419a7fcdf0e5228812ad97638589b04c0bbe812ef6795e"
            ),
            // Q encoding: "_" is a space.
            doc(
                "3",
                "Arbeitszeugnis Müller GmbH.pdf",
                "application/pdf",
                638,
                "6f2aee55d4f8e2833d01297739b33a7b55d74a06bb138c81007be3bc51db5601"
            ),
        ]
    );
}

#[test]
fn forwarded_rfc822() {
    let p = parse(FORWARDED, false);
    assert_eq!(
        p.headers.subject.as_deref(),
        Some("Fwd: Bewerbung als Backend-Entwickler")
    );
    assert!(!p.headers.automatic);
    assert_eq!(
        docs(&p),
        vec![
            doc(
                "2",
                "Bewerbung als Backend-Entwickler.eml",
                "message/rfc822",
                1786,
                "c0a10e012acf7a18852cd8096dab86b1aabcb06ac774819a2b0a290c9768f96a"
            ),
            doc(
                "2.2",
                "CV_Max_Mustermann.pdf",
                "application/pdf",
                670,
                "2f96d3ffddfce7f435bd85d82130656cadad5c5ca74251c0e98b55e5790f62a6"
            ),
            // base64-encoded message/rfc822 (not allowed, but sent)
            doc(
                "3",
                "Nachreichung_ Zeugnisse.eml",
                "message/rfc822",
                1504,
                "47b5e91ae6fbb0efc8c9584d85a35f074589ee6e47ff8974c40cb9f44004a88a"
            ),
            doc(
                "3.2",
                "Arbeitszeugnis.pdf",
                "application/pdf",
                646,
                "c43d8a58cfa377400cbd1265cbec08a7b486d4b96e4ad3aac5d03c533d8d1d5a"
            ),
        ]
    );
    // The attached mail is a whole mail again.
    let inner = parse(&p.documents[0].bytes, false);
    assert_eq!(
        inner.headers.from,
        Some(mb(Some("Max Mustermann"), "max.mustermann@web.de"))
    );
    assert_eq!(inner.documents.len(), 1);
    assert_eq!(inner.documents[0].bytes, p.documents[1].bytes);
}

#[test]
fn inline_image() {
    let p = parse(INLINE_IMAGE, false);
    assert_eq!(
        p.headers.message_id.as_deref(),
        Some("7A2B9C4D-1E3F-4A5B-9C8D-7E6F5A4B3C2D@icloud.com")
    );
    assert_eq!(
        docs(&p),
        vec![
            doc(
                "1.2",
                "logo.png",
                "image/png",
                93,
                "f0c0c8ab080ea47658748d25487dc6373e1f8d8dee936cb8825b0936af37828a"
            ),
            // Content-ID only, no name.
            doc(
                "1.3",
                "image.png",
                "image/png",
                74,
                "5b09c7e9bc10501645ed1cc1430a281e13dfd8c047ce8e40a327ca5be5fd8ab1"
            ),
            doc(
                "2",
                "Portfolio_Sophie_Keller.pdf",
                "application/pdf",
                654,
                "3f13af3e10d438b5680eb9c83a88831ca04a8b5b44e0c33c2ea6cbfbd924d4cc"
            ),
        ]
    );
}

#[test]
fn winmail_dat() {
    let p = parse(WINMAIL, false);
    assert_eq!(
        p.headers.from,
        Some(mb(Some("Jörg Weiß"), "joerg.weiss@weiss-logistik.de"))
    );
    assert_eq!(p.headers.date.as_deref(), Some("2026-03-06T10:40:01Z"));
    assert_eq!(
        docs(&p),
        vec![
            // Long name and MIME type from the MAPI properties; the TNEF
            // title is the 8.3 name LEBENS~1.PDF.
            doc(
                "2/tnef:1",
                "Lebenslauf Jörg Weiß.pdf",
                "application/pdf",
                657,
                "0356916de6bf69e5bc2749c61b58cee33cff458b014a6699c8d3efccbf5b0f17"
            ),
            // Title only; type from the extension.
            doc(
                "2/tnef:2",
                "Anschreiben.txt",
                "text/plain",
                67,
                "06c5c79195a0d8f56c5046724f01245e8b302c70462d400bcdf4118ecef08ec4"
            ),
        ]
    );
}

#[test]
fn dsn_bounce() {
    for null_sender in [true, false] {
        let p = parse(DSN, null_sender);
        let h = &p.headers;
        assert!(h.delivery_report);
        assert!(h.automatic);
        assert_eq!(
            h.from,
            Some(mb(
                Some("Mail Delivery System"),
                "MAILER-DAEMON@mail.example-company.de"
            ))
        );
        assert_eq!(h.auto_submitted.as_deref(), Some("auto-replied"));
        assert_eq!(h.date.as_deref(), Some("2026-03-02T10:02:11+01:00"));
        assert_eq!(
            docs(&p),
            vec![
                doc(
                    "2",
                    "delivery-status.txt",
                    "message/delivery-status",
                    462,
                    "b2bc78e8dba17bd825118a7345c2554cab2ef621ed0ed644d958f424f3740ea4"
                ),
                doc(
                    "3",
                    "Ihre Bewerbung ist eingegangen.eml",
                    "message/rfc822",
                    408,
                    "18414009d38a367018f59b3a5bdbbc564123825d7044f93401aaad1958c822df"
                ),
            ]
        );
    }
}

#[test]
fn auto_reply() {
    let p = parse(AUTO_REPLY, false);
    let h = &p.headers;
    assert!(h.automatic);
    assert!(!h.delivery_report);
    assert_eq!(h.auto_submitted.as_deref(), Some("auto-replied"));
    assert_eq!(
        h.subject.as_deref(),
        Some("Automatische Antwort: Ihre Nachricht an Herrn Becker")
    );
    assert_eq!(
        h.in_reply_to,
        vec!["interview-20260306-1514@example-company.de".to_string()]
    );
    assert_eq!(
        h.references,
        vec![
            "ack-20260301-1100@example-company.de".to_string(),
            "interview-20260306-1514@example-company.de".to_string()
        ]
    );
    assert_eq!(h.date.as_deref(), Some("2026-03-07T08:00:11Z"));
    assert!(p.documents.is_empty());
}

#[test]
fn hostile_filenames() {
    let p = parse(HOSTILE, false);
    let h = &p.headers;
    // Encoded CR LF NUL in a display name and a subject stay harmless.
    assert_eq!(
        h.from,
        Some(mb(
            Some("Evil Bcc: victim@example.org"),
            "attacker@example.net"
        ))
    );
    assert_eq!(h.subject.as_deref(), Some("Bewerbung Bcc: x@example.org"));
    let payload = "fd52546bba00351567fb775260ac731aba7fc976dca851232f043dae973d0779";
    let long = format!("{}.pdf", "A".repeat(196));
    assert_eq!(
        docs(&p),
        vec![
            doc("2", "passwd", "application/octet-stream", 18, payload),
            doc("3", "root", "application/octet-stream", 18, payload),
            doc("4", "hosts", "application/x-msdownload", 18, payload),
            doc("5", "Rechnung_fdp.exe", "application/pdf", 18, payload),
            doc("6", "CV_final.pdf", "application/pdf", 18, payload),
            doc("7", &long, "application/pdf", 18, payload),
            doc(
                "8",
                "report_1___final____.pdf",
                "application/pdf",
                18,
                payload
            ),
            doc("9", "hidden.pdf", "application/pdf", 18, payload),
            doc("10", "attachment.pdf", "application/pdf", 18, payload),
            doc("11", "_CON.txt", "text/plain", 18, payload),
        ]
    );
    assert_eq!(p.documents[5].filename.len(), 200);
}

#[test]
fn no_message_id_latin1() {
    let p = parse(NO_MESSAGE_ID, false);
    let h = &p.headers;
    assert_eq!(h.message_id, None);
    assert_eq!(h.from, Some(mb(Some("Jürgen Weiß"), "jw@example.org")));
    assert_eq!(h.to, vec![mb(None, "jobs@example-company.de")]);
    assert_eq!(
        h.subject.as_deref(),
        Some("Bewerbung für die Stelle als Lagerist")
    );
    assert_eq!(h.date.as_deref(), Some("2026-03-02T11:00:00+01:00"));
    assert!(!h.automatic);
    assert!(p.documents.is_empty());
}

#[test]
fn part_without_name() {
    let p = parse(PART_WITHOUT_NAME, false);
    assert_eq!(
        docs(&p),
        vec![
            doc(
                "2",
                "attachment.pdf",
                "application/pdf",
                642,
                "b36e5da7fdaca51f6c0c11344fa135eb3cb9f55613d7d6befc335e60949ccd73"
            ),
            doc(
                "3",
                "attachment.bin",
                "application/octet-stream",
                1024,
                "785b0751fc2c53dc14a4ce3d800e69ef9ce1009eb327ccf458afe09c242c26c9"
            ),
        ]
    );
}

// ---- headers and flags on small hand-made messages

fn msg(headers: &str) -> ParsedMessage {
    let raw = format!("{headers}\r\n\r\nbody\r\n")
        .replace("\n", "\r\n")
        .replace("\r\r", "\r");
    parse(raw.as_bytes(), false)
}

#[test]
fn automatic_flags() {
    let base = "From: a@example.org\nTo: b@example.org\nSubject: x";
    assert!(!msg(base).headers.automatic);
    for extra in [
        "Auto-Submitted: auto-generated",
        "Auto-Submitted: auto-replied (vacation)",
        "Precedence: bulk",
        "Precedence: JUNK",
        "Precedence: list",
        "Precedence: auto_reply",
        "List-Id: Jobs <jobs.lists.example.org>",
        "List-Unsubscribe: <mailto:leave@example.org>",
        "List-Post: <mailto:list@example.org>",
        "X-Autoreply: yes",
        "X-Autorespond: yes",
    ] {
        let h = msg(&format!("{base}\n{extra}")).headers;
        assert!(h.automatic && h.no_auto_reply, "{extra}");
        assert_eq!(
            h.list,
            extra.starts_with("List-") || extra.ends_with("list"),
            "{extra}"
        );
        assert_eq!(h.robot, !h.list, "{extra}");
    }
    // Requests not to be auto-answered: ordinary mail all the same.
    for extra in [
        "X-Auto-Response-Suppress: DR, OOF, AutoReply",
        "X-Auto-Response-Suppress: All",
        "X-Loop: jobs@example.org",
    ] {
        let h = msg(&format!("{base}\n{extra}")).headers;
        assert!(!h.automatic && h.no_auto_reply, "{extra}");
    }
    for extra in [
        "Auto-Submitted: no",
        "Auto-Submitted: No (really)",
        "Precedence: first-class",
        "X-Auto-Response-Suppress: DR, RN, NRN",
    ] {
        let h = msg(&format!("{base}\n{extra}")).headers;
        assert!(!h.automatic && !h.no_auto_reply, "{extra}");
    }
    for from in [
        "MAILER-DAEMON@example.org",
        "Postmaster <postmaster@example.org>",
        "jobs-request@lists.example.org",
        "owner-jobs@lists.example.org",
    ] {
        let p = msg(&format!("From: {from}\nSubject: x"));
        assert!(p.headers.automatic, "{from}");
    }
    let p = msg(&format!(
        "{base}\nList-Id: \"Jobs\"\n <jobs.lists.example.org>\nPrecedence:  bulk "
    ));
    assert_eq!(
        p.headers.list_id.as_deref(),
        Some("\"Jobs\" <jobs.lists.example.org>")
    );
    assert_eq!(p.headers.precedence.as_deref(), Some("bulk"));
}

#[test]
fn address_lists_and_ids() {
    let p = msg(concat!(
        "From: \"Doe, Jane\" <jane@example.org>, second@example.org\n",
        "To: Recruiting: a@example.org, \"B\" <b@example.org>;, c@example.org\n",
        "To: d@example.org\n",
        "Cc: undisclosed-recipients:;\n",
        "Message-ID: <id-1@example.org> <id-2@example.org>\n",
        "In-Reply-To: <x@example.org>\n",
        "References: <r1@example.org>\n <r2@example.org>\n\t<r3@\n example.org>\n",
        "Date: Fri, 30 Feb 2026 10:00:00 +0000\n",
        "Subject: =?UTF-8?Q?a=00b=0Dc?=",
    ));
    let h = &p.headers;
    assert_eq!(h.from, Some(mb(Some("Doe, Jane"), "jane@example.org")));
    assert_eq!(
        h.to,
        vec![
            mb(None, "a@example.org"),
            mb(Some("B"), "b@example.org"),
            mb(None, "c@example.org"),
            mb(None, "d@example.org"),
        ]
    );
    assert!(h.cc.is_empty());
    assert_eq!(h.message_id.as_deref(), Some("id-1@example.org"));
    assert_eq!(h.in_reply_to, vec!["x@example.org".to_string()]);
    assert_eq!(
        h.references,
        vec!["r1@example.org", "r2@example.org", "r3@example.org"]
    );
    assert_eq!(h.date, None, "30 February does not parse");
    assert_eq!(h.subject.as_deref(), Some("a b c"));

    let p = msg("Message-ID: bare-id@example.org\nReferences: a@x, b@y c@z");
    assert_eq!(p.headers.message_id.as_deref(), Some("bare-id@example.org"));
    assert_eq!(p.headers.references, vec!["a@x", "b@y", "c@z"]);
}

#[test]
fn references_are_capped_keeping_root_and_parents() {
    let mut refs = String::from("References:");
    for i in 0..3000 {
        refs.push_str(&format!("\n <r{i}@example.org>"));
    }
    let p = msg(&refs);
    let r = &p.headers.references;
    assert_eq!(r.len(), MAX_LIST_ENTRIES);
    assert_eq!(r[0], "r0@example.org");
    assert_eq!(r[1], "r2001@example.org");
    assert_eq!(r[r.len() - 1], "r2999@example.org");
}

#[test]
fn garbage_and_empty_input() {
    for raw in [
        &b""[..],
        b"\r\n",
        b"no header here",
        b"\xff\xfe\x00\x01",
        b"From: a@b\r\n",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!",
    ] {
        assert!(parse(raw, true).headers.automatic);
        let _ = parse(raw, false);
    }
}

#[test]
fn broken_base64_is_decoded_leniently() {
    let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/pdf; name=cv.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBE\r\nRi0x*LjQK\r\n--b--\r\n";
    let p = parse(raw, false);
    assert_eq!(p.documents.len(), 1);
    assert_eq!(p.documents[0].filename, "cv.pdf");
    assert_eq!(p.documents[0].bytes, b"%PDF-1.4\n");
}

#[test]
fn text_attachment_keeps_its_original_bytes() {
    let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Disposition: attachment; filename=notes.txt\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe=\r\n!\r\n--b\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\n--b--\r\n";
    let p = parse(raw, false);
    assert_eq!(docs(&p).len(), 2);
    assert_eq!(p.documents[0].filename, "notes.txt");
    assert_eq!(p.documents[0].content_type, "text/plain");
    assert_eq!(p.documents[0].bytes, b"Gr\xfc\xdfe!");
    assert_eq!(p.documents[1].filename, "attachment.ics");
    assert_eq!(p.documents[1].part, "3");
    assert_eq!(p.documents[1].bytes, b"BEGIN:VCALENDAR");
}

#[test]
fn single_part_message_bodies() {
    // A message whose whole body is a PDF.
    let raw = b"From: a@b.c\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n";
    let p = parse(raw, false);
    assert_eq!(docs(&p)[0].0, "1");
    assert_eq!(p.documents[0].filename, "attachment.pdf");
    assert_eq!(p.documents[0].bytes, b"%PDF-1.4\n");
    // A plain text mail has no documents.
    assert!(
        parse(b"From: a@b.c\r\n\r\nhello\r\n", false)
            .documents
            .is_empty()
    );
}

// ---- TNEF edge cases

/// One TNEF attribute record: level, id, length, data, checksum (also
/// for `winmail::tests`).
pub(super) fn tnef_attr(level: u8, id: u32, data: &[u8]) -> Vec<u8> {
    let mut out = vec![level];
    out.extend(id.to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out.extend(data);
    let sum = data.iter().fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
    out.extend(sum.to_le_bytes());
    out
}

fn tnef_stream(extra_message_attr: bool, files: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut out = vec![0x78, 0x9f, 0x3e, 0x22, 0x01, 0x00];
    out.extend(tnef_attr(1, 0x0008_9006, &[0, 0, 1, 0]));
    let mut cp = 1252u32.to_le_bytes().to_vec();
    cp.extend([0, 0, 0, 0]);
    out.extend(tnef_attr(1, 0x0006_9007, &cp));
    if extra_message_attr {
        // attParentID: valid TNEF, unknown to the tnef crate.
        out.extend(tnef_attr(1, 0x0001_800A, b"parent\0"));
    }
    let date = [0xEA, 0x07, 3, 0, 2, 0, 9, 0, 0, 0, 0, 0, 1, 0];
    let rend = [
        1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
    ];
    for (title, data) in files {
        out.extend(tnef_attr(2, 0x0006_9002, &rend));
        let mut t = title.as_bytes().to_vec();
        t.push(0);
        out.extend(tnef_attr(2, 0x0001_8010, &t));
        out.extend(tnef_attr(2, 0x0003_8012, &date));
        out.extend(tnef_attr(2, 0x0003_8013, &date));
        if let Some(data) = data {
            out.extend(tnef_attr(2, 0x0006_800F, data));
        }
        out.extend(tnef_attr(2, 0x0006_9005, &0u32.to_le_bytes()));
    }
    out
}

fn base64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn mail_with_winmail(tnef: &[u8]) -> Vec<u8> {
    format!(
        "From: a@b.c\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/ms-tnef; name=winmail.dat\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        base64(tnef)
    )
    .into_bytes()
}

#[test]
fn tnef_lenient_fallback_and_nothing_lost() {
    // The crate reads this one.
    let tnef = tnef_stream(
        false,
        &[("a.pdf", Some(b"%PDF-A")), ("b.docx", Some(b"PK"))],
    );
    assert_eq!(
        ::tnef::read_attachments(&tnef).map(|v| v.len()).ok(),
        Some(2)
    );
    let p = parse(&mail_with_winmail(&tnef), false);
    let names: Vec<_> = p
        .documents
        .iter()
        .map(|d| {
            (
                d.part.as_str(),
                d.filename.as_str(),
                d.content_type.as_str(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("2/tnef:1", "a.pdf", "application/pdf"),
            (
                "2/tnef:2",
                "b.docx",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            ),
        ]
    );

    // The crate refuses an attribute it does not know; the lenient scan
    // still finds the files.
    let tnef = tnef_stream(true, &[("a.pdf", Some(b"%PDF-A"))]);
    assert!(::tnef::read_attachments(&tnef).is_err());
    let p = parse(&mail_with_winmail(&tnef), false);
    assert_eq!(p.documents.len(), 1);
    assert_eq!(p.documents[0].part, "2/tnef:1");
    assert_eq!(p.documents[0].bytes, b"%PDF-A");

    // One file without data: the other is extracted and winmail.dat kept.
    let tnef = tnef_stream(false, &[("a.pdf", Some(b"%PDF-A")), ("lost.bin", None)]);
    let p = parse(&mail_with_winmail(&tnef), false);
    let parts: Vec<_> = p
        .documents
        .iter()
        .map(|d| (d.part.as_str(), d.filename.as_str()))
        .collect();
    assert_eq!(parts, vec![("2", "winmail.dat"), ("2/tnef:1", "a.pdf")]);
    assert_eq!(p.documents[0].bytes, tnef);

    // Not TNEF at all: kept as it is.
    let p = parse(&mail_with_winmail(b"garbage, not tnef"), false);
    assert_eq!(docs(&p).len(), 1);
    assert_eq!(p.documents[0].filename, "winmail.dat");
    assert_eq!(p.documents[0].content_type, "application/ms-tnef");
    assert_eq!(p.documents[0].bytes, b"garbage, not tnef");

    // Truncated in the middle of the data.
    let tnef = tnef_stream(false, &[("a.pdf", Some(b"%PDF-A-long-enough"))]);
    let cut = &tnef[..tnef.len() - 30];
    let p = parse(&mail_with_winmail(cut), false);
    assert_eq!(p.documents[0].part, "2");
    assert_eq!(p.documents[0].bytes, cut);
}

#[test]
fn mapi_props_are_bounded() {
    // Counts far beyond the data must not loop or allocate.
    let mut props = u32::MAX.to_le_bytes().to_vec();
    props.extend([0x1F, 0x10, 0x07, 0x37]); // multi-valued unicode
    props.extend(u32::MAX.to_le_bytes());
    props.extend(u32::MAX.to_le_bytes());
    let out = mapi_attach_props(&props);
    assert!(out.long_name.is_none());
    let _ = mapi_attach_props(&[]);
    let _ = mapi_attach_props(&[1, 0, 0, 0, 0x03, 0, 0x05, 0x37]);
}

// ---- hostile structure

#[test]
fn deeply_nested_multiparts_return() {
    let depth = 5_000;
    let mut raw = String::from("From: a@b.c\r\nSubject: deep\r\n");
    for i in 0..depth {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
        ));
    }
    raw.push_str("Content-Type: application/pdf\r\n\r\n%PDF\r\n");
    for i in (0..depth).rev() {
        raw.push_str(&format!("--b{i}--\r\n"));
    }
    let p = parse(raw.as_bytes(), false);
    assert_eq!(p.headers.subject.as_deref(), Some("deep"));
    // Too deep to follow; nothing else breaks.
    assert!(p.documents.is_empty());

    // Unclosed, and the same boundary at every level.
    let mut raw = String::from("Subject: deep\r\n");
    for _ in 0..depth {
        raw.push_str("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n");
    }
    let _ = parse(raw.as_bytes(), false);
}

#[test]
fn deeply_nested_messages_return() {
    let depth = 5_000;
    let mut raw = String::new();
    for i in 0..depth {
        raw.push_str(&format!(
            "Subject: level {i}\r\nContent-Type: multipart/mixed; boundary=\"m{i}x\"\r\n\r\n--m{i}x\r\nContent-Type: message/rfc822\r\n\r\n"
        ));
    }
    raw.push_str("Subject: bottom\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n");
    let p = parse(raw.as_bytes(), false);
    assert_eq!(p.headers.subject.as_deref(), Some("level 0"));
    // Attached mails are opened at most MAX_MESSAGE_DEPTH deep; here each
    // level is a near-complete copy of the mail, so the document budget
    // stops first, after three copies.
    let total: usize = p.documents.iter().map(|d| d.bytes.len()).sum();
    assert!(total <= document_budget(raw.len()));
    // The first attached mail is a document; the ones inside it are in
    // its bytes, not stored again; the one too deep to open is kept.
    assert!(total <= 2 * raw.len(), "{total} of {}", raw.len());
    let parts: Vec<_> = p
        .documents
        .iter()
        .map(|d| (d.part.as_str(), d.filename.as_str()))
        .collect();
    assert_eq!(
        parts,
        [
            ("1", "level 1.eml"),
            ("1.1.1.1.1.1.1.1.1.1.1", "message.eml")
        ]
    );
    assert!(p.documents_truncated);

    // base64-encoded attached mails, deeper than mail-parser unpacks them.
    let mut inner = b"Subject: bottom\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n".to_vec();
    for i in 0..6 {
        inner = format!(
            "Subject: level {i}\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--m--\r\n",
            base64(&inner)
        )
        .into_bytes();
    }
    let p = parse(&inner, false);
    let parts: Vec<_> = p.documents.iter().map(|d| d.part.as_str()).collect();
    // The first attached mail, and the PDF six mails down.
    assert_eq!(parts, vec!["1", "1.1.1.1.1.1.1"]);
    assert_eq!(p.documents[1].filename, "attachment.pdf");
    // A single-part body runs to the end of its message.
    assert_eq!(p.documents[1].bytes, b"%PDF\r\n");
}

#[test]
fn very_deep_attached_mails_do_not_overflow_the_stack() {
    // Parsed in place to any depth by mail-parser; dropping that tree
    // recursively would overflow this thread's stack.
    let depth = 50_000;
    let level = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n";
    let raw = format!("Subject: top\r\n{}", level.repeat(depth));
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || parse_message(raw.as_bytes(), false))
        .expect("spawn");
    let p = handle.join().expect("no panic, no overflow");
    assert_eq!(p.headers.subject.as_deref(), Some("top"));
    // The same boundary at every level: the outermost multipart claims
    // every `--b` line (as a mail client reads it), so the levels are
    // read as siblings, each a small attached mail.
    assert!(!p.documents.is_empty() && p.documents.len() <= MAX_DOCUMENTS);

    // Distinct boundaries: nested, opened at most MAX_MESSAGE_DEPTH deep.
    let mut raw = String::from("Subject: top\r\n");
    for i in 0..depth {
        raw.push_str(&format!("Content-Type: multipart/mixed; boundary=b{i}x\r\n\r\n--b{i}x\r\nContent-Type: message/rfc822\r\n\r\n"));
    }
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || parse_message(raw.as_bytes(), false))
        .expect("spawn");
    let p = handle.join().expect("no panic, no overflow");
    assert!(!p.documents.is_empty() && p.documents.len() <= MAX_MESSAGE_DEPTH + 1);
}

#[test]
fn nested_copies_stay_within_the_document_budget() {
    // A 200 KB file inside 8 levels of attached mails: every level is a
    // full copy of the one below, so without a budget the documents would
    // hold about 9 copies of the file.
    let file = "A".repeat(200 * 1024);
    let mut raw = format!("Subject: bottom\r\nContent-Type: application/pdf\r\n\r\n{file}\r\n");
    for i in 0..8 {
        raw = format!(
            "Subject: level {i}\r\nContent-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\nContent-Type: message/rfc822\r\n\r\n{raw}\r\n--b{i}--\r\n"
        );
    }
    let p = parse(raw.as_bytes(), false);
    let total: usize = p.documents.iter().map(|d| d.bytes.len()).sum();
    assert!(total <= document_budget(raw.len()), "{total} > budget");
    // The outermost attached mail, which holds everything, is kept.
    assert_eq!(p.documents[0].part, "1");
    assert!(p.documents[0].bytes.len() > file.len());
}

#[test]
fn matcher_inputs_are_read() {
    let p = parse(
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/forwarded-rfc822.eml"
        )),
        false,
    );
    let authors: Vec<&str> = p
        .attached_authors
        .iter()
        .map(|m| m.address.as_str())
        .collect();
    assert_eq!(authors.first(), Some(&"max.mustermann@web.de"));
    assert!(!p.text.is_empty());

    let raw = b"From: 'Jonas Becker' via Bewerbungen <bewerbungen@acme-group.example>\r\n\
X-Original-From: Jonas Becker <jonas.becker@gmx.example>\r\n\
X-Microsoft-Original-Message-ID: <AM0PR01MB1234@outlook.example>\r\n\
Content-Language: de-DE\r\n\
Subject: Bewerbung\r\n\r\n<p>Hallo &amp; guten Tag</p>\r\n";
    let p = parse(raw, false);
    let h = &p.headers;
    assert_eq!(
        h.x_original_from.as_ref().map(|m| m.address.as_str()),
        Some("jonas.becker@gmx.example")
    );
    assert_eq!(
        h.x_original_from.as_ref().and_then(|m| m.name.as_deref()),
        Some("Jonas Becker")
    );
    assert_eq!(
        h.original_message_id.as_deref(),
        Some("AM0PR01MB1234@outlook.example")
    );
    assert_eq!(h.content_language.as_deref(), Some("de"));
    assert!(p.text.contains("Hallo"));
}

#[test]
fn many_headers_return() {
    let mut raw = String::from("From: a@b.c\r\nSubject: many\r\n");
    for i in 0..100_000 {
        raw.push_str(&format!("X-Header-{i}: value {i}\r\n"));
    }
    for i in 0..5_000 {
        raw.push_str(&format!("To: r{i}@example.org\r\n"));
    }
    raw.push_str("\r\nbody\r\n");
    let p = parse(raw.as_bytes(), false);
    assert_eq!(p.headers.subject.as_deref(), Some("many"));
    assert_eq!(p.headers.to.len(), MAX_LIST_ENTRIES);
}

#[test]
fn attachment_after_rfc822_in_rfc822_is_kept() {
    let p = parse(RFC822_IN_RFC822, false);
    assert_eq!(
        docs(&p),
        vec![
            doc(
                "2",
                "Fwd_ Bewerbung.eml",
                "message/rfc822",
                205,
                "2d9d00cd923c42214f53dc30838e33e85a275306067c2071d0217f310514c840"
            ),
            doc("3", "Lebenslauf.pdf", "application/pdf", 69, PDF_69),
        ]
    );
    assert_eq!(
        p.attached_authors,
        vec![mb(Some("Max Muster"), "max@example.net")]
    );
}

#[test]
fn unterminated_multipart_in_rfc822_keeps_the_parents_parts() {
    let p = parse(UNTERMINATED_IN_RFC822, false);
    assert_eq!(
        docs(&p),
        vec![
            doc(
                "2",
                "Bewerbung.eml",
                "message/rfc822",
                343,
                "a5580f558022b57db916da8cc35515d41d361a69dcfd8ea175d2937439871c37"
            ),
            doc("2.2", "inner.png", "image/png", 33, PNG_33),
            doc("3", "foto.png", "image/png", 33, PNG_33),
            doc("4", "Lebenslauf.pdf", "application/pdf", 69, PDF_69),
        ]
    );
}

#[test]
fn folded_boundary_parameter() {
    let p = parse(FOLDED_BOUNDARY, false);
    assert_eq!(
        docs(&p),
        vec![
            doc("1.2", "Lebenslauf.pdf", "application/pdf", 69, PDF_69),
            doc(
                "2",
                "smime.p7s",
                "application/pkcs7-signature",
                52,
                "90c3d8d4f2c554779448932313090e7f6b954312214c011a3c05c1d864c587a9"
            ),
        ]
    );
    assert_eq!(p.text.trim_end(), "Anbei mein Lebenslauf.");
}

#[test]
fn part_without_blank_line_after_its_headers() {
    let p = parse(NO_BLANK_LINE, false);
    assert_eq!(
        docs(&p),
        vec![doc("2", "Lebenslauf.pdf", "application/pdf", 69, PDF_69)]
    );
    // A part of headers only, right before the next boundary: empty, not
    // read as headers of the part after it.
    let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/octet-stream; name=a.bin\r\n--b\r\nContent-Type: application/pdf; name=cv.pdf\r\n\r\n%PDF\r\n--b--\r\n";
    let p = parse(raw, false);
    let names: Vec<_> = p
        .documents
        .iter()
        .map(|d| (d.filename.as_str(), d.bytes.len()))
        .collect();
    assert_eq!(names, vec![("a.bin", 0), ("cv.pdf", 4)]);
}

/// A base64 part whose last group has no `=` padding (some scripts and
/// gateways strip it) keeps its last bytes: mail-parser dropped the
/// unfinished group at the boundary, storing a CV one or two bytes short.
#[test]
fn base64_without_its_padding_keeps_every_byte() {
    let p = parse(BASE64_NO_PADDING, false);
    assert_eq!(
        docs(&p),
        vec![
            doc(
                "2",
                "Lebenslauf.pdf",
                "application/pdf",
                1001,
                "2e044028d10687c6922f86d6a0ee7eb48458cbf0723cbe275ebff3f25faa8e69"
            ),
            doc(
                "3",
                "Zeugnis.pdf",
                "application/pdf",
                1000,
                "369e9b095401d555728ac73657775b40861158d1ff329f53ec2f88afc25e1688"
            ),
        ]
    );
    // Padding in the middle (two encoded files run together) is left to
    // mail-parser, which reads each group as it ends.
    let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nbody\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=x.bin\r\nContent-Transfer-Encoding: base64\r\n\r\nQQ==QkM\r\n--b--\r\n";
    let p = parse(raw, false);
    assert_eq!(p.documents.len(), 1);
    assert!(
        p.documents[0].bytes.starts_with(b"A"),
        "{:?}",
        p.documents[0].bytes
    );
}

#[test]
fn text_without_subtype_is_text_plain() {
    let p = parse(TEXT_WITHOUT_SUBTYPE, false);
    assert_eq!(
        docs(&p),
        vec![doc("2", "Lebenslauf.pdf", "application/pdf", 69, PDF_69)]
    );
    assert_eq!(
        p.text.trim_end(),
        "Sehr geehrte Damen und Herren, anbei mein Lebenslauf."
    );
    // As an attachment it is a text document.
    let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nbody\r\n--b\r\nContent-Type: text\r\nContent-Disposition: attachment; filename=notes\r\n\r\nnotes\r\n--b--\r\n";
    let p = parse(raw, false);
    assert_eq!(p.documents.len(), 1);
    assert_eq!(p.documents[0].content_type, "text/plain");
    assert_eq!(p.documents[0].bytes, b"notes");
}

#[test]
fn cjk_charsets() {
    let p = parse(CJK, false);
    assert_eq!(
        p.headers.from,
        Some(mb(Some("山田 太郎"), "taro.yamada@example.jp"))
    );
    assert_eq!(p.headers.subject.as_deref(), Some("応募書類の送付"));
    assert_eq!(p.text.trim_end(), "よろしくお願いします。");
    let pdf = |part: &str, name: &str| doc(part, name, "application/pdf", 69, PDF_69);
    assert_eq!(
        docs(&p),
        vec![
            pdf("2", "履歴書.pdf"),
            pdf("3", "職務経歴書.pdf"),
            pdf("4", "成績証明書.pdf"),
            pdf("5", "이력서.pdf"),
            pdf("6", "자기소개서.pdf"),
            pdf("7", "简历.pdf"),
            pdf("8", "推荐信.pdf"),
            pdf("9", "履歷表.pdf"),
        ]
    );
    // A raw ISO-2022-JP subject, as old Japanese clients send it.
    let p = msg("Subject: \x1b$BMzNr=q\x1b(B\r\n");
    assert_eq!(p.headers.subject.as_deref(), Some("履歴書"));
}

#[test]
fn raw_8bit_inside_an_encoded_word_is_decoded_once() {
    let p = parse(RAW_8BIT_WORD, false);
    assert_eq!(
        p.headers.from,
        Some(mb(Some("Jörg Frösche"), "joerg@example.de"))
    );
    assert_eq!(p.headers.subject.as_deref(), Some("Bewerbung Frösche"));
    assert_eq!(
        docs(&p),
        vec![
            doc("2", "Lebenslauf Jörg.pdf", "application/pdf", 69, PDF_69),
            doc("3", "Zeugnis Jörg.pdf", "application/pdf", 69, PDF_69),
        ]
    );
}

#[test]
fn encoded_words_beside_text_in_a_quoted_name() {
    let p = parse(WORDS_IN_NAME, false);
    assert_eq!(
        docs(&p),
        vec![
            doc(
                "2",
                "Lebenslauf_Jörg_Weiß.pdf",
                "application/pdf",
                69,
                PDF_69
            ),
            doc(
                "3",
                "because_ofpath3d-compress.gif",
                "image/gif",
                6,
                "610f5ae4d76e332636a17bd357fd6ce99029316a99d320280d4d77a746bf29e8"
            ),
            doc("4", "Zeugnis 2024.pdf", "application/pdf", 69, PDF_69),
        ]
    );
}

#[test]
fn uuencoded_parts_and_blocks_are_decoded() {
    let p = parse(UUENCODE, false);
    assert_eq!(
        docs(&p),
        vec![
            doc("1/uu:1", "Lebenslauf.pdf", "application/pdf", 69, PDF_69),
            doc("2", "greenball.png", "image/png", 33, PNG_33),
        ]
    );
    assert!(p.text.contains("anbei mein Lebenslauf."));
}

#[test]
fn broken_multiparts_are_body_not_documents() {
    let p = parse(BROKEN_MULTIPART, false);
    assert_eq!(
        docs(&p),
        vec![doc("3", "Lebenslauf.pdf", "application/pdf", 69, PDF_69)]
    );
}

#[test]
fn headers_only_mail_has_no_documents() {
    let p = parse(HEADERS_ONLY, false);
    assert_eq!(p.headers.subject.as_deref(), Some("Bewerbung"));
    assert!(p.documents.is_empty(), "{:?}", docs(&p));
    assert!(!p.documents_truncated);
}

#[test]
fn addresses_without_comma_and_comments_in_names() {
    let p = parse(NO_COMMA, false);
    let h = &p.headers;
    assert_eq!(h.from, Some(mb(None, "jan@example.com")));
    assert_eq!(
        h.to,
        vec![
            mb(None, "jobs@example-company.de"),
            mb(None, "hr@example-company.de"),
            mb(Some("Berg, Jan (HR)"), "jan.hr@example.com"),
        ]
    );
    assert_eq!(
        h.cc,
        vec![
            mb(Some("Joerg Weiss"), "joerg@example.de"),
            mb(Some("Anna Berg"), "anna@example.org"),
        ]
    );
}

#[test]
fn angle_addresses_without_a_comma_are_read_apart() {
    let p = parse(
        b"From: a@b.example\r\nTo: <a@x.example> <b@y.example>\r\n\
Cc: Anna <a@x.example> \"Berg, Bob\" <b@y.example> (privat), Carl <c@z.example>\r\n\
Reply-To: <r@x.example>\r\nSubject: s\r\n\r\nx\r\n",
        false,
    );
    let h = &p.headers;
    assert_eq!(h.to, vec![mb(None, "a@x.example"), mb(None, "b@y.example")]);
    assert_eq!(
        h.cc,
        vec![
            mb(Some("Anna"), "a@x.example"),
            mb(Some("Berg, Bob"), "b@y.example"),
            mb(Some("Carl"), "c@z.example"),
        ]
    );
    assert_eq!(h.reply_to, vec![mb(None, "r@x.example")]);
    assert_eq!(with_missing_commas(b" <a@x.example>, <b@y.example>"), None);
    assert_eq!(with_missing_commas(b" \"<a@x> <b@y>\" <c@z.example>"), None);
}

#[test]
fn winmail_with_an_embedded_item_is_kept() {
    let p = parse(WINMAIL_EMBEDDED, false);
    assert_eq!(
        docs(&p),
        vec![
            doc(
                "2",
                "winmail.dat",
                "application/ms-tnef",
                802,
                "3ce3e866358289bf74c627c78dd7758edb1ad2299c9e27af34a218e751b6b6dc"
            ),
            doc("2/tnef:1", "Lebenslauf.pdf", "application/pdf", 69, PDF_69),
            doc(
                "2/tnef:2",
                "Anschreiben.txt",
                "text/plain",
                57,
                "ba4c94bec220d5dfc55ec8ae7660ea15d9da41942ffa3b89b72ace22e17862d7"
            ),
        ]
    );
}

#[test]
fn unterminated_inner_multipart_keeps_the_parents_parts() {
    let p = parse(UNCLOSED_INNER, false);
    assert_eq!(
        docs(&p),
        vec![doc("2", "Lebenslauf.pdf", "application/pdf", 69, PDF_69)]
    );
    assert_eq!(p.text.trim_end(), "Anbei mein Lebenslauf.");
    // Three levels, the two inner ones unclosed; attached mails in them.
    let raw = b"Content-Type: multipart/mixed; boundary=\"1\"\r\n\r\n--1\r\nContent-Type: multipart/mixed; boundary=\"2\"\r\n\r\n--2\r\nContent-Type: multipart/mixed; boundary=\"3\"\r\n\r\n--3\r\nContent-Type: message/rfc822\r\n\r\nSubject: a\r\n\r\n1\r\n--1\r\nContent-Type: message/rfc822\r\n\r\nSubject: b\r\n\r\n22\r\n--1--\r\n";
    let p = parse(raw, false);
    let got: Vec<_> = p
        .documents
        .iter()
        .map(|d| (d.part.as_str(), d.filename.as_str(), d.bytes.len()))
        .collect();
    assert_eq!(got, vec![("1.1.1", "a.eml", 15), ("2", "b.eml", 16)]);
}

#[test]
fn many_delimiter_like_lines_in_a_deep_leaf_return() {
    // 100 nested multiparts, then a leaf of 300,000 lines that look
    // like delimiters but are none of the enclosing boundaries.
    let mut raw = String::from("Subject: lines\r\n");
    for i in 0..100 {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}x\"\r\n\r\n--b{i}x\r\n"
        ));
    }
    raw.push_str("Content-Type: application/octet-stream; name=a.bin\r\n\r\n");
    raw.push_str(&"--zz\r\n".repeat(300_000));
    let started = std::time::Instant::now();
    let p = parse(raw.as_bytes(), false);
    assert_eq!(p.headers.subject.as_deref(), Some("lines"));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn raw_8bit_names_in_the_texts_cjk_charset() {
    let p = parse(RAW_CJK, false);
    assert_eq!(p.headers.subject.as_deref(), Some("입사 지원서"));
    assert_eq!(
        docs(&p),
        vec![doc("2", "이력서.pdf", "application/pdf", 69, PDF_69)]
    );
    // Raw Latin-1 in a mail without a CJK text stays windows-1252.
    assert_eq!(
        msg("Subject: Fr\u{f6}sche").headers.subject.as_deref(),
        Some("Frösche")
    );
    let raw = b"Subject: Fr\xf6sche\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nhi\r\n";
    assert_eq!(
        parse(raw, false).headers.subject.as_deref(),
        Some("Frösche")
    );
}

#[test]
fn many_parts_are_capped() {
    let mut raw = String::from("Content-Type: multipart/mixed; boundary=b\r\n\r\n");
    for _ in 0..20_000 {
        raw.push_str("--b\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n");
    }
    raw.push_str("--b--\r\n");
    let p = parse(raw.as_bytes(), false);
    assert_eq!(p.documents.len(), MAX_DOCUMENTS);
    assert_eq!(p.documents[999].part, "1000");
    assert!(p.documents_truncated);
    for (name, raw) in ALL_FIXTURES {
        assert!(!parse(raw, false).documents_truncated, "{name}");
    }
}

/// Deterministic mutations of every fixture: no panic, invariants hold.
#[test]
fn mutated_fixtures_never_panic() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    const TOKENS: &[&[u8]] = &[
        b"\r\n",
        b"\r\n\r\n",
        b"--",
        b"\"",
        b";",
        b"=?UTF-8?B?",
        b"=?",
        b"?=",
        b"*0*=",
        b"*1=",
        b"%",
        b"\\",
        b"(",
        b")",
        b"<",
        b">",
        b"\0",
        b"\xc3",
        b"\xff",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Type: application/ms-tnef\r\n",
        b"\x78\x9f\x3e\x22",
    ];
    let mut runs = 0;
    for (_, fixture) in ALL_FIXTURES {
        for _ in 0..120 {
            let mut data = fixture.to_vec();
            for _ in 0..1 + next() % 8 {
                let len = data.len().max(1) as u64;
                let at = (next() % len) as usize;
                match next() % 6 {
                    0 => {
                        if let Some(b) = data.get_mut(at) {
                            *b ^= 1 << (next() % 8);
                        }
                    }
                    1 => {
                        let token = TOKENS[(next() % TOKENS.len() as u64) as usize];
                        let at = at.min(data.len());
                        data.splice(at..at, token.iter().copied());
                    }
                    2 => {
                        let end = (at + (next() % 64) as usize).min(data.len());
                        if at < end {
                            data.drain(at..end);
                        }
                    }
                    3 => {
                        let end = (at + (next() % 256) as usize).min(data.len());
                        if at < end {
                            let copy = data[at..end].to_vec();
                            data.splice(at..at, copy);
                        }
                    }
                    4 => data.truncate(at),
                    _ => {
                        if let Some(b) = data.get_mut(at) {
                            *b = (next() & 0xff) as u8;
                        }
                    }
                }
            }
            let _ = parse(&data, next() % 2 == 0);
            runs += 1;
        }
    }
    assert_eq!(runs, ALL_FIXTURES.len() * 120);
}

#[test]
fn winmail_embedded_message_yields_its_files() {
    // A forward (IPM.Note, RTF body) embedded in winmail.dat, holding a PDF
    // and a forward of a forward (plain body, a PDF); then a plain file.
    let p = parse(WINMAIL_MESSAGE, false);
    assert_eq!(
        docs(&p),
        vec![
            // Kept: the items' senders, recipients and dates are only there.
            doc(
                "2",
                "winmail.dat",
                "application/ms-tnef",
                1817,
                "a261d365fdbdcf9a1d86d7aaba6a06fde7dadc40899b19287fbd4f15c734bae9"
            ),
            doc(
                "2/tnef:1",
                "WG_ Bewerbung Jan Berg.rtf",
                "application/rtf",
                165,
                "84514ed6c845404a9c73988ca6f7bf1e92788e7d6490d44845ae5da2c88c428b"
            ),
            doc(
                "2/tnef:1/tnef:1",
                "Lebenslauf Jan Berg.pdf",
                "application/pdf",
                69,
                PDF_69
            ),
            doc(
                "2/tnef:1/tnef:2",
                "Bewerbung Jan Berg.txt",
                "text/plain",
                53,
                "01215099e0950f8ae05a687bcb5f5ee5b6ae44c81ed2fe1b654fb0e67119cdfe"
            ),
            doc(
                "2/tnef:1/tnef:2/tnef:1",
                "Zeugnis.pdf",
                "application/pdf",
                69,
                PDF_69
            ),
            doc(
                "2/tnef:2",
                "Notiz.txt",
                "text/plain",
                28,
                "bbe262ab0dbdb42f225036f6488b962d0ef5735e602107c312c161952293b195"
            ),
        ]
    );
    assert!(p.documents[1].bytes.starts_with(b"{\\rtf1\\ansi"));
    assert!(!p.documents_truncated);
}

#[test]
fn winmail_appointment_is_an_ics_and_a_task_its_body() {
    let p = parse(WINMAIL_APPOINTMENT, false);
    assert_eq!(
        docs(&p),
        vec![
            doc(
                "2",
                "winmail.dat",
                "application/ms-tnef",
                1485,
                "39b8204016fe9435f3fc6124fdd01bd334234736de7e8b09c6b9df38bc419f77"
            ),
            doc(
                "2/tnef:1",
                "Vorstellungsgespräch Jan Berg.ics",
                "text/calendar",
                379,
                "e3e80b31c24850f6c89f062fa562ca5cc860115c7af3b54d6b23c59b3637c7c2"
            ),
            doc(
                "2/tnef:1/tnef:1",
                "Anfahrt.pdf",
                "application/pdf",
                69,
                PDF_69
            ),
            doc(
                "2/tnef:2",
                "Unterlagen prüfen.txt",
                "text/plain",
                48,
                "911d25622ba6754129e571adb76d7fd6ff1c6ac326d6190ac551de001520e9f9"
            ),
        ]
    );
    let ics = String::from_utf8_lossy(&p.documents[1].bytes).into_owned();
    for line in [
        "BEGIN:VEVENT\r\n",
        "DTSTART:20260313T093000Z\r\n",
        "DTEND:20260313T103000Z\r\n",
        "SUMMARY:Vorstellungsgespräch Jan Berg\r\n",
        "LOCATION:Hauptstraße 1\\, Köln\r\n",
        "DESCRIPTION:Bitte bringen Sie Ihre Zeugnisse mit\\; Raum 2.14\\, Empfang.\r\n",
    ] {
        assert!(ics.contains(line), "{line:?} in {ics}");
    }
}

#[test]
fn winmail_rtf_body_is_a_document_when_the_mail_has_no_other() {
    // Outlook in RTF mode: the mail is only winmail.dat. Everything in it
    // is unpacked, so winmail.dat itself is not listed.
    let p = parse(WINMAIL_RTF, false);
    assert_eq!(
        docs(&p),
        vec![
            doc(
                "1/tnef:body",
                "body.rtf",
                "application/rtf",
                241,
                "d22759a5dd7443ad87db35033579251b3614c9d99901ae7d407006afd08f333a"
            ),
            doc("1/tnef:1", "Lebenslauf.pdf", "application/pdf", 69, PDF_69),
        ]
    );
    assert!(
        p.documents[0]
            .bytes
            .ends_with(b"J\\'f6rg Wei\\'df\\par}\r\n")
    );
    // The same winmail.dat beside a text body: the RTF is that body in
    // another form, not a file.
    let tnef = winmail_of(WINMAIL_RTF);
    let p = parse(&mail_with_winmail(&tnef), false);
    assert_eq!(
        docs(&p),
        vec![doc(
            "2/tnef:1",
            "Lebenslauf.pdf",
            "application/pdf",
            69,
            PDF_69
        )]
    );
}

#[test]
fn winmail_ole_object_yields_the_packaged_file() {
    // An OLE Package (a compound file, \x01Ole10Native) holding a PDF: the
    // PDF, named from the package's label; nothing is left in winmail.dat.
    let p = parse(WINMAIL_OLE, false);
    assert_eq!(
        docs(&p),
        vec![doc(
            "2/tnef:1",
            "Lebenslauf.pdf",
            "application/pdf",
            69,
            PDF_69
        )]
    );
}

#[test]
fn winmail_contact_is_a_vcard() {
    // A referee's contact card forwarded from Outlook (IPM.Contact): a
    // vCard a recruiter can import, not the card's note as a `.txt`.
    let p = parse(WINMAIL_CONTACT, false);
    assert_eq!(
        docs(&p),
        vec![
            // Kept: the item's other properties are only there.
            doc(
                "2",
                "winmail.dat",
                "application/ms-tnef",
                1714,
                "6c0be9b5717ccc4a1ec9f420e48d3f251e01ddbd49ecd88e50c656af3e1c1096"
            ),
            doc(
                "2/tnef:1",
                "Dr. Anna Berg.vcf",
                "text/vcard",
                447,
                "d6c0e9679d0b273ef323958976896167f81d36e7c652b5ad769d5225edba3842"
            ),
            doc("2/tnef:2", "Lebenslauf.pdf", "application/pdf", 69, PDF_69),
        ]
    );
    let vcf = String::from_utf8_lossy(&p.documents[1].bytes).into_owned();
    assert_eq!(
        vcf,
        "BEGIN:VCARD\r\n\
VERSION:3.0\r\n\
PRODID:-//jobmail//winmail.dat//EN\r\n\
N:Berg;Anna;;Dr.;\r\n\
FN:Dr. Anna Berg\r\n\
ORG:Berg\\, Schmidt & Partner\\; Köln;Logistik\r\n\
TITLE:Leiterin Logistik\r\n\
EMAIL;TYPE=INTERNET,PREF:anna.berg@example.org\r\n\
EMAIL;TYPE=INTERNET:a.berg@example.com\r\n\
TEL;TYPE=WORK,VOICE:+49 221 123456-0\r\n\
TEL;TYPE=HOME,VOICE:0221 987654\r\n\
TEL;TYPE=CELL:+49 171 2345678\r\n\
NOTE:Referenz für Jan Berg (2019–2024).\\nAm besten vormittags anrufen.\r\n\
END:VCARD\r\n"
    );
    assert!(!p.documents_truncated);
}

/// The winmail.dat of a fixture, as attached.
fn winmail_of(raw: &[u8]) -> Vec<u8> {
    let message = MessageParser::default().parse(raw).expect("a mail");
    message
        .parts
        .iter()
        .find_map(|p| match &p.body {
            PartType::Binary(b) if part_mime(p) == "application/ms-tnef" => Some(b.to_vec()),
            _ => None,
        })
        .expect("a winmail.dat")
}
