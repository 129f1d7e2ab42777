//! Hostile input with a fixed, small budget: property tests over the same
//! entry points as the fuzz targets in `fuzz/` (the checks are shared,
//! `checks.rs`). No panic, no hang (inputs are bounded), nothing but
//! CRLF.CRLF ends DATA, the bytes stored are the bytes sent, a render never
//! adds a header, replies are well-formed. Deterministic: a fixed seed and
//! no failure files, so a run in CI is the same run every time.

mod checks;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(19),
        max_shrink_iters: 2000,
        ..Config::default()
    }
}

/// Bytes drawn mostly from the ones that matter to SMTP and MIME.
fn smtp_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b".\r\n:;=\"-<>@ \t".to_vec()),
        2 => b'a'..=b'z',
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..max)
}

/// Text made of lines a mail or a template value could hold.
fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\r\n".to_string()),
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just("Bcc: victim@example.org".to_string()),
        Just("\r\nSubject: injected\r\n".to_string()),
        Just("{{ 7*7 }}".to_string()),
        Just("{% raw %}".to_string()),
        Just("=?utf-8?q?=0D=0ABcc:_x@y?=".to_string()),
        Just("\u{202e}\u{0}\u{85}\u{2028}".to_string()),
        "[ -~]{0,12}",
        "\\PC{0,6}",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..40, 0..12)
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn data_only_crlf_dot_crlf_ends_and_unstuffing_is_exact(stream in smtp_bytes(200), cuts in cuts()) {
        checks::data_any_stream(&stream, &cuts);
        checks::data_roundtrip(&stream, &cuts);
    }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn mime_parse_and_documents_hold_for_hostile_mail(mail in mime_mail()) {
        checks::parse(&mail);
    }

    #[test]
    fn forward_finder_never_panics_and_agrees_with_its_offset(text in forwarded_text()) {
        checks::forward(&text);
    }

    #[test]
    fn matcher_never_panics_on_hostile_mail(mail in mime_mail(), sender in "[a-z.@<>+=-]{0,20}", rcpt in "[a-z.@+=#-]{0,30}") {
        let company = checks::company();
        checks::matcher(&mail, &sender, &[rcpt, "jobs@acme.example".into()], &company);
    }

    #[test]
    fn a_render_never_adds_a_header(
        a in hostile_text(), b in hostile_text(), c in hostile_text(),
        d in hostile_text(), e in hostile_text(), f in hostile_text(),
        gender in prop::sample::select(vec!["female", "male", "diverse", "unknown", "\r\nBcc: x"]),
    ) {
        checks::render_hostile([&a, &b, &c, &d, &e, &f], gender);
    }
}

/// Mails with headers, multipart boundaries, encodings and attachments in
/// hostile combinations.
fn mime_mail() -> impl Strategy<Value = Vec<u8>> {
    let part = prop_oneof![
        Just("From: Erika <erika@example.org>\r\n".to_string()),
        Just("To: jobs@acme.example\r\n".to_string()),
        Just("Subject: =?utf-8?b?QmV3ZXJidW5n?= [#abc-123]\r\n".to_string()),
        Just("Content-Type: multipart/mixed; boundary=\"b\"\r\n".to_string()),
        Just("Content-Type: multipart/mixed; boundary=b\r\n".to_string()),
        Just("Content-Type: message/rfc822\r\n".to_string()),
        Just("Content-Type: application/ms-tnef; name=winmail.dat\r\n".to_string()),
        Just("Content-Disposition: attachment; filename*=utf-8''..%2F..%2Fetc%2Fpasswd%E2%80%AE.pdf\r\n".to_string()),
        Just("Content-Disposition: attachment; filename=\"CON\\u0000.txt\"\r\n".to_string()),
        Just("Content-Transfer-Encoding: base64\r\n".to_string()),
        Just("Content-Transfer-Encoding: quoted-printable\r\n".to_string()),
        Just("\r\n".to_string()),
        Just("--b\r\n".to_string()),
        Just("--b--\r\n".to_string()),
        Just("JVBERi0xLjQKJcfs\r\n".to_string()),
        Just("=E2=80=AE=0D=0A\r\n".to_string()),
        Just("---------- Forwarded message ---------\r\nFrom: Max <max@example.com>\r\n".to_string()),
        "[ -~]{0,30}\r\n",
    ];
    prop::collection::vec(part, 0..30).prop_map(|v| v.concat().into_bytes())
}

fn forwarded_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("---------- Forwarded message ---------".to_string()),
        Just("-----Ursprüngliche Nachricht-----".to_string()),
        Just("> Von: Max Mustermann <max@example.com>".to_string()),
        Just("From: \"Doe, Jane\" <mailto:jane@example.org>".to_string()),
        Just("De : Zoé <zoé@exemple.fr>".to_string()),
        Just("Sent: Monday".to_string()),
        Just("Subject: Bewerbung".to_string()),
        Just("________________________________".to_string()),
        Just("Am 01.02.2024 um 10:00 schrieb Max <max@example.com>:".to_string()),
        Just("".to_string()),
        "\\PC{0,20}",
    ];
    prop::collection::vec(line, 0..20).prop_map(|v| v.join("\n"))
}

/// A dialog that sends one mail (its body dot-stuffed) in pieces, then junk.
fn dialog(body: &[u8], junk: &[u8]) -> Vec<(Vec<u8>, usize)> {
    let (_, wire) = checks::stuff(body);
    let mut data = wire;
    data.extend_from_slice(junk);
    vec![
        (b"EHLO client.example\r\n".to_vec(), 1),
        (
            b"MAIL FROM:<erika@example.org>\r\nRCPT TO:<jobs@acme.example>\r\nDATA\r\n".to_vec(),
            3,
        ),
        (data, 1),
    ]
}

/// Bodies without bare line endings (those are refused, by design).
fn crlf_body() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just(b".".to_vec()),
        Just(b"..".to_vec()),
        Just(b". ".to_vec()),
        Just(b"Subject: x".to_vec()),
        Just(b"".to_vec()),
        prop::collection::vec(prop::sample::select(b".a :\t\x00\xff".to_vec()), 0..20),
    ];
    prop::collection::vec(line, 1..20).prop_map(|lines| {
        let mut out = b"From: Erika <erika@example.org>\r\nSubject: prop\r\n\r\n".to_vec();
        for l in lines {
            out.extend_from_slice(&l);
            out.extend_from_slice(b"\r\n");
        }
        out
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(config(48))]

    /// The mail answered 250 is stored with exactly the bytes the client
    /// meant, however the stream is cut, and nothing after it is a mail.
    #[test]
    fn session_stores_the_bytes_sent_and_replies_well_formed(
        body in crlf_body(), junk in smtp_bytes(120), cuts in cuts(),
    ) {
        let world = checks::world();
        let rt = runtime();
        let steps = dialog(&body, &junk);
        let steps: Vec<(&[u8], usize)> = steps.iter().map(|(b, n)| (&b[..], *n)).collect();
        let out = rt.block_on(checks::converse_steps(&world, &steps, &cuts));
        if let Err(e) = checks::replies_well_formed(&out) {
            panic!("{e}: {}", String::from_utf8_lossy(&out));
        }
        let text = String::from_utf8_lossy(&out);
        let codes: Vec<&str> = text.lines().filter(|l| l.as_bytes().get(3) == Some(&b' ')).map(|l| &l[..3]).collect();
        prop_assert!(codes.len() >= 6, "{}", text);
        prop_assert_eq!(&codes[..6], &["220", "250", "250", "250", "354", "250"], "{}", text);
        let store = jobmail::store::Store::open(&world.database).expect("store");
        let raw = store.raw(1).expect("raw").expect("mail 1 stored");
        prop_assert!(raw.ends_with(&body), "stored bytes differ from sent bytes");
        let stored = store.inbox(&jobmail::store::InboxFilter { limit: 100, ..Default::default() }).expect("inbox");
        let accepted = codes.iter().skip(5).filter(|c| **c == "250").count();
        prop_assert!(stored.len() <= accepted.max(1), "{} stored, {} accepted", stored.len(), accepted);
    }

    /// Any bytes, cut anywhere, after a greeting: no panic, no hang, every
    /// reply well-formed.
    #[test]
    fn session_answers_any_stream_with_well_formed_replies(stream in session_stream(), cuts in cuts()) {
        let world = checks::world();
        let rt = runtime();
        let steps: [(&[u8], usize); 2] = [(b"EHLO client.example\r\n", 1), (&stream, 0)];
        let out = rt.block_on(checks::converse_steps(&world, &steps, &cuts));
        if let Err(e) = checks::replies_well_formed(&out) {
            panic!("{e}: {}", String::from_utf8_lossy(&out));
        }
    }
}

fn session_stream() -> impl Strategy<Value = Vec<u8>> {
    let command = prop_oneof![
        Just(b"EHLO c\r\n".to_vec()),
        Just(b"HELO c\r\n".to_vec()),
        Just(b"MAIL FROM:<a@example.org> SIZE=99999999999\r\n".to_vec()),
        Just(b"MAIL FROM:<>\r\n".to_vec()),
        Just(b"RCPT TO:<jobs@acme.example>\r\n".to_vec()),
        Just(b"RCPT TO:<\"x\r\ny\"@acme.example>\r\n".to_vec()),
        Just(b"DATA\r\n".to_vec()),
        Just(b"BDAT 5 LAST\r\n".to_vec()),
        Just(b"STARTTLS\r\n".to_vec()),
        Just(b"AUTH PLAIN AGFAYg==\r\n".to_vec()),
        Just(b"RSET\r\nNOOP\r\nVRFY x\r\nHELP\r\n".to_vec()),
        Just(b"\r\n.\r\n".to_vec()),
        Just(b"\n.\n".to_vec()),
        Just(vec![b'A'; 1200]),
        smtp_bytes(60),
    ];
    prop::collection::vec(command, 0..12).prop_map(|v| v.concat())
}
