//! The session driven over an in-memory stream (`tokio::io::duplex`), with
//! a real store writer on a temporary SQLite file: dialogs as data, and the
//! same dialog fed in pieces of every size, which must not change a single
//! reply (pipelining and TCP segmentation are the client's business).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::session::{Session, Settings};
use crate::app::filing::Filer;
use crate::config::company::Company;
use crate::matcher::Matching;
use crate::matcher::token::TokenKey;
use crate::store::{InboxFilter, Store, Writer};

/// A daemon's worth of session settings on a temporary store.
struct World {
    _dir: tempfile::TempDir,
    database: std::path::PathBuf,
    settings: Arc<Settings>,
    writer: Writer,
}

fn world() -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        "[server]\ndatabase = \"j.db\"\nhostname = \"jobs.test\"\n{}",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/matching/world.toml"
        ))
    );
    let config = crate::config::parse(&text, &dir.path().join("jobmail.toml")).expect("config");
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
        _dir: dir,
        settings,
        writer,
    }
}

/// One step of a dialog: the bytes a client sends, and the reply codes it
/// waits for before it sends the next step (several when it pipelines).
type Step = (&'static [u8], &'static [&'static str]);

/// Runs one session over an in-memory stream as a client would: reads the
/// greeting, then sends each step in pieces of `piece` bytes and reads its
/// replies. Returns the codes received, step by step, and the transcript.
async fn converse(w: &World, steps: &[Step], piece: usize) -> (Vec<Vec<String>>, String) {
    let (client, server) = tokio::io::duplex(1 << 20);
    let (_stop, shutdown) = watch::channel(false);
    let peer: SocketAddr = "192.0.2.7:40000".parse().expect("addr");
    let session = Session::new(
        server,
        peer,
        w.settings.clone(),
        w.writer.clone(),
        shutdown,
        "test".into(),
    );
    let running = tokio::spawn(session.run());
    let mut client = client;
    let mut transcript = String::new();
    let mut pending = String::new();
    let mut read_codes = async |client: &mut tokio::io::DuplexStream, n: usize| {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while got.len() < n {
            while let Some(end) = pending.find("\r\n") {
                let line: String = pending.drain(..end + 2).collect();
                transcript.push_str(&line);
                if line.len() >= 4 && line.as_bytes()[3] == b' ' {
                    got.push(line[..3].to_string());
                }
            }
            if got.len() >= n {
                break;
            }
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(k) => pending.push_str(&String::from_utf8_lossy(&buf[..k])),
            }
        }
        got
    };
    let mut all = vec![read_codes(&mut client, 1).await];
    for (bytes, expected) in steps {
        for chunk in bytes.chunks(piece.max(1)) {
            if client.write_all(chunk).await.is_err() {
                break;
            }
        }
        all.push(read_codes(&mut client, expected.len()).await);
    }
    let _ = client.shutdown().await;
    let _ = running.await;
    (all, transcript)
}

/// The codes a dialog must get: the greeting's, then each step's.
fn expected(steps: &[Step]) -> Vec<Vec<String>> {
    std::iter::once(vec!["220".to_string()])
        .chain(
            steps
                .iter()
                .map(|(_, codes)| codes.iter().map(|c| c.to_string()).collect()),
        )
        .collect()
}

const DIALOG: &[Step] = &[
    (b"EHLO client.example\r\n", &["250"]),
    // Pipelined (RFC 2920): a stranger's address refused, ours accepted.
    (
        b"MAIL FROM:<erika@example.org>\r\nRCPT TO:<nobody@elsewhere.example>\r\nRCPT TO:<jobs@acme.example>\r\n",
        &["250", "550", "250"],
    ),
    (b"DATA\r\n", &["354"]),
    (
        b"From: Erika Muster <erika@example.org>\r\nTo: jobs@acme.example\r\nSubject: Bewerbung\r\n\r\nGuten Tag,\r\n..a line that starts with a dot\r\n.\r\n",
        &["250"],
    ),
    (b"MAIL FROM:<>\r\nRSET\r\nNOOP\r\n", &["250", "250", "250"]),
    (b"QUIT\r\n", &["221"]),
];

fn stored(database: &Path) -> Vec<(Option<String>, i64)> {
    Store::open(database)
        .expect("store")
        .inbox(&InboxFilter {
            limit: 100,
            ..Default::default()
        })
        .expect("inbox")
        .into_iter()
        .map(|e| (e.subject, e.size))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialog_gets_its_replies_and_its_mail_is_stored_before_250() {
    let w = world();
    let (got, transcript) = converse(&w, DIALOG, usize::MAX).await;
    assert_eq!(got, expected(DIALOG), "{transcript}");
    // The 250 came after the commit: the mail is there, dot-unstuffed.
    let mails = stored(&w.database);
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].0.as_deref(), Some("Bewerbung"));
    let raw = Store::open(&w.database)
        .expect("store")
        .raw(1)
        .expect("raw")
        .expect("mail 1");
    let raw = String::from_utf8_lossy(&raw);
    assert!(
        raw.contains("\r\n.a line that starts with a dot\r\n"),
        "{raw}"
    );
    assert!(raw.starts_with("Return-Path: <erika@example.org>\r\nReceived: from client.example"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bytes_in_pieces_of_any_size_get_the_same_replies() {
    let w = world();
    for piece in [1, 2, 3, 5, 8, 13, 64, 333] {
        let (got, transcript) = converse(&w, DIALOG, piece).await;
        assert_eq!(got, expected(DIALOG), "pieces of {piece}: {transcript}");
    }
    // Eight sessions, one mail: the same bytes are stored once.
    assert_eq!(stored(&w.database).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_line_feed_dot_does_not_end_data() {
    let w = world();
    // `\n.\n` is not the end of DATA (SMTP smuggling): the mail goes on
    // until CRLF.CRLF, and with bare line endings refused it is not stored.
    let steps: &[Step] = &[
        (b"EHLO c\r\n", &["250"]),
        (b"MAIL FROM:<a@example.org>\r\n", &["250"]),
        (b"RCPT TO:<jobs@acme.example>\r\n", &["250"]),
        (b"DATA\r\n", &["354"]),
        (
            b"Subject: one\r\n\r\nhello\n.\nMAIL FROM:<evil@example.org>\r\n.\r\n",
            &["550"],
        ),
        (b"QUIT\r\n", &["221"]),
    ];
    let (got, transcript) = converse(&w, steps, usize::MAX).await;
    assert_eq!(got[..5], expected(steps)[..5], "{transcript}");
    assert!(got[5][0].starts_with('5'), "bare LF refused: {transcript}");
    assert_eq!(got[6], ["221"], "{transcript}");
    assert!(stored(&w.database).is_empty());
}
