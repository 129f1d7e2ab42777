//! Invariants over hostile input, shared by the property tests
//! (`tests/hostile/main.rs`, run in CI) and the fuzz targets (`fuzz/`,
//! which include this file by path). Each check panics when an invariant
//! breaks; the fuzzer counts that as a crash, proptest shrinks it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use jobmail::app::filing::Filer;
use jobmail::config::company::Company;
use jobmail::inbound::data::DotReader;
use jobmail::inbound::parse::{MAX_DOCUMENTS, parse_message};
use jobmail::inbound::session::{Session, Settings};
use jobmail::mail::parsed::Envelope;
use jobmail::matcher::token::TokenKey;
use jobmail::matcher::{self, MatchInput, Matching, Reason, forward};
use jobmail::outbound::message::{OutgoingMail, Party, build};
use jobmail::outbound::render::{Context, render};
use jobmail::outbound::template::{Template, Variant};
use jobmail::store::Writer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Splits `bytes` into pieces whose lengths are taken in turn from `cuts`
/// (each at least 1); what is left after the last cut is one piece.
pub fn pieces<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    for &c in cuts {
        if rest.is_empty() {
            break;
        }
        let n = c.clamp(1, rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

// ---------------------------------------------------------------------------
// DATA

/// Where DATA ends in `stream` by RFC 5321 (the end is CR LF . CR LF, the
/// start of the data counting as a CR LF), and the bytes before it with
/// each line's leading dot removed. `None` when it does not end.
pub fn reference_data(stream: &[u8]) -> Option<(usize, Vec<u8>)> {
    let mut content = Vec::new();
    let mut i = 0;
    loop {
        let line_start = i == 0 || (i >= 2 && &stream[i - 2..i] == b"\r\n");
        if line_start && stream[i..].starts_with(b".\r\n") {
            return Some((i + 3, content));
        }
        if i >= stream.len() {
            return None;
        }
        if !(line_start && stream[i] == b'.') {
            content.push(stream[i]);
        }
        i += 1;
    }
}

/// Feeds `stream` to a DotReader in the given pieces; where it ended, and the message.
fn read_data(
    stream: &[u8],
    cuts: &[usize],
    max: u64,
) -> (Option<usize>, jobmail::inbound::data::Received) {
    let mut reader = DotReader::new(max, 0);
    let mut offset = 0;
    for piece in pieces(stream, cuts) {
        if let Some(n) = reader.feed(piece) {
            assert!(n <= piece.len(), "end past the piece");
            return (Some(offset + n), reader.finish());
        }
        offset += piece.len();
    }
    (None, reader.finish())
}

/// Arbitrary bytes after DATA: only CR LF . CR LF ends them, wherever the
/// pieces are cut, and the message is the bytes before with dots unstuffed.
pub fn data_any_stream(stream: &[u8], cuts: &[usize]) {
    let (end, got) = read_data(stream, cuts, u64::MAX);
    let (whole_end, whole) = read_data(stream, &[], u64::MAX);
    assert_eq!(end, whole_end, "the cuts moved the end");
    assert_eq!(got.content, whole.content, "the cuts changed the content");
    match reference_data(stream) {
        Some((n, content)) => {
            assert_eq!(end, Some(n), "ended elsewhere than at the first CRLF.CRLF");
            assert_eq!(got.content, content, "unstuffing");
            assert!(stream[..n].ends_with(b".\r\n"));
        }
        None => assert_eq!(end, None, "ended without CRLF.CRLF"),
    }
    // A small limit: the size counts every byte, nothing is kept past it.
    let (small_end, small) = read_data(stream, cuts, 16);
    assert_eq!(small_end, end);
    assert_eq!(small.size, got.size);
    assert_eq!(small.too_big, got.size > 16);
    assert!(small.content.len() <= 16);
}

/// Dot-stuffs `message` as a client does (a dot before each line that
/// starts with one, CR LF added at the end if missing, then `.` CR LF).
pub fn stuff(message: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut original = message.to_vec();
    if !original.ends_with(b"\r\n") {
        original.extend_from_slice(b"\r\n");
    }
    let mut wire = Vec::with_capacity(original.len() + 8);
    for (i, &b) in original.iter().enumerate() {
        let line_start = i == 0 || &original[i - 2.min(i)..i] == b"\r\n";
        if line_start && b == b'.' {
            wire.push(b'.');
        }
        wire.push(b);
    }
    wire.extend_from_slice(b".\r\n");
    (original, wire)
}

/// A bare CR (not before LF) or a bare LF (not after CR) in `bytes`.
pub fn has_bare_line_ending(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(i, &b)| {
        (b == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
            || (b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'))
    })
}

/// Any message, dot-stuffed by the client and cut anywhere: the reader
/// returns exactly the message, ends at the last byte, and flags bare line
/// endings exactly when there are some.
pub fn data_roundtrip(message: &[u8], cuts: &[usize]) {
    let (original, wire) = stuff(message);
    let (end, got) = read_data(&wire, cuts, u64::MAX);
    assert_eq!(
        end,
        Some(wire.len()),
        "the stuffed message did not end at its end"
    );
    assert_eq!(got.content, original, "unstuffing is not exact");
    assert_eq!(got.size, original.len() as u64);
    assert_eq!(got.bare_line_ending, has_bare_line_ending(&original));
}

// ---------------------------------------------------------------------------
// MIME and documents

/// Whether a document's file name is safe to show and save.
pub fn safe_filename(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{why}: {name:?}"));
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 200 {
        return bad("longer than 200 bytes");
    }
    if name.starts_with('.') || name.trim() != name {
        return bad("leading dot or surrounding space");
    }
    if name == ".." || name.contains(['/', '\\', ':', '*', '?', '"', '<', '>', '|']) {
        return bad("path or reserved character");
    }
    if let Some(c) = name.chars().find(|c| {
        c.is_control()
            || matches!(*c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    }) {
        return bad(&format!("control or bidi character U+{:04X}", c as u32));
    }
    Ok(())
}

/// Parses `raw` both ways: no panic, documents bounded by the input, file
/// names safe, the text bounded.
pub fn parse(raw: &[u8]) {
    for null_sender in [false, true] {
        let parsed = parse_message(raw, null_sender);
        assert!(parsed.documents.len() <= MAX_DOCUMENTS);
        let total: usize = parsed.documents.iter().map(|d| d.bytes.len()).sum();
        assert!(
            total <= raw.len() * 3 + 64 * 1024,
            "documents hold {total} bytes from {} bytes of mail",
            raw.len()
        );
        for d in &parsed.documents {
            if let Err(e) = safe_filename(&d.filename) {
                panic!("document {}: {e}", d.part);
            }
            assert!(
                !d.content_type.contains(['\r', '\n']),
                "{:?}",
                d.content_type
            );
        }
        if null_sender {
            assert!(parsed.headers.automatic && parsed.headers.no_auto_reply);
        }
    }
}

// ---------------------------------------------------------------------------
// The forward-author finder and the matcher

/// The forward finder on any text: no panic, the block's offset on a
/// character boundary, found exactly when an author (known or not) is.
pub fn forward(text: &str) {
    let found = forward::inline_forward(text);
    let start = forward::inline_forward_start(text);
    assert_eq!(
        found.is_some(),
        start.is_some(),
        "finder and its offset disagree"
    );
    if let Some(at) = start {
        assert!(at < text.len() && text.is_char_boundary(at), "offset {at}");
        // The block found from its own start is the same block.
        assert_eq!(forward::inline_forward(&text[at..]), found);
    }
    if let Some(forward::Forwarded::Author(m)) = &found {
        assert!(m.address.contains('@'), "{m:?}");
        assert!(!m.address.contains(char::is_whitespace), "{m:?}");
    }
    let _ = forward::is_forward_subject(text);
}

/// The company the tests' config describes (`fixtures/matching/world.toml`).
pub fn config_text() -> String {
    format!(
        "[server]\ndatabase = \"j.db\"\nhostname = \"jobs.test\"\n{}",
        include_str!("../../fixtures/matching/world.toml")
    )
}

pub fn company() -> Company {
    let config =
        jobmail::config::parse(&config_text(), &PathBuf::from("/nonexistent/jobmail.toml"))
            .expect("config");
    Company::from_config(&config)
}

/// A parsed mail through the matcher's pure functions and the tokens:
/// no panic, the names and tokens it makes well-formed.
pub fn matcher(raw: &[u8], sender: &str, recipients: &[String], company: &Company) {
    let parsed = parse_message(raw, sender.is_empty());
    let envelope = Envelope {
        sender: sender.to_string(),
        recipients: recipients.to_vec(),
        client_addr: "192.0.2.7".into(),
        helo: "client.example".into(),
        session_id: "fuzz".into(),
        received_at_ms: 1_700_000_000_000,
        authentication: None,
        tls: None,
    };
    let input = MatchInput::of(&parsed, &envelope, None);
    if let Some(author) = matcher::author_of(&input, company) {
        let candidate = matcher::new_candidate(&author, None);
        for part in [&candidate.first_name, &candidate.last_name] {
            assert!(!part.contains(['\r', '\n']), "{candidate:?}");
        }
    }
    let _ = matcher::application_for(&input, company);
    let _ = matcher::language_of(&input, company, Reason::ForwardedAuthor);
    let key = TokenKey::new([0x42; 32]);
    let subject = parsed.headers.subject.clone().unwrap_or_default();
    let tags = key.subject_tags(&subject);
    assert!(tags.signed.len() <= tags.tokens, "{tags:?}");
    let _ = key.find_subject_tags(&subject);
    for r in recipients.iter().map(String::as_str).chain([sender]) {
        let _ = key.check_reply_token(r);
        let _ = key.check_verp_tag(r);
    }
    // Tokens we make read back as what they name.
    let id = (raw.len() as i64) * 7919 + 1;
    assert_eq!(key.check_reply_token(&key.reply_token(id)), Some(id));
    assert!(
        key.find_subject_tags(&format!("{subject} {}", key.subject_tag(id)))
            .contains(&id)
    );
}

// ---------------------------------------------------------------------------
// Rendering

/// A template that uses every placeholder in the subject and the bodies.
pub fn template() -> Template {
    let all = "{{ first_name }} {{ last_name }} / {{ full_name }} <{{ email }}> {{ position }} \
               {{ subsidiary }} {{ sender_name }} {{ application_date }} {{ g('Herr', 'Frau', 'Hallo') }}";
    let variant = Variant {
        subject: format!("Ihre Bewerbung: {all}"),
        text: format!("Guten Tag {all},\n\ndanke.\n"),
        html: Some(format!("<html><body><p>{all}</p></body></html>")),
        attachments: None,
    };
    Template {
        id: "hostile".into(),
        path: PathBuf::from("hostile.toml"),
        description: String::new(),
        default_language: "de".into(),
        automatic: false,
        attachments: Vec::new(),
        variants: [("de".to_string(), variant)].into_iter().collect(),
    }
}

/// The header fields (names, in order) of a built message, and the check
/// that its header block has no bare CR or LF and no line but fields and
/// their folds.
pub fn header_names(message: &[u8]) -> Vec<String> {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let block = &message[..end + 2];
    assert!(
        !has_bare_line_ending(block),
        "bare line ending in the headers"
    );
    let text = String::from_utf8_lossy(block);
    let mut names = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let (name, _) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("not a header line: {line:?}"));
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "not a field name: {line:?}"
        );
        names.push(name.to_ascii_lowercase());
    }
    names
}

fn outgoing(rendered: &jobmail::outbound::render::Rendered, to_name: &str) -> OutgoingMail {
    OutgoingMail {
        from: Party {
            name: "Acme Jobs".into(),
            address: "jobs@acme.example".into(),
        },
        to: Party {
            name: to_name.into(),
            address: "erika@example.org".into(),
        },
        reply_to: "jobs@acme.example".into(),
        message_id: "<1.hostile@acme.example>".into(),
        in_reply_to: None,
        references: Vec::new(),
        subject: rendered.subject.clone(),
        date: 1_700_000_000_000,
        text: rendered.text.clone(),
        html: rendered.html.clone(),
        attachments: Vec::new(),
        auto_submitted: None,
        loop_marker: None,
    }
}

/// Renders and builds a mail with hostile placeholder values: the subject
/// stays one line without control characters, and the message has exactly
/// the header fields a benign one has (one more at most: the
/// transfer encoding a body may need), so no value ever makes a header.
pub fn render_hostile(values: [&str; 6], gender: &str) {
    let template = template();
    let benign = Context {
        first_name: "Erika".into(),
        last_name: "Muster".into(),
        email: "erika@example.org".into(),
        gender: "female".into(),
        language: None,
        position: Some("Koch".into()),
        subsidiary: "Acme".into(),
        subsidiary_language: Some("de".into()),
        sender_name: "Jana".into(),
        application_date_ms: Some(1_700_000_000_000),
    };
    let base = render(&template, &benign, None).expect("benign render");
    let mut allowed =
        header_names(&build(&outgoing(&base, "Erika Muster"), 10 << 20).expect("benign build"));
    allowed.push("content-transfer-encoding".into());
    let hostile = Context {
        first_name: values[0].into(),
        last_name: values[1].into(),
        email: values[2].into(),
        gender: gender.into(),
        language: Some(values[3].chars().take(8).collect()),
        position: Some(values[3].into()),
        subsidiary: values[4].into(),
        subsidiary_language: Some("de".into()),
        sender_name: values[5].into(),
        application_date_ms: Some(
            i64::from_le_bytes(
                values[5]
                    .bytes()
                    .chain([0; 8])
                    .take(8)
                    .collect::<Vec<_>>()
                    .try_into()
                    .expect("8"),
            ) % 10_000_000_000_000,
        ),
    };
    let Ok(rendered) = render(&template, &hostile, Some("de")) else {
        return;
    };
    assert!(
        !rendered.subject.chars().any(char::is_control),
        "control character in the subject: {:?}",
        rendered.subject
    );
    let to_name = format!("{} {}", values[0], values[1]);
    let Ok(message) = build(&outgoing(&rendered, &to_name), 10 << 20) else {
        return;
    };
    let names = header_names(&message);
    for name in &names {
        assert!(
            allowed.contains(name),
            "a value made a header {name:?}: {names:?}"
        );
    }
    for once in ["subject", "to", "from", "reply-to", "message-id"] {
        assert_eq!(
            names.iter().filter(|n| *n == once).count(),
            1,
            "{once} in {names:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// The SMTP session

/// A daemon's worth of session settings on a temporary store.
pub struct World {
    pub dir: tempfile::TempDir,
    pub database: PathBuf,
    pub settings: Arc<Settings>,
    pub writer: Writer,
}

pub fn world() -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let config =
        jobmail::config::parse(&config_text(), &dir.path().join("jobmail.toml")).expect("config");
    let company = Company::from_config(&config);
    let filer = Filer::new(Matching {
        directory: company.clone(),
        key: TokenKey::new([0x42; 32]),
    });
    let (writer, _thread) =
        Writer::start(&config.server.database, Arc::new(filer)).expect("writer");
    let settings = Arc::new(Settings {
        memory: Arc::new(tokio::sync::Semaphore::new(
            config.server.memory_budget.div_ceil(1024) as usize,
        )),
        server: config.server.clone(),
        directory: company,
        verifier: None,
        tls: None,
    });
    World {
        database: config.server.database.clone(),
        dir,
        settings,
        writer,
    }
}

/// Runs one session over an in-memory stream: waits for the greeting,
/// sends `stream` in the given pieces while reading, then closes its side
/// and reads to the end. Returns every byte the server wrote.
pub async fn converse(world: &World, stream: &[u8], cuts: &[usize]) -> Vec<u8> {
    converse_steps(world, &[(stream, 0)], cuts).await
}

/// Final reply lines (`ddd ` ...) in `out`.
fn final_replies(out: &[u8]) -> usize {
    out.split(|&b| b == b'\n')
        .filter(|l| l.len() >= 4 && l[3] == b' ' && l.ends_with(b"\r"))
        .count()
}

/// As [`converse`], in steps: each step's bytes (cut by `cuts`), then a
/// wait for that many more replies, as a client that pipelines only where
/// RFC 2920 lets it.
pub async fn converse_steps(world: &World, steps: &[(&[u8], usize)], cuts: &[usize]) -> Vec<u8> {
    let (client, server) = tokio::io::duplex(1 << 16);
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let peer: SocketAddr = "192.0.2.7:40000".parse().expect("addr");
    let session = Session::new(
        server,
        peer,
        world.settings.clone(),
        world.writer.clone(),
        shutdown,
        "hostile".into(),
    );
    let running = tokio::spawn(session.run());
    let (mut rx, mut tx) = tokio::io::split(client);
    let (seen_tx, mut seen) = tokio::sync::watch::channel(0usize);
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
            let _ = seen_tx.send(final_replies(&out));
        }
        drop(seen_tx);
        out
    });
    // A client speaks after the greeting (an early talker is refused).
    let mut want = 1;
    for (bytes, replies) in steps {
        if seen.wait_for(|n| *n >= want).await.is_err() {
            break;
        }
        want += replies;
        let owned: Vec<Vec<u8>> = pieces(bytes, cuts)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        for piece in owned {
            if tx.write_all(&piece).await.is_err() {
                break;
            }
            let _ = tx.flush().await;
            tokio::task::yield_now().await;
        }
    }
    let _ = seen.wait_for(|n| *n >= want).await;
    let _ = tx.shutdown().await;
    let out = reader.await.expect("reader");
    running.await.expect("the session panicked");
    out
}

/// Every reply line is `ddd ` or `ddd-` and text, ends in CR LF, is at
/// most 512 bytes; a multi-line reply keeps its code; the first is 220 or
/// 554; the output ends with a complete reply.
pub fn replies_well_formed(out: &[u8]) -> Result<(), String> {
    if out.is_empty() {
        return Ok(());
    }
    if !out.ends_with(b"\r\n") {
        return Err(format!(
            "output ends inside a line: {:?}",
            String::from_utf8_lossy(out)
        ));
    }
    let mut open: Option<&[u8]> = None;
    let mut first = true;
    for line in out[..out.len() - 2].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let show = String::from_utf8_lossy(line);
        if line.len() + 2 > 512 {
            return Err(format!("reply line over 512 bytes: {show}"));
        }
        if line.len() < 4
            || !line[..3].iter().all(u8::is_ascii_digit)
            || !(b'2'..=b'5').contains(&line[0])
        {
            return Err(format!("not a reply line: {show:?}"));
        }
        if line.contains(&b'\r') || line.iter().any(|&b| b < 0x20 && b != b'\t') {
            return Err(format!("control character in a reply: {show:?}"));
        }
        if first && &line[..3] != b"220" && &line[..3] != b"554" {
            return Err(format!("greeting is not 220 or 554: {show}"));
        }
        first = false;
        if let Some(code) = open
            && code != &line[..3]
        {
            return Err(format!("a multi-line reply changed its code: {show}"));
        }
        match line[3] {
            b'-' => open = Some(&line[..3]),
            b' ' => open = None,
            _ => return Err(format!("no space or dash after the code: {show:?}")),
        }
    }
    if open.is_some() {
        return Err("the last reply is not finished".into());
    }
    // Every CR LF: no bare LF in the replies.
    if has_bare_line_ending(out) {
        return Err("bare line ending in the replies".into());
    }
    Ok(())
}
