//! `jobmail config check` lists every error at once; `serve` refuses the same config.

use crate::support::harness::*;

fn write(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("jobmail.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_example_config_checks_ok() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/jobmail.example.toml");
    let out = cli(&path, &["config", "check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": ok\n"));
}

#[test]
fn every_error_is_listed_and_serve_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        r#"
[server]
listen = ["127.0.0.1:99999"]
max_message_size = 100
max_connections = 0
shutdown_timeout = "soon"
bare_line_endings = "maybe"
colour = "blue"

[[subsidiary]]
id = "acme"
jobs_address = "jobs%evil.example@acme.example"

[[subsidiary]]
id = "acme"
jobs_address = "jobs@acme.example"
aliases = ["not an address"]

[[category]]
id = "eng"

[[category]]
id = "eng"

[[position]]
id = "backend"
title = "Backend"
subsidiary = "nowhere"
category = "missing"
alias = "jobs+backend@elsewhere.example"
"#,
    );
    let out = cli(&path, &["config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    for key in [
        "server.listen[0]",
        "server.max_message_size",
        "server.max_connections",
        "server.shutdown_timeout",
        "server.bare_line_endings",
        "server.colour: unknown key",
        "subsidiary[0].jobs_address",
        "subsidiary[1].id: duplicate id",
        "subsidiary[1].aliases[0]",
        "category[1].id: duplicate id",
        "position[0].subsidiary",
        "position[0].category",
    ] {
        assert!(text.contains(key), "{key} missing from:\n{text}");
    }
    assert!(
        text.contains(":3: server.listen[0]"),
        "line numbers:\n{text}"
    );

    let out = std::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        text,
        "serve prints the same errors"
    );
}

#[test]
fn config_path_from_the_environment_and_a_missing_file() {
    let out = std::process::Command::new(BIN)
        .args(["config", "check"])
        .env("JOBMAIL_CONFIG", "/nonexistent/jobmail.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/jobmail.toml: cannot read")
    );
    // --config may come after the subcommand or before it.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/jobmail.example.toml");
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn serve_refuses_a_port_in_use() {
    let d = Daemon::start();
    // Its own store (one store takes one serve), the same port.
    let out = d
        .serve_another(|text| text.replace("database = \"jobmail.db\"", "database = \"other.db\""));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen on"));
}

#[test]
fn upstream_mistakes_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        r#"
[relay]
retry_initial = "never"

[[subsidiary]]
id = "acme"
jobs_address = "jobs@acme.example"
[subsidiary.upstream]
host = "smtp.provider.example"
security = "none"
username = "jobs@acme.example"
password_file = "/nonexistent/acme.password"

[[subsidiary.sender]]
id = "anna"
address = "anna@other-company.example"
name = "Anna"

[[subsidiary]]
id = "fr"
jobs_address = "jobs@acme-fr.example"
[subsidiary.upstream]
host = "127.0.0.1"
security = "none"
username = "x"
"#,
    );
    let out = cli(&path, &["config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "relay.retry_initial",
        "subsidiary[0].upstream.security: \"none\" sends mail and passwords in plaintext to smtp.provider.example",
        "subsidiary[0].upstream.password_file: cannot read /nonexistent/acme.password",
        "subsidiary[0].sender[0].address: anna@other-company.example is not in a domain of this subsidiary",
        "subsidiary[1].upstream.password_file: a username needs a password_file",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert!(
        !text.contains("subsidiary[1].upstream.security"),
        "loopback may go without TLS:\n{text}"
    );
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/jobmail.example.toml");
    // A pipe nobody reads: the first write fails (as after `| head`).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(BIN)
        .args(["template", "show", "interview-invitation", "--config"])
        .arg(&path)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn acknowledgements_need_a_signed_sender_and_a_neutral_template() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gendered.toml"),
        "default_language = \"de\"\nautomatic = false\n[de]\nsubject = \"Danke\"\ntext = \"{{ g('Lieber', 'Liebe') }} {{ last_name }}\"\n",
    )
    .unwrap();
    let path = write(
        dir.path(),
        &format!(
            r#"
[templates]
dir = {:?}

[[subsidiary]]
id = "acme"
jobs_address = "jobs@acme.example"

[[category]]
id = "eng"
[category.auto_reply]
email = true
template = "gendered"

[[category]]
id = "sales"
[category.auto_reply]
form = true
template = "missing"
sender = "nobody"

[[position]]
id = "p"
title = "P"
subsidiary = "acme"
category = "eng"

[[position]]
id = "q"
title = "Q"
subsidiary = "acme"
category = "sales"
"#,
            dir.path().display().to_string()
        ),
    );
    let out = cli(&path, &["config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("category[0].auto_reply.sender") && text.contains("no signature"),
        "{text}"
    );
    assert!(
        text.contains("category[1].auto_reply.sender") && text.contains("no sender \"nobody\""),
        "{text}"
    );
    // With signed senders, the templates are checked.
    let signed = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "jobs_address = \"jobs@acme.example\"\n",
            "jobs_address = \"jobs@acme.example\"\nsignature = \"ACME Recruiting\"\n",
        )
        .replace("sender = \"nobody\"\n", "");
    std::fs::write(&path, signed).unwrap();
    let out = cli(&path, &["config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(
            "category[0].auto_reply.template: template \"gendered\" is not marked automatic"
        ),
        "{text}"
    );
    assert!(
        text.contains("category[1].auto_reply.template: no template \"missing\""),
        "{text}"
    );
    let serve = std::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(2), "serve refuses it too");
}
