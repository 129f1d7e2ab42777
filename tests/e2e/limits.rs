//! The 10 MB limit, by SIZE and in DATA, with the session reused afterwards,
//! and the daemon's memory while a client streams far past the limit.

use std::io::Write;

use crate::harness::*;

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
