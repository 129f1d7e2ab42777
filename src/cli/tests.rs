//! The command line as clap reads it: what each command accepts, what it
//! refuses before anything runs (conflicts, missing names, ranges), and
//! the defaults. No store, no daemon.

use clap::Parser;

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("jobmail").chain(args.iter().copied()))
}

fn refused(args: &[&str]) -> String {
    match parse(args) {
        Ok(cli) => panic!("{args:?} was accepted: {cli:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_config_flag_is_global_and_optional() {
    let cli = parse(&["inbox", "--config", "/tmp/j.toml"]).expect("inbox");
    assert_eq!(
        cli.config.as_deref(),
        Some(std::path::Path::new("/tmp/j.toml"))
    );
    let cli = parse(&["--config", "a.toml", "serve"]).expect("serve");
    assert!(matches!(cli.command, Command::Serve));
    assert!(parse(&["config", "check"]).expect("check").config.is_none());
}

#[test]
fn inbox_and_lists_have_bounded_limits_with_defaults() {
    let Command::Inbox(args) = parse(&["inbox"]).expect("inbox").command else {
        panic!("not inbox");
    };
    assert!(args.limit > 0 && !args.json && !args.unassigned);
    assert!(refused(&["candidate", "list", "--limit", "0"]).contains("--limit"));
    assert!(refused(&["queue", "list", "--limit", "2000000"]).contains("--limit"));
    let Command::Candidate(CandidateCommand::List { limit, .. }) =
        parse(&["candidate", "list"]).expect("list").command
    else {
        panic!("not candidate list");
    };
    assert_eq!(limit, 50);
}

#[test]
fn send_names_its_audience_one_way() {
    let Command::Send(args) = parse(&[
        "send",
        "--template",
        "invitation",
        "--candidates",
        "3,1,2",
        "--at",
        "2026-12-01 09:00",
    ])
    .expect("send")
    .command
    else {
        panic!("not send");
    };
    assert_eq!(args.candidates, [3, 1, 2]);
    assert_eq!(args.at.as_deref(), Some("2026-12-01 09:00"));
    // One candidate, a list, or a filter: never two of them.
    assert!(
        refused(&[
            "send",
            "--template",
            "t",
            "--candidate",
            "1",
            "--candidates",
            "2"
        ])
        .contains("cannot be used with")
    );
    assert!(
        refused(&[
            "send",
            "--template",
            "t",
            "--candidate",
            "1",
            "--position",
            "p"
        ])
        .contains("cannot be used with")
    );
    assert!(refused(&["send", "--candidate", "1"]).contains("--template"));
    // A filter may combine position, category and status.
    assert!(
        parse(&[
            "send",
            "--template",
            "t",
            "--category",
            "sales",
            "--status",
            "new"
        ])
        .is_ok()
    );
}

#[test]
fn queue_retry_wants_an_item_or_all_deferred() {
    assert!(refused(&["queue", "retry"]).contains("required"));
    assert!(refused(&["queue", "retry", "7", "--all-deferred"]).contains("cannot be used with"));
    assert!(matches!(
        parse(&["queue", "retry", "7"]).expect("retry").command,
        Command::Queue(QueueCommand::Retry { id: Some(7), .. })
    ));
    assert!(matches!(
        parse(&["queue", "retry", "--all-deferred"])
            .expect("flush")
            .command,
        Command::Queue(QueueCommand::Retry {
            id: None,
            all_deferred: true
        })
    ));
    assert!(refused(&["queue", "hold"]).contains("<ID>"));
    assert!(refused(&["queue", "cancel", "seven"]).contains("invalid"));
}

#[test]
fn a_form_application_names_a_candidate_or_an_address_with_a_name() {
    assert!(
        parse(&[
            "application",
            "add",
            "--candidate",
            "4",
            "--position",
            "backend"
        ])
        .is_ok()
    );
    assert!(
        parse(&[
            "application",
            "add",
            "--email",
            "a@example.org",
            "--name",
            "Ada Lovelace",
            "--subsidiary",
            "acme"
        ])
        .is_ok()
    );
    assert!(
        refused(&[
            "application",
            "add",
            "--email",
            "a@example.org",
            "--position",
            "p"
        ])
        .contains("--name")
    );
    assert!(
        refused(&[
            "application",
            "add",
            "--candidate",
            "4",
            "--email",
            "a@example.org"
        ])
        .contains("cannot be used with")
    );
    assert!(
        refused(&[
            "application",
            "add",
            "--candidate",
            "4",
            "--position",
            "p",
            "--subsidiary",
            "s"
        ])
        .contains("cannot be used with")
    );
}

#[test]
fn message_and_candidate_commands_take_numeric_ids() {
    assert!(matches!(
        parse(&["message", "assign", "12", "--candidate", "3"])
            .expect("assign")
            .command,
        Command::Message(MessageCommand::Assign {
            id: 12,
            candidate: 3
        })
    ));
    assert!(refused(&["message", "assign", "12"]).contains("--candidate"));
    assert!(refused(&["candidate", "merge", "1"]).contains("<FROM>"));
    assert!(refused(&["message", "show", "x"]).contains("invalid"));
    assert!(refused(&["frobnicate"]).contains("unrecognized subcommand"));
}

#[test]
fn log_names_a_message_or_an_item_and_backup_and_restore_a_file() {
    assert!(matches!(
        parse(&["log", "message", "12"]).expect("log").command,
        Command::Log(LogCommand::Message {
            id: 12,
            json: false
        })
    ));
    assert!(matches!(
        parse(&["log", "item", "45", "--json"])
            .expect("log")
            .command,
        Command::Log(LogCommand::Item { id: 45, json: true })
    ));
    assert!(refused(&["log", "12"]).contains("unrecognized subcommand"));
    assert!(refused(&["log", "item", "x"]).contains("invalid"));
    let Command::Backup(args) = parse(&["backup", "/var/backups/j.db"])
        .expect("backup")
        .command
    else {
        panic!("not backup");
    };
    assert_eq!(args.file, std::path::Path::new("/var/backups/j.db"));
    assert_eq!(args.method, "api");
    assert!(refused(&["backup"]).contains("<FILE>"));
    assert!(matches!(
        parse(&["restore", "j.db", "--json"])
            .expect("restore")
            .command,
        Command::Restore(RestoreArgs { json: true, .. })
    ));
}
