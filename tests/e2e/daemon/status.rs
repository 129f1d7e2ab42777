//! `jobmail status [--json]` against a real store with outbox items in
//! several states, a deferred one and a paused upstream; with the daemon
//! running, after it stopped, and before any store exists.

use std::time::{Duration, Instant};

use crate::support::harness::*;
use crate::support::upstream::{AtDot, Upstream};

/// Waits until outbox item `item` is in `state`.
fn wait_state(d: &Daemon, item: i64, state: &str) {
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
            return;
        }
        assert!(
            Instant::now() < deadline,
            "item {item} never became {state}: {entry}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(30));
    }
}

fn send(d: &Daemon, more: &[&str]) -> i64 {
    let mut args = vec![
        "send",
        "--json",
        "--template",
        "interview-invitation",
        "--candidate",
        "1",
        "--sender",
        "anna",
    ];
    args.extend_from_slice(more);
    json(d.cli(&args))["queued"][0]["item"].as_i64().unwrap()
}

fn counts(status: &serde_json::Value) -> Vec<(String, i64)> {
    status["queue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["state"].as_str().unwrap().to_string(),
                q["items"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn status_shows_the_queue_by_state_the_oldest_deferred_item_and_a_paused_upstream() {
    let up = Upstream::start();
    // One failure pauses the upstream for an hour; retries far apart.
    let directory = example_directory()
        .replace(
            "port = 2600",
            &format!(
                "port = {}\nbreaker_threshold = 1\nbreaker_pause = \"1h\"",
                up.addr.port()
            ),
        )
        .replace(
            "retry_initial = \"5m\"",
            "retry_initial = \"5m\"\npoll_interval = \"20ms\"",
        );
    let mut d = Daemon::start_world("", &directory, None);
    let (code, _) = d.connect().send_mail(
        "anna.schmidt@posteo.de",
        "jobs+backend@acme.example",
        &fixture("application-pdf.eml"),
    );
    assert_eq!(code, 250);
    up.then(&[AtDot::Accept, AtDot::Permanent, AtDot::Temporary]);
    let sent = send(&d, &[]);
    wait_state(&d, sent, "sent");
    let failed = send(&d, &[]);
    wait_state(&d, failed, "failed");
    let deferred = send(&d, &[]);
    wait_state(&d, deferred, "deferred");
    // The upstream is paused now: this one waits.
    let queued = send(&d, &[]);
    let scheduled = send(&d, &["--at", "2030-01-15 09:00"]);
    std::thread::sleep(Duration::from_millis(200));
    wait_state(&d, queued, "queued");
    wait_state(&d, scheduled, "scheduled");

    let started = Instant::now();
    let s = json(d.cli(&["status", "--json"]));
    eprintln!("status --json took {:?}: {s:#}", started.elapsed());
    assert_eq!(s["daemon"]["running"], true, "{s}");
    assert_eq!(s["daemon"]["pid"], d.pid(), "{s}");
    assert_eq!(s["listener"]["listen"][0], d.addr.to_string(), "{s}");
    assert_eq!(s["listener"]["starttls"], false, "{s}");
    assert!(s["tls"].is_null() && s["metrics"].is_null(), "{s}");
    assert!(s["store"]["database_bytes"].as_u64().unwrap() > 0, "{s}");
    assert!(s["store"]["wal_bytes"].as_u64().is_some(), "{s}");
    let mut by_state = counts(&s);
    by_state.sort();
    assert_eq!(
        by_state,
        [
            ("deferred".to_string(), 1),
            ("failed".to_string(), 1),
            ("queued".to_string(), 1),
            ("scheduled".to_string(), 1),
            ("sent".to_string(), 1),
        ],
        "{s}"
    );
    let oldest = &s["oldest_deferred"];
    assert_eq!(oldest["id"], deferred, "{s}");
    assert_eq!(oldest["subsidiary"], "acme-de", "{s}");
    assert_eq!(oldest["attempts"], 1, "{s}");
    assert!(oldest["age_seconds"].as_i64().unwrap() >= 0, "{s}");
    assert!(
        oldest["last_reply"].as_str().unwrap().contains("451"),
        "{s}"
    );
    let paused = s["paused_upstreams"].as_array().unwrap();
    assert_eq!(paused.len(), 1, "{s}");
    assert_eq!(paused[0]["subsidiary"], "acme-de");
    assert!(
        paused[0]["last_error"].as_str().unwrap().contains("451"),
        "{s}"
    );
    // The e-mail application's acknowledgement decision (the example's
    // acknowledgements are off here: suppressed, rule disabled).
    let decisions = s["acknowledgements_last_hour"].as_array().unwrap();
    assert_eq!(
        decisions
            .iter()
            .map(|d| d["count"].as_i64().unwrap())
            .sum::<i64>(),
        1,
        "{s}"
    );
    assert_eq!(decisions[0]["decision"], "suppressed", "{s}");
    assert_eq!(decisions[0]["rule"], "disabled", "{s}");

    let human = d.cli(&["status"]);
    assert!(human.status.success());
    let human = String::from_utf8_lossy(&human.stdout);
    eprintln!("{human}");
    assert!(
        human.contains(&format!("running (pid {})", d.pid())),
        "{human}"
    );
    assert!(human.contains("deferred 1"), "{human}");
    assert!(human.contains(&format!("#{deferred} (acme-de)")), "{human}");
    assert!(human.contains("paused upstream  acme-de until"), "{human}");
    assert!(human.contains("suppressed (disabled) 1"), "{human}");

    // Stopped: status says so, and still reads the store.
    let mut child = d.terminate();
    child.wait().unwrap();
    let s = json(d.cli(&["status", "--json"]));
    assert_eq!(s["daemon"]["running"], false, "{s}");
    assert!(s["daemon"]["pid"].is_null(), "{s}");
    assert_eq!(counts(&s).len(), 5, "{s}");
    let human = String::from_utf8_lossy(&d.cli(&["status"]).stdout).to_string();
    assert!(human.contains("daemon           not running"), "{human}");
}

#[test]
fn status_without_a_daemon_or_a_store_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("jobmail.toml");
    std::fs::write(
        &config,
        "[server]\ndatabase = \"jobmail.db\"\n[metrics]\nlisten = \"127.0.0.1:9125\"\n[[subsidiary]]\nid = \"acme\"\njobs_address = \"jobs@acme.example\"\n",
    )
    .unwrap();
    let s = json(cli(&config, &["status", "--json"]));
    assert_eq!(s["daemon"]["running"], false, "{s}");
    assert!(s["store"].is_null(), "{s}");
    assert_eq!(s["metrics"], "127.0.0.1:9125", "{s}");
    assert_eq!(s["queue"].as_array().unwrap().len(), 0, "{s}");
    let out = cli(&config, &["status"]);
    assert!(out.status.success());
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(human.contains("not running"), "{human}");
    assert!(
        human.contains("none yet (jobmail serve has not run"),
        "{human}"
    );
    assert!(
        !dir.path().join("jobmail.db").exists(),
        "status creates no store"
    );
}
