//! Webhook events and their deliveries, as tables: an event is written by
//! [`emit`] in the transaction of the change it reports (a mail filed, an
//! application, an acknowledgement suppressed, an outbox outcome, a
//! bounce), with one delivery row per endpoint that wants it, so that an
//! event exists exactly when its change does and a crash loses neither.
//! The endpoints themselves are a table the daemon keeps in step with the
//! config ([`Store::set_webhook_endpoints`]), so that every process that
//! writes (the daemon's writer, a CLI command) fans out the same way.
//!
//! SQL only: what an event says is handed in by the store's own callers;
//! sending, signing and backoff are `outbound::webhook`'s.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{Cached, Result, Store};

/// An endpoint as the store keeps it: id, URL, the events it wants.
#[derive(Debug, Clone)]
pub struct EndpointSpec<'a> {
    pub id: &'a str,
    pub url: &'a str,
    pub events: &'a [String],
}

/// A delivery that is due: its event's body as it was written.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub endpoint: String,
    pub event: i64,
    /// `evt_…`: the receiver's deduplication key.
    pub uid: String,
    pub kind: String,
    pub body: String,
    /// Attempts made before this one.
    pub attempts: i64,
    pub created_at_ms: i64,
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub enum Attempt {
    /// The receiver answered 2xx.
    Delivered { status: u16 },
    /// Not delivered; try again at `next_ms`.
    Retry { error: String, next_ms: i64 },
    /// Not delivered, and retried long enough: `failed`.
    GaveUp { error: String },
}

/// One delivery, as `jobmail webhooks events` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    pub endpoint: String,
    pub event: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub candidate: Option<i64>,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    /// Pending behind an earlier event of the same candidate, which goes first.
    pub behind_earlier: bool,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub last_error: Option<String>,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter<'a> {
    pub endpoint: Option<&'a str>,
    pub state: Option<&'a str>,
    pub limit: usize,
}

/// One endpoint's backlog.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointBacklog {
    pub endpoint: String,
    pub url: String,
    /// In the config the daemon serves now; deliveries to an endpoint no
    /// longer configured wait, and go if it comes back.
    pub configured: bool,
    pub pending: i64,
    pub failed: i64,
    pub delivered: i64,
    pub oldest_pending_at: Option<String>,
    pub last_error: Option<String>,
}

/// Whether any configured endpoint wants `kind` (most installations have
/// none: then nothing is written at all).
pub(super) fn wanted(conn: &Connection, kind: &str) -> rusqlite::Result<bool> {
    conn.row(
        "SELECT EXISTS (SELECT 1 FROM webhook_endpoints e, json_each(e.events_json) j
                        WHERE e.active = 1 AND j.value = ?1)",
        params![kind],
        |r| r.get(0),
    )
}

/// Writes event `kind` about `candidate` with `data`, and a pending
/// delivery for every endpoint that wants it, in the caller's transaction.
/// `data` is read only when an endpoint wants the event: a mail's
/// (`message_data`) cost its filing a twentieth of the writer's time when
/// nobody did (measured with perf, 5 KB mails at 8 sessions).
pub(super) fn emit(
    conn: &Connection,
    kind: &str,
    candidate: Option<i64>,
    data: impl FnOnce() -> Result<serde_json::Value>,
    at_ms: i64,
) -> Result<()> {
    if !wanted(conn, kind)? {
        return Ok(());
    }
    let data = data()?;
    let uid = format!("evt_{}", uuid::Uuid::now_v7().simple());
    let body = serde_json::json!({
        "id": uid,
        "type": kind,
        "created_at": crate::clock::rfc3339_ms(at_ms),
        "candidate": candidate,
        "data": data,
    })
    .to_string();
    conn.exec(
        "INSERT INTO webhook_events (uid, type, candidate_id, created_at, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![uid, kind, candidate, at_ms, body],
    )?;
    let event = conn.last_insert_rowid();
    conn.exec(
        "INSERT INTO webhook_deliveries (endpoint, event_id, candidate_id, state, next_attempt_at)
         SELECT e.id, ?1, ?2, 'pending', ?3 FROM webhook_endpoints e
         WHERE e.active = 1 AND EXISTS (SELECT 1 FROM json_each(e.events_json) j WHERE j.value = ?4)",
        params![event, candidate, at_ms, kind],
    )?;
    Ok(())
}

/// What a webhook says about a stored mail: who sent it, its subject, and
/// its documents (to fetch with `GET /api/v1/documents/{id}`).
pub(super) fn message_data(conn: &Connection, message: i64) -> Result<serde_json::Value> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, filename, content_type, size, category FROM documents
         WHERE message_id = ?1 AND deleted_at IS NULL ORDER BY id",
    )?;
    let documents = stmt
        .query_map(params![message], |r| {
            Ok(serde_json::json!({
                "id": r.get::<_, i64>(0)?,
                "file_name": r.get::<_, String>(1)?,
                "content_type": r.get::<_, String>(2)?,
                "size": r.get::<_, i64>(3)?,
                "category": r.get::<_, String>(4)?,
            }))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut data = conn
        .row(
            "SELECT from_addr, from_name, subject, received_at, direction FROM messages WHERE id = ?1",
            params![message],
            |r| {
                Ok(serde_json::json!({
                    "id": message,
                    "from": r.get::<_, Option<String>>(0)?,
                    "from_name": r.get::<_, Option<String>>(1)?,
                    "subject": r.get::<_, Option<String>>(2)?,
                    "received_at": crate::clock::rfc3339_ms(r.get(3)?),
                    "direction": r.get::<_, String>(4)?,
                }))
            },
        )
        .optional()?
        .unwrap_or_else(|| serde_json::json!({ "id": message }));
    data["documents"] = documents.into();
    Ok(data)
}

/// The candidate and message of an outbox item, for its events.
pub(super) fn outbox_facts(conn: &Connection, item: i64) -> Result<Option<(i64, i64)>> {
    Ok(conn
        .row(
            "SELECT candidate_id, message_id FROM outbox WHERE id = ?1",
            params![item],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

fn ms_text(ms: Option<i64>) -> Option<String> {
    ms.map(crate::clock::rfc3339_ms)
}

impl Store {
    /// Makes the endpoint table what the config says: these are active
    /// (their URL and events as given), every other one inactive (its
    /// pending deliveries wait). Events already written keep their
    /// deliveries; a change of events applies to events from now on.
    pub fn set_webhook_endpoints(
        &mut self,
        endpoints: &[EndpointSpec<'_>],
        now_ms: i64,
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute("UPDATE webhook_endpoints SET active = 0", [])?;
        for e in endpoints {
            let events = serde_json::to_string(e.events).unwrap_or_else(|_| "[]".into());
            tx.execute(
                "INSERT INTO webhook_endpoints (id, url, events_json, active, updated_at) VALUES (?1, ?2, ?3, 1, ?4)
                 ON CONFLICT (id) DO UPDATE SET url = excluded.url, events_json = excluded.events_json,
                                                active = 1, updated_at = excluded.updated_at",
                params![e.id, e.url, events, now_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deliveries due at `now_ms` to configured endpoints, oldest first, at
    /// most one per endpoint and candidate: a candidate's later event waits
    /// until the earlier one is delivered or given up, so that a receiver
    /// gets each candidate's events in order.
    pub fn due_webhook_deliveries(&self, now_ms: i64, limit: usize) -> Result<Vec<DueDelivery>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.endpoint, d.event_id, e.uid, e.type, e.body, d.attempts, e.created_at
             FROM webhook_deliveries d
             JOIN webhook_events e ON e.id = d.event_id
             JOIN webhook_endpoints p ON p.id = d.endpoint AND p.active = 1
             WHERE d.state = 'pending' AND d.next_attempt_at <= ?1
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries b
                               WHERE b.endpoint = d.endpoint AND b.state = 'pending'
                                 AND b.candidate_id IS d.candidate_id AND b.event_id < d.event_id)
             ORDER BY d.event_id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now_ms, limit as i64], |r| {
            Ok(DueDelivery {
                endpoint: r.get(0)?,
                event: r.get(1)?,
                uid: r.get(2)?,
                kind: r.get(3)?,
                body: r.get(4)?,
                attempts: r.get(5)?,
                created_at_ms: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// When the next pending delivery to a configured endpoint is due.
    pub fn next_webhook_due(&self) -> Result<Option<i64>> {
        Ok(self.conn.row(
            "SELECT min(d.next_attempt_at) FROM webhook_deliveries d
             JOIN webhook_endpoints p ON p.id = d.endpoint AND p.active = 1
             WHERE d.state = 'pending'",
            [],
            |r| r.get(0),
        )?)
    }

    /// Records how attempts ended, `(endpoint, event, attempt)`, in one commit.
    pub fn record_webhook_attempts(
        &mut self,
        attempts: &[(String, i64, Attempt)],
        now_ms: i64,
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for (endpoint, event, attempt) in attempts {
            let (state, error, next, delivered): (&str, Option<&str>, Option<i64>, Option<i64>) =
                match attempt {
                    Attempt::Delivered { .. } => ("delivered", None, None, Some(now_ms)),
                    Attempt::Retry { error, next_ms } => {
                        ("pending", Some(error), Some(*next_ms), None)
                    }
                    Attempt::GaveUp { error } => ("failed", Some(error), None, None),
                };
            tx.exec(
                "UPDATE webhook_deliveries
                 SET state = ?3, attempts = attempts + 1, last_attempt_at = ?4,
                     last_error = coalesce(?5, last_error), next_attempt_at = coalesce(?6, next_attempt_at),
                     delivered_at = ?7
                 WHERE endpoint = ?1 AND event_id = ?2 AND state = 'pending'",
                params![endpoint, event, state, now_ms, error, next, delivered],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deliveries, newest first.
    pub fn webhook_deliveries(&self, f: &DeliveryFilter<'_>) -> Result<Vec<DeliveryRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.endpoint, e.uid, e.type, e.candidate_id, d.state, d.attempts, e.created_at,
                    d.next_attempt_at, d.delivered_at, d.last_error,
                    d.state = 'pending' AND EXISTS (SELECT 1 FROM webhook_deliveries b
                        WHERE b.endpoint = d.endpoint AND b.state = 'pending'
                          AND b.candidate_id IS d.candidate_id AND b.event_id < d.event_id)
             FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
             WHERE (?1 IS NULL OR d.endpoint = ?1) AND (?2 IS NULL OR d.state = ?2)
             ORDER BY d.event_id DESC, d.endpoint LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![f.endpoint, f.state, f.limit as i64], |r| {
            let state: String = r.get(4)?;
            let next: i64 = r.get(7)?;
            Ok(DeliveryRow {
                endpoint: r.get(0)?,
                event: r.get(1)?,
                kind: r.get(2)?,
                candidate: r.get(3)?,
                attempts: r.get(5)?,
                created_at: crate::clock::rfc3339_ms(r.get(6)?),
                next_attempt_at: (state == "pending").then(|| crate::clock::rfc3339_ms(next)),
                delivered_at: ms_text(r.get(8)?),
                last_error: r.get(9)?,
                behind_earlier: r.get(10)?,
                state,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every endpoint the store knows, configured ones first.
    pub fn webhook_backlog(&self) -> Result<Vec<EndpointBacklog>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.id, p.url, p.active,
                    (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint = p.id AND d.state = 'pending'),
                    (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint = p.id AND d.state = 'failed'),
                    (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint = p.id AND d.state = 'delivered'),
                    (SELECT min(e.created_at) FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
                      WHERE d.endpoint = p.id AND d.state = 'pending'),
                    (SELECT d.last_error FROM webhook_deliveries d
                      WHERE d.endpoint = p.id AND d.last_error IS NOT NULL AND d.state <> 'delivered'
                      ORDER BY d.last_attempt_at DESC LIMIT 1)
             FROM webhook_endpoints p ORDER BY p.active DESC, p.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(EndpointBacklog {
                endpoint: r.get(0)?,
                url: r.get(1)?,
                configured: r.get(2)?,
                pending: r.get(3)?,
                failed: r.get(4)?,
                delivered: r.get(5)?,
                oldest_pending_at: ms_text(r.get(6)?),
                last_error: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Puts failed deliveries (of one endpoint, or all) back to pending,
    /// due now; returns how many.
    pub fn retry_webhook_deliveries(
        &mut self,
        endpoint: Option<&str>,
        now_ms: i64,
    ) -> Result<usize> {
        Ok(self.conn.execute(
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ?2
             WHERE state = 'failed' AND (?1 IS NULL OR endpoint = ?1)",
            params![endpoint, now_ms],
        )?)
    }

    /// Forgets deliveries delivered before `before_ms`, and events left
    /// with no delivery; returns how many events went.
    pub fn prune_webhook_events(&mut self, before_ms: i64) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM webhook_deliveries WHERE state = 'delivered' AND delivered_at < ?1",
            params![before_ms],
        )?;
        let n = tx.execute(
            "DELETE FROM webhook_events WHERE created_at < ?1
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)",
            params![before_ms],
        )?;
        tx.commit()?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("j.db")).unwrap();
        (dir, store)
    }

    fn endpoints(store: &mut Store, list: &[(&str, &[&str])]) {
        let owned: Vec<(String, Vec<String>)> = list
            .iter()
            .map(|(id, ev)| (id.to_string(), ev.iter().map(|e| e.to_string()).collect()))
            .collect();
        let specs: Vec<EndpointSpec> = owned
            .iter()
            .map(|(id, events)| EndpointSpec {
                id,
                url: "http://127.0.0.1:9/hook",
                events,
            })
            .collect();
        store.set_webhook_endpoints(&specs, 1).unwrap();
    }

    fn emit_now(store: &Store, kind: &str, candidate: Option<i64>) {
        emit(
            &store.conn,
            kind,
            candidate,
            || Ok(serde_json::json!({})),
            1_000,
        )
        .unwrap();
    }

    #[test]
    fn an_event_nobody_wants_is_not_written() {
        let (_d, mut store) = store();
        emit_now(&store, "outbox.sent", Some(1));
        endpoints(&mut store, &[("ats", &["message.received"])]);
        emit_now(&store, "outbox.sent", Some(1));
        let n: i64 = store
            .conn
            .row("SELECT count(*) FROM webhook_events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        emit_now(&store, "message.received", Some(1));
        assert_eq!(store.due_webhook_deliveries(2_000, 10).unwrap().len(), 1);
    }

    #[test]
    fn a_candidates_later_event_waits_for_the_earlier_one() {
        let (_d, mut store) = store();
        endpoints(
            &mut store,
            &[("a", &["message.received"]), ("b", &["message.received"])],
        );
        emit_now(&store, "message.received", Some(7));
        emit_now(&store, "message.received", Some(7));
        emit_now(&store, "message.received", Some(8));
        let due = store.due_webhook_deliveries(2_000, 10).unwrap();
        // Per endpoint: candidate 7's first event and candidate 8's.
        let got: Vec<(String, i64)> = due.iter().map(|d| (d.endpoint.clone(), d.event)).collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), 1),
                ("b".into(), 1),
                ("a".into(), 3),
                ("b".into(), 3)
            ]
        );
        // a's first fails and waits: its second stays behind it; b's goes on.
        store
            .record_webhook_attempts(
                &[
                    (
                        "a".into(),
                        1,
                        Attempt::Retry {
                            error: "HTTP 500".into(),
                            next_ms: 9_000,
                        },
                    ),
                    ("b".into(), 1, Attempt::Delivered { status: 204 }),
                ],
                2_000,
            )
            .unwrap();
        let due: Vec<(String, i64)> = store
            .due_webhook_deliveries(3_000, 10)
            .unwrap()
            .iter()
            .map(|d| (d.endpoint.clone(), d.event))
            .collect();
        assert_eq!(due, vec![("b".into(), 2), ("a".into(), 3), ("b".into(), 3)]);
        assert_eq!(store.next_webhook_due().unwrap(), Some(1_000));
        // Given up, it no longer holds the next one back.
        store
            .record_webhook_attempts(
                &[(
                    "a".into(),
                    1,
                    Attempt::GaveUp {
                        error: "HTTP 500".into(),
                    },
                )],
                9_000,
            )
            .unwrap();
        let due = store.due_webhook_deliveries(9_000, 10).unwrap();
        assert!(
            due.iter().any(|d| d.endpoint == "a" && d.event == 2),
            "{due:?}"
        );
        let backlog = store.webhook_backlog().unwrap();
        assert_eq!((backlog[0].pending, backlog[0].failed), (2, 1));
        assert_eq!(backlog[0].last_error.as_deref(), Some("HTTP 500"));
        assert_eq!(store.retry_webhook_deliveries(Some("a"), 9_500).unwrap(), 1);
    }

    #[test]
    fn an_endpoint_taken_out_of_the_config_keeps_its_deliveries_waiting() {
        let (_d, mut store) = store();
        endpoints(&mut store, &[("ats", &["outbox.sent"])]);
        emit_now(&store, "outbox.sent", None);
        endpoints(&mut store, &[]);
        assert!(store.due_webhook_deliveries(2_000, 10).unwrap().is_empty());
        emit_now(&store, "outbox.sent", None);
        endpoints(&mut store, &[("ats", &["outbox.sent"])]);
        let due = store.due_webhook_deliveries(2_000, 10).unwrap();
        assert_eq!(due.len(), 1, "the one written while it was away is not its");
        let body: serde_json::Value = serde_json::from_str(&due[0].body).unwrap();
        assert_eq!(body["type"], "outbox.sent");
        assert!(body["id"].as_str().unwrap().starts_with("evt_"));
    }
}
