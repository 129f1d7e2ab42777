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

/// A store with a candidate and a mail queued to them (one message, one
/// outbox item), its key created as `serve` creates it.
fn app_with_mail() -> (tempfile::TempDir, App) {
    let (dir, app) = app();
    crate::secrets::load_or_create_key(&app.config.server.state_dir).expect("key");
    let a = app
        .add_form_application(&form("erika@example.org", "backend-rust"))
        .expect("application");
    app.send(
        &super::access::Caller::Operator,
        &SendInput {
            template: "interview-invitation".into(),
            audience: Audience {
                candidates: vec![a.candidate],
                ..Default::default()
            },
            at: Some("2099-01-01 09:00".into()),
            ..Default::default()
        },
    )
    .expect("send");
    (dir, app)
}

/// One more candidate and a mail to them.
fn another_mail(app: &App, email: &str) {
    let a = app
        .add_form_application(&form(email, "backend-rust"))
        .expect("application");
    app.send(
        &super::access::Caller::Operator,
        &SendInput {
            template: "interview-invitation".into(),
            audience: Audience {
                candidates: vec![a.candidate],
                ..Default::default()
            },
            at: Some("2099-01-01 09:00".into()),
            ..Default::default()
        },
    )
    .expect("send");
}

fn key_bytes(app: &App) -> Vec<u8> {
    std::fs::read(app.config.server.state_dir.join(crate::secrets::KEY_FILE)).expect("key")
}

fn messages(app: &App) -> i64 {
    app.store().expect("store").count_messages().expect("count")
}

fn backup_method() -> crate::store::backup::Method {
    crate::store::backup::Method::Api { pages: -1 }
}

#[test]
fn a_backup_is_the_database_and_its_key_and_appears_only_when_complete() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, app) = app_with_mail();
    let file = dir.path().join("backups/jobmail-1.db");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let done = app.backup(&file, backup_method()).expect("backup");
    assert_eq!((done.info.messages, done.info.outbox_items), (1, 1));
    assert_eq!(done.info.schema, crate::store::backup::known_schema());
    assert_eq!(std::fs::read(&done.key_file).unwrap(), key_bytes(&app));
    let mode = std::fs::metadata(&done.key_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Nothing else is left in the directory: no temporary file, no WAL.
    let mut names: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["jobmail-1.db", "jobmail-1.db.key"]);
    // The copy is a store of its own.
    assert_eq!(Store::open(&file).unwrap().count_messages().unwrap(), 1);
    // The live database, its WAL or a directory are no target.
    for target in [
        app.config.server.database.clone(),
        crate::store::backup::kept_aside(&app.config.server.database, "x")
            .with_file_name("jobmail.db-wal"),
        dir.path().join("no/such/dir/b.db"),
    ] {
        assert!(app.backup(&target, backup_method()).is_err(), "{target:?}");
    }
    // Without a key nothing looks complete either.
    std::fs::remove_file(app.config.server.state_dir.join(crate::secrets::KEY_FILE)).unwrap();
    let other = dir.path().join("backups/jobmail-2.db");
    assert!(app.backup(&other, backup_method()).is_err());
    assert!(!other.exists());
}

#[test]
fn a_restore_puts_the_backup_and_its_key_in_place_and_keeps_the_old_store_aside() {
    let (dir, app) = app_with_mail();
    let file = dir.path().join("backup.db");
    app.backup(&file, backup_method()).expect("backup");
    let backed_up_key = key_bytes(&app);
    // Life goes on after the backup; then the key is lost too.
    app.add_form_application(&form("max@example.net", "backend-rust"))
        .expect("second");
    app.send(
        &super::access::Caller::Operator,
        &SendInput {
            template: "interview-invitation".into(),
            audience: Audience {
                position: Some("backend-rust".into()),
                ..Default::default()
            },
            at: Some("2099-01-01 09:00".into()),
            ..Default::default()
        },
    )
    .expect("send");
    assert_eq!(messages(&app), 3);
    std::fs::write(
        app.config.server.state_dir.join(crate::secrets::KEY_FILE),
        [7u8; 32],
    )
    .unwrap();

    let done = app.restore(&file).expect("restore");
    assert_eq!(messages(&app), 1);
    assert_eq!(key_bytes(&app), backed_up_key);
    let old_db = done.previous_database.expect("kept aside");
    assert_eq!(Store::open(&old_db).unwrap().count_messages().unwrap(), 3);
    assert_eq!(
        std::fs::read(done.previous_key.expect("kept")).unwrap(),
        [7u8; 32]
    );
    assert_eq!(done.schema_to, Some(crate::store::backup::known_schema()));
    // Nothing staged is left, and no marker.
    assert_eq!(
        crate::store::backup::pending_restore(&app.config.server.database).unwrap(),
        None
    );
    let leftovers: Vec<_> = std::fs::read_dir(app.config.server.database.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("restore-new") || n.ends_with(".restore"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_restore_is_refused_while_serve_holds_the_store() {
    let (dir, app) = app_with_mail();
    let file = dir.path().join("backup.db");
    app.backup(&file, backup_method()).expect("backup");
    let _serving = crate::secrets::lock_instance(&app.config.server.database).expect("lock");
    match app.restore(&file) {
        Err(Error::Invalid(m)) => assert!(m.contains("another jobmail serve is running"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_damaged_or_newer_backup_or_one_without_its_key_is_refused_and_the_store_untouched() {
    let (dir, app) = app_with_mail();
    let good = dir.path().join("good.db");
    app.backup(&good, backup_method()).expect("backup");
    another_mail(&app, "max@example.net");
    let before = key_bytes(&app);

    // Damaged: pages in the middle overwritten.
    let damaged = dir.path().join("damaged.db");
    let mut bytes = std::fs::read(&good).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len / 3..len / 3 + 8192] {
        *b = 0xA5;
    }
    std::fs::write(&damaged, bytes).unwrap();
    std::fs::copy(
        crate::secrets::key_beside(&good),
        crate::secrets::key_beside(&damaged),
    )
    .unwrap();
    // From a newer jobmail.
    let newer = dir.path().join("newer.db");
    std::fs::copy(&good, &newer).unwrap();
    std::fs::copy(
        crate::secrets::key_beside(&good),
        crate::secrets::key_beside(&newer),
    )
    .unwrap();
    crate::store::backup::set_schema_version_for_tests(&newer, 999);
    // Without its key.
    let keyless = dir.path().join("keyless.db");
    std::fs::copy(&good, &keyless).unwrap();

    for (file, says) in [
        (&damaged, ""),
        (&newer, "newer jobmail"),
        (&keyless, "FILE.key"),
    ] {
        let e = app.restore(file).expect_err("refused").to_string();
        assert!(e.contains(says), "{file:?}: {e}");
        assert_eq!(messages(&app), 2, "{file:?}: the store is untouched");
        assert_eq!(key_bytes(&app), before);
    }
    let staged: Vec<_> = std::fs::read_dir(app.config.server.database.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("restore"))
        .collect();
    assert!(staged.is_empty(), "{staged:?}");
}

#[test]
fn a_restore_interrupted_after_its_commit_point_is_finished_by_the_next_start() {
    use crate::store::backup as store_backup;
    let (dir, app) = app_with_mail();
    let file = dir.path().join("backup.db");
    app.backup(&file, backup_method()).expect("backup");
    let backed_up_key = key_bytes(&app);
    another_mail(&app, "max@example.net");
    std::fs::write(
        app.config.server.state_dir.join(crate::secrets::KEY_FILE),
        [7u8; 32],
    )
    .unwrap();
    let (database, state) = (&app.config.server.database, &app.config.server.state_dir);

    // Before the commit point: staged files only; nothing to finish, the
    // old store is as it was.
    store_backup::stage_restore(&file, database).expect("stage");
    crate::secrets::stage_key(&crate::secrets::key_beside(&file), state).expect("stage key");
    assert!(
        super::backup::finish_pending(&app.config)
            .unwrap()
            .is_none()
    );
    assert_eq!(messages(&app), 2);
    assert_eq!(key_bytes(&app), [7u8; 32]);

    // Past it, and killed after the key went in but before the database:
    // the next start (serve calls finish_pending) finishes the restore.
    assert!(store_backup::fold_wal(database));
    store_backup::mark_restore(database, "20261202T000000Z").unwrap();
    crate::secrets::install_staged_key(state, "20261202T000000Z").unwrap();
    assert_eq!(key_bytes(&app), backed_up_key);
    let done = super::backup::finish_pending(&app.config)
        .unwrap()
        .expect("finished");
    assert_eq!(messages(&app), 1);
    assert_eq!(key_bytes(&app), backed_up_key);
    let aside = done.previous_database.expect("kept");
    assert!(
        aside
            .to_string_lossy()
            .ends_with(".before-restore-20261202T000000Z")
    );
    assert_eq!(Store::open(&aside).unwrap().count_messages().unwrap(), 2);
    assert_eq!(
        std::fs::read(done.previous_key.expect("kept")).unwrap(),
        [7u8; 32]
    );
    // Once finished, there is nothing more to do.
    assert!(
        super::backup::finish_pending(&app.config)
            .unwrap()
            .is_none()
    );
}

#[test]
fn the_log_of_an_item_shows_each_step_to_sent_with_the_upstreams_reply() {
    use super::history::Subject;
    use crate::store::outbox::{ClaimLimits, Outcome};
    let (_dir, app) = app();
    let a = app
        .add_form_application(&form("erika@example.org", "backend-rust"))
        .expect("application");
    let summary = app
        .send(
            &super::access::Caller::Operator,
            &SendInput {
                template: "interview-invitation".into(),
                audience: Audience {
                    candidates: vec![a.candidate],
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .expect("send");
    let item = summary.queued[0].item;
    let mut store = app.store().unwrap();
    let now = crate::clock::now_ms();
    let claimed = store
        .claim_due(
            now + 1,
            &ClaimLimits {
                others: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let sent = Outcome::Sent {
        code: Some(250),
        text: "2.0.0 Ok: queued as TEST".into(),
    };
    store
        .record_outcomes(&[(item, sent, now + 2)], &[])
        .unwrap();

    let log = app.mail_log(Subject::Item(item)).expect("log");
    let steps: Vec<(&str, Option<i64>, Option<i64>)> = log
        .steps
        .iter()
        .map(|s| (s.step.as_str(), s.message, s.item))
        .collect();
    let message = Some(log.message);
    assert_eq!(
        steps,
        [
            ("composed", message, None),
            ("queued", None, Some(item)),
            ("sending", None, Some(item)),
            ("sent", None, Some(item)),
        ]
    );
    let last = &log.steps[3].text;
    assert_eq!(last, "attempt 1: 250 2.0.0 Ok: queued as TEST");
    assert!(
        log.steps[2]
            .text
            .starts_with("attempt 1 via 127.0.0.1:2600"),
        "{:?}",
        log.steps[2]
    );
    assert_eq!(
        log.journal,
        format!(
            "journalctl -u jobmail -o cat | grep -w -e message={} -e item={item}",
            log.message
        )
    );
    // The same life asked for by its message.
    let by_message = app.mail_log(Subject::Message(log.message)).expect("log");
    assert_eq!(by_message.items, [item]);
    assert!(matches!(
        app.mail_log(Subject::Item(item + 100)),
        Err(Error::NotFound(_))
    ));
}

/// A template that loads but does not render for this candidate is the
/// template's fault, not the request's: `Unrenderable` (HTTP 422), not
/// `Invalid`.
#[test]
fn a_template_that_does_not_render_is_unrenderable() {
    let (dir, app) = app();
    std::fs::write(
        dir.path().join("config/templates/broken.toml"),
        "description = \"broken\"\ndefault_language = \"de\"\n[de]\nsubject = \"Hallo\"\n\
text = \"{{ g(\\\"a\\\") }} {{ 1 / 0 }}\"\n",
    )
    .expect("write template");
    let outcome = app
        .add_form_application(&form("erika@example.org", "backend-rust"))
        .expect("application");
    let input = PreviewInput {
        template: "broken".into(),
        candidate: outcome.candidate,
        ..Default::default()
    };
    match app.preview(&input) {
        Err(Error::Unrenderable(m)) => assert!(m.contains("candidate"), "{m}"),
        other => panic!("expected Unrenderable, got {other:?}"),
    }
}
