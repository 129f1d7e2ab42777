//! A mail's life in the log, against the running binary: `jobmail log`
//! shows an application from its RCPT to its acknowledgement sent through
//! the test upstream, the daemon's lines carry the ids (and the documented
//! `grep -w` finds them), and no password, token, key or message body
//! reaches any log line, through sessions, deliveries, the HTTP API and
//! reloads.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::harness::*;
use crate::support::upstream::{AtDot, Upstream};

/// The example company with its upstream on `up`, polled every 20 ms, and
/// `upstream` lines added to its first `[subsidiary.upstream]`.
fn relayed(up: &Upstream, upstream: &str) -> String {
    example_directory()
        .replacen(
            "port = 2600",
            &format!("port = {}{upstream}", up.addr.port()),
            1,
        )
        .replace("port = 2600", &format!("port = {}", up.addr.port()))
        .replace(
            "retry_initial = \"5m\"",
            "retry_initial = \"100ms\"\npoll_interval = \"20ms\"",
        )
        .replace("retry_max = \"1h\"", "retry_max = \"200ms\"")
}

fn wait_state(d: &Daemon, item: i64, state: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = json(d.cli(&["queue", "show", &item.to_string(), "--json"]));
        if v["item"]["state"] == state {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "item {item} never {state}: {v}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// The first outbox item, once the acknowledgement worker has queued it.
fn first_item(d: &Daemon) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = json(d.cli(&["queue", "list", "--json"]));
        if let Some(id) = v["items"][0]["id"].as_i64() {
            return id;
        }
        assert!(Instant::now() < deadline, "nothing queued: {}", d.log());
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// The daemon's log once it has stopped (every line written).
fn final_log(d: &mut Daemon) -> Vec<u8> {
    let status = d.terminate().wait().unwrap();
    assert!(status.success());
    std::fs::read(d.dir.path().join("daemon.log")).unwrap()
}

#[test]
fn the_log_of_one_mail_shows_each_step_from_rcpt_to_sent() {
    let up = Upstream::start();
    let mut d = Daemon::start_world("", &with_acknowledgements(&relayed(&up, "")), None);
    let mut client = d.connect();
    let (code, text) = client.send_mail(
        "anna.schmidt@posteo.de",
        "jobs+backend@acme.example",
        &fixture("application-pdf.eml"),
    );
    assert_eq!(code, 250, "{text}");
    client.expect_cmd("QUIT", 221);
    let message: i64 = text.trim().rsplit(' ').next().unwrap().parse().unwrap();
    // Its acknowledgement goes out through the upstream.
    let item = first_item(&d);
    up.wait_for(1, 20);
    wait_state(&d, item, "sent");

    let log = json(d.cli(&["log", "message", &message.to_string(), "--json"]));
    let steps: Vec<(&str, Option<i64>, Option<i64>)> = log["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap(),
                s["message"].as_i64(),
                s["item"].as_i64(),
            )
        })
        .collect();
    let m = Some(message);
    assert_eq!(
        steps,
        [
            ("received", m, None),
            ("filed", m, None),
            ("application", m, None),
            ("acknowledgement", m, Some(item)),
            ("queued", None, Some(item)),
            ("sending", None, Some(item)),
            ("sent", None, Some(item)),
        ],
        "{log:#}"
    );
    let text = |i: usize| log["steps"][i]["text"].as_str().unwrap().to_string();
    let session = json(d.cli(&["message", "show", &message.to_string(), "--json"]))["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text(0).contains("from <anna.schmidt@posteo.de> for <jobs+backend@acme.example>")
            && text(0).contains(&format!("session {session}")),
        "{}",
        text(0)
    );
    assert!(text(1).contains("reason new-application"), "{}", text(1));
    assert!(text(2).contains("position backend-rust"), "{}", text(2));
    assert_eq!(text(3), format!("queued: outbox item {item}"));
    assert!(
        text(5).starts_with(&format!("attempt 1 via 127.0.0.1:{}", up.addr.port())),
        "{}",
        text(5)
    );
    assert_eq!(text(6), "attempt 1: 250 2.0.0 Ok: queued as TEST");
    // The same life asked for by the acknowledgement's item.
    let by_item = json(d.cli(&["log", "item", &item.to_string(), "--json"]));
    assert_eq!(by_item["steps"], log["steps"]);
    // For people: one line per step, and the grep that finds the log lines.
    let human = d.cli(&["log", "item", &item.to_string()]);
    let human = String::from_utf8(human.stdout).unwrap();
    assert_eq!(human.lines().count(), 8, "{human}");
    assert!(
        human.contains(&format!("item {item}")) && human.contains("sent"),
        "{human}"
    );
    let journal = log["journal"].as_str().unwrap();
    assert_eq!(
        journal,
        format!(
            "journalctl -u jobmail -o cat | grep -w -e message={message} -e item={item} -e session={session}"
        )
    );

    // The daemon's own lines, each with its ids, found by that grep.
    let log_file = d.dir.path().join("daemon.log");
    final_log(&mut d);
    let pattern = journal.split("grep ").nth(1).unwrap();
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("grep {pattern} {}", log_file.display()))
        .output()
        .unwrap();
    let lines = String::from_utf8(found.stdout).unwrap();
    let line = |what: &str| {
        lines
            .lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} line in:\n{lines}"))
            .to_string()
    };
    let session_end = line(" session end ");
    for field in [
        format!("session={session}"),
        "client=127.0.0.1".into(),
        "helo=client.test.example".into(),
        "tls=none".into(),
        "mails=1".into(),
        "result=quit".into(),
    ] {
        assert!(
            session_end.contains(&format!(" {field}")),
            "{field}: {session_end}"
        );
    }
    let stored = line(" stored ");
    for field in [
        format!("message={message}"),
        format!("session={session}"),
        "sender=<anna.schmidt@posteo.de>".into(),
        "recipients=1".into(),
        "reason=new-application".into(),
        "acknowledgement=pending".into(),
    ] {
        assert!(stored.contains(&format!(" {field}")), "{field}: {stored}");
    }
    assert!(stored.contains(" size="), "{stored}");
    let attempt = line(" delivery attempt ");
    for field in [
        format!("item={item}"),
        "attempt=1".into(),
        format!("upstream=127.0.0.1:{}", up.addr.port()),
        "result=sent".into(),
        "code=250".into(),
        "reply=\"2.0.0 Ok: queued as TEST\"".into(),
    ] {
        assert!(attempt.contains(&format!(" {field}")), "{field}: {attempt}");
    }
    assert!(attempt.contains(" delay_ms="), "{attempt}");
    // grep -w: message=1 is not message=12.
    assert!(
        lines.lines().all(|l| l.contains(&format!("item={item}"))
            || l.contains(&session)
            || l.split(' ').any(|w| w == format!("message={message}"))),
        "{lines}"
    );
}

/// A self-signed certificate and its key for the listener, as PEM files.
fn listener_tls(dir: &std::path::Path) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["mx.test.example".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let key_pem = key.serialize_pem();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, &key_pem).unwrap();
    let section = format!(
        "\n[tls]\ncertificate = {:?}\nkey = {:?}\n",
        cert_path.display().to_string(),
        key_path.display().to_string()
    );
    (section, key_pem)
}

/// `curl` with a bearer token: the status.
fn curl(url: &str, token: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn swaks(args: &[&str]) -> String {
    let out = Command::new("swaks")
        .args(args)
        .output()
        .expect("swaks (apt-get install swaks)");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn no_secret_reaches_a_log_line() {
    use data_encoding::{BASE32_NOPAD, BASE64, BASE64URL_NOPAD, HEXLOWER, HEXUPPER};
    let key: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
    let password = "Tr0ub4dor&3-horse-battery";
    let user = "jobs@acme.example";
    let secrets_dir = tempfile::tempdir().unwrap();
    let password_file = secrets_dir.path().join("acme.password");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let (tls, tls_key_pem) = listener_tls(secrets_dir.path());
    let up = Upstream::start();
    *up.auth.lock().unwrap() = Some(true);
    // Each connection carries one mail, so that each send logs in anew.
    up.then(&[AtDot::AcceptThenClose, AtDot::AcceptThenClose]);
    let directory = with_acknowledgements(&relayed(
        &up,
        &format!(
            "\nusername = {user:?}\npassword_file = {:?}",
            password_file.display().to_string()
        ),
    ));
    // The whole log at debug level (the harness's JOBMAIL_LOG), TLS on,
    // the HTTP API on with the example's users and their tokens.
    let api = free_port();
    let mut d = Daemon::start_world(
        &format!("{tls}\n[api]\nlisten = \"127.0.0.1:{api}\"\n"),
        &directory,
        Some(key),
    );
    let server = d.addr.to_string();

    // An application over STARTTLS, with a body and an attachment that
    // must never be logged; its acknowledgement goes out with AUTH PLAIN.
    let body_marker = "BODY-MARKER-4f1c9a-never-logged";
    let attachment = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(attachment.path(), "ATTACHMENT-MARKER-77d2e0-never-logged").unwrap();
    let said = swaks(&[
        "--server",
        &server,
        "--tls",
        "--from",
        "anna.schmidt@posteo.de",
        "--to",
        "jobs+backend@acme.example",
        "--header",
        "Subject: Bewerbung Backend",
        "--body",
        body_marker,
        "--attach-type",
        "text/plain",
        "--attach",
        &format!("@{}", attachment.path().display()),
    ]);
    assert!(said.contains("250 2.0.0 Ok: stored as"), "{said}");
    let delivered = up.wait_for(1, 20);
    let reply_to = jobmail::inbound::parse::parse_message(&delivered[0].data, false)
        .headers
        .reply_to[0]
        .address
        .clone();
    let token = reply_to
        .strip_prefix("jobs+")
        .and_then(|t| t.split('@').next())
        .unwrap()
        .to_string();
    assert!(token.len() > 8, "{reply_to}");

    // The candidate answers to the token address (its recipient carries
    // the token); a session's TLS handshake fails.
    let answer = format!(
        "From: Anna <anna.schmidt@posteo.de>\r\nTo: {reply_to}\r\nSubject: Re: Danke\r\nMessage-ID: <answer-1@posteo.de>\r\n\r\n{body_marker} again\r\n"
    );
    let (code, _) = d
        .connect()
        .send_mail("anna.schmidt@posteo.de", &reply_to, answer.as_bytes());
    assert_eq!(code, 250);
    let mut broken = d.connect();
    broken.ehlo();
    broken.expect_cmd("STARTTLS", 220);
    broken.send(b"this is not a ClientHello\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.log().contains("TLS handshake failed") {
        assert!(Instant::now() < deadline, "{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }

    // A send with AUTH LOGIN, then one the upstream refuses, quoting the
    // credentials back in its 535 (deferred by default): the user's base64
    // stays, the password's is cut out.
    *up.mechanism.lock().unwrap() = "LOGIN";
    json(d.cli(&[
        "send",
        "--json",
        "--template",
        "interview-invitation",
        "--candidate",
        "1",
    ]));
    up.wait_for(2, 20);
    *up.auth.lock().unwrap() = Some(false);
    *up.echo_credentials.lock().unwrap() = true;
    let refused = json(d.cli(&[
        "send",
        "--json",
        "--template",
        "rejection",
        "--candidate",
        "1",
    ]))["queued"][0]["item"]
        .as_i64()
        .unwrap();
    let deferred = wait_state(&d, refused, "deferred");
    assert!(
        deferred["item"]["last_reply"]
            .as_str()
            .unwrap()
            .ends_with("Authentication credentials invalid: am9ic0BhY21lLmV4YW1wbGU= [redacted]"),
        "{deferred}"
    );
    // The API with the operator's token, and with a wrong one.
    let api_token = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/config/tokens/{name}.token",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
        .trim()
        .to_string()
    };
    let (operator, recruiter) = (api_token("operator"), api_token("recruiter"));
    let wrong = "wrong-token-5b8e1d7c0a9f4e2b";
    let inbox = format!("http://127.0.0.1:{api}/api/v1/inbox");
    assert_eq!(curl(&inbox, &operator), "200");
    assert_eq!(curl(&inbox, wrong), "401");

    // A reload that succeeds (password file, key and certificate read
    // again), and one refused: its password file is gone.
    let from = d.log().len();
    super::reload::sighup(&d);
    super::reload::wait_log(&d, from, "config reloaded");
    let good = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, good.replace("acme.password", "no-such.password")).unwrap();
    let from = d.log().len();
    super::reload::sighup(&d);
    super::reload::wait_log(&d, from, "reload refused");
    std::fs::write(&d.config, good).unwrap();

    // The upstream did get the password, both ways.
    let seen = up.credentials_seen.lock().unwrap().clone();
    assert!(seen.len() >= 3, "{seen:?}");
    assert!(
        seen.iter().all(|(u, p)| u == user && p == password),
        "{seen:?}"
    );

    let shown: Vec<(String, Vec<u8>)> = vec![
        (
            "queue list".into(),
            d.cli(&["queue", "list", "--json"]).stdout,
        ),
        (
            "queue show".into(),
            d.cli(&["queue", "show", &refused.to_string(), "--json"])
                .stdout,
        ),
        (
            "log item".into(),
            d.cli(&["log", "item", &refused.to_string()]).stdout,
        ),
        ("daemon log".into(), final_log(&mut d)),
    ];
    let log = &shown.last().unwrap().1;
    assert!(log.len() > 2000, "{}", String::from_utf8_lossy(log));
    for needed in [
        "session end",
        "tls=TLS1.3",
        "delivery attempt",
        "result=deferred",
        "config reloaded",
        "reload refused",
    ] {
        assert!(
            String::from_utf8_lossy(log).contains(needed),
            "{needed}: {}",
            String::from_utf8_lossy(log)
        );
    }

    let mut secrets: Vec<(&str, Vec<u8>)> = vec![
        ("the password", password.into()),
        (
            "the password, base64",
            BASE64.encode(password.as_bytes()).into(),
        ),
        (
            "AUTH PLAIN",
            BASE64
                .encode(format!("\0{user}\0{password}").as_bytes())
                .into(),
        ),
        ("the key", key.to_vec()),
        ("the key, hex", HEXLOWER.encode(&key).into()),
        ("the key, HEX", HEXUPPER.encode(&key).into()),
        ("the key, base64", BASE64.encode(&key).into()),
        ("the key, base64url", BASE64URL_NOPAD.encode(&key).into()),
        ("the key, base32", BASE32_NOPAD.encode(&key).into()),
        ("the operator's API token", operator.clone().into_bytes()),
        ("the recruiter's API token", recruiter.clone().into_bytes()),
        ("a wrong API token", wrong.into()),
    ];
    // The listener's private key, line by line of its PEM.
    for line in tls_key_pem.lines().filter(|l| !l.starts_with("-----")) {
        secrets.push(("the TLS key", line.as_bytes().to_vec()));
    }
    let in_log_only: Vec<(&str, Vec<u8>)> = vec![
        ("the reply token", token.clone().into_bytes()),
        ("the body", body_marker.into()),
        ("the attachment", b"ATTACHMENT-MARKER-77d2e0".to_vec()),
    ];
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for (place, text) in &shown {
        for (what, secret) in &secrets {
            assert!(!contains(text, secret), "{what} in the {place}");
        }
    }
    for (what, secret) in &in_log_only {
        assert!(!contains(log, secret), "{what} in the daemon log");
    }
}

#[test]
fn the_log_of_a_bounced_mail_ends_with_its_report() {
    let up = Upstream::start();
    let d = Daemon::start_world("", &relayed(&up, ""), None);
    let (code, _) = d.connect().send_mail(
        "anna.schmidt@posteo.de",
        "jobs+backend@acme.example",
        &fixture("application-pdf.eml"),
    );
    assert_eq!(code, 250);
    let sent = json(d.cli(&[
        "send",
        "--json",
        "--template",
        "rejection",
        "--candidate",
        "1",
    ]));
    let item = sent["queued"][0]["item"].as_i64().unwrap();
    let message_id = sent["queued"][0]["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    let verp = up.wait_for(1, 20)[0].from.clone();
    wait_state(&d, item, "sent");
    // The recipient's server reports a hard bounce to the VERP address.
    let report = format!(
        "From: MAILER-DAEMON@mx.posteo.example\r\nTo: {verp}\r\nSubject: Undelivered Mail Returned to Sender\r\n\
Message-ID: <bounce-1@mx.posteo.example>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n\
--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.posteo.example\r\n\r\n\
Final-Recipient: rfc822; anna.schmidt@posteo.de\r\nAction: failed\r\nStatus: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <anna.schmidt@posteo.de>: Recipient address rejected\r\n\r\n\
--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: jobs@acme.example\r\nMessage-ID: <{message_id}>\r\nSubject: x\r\n\r\n\
--B--\r\n"
    );
    let (code, text) = d.connect().send_mail("", &verp, report.as_bytes());
    assert_eq!(code, 250, "{text}");
    let bounce: i64 = text.trim().rsplit(' ').next().unwrap().parse().unwrap();
    wait_state(&d, item, "bounced");

    let log = json(d.cli(&["log", "item", &item.to_string(), "--json"]));
    let steps = log["steps"].as_array().unwrap();
    let tail: Vec<(&str, Option<i64>, Option<i64>)> = steps[steps.len() - 3..]
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap(),
                s["message"].as_i64(),
                s["item"].as_i64(),
            )
        })
        .collect();
    assert_eq!(
        tail,
        [
            ("sent", None, Some(item)),
            ("report", Some(bounce), Some(item)),
            ("bounced", None, Some(item)),
        ],
        "{log:#}"
    );
    let report_text = steps[steps.len() - 2]["text"].as_str().unwrap();
    assert!(
        report_text.starts_with(&format!("bounce: delivery report for outbox item {item}"))
            && report_text.contains("5.1.1"),
        "{report_text}"
    );
    assert!(
        steps[steps.len() - 1]["text"]
            .as_str()
            .unwrap()
            .contains("5.1.1"),
        "{log:#}"
    );
    assert!(
        log["journal"]
            .as_str()
            .unwrap()
            .contains(&format!("-e item={item} -e message={bounce}")),
        "{log:#}"
    );
}
