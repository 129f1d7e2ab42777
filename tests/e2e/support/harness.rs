//! Test harness: starts the real `jobmail` binary on a throwaway config and
//! talks raw SMTP to it over loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use jobmail::store::{InboxFilter, Store};

pub const BIN: &str = env!("CARGO_BIN_EXE_jobmail");

/// The subsidiaries and positions every test daemon serves.
pub const DIRECTORY: &str = r#"
[[subsidiary]]
id = "acme-de"
name = "ACME Deutschland GmbH"
jobs_address = "jobs@acme.example"
aliases = ["karriere@acme.example"]
language = "de"
domains = ["acme-group.example"]

[[category]]
id = "engineering"

[[position]]
id = "backend-rust"
title = "Backend Engineer (Rust)"
subsidiary = "acme-de"
category = "engineering"
alias = "jobs+backend@acme.example"
"#;

pub struct Daemon {
    pub child: Option<Child>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// Environment for the next `spawn` (e.g. `JOBMAIL_FAULT`).
    pub env: Vec<(String, String)>,
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

impl Daemon {
    /// A daemon on the default test config.
    pub fn start() -> Daemon {
        Daemon::start_with("")
    }

    /// A daemon whose `[server]` section gets `extra` lines appended.
    pub fn start_with(extra: &str) -> Daemon {
        Daemon::start_world(extra, DIRECTORY, None)
    }

    /// A daemon with its own subsidiaries and positions (`directory`) and,
    /// if given, a fixed reply-token key (so that tokens in fixtures are valid).
    pub fn start_world(extra: &str, directory: &str, key: Option<[u8; 32]>) -> Daemon {
        Daemon::start_world_env(extra, directory, key, &[])
    }

    /// `start_world` with environment variables for the daemon from its
    /// first start on (e.g. `NOTIFY_SOCKET`).
    pub fn start_world_env(
        extra: &str,
        directory: &str,
        key: Option<[u8; 32]>,
        env: &[(&str, &str)],
    ) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        if let Some(key) = key {
            std::fs::write(dir.path().join("reply-token.key"), key).expect("key file");
        }
        let config = dir.path().join("jobmail.toml");
        let mut d = Daemon {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
            config,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        // A free port can be taken between our probe and the daemon's bind
        // (tests run in parallel): then try another.
        for _ in 0..10 {
            let port = free_port();
            d.addr = SocketAddr::from(([127, 0, 0, 1], port));
            // No test asks the internet's DNS: a test that checks SPF, DKIM
            // and DMARC brings its own section with a resolver on loopback.
            let authentication =
                if extra.contains("[authentication]") || directory.contains("[authentication]") {
                    ""
                } else {
                    "\n[authentication]\nverify = false\n"
                };
            let text = format!(
                "[server]\nlisten = [\"127.0.0.1:{port}\"]\nhostname = \"mx.test.example\"\ndatabase = \"jobmail.db\"\n{extra}\n{authentication}{directory}"
            );
            std::fs::write(&d.config, text).expect("write config");
            if d.try_spawn() {
                return d;
            }
        }
        panic!("jobmail could not find a free port: {}", d.log());
    }

    /// Starts the daemon on its config (again, after a kill) and waits until it is ready.
    pub fn spawn(&mut self) {
        assert!(self.try_spawn(), "jobmail did not start: {}", self.log());
    }

    /// Starts the daemon and waits for its "ready" line; false when it
    /// could not listen on its port.
    fn try_spawn(&mut self) -> bool {
        let log_path = self.dir.path().join("daemon.log");
        let start = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0) as usize;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log file");
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("JOBMAIL_LOG", "debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start jobmail serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let log = self.log();
            let this_run = log.get(start..).unwrap_or("");
            if this_run.contains("jobmail ready") {
                return true;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                if this_run.contains("cannot listen") {
                    return false;
                }
                panic!("jobmail exited early ({status}): {this_run}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("jobmail did not become ready: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// kill -9, then wait for the process to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM; returns the child so the caller can wait for it.
    pub fn terminate(&mut self) -> Child {
        let c = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        c
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("jobmail.db")
    }

    pub fn reader(&self) -> Store {
        Store::open(&self.db()).expect("open store")
    }

    /// Runs a second `serve` on this daemon's config as `edit` changes it,
    /// to its end (the tests expect it to refuse).
    pub fn serve_another(&self, edit: impl Fn(String) -> String) -> Output {
        let other = self.dir.path().join("another.toml");
        let text = std::fs::read_to_string(&self.config).expect("config");
        std::fs::write(&other, edit(text)).expect("write config");
        Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&other)
            .output()
            .expect("start jobmail serve")
    }

    /// Runs the CLI with this daemon's config.
    pub fn cli(&self, args: &[&str]) -> Output {
        cli(&self.config, args)
    }

    /// Waits (up to 15 s) until the daemon has indexed every filed mail
    /// for search (`status`'s search backlog is 0), as it does each second.
    pub fn wait_search_indexed(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let status = json(self.cli(&["status", "--json"]));
            let waiting = status["store"]["search_backlog"]
                .as_i64()
                .expect("search_backlog");
            if waiting == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{waiting} mails still wait for the search index: {status}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `jobmail inbox --json` parsed.
    pub fn inbox_json(&self, limit: usize) -> serde_json::Value {
        let out = self.cli(&["inbox", "--json", "--limit", &limit.to_string()]);
        assert!(
            out.status.success(),
            "inbox failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("inbox --json is JSON")
    }

    /// The stored bytes of message `id` minus our trace headers.
    pub fn content(&self, id: i64) -> Vec<u8> {
        let raw = self
            .reader()
            .raw(id)
            .expect("read")
            .expect("message exists");
        let (_, content) = self
            .reader()
            .envelope_and_content(id)
            .expect("read")
            .expect("message exists");
        if raw.len() != content.len() {
            // Inbound: our trace headers are exactly the two expected lines.
            assert_eq!(strip_trace(&raw), &content[..]);
        }
        content
    }

    /// Connects and reads the greeting.
    pub fn connect(&self) -> Conn {
        let mut c = Conn::open(self.addr);
        let (code, _) = c.reply();
        assert_eq!(code, 220, "greeting");
        c
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn cli(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run jobmail")
}

/// Drops the `Return-Path:` and `Received:` lines jobmail put on top.
pub fn strip_trace(raw: &[u8]) -> &[u8] {
    let mut rest = raw;
    for prefix in [&b"Return-Path:"[..], b"Received:"] {
        assert!(rest.starts_with(prefix), "trace header {prefix:?} missing");
        // The header ends at the first CRLF not followed by a tab or space.
        let mut i = 0;
        loop {
            let pos = rest[i..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("CRLF")
                + i;
            i = pos + 2;
            if !matches!(rest.get(i), Some(b'\t') | Some(b' ')) {
                break;
            }
        }
        rest = &rest[i..];
    }
    rest
}

/// A raw SMTP client connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Conn { reader, stream }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// How long a reply may take (30 s unless set).
    pub fn read_timeout(&mut self, timeout: Duration) {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("timeout");
    }

    /// Sends if the server still listens; false once it has closed.
    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Reads one (possibly multi-line) reply: (code, text of all lines).
    pub fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read reply");
            assert!(
                n > 0,
                "connection closed while waiting for a reply; got so far: {text:?}"
            );
            let code: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("bad reply line {line:?}"));
            text.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return (code, text);
            }
        }
    }

    /// Reads a reply and checks its code.
    pub fn expect(&mut self, code: u16) -> String {
        let (got, text) = self.reply();
        assert_eq!(got, code, "expected {code}, got {text:?}");
        text
    }

    /// Sends one command line and returns the reply.
    pub fn cmd(&mut self, line: &str) -> (u16, String) {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// True when the server has closed the connection (EOF within a second).
    pub fn closed(&mut self) -> bool {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .ok();
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0) | Err(_))
    }

    /// EHLO, MAIL, RCPT, DATA, the (already dot-stuffed) body, and the final dot.
    /// Returns the reply to the final dot.
    pub fn send_mail(&mut self, from: &str, to: &str, stuffed_body: &[u8]) -> (u16, String) {
        self.ehlo();
        self.transaction(from, to, stuffed_body)
    }

    pub fn ehlo(&mut self) {
        self.expect_cmd("EHLO client.test.example", 250);
    }

    pub fn transaction(&mut self, from: &str, to: &str, stuffed_body: &[u8]) -> (u16, String) {
        self.expect_cmd(&format!("MAIL FROM:<{from}>"), 250);
        self.expect_cmd(&format!("RCPT TO:<{to}>"), 250);
        self.expect_cmd("DATA", 354);
        self.send(stuffed_body);
        self.send(b".\r\n");
        self.reply()
    }

    pub fn expect_cmd(&mut self, line: &str, code: u16) -> String {
        let (got, text) = self.cmd(line);
        assert_eq!(got, code, "{line:?}: expected {code}, got {text:?}");
        text
    }
}

/// A small well-formed mail; `id` makes it unique.
pub fn simple_mail(id: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Erika Mustermann <erika@example.org>\r\nTo: jobs@acme.example\r\nSubject: {subject}\r\nMessage-ID: <{id}@example.org>\r\nDate: Wed, 25 Nov 2026 09:00:00 +0100\r\n\r\nHello,\r\nplease find my application.\r\n"
    )
    .into_bytes()
}

/// The process's resident and peak memory in KiB, from /proc.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Where the repository's fixtures are.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The newest `limit` mails, as `jobmail inbox` lists them.
pub fn latest(store: &Store, limit: usize) -> Vec<jobmail::store::InboxEntry> {
    store
        .inbox(&InboxFilter {
            limit,
            ..InboxFilter::default()
        })
        .expect("inbox")
}

/// Dot-stuffs a mail for DATA, ending it with CRLF if it does not.
pub fn stuff(mail: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(mail.len() + 16);
    for line in mail.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The example config's company (subsidiaries, senders, categories,
/// positions) with its templates directory made absolute, for test daemons.
pub fn example_directory() -> String {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/jobmail.example.toml"
    ))
    .unwrap();
    let directory = &example[example.find("# A subsidiary").expect("example layout")..];
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
    let tokens = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tokens");
    directory
        .replace(
            "dir = \"templates\"",
            &format!("dir = {:?}", templates.display().to_string()),
        )
        .replace(
            "token_file = \"tokens/",
            &format!("token_file = \"{}/", tokens.display()),
        )
        // Acknowledgements off unless a test turns them on (`with_acknowledgements`).
        .replace("email = true", "email = false")
        .replace("form = true", "form = false")
}

/// The example company with its acknowledgements on, as shipped.
pub fn with_acknowledgements(directory: &str) -> String {
    directory
        .replace("email = false", "email = true")
        .replace("form = false", "form = true")
}

/// A CLI call's JSON output; the call must have succeeded.
pub fn json(out: Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// A mail from `from` to `to` with a line of text and each file attached
/// as `application/pdf`, base64.
pub fn mail_with_pdfs(from: &str, to: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    use data_encoding::BASE64_MIME;
    let mut m = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: Bewerbung\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nAnbei meine Unterlagen.\r\n"
    );
    for (name, bytes) in files {
        m.push_str(&format!(
            "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}",
            BASE64_MIME.encode(bytes)
        ));
    }
    m.push_str("--b--\r\n");
    m.into_bytes()
}
