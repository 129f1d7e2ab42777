//! The architecture's rules, checked on the source (`docs/architecture.md`,
//! "Invariants"): which module may use which, where SQL, sockets, files,
//! the wall clock and the environment may appear, which modules are pure,
//! and that every module says what it does. A rule broken here fails CI
//! with the file and the line.
//!
//! It reads `src/` as text: code only (comments, and each file's
//! `#[cfg(test)] mod tests { ... }` at its end, are skipped; `tests.rs`
//! and `*_tests.rs` files are test modules).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One source file: its path under `src/`, its top-level module, and its
/// code lines (1-based line numbers kept).
struct Source {
    path: String,
    module: String,
    text: String,
    code: Vec<(usize, String)>,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let path = file
                .strip_prefix(&root)
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            let module = path
                .split('/')
                .next()
                .unwrap_or("")
                .trim_end_matches(".rs")
                .to_string();
            let text = std::fs::read_to_string(&file).expect("readable source");
            let test_module = path.ends_with("/tests.rs") || path.ends_with("_tests.rs");
            let mut code = Vec::new();
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                if test_module {
                    break;
                }
                let trimmed = line.trim();
                if trimmed == "#[cfg(test)]"
                    && lines
                        .get(i + 1)
                        .is_some_and(|next| next.trim_start().starts_with("mod tests {"))
                {
                    break;
                }
                if trimmed.starts_with("//") {
                    continue;
                }
                code.push((i + 1, line.to_string()));
            }
            Source {
                path,
                module,
                text,
                code,
            }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::a::b` paths in a line: the module after `crate::` and what follows.
fn crate_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let path: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        out.push(path.trim_end_matches(':').to_string());
        rest = &after[path.len().min(after.len())..];
    }
    out
}

/// What each top-level module may use of the others. Edges point down:
/// front ends (cli, daemon) → app → inbound, outbound, matcher → store,
/// config → mail, clock.
fn allowed_uses() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        ("mail", &[][..]),
        ("clock", &[][..]),
        // The log line format stamps each line with the time.
        ("logging", &["clock"][..]),
        // Counters and heartbeats, a leaf every layer may count into.
        ("metrics", &[][..]),
        // The languages the templates have are part of the config.
        ("config", &["mail", "outbound::template"][..]),
        ("store", &["mail", "clock", "metrics"][..]),
        ("secrets", &["matcher::token"][..]),
        ("matcher", &["mail", "config", "inbound::dsn"][..]),
        (
            "inbound",
            &["mail", "config", "store", "clock", "metrics"][..],
        ),
        (
            "outbound",
            &[
                "mail",
                "config",
                "store",
                "clock",
                "matcher::token",
                "matcher::author_proven",
                "inbound::parse",
                "metrics",
            ][..],
        ),
        (
            "app",
            &[
                "mail", "config", "store", "clock", "matcher", "inbound", "outbound", "secrets",
            ][..],
        ),
        (
            "cli",
            &[
                "app", "config", "store", "mail", "outbound", "clock", "daemon",
            ][..],
        ),
        (
            "http",
            &["app", "config", "store", "mail", "outbound", "clock"][..],
        ),
        (
            "daemon",
            &[
                "app", "config", "store", "matcher", "inbound", "outbound", "secrets", "clock",
                "http", "metrics", "logging",
            ][..],
        ),
    ])
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let allowed = allowed_uses();
    let mut broken = Vec::new();
    for s in sources() {
        if s.module == "lib" || s.module == "main" {
            continue;
        }
        let Some(may) = allowed.get(s.module.as_str()) else {
            broken.push(format!(
                "src/{}: module {} has no row in allowed_uses()",
                s.path, s.module
            ));
            continue;
        };
        for (n, line) in &s.code {
            for path in crate_paths(line) {
                let top = path.split("::").next().unwrap_or("");
                if top == s.module || top.is_empty() {
                    continue;
                }
                let ok = may
                    .iter()
                    .any(|m| path == *m || path.starts_with(&format!("{m}::")));
                if !ok {
                    broken.push(format!(
                        "src/{}:{n}: {} uses crate::{path}",
                        s.path, s.module
                    ));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "edges that point the wrong way:\n{}",
        broken.join("\n")
    );
}

/// Where a kind of access may appear: (what, the words that show it, the
/// files or folders allowed to have it).
fn access_rules() -> Vec<(&'static str, Vec<&'static str>, Vec<&'static str>)> {
    vec![
        ("SQL", vec!["rusqlite"], vec!["store/"]),
        (
            "a socket",
            vec!["TcpStream", "TcpListener", "UdpSocket", "lettre::"],
            // The API's listener and the metrics exporter have sockets of their own.
            vec![
                "inbound/listener.rs",
                "outbound/relay/",
                "http/mod.rs",
                "daemon/exporter.rs",
                "outbound/webhook/client.rs",
            ],
        ),
        (
            "file I/O",
            vec!["std::fs", "fs::", "File::", "OpenOptions"],
            vec![
                // The config file (and the files it names, checked there),
                // the key file and instance lock, the listener's certificate
                // and key, the template files, the relay's CA and password
                // files, the database's directory, and an operator's
                // attachment.
                "config/",
                "inbound/tls.rs",
                "secrets.rs",
                "outbound/template.rs",
                "outbound/relay/mod.rs",
                "store/",
                "cli/files.rs",
                "cli/documents.rs",
            ],
        ),
        (
            "the wall clock",
            vec![
                "SystemTime::now",
                "Timestamp::now",
                "Utc::now",
                "Local::now",
            ],
            vec!["clock.rs"],
        ),
        (
            "the process environment",
            vec!["std::env::var", "env::var("],
            vec![
                // JOBMAIL_CONFIG, MALLOC_ARENA_MAX, NOTIFY_SOCKET and JOURNAL_STREAM, and the
                // debug-build fault injection (JOBMAIL_FAULT).
                "config/mod.rs",
                "daemon.rs",
                "store/writer.rs",
                "outbound/acknowledgements.rs",
            ],
        ),
        (
            "a lifted clippy ban",
            vec!["#![allow(clippy::disallowed", "#[allow(clippy::disallowed"],
            vec![
                "store/mod.rs",
                "inbound/listener.rs",
                "outbound/relay/mod.rs",
                "http/mod.rs",
                "daemon/exporter.rs",
                "outbound/webhook/client.rs",
                "clock.rs",
            ],
        ),
    ]
}

#[test]
fn sql_sockets_files_clock_and_environment_stay_in_their_modules() {
    let mut broken = Vec::new();
    for s in sources() {
        for (what, words, allowed) in access_rules() {
            if allowed
                .iter()
                .any(|a| s.path == *a || (a.ends_with('/') && s.path.starts_with(a)))
            {
                continue;
            }
            for (n, line) in &s.code {
                if let Some(word) = words.iter().find(|w| line.contains(*w)) {
                    broken.push(format!("src/{}:{n}: {what} ({word})", s.path));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "access outside its module:\n{}",
        broken.join("\n")
    );
}

/// Pure modules: decisions and data, no I/O and no clock. Everything they
/// need is passed in.
const PURE: &[&str] = &[
    "mail/address.rs",
    "mail/filename.rs",
    "mail/mime.rs",
    "mail/parsed.rs",
    "matcher/",
    "inbound/parse/",
    "inbound/dsn.rs",
    "outbound/autoreply.rs",
    "outbound/audience.rs",
    "outbound/render.rs",
    "outbound/webhook/signature.rs",
    "config/company.rs",
];

#[test]
fn pure_modules_do_no_io() {
    let io = [
        "Store",
        "Writer",
        "Tx<",
        "tokio::",
        "std::fs",
        "std::net",
        "std::env",
        "std::process",
        "now_ms",
        "Instant::now",
        "tracing::",
    ];
    let mut broken = Vec::new();
    for s in sources() {
        if !PURE
            .iter()
            .any(|p| s.path == *p || (p.ends_with('/') && s.path.starts_with(p)))
        {
            continue;
        }
        for (n, line) in &s.code {
            if let Some(word) = io.iter().find(|w| line.contains(*w)) {
                broken.push(format!("src/{}:{n}: {word}", s.path));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "I/O in a pure module:\n{}",
        broken.join("\n")
    );
}

#[test]
fn every_module_opens_with_what_it_does() {
    let missing: Vec<String> = sources()
        .iter()
        .filter(|s| !s.text.starts_with("//!"))
        .map(|s| format!("src/{}", s.path))
        .collect();
    assert!(
        missing.is_empty(),
        "no //! comment at the top:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_file_is_in_the_code_map() {
    let map =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .expect("docs/architecture.md");
    let missing: Vec<String> = sources()
        .iter()
        .map(|s| format!("`src/{}`", s.path))
        .filter(|name| !map.contains(name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/architecture.md (\"Every file\"):\n{}",
        missing.join("\n")
    );
}

/// The rules catch what they are for: a made-up file that breaks each.
#[test]
fn the_rules_catch_a_breach() {
    assert_eq!(
        crate_paths("use crate::store::Store; x(crate::app::filing::file)"),
        vec!["store::Store", "app::filing::file"]
    );
    let allowed = allowed_uses();
    let store = allowed["store"];
    assert!(!store.iter().any(|m| "matcher::Decision".starts_with(m)));
    assert!(!store.iter().any(|m| "outbound::autoreply".starts_with(m)));
    let rules = access_rules();
    let sql = rules
        .iter()
        .find(|(w, _, _)| *w == "SQL")
        .expect("SQL rule");
    assert!(
        sql.1
            .iter()
            .any(|w| "use rusqlite::Connection;".contains(w))
    );
}
