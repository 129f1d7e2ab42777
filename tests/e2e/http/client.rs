//! The HTTP API's client side in the tests: curl as one of the example
//! config's users (their tokens from config/tokens/), the answer with its
//! status, headers and body, and a daemon with its API on a free port.

use std::process::Command;

use crate::support::harness::*;

pub fn token(user: &str) -> String {
    let file = match user {
        "anna" => "recruiter",
        _ => "operator",
    };
    std::fs::read_to_string(format!(
        "{}/config/tokens/{file}.token",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("example token")
    .trim()
    .to_string()
}

/// One answer: status, headers (lowercased names), body.
pub struct Answer {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

pub fn curl(
    base: &str,
    method: &str,
    path: &str,
    user: Option<&str>,
    body: Option<&str>,
) -> Answer {
    match body {
        Some(b) => curl_with(
            base,
            method,
            path,
            user,
            &["-H", "Content-Type: application/json", "--data-binary", b],
        ),
        None => curl_with(base, method, path, user, &[]),
    }
}

/// curl with more arguments of its own (`-F name=value`, `-F file=@path`).
pub fn curl_with(
    base: &str,
    method: &str,
    path: &str,
    user: Option<&str>,
    args: &[&str],
) -> Answer {
    let dir = tempfile::tempdir().expect("temp dir");
    let headers = dir.path().join("headers");
    let out = dir.path().join("body");
    let mut c = Command::new("curl");
    c.args(["-s", "-X", method, "-D"])
        .arg(&headers)
        .arg("-o")
        .arg(&out)
        .args(["-w", "%{http_code}"]);
    if let Some(u) = user {
        c.args(["-H", &format!("Authorization: Bearer {}", token(u))]);
    }
    c.args(args);
    let done = c.arg(format!("{base}{path}")).output().expect("curl runs");
    Answer {
        status: String::from_utf8_lossy(&done.stdout)
            .trim()
            .parse()
            .expect("status"),
        headers: std::fs::read_to_string(&headers).unwrap_or_default(),
        body: std::fs::read(&out).unwrap_or_default(),
    }
}

/// A daemon of the example company with its API on a free port, and the
/// API's base URL.
pub fn api_daemon() -> (Daemon, String) {
    api_daemon_with("", &example_directory())
}

/// The same with more `[api]` settings and another company directory.
pub fn api_daemon_with(api: &str, directory: &str) -> (Daemon, String) {
    let port = free_port();
    let d = Daemon::start_world(
        &format!("[api]\nlisten = \"127.0.0.1:{port}\"\n{api}"),
        directory,
        None,
    );
    (d, format!("http://127.0.0.1:{port}"))
}
