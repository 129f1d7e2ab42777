//! `jobmail log`: one mail's life from its RCPT to sent or bounced, put
//! together from what the store recorded (the mail and its session, the
//! filing decision and its reason, the application and its
//! acknowledgement decision, every outbox event with the upstream's
//! replies, the delivery reports), in the order it happened; and the
//! `grep` that finds the same mail's lines in the daemon's log.
//!
//! No SQL, no printing.

use serde::Serialize;

use super::{App, Error, Result};
use crate::store::history::History;

/// What `jobmail log` follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A stored mail (`jobmail log message 12`).
    Message(i64),
    /// An outbox item (`jobmail log item 45`): an acknowledgement's life
    /// starts with the mail it answers.
    Item(i64),
}

/// One step of a mail's life.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    /// The mail the step is about, or the outbox item.
    pub message: Option<i64>,
    pub item: Option<i64>,
    /// `received`, `composed`, `filed`, `application`, `acknowledgement`,
    /// an outbox state (`queued`, `sending`, `sent`, `deferred`, …), `report`.
    pub step: String,
    pub text: String,
}

/// A mail's life.
#[derive(Debug, Clone, Serialize)]
pub struct MailLog {
    pub message: i64,
    pub items: Vec<i64>,
    pub steps: Vec<Step>,
    /// The shell command that finds the same mail in the daemon's log.
    pub journal: String,
}

impl App {
    /// The life of one mail or outbox item (see the module comment).
    pub fn mail_log(&self, subject: Subject) -> Result<MailLog> {
        let store = self.store()?;
        let history = match subject {
            Subject::Message(id) => store
                .history_of_message(id)?
                .ok_or_else(|| Error::NotFound(format!("no message {id}")))?,
            Subject::Item(id) => store
                .history_of_item(id)?
                .ok_or_else(|| Error::NotFound(format!("no outbox item {id}")))?,
        };
        Ok(self.timeline(&history))
    }

    fn timeline(&self, h: &History) -> MailLog {
        let m = &h.message;
        let mut steps = Vec::new();
        let mut step =
            |at: &str, message: Option<i64>, item: Option<i64>, what: &str, text: String| {
                steps.push(Step {
                    at: at.to_string(),
                    message,
                    item,
                    step: what.to_string(),
                    text,
                })
            };
        let id = Some(m.id);
        let subject = m
            .subject
            .as_deref()
            .map(|s| format!(", subject {s:?}"))
            .unwrap_or_default();
        let recipients = m
            .envelope_recipients
            .iter()
            .map(|r| format!("<{r}>"))
            .collect::<Vec<_>>()
            .join(", ");
        if m.direction == "inbound" {
            let tls = match &m.tls {
                Some(t) => format!("{} {}", t.version, t.cipher),
                None => "in the clear".to_string(),
            };
            step(
                &m.received_at,
                id,
                None,
                "received",
                format!(
                    "from <{}> for {recipients} in session {} (client {}, HELO {}, {tls}), {} bytes{subject}; answered 250 once stored",
                    m.envelope_sender, m.session_id, m.client_addr, m.helo, m.size
                ),
            );
            let who = m
                .candidate
                .as_ref()
                .map(|c| match c.name.as_str() {
                    "" => format!(" candidate {}", c.id),
                    name => format!(" candidate {} ({name})", c.id),
                })
                .unwrap_or_default();
            let reason = m.reason.as_deref().unwrap_or("-");
            let confidence = super::messages::confidence(m.reason.as_deref())
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            let detail = m
                .detail
                .as_deref()
                .filter(|d| !d.is_empty())
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            let suggested = if m.suggestions.is_empty() {
                String::new()
            } else {
                let ids: Vec<String> = m.suggestions.iter().map(|c| c.id.to_string()).collect();
                format!("; could be candidate {}", ids.join(", "))
            };
            step(
                &m.received_at,
                id,
                None,
                "filed",
                format!(
                    "{}{who}, reason {reason}{confidence}{detail}{suggested}",
                    m.assignment
                ),
            );
        } else {
            step(
                &m.received_at,
                id,
                None,
                "composed",
                format!("our mail for {recipients}, {} bytes{subject}", m.size),
            );
        }
        for a in &h.applications {
            step(
                &a.received_at,
                id,
                None,
                "application",
                format!(
                    "application {} to {}{}",
                    a.id,
                    a.subsidiary,
                    a.position
                        .as_deref()
                        .map(|p| format!(", position {p}"))
                        .unwrap_or_else(|| ", general".into())
                ),
            );
            if let Some(ack) = &a.acknowledgement {
                let text = match (ack.decision.as_str(), &ack.rule, ack.item) {
                    (_, _, Some(item)) => format!("{}: outbox item {item}", ack.decision),
                    ("suppressed", Some(rule), _) => {
                        format!("suppressed, rule {rule}: {}", ack.detail)
                    }
                    (decision, _, _) if ack.detail.is_empty() => decision.to_string(),
                    (decision, _, _) => format!("{decision}: {}", ack.detail),
                };
                step(&ack.decided_at, id, ack.item, "acknowledgement", text);
            }
        }
        let mut items = Vec::new();
        let mut reports = Vec::new();
        for hi in &h.items {
            let i = &hi.item;
            items.push(i.id);
            let upstream = self
                .config
                .subsidiaries
                .iter()
                .find(|s| s.id == i.subsidiary)
                .and_then(|s| s.upstream.as_ref())
                .map(|u| format!("{}:{}", u.host, u.port));
            // A report first: the item bounces in the transaction that files it,
            // at the same moment.
            for r in &hi.reports {
                reports.push(r.message);
                step(
                    &r.received_at,
                    Some(r.message),
                    Some(i.id),
                    "report",
                    format!("{}: {}", r.reason, r.detail),
                );
            }
            for (n, e) in hi.events.iter().enumerate() {
                let code = e.code.map(|c| format!("{c} ")).unwrap_or_default();
                let text = match e.to_state.as_str() {
                    _ if n == 0 => format!(
                        "{}; message {} to {} from <{}>{}",
                        if e.text.is_empty() { "queued" } else { &e.text },
                        i.message,
                        i.recipients
                            .iter()
                            .map(|r| format!("<{r}>"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        i.envelope_from,
                        i.template
                            .as_deref()
                            .map(|t| format!(", template {t}"))
                            .unwrap_or_default()
                    ),
                    "sending" if e.text.is_empty() => format!(
                        "attempt {}{}",
                        e.attempt,
                        upstream
                            .as_deref()
                            .map(|u| format!(" via {u}"))
                            .unwrap_or_default()
                    ),
                    "sent" | "deferred" | "failed"
                        if e.from_state.as_deref() == Some("sending") =>
                    {
                        format!("attempt {}: {code}{}", e.attempt, e.text)
                    }
                    _ => format!("{code}{}", e.text),
                };
                step(&e.at, None, Some(i.id), &e.to_state, text);
            }
        }
        // Stable: steps of the same moment keep the order they happen in.
        steps.sort_by(|a, b| a.at.cmp(&b.at));
        let mut ids = vec![format!("message={}", m.id)];
        ids.extend(items.iter().map(|i| format!("item={i}")));
        ids.extend(reports.iter().map(|r| format!("message={r}")));
        if m.direction == "inbound" && !m.session_id.is_empty() {
            ids.push(format!("session={}", m.session_id));
        }
        let patterns: Vec<String> = ids.iter().map(|p| format!("-e {p}")).collect();
        MailLog {
            message: m.id,
            items,
            steps,
            journal: format!(
                "journalctl -u jobmail -o cat | grep -w {}",
                patterns.join(" ")
            ),
        }
    }
}
