//! `jobmail send` and the outbox: one mail, a batch, attachments (template,
//! new, reused), the thread, the size limit, cancel; a bulk send to 1,000
//! candidates and scheduling with a clock the test controls, through the
//! library functions the CLI calls.

use jobmail::matcher::token::TokenKey;
use jobmail::outbound::compose::{Composer, SendRequest};
use jobmail::outbound::template::Templates;
use jobmail::store::Store;
use jobmail::store::candidates::FormApplication;

use crate::support::harness::*;

const KEY: [u8; 32] = [0x42; 32];

/// The example company, with its archive Bcc turned on.
fn with_archive() -> String {
    example_directory().replace("# archive_bcc", "archive_bcc")
}

#[test]
fn send_to_one_and_many_with_every_kind_of_attachment() {
    let d = Daemon::start_world("time_zone = \"Europe/Berlin\"", &with_archive(), Some(KEY));
    let cv = jobmail::inbound::parse::parse_message(&fixture("application-pdf.eml"), false)
        .documents[0]
        .bytes
        .clone();
    let (code, _) = d.connect().send_mail(
        "anna.schmidt@posteo.de",
        "jobs+backend@acme.example",
        &fixture("application-pdf.eml"),
    );
    assert_eq!(code, 250);
    let (code, _) = d.connect().send_mail(
        "erika@example.org",
        "karriere@acme.example",
        &simple_mail("e1", "Bewerbung"),
    );
    assert_eq!(code, 250);
    let cv_id = d.reader().documents(1).unwrap()[0].id;

    // One mail: the template's file, a new file, the candidate's own CV again.
    let notes = d.dir.path().join("Hinweise.txt");
    std::fs::write(&notes, "Bitte Ausweis mitbringen.\n").unwrap();
    let v = json(d.cli(&[
        "send",
        "--json",
        "--template",
        "interview-invitation",
        "--candidate",
        "1",
        "--sender",
        "anna",
        "--attach",
        notes.to_str().unwrap(),
        "--reuse-document",
        &cv_id.to_string(),
    ]));
    assert_eq!(v["queued"].as_array().unwrap().len(), 1, "{v}");
    let item = &v["queued"][0];
    let message = item["message"].as_i64().unwrap();
    let content = d.content(message);
    let p = jobmail::inbound::parse::parse_message(&content, false);
    let doc = |name: &str| {
        p.documents
            .iter()
            .find(|x| x.filename == name)
            .map(|x| x.bytes.clone())
    };
    assert_eq!(
        doc("Hinweise.txt").as_deref(),
        Some(&b"Bitte Ausweis mitbringen.\n"[..])
    );
    assert_eq!(
        doc(&d.reader().documents(1).unwrap()[0].filename),
        Some(cv.clone()),
        "the CV, byte-exact"
    );
    let directions = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/templates/files/Anfahrt-ACME-Muenchen.pdf"
    ))
    .unwrap();
    assert_eq!(doc("Anfahrt-ACME-Muenchen.pdf"), Some(directions));
    assert_eq!(
        p.headers.from.as_ref().unwrap().address,
        "anna.berger@acme.example"
    );
    assert_eq!(p.headers.message_id.as_deref(), item["message_id"].as_str());

    // It is in the thread, outbound; its documents too.
    let c = json(d.cli(&["candidate", "show", "1", "--json"]));
    let out = c["thread"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == message)
        .expect("in the thread");
    assert_eq!(out["direction"], "outbound");
    // Queued; the relay may already be trying the example's upstream,
    // which does not listen here.
    let in_queue = |s: &serde_json::Value| {
        ["queued", "sending", "deferred"].contains(&s.as_str().unwrap_or(""))
    };
    assert!(in_queue(&out["outbox"]["state"]), "{out}");
    assert_eq!(out["attachments"].as_array().unwrap().len(), 3);

    // The outbox: queued, from a signed VERP address, to the candidate and the archive.
    let q = json(d.cli(&["queue", "list", "--json"]));
    let i = &q["items"][0];
    assert!(in_queue(&i["state"]), "{i}");
    assert_eq!(
        i["envelope_from"],
        format!(
            "bounce+{}@acme.example",
            TokenKey::new(KEY).verp_tag(i["id"].as_i64().unwrap())
        )
    );
    assert_eq!(
        i["recipients"],
        serde_json::json!(["anna.schmidt@posteo.de", "bewerbungsarchiv@acme.example"])
    );
    assert!(
        !String::from_utf8_lossy(&content).contains("bewerbungsarchiv"),
        "the archive copy is no header"
    );

    // Another candidate's document is refused; the others still go.
    let v = json(d.cli(&[
        "send",
        "--json",
        "--template",
        "acknowledgement",
        "--candidates",
        "1,2,2,99",
        "--reuse-document",
        &cv_id.to_string(),
    ]));
    assert_eq!(v["queued"].as_array().unwrap().len(), 1, "{v}");
    let skipped: Vec<String> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap().to_string())
        .collect();
    assert!(
        skipped
            .iter()
            .any(|r| r.contains("not in the thread of candidate 2")),
        "{skipped:?}"
    );
    assert!(
        skipped.iter().any(|r| r.contains("no candidate 99")),
        "{skipped:?}"
    );
    let v = json(d.cli(&[
        "send",
        "--json",
        "--template",
        "acknowledgement",
        "--candidates",
        "1,2,2",
    ]));
    assert_eq!(
        v["queued"].as_array().unwrap().len(),
        2,
        "a candidate selected twice gets one mail: {v}"
    );
    let ids: Vec<&str> = v["queued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["message_id"].as_str().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);

    // Too big: refused at compose time, nothing queued.
    let big = d.dir.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 8 * 1024 * 1024]).unwrap();
    let before = json(d.cli(&["queue", "list", "--json"]))["items"]
        .as_array()
        .unwrap()
        .len();
    let out = d.cli(&[
        "send",
        "--template",
        "rejection",
        "--candidate",
        "2",
        "--attach",
        big.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("over the limit"), "{text}");
    assert_eq!(
        json(d.cli(&["queue", "list", "--json"]))["items"]
            .as_array()
            .unwrap()
            .len(),
        before
    );

    // Scheduled in local time, then cancelled; a cancelled item cannot be cancelled again.
    let v = json(d.cli(&[
        "send",
        "--json",
        "--template",
        "rejection",
        "--candidate",
        "2",
        "--at",
        "2031-01-15 10:00",
    ]));
    assert_eq!(v["state"], "scheduled");
    assert_eq!(
        v["scheduled_for"], "2031-01-15T09:00:00+00:00",
        "Europe/Berlin in winter"
    );
    let item = v["queued"][0]["item"].as_i64().unwrap().to_string();
    assert!(d.cli(&["queue", "cancel", &item]).status.success());
    let out = d.cli(&["queue", "cancel", &item]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is cancelled"));
    let q = json(d.cli(&["queue", "list", "--json", "--state", "cancelled"]));
    assert_eq!(q["items"].as_array().unwrap().len(), 1);
}

#[test]
fn preview_shows_what_send_queues() {
    let d = Daemon::start_world("", &example_directory(), Some(KEY));
    let (code, _) = d.connect().send_mail(
        "anna.schmidt@posteo.de",
        "jobs+backend@acme.example",
        &fixture("application-pdf.eml"),
    );
    assert_eq!(code, 250);
    let preview = d
        .cli(&["template", "preview", "rejection", "--candidate", "1"])
        .stdout;
    let v = json(d.cli(&[
        "send",
        "--json",
        "--template",
        "rejection",
        "--candidate",
        "1",
    ]));
    let queued = d.content(v["queued"][0]["message"].as_i64().unwrap());
    // The same mail but for what is new each time: Message-ID, Date, MIME boundaries.
    let a = jobmail::inbound::parse::parse_message(&preview, false);
    let b = jobmail::inbound::parse::parse_message(&queued, false);
    let (mut ha, mut hb) = (a.headers.clone(), b.headers.clone());
    for h in [&mut ha, &mut hb] {
        h.message_id = None;
        h.date = None;
        h.references.pop();
    }
    assert_eq!(ha, hb);
    assert_eq!(a.text, b.text);
    assert_eq!(a.documents, b.documents);
}

fn library_world() -> (tempfile::TempDir, jobmail::config::Config, Templates) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("[server]\ndatabase = \"j.db\"\n{}", with_archive());
    let path = dir.path().join("jobmail.toml");
    std::fs::write(&path, &text).unwrap();
    let config = jobmail::config::load(&path).unwrap();
    drop(Store::create(&config.server.database).unwrap());
    let (templates, errors) = Templates::load(&config.templates_dir);
    assert!(errors.is_empty(), "{errors:?}");
    (dir, config, templates)
}

#[test]
fn bulk_to_a_thousand_candidates() {
    let (_dir, config, templates) = library_world();
    let mut store = Store::open(&config.server.database).unwrap();
    for i in 0..1000 {
        store
            .add_form_application(&FormApplication {
                candidate: None,
                email: Some(&format!("candidate{i}@example.org")),
                first_name: &format!("Vorname{i}"),
                last_name: &format!("Nachname{i}"),
                subsidiary: "acme-de",
                position: Some("backend-rust"),
                language: None,
            })
            .unwrap();
    }
    let key = TokenKey::new(KEY);
    let composer = Composer {
        config: &config,
        templates: &templates,
        key: &key,
    };
    let candidates = store
        .candidates_with_applications(Some(&["backend-rust".to_string()]), None)
        .unwrap();
    assert_eq!(candidates.len(), 1000);
    let started = std::time::Instant::now();
    let summary = composer
        .send(
            &mut store,
            &SendRequest {
                template: "acknowledgement",
                candidates,
                ..Default::default()
            },
            1_795_600_000_000,
        )
        .unwrap();
    let took = started.elapsed();
    eprintln!("bulk: 1,000 mails rendered, built and queued in one batch in {took:.2?}");
    assert_eq!(summary.queued.len(), 1000);
    assert!(summary.skipped.is_empty());
    let ids: std::collections::HashSet<_> = summary
        .queued
        .iter()
        .map(|q| q.message_id.clone())
        .collect();
    assert_eq!(ids.len(), 1000, "distinct Message-IDs");
    let subjects: std::collections::HashSet<_> =
        summary.queued.iter().map(|q| q.subject.clone()).collect();
    assert_eq!(
        subjects.len(),
        1000,
        "distinct subject tags: mail clients never merge the threads"
    );
    let queue = store.queue(&[], 10_000).unwrap();
    assert_eq!(queue.len(), 1000);
    assert!(
        queue
            .iter()
            .all(|i| i.batch_id == summary.batch && i.state == "queued")
    );
    // Each is rendered for its own candidate.
    let q = summary
        .queued
        .iter()
        .find(|q| q.to == "candidate7@example.org")
        .unwrap();
    let p = jobmail::inbound::parse::parse_message(&store.raw(q.message).unwrap().unwrap(), false);
    assert!(p.text.contains("Vorname7 Nachname7"), "{}", p.text);
}

#[test]
fn scheduled_mail_waits_for_its_time_and_is_checked_again() {
    let (_dir, config, templates) = library_world();
    let mut store = Store::open(&config.server.database).unwrap();
    let mut add = |email: &str, first: &str| {
        store
            .add_form_application(&FormApplication {
                candidate: None,
                email: Some(email),
                first_name: first,
                last_name: "Beispiel",
                subsidiary: "acme-de",
                position: Some("backend-rust"),
                language: None,
            })
            .unwrap()
    };
    let (a, _, _) = add("a@example.org", "Ada");
    let (b, _, _) = add("b@example.org", "Ben");
    let (c, _, _) = add("c@example.org", "Cem");
    let key = TokenKey::new(KEY);
    let composer = Composer {
        config: &config,
        templates: &templates,
        key: &key,
    };
    let now = 1_795_600_000_000i64;
    let hour = 3_600_000;
    let summary = composer
        .send(
            &mut store,
            &SendRequest {
                template: "rejection",
                candidates: vec![a, b, c],
                not_before: Some(now + hour),
                ..Default::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(summary.state, "scheduled");
    assert!(
        store.promote_due(now + hour - 1).unwrap().is_empty(),
        "not before its time"
    );
    // Meanwhile: b's application is withdrawn, c is merged into a.
    store.set_status(Some(b), None, "withdrawn").unwrap();
    store.merge(a, c).unwrap();
    let promoted = store.promote_due(now + hour).unwrap();
    let state_of = |cand: i64| {
        let item = summary
            .queued
            .iter()
            .find(|q| q.candidate == cand)
            .unwrap()
            .item;
        promoted.iter().find(|p| p.item == item).cloned().unwrap()
    };
    assert_eq!(state_of(a).state, "queued");
    assert_eq!(state_of(b).state, "cancelled");
    assert!(state_of(b).reason.contains("withdrawn"));
    assert_eq!(state_of(c).state, "cancelled");
    assert!(state_of(c).reason.contains("merged into"));
    let events = store.events(state_of(c).item).unwrap();
    let path: Vec<&str> = events.iter().map(|e| e.to_state.as_str()).collect();
    assert_eq!(path, vec!["scheduled", "cancelled"]);
    assert!(
        store.promote_due(now + 2 * hour).unwrap().is_empty(),
        "each only once"
    );
}
