//! The 10 MB limit, by SIZE and in DATA, with the session reused afterwards,
//! and the daemon's memory while a client streams far past the limit.

use std::io::Write;

use crate::support::harness::*;

const LIMIT: usize = 10 * 1024 * 1024;

/// A mail of exactly `size` bytes: headers, then 76-character lines of filler.
fn mail_of_size(size: usize) -> Vec<u8> {
    let mut m = b"From: big@example.org\r\nSubject: big\r\n\r\n".to_vec();
    let line = [b'A'; 76];
    // Leave 80 to 157 bytes for a last line, so that it can end in CRLF.
    while m.len() + 78 + 80 <= size {
        m.extend_from_slice(&line);
        m.extend_from_slice(b"\r\n");
    }
    let rest = size - m.len();
    m.extend(std::iter::repeat_n(b'B', rest - 2));
    m.extend_from_slice(b"\r\n");
    assert_eq!(m.len(), size);
    m
}

#[test]
fn ten_megabytes_accepted_one_byte_more_refused_in_data_and_session_reused() {
    let d = Daemon::start();
    let mut c = d.connect();
    c.ehlo();

    // One byte over: read to its end, refused after the final dot.
    let (code, text) = c.transaction(
        "big@example.org",
        "jobs@acme.example",
        &mail_of_size(LIMIT + 1),
    );
    assert_eq!(code, 552, "{text}");
    assert!(text.starts_with("552 5.3.4"), "{text}");

    // Exactly at the limit, in the same session.
    let exact = mail_of_size(LIMIT);
    let (code, text) = c.transaction("big@example.org", "jobs@acme.example", &exact);
    assert_eq!(code, 250, "{text}");

    // And the session is still good for a small one.
    let (code, _) = c.transaction(
        "a@example.org",
        "jobs@acme.example",
        &simple_mail("after-big", "after"),
    );
    assert_eq!(code, 250);
    c.expect_cmd("QUIT", 221);

    assert_eq!(d.reader().count_messages().unwrap(), 2);
    let id = latest(&d.reader(), 10)
        .iter()
        .find(|e| e.subject.as_deref() == Some("big"))
        .unwrap()
        .id;
    assert_eq!(d.content(id), exact);
}

#[test]
fn size_declared_over_the_limit_is_refused_at_mail_and_session_reused() {
    let d = Daemon::start();
    let mut c = d.connect();
    c.ehlo();
    let text = c.expect_cmd(
        &format!("MAIL FROM:<big@example.org> SIZE={}", LIMIT + 1),
        552,
    );
    assert!(text.starts_with("552 5.3.4"), "{text}");
    c.expect_cmd(&format!("MAIL FROM:<big@example.org> SIZE={LIMIT}"), 250);
    c.expect_cmd("RCPT TO:<jobs@acme.example>", 250);
    c.expect_cmd("DATA", 354);
    c.send(&mail_of_size(LIMIT));
    c.send(b".\r\n");
    c.expect(250);
}

/// Streams 50 MB past the limit and samples the daemon's memory on the way:
/// RSS must stay flat while discarding. Prints the figures.
#[test]
fn memory_stays_flat_while_a_client_streams_50_mb_past_the_limit() {
    let d = Daemon::start();
    let pid = d.pid();
    let mut c = d.connect();
    c.ehlo();
    c.expect_cmd("MAIL FROM:<flood@example.org>", 250);
    c.expect_cmd("RCPT TO:<jobs@acme.example>", 250);
    c.expect_cmd("DATA", 354);
    let (rss_start, _) = rss_kib(pid);

    let chunk = {
        let mut v = Vec::with_capacity(1 << 20);
        while v.len() + 78 <= 1 << 20 {
            v.extend_from_slice(&[b'x'; 76]);
            v.extend_from_slice(b"\r\n");
        }
        v
    };
    let total_mb = 60;
    let mut samples = Vec::new();
    for mb in 1..=total_mb {
        c.send(&chunk);
        if mb >= 15 && mb % 5 == 0 {
            // Give the daemon a moment to consume what is in flight.
            std::thread::sleep(std::time::Duration::from_millis(50));
            samples.push((mb, rss_kib(pid).0));
        }
    }
    c.send(b".\r\n");
    let (code, text) = c.reply();
    assert_eq!(code, 552, "{text}");
    c.expect_cmd("NOOP", 250);
    let (rss_end, hwm) = rss_kib(pid);

    let min = samples.iter().map(|s| s.1).min().unwrap();
    let max = samples.iter().map(|s| s.1).max().unwrap();
    let mut report = std::io::stderr();
    let _ = writeln!(
        report,
        "memory while streaming {total_mb} MB past a 10 MB limit: RSS start {rss_start} KiB, \
         while discarding {min}..{max} KiB (samples {samples:?}), end {rss_end} KiB, peak {hwm} KiB"
    );
    assert!(
        max - min < 4 * 1024,
        "RSS grew while discarding: {samples:?}"
    );
    assert!(
        hwm - rss_start < 3 * 10 * 1024,
        "peak RSS growth {} KiB",
        hwm - rss_start
    );
    assert_eq!(d.reader().count_messages().unwrap(), 0);
}

#[test]
fn a_hundred_big_mails_at_once_stay_within_the_memory_budget() {
    let d =
        Daemon::start_with("max_connections_per_client = 200\nmax_connections_per_network = 200");
    let (idle_before, _) = rss_kib(d.pid());
    let size = 9_900_000;
    let mail = std::sync::Arc::new(mail_of_size(size));
    let addr = d.addr;
    let clients: Vec<_> = (0..100)
        .map(|i| {
            let mail = mail.clone();
            std::thread::spawn(move || {
                let mut c = Conn::open(addr);
                // The later ones wait for room in the budget before 354.
                c.read_timeout(std::time::Duration::from_secs(120));
                c.expect(220);
                c.ehlo();
                c.expect_cmd(&format!("MAIL FROM:<big{i}@example.org> SIZE={size}"), 250);
                c.expect_cmd("RCPT TO:<jobs@acme.example>", 250);
                let (code, text) = c.cmd("DATA");
                if code != 354 {
                    return (code, text);
                }
                // Each mail unique, so that none is a duplicate.
                let mut body = format!("X-N: {i}\r\n").into_bytes();
                body.extend_from_slice(&mail);
                c.send(&body);
                c.send(b".\r\n");
                c.reply()
            })
        })
        .collect();
    let answers: Vec<(u16, String)> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    // The later ones waited for room; on a slow machine some wait longer
    // than a minute and are told to try again (452), as a client would.
    let mut stored = 0;
    let mut later = 0;
    for (i, (code, text)) in answers.iter().enumerate() {
        match code {
            250 => stored += 1,
            452 => {
                let mut body = format!("X-N: {i}\r\n").into_bytes();
                body.extend_from_slice(&mail);
                let (code, text) = d.connect().send_mail(
                    &format!("big{i}@example.org"),
                    "jobs@acme.example",
                    &body,
                );
                assert_eq!(code, 250, "the retry is stored: {text}");
                later += 1;
            }
            _ => panic!("{text}"),
        }
    }
    assert_eq!(stored + later, 100, "{answers:?}");
    let (_, peak) = rss_kib(d.pid());
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (idle_after, _) = rss_kib(d.pid());
    eprintln!(
        "100 x 9.9 MB at once: RSS idle before {idle_before} KiB, peak {peak} KiB, idle after {idle_after} KiB; {later} told to try again"
    );
    // The budget (200 MB of mail by default) bounds the peak…
    assert!(peak < 700 * 1024, "peak {peak} KiB");
    // …and the memory goes back to the system after the burst (what stays
    // is mostly the writer's 40 MB page cache).
    assert!(
        idle_after < idle_before + 100 * 1024,
        "idle before {idle_before} KiB, after {idle_after} KiB"
    );
}
