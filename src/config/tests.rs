//! The config reader against good and broken files.

use super::*;

const GOOD: &str = r#"
[server]
listen = ["127.0.0.1:2525"]
hostname = "jobs.acme.example"
database = "var/jobmail.db"

[[subsidiary]]
id = "acme-de"
name = "ACME GmbH"
jobs_address = "jobs@acme.example"
aliases = ["karriere@acme.example"]
domains = ["acme-group.example"]

[[category]]
id = "engineering"

[[position]]
id = "backend"
title = "Backend Engineer"
subsidiary = "acme-de"
category = "engineering"
alias = "jobs+backend@acme.example"
"#;

#[test]
fn good_config_reads_with_defaults() {
    let c = parse(GOOD, Path::new("/etc/jobmail/jobmail.toml")).unwrap();
    assert_eq!(
        c.server.database,
        PathBuf::from("/etc/jobmail/var/jobmail.db")
    );
    assert_eq!(c.server.max_message_size, 10_485_760);
    assert_eq!(c.server.bare_line_endings, BareLineEndings::Reject);
    assert_eq!(
        c.subsidiaries[0].domains,
        vec!["acme-group.example".to_string(), "acme.example".to_string()]
    );
    assert_eq!(
        c.positions[0].alias.as_ref().unwrap().to_string(),
        "jobs+backend@acme.example"
    );
}

#[test]
fn a_config_named_without_a_directory_is_read_relative_to_the_working_directory() {
    let text = GOOD.replace("var/jobmail.db", "jobmail.db");
    let c = parse(&text, Path::new("jobmail.toml")).unwrap();
    assert_eq!(c.server.database, PathBuf::from("./jobmail.db"));
    // Not "": the key file must be creatable there.
    assert_eq!(c.server.state_dir, PathBuf::from("."));
}

#[test]
fn every_error_at_once_with_key_and_line() {
    let bad = r#"
[server]
listn = ["127.0.0.1:2525"]
max_message_size = 0
command_timeout = "forever"

[[subsidiary]]
id = "acme"
jobs_address = "jobs%evil@acme.example"

[[subsidiary]]
id = "acme"
jobs_address = "jobs@other.example"

[[category]]
id = "eng"

[[position]]
id = "p1"
title = "X"
subsidiary = "nope"
category = "missing"
"#;
    let errs = parse(bad, Path::new("bad.toml")).unwrap_err();
    let keys: Vec<&str> = errs.errors.iter().map(|e| e.key.as_str()).collect();
    for expected in [
        "server.listn",
        "server.max_message_size",
        "server.command_timeout",
        "subsidiary[0].jobs_address",
        "subsidiary[1].id",
        "position[0].subsidiary",
        "position[0].category",
    ] {
        assert!(keys.contains(&expected), "missing {expected} in {keys:?}");
    }
    let unknown = errs
        .errors
        .iter()
        .find(|e| e.key == "server.listn")
        .unwrap();
    assert_eq!(unknown.line, Some(3));
    let text = errs.to_string();
    assert!(
        text.contains("bad.toml:3: server.listn: unknown key"),
        "{text}"
    );
}

#[test]
fn syntax_error_is_reported_with_line() {
    let errs = parse("[server\nhostname = 1", Path::new("x.toml")).unwrap_err();
    assert!(
        errs.errors
            .iter()
            .any(|e| e.message.starts_with("TOML syntax"))
    );
}

#[test]
fn an_address_may_lead_to_one_place_only() {
    let text = GOOD.replace("karriere@acme.example", "JOBS@acme.example");
    let errs = parse(&text, Path::new("x.toml")).unwrap_err();
    assert!(
        errs.errors
            .iter()
            .any(|e| e.key == "subsidiary[0].aliases[0]"),
        "{errs}"
    );
    let text = GOOD.replace(
        "jobs+backend@acme.example",
        "jobs+backend@elsewhere.example",
    );
    let errs = parse(&text, Path::new("x.toml")).unwrap_err();
    assert!(
        errs.errors.iter().any(|e| e.key == "position[0].alias"),
        "{errs}"
    );
}

/// Bad configs as data: each `fixtures/config/bad/NAME.toml` has beside it
/// `NAME.expected`, every error the reader must report for it (`line: key:
/// message`), and nothing else. `JOBMAIL_BLESS=1` writes the files anew
/// (read them before committing).
#[test]
fn every_bad_config_reports_exactly_its_expected_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/config/bad");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let bless = std::env::var_os("JOBMAIL_BLESS").is_some();
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let errors = match parse(&text, Path::new("/etc/jobmail/jobmail.toml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.errors,
        };
        let got: String = errors
            .iter()
            .map(|e| {
                let line = e.line.map(|l| l.to_string()).unwrap_or_else(|| "-".into());
                match e.key.as_str() {
                    "" => format!("{line}: {}\n", e.message),
                    key => format!("{line}: {key}: {}\n", e.message),
                }
            })
            .collect();
        let expected_file = file.with_extension("expected");
        if bless {
            std::fs::write(&expected_file, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_file)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_file.display()));
        if errors.is_empty() || got != expected {
            failures.push(format!(
                "{}:\n--- expected\n{expected}--- got\n{got}",
                file.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_tls_section_is_read_with_its_paths_and_networks() {
    let text = format!(
        "{GOOD}\n[tls]\ncertificate = \"tls/fullchain.pem\"\nkey = \"/etc/ssl/private/jobmail.pem\"\nimplicit_listen = [\"127.0.0.1:4650\"]\nrequire_from = [\"10.0.0.0/8\", \"2001:db8::25\"]\n"
    );
    let c = parse(&text, Path::new("/etc/jobmail/jobmail.toml")).unwrap();
    let tls = c.tls.expect("[tls]");
    assert_eq!(
        tls.certificate,
        PathBuf::from("/etc/jobmail/tls/fullchain.pem")
    );
    assert_eq!(tls.key, PathBuf::from("/etc/ssl/private/jobmail.pem"));
    assert_eq!(
        tls.implicit_listen,
        vec!["127.0.0.1:4650".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(
        tls.require_from
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>(),
        ["10.0.0.0/8", "2001:db8::25/128"]
    );
    assert_eq!(tls.handshake_timeout, Duration::from_secs(30));
    // No [tls]: nothing is offered.
    assert!(parse(GOOD, Path::new("x.toml")).unwrap().tls.is_none());
}
