//! What the daemon tells systemd, seen on a `NOTIFY_SOCKET` the test owns
//! (a Unix datagram socket in a temporary directory, as systemd's own):
//! READY=1, WATCHDOG=1 every half `WATCHDOG_USEC`, RELOADING=1 and READY=1
//! around a reload, STOPPING=1; and no keep-alive while the store writer
//! is wedged.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use super::reload::{sighup, wait_log};
use crate::support::harness::*;

/// The socket systemd would listen on.
struct Notify {
    _dir: tempfile::TempDir,
    path: String,
    socket: UnixDatagram,
}

impl Notify {
    fn new() -> Notify {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        Notify {
            path: path.to_str().unwrap().to_string(),
            _dir: dir,
            socket,
        }
    }

    /// The next message, or `None` after `wait`.
    fn next(&self, wait: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).to_string()),
            Err(_) => None,
        }
    }

    /// Messages until one has `line` (a line of its own); all of them.
    fn until(&self, line: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Some(m) = self.next(Duration::from_millis(200)) {
                let done = m.lines().any(|l| l == line);
                seen.push(m);
                if done {
                    return seen;
                }
            }
        }
        panic!("no {line:?} on the notify socket; saw {seen:?}");
    }

    /// Throws away what is waiting (sent more than 100 ms ago, at most).
    fn drain(&self) {
        while self.next(Duration::from_millis(100)).is_some() {}
    }

    /// Everything received within `wait`.
    fn during(&self, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Some(m) = self.next(left.max(Duration::from_millis(1))) {
                seen.push(m);
            }
        }
        seen
    }
}

fn watchdogs(messages: &[String]) -> usize {
    messages
        .iter()
        .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
        .count()
}

#[test]
fn readiness_keep_alives_and_reloads_are_told_to_the_notify_socket() {
    let notify = Notify::new();
    // A one-second watchdog: a keep-alive every half second.
    let mut d = Daemon::start_world_env(
        "",
        DIRECTORY,
        None,
        &[
            ("NOTIFY_SOCKET", &notify.path),
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    let first = notify.until("READY=1");
    assert_eq!(first.len(), 1, "READY=1 is the first word: {first:?}");
    let quiet = notify.during(Duration::from_millis(2600));
    let count = watchdogs(&quiet);
    assert!(
        (3..=7).contains(&count),
        "{count} keep-alives in 2.6 s: {quiet:?}"
    );
    assert!(
        d.log()
            .contains("systemd watchdog: keep-alives while the store writer and the relay answer"),
        "{}",
        d.log()
    );

    // A reload: RELOADING=1 with the moment, then READY=1.
    sighup(&d);
    let reload = notify.until("READY=1");
    let reloading = reload
        .iter()
        .position(|m| m.lines().any(|l| l == "RELOADING=1"))
        .unwrap_or_else(|| panic!("no RELOADING=1: {reload:?}"));
    assert!(
        reload[reloading]
            .lines()
            .any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reload:?}"
    );
    assert!(reloading < reload.len() - 1, "READY=1 after: {reload:?}");
    assert!(
        reload.last().unwrap().contains("STATUS=config reloaded"),
        "{reload:?}"
    );
    // Keep-alives go on after it.
    assert!(watchdogs(&notify.during(Duration::from_millis(1200))) >= 1);

    let mut child = d.terminate();
    notify.until("STOPPING=1");
    child.wait().unwrap();
}

#[test]
fn a_wedged_store_writer_stops_the_keep_alives() {
    let notify = Notify::new();
    let d = Daemon::start_world_env(
        "",
        DIRECTORY,
        None,
        &[
            ("NOTIFY_SOCKET", &notify.path),
            ("WATCHDOG_USEC", "1000000"),
            ("JOBMAIL_FAULT", "writer-stall"),
        ],
    );
    notify.until("READY=1");
    notify.until("WATCHDOG=1");

    // A mail the writer hangs on (debug builds: JOBMAIL_FAULT), as on a
    // disk that stopped answering; its 250 never comes.
    let from = d.log().len();
    let mut c = d.connect();
    c.ehlo();
    c.expect_cmd("MAIL FROM:<erika@example.org>", 250);
    c.expect_cmd("RCPT TO:<jobs@acme.example>", 250);
    c.expect_cmd("DATA", 354);
    c.send(&stuff(&simple_mail("stall-1", "FAULT")));
    c.send(b".\r\n");
    let log = wait_log(&d, from, "keep-alive withheld");
    assert!(log.contains("the store writer does not answer"), "{log}");
    // From now on: silence, which systemd answers with a restart. (What
    // is waiting on the socket was sent before the stall: the keep-alives
    // come every 500 ms, and the drain stops at 100 ms of quiet.)
    notify.drain();
    let after = notify.during(Duration::from_millis(2500));
    assert_eq!(watchdogs(&after), 0, "{after:?}");
}
