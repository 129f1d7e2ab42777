//! The application layer without a front end: the example config in a
//! temporary directory, a real store, and each operation as the CLI and
//! the HTTP API call it, with the errors a front end maps.

use std::path::{Path, PathBuf};

use super::candidates::FormInput;
use super::outbox::{PreviewInput, SendInput};
use super::{App, Error};
use crate::outbound::audience::Audience;
use crate::store::outbox::{Action, QueueFilter};
use crate::store::{InboxFilter, Store};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

/// The example config and its templates in a temporary directory, with
/// its store created as `serve` creates it.
fn app() -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let config_dir = dir.path().join("config");
    copy_dir(&repo, &config_dir);
    let path: PathBuf = config_dir.join("jobmail.toml");
    std::fs::copy(repo.join("jobmail.example.toml"), &path).expect("config");
    let config = crate::config::load(&path).expect("example config");
    drop(Store::create(&config.server.database).expect("store"));
    (dir, App::new(config))
}

fn form(email: &str, position: &str) -> FormInput {
    FormInput {
        email: Some(email.into()),
        name: Some("Erika Mustermann".into()),
        position: Some(position.into()),
        ..Default::default()
    }
}

#[test]
fn a_form_application_is_checked_recorded_and_acknowledged_in_one_go() {
    let (_dir, app) = app();
    let done = app
        .add_form_application(&form("erika@example.org", "backend-rust"))
        .expect("application");
    assert!(done.created);
    // The example acknowledges form applications to engineering.
    assert_eq!(
        done.acknowledgement.decision, "pending",
        "{:?}",
        done.acknowledgement
    );
    let c = app.candidate(done.candidate).expect("candidate");
    assert_eq!(
        (c.summary.first_name.as_str(), c.summary.last_name.as_str()),
        ("Erika", "Mustermann")
    );
    assert_eq!(c.applications[0].position.as_deref(), Some("backend-rust"));
    // The same person again within the period: suppressed, and why.
    let again = app
        .add_form_application(&form("erika@example.org", "backend-rust"))
        .expect("again");
    assert_eq!(again.candidate, done.candidate);
    assert_eq!(
        again.acknowledgement.rule.as_deref(),
        Some("already-acknowledged")
    );
    // What cannot be done is Invalid, before anything is written.
    for (input, says) in [
        (form("x@example.org", "astronaut"), "no position"),
        (
            FormInput {
                language: Some("tlh".into()),
                ..form("x@example.org", "backend-rust")
            },
            "no template has it",
        ),
        (form("not an address", "backend-rust"), "e-mail address"),
        (
            FormInput {
                position: None,
                ..form("x@example.org", "")
            },
            "name a position",
        ),
        (
            FormInput {
                email: None,
                ..form("", "backend-rust")
            },
            "name a candidate",
        ),
    ] {
        match app.add_form_application(&input) {
            Err(Error::Invalid(m)) => assert!(m.contains(says), "{m}"),
            other => panic!("{input:?}: {other:?}"),
        }
    }
    assert_eq!(app.candidates(None, 10).expect("list").len(), 1);
}

#[test]
fn what_does_not_exist_is_not_found() {
    let (_dir, app) = app();
    assert!(matches!(app.message(999), Err(Error::NotFound(_))));
    assert!(matches!(
        app.raw_message(&super::access::Caller::Operator, 999),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(app.assign(999, 1), Err(Error::NotFound(_))));
    assert!(matches!(app.candidate(999), Err(Error::NotFound(_))));
    assert!(matches!(app.queue_item(999), Err(Error::NotFound(_))));
    assert!(matches!(
        app.unsuppress("nobody@example.org"),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(app.template("no-such"), Err(Error::NotFound(_))));
    assert!(matches!(
        app.check_templates(Some("no-such")),
        Err(Error::NotFound(_))
    ));
    assert!(
        app.inbox(&InboxFilter {
            limit: 10,
            ..Default::default()
        })
        .expect("inbox")
        .is_empty()
    );
}

#[test]
fn a_send_goes_to_its_audience_and_the_queue_shows_and_changes_it() {
    let (_dir, app) = app();
    let a = app
        .add_form_application(&form("a@example.org", "backend-rust"))
        .expect("a");
    let b = app
        .add_form_application(&form("b@example.org", "account-exec-paris"))
        .expect("b");
    // The exact mail first: nothing queued.
    let preview = app
        .preview(&PreviewInput {
            template: "interview-invitation".into(),
            candidate: a.candidate,
            ..Default::default()
        })
        .expect("preview");
    assert_eq!(preview.mail.to, "a@example.org");
    assert!(preview.suppressed.is_none());
    assert!(
        app.queue(&QueueFilter {
            limit: 10,
            ..Default::default()
        })
        .expect("queue")
        .items
        .is_empty()
    );
    // Everyone in engineering: only a.
    let audience = Audience {
        category: Some("engineering".into()),
        ..Default::default()
    };
    assert_eq!(app.audience(&audience).expect("audience"), [a.candidate]);
    let summary = app
        .send(
            &super::access::Caller::Operator,
            &SendInput {
                template: "interview-invitation".into(),
                audience,
                at: Some("2099-01-01 09:00".into()),
                ..Default::default()
            },
        )
        .expect("send");
    assert_eq!(summary.state, "scheduled");
    assert_eq!(summary.queued.len(), 1);
    assert_eq!(summary.queued[0].candidate, a.candidate);
    let item = summary.queued[0].item;
    let view = app.queue_item(item).expect("item");
    assert_eq!(view.item.state, "scheduled");
    assert!(!view.raw.is_empty());
    assert_eq!(app.queue_action(Action::Hold(item)).expect("hold"), 1);
    assert_eq!(app.cancel(item).expect("cancel"), "scheduled");
    let q = app
        .queue(&QueueFilter {
            states: vec!["cancelled".into()],
            limit: 10,
            ..Default::default()
        })
        .expect("queue");
    assert_eq!(q.items.len(), 1);
    // Asked wrongly: Invalid, nothing sent.
    for input in [
        SendInput {
            template: "no-such".into(),
            audience: Audience {
                candidates: vec![b.candidate],
                ..Default::default()
            },
            ..Default::default()
        },
        SendInput {
            template: "interview-invitation".into(),
            audience: Audience::default(),
            ..Default::default()
        },
        SendInput {
            template: "interview-invitation".into(),
            audience: Audience {
                position: Some("astronaut".into()),
                ..Default::default()
            },
            ..Default::default()
        },
        SendInput {
            template: "interview-invitation".into(),
            audience: Audience {
                candidates: vec![b.candidate],
                ..Default::default()
            },
            at: Some("soon".into()),
            ..Default::default()
        },
    ] {
        assert!(
            matches!(
                app.send(&super::access::Caller::Operator, &input),
                Err(Error::Invalid(_))
            ),
            "{input:?}"
        );
    }
    assert!(matches!(
        app.queue(&QueueFilter {
            states: vec!["lost".into()],
            limit: 1,
            ..Default::default()
        }),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn the_example_templates_pass_their_checks() {
    let (_dir, app) = app();
    let checked = app.check_templates(None).expect("check");
    assert!(checked.problems.is_empty(), "{:?}", checked.problems);
    assert_eq!(
        checked.checked,
        app.templates_loaded().templates.templates.len()
    );
    assert!(super::checks::serve_problems(&app.config).is_empty());
}
