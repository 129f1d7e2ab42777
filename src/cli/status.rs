//! `jobmail status [--json]`: one instance at a glance (like `postfix
//! status` and `mailq`'s summary together), with or without a daemon.

use super::output::{clip, print_json};
use crate::app::App;
use crate::app::status::Status;

pub fn status(app: &App, json: bool) -> anyhow::Result<()> {
    let status = app.status(crate::clock::now_ms())?;
    if json {
        return print_json(&status);
    }
    print!("{}", format_status(&status));
    Ok(())
}

/// Bytes as a person reads them (KiB, MiB, GiB).
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The human form of `jobmail status`.
pub fn format_status(s: &Status) -> String {
    let mut out = String::new();
    let mut line = |label: &str, text: String| out.push_str(&format!("{label:<17}{text}\n"));
    line("config", s.config.clone());
    line(
        "daemon",
        match s.daemon.pid {
            Some(pid) => format!("running (pid {pid})"),
            None => "not running (no jobmail serve holds this store's instance lock)".into(),
        },
    );
    let starttls = if s.listener.starttls {
        " (STARTTLS)"
    } else {
        ""
    };
    let mut listening: Vec<String> = s
        .listener
        .listen
        .iter()
        .map(|a| format!("{a}{starttls}"))
        .collect();
    listening.extend(
        s.listener
            .implicit_tls
            .iter()
            .map(|a| format!("{a} (implicit TLS)")),
    );
    line("listen", listening.join(", "));
    line(
        "TLS",
        match &s.tls {
            None => "off (no [tls]: STARTTLS is not offered)".into(),
            Some(t) if !t.problems.is_empty() => format!(
                "{}: does not load: {}",
                t.certificate,
                t.problems.join("; ")
            ),
            Some(t) => format!(
                "{}, valid until {} ({} days)",
                t.subject.as_deref().unwrap_or("(no common name)"),
                t.not_after.as_deref().unwrap_or("?"),
                t.days_left.unwrap_or(0)
            ),
        },
    );
    line(
        "metrics",
        match &s.metrics {
            Some(addr) => format!("http://{addr}/metrics"),
            None => "off".into(),
        },
    );
    let Some(store) = &s.store else {
        line(
            "store",
            "none yet (jobmail serve has not run with this config)".into(),
        );
        return out;
    };
    line(
        "store",
        format!(
            "{}: {}, WAL {}, {} mail(s) waiting for the search index",
            store.database,
            size(store.database_bytes),
            size(store.wal_bytes),
            store.search_backlog
        ),
    );
    line(
        "queue",
        if s.queue.is_empty() {
            "empty".into()
        } else {
            s.queue
                .iter()
                .map(|q| format!("{} {}", q.state, q.items))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    if let Some(d) = &s.oldest_deferred {
        let age =
            humantime::format_duration(std::time::Duration::from_secs(d.age_seconds.max(0) as u64));
        line(
            "oldest deferred",
            format!(
                "#{} ({}), {age} old, {} attempt(s), next {}: {}",
                d.id,
                d.subsidiary,
                d.attempts,
                d.next_attempt_at.as_deref().unwrap_or("-"),
                clip(d.last_reply.as_deref().unwrap_or("(no reply)"), 100)
            ),
        );
    }
    if s.paused_upstreams.is_empty() {
        line("paused upstreams", "none".into());
    }
    for u in &s.paused_upstreams {
        line(
            "paused upstream",
            format!(
                "{} until {}, {} failure(s): {}",
                u.subsidiary,
                u.paused_until,
                u.failures,
                clip(u.last_error.as_deref().unwrap_or("-"), 100)
            ),
        );
    }
    line(
        "acknowledgements",
        if s.acknowledgements_last_hour.is_empty() {
            "none in the last hour".into()
        } else {
            let parts: Vec<String> = s
                .acknowledgements_last_hour
                .iter()
                .map(|d| match &d.rule {
                    Some(rule) => format!("{} ({rule}) {}", d.decision, d.count),
                    None => format!("{} {}", d.decision, d.count),
                })
                .collect();
            format!("last hour: {}", parts.join(", "))
        },
    );
    for w in &s.webhooks {
        line(
            "webhook",
            format!(
                "{}: pending {}, failed {}{}{}",
                w.endpoint,
                w.pending,
                w.failed,
                w.oldest_pending_at
                    .as_deref()
                    .map(|t| format!(", oldest waiting since {t}"))
                    .unwrap_or_default(),
                w.last_error
                    .as_deref()
                    .map(|e| format!(": {}", clip(e, 80)))
                    .unwrap_or_default()
            ),
        );
    }
    out
}
