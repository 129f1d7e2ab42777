//! `jobmail backup` and `jobmail restore` against the running binary: a
//! backup made while mail arrives holds every mail answered before it
//! started and passes its integrity check, the daemon answering 250
//! throughout; a restore is refused while `serve` runs, and a restored
//! store serves with its mails and its key (an old reply token still
//! files a reply).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::harness::*;
use crate::support::upstream::Upstream;

/// The example company, its upstream on `up`, polled every 20 ms.
fn relayed(up: &Upstream) -> String {
    example_directory()
        .replace("port = 2600", &format!("port = {}", up.addr.port()))
        .replace(
            "retry_initial = \"5m\"",
            "retry_initial = \"100ms\"\npoll_interval = \"20ms\"",
        )
}

/// A mail with `kb` KB of text, unique by `id`.
fn mail(id: &str, kb: usize) -> Vec<u8> {
    let mut m = simple_mail(id, &format!("load {id}"));
    for _ in 0..kb {
        m.extend_from_slice(&[b'x'; 1022]);
        m.extend_from_slice(b"\r\n");
    }
    m
}

/// `clients` sessions sending until `stop`; every 250 is recorded with
/// the moment it came and the SHA-256 of the mail, every other answer as
/// a failure.
#[allow(clippy::type_complexity)]
fn load(
    d: &Daemon,
    clients: usize,
    prefix: &str,
    kb: usize,
    stop: Arc<AtomicBool>,
) -> (
    Vec<std::thread::JoinHandle<()>>,
    Arc<Mutex<Vec<(Instant, String)>>>,
    Arc<Mutex<Vec<String>>>,
) {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let handles = (0..clients)
        .map(|c| {
            let (addr, stop, acked, failed) = (d.addr, stop.clone(), acked.clone(), failed.clone());
            let prefix = prefix.to_string();
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let mut conn = Conn::open(addr);
                    conn.expect(220);
                    conn.ehlo();
                    for _ in 0..10 {
                        n += 1;
                        let m = mail(&format!("{prefix}-{c}-{n}"), kb);
                        let (code, text) =
                            conn.transaction("load@example.org", "jobs@acme.example", &m);
                        if code == 250 {
                            acked
                                .lock()
                                .unwrap()
                                .push((Instant::now(), jobmail::store::sha256_hex(&m)));
                        } else {
                            failed.lock().unwrap().push(text);
                        }
                    }
                    conn.cmd("QUIT");
                }
            })
        })
        .collect();
    (handles, acked, failed)
}

#[test]
fn a_backup_during_load_holds_every_mail_answered_before_it_started() {
    let d = Daemon::start();
    // Some history first (tens of MB), so that the copy and its check
    // take a while.
    let stop = Arc::new(AtomicBool::new(false));
    let (clients, history, failed) = load(&d, 4, "history", 64, stop.clone());
    std::thread::sleep(Duration::from_millis(3000));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    assert!(failed.lock().unwrap().is_empty());

    // Mail keeps arriving from four sessions while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let (clients, acked, failed) = load(&d, 4, "during", 4, stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    let file = d.dir.path().join("backups").join("jobmail-backup.db");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let started = Instant::now();
    let out = d.cli(&["backup", file.to_str().unwrap(), "--json"]);
    let ended = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let done = json(out);

    // The daemon kept answering 250, during the backup too.
    let failed = failed.lock().unwrap().clone();
    assert!(failed.is_empty(), "not answered 250: {failed:?}");
    let mut acked = acked.lock().unwrap().clone();
    acked.extend(history.lock().unwrap().iter().cloned());
    let before: Vec<&String> = acked
        .iter()
        .filter(|(at, _)| *at < started)
        .map(|(_, sha)| sha)
        .collect();
    let during = acked
        .iter()
        .filter(|(at, _)| *at > started && *at < ended)
        .count();
    assert!(!before.is_empty());
    assert!(during > 0, "no mail answered while the backup ran");

    // The copy passes its integrity check (ours, besides the command's)…
    let check =
        rusqlite::Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let verdict: String = check
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verdict, "ok");
    drop(check);
    // …and holds every mail answered 250 before the backup started.
    let copy: HashSet<String> = jobmail::store::Store::open(&file)
        .unwrap()
        .content_hashes()
        .unwrap()
        .into_iter()
        .map(|(sha, _)| sha)
        .collect();
    let missing: Vec<_> = before.iter().filter(|sha| !copy.contains(**sha)).collect();
    assert!(
        missing.is_empty(),
        "answered 250 before the backup, not in it: {missing:?}"
    );
    assert_eq!(done["messages"].as_u64().unwrap() as usize, copy.len());
    eprintln!(
        "backup during load: {} mails in the copy, {} answered before it started, {during} while it ran ({} ms copy, {} ms check)",
        copy.len(),
        before.len(),
        done["copy_ms"],
        done["check_ms"]
    );

    // The CLI reads the copy like any store.
    let config = d.dir.path().join("backup.toml");
    let text = std::fs::read_to_string(&d.config).unwrap().replace(
        "database = \"jobmail.db\"",
        &format!("database = {:?}", file.to_str().unwrap()),
    );
    std::fs::write(&config, text).unwrap();
    let inbox = json(cli(&config, &["inbox", "--json", "--limit", "10000"]));
    assert_eq!(inbox["messages"].as_array().unwrap().len(), copy.len());

    // The key is beside it, private.
    use std::os::unix::fs::PermissionsExt;
    let key = std::fs::metadata(done["key_file"].as_str().unwrap()).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::read(done["key_file"].as_str().unwrap()).unwrap(),
        std::fs::read(d.dir.path().join("reply-token.key")).unwrap()
    );
}

/// The address a candidate answers to: the Reply-To of our mail.
fn reply_to(delivered: &[u8]) -> String {
    let parsed = jobmail::inbound::parse::parse_message(delivered, false);
    parsed.headers.reply_to[0].address.clone()
}

fn wait_sent(d: &Daemon, item: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = json(d.cli(&["queue", "show", &item.to_string(), "--json"]));
        if v["item"]["state"] == "sent" {
            return;
        }
        assert!(Instant::now() < deadline, "item {item} not sent: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn hashes(d: &Daemon) -> Vec<(String, i64)> {
    d.reader().content_hashes().unwrap()
}

#[test]
fn a_restore_is_refused_while_serve_runs_and_the_restored_store_serves_with_its_key() {
    let up = Upstream::start();
    // Its own random key: only the restored key verifies its tokens.
    let a = Daemon::start_world("", &relayed(&up), None);
    let (code, _) = a.connect().send_mail(
        "anna.schmidt@posteo.de",
        "jobs+backend@acme.example",
        &fixture("application-pdf.eml"),
    );
    assert_eq!(code, 250);
    let sent = json(a.cli(&[
        "send",
        "--json",
        "--template",
        "interview-invitation",
        "--candidate",
        "1",
    ]));
    let item = sent["queued"][0]["item"].as_i64().unwrap();
    let answer_to = reply_to(&up.wait_for(1, 20)[0].data);
    assert!(answer_to.starts_with("jobs+"), "{answer_to}");
    wait_sent(&a, item);
    let file = a.dir.path().join("backup.db");
    json(a.cli(&["backup", file.to_str().unwrap(), "--json"]));

    // Not while a daemon serves the store: nothing changes.
    let out = a.cli(&["restore", file.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("another jobmail serve is running") && said.contains("stop it first"),
        "{said}"
    );
    assert_eq!(hashes(&a).len(), 2);

    // Another machine: a store and a key of its own, stopped.
    let mut b = Daemon::start_world("", &relayed(&up), None);
    let (code, _) = b.connect().send_mail(
        "someone@example.net",
        "jobs@acme.example",
        &simple_mail("on-b", "on the other machine"),
    );
    assert_eq!(code, 250);
    let status = b.terminate().wait().unwrap();
    assert!(status.success());
    let old_key = std::fs::read(b.dir.path().join("reply-token.key")).unwrap();
    let restored = json(b.cli(&["restore", file.to_str().unwrap(), "--json"]));
    assert_eq!(restored["messages"], 2);
    let kept = restored["previous_database"].as_str().unwrap();
    assert_eq!(
        jobmail::store::Store::open(std::path::Path::new(kept))
            .unwrap()
            .count_messages()
            .unwrap(),
        1,
        "the replaced store is kept aside"
    );
    assert_eq!(
        std::fs::read(restored["previous_key"].as_str().unwrap()).unwrap(),
        old_key
    );

    // serve starts on it: the mails and the key are the backup's…
    b.spawn();
    assert_eq!(hashes(&b), hashes(&a));
    assert_eq!(
        std::fs::read(b.dir.path().join("reply-token.key")).unwrap(),
        std::fs::read(a.dir.path().join("reply-token.key")).unwrap()
    );
    // …and a reply to the mail sent before the backup, from an address
    // nobody knows and without thread headers, is filed by its token.
    let reply = format!(
        "From: A. Schmidt <a.s@elsewhere.example>\r\nTo: {answer_to}\r\nSubject: Termin\r\nMessage-ID: <reply-after-restore@elsewhere.example>\r\n\r\nDonnerstag passt.\r\n"
    );
    let (code, text) = b
        .connect()
        .send_mail("a.s@elsewhere.example", &answer_to, reply.as_bytes());
    assert_eq!(code, 250, "{text}");
    let id = text.trim().rsplit(' ').next().unwrap().to_string();
    let m = json(b.cli(&["message", "show", &id, "--json"]));
    assert_eq!(
        (m["reason"].as_str(), m["candidate"]["id"].as_i64()),
        (Some("reply-token"), Some(1)),
        "{m}"
    );
}
