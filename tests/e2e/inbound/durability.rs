//! Nothing lost: kill -9 under load, graceful SIGTERM, and a store that
//! cannot write (451, never 250).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::harness::*;

/// Eight clients send as fast as they can; every Message-ID answered 250 is
/// recorded. Each mail carries `padding` lines of 1 KB.
fn flood(
    addr: std::net::SocketAddr,
    round: usize,
    padding: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..8)
        .map(|client| {
            let stop = stop.clone();
            let acked = acked.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    // Any I/O failure is the kill: this client stops.
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let mut c = Conn::open(addr);
                        c.expect(220);
                        c.ehlo();
                        for _ in 0..5 {
                            n += 1;
                            let id = format!("r{round}-c{client}-m{n}");
                            let mut mail = simple_mail(&id, &format!("load {id}"));
                            for _ in 0..padding {
                                mail.extend_from_slice(&[b'x'; 1022]);
                                mail.extend_from_slice(b"\r\n");
                            }
                            let (code, _) =
                                c.transaction("load@example.org", "jobs@acme.example", &mail);
                            if code == 250 {
                                acked.lock().unwrap().push(format!("{id}@example.org"));
                            }
                        }
                        c.cmd("QUIT");
                    }));
                    if result.is_err() {
                        return;
                    }
                }
            })
        })
        .collect()
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_mail() {
    kill_9_rounds(4, 0, 400);
}

/// Mails of 512 KB: the WAL passes 8 MB within the round, so the kill
/// also lands while the checkpoint thread copies the WAL into the database.
#[test]
fn kill_9_while_big_mails_are_checkpointed_loses_no_acknowledged_mail() {
    kill_9_rounds(3, 512, 1500);
}

/// Rounds of eight flooding clients, each ended by kill -9 after `ms` (and a
/// little more each round); every mail answered 250 must be stored, once.
fn kill_9_rounds(rounds: usize, padding: usize, ms: u64) {
    let mut d = Daemon::start();
    let mut all_acked: Vec<String> = Vec::new();
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let clients = flood(d.addr, round, padding, stop.clone(), acked.clone());
        std::thread::sleep(Duration::from_millis(ms + 150 * round as u64));
        d.kill9();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            let _ = c.join();
        }
        let round_acked = acked.lock().unwrap().clone();
        assert!(
            !round_acked.is_empty(),
            "round {round}: no mail got through before the kill"
        );
        all_acked.extend(round_acked);
        d.spawn();
    }
    let reader = d.reader();
    let stored: Vec<String> = latest(&reader, 100_000)
        .into_iter()
        .map(|e| e.id)
        .map(|id| {
            reader
                .message(id)
                .unwrap()
                .unwrap()
                .message_id
                .unwrap_or_default()
        })
        .collect();
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "a mail was stored twice");
    for id in &all_acked {
        assert!(
            unique.contains(id),
            "{id} was answered 250 but is not in the store"
        );
    }
    eprintln!(
        "kill -9: {rounds} rounds of {padding} KB mails, {} acknowledged, {} stored (the rest were in flight, never acknowledged)",
        all_acked.len(),
        stored.len()
    );
}

#[test]
fn sigterm_lets_an_open_transaction_finish_and_closes_idle_sessions() {
    let mut d = Daemon::start_with("shutdown_timeout = \"20s\"");
    let mut idle = d.connect();
    idle.ehlo();
    let mut busy = d.connect();
    busy.ehlo();
    busy.expect_cmd("MAIL FROM:<a@example.org>", 250);
    busy.expect_cmd("RCPT TO:<jobs@acme.example>", 250);
    busy.expect_cmd("DATA", 354);
    busy.send(b"Subject: sent during shutdown\r\n\r\nfirst half\r\n");

    let mut child = d.terminate();
    // The idle session is told, the listener stops accepting.
    let (code, text) = idle.reply();
    assert_eq!(code, 421, "{text}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(d.addr).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "still accepting after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The open transaction completes and is acknowledged.
    busy.send(b"second half\r\n.\r\n");
    busy.expect(250);
    let (code, _) = busy.reply();
    assert_eq!(code, 421, "closed after its transaction");
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    let inbox = latest(&d.reader(), 10);
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].subject.as_deref(), Some("sent during shutdown"));
}

#[test]
fn a_store_that_cannot_write_answers_451_and_the_retry_succeeds() {
    let d = Daemon::start();
    // Prove the store works, then lock it against writers from outside.
    let (code, _) = d.connect().send_mail(
        "a@example.org",
        "jobs@acme.example",
        &simple_mail("before-lock", "before"),
    );
    assert_eq!(code, 250);
    let locker = rusqlite::Connection::open(d.db()).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let mail = simple_mail("during-lock", "during");
    let mut c = d.connect();
    let (code, text) = c.send_mail("a@example.org", "jobs@acme.example", &mail);
    assert_eq!(code, 451, "{text}");
    assert!(text.starts_with("451 4.3.0"), "{text}");

    locker.execute_batch("ROLLBACK").unwrap();
    drop(locker);
    // The client retries the same mail: now it is stored, once.
    let (code, text) = c.transaction("a@example.org", "jobs@acme.example", &mail);
    assert_eq!(code, 250, "{text}");
    let subjects: Vec<_> = latest(&d.reader(), 10)
        .into_iter()
        .filter_map(|e| e.subject)
        .collect();
    assert_eq!(subjects, vec!["during", "before"]);
}

#[test]
fn the_wal_is_checkpointed_beside_the_writer_while_mail_arrives() {
    // 24 mails of 1 MB: three times the WAL size at which the checkpoint
    // thread copies the WAL into the database file (8 MB).
    let d = Daemon::start();
    let mut c = d.connect();
    let line = format!("{}\r\n", "x".repeat(1022));
    for i in 0..24 {
        let mut mail = simple_mail(&format!("big-{i}"), &format!("big {i}"));
        for _ in 0..1024 {
            mail.extend_from_slice(line.as_bytes());
        }
        let (code, text) = if i == 0 {
            c.send_mail("a@example.org", "jobs@acme.example", &mail)
        } else {
            c.transaction("a@example.org", "jobs@acme.example", &mail)
        };
        assert_eq!(code, 250, "{text}");
    }
    let size = |suffix: &str| {
        let mut path = d.db().into_os_string();
        path.push(suffix);
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    };
    // While the daemon runs (the last connection's close would checkpoint
    // too): most of the 24 MB reach the database file, and the WAL stays
    // far below the mail it carried.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while size("") < 16 << 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(size("") >= 16 << 20, "database file: {} bytes", size(""));
    assert!(size("-wal") < 20 << 20, "WAL: {} bytes", size("-wal"));
    assert_eq!(latest(&d.reader(), 30).len(), 24);
}

/// Restarts `d` with `JOBMAIL_FAULT` set to `fault` (or unset).
fn restart_with_fault(d: &mut Daemon, fault: Option<&str>) {
    d.kill9();
    d.env = fault
        .map(|f| vec![("JOBMAIL_FAULT".to_string(), f.to_string())])
        .unwrap_or_default();
    d.spawn();
}

fn assignment(d: &Daemon, id: &str) -> String {
    json(d.cli(&["message", "show", id, "--json"]))["assignment"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_panic_while_matching_keeps_the_mail_and_the_writer() {
    let mut d = Daemon::start();
    restart_with_fault(&mut d, Some("match-panic"));
    let (code, text) = d.connect().send_mail(
        "a@example.org",
        "jobs@acme.example",
        &simple_mail("f1", "FAULT"),
    );
    assert_eq!(code, 250, "stored although matching panicked: {text}");
    let faulty = text.trim().rsplit(' ').next().unwrap().to_string();
    assert_eq!(assignment(&d, &faulty), "pending");
    let (code, text) = d.connect().send_mail(
        "b@example.org",
        "jobs@acme.example",
        &simple_mail("ok1", "fine"),
    );
    assert_eq!(code, 250, "the writer goes on: {text}");
    let fine = text.trim().rsplit(' ').next().unwrap().to_string();
    assert_eq!(assignment(&d, &fine), "assigned");
    // At the next start the mail still cannot be matched: the daemon starts
    // all the same and leaves it pending.
    restart_with_fault(&mut d, Some("match-panic"));
    assert!(
        d.log()
            .contains("matching this mail panicked; it stays pending"),
        "{}",
        d.log()
    );
    assert_eq!(assignment(&d, &faulty), "pending");
    // Once the cause is gone, the start matches it.
    restart_with_fault(&mut d, None);
    assert_eq!(assignment(&d, &faulty), "assigned");
}

#[test]
fn a_store_writer_that_dies_ends_the_daemon_so_it_is_restarted() {
    let mut d = Daemon::start();
    restart_with_fault(&mut d, Some("writer-panic"));
    let mut c = d.connect();
    c.ehlo();
    let (code, _) = c.transaction(
        "a@example.org",
        "jobs@acme.example",
        &simple_mail("f2", "FAULT"),
    );
    assert_eq!(code, 451, "never 250 for a mail not stored");
    let mut child = d.child.take().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(70), "{}", d.log());
    assert!(d.log().contains("the store writer stopped"), "{}", d.log());
    // Started again (as systemd would), it serves.
    restart_with_fault(&mut d, None);
    let (code, _) = d.connect().send_mail(
        "a@example.org",
        "jobs@acme.example",
        &simple_mail("f3", "after"),
    );
    assert_eq!(code, 250);
}
