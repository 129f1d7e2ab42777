//! What the daemon counts about itself, for Prometheus (`[metrics]`) and
//! the watchdog: counters and one histogram as process-wide atomics, the
//! heartbeats of the loops the watchdog watches, and the text exposition
//! format (version 0.0.4) they are scraped in.
//!
//! A leaf: it knows no other module, so the listener, the session, the
//! store writer and the relay can all count into it. The gauges that are
//! read at scrape time (queue depth, breakers) are passed in to
//! [`render`] by whoever asks the store. No state here but atomics (and
//! the instant the heartbeats count from, set once); nothing is reset.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic count.
#[derive(Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// How an SMTP connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The client said QUIT.
    Quit,
    /// The client went away (or a TLS handshake failed).
    Closed,
    /// Idle, stalled, too slow in DATA, or past the session timeout (421 4.4.2).
    Timeout,
    /// Too many errors (421 4.7.0).
    Errors,
    /// The daemon was stopping (421 4.3.2).
    Shutdown,
    /// Improper pipelining, talking before the greeting, BDAT (554, 503).
    Protocol,
    /// Refused at connect by a connection limit (421, no session).
    Limit,
}

impl SessionEnd {
    pub const ALL: [SessionEnd; 7] = [
        SessionEnd::Quit,
        SessionEnd::Closed,
        SessionEnd::Timeout,
        SessionEnd::Errors,
        SessionEnd::Shutdown,
        SessionEnd::Protocol,
        SessionEnd::Limit,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SessionEnd::Quit => "quit",
            SessionEnd::Closed => "closed",
            SessionEnd::Timeout => "timeout",
            SessionEnd::Errors => "errors",
            SessionEnd::Shutdown => "shutdown",
            SessionEnd::Protocol => "protocol",
            SessionEnd::Limit => "limit",
        }
    }

    /// How a session that ended with this last reply ended.
    pub fn of_reply(reply: &str) -> SessionEnd {
        if reply.starts_with("421 4.4.2") {
            SessionEnd::Timeout
        } else if reply.starts_with("421 4.7.0") {
            SessionEnd::Errors
        } else if reply.starts_with("421 4.3.2") {
            SessionEnd::Shutdown
        } else {
            SessionEnd::Protocol
        }
    }
}

/// What became of one delivery attempt of the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Sent,
    Deferred,
    Failed,
}

impl Attempt {
    pub const ALL: [Attempt; 3] = [Attempt::Sent, Attempt::Deferred, Attempt::Failed];

    pub fn label(self) -> &'static str {
        match self {
            Attempt::Sent => "sent",
            Attempt::Deferred => "deferred",
            Attempt::Failed => "failed",
        }
    }
}

/// Upper bounds of the store commit histogram, in microseconds.
const COMMIT_BUCKETS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// A histogram of durations with [`COMMIT_BUCKETS_US`].
#[derive(Debug)]
pub struct Histogram {
    /// Observations at most each bound (not cumulative; summed when rendered).
    buckets: [AtomicU64; COMMIT_BUCKETS_US.len()],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; COMMIT_BUCKETS_US.len()],
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, took: Duration) {
        let us = took.as_micros().min(u128::from(u64::MAX)) as u64;
        if let Some(i) = COMMIT_BUCKETS_US.iter().position(|&b| us <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// When a loop last showed it was alive, on the monotonic clock.
#[derive(Debug)]
pub struct Heartbeat(AtomicU64);

/// The instant heartbeats are counted from (the first use).
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl Heartbeat {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Heartbeat {
        Heartbeat(AtomicU64::new(0))
    }

    /// The loop is alive now.
    pub fn beat(&self) {
        let ms = origin().elapsed().as_millis() as u64 + 1;
        self.0.store(ms, Ordering::Relaxed);
    }

    /// How long since the last beat; `None` before the first.
    pub fn age(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            at => {
                let now = origin().elapsed().as_millis() as u64 + 1;
                Some(Duration::from_millis(now.saturating_sub(at)))
            }
        }
    }
}

/// Connections accepted (those refused by a connection limit included).
pub static SESSIONS_OPENED: Counter = Counter::new();
static SESSIONS_ENDED: [Counter; SessionEnd::ALL.len()] = [const { Counter::new() }; 7];
/// Mails answered 250 (stored, or already stored).
pub static MAILS_ACCEPTED: Counter = Counter::new();
/// Their bytes, as the client sent them (dot-unstuffed).
pub static BYTES_ACCEPTED: Counter = Counter::new();
/// 4xx and 5xx replies by code, 400 to 599.
static REFUSALS: [Counter; 200] = [const { Counter::new() }; 200];
/// How long each batch transaction of the store writer took, BEGIN to COMMIT.
pub static STORE_COMMIT: Histogram = Histogram::new();
static ATTEMPTS: [Counter; Attempt::ALL.len()] = [const { Counter::new() }; 3];
/// Reloads that were applied, and those refused (the old config kept).
pub static RELOADS_APPLIED: Counter = Counter::new();
pub static RELOADS_REFUSED: Counter = Counter::new();
/// When the listener's certificate expires, Unix ms (0: no TLS); set when
/// it is loaded, at start and at each reload.
pub static TLS_NOT_AFTER_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
/// The relay's claim loop (beats every turn, at least every 100 ms when idle).
pub static RELAY_HEARTBEAT: Heartbeat = Heartbeat::new();
/// The store writer (beats after every batch, and on every ping).
pub static WRITER_HEARTBEAT: Heartbeat = Heartbeat::new();

pub fn session_ended(end: SessionEnd) {
    SESSIONS_ENDED[end as usize].inc();
}

pub fn sessions_ended(end: SessionEnd) -> u64 {
    SESSIONS_ENDED[end as usize].get()
}

/// Counts a reply line the listener sent, if it is a 4xx or 5xx.
pub fn reply_sent(line: &str) {
    if let Some(code) = line.get(..3).and_then(|c| c.parse::<usize>().ok())
        && (400..600).contains(&code)
    {
        REFUSALS[code - 400].inc();
    }
}

pub fn refusals(code: u16) -> u64 {
    match code {
        400..=599 => REFUSALS[usize::from(code) - 400].get(),
        _ => 0,
    }
}

pub fn attempt(result: Attempt) {
    ATTEMPTS[result as usize].inc();
}

pub fn attempts(result: Attempt) -> u64 {
    ATTEMPTS[result as usize].get()
}

/// What is read when scraped rather than counted: passed in by the exporter.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// Outbox items per state (every state, zero ones included).
    pub queue: Vec<(String, i64)>,
    /// Each configured upstream (by subsidiary): paused by its breaker now,
    /// and its consecutive failures.
    pub upstreams: Vec<(String, bool, i64)>,
    /// The store's file and its WAL, bytes.
    pub store_bytes: Option<(u64, u64)>,
}

/// Escapes a label value (`\`, `"`, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Every metric in the text exposition format.
pub fn render(gauges: &Gauges) -> String {
    let mut out = String::with_capacity(4096);
    let head = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    head(
        &mut out,
        "jobmail_sessions_opened_total",
        "counter",
        "SMTP connections accepted (those refused by a connection limit included).",
    );
    let _ = writeln!(
        out,
        "jobmail_sessions_opened_total {}",
        SESSIONS_OPENED.get()
    );
    head(
        &mut out,
        "jobmail_sessions_total",
        "counter",
        "SMTP sessions ended, by how they ended.",
    );
    for end in SessionEnd::ALL {
        let _ = writeln!(
            out,
            "jobmail_sessions_total{{result=\"{}\"}} {}",
            end.label(),
            sessions_ended(end)
        );
    }
    head(
        &mut out,
        "jobmail_mails_accepted_total",
        "counter",
        "Mails answered 250 after the final dot.",
    );
    let _ = writeln!(out, "jobmail_mails_accepted_total {}", MAILS_ACCEPTED.get());
    head(
        &mut out,
        "jobmail_mail_bytes_accepted_total",
        "counter",
        "Bytes of the mails answered 250, as sent (dot-unstuffed).",
    );
    let _ = writeln!(
        out,
        "jobmail_mail_bytes_accepted_total {}",
        BYTES_ACCEPTED.get()
    );
    head(
        &mut out,
        "jobmail_smtp_refusals_total",
        "counter",
        "4xx and 5xx replies of the listener by code: refused recipients, senders, mails, commands, connections.",
    );
    for code in 400..600u16 {
        let n = refusals(code);
        if n > 0 {
            let _ = writeln!(out, "jobmail_smtp_refusals_total{{code=\"{code}\"}} {n}");
        }
    }
    head(
        &mut out,
        "jobmail_store_commit_seconds",
        "histogram",
        "Time of each batch transaction of the store writer, BEGIN to COMMIT (fsync included).",
    );
    let mut cumulative = 0;
    for (i, bound) in COMMIT_BUCKETS_US.iter().enumerate() {
        cumulative += STORE_COMMIT.buckets[i].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "jobmail_store_commit_seconds_bucket{{le=\"{}\"}} {cumulative}",
            *bound as f64 / 1e6
        );
    }
    let count = STORE_COMMIT.count();
    let _ = writeln!(
        out,
        "jobmail_store_commit_seconds_bucket{{le=\"+Inf\"}} {count}\njobmail_store_commit_seconds_sum {}\njobmail_store_commit_seconds_count {count}",
        STORE_COMMIT.sum_us.load(Ordering::Relaxed) as f64 / 1e6
    );
    head(
        &mut out,
        "jobmail_delivery_attempts_total",
        "counter",
        "Delivery attempts of the relay, by result.",
    );
    for a in Attempt::ALL {
        let _ = writeln!(
            out,
            "jobmail_delivery_attempts_total{{result=\"{}\"}} {}",
            a.label(),
            attempts(a)
        );
    }
    head(
        &mut out,
        "jobmail_outbox_items",
        "gauge",
        "Outbox items per state, read from the store at scrape time.",
    );
    for (state, n) in &gauges.queue {
        let _ = writeln!(
            out,
            "jobmail_outbox_items{{state=\"{}\"}} {n}",
            label(state)
        );
    }
    head(
        &mut out,
        "jobmail_upstream_paused",
        "gauge",
        "1 while the circuit breaker of a subsidiary's upstream pauses it.",
    );
    for (subsidiary, paused, _) in &gauges.upstreams {
        let _ = writeln!(
            out,
            "jobmail_upstream_paused{{subsidiary=\"{}\"}} {}",
            label(subsidiary),
            u8::from(*paused)
        );
    }
    head(
        &mut out,
        "jobmail_upstream_failures",
        "gauge",
        "Consecutive failed attempts the breaker of an upstream counts.",
    );
    for (subsidiary, _, failures) in &gauges.upstreams {
        let _ = writeln!(
            out,
            "jobmail_upstream_failures{{subsidiary=\"{}\"}} {failures}",
            label(subsidiary)
        );
    }
    if let Some((db, wal)) = gauges.store_bytes {
        head(
            &mut out,
            "jobmail_store_bytes",
            "gauge",
            "Size of the store's files.",
        );
        let _ = writeln!(
            out,
            "jobmail_store_bytes{{file=\"database\"}} {db}\njobmail_store_bytes{{file=\"wal\"}} {wal}"
        );
    }
    let not_after = TLS_NOT_AFTER_MS.load(Ordering::Relaxed);
    if not_after > 0 {
        let at = not_after / 1000;
        head(
            &mut out,
            "jobmail_tls_certificate_expiry_timestamp_seconds",
            "gauge",
            "When the listener's certificate expires (Unix time).",
        );
        let _ = writeln!(out, "jobmail_tls_certificate_expiry_timestamp_seconds {at}");
    }
    head(
        &mut out,
        "jobmail_reloads_total",
        "counter",
        "Config reloads (SIGHUP), applied or refused.",
    );
    let _ = writeln!(
        out,
        "jobmail_reloads_total{{result=\"applied\"}} {}\njobmail_reloads_total{{result=\"refused\"}} {}",
        RELOADS_APPLIED.get(),
        RELOADS_REFUSED.get()
    );
    head(
        &mut out,
        "jobmail_heartbeat_age_seconds",
        "gauge",
        "Since the loops the watchdog watches last showed they were alive.",
    );
    for (name, beat) in [
        ("relay", &RELAY_HEARTBEAT),
        ("store_writer", &WRITER_HEARTBEAT),
    ] {
        if let Some(age) = beat.age() {
            let _ = writeln!(
                out,
                "jobmail_heartbeat_age_seconds{{loop=\"{name}\"}} {}",
                age.as_secs_f64()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_every_family_once_with_its_type() {
        reply_sent("550 5.1.1 <x@y>: Recipient address rejected");
        reply_sent("250 2.0.0 Ok");
        reply_sent("22");
        STORE_COMMIT.observe(Duration::from_millis(3));
        let text = render(&Gauges {
            queue: vec![("queued".into(), 2), ("sent".into(), 5)],
            upstreams: vec![("acme \"de\"".into(), true, 3)],
            store_bytes: Some((4096, 0)),
        });
        assert!(refusals(550) >= 1 && refusals(250) == 0, "{text}");
        assert!(text.contains("jobmail_smtp_refusals_total{code=\"550\"} "));
        assert!(!text.contains("code=\"250\""));
        assert!(text.contains("jobmail_outbox_items{state=\"queued\"} 2\n"));
        assert!(text.contains("jobmail_upstream_paused{subsidiary=\"acme \\\"de\\\"\"} 1\n"));
        assert!(text.contains("jobmail_store_commit_seconds_bucket{le=\"0.005\"} "));
        assert!(!text.contains("tls_certificate"));
        let mut seen = std::collections::HashSet::new();
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            assert!(seen.insert(line.to_string()), "twice: {line}");
        }
        // Every sample belongs to a family declared before it.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "no TYPE for {line}"
            );
        }
    }

    #[test]
    fn the_histogram_is_cumulative_and_counts_everything() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(400));
        h.observe(Duration::from_millis(20));
        h.observe(Duration::from_secs(60));
        assert_eq!(h.count(), 3);
        assert_eq!(h.buckets[0].load(Ordering::Relaxed), 1);
        assert_eq!(h.buckets[5].load(Ordering::Relaxed), 1);
        // Past the last bound: only in +Inf (the count).
        assert_eq!(
            h.buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .sum::<u64>(),
            2
        );
    }

    #[test]
    fn a_heartbeat_ages_from_its_last_beat() {
        let beat = Heartbeat::new();
        assert_eq!(beat.age(), None);
        beat.beat();
        assert!(beat.age().unwrap() < Duration::from_secs(1));
    }

    #[test]
    fn a_session_ends_as_its_last_reply_says() {
        assert_eq!(
            SessionEnd::of_reply("421 4.4.2 mx Error: timeout exceeded"),
            SessionEnd::Timeout
        );
        assert_eq!(
            SessionEnd::of_reply("421 4.7.0 mx Error: too many errors"),
            SessionEnd::Errors
        );
        assert_eq!(
            SessionEnd::of_reply("421 4.3.2 mx Service shutting down"),
            SessionEnd::Shutdown
        );
        assert_eq!(
            SessionEnd::of_reply("554 5.5.0 Error: improper command pipelining"),
            SessionEnd::Protocol
        );
    }
}
