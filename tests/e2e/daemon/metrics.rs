//! `/metrics` scraped over real HTTP (curl, and a raw TcpStream): the
//! counters move with the mail sent and refused, the queue gauge and the
//! delivery counter with a mail the relay delivers; off by default.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::harness::*;
use crate::support::upstream::Upstream;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One request over a raw connection: (status line, headers and body).
fn http(port: u16, request: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.lines().next().unwrap_or("").to_string();
    (status, text)
}

/// A scrape with curl, parsed: `name{labels}` → value.
fn scrape(port: u16) -> HashMap<String, f64> {
    let started = Instant::now();
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .expect("curl must be installed (see .ci/run)");
    assert!(out.status.success(), "curl: {out:?}");
    eprintln!("scrape took {:?}", started.elapsed());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("sample");
            (name.to_string(), value.parse().expect("number"))
        })
        .collect()
}

fn value(m: &HashMap<String, f64>, name: &str) -> f64 {
    *m.get(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", m.keys().collect::<Vec<_>>()))
}

#[test]
fn counters_and_the_queue_gauge_move_with_mail_and_deliveries() {
    let up = Upstream::start();
    let port = free_port();
    let directory = example_directory()
        .replace("port = 2600", &format!("port = {}", up.addr.port()))
        .replace(
            "retry_initial = \"5m\"",
            "retry_initial = \"5m\"\npoll_interval = \"20ms\"",
        );
    let d = Daemon::start_world(
        &format!("\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
        &directory,
        None,
    );
    assert!(
        d.log().contains("serving metrics on /metrics"),
        "{}",
        d.log()
    );
    assert_eq!(listening_sockets(d.pid()), 2, "SMTP and metrics");
    let before = scrape(port);
    assert_eq!(value(&before, "jobmail_mails_accepted_total"), 0.0);
    assert_eq!(value(&before, "jobmail_outbox_items{state=\"sent\"}"), 0.0);
    assert_eq!(
        value(&before, "jobmail_upstream_paused{subsidiary=\"acme-de\"}"),
        0.0
    );

    // Two mails in one session, a recipient refused in another.
    let mails = [
        fixture("application-pdf.eml"),
        stuff(&simple_mail("metrics-1", "Bewerbung")),
    ];
    let mut c = d.connect();
    let (code, _) = c.send_mail(
        "anna.schmidt@posteo.de",
        "jobs+backend@acme.example",
        &mails[0],
    );
    assert_eq!(code, 250);
    let (code, _) = c.transaction("erika@example.org", "jobs@acme.example", &mails[1]);
    assert_eq!(code, 250);
    c.expect_cmd("QUIT", 221);
    let mut c = d.connect();
    c.ehlo();
    c.expect_cmd("MAIL FROM:<erika@example.org>", 250);
    c.expect_cmd("RCPT TO:<ceo@acme.example>", 550);
    c.expect_cmd("QUIT", 221);

    let after = scrape(port);
    assert_eq!(value(&after, "jobmail_mails_accepted_total"), 2.0);
    // The bytes as sent (neither mail has a line to dot-stuff).
    assert_eq!(
        value(&after, "jobmail_mail_bytes_accepted_total"),
        (mails[0].len() + mails[1].len()) as f64
    );
    assert_eq!(
        value(&after, "jobmail_smtp_refusals_total{code=\"550\"}"),
        1.0
    );
    assert!(value(&after, "jobmail_sessions_opened_total") >= 2.0);
    assert!(value(&after, "jobmail_sessions_total{result=\"quit\"}") >= 2.0);
    assert!(value(&after, "jobmail_store_commit_seconds_count") >= 2.0);
    assert!(value(&after, "jobmail_store_commit_seconds_sum") > 0.0);
    assert_eq!(
        value(&after, "jobmail_store_commit_seconds_bucket{le=\"+Inf\"}"),
        value(&after, "jobmail_store_commit_seconds_count")
    );
    assert!(value(&after, "jobmail_store_bytes{file=\"database\"}") > 0.0);

    // A mail through the relay: the delivery counter and the queue gauge.
    json(d.cli(&[
        "send",
        "--json",
        "--template",
        "interview-invitation",
        "--candidate",
        "1",
        "--sender",
        "anna",
    ]));
    up.wait_for(1, 20);
    let deadline = Instant::now() + Duration::from_secs(20);
    let sent = loop {
        let m = scrape(port);
        if value(&m, "jobmail_outbox_items{state=\"sent\"}") == 1.0 {
            break m;
        }
        assert!(Instant::now() < deadline, "never sent: {m:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        value(&sent, "jobmail_delivery_attempts_total{result=\"sent\"}"),
        1.0
    );
    assert_eq!(
        value(
            &sent,
            "jobmail_delivery_attempts_total{result=\"deferred\"}"
        ),
        0.0
    );
    assert_eq!(value(&sent, "jobmail_outbox_items{state=\"queued\"}"), 0.0);
    assert!(value(&sent, "jobmail_heartbeat_age_seconds{loop=\"relay\"}") < 5.0);

    // Plain HTTP, by hand: only /metrics, only GET and HEAD.
    let (status, text) = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK", "{text}");
    assert!(
        text.contains("Content-Type: text/plain; version=0.0.4"),
        "{text}"
    );
    assert!(text.contains("\r\n\r\n# HELP jobmail_"), "{text}");
    let (status, text) = http(port, "HEAD /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(text.ends_with("\r\n\r\n"), "{text}");
    assert_eq!(
        http(port, "GET / HTTP/1.1\r\n\r\n").0,
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        http(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").0,
        "HTTP/1.1 405 Method Not Allowed"
    );
}

/// The TCP sockets process `pid` listens on (from /proc).
fn listening_sockets(pid: u32) -> usize {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().to_string();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| t.lines().skip(1).map(str::to_string).collect::<Vec<_>>())
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(3) == Some(&"0A") && f.get(9).is_some_and(|i| inodes.iter().any(|x| x == i))
        })
        .count()
}

#[test]
fn metrics_are_off_by_default() {
    let d = Daemon::start();
    assert!(!d.log().contains("metrics"), "{}", d.log());
    assert_eq!(listening_sockets(d.pid()), 1, "SMTP only");
    let s = json(d.cli(&["status", "--json"]));
    assert!(s["metrics"].is_null(), "{s}");
}
