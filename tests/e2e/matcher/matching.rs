//! The matching scenario of `fixtures/matching/scenario.toml`, run twice:
//! through the pure matcher against an in-memory world (a table test, no
//! database), and end to end through the real binary over SMTP and the CLI.
//! Both must give every step's expected candidate, reason and assignment.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use jobmail::config::company::Company;
use jobmail::matcher::token::TokenKey;
use jobmail::matcher::{self, Assignment, Lookups, MatchInput};
use serde::Deserialize;

use crate::support::harness::*;

const KEY: [u8; 32] = [0x42; 32];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/matching")
}

fn world() -> String {
    std::fs::read_to_string(dir().join("world.toml")).expect("world.toml")
}

#[derive(Debug, Deserialize)]
struct Scenario {
    step: Vec<Step>,
}

#[derive(Debug, Deserialize, Clone)]
struct NewCandidate {
    first_name: String,
    last_name: String,
    email: String,
    language: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
struct Application {
    position: Option<String>,
    subsidiary: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
struct Form {
    email: String,
    first_name: String,
    last_name: String,
    position: String,
}

#[derive(Debug, Deserialize, Clone)]
struct SetStatus {
    candidate: i64,
    status: String,
}

#[derive(Debug, Deserialize, Clone)]
struct Step {
    mail: Option<String>,
    #[serde(default)]
    envelope_sender: String,
    #[serde(default)]
    recipients: Vec<String>,
    reason: Option<String>,
    assignment: Option<String>,
    candidate: Option<i64>,
    #[serde(default)]
    suggestions: Vec<i64>,
    #[serde(default)]
    closed_thread: bool,
    new_candidate: Option<NewCandidate>,
    application: Option<Application>,
    form_application: Option<Form>,
    set_status: Option<SetStatus>,
}

impl Step {
    fn name(&self) -> String {
        self.mail
            .clone()
            .or_else(|| {
                self.form_application
                    .as_ref()
                    .map(|f| format!("form application of {}", f.email))
            })
            .or_else(|| {
                self.set_status
                    .as_ref()
                    .map(|s| format!("status {} for {}", s.status, s.candidate))
            })
            .unwrap_or_default()
    }
}

fn scenario() -> Scenario {
    let text = std::fs::read_to_string(dir().join("scenario.toml")).expect("scenario.toml");
    toml::from_str(&text).expect("scenario.toml parses")
}

// ------------------------------------------------------------- pure

#[derive(Default)]
struct Person {
    first_name: String,
    last_name: String,
    addresses: Vec<String>,
    statuses: Vec<String>,
}

/// The store's answers, kept in memory: the matcher needs nothing more.
#[derive(Default)]
struct World {
    people: Vec<Person>,
    /// (Message-ID, original Message-ID, candidate) of every mail filed.
    messages: Vec<(Option<String>, Option<String>, Option<i64>)>,
}

impl Lookups for World {
    fn candidates_with_address(&self, address: &str) -> Vec<i64> {
        (1..=self.people.len() as i64)
            .filter(|&id| {
                self.people[id as usize - 1]
                    .addresses
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(address))
            })
            .collect()
    }
    fn candidates_of_message_id(&self, message_id: &str) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .messages
            .iter()
            .filter(|(id, orig, _)| {
                id.as_deref() == Some(message_id) || orig.as_deref() == Some(message_id)
            })
            .filter_map(|(_, _, c)| *c)
            .collect();
        ids.dedup();
        ids
    }
    fn resolve_candidate(&self, id: i64) -> Option<i64> {
        (id >= 1 && id as usize <= self.people.len()).then_some(id)
    }
    fn outbox_item(&self, _: i64) -> Option<matcher::OutboxFacts> {
        None
    }
    fn outbox_item_of_message_id(&self, _: &str) -> Option<(i64, i64)> {
        None
    }
    fn thread_closed(&self, id: i64) -> bool {
        let s = &self.people[id as usize - 1].statuses;
        !s.is_empty() && s.iter().all(|x| x == "rejected" || x == "withdrawn")
    }
}

#[test]
fn scenario_table_through_the_pure_matcher() {
    let config = jobmail::config::parse(&world(), Path::new("world.toml")).expect("world config");
    let directory = Company::from_config(&config);
    let key = TokenKey::new(KEY);
    let mut w = World::default();
    let mut failures = Vec::new();
    let steps = scenario().step;
    assert!(
        steps.iter().filter(|s| s.mail.is_some()).count() >= 20,
        "at least 20 mails"
    );
    for (n, step) in steps.iter().enumerate() {
        if let Some(f) = &step.form_application {
            let existing = w.candidates_with_address(&f.email).into_iter().find(|&id| {
                let p = &w.people[id as usize - 1];
                p.first_name.eq_ignore_ascii_case(&f.first_name)
                    && p.last_name.eq_ignore_ascii_case(&f.last_name)
            });
            let id = existing.unwrap_or_else(|| {
                w.people.push(Person {
                    first_name: f.first_name.clone(),
                    last_name: f.last_name.clone(),
                    addresses: vec![f.email.clone()],
                    statuses: Vec::new(),
                });
                w.people.len() as i64
            });
            w.people[id as usize - 1].statuses.push("new".into());
            if Some(id) != step.candidate {
                failures.push(format!(
                    "step {n} ({}): candidate {id}, expected {:?}",
                    step.name(),
                    step.candidate
                ));
            }
            continue;
        }
        if let Some(s) = &step.set_status {
            for st in &mut w.people[s.candidate as usize - 1].statuses {
                *st = s.status.clone();
            }
            continue;
        }
        let Some(file) = &step.mail else { continue };
        let raw = std::fs::read(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let parsed = jobmail::inbound::parse::parse_message(&raw, step.envelope_sender.is_empty());
        let input = MatchInput {
            envelope_sender: &step.envelope_sender,
            headers: &parsed.headers,
            text: &parsed.text,
            attached_authors: &parsed.attached_authors,
            recipients: &step.recipients,
            report: None,
            authentication: None,
            received_at_ms: 0,
        };
        let d = matcher::decide(&input, &directory, &key, &w);
        let (assignment, candidate, suggestions) = match &d.assignment {
            Assignment::Candidate(c) => {
                if let Some(a) = &d.learn_address {
                    w.people[*c as usize - 1].addresses.push(a.clone());
                }
                ("assigned", Some(*c), Vec::new())
            }
            Assignment::New(nc, app) => {
                w.people.push(Person {
                    first_name: nc.first_name.clone(),
                    last_name: nc.last_name.clone(),
                    addresses: vec![nc.email.clone()],
                    statuses: vec!["new".into()],
                });
                let id = w.people.len() as i64;
                if let Some(expected) = &step.new_candidate {
                    let got = (
                        &nc.first_name,
                        &nc.last_name,
                        nc.email.to_lowercase(),
                        &nc.language,
                    );
                    let want = (
                        &expected.first_name,
                        &expected.last_name,
                        expected.email.to_lowercase(),
                        &expected.language,
                    );
                    if got != want {
                        failures.push(format!(
                            "step {n} ({file}): new candidate {got:?}, expected {want:?}"
                        ));
                    }
                }
                if let Some(a) = &step.application {
                    let want_sub = a.subsidiary.clone().or_else(|| {
                        a.position.as_ref().and_then(|p| {
                            config
                                .positions
                                .iter()
                                .find(|x| &x.id == p)
                                .map(|x| x.subsidiary.clone())
                        })
                    });
                    if (app.position.clone(), Some(app.subsidiary.clone()))
                        != (a.position.clone(), want_sub.clone())
                    {
                        failures.push(format!(
                            "step {n} ({file}): application {:?}/{:?}, expected {:?}/{:?}",
                            app.subsidiary, app.position, want_sub, a.position
                        ));
                    }
                }
                ("assigned", Some(id), Vec::new())
            }
            Assignment::Unassigned(s) => ("unassigned", None, s.clone()),
            Assignment::Nowhere => ("none", None, Vec::new()),
        };
        w.messages.push((
            parsed.headers.message_id.clone(),
            parsed.headers.original_message_id.clone(),
            candidate,
        ));
        let got = (
            d.reason.as_str().to_string(),
            assignment.to_string(),
            candidate,
            suggestions,
            d.closed_thread,
        );
        let want = (
            step.reason.clone().unwrap_or_default(),
            step.assignment.clone().unwrap_or_default(),
            step.candidate,
            step.suggestions.clone(),
            step.closed_thread,
        );
        if got != want {
            failures.push(format!(
                "step {n} ({file}): got {got:?}, expected {want:?} — {}",
                d.detail
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} step(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ------------------------------------------------------------- end to end

#[test]
fn scenario_end_to_end_over_smtp_and_the_cli() {
    let d = Daemon::start_world("", &world(), Some(KEY));
    let mut failures = Vec::new();
    let mut expected_people: BTreeSet<String> = BTreeSet::new();
    for (n, step) in scenario().step.iter().enumerate() {
        if let Some(f) = &step.form_application {
            let out = d.cli(&[
                "application",
                "add",
                "--json",
                "--email",
                &f.email,
                "--name",
                &format!("{} {}", f.first_name, f.last_name),
                "--position",
                &f.position,
            ]);
            assert!(
                out.status.success(),
                "step {n}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if v["candidate"].as_i64() != step.candidate {
                failures.push(format!(
                    "step {n} ({}): candidate {}, expected {:?}",
                    step.name(),
                    v["candidate"],
                    step.candidate
                ));
            }
            expected_people.insert(f.email.to_lowercase());
            continue;
        }
        if let Some(s) = &step.set_status {
            let out = d.cli(&[
                "application",
                "status",
                &s.status,
                "--candidate",
                &s.candidate.to_string(),
            ]);
            assert!(
                out.status.success(),
                "step {n}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        }
        let Some(file) = &step.mail else { continue };
        let raw = std::fs::read(dir().join(file)).unwrap();
        let mut c = d.connect();
        c.ehlo();
        c.expect_cmd(&format!("MAIL FROM:<{}>", step.envelope_sender), 250);
        for r in &step.recipients {
            c.expect_cmd(&format!("RCPT TO:<{r}>"), 250);
        }
        c.expect_cmd("DATA", 354);
        c.send(&stuff(&raw));
        c.send(b".\r\n");
        let text = c.expect(250);
        let id = text.trim().rsplit(' ').next().unwrap().to_string();
        let out = d.cli(&["message", "show", &id, "--json"]);
        let m: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("message show --json");
        let suggestions: Vec<i64> = m["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["id"].as_i64())
            .collect();
        let got = (
            m["reason"].as_str().unwrap_or("").to_string(),
            m["assignment"].as_str().unwrap_or("").to_string(),
            m["candidate"]["id"].as_i64(),
            suggestions,
            m["closed_thread"].as_bool().unwrap_or(false),
        );
        let want = (
            step.reason.clone().unwrap_or_default(),
            step.assignment.clone().unwrap_or_default(),
            step.candidate,
            step.suggestions.clone(),
            step.closed_thread,
        );
        if got != want {
            failures.push(format!(
                "step {n} ({file}): got {got:?}, expected {want:?} — {}",
                m["detail"]
            ));
        }
        let confidence = step
            .reason
            .as_deref()
            .and_then(matcher::Reason::parse)
            .map(matcher::Reason::confidence);
        assert_eq!(
            m["confidence"].as_str(),
            confidence,
            "step {n} ({file}): confidence shown"
        );
        if let Some(nc) = &step.new_candidate {
            expected_people.insert(nc.email.to_lowercase());
        }
    }
    assert!(
        failures.is_empty(),
        "{} step(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Exactly the expected people (each by the address it was created
    // with), and no address of the company or of a robot anywhere.
    let out = d.cli(&["candidate", "list", "--json", "--limit", "1000"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = v["candidates"].as_array().unwrap();
    let mut people: BTreeSet<String> = BTreeSet::new();
    for c in list {
        let addresses = c["addresses"].as_array().unwrap();
        for a in addresses {
            let a = a.as_str().unwrap().to_lowercase();
            for company in ["acme.example", "acme-group.example", "acme-france.example"] {
                assert!(
                    !a.ends_with(&format!("@{company}")),
                    "a colleague became a candidate: {a}"
                );
            }
            assert!(
                !a.starts_with("mailer-daemon@") && !a.starts_with("postmaster@"),
                "a robot became a candidate: {a}"
            );
        }
        people.insert(addresses[0].as_str().unwrap().to_lowercase());
    }
    assert_eq!(list.len(), 17, "candidates created by the scenario");
    assert_eq!(people, expected_people, "candidate list");
}
