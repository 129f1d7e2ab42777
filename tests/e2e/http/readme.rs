//! The README's API examples, run as written (bash and curl) against a
//! daemon of the example config, after the README's smtplib application:
//! every one answers 2xx. Only the address and the token files' folder
//! change, to the test daemon's.

use std::process::Command;

use super::client::*;

/// The README's block of curl examples under "## HTTP API".
fn readme_examples() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let api = &readme[readme.find("## HTTP API").expect("an HTTP API section")..];
    let start = api.find("    TOKEN=$(cat").expect("the curl examples");
    api[start..]
        .lines()
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_readmes_curl_examples_run_as_written() {
    let (d, base) = api_daemon();
    // The README's first application, by smtplib.
    let mail = "import smtplib\nfrom email.message import EmailMessage\nm = EmailMessage()\n\
m['From'] = 'Max Mustermann <max@example.net>'\nm['To'] = 'jobs+backend@acme.example'\n\
m['Subject'] = 'Application: Backend Engineer (Rust)'\nm.set_content('Dear team,\\n\\nplease find my CV attached.\\n')\n\
m.add_attachment(b'%PDF-1.4\\n%%EOF\\n', maintype='application', subtype='pdf', filename='CV.pdf')\n"
        .to_string()
        + &format!(
            "with smtplib.SMTP('127.0.0.1', {}) as s:\n    s.send_message(m)\n",
            d.addr.port()
        );
    let sent = Command::new("python3")
        .args(["-c", &mail])
        .status()
        .expect("python3");
    assert!(sent.success());
    let tokens = concat!(env!("CARGO_MANIFEST_DIR"), "/config/tokens");
    let script = readme_examples()
        .replace("http://127.0.0.1:8025", &base)
        .replace("config/tokens", tokens)
        .replace("curl -s", "curl -s -w '\\nSTATUS %{http_code} '");
    let work = tempfile::tempdir().expect("temp dir");
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(work.path())
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let statuses: Vec<&str> = stdout
        .split("STATUS ")
        .skip(1)
        .map(|s| s.get(..3).unwrap_or(s))
        .collect();
    let curls = script.matches("curl -s").count();
    assert_eq!(statuses.len(), curls, "every example answered:\n{stdout}");
    let failed: Vec<(usize, &str)> = statuses
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.starts_with('2'))
        .map(|(i, s)| (i + 1, *s))
        .collect();
    assert!(
        failed.is_empty(),
        "examples not 2xx (number, status): {failed:?}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
