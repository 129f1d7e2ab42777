//! SMTP dialogs against the real binary: bytes sent, reply codes expected.
//! One test per hostile shape of the protocol and of addresses that the
//! listener must answer (pipelining, bare line endings, smuggling, relay
//! tricks, overlong lines, ...).

use std::time::Duration;

use crate::support::harness::*;

/// One step of a dialog.
enum Step<'a> {
    /// Send these bytes as they are.
    Send(&'a [u8]),
    /// Read one reply and check its code.
    Expect(u16),
    /// The server closes the connection.
    Closed,
}
use Step::*;

fn run(d: &Daemon, steps: &[Step]) {
    let mut c = d.connect();
    for (i, step) in steps.iter().enumerate() {
        match step {
            Send(bytes) => c.send(bytes),
            Expect(code) => {
                let (got, text) = c.reply();
                assert_eq!(got, *code, "step {i}: expected {code}, got {text:?}");
            }
            Closed => assert!(c.closed(), "step {i}: connection still open"),
        }
    }
}

#[test]
fn null_sender_size_and_body_parameters() {
    let d = Daemon::start();
    run(
        &d,
        &[
            Send(b"EHLO c.example\r\n"),
            Expect(250),
            Send(b"MAIL FROM:<>\r\n"),
            Expect(250),
            Send(b"RSET\r\n"),
            Expect(250),
            Send(b"MAIL FROM:<a@b.example> SIZE=12345 BODY=8BITMIME\r\n"),
            Expect(250),
            Send(b"RSET\r\n"),
            Expect(250),
            Send(b"MAIL FROM:<a@b.example> BODY=7BIT SMTPUTF8\r\n"),
            Expect(250),
            Send(b"RSET\r\n"),
            Expect(250),
            Send(b"MAIL FROM:<a@b.example> SIZE=10485760\r\n"),
            Expect(250),
            Send(b"RSET\r\n"),
            Expect(250),
            Send(b"MAIL FROM:<a@b.example> SIZE=10485761\r\n"),
            Expect(552),
            Send(b"MAIL FROM:<a@b.example> BODY=BINARYMIME\r\n"),
            Expect(555),
            Send(b"MAIL FROM:<a@b.example> FROB=1\r\n"),
            Expect(555),
            Send(b"QUIT\r\n"),
            Expect(221),
            Closed,
        ],
    );
}

#[test]
fn ehlo_advertises_the_real_limits() {
    let d = Daemon::start_with("max_message_size = 2000000");
    let mut c = d.connect();
    let text = c.expect_cmd("EHLO c.example", 250);
    for ext in [
        "PIPELINING",
        "SIZE 2000000",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
    ] {
        assert!(
            text.contains(&format!("250-{ext}\r\n")) || text.contains(&format!("250 {ext}\r\n")),
            "{ext} in {text}"
        );
    }
    assert!(
        !text.contains("STARTTLS") && !text.contains("CHUNKING"),
        "{text}"
    );
    // HELO: plain SMTP, no extensions, but a mail still goes through.
    c.expect_cmd("HELO c.example", 250);
    c.expect_cmd("MAIL FROM:<a@b.example>", 250);
}

/// The smuggling variants: a bare CR or LF around a dot, then a whole second
/// transaction, then the real end of data.
const SMUGGLING_VARIANTS: &[&[u8]] = &[
    b"\n.\n",
    b"\n.\r\n",
    b"\r.\r",
    b"\r.\r\n",
    b"\r\n.\n",
    b"\r\n.\r",
    b"\n.\n\r\n",
    b"\r\n\x00.\r\n",
];

fn smuggling_payload(variant: &[u8]) -> Vec<u8> {
    let mut p = b"From: a@b.example\r\nSubject: first\r\n\r\nhello".to_vec();
    p.extend_from_slice(variant);
    p.extend_from_slice(
        b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<jobs@acme.example>\r\nDATA\r\nFrom: ceo@acme.example\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n.\r\n",
    );
    p
}

fn stored_subjects(d: &Daemon) -> Vec<String> {
    latest(&d.reader(), 100)
        .into_iter()
        .map(|e| e.subject.unwrap_or_default())
        .collect()
}

#[test]
fn bare_line_ending_dots_never_end_data_rejected_by_default() {
    let d = Daemon::start();
    for variant in SMUGGLING_VARIANTS {
        let bare = !variant.contains(&0);
        let before = d.reader().count_messages().unwrap();
        let mut c = d.connect();
        c.ehlo();
        c.expect_cmd("MAIL FROM:<a@b.example>", 250);
        c.expect_cmd("RCPT TO:<jobs@acme.example>", 250);
        c.expect_cmd("DATA", 354);
        c.send(&smuggling_payload(variant));
        // One reply for the whole thing, then a pipelined second transaction
        // of the client's own that works normally.
        let (code, text) = c.reply();
        c.send(b"NOOP\r\n");
        c.expect(250);
        let after = d.reader().count_messages().unwrap();
        if bare {
            assert_eq!(code, 554, "{variant:?}: {text}");
            assert!(text.starts_with("554 5.5.2"), "{text}");
            assert_eq!(after, before, "{variant:?}: nothing stored");
        } else {
            assert_eq!(code, 250, "{variant:?}: {text}");
            assert_eq!(after, before + 1, "{variant:?}: exactly one mail");
        }
        assert!(
            !stored_subjects(&d).contains(&"smuggled".to_string()),
            "{variant:?} smuggled a mail"
        );
    }
}

#[test]
fn bare_line_ending_dots_never_end_data_when_kept() {
    let d = Daemon::start_with("bare_line_endings = \"keep\"");
    for variant in SMUGGLING_VARIANTS {
        let before = d.reader().count_messages().unwrap();
        let mut c = d.connect();
        let (code, text) = c.send_mail(
            "a@b.example",
            "jobs@acme.example",
            smuggling_payload(variant)[..]
                .strip_suffix(b".\r\n")
                .unwrap(),
        );
        assert_eq!(code, 250, "{variant:?}: {text}");
        c.expect_cmd("NOOP", 250);
        assert_eq!(
            d.reader().count_messages().unwrap(),
            before + 1,
            "{variant:?}: one mail only"
        );
        let id = latest(&d.reader(), 1)[0].id;
        // The second "transaction" is part of the first mail's body, its bytes
        // kept exactly; only a dot right after CRLF is unstuffed.
        let payload = smuggling_payload(variant);
        let mut expected = payload.strip_suffix(b".\r\n").unwrap().to_vec();
        if let Some(pos) = expected.windows(3).position(|w| w == b"\r\n.") {
            expected.remove(pos + 2);
        }
        assert_eq!(d.content(id), expected, "{variant:?}");
        assert!(!stored_subjects(&d).contains(&"smuggled".to_string()));
    }
}

#[test]
fn command_line_too_long_is_refused_without_buffering() {
    let d = Daemon::start();
    let mut long = b"NOOP ".to_vec();
    long.extend(std::iter::repeat_n(b'x', 100_000));
    long.extend_from_slice(b"\r\n");
    run(
        &d,
        &[
            Send(b"EHLO c.example\r\n"),
            Expect(250),
            Send(&long),
            Expect(500),
            Send(b"NOOP\r\n"),
            Expect(250),
        ],
    );
}

#[test]
fn too_many_recipients_452() {
    let d = Daemon::start_with("max_recipients = 3\nmax_errors = 50");
    run(
        &d,
        &[
            Send(b"EHLO c.example\r\n"),
            Expect(250),
            Send(b"MAIL FROM:<a@b.example>\r\n"),
            Expect(250),
            Send(b"RCPT TO:<jobs@acme.example>\r\n"),
            Expect(250),
            Send(b"RCPT TO:<jobs+1@acme.example>\r\n"),
            Expect(250),
            Send(b"RCPT TO:<jobs+2@acme.example>\r\n"),
            Expect(250),
            Send(b"RCPT TO:<jobs+3@acme.example>\r\n"),
            Expect(452),
            Send(b"DATA\r\n"),
            Expect(354),
            Send(b"Subject: three\r\n\r\nx\r\n.\r\n"),
            Expect(250),
        ],
    );
}

#[test]
fn commands_out_of_order_503() {
    let d = Daemon::start();
    run(
        &d,
        &[
            Send(b"MAIL FROM:<a@b.example>\r\n"),
            Expect(503),
            Send(b"EHLO c.example\r\n"),
            Expect(250),
            Send(b"RCPT TO:<jobs@acme.example>\r\n"),
            Expect(503),
            Send(b"DATA\r\n"),
            Expect(503),
            Send(b"MAIL FROM:<a@b.example>\r\n"),
            Expect(250),
            Send(b"MAIL FROM:<a@b.example>\r\n"),
            Expect(503),
            Send(b"DATA\r\n"),
            Expect(503),
            Send(b"RCPT TO:<nobody@acme.example>\r\n"),
            Expect(550),
            Send(b"DATA\r\n"),
            Expect(554),
        ],
    );
}

#[test]
fn unknown_commands_500_then_421_after_too_many_errors() {
    let d = Daemon::start_with("max_errors = 3");
    run(
        &d,
        &[
            Send(b"EHLO c.example\r\n"),
            Expect(250),
            Send(b"FOO\r\n"),
            Expect(500),
            Send(b"VRFY jobs\r\n"),
            Expect(502),
            Send(b"BAR baz\r\n"),
            Expect(500),
            Expect(421),
            Closed,
        ],
    );
}

#[test]
fn pipelined_transactions_are_answered_in_order() {
    let d = Daemon::start();
    let mut c = d.connect();
    c.ehlo();
    c.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<jobs@acme.example>\r\nRCPT TO:<x@elsewhere.example>\r\nDATA\r\n");
    c.expect(250);
    c.expect(250);
    c.expect(550);
    c.expect(354);
    c.send(b"Subject: one\r\n\r\n1\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<karriere@acme.example>\r\nDATA\r\n");
    c.expect(250);
    c.expect(250);
    c.expect(250);
    c.expect(354);
    c.send(b"Subject: two\r\n\r\n2\r\n.\r\nQUIT\r\n");
    c.expect(250);
    c.expect(221);
    assert_eq!(stored_subjects(&d), vec!["two", "one"]);
}

#[test]
fn early_talker_before_the_greeting_is_refused() {
    let d = Daemon::start_with("greeting_delay = \"500ms\"");
    let mut c = Conn::open(d.addr);
    c.send(b"EHLO spambot.example\r\nMAIL FROM:<a@b.example>\r\n");
    let (code, text) = c.reply();
    assert_eq!(code, 554, "{text}");
    assert!(c.closed());
    // A polite client that waits is served.
    let mut c = d.connect();
    c.expect_cmd("EHLO polite.example", 250);
}

#[test]
fn pipelining_before_the_ehlo_reply_is_refused() {
    let d = Daemon::start();
    run(
        &d,
        &[
            Send(b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<jobs@acme.example>\r\n"),
            Expect(554),
            Closed,
        ],
    );
}

#[test]
fn bdat_and_starttls_are_not_offered() {
    let d = Daemon::start();
    run(
        &d,
        &[
            Send(b"EHLO c.example\r\n"),
            Expect(250),
            Send(b"STARTTLS\r\n"),
            Expect(502),
            Send(b"AUTH PLAIN AGpvYnMAeA==\r\n"),
            Expect(502),
            Send(b"MAIL FROM:<a@b.example>\r\n"),
            Expect(250),
            Send(b"RCPT TO:<jobs@acme.example>\r\n"),
            Expect(250),
            // The chunk would be read as commands: refused and closed.
            Send(b"BDAT 30 LAST\r\nMAIL FROM:<x@y.example>\r\nDATA\r\n"),
            Expect(503),
            Closed,
        ],
    );
    assert_eq!(d.reader().count_messages().unwrap(), 0);
}

#[test]
fn idle_client_is_timed_out_with_421() {
    let d = Daemon::start_with("command_timeout = \"1s\"");
    let mut c = d.connect();
    c.ehlo();
    std::thread::sleep(Duration::from_millis(1500));
    let (code, text) = c.reply();
    assert_eq!(code, 421, "{text}");
    assert!(text.starts_with("421 4.4.2"), "{text}");
    assert!(c.closed());
}

#[test]
fn stalled_data_is_timed_out_and_nothing_is_stored() {
    let d = Daemon::start_with("data_timeout = \"1s\"");
    let mut c = d.connect();
    c.ehlo();
    c.expect_cmd("MAIL FROM:<a@b.example>", 250);
    c.expect_cmd("RCPT TO:<jobs@acme.example>", 250);
    c.expect_cmd("DATA", 354);
    c.send(b"Subject: half\r\n\r\nhalf a mail");
    let (code, _) = c.reply();
    assert_eq!(code, 421);
    assert_eq!(d.reader().count_messages().unwrap(), 0);
}

#[test]
fn session_cap_ends_a_slow_but_busy_client() {
    let d = Daemon::start_with("session_timeout = \"2s\"");
    let mut c = d.connect();
    c.ehlo();
    let start = std::time::Instant::now();
    loop {
        let (code, _) = c.cmd("NOOP");
        if code == 421 {
            break;
        }
        assert_eq!(code, 250);
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "session never capped"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// RCPT forms: relay tricks and odd spellings. Only our own mailboxes pass.
#[test]
fn only_jobs_addresses_are_accepted_whatever_the_trick() {
    let d = Daemon::start_with("max_errors = 1000");
    let mut c = d.connect();
    c.ehlo();
    c.expect_cmd("MAIL FROM:<a@b.example>", 250);
    let long_local = format!("RCPT TO:<jobs+{}@acme.example>", "x".repeat(300));
    let cases: Vec<(&str, u16)> = vec![
        ("RCPT TO:<jobs@acme.example>", 250),
        ("RCPT TO:<JOBS@ACME.EXAMPLE>", 250),
        ("RCPT TO:<jobs+anything@acme.example>", 250),
        ("RCPT TO:<jobs+backend@acme.example>", 250),
        ("RCPT TO:<karriere@acme.example>", 250),
        ("RCPT TO: <jobs@acme.example>", 250),
        ("RCPT TO:<someone@acme.example>", 550),
        ("RCPT TO:<jobs@elsewhere.example>", 550),
        ("RCPT TO:<jobs%elsewhere.example@acme.example>", 550),
        ("RCPT TO:<elsewhere.example!jobs@acme.example>", 550),
        ("RCPT TO:<@acme.example:victim@elsewhere.example>", 550),
        ("RCPT TO:<\"victim@elsewhere.example\"@acme.example>", 550),
        ("RCPT TO:<\"jobs%x\"@acme.example>", 550),
        ("RCPT TO:<jobs@acme.example.>", 550),
        ("RCPT TO:<jobs@acme.example.elsewhere.example>", 550),
        ("RCPT TO:<jobs@xn--bcher-kva.example>", 550),
        ("RCPT TO:<jobs@bücher.example>", 550),
        ("RCPT TO:<postmaster>", 550),
        ("RCPT TO:<>", 550),
        (long_local.as_str(), 550),
    ];
    for (line, expected) in cases {
        let (code, text) = c.cmd(line);
        let ok = if expected == 550 {
            code == 550 || code == 501
        } else {
            code == expected
        };
        assert!(ok, "{line:?}: expected {expected}, got {text:?}");
    }
}

#[test]
fn connection_limit_421_and_the_others_keep_working() {
    let d = Daemon::start_with("max_connections = 3");
    let mut open: Vec<Conn> = (0..3).map(|_| d.connect()).collect();
    let mut extra = Conn::open(d.addr);
    let (code, text) = extra.reply();
    assert_eq!(code, 421, "{text}");
    assert!(text.starts_with("421 4.3.2"), "{text}");
    assert!(extra.closed());
    for c in &mut open {
        c.expect_cmd("NOOP", 250);
    }
    let (code, _) = open[0].send_mail(
        "a@b.example",
        "jobs@acme.example",
        &simple_mail("limit-1", "x"),
    );
    assert_eq!(code, 250);
    open[0].expect_cmd("QUIT", 221);
    drop(open.remove(0));
    // A slot is free again.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = Conn::open(d.addr);
        let (code, _) = c.reply();
        if code == 220 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Protocol soup: fragments of commands, dots, bare CR/LF, NULs and random
/// bytes from many connections. The daemon never panics and keeps serving.
#[test]
fn random_protocol_soup_never_takes_the_daemon_down() {
    let mut d = Daemon::start_with("max_errors = 1000\ncommand_timeout = \"2s\"");
    let tokens: &[&[u8]] = &[
        b"EHLO x\r\n",
        b"HELO y\r\n",
        b"MAIL FROM:<a@b.example>\r\n",
        b"MAIL FROM:<>\r\n",
        b"RCPT TO:<jobs@acme.example>\r\n",
        b"RCPT TO:<\"a@b\"@acme.example>\r\n",
        b"DATA\r\n",
        b"BDAT 10\r\n",
        b"RSET\r\n",
        b"NOOP\r\n",
        b".\r\n",
        b"\r\n.\r\n",
        b"\n.\n",
        b"\r.\r",
        b"..\r\n",
        b"\x00",
        b"\xff\xfe",
        b"MAIL FROM:<a@b.example> SIZE=99999999999999999999\r\n",
        b"RCPT TO:<@a:b@c>\r\n",
        b"AUTH LOGIN\r\n",
        b"STARTTLS\r\n",
        b"\r",
        b"\n",
        b"x",
    ];
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut scripts = Vec::new();
    for _ in 0..24 {
        let mut script = Vec::new();
        for _ in 0..(next() % 400) {
            if next() % 5 == 0 {
                let n = (next() % 64) as usize;
                script.extend((0..n).map(|_| next() as u8));
            } else {
                script.extend_from_slice(tokens[(next() % tokens.len() as u64) as usize]);
            }
        }
        scripts.push(script);
    }
    let addr = d.addr;
    let clients: Vec<_> = scripts
        .into_iter()
        .map(|script| {
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let Ok(mut s) = std::net::TcpStream::connect(addr) else {
                    return;
                };
                s.set_read_timeout(Some(Duration::from_millis(200))).ok();
                for chunk in script.chunks(97) {
                    if s.write_all(chunk).is_err() {
                        return;
                    }
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let alive = d.child.as_mut().unwrap().try_wait().unwrap().is_none();
    assert!(alive, "daemon died: {}", d.log());
    let (code, _) = d.connect().send_mail(
        "a@example.org",
        "jobs@acme.example",
        &simple_mail("after-soup", "after"),
    );
    assert_eq!(code, 250);
    assert!(!d.log().contains("panicked"), "{}", d.log());
}

#[test]
fn content_sent_before_the_354_reply_is_refused() {
    let d = Daemon::start();
    let mut c = d.connect();
    c.ehlo();
    // The whole transaction in one write, message included: RFC 2920 says
    // the client waits for 354 after DATA.
    c.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<jobs@acme.example>\r\nDATA\r\nSubject: blind\r\n\r\nbody\r\n.\r\n");
    c.expect(250);
    c.expect(250);
    let (code, text) = c.reply();
    assert_eq!(code, 554, "{text}");
    assert!(text.contains("5.5.0"), "{text}");
    assert!(c.closed());
    assert!(stored_subjects(&d).is_empty(), "nothing stored");
    // A client that waits for 354 is served as ever.
    let (code, _) = d.connect().send_mail(
        "a@b.example",
        "jobs@acme.example",
        &simple_mail("patient", "patient"),
    );
    assert_eq!(code, 250);
}

#[test]
fn sender_and_recipient_syntax_get_501_and_ip_literals_a_policy_reply() {
    let d = Daemon::start_with("max_errors = 1000");
    let mut c = d.connect();
    c.ehlo();
    for (line, expected) in [
        ("MAIL FROM:<a@xn--->", 501),
        ("MAIL FROM:<a@-bad.example>", 501),
        ("MAIL FROM:<a@nodot>", 501),
        ("MAIL FROM:<a@[192.0.2.1]>", 553),
        ("MAIL FROM:<a@[IPv6:2001:db8::1]>", 553),
        ("MAIL FROM:<\"john doe\"@example.org>", 250),
        ("RSET", 250),
        (
            "MAIL FROM:<SRS0=ab12=XY=example.org=erika@acme.example>",
            250,
        ),
    ] {
        let (code, text) = c.cmd(line);
        assert_eq!(code, expected, "{line:?}: {text:?}");
    }
    for (line, expected) in [
        ("RCPT TO:<jobs@acme.example.>", 501),
        ("RCPT TO:<jobs@-acme.example>", 501),
        ("RCPT TO:<\"victim@elsewhere.example\"@acme.example>", 550),
        ("RCPT TO:<jobs@elsewhere.example>", 550),
        ("RCPT TO:<jobs%elsewhere.example@acme.example>", 550),
        ("RCPT TO:<jobs@acme.example>", 250),
    ] {
        let (code, text) = c.cmd(line);
        assert_eq!(code, expected, "{line:?}: {text:?}");
    }
}

#[test]
fn a_trickle_in_data_is_cut_off_at_the_minimum_rate() {
    let d = Daemon::start_with("data_timeout = \"2s\"\nmin_data_rate = 1000");
    let mut c = d.connect();
    c.ehlo();
    c.expect_cmd("MAIL FROM:<a@b.example>", 250);
    c.expect_cmd("RCPT TO:<jobs@acme.example>", 250);
    c.expect_cmd("DATA", 354);
    // 10 bytes every half second: never idle for data_timeout, but far
    // below 1,000 bytes/s once the grace (here the 2 s data_timeout) is over.
    let started = std::time::Instant::now();
    for _ in 0..20 {
        if !c.try_send(b"x-trickle\n") {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        if d.log().contains("slower than min_data_rate") {
            break;
        }
    }
    let cut = started.elapsed();
    assert!(cut < Duration::from_secs(6), "never cut off: {cut:?}");
    let (code, text) = c.reply();
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("data rate too low"), "{text}");
    assert!(stored_subjects(&d).is_empty());
}

#[test]
fn bare_line_feeds_are_normalized_to_crlf_when_asked() {
    let d = Daemon::start_with("bare_line_endings = \"normalize\"");
    let mut c = d.connect();
    c.ehlo();
    c.expect_cmd("MAIL FROM:<a@b.example>", 250);
    c.expect_cmd("RCPT TO:<jobs@acme.example>", 250);
    c.expect_cmd("DATA", 354);
    // A bare "\n.\n" does not end the mail; only CRLF.CRLF does.
    c.send(b"Subject: lf\nFrom: a@b.example\n\nline one\n.\nline two\r\n.\r\n");
    let (code, text) = c.reply();
    assert_eq!(code, 250, "{text}");
    let id: i64 = text.trim().rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(
        d.content(id),
        b"Subject: lf\r\nFrom: a@b.example\r\n\r\nline one\r\n.\r\nline two\r\n".to_vec()
    );
}

#[test]
fn one_host_cannot_take_every_connection() {
    let d = Daemon::start_with("max_connections_per_client = 5");
    // One host opens 200 connections and holds them.
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..200 {
        let mut c = Conn::open(d.addr);
        let (code, text) = c.reply();
        match code {
            220 => held.push(c),
            421 => {
                assert!(text.starts_with("421 4.7.0"), "{text}");
                refused += 1;
            }
            _ => panic!("{text}"),
        }
    }
    assert_eq!((held.len(), refused), (5, 195));
    // Another client is still served: Python's smtplib from 127.0.0.2.
    let script = format!(
        "import smtplib\n\
s = smtplib.SMTP('127.0.0.1', {}, source_address=('127.0.0.2', 0), timeout=20)\n\
s.sendmail('b@c.example', ['jobs@acme.example'], 'Subject: other client\\r\\n\\r\\nhello\\r\\n')\n\
s.quit()\n",
        d.addr.port()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stored_subjects(&d), vec!["other client"]);
    // 195 refusals, logged once (the next line would say how many since).
    let lines = d
        .log()
        .lines()
        .filter(|l| l.contains("connection limit reached"))
        .count();
    assert_eq!(lines, 1, "{}", d.log());
    drop(held);
}
