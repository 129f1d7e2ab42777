//! The relay end to end: the real binary delivers composed mail to a real
//! SMTP server on 127.0.0.1 (ours, `upstream.rs`), from the VERP address,
//! with the frozen bytes; the answer comes home; faults are retried, failed
//! or deferred as an MTA would.

use std::time::{Duration, Instant};

use jobmail::matcher::token::TokenKey;

use crate::support::harness::*;
use crate::support::upstream::{AtDot, Upstream};

const KEY: [u8; 32] = [0x42; 32];

/// The example company, its upstream on `up`, fast retries for the tests.
fn relay_daemon(up: &Upstream, lifetime: &str) -> Daemon {
    Daemon::start_world("", &relay_directory(up, lifetime), Some(KEY))
}

fn relay_directory(up: &Upstream, lifetime: &str) -> String {
    example_directory()
        .replace("port = 2600", &format!("port = {}", up.addr.port()))
        .replace("send_timeout = \"10m\"", "send_timeout = \"1s\"")
        .replace(
            "retry_initial = \"5m\"",
            "retry_initial = \"100ms\"\npoll_interval = \"20ms\"",
        )
        .replace("retry_max = \"1h\"", "retry_max = \"200ms\"")
        .replace(
            "queue_lifetime = \"5d\"",
            &format!("queue_lifetime = \"{lifetime}\""),
        )
}

/// The example company, its upstream on `port`, polled every 20 ms; retries
/// stay 5 minutes apart, so a retry never passes for a first attempt.
fn polled_directory(port: u16) -> String {
    example_directory()
        .replace("port = 2600", &format!("port = {port}"))
        .replace(
            "retry_initial = \"5m\"",
            "retry_initial = \"5m\"\npoll_interval = \"20ms\"",
        )
}

/// `polled_directory` for a TLS upstream on `localhost` (the name in its
/// certificate), with `security` and, if given, the company CA.
fn tls_directory(up: &Upstream, security: &str, ca_file: Option<&std::path::Path>) -> String {
    let ca = ca_file
        .map(|f| format!("\nca_file = {:?}", f.display().to_string()))
        .unwrap_or_default();
    polled_directory(up.addr.port())
        .replace("host = \"127.0.0.1\"", "host = \"localhost\"")
        .replace(
            "security = \"none\"",
            &format!("security = \"{security}\"{ca}"),
        )
}

/// Waits until an outbox item is in `state`; returns its queue entry.
fn wait_state(d: &Daemon, item: i64, state: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let q = json(d.cli(&["queue", "list", "--json"]));
        let entry = q["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == item)
            .cloned()
            .expect("item listed");
        if entry["state"] == state {
            return entry;
        }
        assert!(
            Instant::now() < deadline,
            "item {item} never became {state}: {entry}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(30));
    }
}

fn apply(d: &Daemon) {
    let (code, _) = d.connect().send_mail(
        "anna.schmidt@posteo.de",
        "jobs+backend@acme.example",
        &fixture("application-pdf.eml"),
    );
    assert_eq!(code, 250);
}

fn send(d: &Daemon, template: &str) -> (i64, i64, String) {
    let v = json(d.cli(&[
        "send",
        "--json",
        "--template",
        template,
        "--candidate",
        "1",
        "--sender",
        "anna",
    ]));
    let q = &v["queued"][0];
    (
        q["item"].as_i64().unwrap(),
        q["message"].as_i64().unwrap(),
        q["message_id"].as_str().unwrap().to_string(),
    )
}

#[test]
fn a_composed_mail_reaches_the_upstream_and_the_answer_comes_home() {
    let up = Upstream::start();
    let d = relay_daemon(&up, "5d");
    apply(&d);
    let (item, message, message_id) = send(&d, "interview-invitation");
    let delivered = up.wait_for(1, 20);
    let got = &delivered[0];
    assert_eq!(
        got.from,
        format!("bounce+{}@acme.example", TokenKey::new(KEY).verp_tag(item)),
        "signed VERP envelope sender"
    );
    assert_eq!(got.to, vec!["anna.schmidt@posteo.de"]);
    assert_eq!(got.data, d.content(message), "the frozen bytes, exactly");
    let p = jobmail::inbound::parse::parse_message(&got.data, false);
    let h = &p.headers;
    assert_eq!(h.from.as_ref().unwrap().address, "anna.berger@acme.example");
    assert_eq!(h.message_id.as_deref(), Some(message_id.as_str()));
    let reply_to = &h.reply_to[0].address;
    let token = reply_to
        .strip_prefix("jobs+")
        .unwrap()
        .split('@')
        .next()
        .unwrap();
    assert_eq!(TokenKey::new(KEY).check_reply_token(token), Some(1));
    assert_eq!(h.in_reply_to.len(), 1, "answers the candidate's mail");
    assert_eq!(h.references.last(), Some(&message_id));
    assert!(
        p.text.contains("Anna Berger\r\nSenior Recruiter")
            || p.text.contains("Anna Berger\nSenior Recruiter"),
        "{}",
        p.text
    );
    assert!(
        p.documents
            .iter()
            .any(|doc| doc.filename == "Anfahrt-ACME-Muenchen.pdf")
    );
    let entry = wait_state(&d, item, "sent");
    assert!(
        entry["last_reply"]
            .as_str()
            .unwrap()
            .contains("queued as TEST"),
        "{entry}"
    );

    // The candidate answers from another address, quoting our Message-ID:
    // the same thread, by In-Reply-To against our own outgoing mail.
    let reply = format!(
        "From: Anna <anna@other.example>\r\nTo: jobs@acme.example\r\nSubject: Re: Einladung\r\nIn-Reply-To: <{message_id}>\r\nMessage-ID: <answer-1@other.example>\r\n\r\nGerne am Donnerstag.\r\n"
    );
    let (code, text) =
        d.connect()
            .send_mail("anna@other.example", "jobs@acme.example", reply.as_bytes());
    assert_eq!(code, 250);
    let id = text.trim().rsplit(' ').next().unwrap().to_string();
    let m = json(d.cli(&["message", "show", &id, "--json"]));
    assert_eq!(
        (m["reason"].as_str(), m["candidate"]["id"].as_i64()),
        (Some("in-reply-to"), Some(1)),
        "{m}"
    );
}

#[test]
fn faults_are_retried_failed_or_deferred_like_an_mta() {
    let up = Upstream::start();
    let d = relay_daemon(&up, "5d");
    apply(&d);
    let events = |item: i64| -> Vec<String> {
        // The history is in the store; the CLI shows the current state.
        d.reader()
            .events(item)
            .unwrap()
            .into_iter()
            .map(|e| e.to_state)
            .collect()
    };

    // 4xx, then success: deferred, then sent on retry.
    up.then(&[AtDot::Temporary]);
    let (item, _, _) = send(&d, "rejection");
    wait_state(&d, item, "sent");
    assert_eq!(
        events(item),
        vec!["queued", "sending", "deferred", "sending", "sent"]
    );

    // 5xx: failed at once, no retry.
    up.then(&[AtDot::Permanent]);
    let (item, _, _) = send(&d, "rejection");
    let entry = wait_state(&d, item, "failed");
    assert!(
        entry["last_reply"].as_str().unwrap().contains("554"),
        "{entry}"
    );
    assert_eq!(events(item), vec!["queued", "sending", "failed"]);

    // A disconnect after DATA: deferred, then sent.
    up.then(&[AtDot::Disconnect]);
    let (item, _, _) = send(&d, "rejection");
    wait_state(&d, item, "sent");
    assert_eq!(
        events(item),
        vec!["queued", "sending", "deferred", "sending", "sent"]
    );

    // No final reply within the send timeout: the upstream may have taken
    // it, so it is tried again with the very same bytes and Message-ID.
    let before = up.accepted().len();
    up.then(&[AtDot::Stall(Duration::from_millis(1500))]);
    let (item, _, message_id) = send(&d, "rejection");
    wait_state(&d, item, "sent");
    let after = up.wait_for(before + 2, 10);
    let copies: Vec<_> = after[before..]
        .iter()
        .filter(|x| String::from_utf8_lossy(&x.data).contains(&message_id))
        .collect();
    assert_eq!(copies.len(), 2, "delivered twice, recognisably the same");
    assert_eq!(copies[0].data, copies[1].data);
    let history = d.reader().events(item).unwrap();
    assert!(
        history
            .iter()
            .any(|e| e.to_state == "deferred" && e.text.contains("same Message-ID")),
        "{history:?}"
    );
}

#[test]
fn a_mail_that_keeps_failing_temporarily_fails_at_the_end_of_its_lifetime() {
    let up = Upstream::start();
    // The breaker stays out of it: the lifetime alone ends the mail.
    let directory = relay_directory(&up, "1s").replace(
        "max_connections = 10",
        "max_connections = 4\nbreaker_threshold = 1000",
    );
    let d = Daemon::start_world("", &directory, Some(KEY));
    apply(&d);
    up.then(&[AtDot::Temporary; 50]);
    let (item, _, _) = send(&d, "rejection");
    let entry = wait_state(&d, item, "failed");
    assert!(
        entry["last_reply"].as_str().unwrap().contains("lifetime"),
        "{entry}"
    );
    assert!(entry["attempts"].as_i64().unwrap() >= 2, "{entry}");
    // The upstream is fixed: the operator sends the failed mail again, with
    // its frozen bytes and a new queue lifetime.
    up.script.lock().unwrap().clear();
    let retry = d.cli(&["queue", "retry", &item.to_string()]);
    assert!(
        retry.status.success(),
        "{}",
        String::from_utf8_lossy(&retry.stderr)
    );
    wait_state(&d, item, "sent");
    assert_eq!(up.accepted().len(), 1);
}

#[test]
fn kill_9_while_200_mails_are_sent_loses_none_and_leaves_none_sending() {
    let up = Upstream::start();
    let mut d = relay_daemon(&up, "5d");
    apply(&d);
    // 199 more candidates for the same position, straight into the store.
    {
        let mut store = d.reader();
        for i in 0..199 {
            store
                .add_form_application(&jobmail::store::candidates::FormApplication {
                    candidate: None,
                    email: Some(&format!("c{i}@example.org")),
                    first_name: "Kim",
                    last_name: &format!("Test{i}"),
                    subsidiary: "acme-de",
                    position: Some("backend-rust"),
                    language: None,
                })
                .unwrap();
        }
    }
    // Slow answers keep sends in flight when the kills come (10
    // connections at 150 ms a mail: the 200 take longer than the kills).
    up.then(&[AtDot::Stall(Duration::from_millis(150)); 1000]);
    let v = json(d.cli(&[
        "send",
        "--json",
        "--template",
        "rejection",
        "--position",
        "backend-rust",
    ]));
    let items: Vec<(i64, String)> = v["queued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["item"].as_i64().unwrap(),
                q["message_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(items.len(), 200);
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(400));
        let sent_before = up.accepted().len();
        d.kill9();
        d.spawn();
        eprintln!("kill -9 round {round}: {sent_before} accepted upstream before the kill");
    }
    // Everything goes out in the end; a mail the upstream took just before
    // a kill (its outcome not yet recorded) goes again after it, the same
    // bytes: once, plus at most once per kill.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let q = json(d.cli(&["queue", "list", "--json", "--limit", "1000"]));
        let sent = q["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["state"] == "sent")
            .count();
        if sent == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {sent} of 200 sent: {}",
            q["summary"]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let accepted = up.accepted();
    let mut twice = 0;
    for (item, message_id) in &items {
        let copies: Vec<_> = accepted
            .iter()
            .filter(|x| String::from_utf8_lossy(&x.data).contains(message_id.as_str()))
            .collect();
        assert!(
            (1..=4).contains(&copies.len()),
            "item {item}: delivered {} times",
            copies.len()
        );
        if copies.len() >= 2 {
            twice += 1;
            assert!(
                copies.iter().all(|c| c.data == copies[0].data),
                "a repeat is the same mail"
            );
        }
    }
    eprintln!(
        "kill -9 x3 during 200 sends: 200 sent, {twice} delivered twice (same Message-ID), none lost"
    );
    let sending = json(d.cli(&["queue", "list", "--json", "--state", "sending"]));
    assert!(sending["items"].as_array().unwrap().is_empty());
}

#[test]
fn starttls_required_but_not_offered_sends_nothing_in_plaintext() {
    let up = Upstream::start();
    let directory = example_directory()
        .replace("port = 2600", &format!("port = {}", up.addr.port()))
        .replace("security = \"none\"", "security = \"starttls\"")
        .replace(
            "retry_initial = \"5m\"",
            "retry_initial = \"10s\"\npoll_interval = \"20ms\"",
        );
    let d = Daemon::start_world("", &directory, Some(KEY));
    apply(&d);
    let (item, _, _) = send(&d, "rejection");
    let entry = wait_state(&d, item, "deferred");
    let reply = entry["last_reply"].as_str().unwrap().to_lowercase();
    assert!(reply.contains("tls"), "{entry}");
    assert!(
        up.deliveries.lock().unwrap().is_empty(),
        "nothing went out in plaintext"
    );
}

#[test]
fn queue_commands_change_what_the_queue_shows() {
    // An upstream that refuses connections: mail is deferred and stays.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let directory = example_directory()
        .replace("port = 2600", &format!("port = {closed}"))
        .replace(
            "retry_initial = \"5m\"",
            "retry_initial = \"1h\"\npoll_interval = \"20ms\"",
        );
    let d = Daemon::start_world("", &directory, Some(KEY));
    apply(&d);
    let (first, first_message, _) = send(&d, "rejection");
    let (second, _, _) = send(&d, "rejection");
    let entry = wait_state(&d, first, "deferred");
    assert!(
        entry["last_reply"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("connect"),
        "{entry}"
    );
    wait_state(&d, second, "deferred");
    let item = |id: i64| {
        let q = json(d.cli(&["queue", "list", "--json"]));
        q["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .cloned()
    };

    assert!(
        d.cli(&["queue", "hold", &first.to_string()])
            .status
            .success()
    );
    assert_eq!(item(first).unwrap()["held"], true);
    let text = String::from_utf8_lossy(&d.cli(&["queue", "list"]).stdout).to_string();
    assert!(
        text.contains("deferred!") && text.contains("-- ") && text.contains("2 deferred"),
        "{text}"
    );
    assert!(
        d.cli(&["queue", "release", &first.to_string()])
            .status
            .success()
    );
    assert_eq!(item(first).unwrap()["held"], false);

    let due_before = item(second).unwrap()["next_attempt_at"].clone();
    assert!(
        d.cli(&["queue", "retry", &second.to_string()])
            .status
            .success()
    );
    let due_after = item(second).unwrap()["next_attempt_at"].clone();
    assert_ne!(due_before, due_after, "due now");
    // The relay retries it at once and defers it again; then both wait.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(item(second).unwrap()["state"] == "deferred"
        && item(second).unwrap()["attempts"].as_i64().unwrap() >= 2)
    {
        assert!(Instant::now() < deadline, "not retried");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = d.cli(&["queue", "flush"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("flush: 2 item(s)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The relay tries both again at once, and defers them again (for an hour).
    let deadline = Instant::now() + Duration::from_secs(20);
    while ![first, second].iter().all(|&id| {
        let i = item(id).unwrap();
        i["state"] == "deferred"
            && i["attempts"].as_i64().unwrap() >= if id == second { 3 } else { 2 }
    }) {
        assert!(Instant::now() < deadline, "not retried after the flush");
        std::thread::sleep(Duration::from_millis(20));
    }

    let shown = json(d.cli(&["queue", "show", &first.to_string(), "--json"]));
    let states: Vec<&str> = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to_state"].as_str().unwrap())
        .collect();
    assert_eq!(&states[..3], &["queued", "sending", "deferred"]);
    assert!(shown["message"].as_str().unwrap().contains("Message-ID:"));

    let q = json(d.cli(&["queue", "list", "--json", "--subsidiary", "acme-fr"]));
    assert!(q["items"].as_array().unwrap().is_empty());
    let total: i64 = q["summary"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_i64().unwrap())
        .sum();
    assert_eq!(total, 2, "{}", q["summary"]);
    let batch = item(first).unwrap()["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    let q = json(d.cli(&["queue", "list", "--json", "--batch", &batch]));
    assert_eq!(q["items"].as_array().unwrap().len(), 1);

    // Paging newest first, by state: one item per page, none twice.
    let page = |before: Option<i64>| -> Vec<i64> {
        let mut args = vec![
            "queue", "list", "--json", "--state", "deferred", "--state", "sent",
        ];
        args.extend(["--state", "deferred", "--limit", "1"]);
        let before = before.map(|b| b.to_string());
        if let Some(b) = &before {
            args.extend(["--before", b.as_str()]);
        }
        json(d.cli(&args))["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(page(None), vec![second]);
    assert_eq!(page(Some(second)), vec![first]);
    assert_eq!(page(Some(first)), Vec::<i64>::new());

    assert!(
        d.cli(&["queue", "delete", &first.to_string()])
            .status
            .success()
    );
    assert!(item(first).is_none(), "gone from the queue");
    // The totals kept as items change agree with a count over the outbox.
    let counted: serde_json::Map<String, serde_json::Value> = {
        let db = rusqlite::Connection::open(d.db()).unwrap();
        let mut stmt = db
            .prepare("SELECT state, count(*) FROM outbox GROUP BY state")
            .unwrap();
        stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                serde_json::json!(r.get::<_, i64>(1)?),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    let q = json(d.cli(&["queue", "list", "--json"]));
    assert_eq!(q["summary"], serde_json::Value::Object(counted));
    let thread = json(d.cli(&["candidate", "show", "1", "--json"]));
    assert!(
        thread["thread"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == first_message),
        "the mail stays in the thread"
    );
    assert!(
        !d.cli(&["queue", "retry", &first.to_string()])
            .status
            .success()
    );
}

/// A Postfix-shaped delivery status notification about `message_id`.
fn dsn(action: &str, status: &str, message_id: &str) -> Vec<u8> {
    format!(
        "From: MAIL-DAEMON <MAILER-DAEMON@mx.posteo.example>\r\nTo: jobs@acme.example\r\n\
Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-{status}-{action}@mx.posteo.example>\r\n\
Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n\r\n\
--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.posteo.example\r\n\r\n\
Final-Recipient: rfc822; anna.schmidt@posteo.de\r\nAction: {action}\r\nStatus: {status}\r\n\
Diagnostic-Code: smtp; 550 {status} <anna.schmidt@posteo.de>: Recipient address rejected\r\n\r\n\
--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: jobs@acme.example\r\nMessage-ID: <{message_id}>\r\nSubject: x\r\n\r\n\
--B--\r\n"
    )
    .into_bytes()
}

/// A rejection to candidate 1 scheduled far ahead: (item, Message-ID).
fn schedule_far(d: &Daemon) -> (i64, String) {
    let v = json(d.cli(&[
        "send",
        "--json",
        "--template",
        "rejection",
        "--candidate",
        "1",
        "--at",
        "2099-01-01T09:00:00+01:00",
    ]));
    let q = &v["queued"][0];
    (
        q["item"].as_i64().unwrap(),
        q["message_id"].as_str().unwrap().to_string(),
    )
}

/// The signed VERP address outbox item `item` was sent from.
fn verp(item: i64) -> String {
    format!("bounce+{}@acme.example", TokenKey::new(KEY).verp_tag(item))
}

/// Sends a report and returns the id of the stored message. Each report
/// gets a Message-ID of its own, so that none is a duplicate of another.
fn report(d: &Daemon, from: &str, to: &str, bytes: &[u8]) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let bytes = String::from_utf8_lossy(bytes).replacen(
        "Message-ID: <",
        &format!("Message-ID: <report-{n}-"),
        1,
    );
    let (code, text) = d.connect().send_mail(from, to, bytes.as_bytes());
    assert_eq!(code, 250, "{text}");
    text.trim().rsplit(' ').next().unwrap().to_string()
}

#[test]
fn delivery_reports_mark_bounces_and_suppress_hard_ones() {
    let up = Upstream::start();
    let d = relay_daemon(&up, "5d");
    apply(&d);
    let (item, _, message_id) = send(&d, "rejection");
    wait_state(&d, item, "sent");
    assert_eq!(
        up.accepted()[0].from,
        verp(item),
        "sent from its signed VERP address"
    );

    // A hard bounce: the null sender, to the item's signed VERP address,
    // about its recipient.
    let id = report(&d, "", &verp(item), &dsn("failed", "5.1.1", &message_id));
    let entry = wait_state(&d, item, "bounced");
    assert!(
        entry["last_reply"].as_str().unwrap().contains("5.1.1"),
        "{entry}"
    );
    let m = json(d.cli(&["message", "show", &id, "--json"]));
    assert_eq!(
        (m["reason"].as_str(), m["candidate"]["id"].as_i64()),
        (Some("bounce"), Some(1)),
        "in the thread: {m}"
    );
    // The thread (CLI, API, web page) shows our mail bounced, with the
    // report's diagnostic.
    let c = json(d.cli(&["candidate", "show", "1", "--json"]));
    let ours = c["thread"]
        .as_array()
        .and_then(|t| t.iter().find(|e| e["outbox"]["item"] == item))
        .unwrap_or_else(|| panic!("our mail in {c}"));
    assert_eq!(ours["outbox"]["state"], "bounced", "{ours}");
    assert!(
        ours["outbox"]["reply"]
            .as_str()
            .is_some_and(|r| r.contains("5.1.1")),
        "{ours}"
    );
    let s = json(d.cli(&["suppression", "list", "--json"]));
    assert_eq!(
        s["suppressions"][0]["address"], "anna.schmidt@posteo.de",
        "{s}"
    );
    let candidates = json(d.cli(&["candidate", "list", "--json"]));
    assert_eq!(
        candidates["candidates"].as_array().unwrap().len(),
        1,
        "the bounce made no candidate"
    );

    // Compose skips a suppressed address until it is removed.
    let out = d.cli(&[
        "send",
        "--json",
        "--template",
        "rejection",
        "--candidate",
        "1",
    ]);
    assert!(!out.status.success(), "nothing queued is an error");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("suppressed"),
        "{v}"
    );
    assert!(
        d.cli(&["suppression", "remove", "anna.schmidt@posteo.de"])
            .status
            .success()
    );

    // A soft bounce (4.x.x in the end): bounced, no suppression.
    let (second, _, second_id) = send(&d, "rejection");
    wait_state(&d, second, "sent");
    report(&d, "", &verp(second), &dsn("failed", "4.4.7", &second_id));
    wait_state(&d, second, "bounced");
    let s = json(d.cli(&["suppression", "list", "--json"]));
    assert!(s["suppressions"].as_array().unwrap().is_empty(), "{s}");

    // An out-of-office reply to our mail is threaded, never a bounce.
    let (fifth, _, fifth_id) = send(&d, "rejection");
    wait_state(&d, fifth, "sent");
    let ooo = format!(
        "From: Anna <anna.schmidt@posteo.de>\r\nTo: jobs@acme.example\r\nSubject: Abwesenheitsnotiz\r\n\
Auto-Submitted: auto-replied\r\nIn-Reply-To: <{fifth_id}>\r\nMessage-ID: <ooo-1@posteo.de>\r\n\r\nIch bin bis Montag nicht erreichbar.\r\n"
    );
    let id = report(
        &d,
        "anna.schmidt@posteo.de",
        "jobs@acme.example",
        ooo.as_bytes(),
    );
    let m = json(d.cli(&["message", "show", &id, "--json"]));
    assert_eq!(
        (m["reason"].as_str(), m["candidate"]["id"].as_i64()),
        (Some("in-reply-to"), Some(1)),
        "{m}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(wait_state(&d, fifth, "sent")["state"], "sent");

    // A delay notice is no failure.
    let (third, _, third_id) = send(&d, "rejection");
    wait_state(&d, third, "sent");
    report(&d, "", &verp(third), &dsn("delayed", "4.4.1", &third_id));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(wait_state(&d, third, "sent")["state"], "sent");
    let history = d.reader().events(third).unwrap();
    assert!(
        history
            .iter()
            .any(|e| e.text.contains("delivery report: delayed")),
        "{history:?}"
    );
}

#[test]
fn an_item_queued_before_signed_verp_still_bounces_from_its_old_address() {
    let up = Upstream::start();
    let d = relay_daemon(&up, "5d");
    apply(&d);
    // Held, so that it can be turned into an item of the earlier version
    // (`bounce+<item>@`, no MAC) before it goes out.
    let (item, message_id) = schedule_far(&d);
    let old = format!("bounce+{item}@acme.example");
    let db = rusqlite::Connection::open(d.db()).unwrap();
    db.execute(
        "UPDATE outbox SET envelope_from = ?1, state = 'queued', not_before = NULL, next_attempt_at = 0 WHERE id = ?2",
        rusqlite::params![old, item],
    )
    .unwrap();
    drop(db);
    wait_state(&d, item, "sent");
    assert_eq!(up.accepted()[0].from, old);
    // Not from a stranger, though.
    report(
        &d,
        "attacker@evil.example",
        &old,
        &dsn("failed", "5.1.1", &message_id),
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(wait_state(&d, item, "sent")["state"], "sent");
    // Nor for an item last changed longer ago than any bounce takes.
    let db = rusqlite::Connection::open(d.db()).unwrap();
    let sent_at: i64 = db
        .query_row("SELECT updated_at FROM outbox WHERE id = ?1", [item], |r| {
            r.get(0)
        })
        .unwrap();
    db.execute(
        "UPDATE outbox SET updated_at = ?1 WHERE id = ?2",
        rusqlite::params![sent_at - 91 * 86_400_000, item],
    )
    .unwrap();
    report(&d, "", &old, &dsn("failed", "5.1.1", &message_id));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(wait_state(&d, item, "sent")["state"], "sent");
    db.execute(
        "UPDATE outbox SET updated_at = ?1 WHERE id = ?2",
        rusqlite::params![sent_at, item],
    )
    .unwrap();
    report(&d, "", &old, &dsn("failed", "5.1.1", &message_id));
    wait_state(&d, item, "bounced");
}

#[test]
fn forged_delivery_reports_change_nothing() {
    let up = Upstream::start();
    let d = relay_daemon(&up, "5d");
    apply(&d);
    let (item, _, message_id) = send(&d, "rejection");
    wait_state(&d, item, "sent");
    let hard = dsn("failed", "5.1.1", &message_id);
    let victim = String::from_utf8(hard.clone())
        .unwrap()
        .replace("anna.schmidt@posteo.de", "victim@elsewhere.example");
    let no_verp_no_id = String::from_utf8(dsn("failed", "5.1.1", "unknown@elsewhere.example"))
        .unwrap()
        .replace("Message-ID: <unknown@elsewhere.example>\r\n", "");
    // Each is a hard bounce of the sent item that must not count.
    let forged: Vec<(&str, String, String, Vec<u8>)> = vec![
        (
            "a stranger's envelope sender",
            "attacker@evil.example".into(),
            verp(item),
            hard.clone(),
        ),
        (
            "the plain jobs address, linked by Message-ID",
            "".into(),
            "jobs@acme.example".into(),
            hard.clone(),
        ),
        (
            "the plain jobs address, naming only the recipient",
            "".into(),
            "jobs@acme.example".into(),
            no_verp_no_id.into_bytes(),
        ),
        (
            "a guessed VERP address (the sequential form)",
            "".into(),
            format!("bounce+{item}@acme.example"),
            hard.clone(),
        ),
        (
            "a badly signed VERP address",
            "".into(),
            format!("bounce+{item}.aaaaaaaaaaaaa@acme.example"),
            hard.clone(),
        ),
        (
            "a recipient the item never had",
            "".into(),
            verp(item),
            victim.into_bytes(),
        ),
    ];
    for (what, from, to, bytes) in &forged {
        let id = report(&d, from, to, bytes);
        let m = json(d.cli(&["message", "show", &id, "--json"]));
        assert_eq!(
            (m["reason"].as_str(), m["confidence"].as_str()),
            (Some("unverified-report"), Some("low")),
            "{what}: shown as an unverified report: {m}"
        );
        assert_eq!(m["candidate"]["id"], 1, "{what}: in the thread: {m}");
        assert_eq!(
            wait_state(&d, item, "sent")["state"],
            "sent",
            "{what}: the item is still sent"
        );
        let s = json(d.cli(&["suppression", "list", "--json"]));
        assert!(
            s["suppressions"].as_array().unwrap().is_empty(),
            "{what}: nobody suppressed: {s}"
        );
    }

    // A report about an item not sent yet, even properly signed: the item
    // keeps its state (and its own outcome later).
    let (scheduled, _) = schedule_far(&d);
    report(&d, "", &verp(scheduled), &hard);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(wait_state(&d, scheduled, "scheduled")["state"], "scheduled");
    let s = json(d.cli(&["suppression", "list", "--json"]));
    assert!(s["suppressions"].as_array().unwrap().is_empty(), "{s}");

    // The genuine report still bounces and suppresses.
    report(&d, "", &verp(item), &hard);
    wait_state(&d, item, "bounced");
    let s = json(d.cli(&["suppression", "list", "--json"]));
    assert_eq!(
        s["suppressions"].as_array().unwrap().len(),
        1,
        "only the item's recipient: {s}"
    );
    assert_eq!(s["suppressions"][0]["address"], "anna.schmidt@posteo.de");
}

#[test]
fn auth_rejected_fails_the_mail_and_never_shows_the_password() {
    let up = Upstream::start();
    *up.auth.lock().unwrap() = Some(false);
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("acme.password");
    std::fs::write(&password_file, "s3cret-Passw0rd\n").unwrap();
    let directory = example_directory()
        .replace("port = 2600", &format!("port = {}", up.addr.port()))
        .replace(
            "# username = \"jobs@acme.example\"",
            "username = \"jobs@acme.example\"",
        )
        .replace(
            "# password_file = \"/etc/jobmail/acme-de.password\"",
            &format!("password_file = {:?}", password_file.display().to_string()),
        )
        .replace(
            "retry_initial = \"5m\"",
            "retry_initial = \"100ms\"\npoll_interval = \"20ms\"",
        )
        // By default a rejected login defers (and the breaker counts it);
        // this operator wants to hear at once.
        .replace(
            "max_connections = 10",
            "max_connections = 10\nauth_failure = \"fail\"",
        );
    let d = Daemon::start_world("", &directory, Some(KEY));
    apply(&d);
    let (item, _, _) = send(&d, "rejection");
    let entry = wait_state(&d, item, "failed");
    assert!(
        entry["last_reply"].as_str().unwrap().contains("535"),
        "{entry}"
    );
    assert_eq!(
        up.credentials_seen.lock().unwrap()[0],
        (
            "jobs@acme.example".to_string(),
            "s3cret-Passw0rd".to_string()
        )
    );
    assert!(up.deliveries.lock().unwrap().is_empty());
    let shown = [
        d.log(),
        String::from_utf8_lossy(&d.cli(&["queue", "list", "--json"]).stdout).to_string(),
        String::from_utf8_lossy(
            &d.cli(&["queue", "show", &item.to_string(), "--json"])
                .stdout,
        )
        .to_string(),
        String::from_utf8_lossy(&d.cli(&["config", "check"]).stdout).to_string(),
    ];
    for text in shown {
        assert!(
            !text.contains("s3cret-Passw0rd"),
            "the password leaked: {text}"
        );
    }
}

#[test]
fn a_failing_upstream_is_paused_not_hammered() {
    let up = Upstream::start();
    let directory = example_directory()
        .replace("port = 2600", &format!("port = {}", up.addr.port()))
        .replace(
            "max_connections = 10",
            "max_connections = 1\nbreaker_threshold = 2\nbreaker_pause = \"2s\"",
        )
        .replace(
            "retry_initial = \"5m\"",
            "retry_initial = \"100ms\"\npoll_interval = \"20ms\"",
        )
        .replace("retry_max = \"1h\"", "retry_max = \"100ms\"");
    let d = Daemon::start_world("", &directory, Some(KEY));
    apply(&d);
    up.then(&[AtDot::Temporary; 2]);
    let (item, _, _) = send(&d, "rejection");
    // Two 4xx in a row: paused, and visible.
    let deadline = Instant::now() + Duration::from_secs(10);
    let paused = loop {
        let q = json(d.cli(&["queue", "list", "--json"]));
        if let Some(p) = q["paused_upstreams"].as_array().unwrap().first() {
            break p.clone();
        }
        assert!(Instant::now() < deadline, "never paused");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(paused["subsidiary"], "acme-de");
    let text = String::from_utf8_lossy(&d.cli(&["queue", "list"]).stdout).to_string();
    assert!(text.contains("upstream of acme-de paused until"), "{text}");
    let tries = up.deliveries.lock().unwrap().len();
    assert_eq!(tries, 2);
    // While paused, nothing is tried (retries are due every 100 ms).
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        up.deliveries.lock().unwrap().len(),
        tries,
        "hammered while paused"
    );
    // After the pause it goes out.
    wait_state(&d, item, "sent");
}

#[test]
fn the_rate_limit_spaces_the_sends() {
    let up = Upstream::start();
    let directory = polled_directory(up.addr.port()).replace(
        "max_connections = 10",
        "max_connections = 4\nrate_limit = 120",
    );
    let d = Daemon::start_world("", &directory, Some(KEY));
    apply(&d);
    let started = Instant::now();
    for _ in 0..4 {
        send(&d, "rejection");
    }
    up.wait_for(4, 20);
    // 120 a minute: one every 500 ms, so four take at least 1.5 s.
    assert!(
        started.elapsed() >= Duration::from_millis(1450),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn one_connection_carries_many_mails_and_a_dropped_one_is_replaced_without_a_deferral() {
    let up = Upstream::start();
    let directory =
        polled_directory(up.addr.port()).replace("max_connections = 10", "max_connections = 1");
    let d = Daemon::start_world("", &directory, Some(KEY));
    apply(&d);
    // The second mail's connection is dropped by the upstream after its 250:
    // the third finds it dead (NOOP) and opens a new one; no mail waits for
    // a retry (the first retry would be 5 minutes away).
    up.then(&[AtDot::Accept, AtDot::AcceptThenClose]);
    let items: Vec<i64> = (0..6).map(|_| send(&d, "rejection").0).collect();
    up.wait_for(6, 20);
    for item in items {
        let entry = wait_state(&d, item, "sent");
        assert_eq!(entry["attempts"], 1, "{entry}");
    }
    let connections = *up.connections.lock().unwrap();
    assert_eq!(connections, 2, "six mails, one drop: two connections");
    // The relay introduces itself with the configured host name.
    let ehlo = up.ehlo.lock().unwrap().clone();
    assert_eq!(ehlo, vec!["mx.test.example"; 2]);
}

#[test]
fn sigterm_lets_a_running_send_finish_and_starts_no_new_one() {
    let up = Upstream::start();
    let mut d = relay_daemon(&up, "5d");
    apply(&d);
    up.then(&[AtDot::Stall(Duration::from_millis(800))]);
    let (first, _, _) = send(&d, "rejection");
    // The first send is under way (the upstream stalls on it).
    let deadline = Instant::now() + Duration::from_secs(10);
    while up.deliveries.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the send never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut child = d.terminate();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    // It finished before the daemon stopped, and was recorded as sent.
    assert_eq!(up.accepted().len(), 1);
    let item = d
        .reader()
        .queue(&[], 10)
        .unwrap()
        .into_iter()
        .find(|i| i.id == first)
        .unwrap();
    assert_eq!(item.state, "sent");
}

/// A private CA (its PEM) and a server configuration for `localhost` signed by it.
fn private_ca() -> (String, rustls::ServerConfig) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![server_cert.der().clone()],
        rustls::pki_types::PrivatePkcs8KeyDer::from(server_key.serialize_der()).into(),
    )
    .unwrap();
    (ca.pem(), config)
}

#[test]
fn starttls_to_an_upstream_behind_a_private_ca() {
    let (ca_pem, config) = private_ca();
    let up = Upstream::start_tls(config);
    let secrets = tempfile::tempdir().unwrap();
    let ca_file = secrets.path().join("company-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let directory = tls_directory(&up, "starttls", Some(&ca_file));
    let d = Daemon::start_world("", &directory, Some(KEY));
    apply(&d);
    let (item, _, message_id) = send(&d, "rejection");
    let entry = wait_state(&d, item, "sent");
    let delivered = up.accepted();
    assert_eq!(delivered.len(), 1, "{entry}");
    assert!(delivered[0].tls, "delivered over TLS");
    assert!(String::from_utf8_lossy(&delivered[0].data).contains(&message_id));

    // Without the company CA, the certificate is not trusted: nothing is sent.
    let untrusted = tls_directory(&up, "starttls", None);
    let d = Daemon::start_world("", &untrusted, Some(KEY));
    apply(&d);
    let (item, _, _) = send(&d, "rejection");
    let entry = wait_state(&d, item, "deferred");
    assert!(
        entry["last_reply"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("certificate")
            || entry["last_reply"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("tls"),
        "{entry}"
    );
    assert_eq!(up.accepted().len(), 1, "nothing more went out");
}

#[test]
fn auth_rejected_can_be_configured_to_defer() {
    let up = Upstream::start();
    *up.auth.lock().unwrap() = Some(false);
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("acme.password");
    std::fs::write(&password_file, "rotated-soon\n").unwrap();
    let directory = example_directory()
        .replace("port = 2600", &format!("port = {}", up.addr.port()))
        .replace(
            "# username = \"jobs@acme.example\"",
            "username = \"jobs@acme.example\"\nauth_failure = \"defer\"",
        )
        .replace(
            "# password_file = \"/etc/jobmail/acme-de.password\"",
            &format!("password_file = {:?}", password_file.display().to_string()),
        )
        .replace(
            "retry_initial = \"5m\"",
            "retry_initial = \"100ms\"\npoll_interval = \"20ms\"",
        )
        .replace("retry_max = \"1h\"", "retry_max = \"200ms\"");
    let d = Daemon::start_world("", &directory, Some(KEY));
    apply(&d);
    let (item, _, _) = send(&d, "rejection");
    let entry = wait_state(&d, item, "deferred");
    assert!(
        entry["last_reply"].as_str().unwrap().contains("535"),
        "{entry}"
    );
    // The provider accepts the login again: the mail goes out.
    *up.auth.lock().unwrap() = Some(true);
    wait_state(&d, item, "sent");
    assert_eq!(up.accepted().len(), 1);
}

#[test]
fn a_host_that_does_not_answer_is_given_up_after_the_connect_timeout() {
    use std::os::fd::AsRawFd;
    // A listener whose accept queue is full drops new SYNs: a connect hangs
    // as it would to a host that does not answer.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    unsafe {
        libc::listen(hole.as_raw_fd(), 0);
    }
    let mut occupants = Vec::new();
    loop {
        match std::net::TcpStream::connect_timeout(
            &hole.local_addr().unwrap(),
            Duration::from_millis(300),
        ) {
            Ok(s) => occupants.push(s),
            Err(_) => break,
        }
        assert!(occupants.len() < 10, "the accept queue never filled");
    }
    let directory = polled_directory(hole.local_addr().unwrap().port())
        .replace("connect_timeout = \"30s\"", "connect_timeout = \"1s\"");
    let d = Daemon::start_world("", &directory, Some(KEY));
    apply(&d);
    let started = Instant::now();
    let (item, _, _) = send(&d, "rejection");
    let entry = wait_state(&d, item, "deferred");
    // Given up after about a second, not the 10-minute send timeout nor the OS's two minutes.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        entry["last_reply"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("timed out"),
        "{entry}"
    );
}

#[test]
fn implicit_tls_to_an_upstream_on_a_submissions_port() {
    let (ca_pem, config) = private_ca();
    let up = Upstream::start_implicit_tls(config);
    let secrets = tempfile::tempdir().unwrap();
    let ca_file = secrets.path().join("company-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let directory = tls_directory(&up, "tls", Some(&ca_file));
    let d = Daemon::start_world("", &directory, Some(KEY));
    apply(&d);
    let (item, _, _) = send(&d, "rejection");
    wait_state(&d, item, "sent");
    let delivered = up.accepted();
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0].tls, "delivered over TLS from the first byte");
}

/// `count` candidates who applied to backend-rust through the form.
fn form_candidates(d: &Daemon, count: usize) {
    for n in 0..count {
        let out = d.cli(&[
            "application",
            "add",
            "--email",
            &format!("bulk{n}@candidates.example"),
            "--name",
            &format!("Bulk Kandidat{n}"),
            "--position",
            "backend-rust",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The queue's per-state counts.
fn summary(d: &Daemon) -> serde_json::Value {
    json(d.cli(&["queue", "list", "--json", "--limit", "1"]))["summary"].clone()
}

#[test]
fn a_bulk_to_a_slow_upstream_claims_only_what_it_can_send() {
    let up = Upstream::start();
    // The first mails take a long time, so that the bulk is queued behind
    // them while they hold the upstream's 4 connections; then it flows.
    up.then(&[AtDot::Stall(Duration::from_secs(15)); 4]);
    up.then(&[AtDot::Stall(Duration::from_millis(100)); 56]);
    let d = Daemon::start_world(
        "",
        &relay_directory(&up, "5d")
            .replace("max_connections = 10", "max_connections = 4")
            .replace("send_timeout = \"1s\"", "send_timeout = \"60s\""),
        Some(KEY),
    );
    form_candidates(&d, 60);
    let brochure = d.dir.path().join("brochure.pdf");
    let mut pdf = b"%PDF-1.4\n".to_vec();
    pdf.resize(2 * 1024 * 1024, b'x');
    std::fs::write(&brochure, &pdf).unwrap();
    let (rss_before, _) = rss_kib(d.pid());
    // The send queues the bulk chunk by chunk; while it runs (the first 4
    // mails hold the upstream's connections), what is queued can be held
    // or cancelled.
    let send = std::process::Command::new(BIN)
        .args([
            "send",
            "--json",
            "--template",
            "rejection",
            "--position",
            "backend-rust",
            "--attach",
        ])
        .arg(&brochure)
        .arg("--config")
        .arg(&d.config)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let queued = loop {
        let queued: Vec<i64> =
            json(d.cli(&["queue", "list", "--json", "--state", "queued"]))["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_i64().unwrap())
                .collect();
        // Once the relay has taken all it may (4 sending, 4 ready behind
        // them), what is queued stays queued until a connection is free.
        if queued.len() >= 2 && summary(&d)["sending"].as_i64() == Some(8) {
            break queued;
        }
        assert!(Instant::now() < deadline, "{}", summary(&d));
        std::thread::sleep(Duration::from_millis(50));
    };
    let (last, second_last) = (queued[0], queued[1]);
    assert!(
        d.cli(&["queue", "hold", &last.to_string()])
            .status
            .success(),
        "hold during delivery"
    );
    assert!(
        d.cli(&["queue", "cancel", &second_last.to_string()])
            .status
            .success(),
        "cancel during delivery"
    );
    let out = send.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items: Vec<i64> = v["queued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["item"].as_i64().unwrap())
        .collect();
    assert_eq!(items.len(), 60);
    assert!(items.contains(&last) && items.contains(&second_last));
    let mut most_sending = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = summary(&d);
        let sending = s["sending"].as_i64().unwrap_or(0);
        most_sending = most_sending.max(sending);
        // One item being sent and one ready behind it on each of the
        // upstream's 4 connections, at most.
        assert!(
            sending <= 8,
            "no more sending than twice the upstream's 4 connections: {s}"
        );
        if s["sent"].as_i64().unwrap_or(0) == 58 {
            break;
        }
        assert!(Instant::now() < deadline, "{s}\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(most_sending >= 2, "it did send in parallel: {most_sending}");
    assert!(
        up.connections.lock().unwrap().to_owned() <= 4 + 2,
        "4 connections (and a replaced one or two)"
    );
    let (_, peak) = rss_kib(d.pid());
    eprintln!(
        "60 x 2 MB to a slow upstream: RSS before {rss_before} KiB, peak {peak} KiB, at most {most_sending} sending"
    );
    // What is in memory is what 4 connections and their next items hold
    // (and lettre's copies), not the 60 mails (170 MB of frozen bytes).
    assert!(
        peak < rss_before + 100 * 1024,
        "the frozen bytes stay in the store: RSS before {rss_before} KiB, peak {peak} KiB"
    );
    let s = summary(&d);
    assert_eq!(
        (s["queued"].as_i64(), s["cancelled"].as_i64()),
        (Some(1), Some(1)),
        "{s}"
    );
    assert_eq!(up.accepted().len(), 58);
}

#[test]
fn a_failing_upstream_during_a_burst_moves_the_breaker_one_step() {
    let up = Upstream::start();
    let d = Daemon::start_world(
        "",
        &relay_directory(&up, "5d").replace(
            "max_connections = 10",
            "max_connections = 4\nbreaker_threshold = 2\nbreaker_pause = \"1h\"",
        ),
        Some(KEY),
    );
    form_candidates(&d, 12);
    // The upstream answers 451 to the first four, all in flight at once.
    up.then(&[AtDot::Temporary; 12]);
    let v = json(d.cli(&[
        "send",
        "--json",
        "--template",
        "rejection",
        "--position",
        "backend-rust",
    ]));
    assert_eq!(v["queued"].as_array().unwrap().len(), 12);
    let deadline = Instant::now() + Duration::from_secs(20);
    let paused = loop {
        let q = json(d.cli(&["queue", "list", "--json"]));
        let p = q["paused_upstreams"].as_array().unwrap().clone();
        if !p.is_empty() && q["summary"]["sending"].as_i64().unwrap_or(0) == 0 {
            break p;
        }
        assert!(Instant::now() < deadline, "{q}\n{}", d.log());
        std::thread::sleep(Duration::from_millis(30));
    };
    std::thread::sleep(Duration::from_millis(300));
    let q = json(d.cli(&["queue", "list", "--json"]));
    let p = &q["paused_upstreams"][0];
    assert_eq!(
        p["pause_ms"].as_i64(),
        Some(3_600_000),
        "one burst, one step (not doubled): {paused:?} {p}"
    );
    // The four in flight, and at most the one or two claimed while the
    // first outcomes were coming in; none after the pause.
    let tried = up.deliveries.lock().unwrap().len();
    assert!(tried <= 6, "{tried} tried");
    let s = &q["summary"];
    assert_eq!(s["sending"].as_i64().unwrap_or(0), 0, "{s}");
}

#[test]
fn outcomes_are_recorded_after_the_store_was_locked_and_none_is_sent_twice() {
    let up = Upstream::start();
    let d = relay_daemon(&up, "5d");
    form_candidates(&d, 8);
    // Each mail takes a moment, so the lock below is taken mid-delivery.
    up.then(&[AtDot::Stall(Duration::from_millis(400)); 8]);
    let v = json(d.cli(&[
        "send",
        "--json",
        "--template",
        "rejection",
        "--position",
        "backend-rust",
    ]));
    assert_eq!(v["queued"].as_array().unwrap().len(), 8);
    // Wait until the first sends are under way, then hold the store
    // locked for more than twice the relay's busy timeout (10 s): the
    // outcomes come in while it is locked and their commit times out.
    let deadline = Instant::now() + Duration::from_secs(20);
    while summary(&d)["sending"].as_i64().unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    let lock = rusqlite::Connection::open(d.db()).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    std::thread::sleep(Duration::from_secs(22));
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = summary(&d);
        if s["sent"].as_i64().unwrap_or(0) == 8 {
            break;
        }
        assert!(Instant::now() < deadline, "{s}\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(summary(&d)["sending"].as_i64().unwrap_or(0), 0);
    let mut to: Vec<String> = up.accepted().iter().map(|m| m.to[0].clone()).collect();
    to.sort();
    let unique = to.len();
    to.dedup();
    assert_eq!((unique, to.len()), (8, 8), "each mail delivered once");
    assert!(
        d.log().contains("outcomes not recorded yet; retrying"),
        "{}",
        d.log()
    );
}

#[test]
fn a_second_serve_on_the_same_store_is_refused() {
    let up = Upstream::start();
    let d = relay_daemon(&up, "5d");
    // The same store, another port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = d.serve_another(|text| {
        text.replacen(
            &format!("127.0.0.1:{}", d.addr.port()),
            &format!("127.0.0.1:{port}"),
            1,
        )
    });
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another jobmail serve"), "{err}");
}

#[test]
fn an_upstream_that_refuses_our_sender_pauses_it_and_fails_no_mail() {
    let up = Upstream::start();
    *up.refuse_senders.lock().unwrap() = true;
    let d = Daemon::start_world(
        "",
        &relay_directory(&up, "5d").replace(
            "max_connections = 10",
            "max_connections = 10\nbreaker_threshold = 2\nbreaker_pause = \"1s\"",
        ),
        Some(KEY),
    );
    form_candidates(&d, 6);
    let v = json(d.cli(&[
        "send",
        "--json",
        "--template",
        "rejection",
        "--position",
        "backend-rust",
    ]));
    let items: Vec<i64> = v["queued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["item"].as_i64().unwrap())
        .collect();
    // The 553 to MAIL FROM is the upstream's matter: paused, nothing failed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let q = json(d.cli(&["queue", "list", "--json"]));
        if !q["paused_upstreams"].as_array().unwrap().is_empty() {
            assert_eq!(q["summary"]["failed"].as_i64().unwrap_or(0), 0, "{q}");
            break;
        }
        assert!(Instant::now() < deadline, "{q}\n{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Fixed upstream side: after the pause every mail goes out.
    *up.refuse_senders.lock().unwrap() = false;
    for item in items {
        wait_state(&d, item, "sent");
    }
    assert_eq!(up.accepted().len(), 6);
}
