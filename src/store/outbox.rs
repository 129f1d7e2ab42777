//! The outbox: one item per outgoing mail to one candidate, its frozen bytes
//! stored in the candidate's thread like an inbound mail, and every change
//! of state recorded as an event in the same transaction.
//!
//! SQL only. Composing the bytes is `crate::outbound::compose`'s job; delivering them
//! is the relay's.

pub use super::delivery::{ClaimLimits, Claimed, Outcome, UpstreamState};
pub use super::suppressions::{SUPPRESSION_DAYS, Suppression};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use super::{Cached, Result, Store, StoreError, ids, rfc3339};
use crate::mail::parsed::{Envelope, ParsedMessage};

/// Outgoing states (see `docs/architecture.md`).
pub const STATES: [&str; 8] = [
    "scheduled",
    "queued",
    "sending",
    "sent",
    "deferred",
    "failed",
    "cancelled",
    "bounced",
];

/// One mail to put in the outbox.
pub struct NewItem<'a> {
    pub batch_id: &'a str,
    pub candidate: i64,
    pub application: Option<i64>,
    pub template: Option<&'a str>,
    pub subsidiary: &'a str,
    pub sender: &'a str,
    /// The envelope sender of the item with this id: a VERP address signed
    /// so that only a report about this item, sent to it, can bounce it.
    pub envelope_from: Box<dyn Fn(i64) -> String + Send + Sync + 'a>,
    /// Envelope recipients: the candidate, and an archive copy if configured.
    pub recipients: Vec<String>,
    pub bytes: Vec<u8>,
    pub parsed: ParsedMessage,
    /// The document category of its attachments (`[documents] sent_category`).
    pub document_category: &'a str,
    /// Not before this (unix ms); `None`: now.
    pub not_before: Option<i64>,
    pub now_ms: i64,
}

/// What was queued: the outbox item and the message in the thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Queued {
    pub item: i64,
    pub message: i64,
}

/// Records a state change of `item` in its history, at its current attempt.
pub(super) fn event(
    conn: &Connection,
    item: i64,
    from: Option<&str>,
    to: &str,
    text: &str,
    at: i64,
) -> Result<()> {
    coded_event(conn, item, from, to, None, text, at)
}

/// [`event`] with the SMTP code that caused it.
pub(super) fn coded_event(
    conn: &Connection,
    item: i64,
    from: Option<&str>,
    to: &str,
    code: Option<i64>,
    text: &str,
    at: i64,
) -> Result<()> {
    conn.exec(
        "INSERT INTO outbox_events (item_id, at, from_state, to_state, attempt, code, text)
         VALUES (?1, ?2, ?3, ?4, (SELECT attempts FROM outbox WHERE id = ?1), ?5, ?6)",
        params![item, at, from, to, code, text],
    )?;
    Ok(())
}

/// Puts one mail in the outbox and its bytes in the candidate's thread.
pub(super) fn enqueue(tx: &Transaction, item: &NewItem) -> Result<Queued> {
    let incoming = super::IncomingMessage {
        envelope: Envelope {
            sender: String::new(),
            recipients: item.recipients.clone(),
            client_addr: String::new(),
            helo: String::new(),
            session_id: item.batch_id.to_string(),
            received_at_ms: item.now_ms,
            authentication: None,
            tls: None,
        },
        trace: Vec::new(),
        sha256: super::sha256_hex(&item.bytes),
        content: item.bytes.clone(),
        parsed: Some(item.parsed.clone()),
    };
    let message = match super::insert_message(tx, &incoming)? {
        super::Stored::New(id) => id,
        super::Stored::Duplicate(id) => {
            return Err(StoreError(format!(
                "the same mail is already stored as message {id}"
            )));
        }
    };
    tx.exec(
        "UPDATE documents SET category = ?2 WHERE message_id = ?1",
        params![message, item.document_category],
    )?;
    let scheduled = item.not_before.is_some_and(|t| t > item.now_ms);
    let state = if scheduled { "scheduled" } else { "queued" };
    let due = item.not_before.unwrap_or(item.now_ms).max(item.now_ms);
    tx.exec(
        "INSERT INTO outbox (batch_id, candidate_id, application_id, message_id, template, subsidiary,
            sender, envelope_from, recipients_json, state, not_before, next_attempt_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '', ?8, ?9, ?10, ?11, ?12, ?12)",
        params![
            item.batch_id,
            item.candidate,
            item.application,
            message,
            item.template,
            item.subsidiary,
            item.sender,
            serde_json::to_string(&item.recipients).unwrap_or_else(|_| "[]".into()),
            state,
            item.not_before,
            due,
            item.now_ms,
        ],
    )?;
    let id = tx.last_insert_rowid();
    let envelope_from = (item.envelope_from)(id);
    tx.exec(
        "UPDATE outbox SET envelope_from = ?2 WHERE id = ?1",
        params![id, envelope_from],
    )?;
    let detail = match item.template {
        Some(t) => format!("composed from template {t}, outbox item {id}"),
        None => format!("composed, outbox item {id}"),
    };
    tx.exec(
        "UPDATE messages SET direction = 'outbound', candidate_id = ?2, assignment = 'assigned',
                match_detail = ?3, envelope_sender = ?4
         WHERE id = ?1",
        params![message, item.candidate, detail, envelope_from],
    )?;
    let text = match item.not_before.filter(|_| scheduled) {
        Some(t) => format!("composed, scheduled for {}", rfc3339(t)),
        None => "composed".to_string(),
    };
    event(tx, id, None, state, &text, item.now_ms)?;
    Ok(Queued { item: id, message })
}

/// One line of `jobmail queue list`.
#[derive(Debug, Clone, Serialize)]
pub struct QueueEntry {
    pub id: i64,
    pub batch_id: String,
    pub state: String,
    pub candidate: i64,
    pub message: i64,
    pub template: Option<String>,
    pub subsidiary: String,
    pub sender: String,
    pub envelope_from: String,
    pub recipients: Vec<String>,
    pub subject: Option<String>,
    pub size: i64,
    pub created_at: String,
    pub not_before: Option<String>,
    pub next_attempt_at: Option<String>,
    pub attempts: i64,
    pub last_reply: Option<String>,
    /// Held by an operator: the relay leaves it alone until released.
    pub held: bool,
}

/// Which items `queue list` shows.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    /// Empty: every state.
    pub states: Vec<String>,
    pub subsidiary: Option<String>,
    pub batch: Option<String>,
    pub item: Option<i64>,
    /// Only ids below this one (to page on).
    pub before: Option<i64>,
    pub limit: usize,
}

/// The SQL of `list` and the distinct states it binds as `:state0`...: only
/// the conditions asked for, so that SQLite walks an index newest first and
/// stops after `limit` rows; a store may hold years of sent mail.
pub(super) fn list_sql(filter: &QueueFilter) -> (String, Vec<&str>) {
    let mut conditions = String::from("o.id < :before");
    for (set, condition) in [
        (
            filter.subsidiary.is_some(),
            " AND o.subsidiary = :subsidiary",
        ),
        (filter.batch.is_some(), " AND o.batch_id = :batch"),
        (filter.item.is_some(), " AND o.id = :item"),
    ] {
        if set {
            conditions.push_str(condition);
        }
    }
    let mut states: Vec<&str> = filter.states.iter().map(String::as_str).collect();
    states.sort_unstable();
    states.dedup();
    let ids = if states.is_empty() {
        format!("SELECT o.id FROM outbox o WHERE {conditions} ORDER BY o.id DESC LIMIT :limit")
    } else {
        // One walk of outbox_state (state, id) per state, newest first, then
        // merged: no sort over all of a state's history.
        let walks: Vec<String> = (0..states.len())
            .map(|i| {
                format!(
                    "SELECT id FROM (SELECT o.id FROM outbox o WHERE o.state = :state{i} AND {conditions}
                     ORDER BY o.id DESC LIMIT :limit)"
                )
            })
            .collect();
        format!(
            "SELECT id FROM ({}) ORDER BY id DESC LIMIT :limit",
            walks.join(" UNION ALL ")
        )
    };
    let sql = format!(
        "SELECT o.id, o.batch_id, o.state, o.candidate_id, o.message_id, o.template, o.subsidiary,
                o.sender, o.envelope_from, o.recipients_json, m.subject, m.size, o.created_at,
                o.not_before, o.next_attempt_at, o.attempts, o.last_reply, o.held
         FROM outbox o JOIN messages m ON m.id = o.message_id
         WHERE o.id IN ({ids}) ORDER BY o.id DESC"
    );
    (sql, states)
}

/// The outbox, newest first, as the filter says.
pub(super) fn list(conn: &Connection, filter: &QueueFilter) -> Result<Vec<QueueEntry>> {
    let (sql, states) = list_sql(filter);
    let mut stmt = conn.prepare_cached(&sql)?;
    super::bind_named(&mut stmt, ":before", filter.before.unwrap_or(i64::MAX))?;
    super::bind_named(&mut stmt, ":limit", filter.limit as i64)?;
    super::bind_named(&mut stmt, ":subsidiary", filter.subsidiary.as_deref())?;
    super::bind_named(&mut stmt, ":batch", filter.batch.as_deref())?;
    super::bind_named(&mut stmt, ":item", filter.item)?;
    for (i, state) in states.iter().enumerate() {
        super::bind_named(&mut stmt, &format!(":state{i}"), state)?;
    }
    let rows = stmt.raw_query().mapped(|r| {
        Ok(QueueEntry {
            id: r.get(0)?,
            batch_id: r.get(1)?,
            state: r.get(2)?,
            candidate: r.get(3)?,
            message: r.get(4)?,
            template: r.get(5)?,
            subsidiary: r.get(6)?,
            sender: r.get(7)?,
            envelope_from: r.get(8)?,
            recipients: serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or_default(),
            subject: r.get(10)?,
            size: r.get(11)?,
            created_at: rfc3339(r.get(12)?),
            not_before: r.get::<_, Option<i64>>(13)?.map(rfc3339),
            next_attempt_at: r.get::<_, Option<i64>>(14)?.map(rfc3339),
            attempts: r.get(15)?,
            last_reply: r.get(16)?,
            held: r.get(17)?,
        })
    });
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn state_of(conn: &Connection, id: i64) -> Result<String> {
    conn.row("SELECT state FROM outbox WHERE id = ?1", params![id], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| StoreError(format!("no outbox item {id}")))
}

/// One change of state, if the item is still in `from`; with its event.
pub(super) fn transition(
    tx: &Transaction,
    id: i64,
    from: &str,
    to: &str,
    text: &str,
    now_ms: i64,
) -> Result<bool> {
    let n = tx.exec(
        "UPDATE outbox SET state = ?3, updated_at = ?4 WHERE id = ?1 AND state = ?2",
        params![id, from, to, now_ms],
    )?;
    if n == 1 {
        event(tx, id, Some(from), to, text, now_ms)?;
    }
    Ok(n == 1)
}

/// Stops an item that has not gone out: scheduled, queued or deferred.
pub(super) fn cancel(conn: &mut Connection, id: i64, now_ms: i64) -> Result<String> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let state = state_of(&tx, id)?;
    if !WAITING.contains(&state.as_str()) {
        return Err(StoreError(format!(
            "outbox item {id} is {state}: only scheduled, queued or deferred mail can be cancelled"
        )));
    }
    transition(
        &tx,
        id,
        &state,
        "cancelled",
        "cancelled by an operator",
        now_ms,
    )?;
    tx.commit()?;
    Ok(state)
}

/// What became of a scheduled item when it fell due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Promoted {
    pub item: i64,
    /// `queued`, or `cancelled` with the reason.
    pub state: String,
    pub reason: String,
}

/// Moves scheduled items whose time has come to `queued`, checking the
/// candidate and application again: a candidate merged into another or an
/// application withdrawn since is not written to (cancelled, saying why).
pub(super) fn promote_due(conn: &mut Connection, now_ms: i64) -> Result<Vec<Promoted>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let due: Vec<(i64, Option<i64>, Option<String>)> = {
        let mut stmt = tx.prepare(
            "SELECT o.id, c.merged_into, a.status FROM outbox o
             JOIN candidates c ON c.id = o.candidate_id
             LEFT JOIN applications a ON a.id = o.application_id
             WHERE o.state = 'scheduled' AND o.next_attempt_at <= ?1 ORDER BY o.next_attempt_at, o.id",
        )?;
        let rows = stmt.query_map(params![now_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let mut out = Vec::with_capacity(due.len());
    for (id, merged, status) in due {
        let (to, reason) = match (merged, status.as_deref()) {
            (Some(into), _) => (
                "cancelled",
                format!("not sent: the candidate was merged into {into}"),
            ),
            (None, Some("withdrawn")) => (
                "cancelled",
                "not sent: the application was withdrawn".to_string(),
            ),
            _ => ("queued", "due".to_string()),
        };
        if transition(&tx, id, "scheduled", to, &reason, now_ms)? {
            out.push(Promoted {
                item: id,
                state: to.to_string(),
                reason,
            });
        }
    }
    tx.commit()?;
    Ok(out)
}

/// One recorded change of an item.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub attempt: i64,
    pub code: Option<i64>,
    pub text: String,
}

pub(super) fn events(conn: &Connection, id: i64) -> Result<Vec<Event>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, from_state, to_state, attempt, code, text FROM outbox_events WHERE item_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![id], |r| {
        Ok(Event {
            at: rfc3339(r.get(0)?),
            from_state: r.get(1)?,
            to_state: r.get(2)?,
            attempt: r.get(3)?,
            code: r.get(4)?,
            text: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// What an operator does to the outbox (in the spirit of postqueue/postsuper).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Due now: one queued or deferred item.
    Retry(i64),
    /// Due now: every deferred item (`postqueue -f`).
    Flush,
    /// Leave it alone until released (`postsuper -h`).
    Hold(i64),
    Release(i64),
    /// Remove an item that is not being sent from the queue; its mail stays
    /// in the candidate's thread as a record (`postsuper -d`).
    Delete(i64),
}

/// The states from which an item can be retried.
pub const RETRYABLE: [&str; 3] = ["queued", "deferred", "failed"];
/// The states of mail waiting to go out: it can be held, released, cancelled.
pub const WAITING: [&str; 3] = ["scheduled", "queued", "deferred"];

impl Action {
    /// The item it acts on, and the states it may be in (`None`: any
    /// state but `sending`); `None` for a flush.
    pub fn target(&self) -> Option<(i64, Option<&'static [&'static str]>)> {
        match *self {
            Action::Retry(id) => Some((id, Some(&RETRYABLE))),
            Action::Hold(id) | Action::Release(id) => Some((id, Some(&WAITING))),
            Action::Delete(id) => Some((id, None)),
            Action::Flush => None,
        }
    }
}

/// Carries out an operator's action; returns how many items it touched.
pub(super) fn act(conn: &mut Connection, action: Action, now_ms: i64) -> Result<usize> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let n = match action {
        Action::Retry(id) => {
            let state = state_of(&tx, id)?;
            if !RETRYABLE.contains(&state.as_str()) {
                return Err(StoreError(format!(
                    "outbox item {id} is {state}: only queued, deferred or failed mail can be retried"
                )));
            }
            // A failed item goes back to the queue with its frozen bytes and
            // a queue lifetime that starts again now.
            let (to, text) = if state == "failed" {
                (
                    "queued",
                    "retry of failed mail requested by an operator; its queue lifetime starts again",
                )
            } else {
                (state.as_str(), "retry requested by an operator")
            };
            tx.exec(
                "UPDATE outbox SET state = ?3, next_attempt_at = ?2, updated_at = ?2,
                        lifetime_from = CASE WHEN ?3 <> state THEN ?2 ELSE lifetime_from END
                 WHERE id = ?1",
                params![id, now_ms, to],
            )?;
            event(&tx, id, Some(&state), to, text, now_ms)?;
            1
        }
        Action::Flush => {
            let ids = ids(&tx, "SELECT id FROM outbox WHERE state = 'deferred'", [])?;
            for &id in &ids {
                tx.exec(
                    "UPDATE outbox SET next_attempt_at = ?2, updated_at = ?2 WHERE id = ?1",
                    params![id, now_ms],
                )?;
                event(
                    &tx,
                    id,
                    Some("deferred"),
                    "deferred",
                    "flush requested by an operator",
                    now_ms,
                )?;
            }
            ids.len()
        }
        Action::Hold(id) | Action::Release(id) => {
            let hold = matches!(action, Action::Hold(_));
            let state = state_of(&tx, id)?;
            if !WAITING.contains(&state.as_str()) {
                return Err(StoreError(format!(
                    "outbox item {id} is {state}: only mail waiting to go out can be held or released"
                )));
            }
            tx.exec(
                "UPDATE outbox SET held = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, hold, now_ms],
            )?;
            let text = if hold {
                "held by an operator"
            } else {
                "released by an operator"
            };
            event(&tx, id, Some(&state), &state, text, now_ms)?;
            1
        }
        Action::Delete(id) => {
            let state = state_of(&tx, id)?;
            if state == "sending" {
                return Err(StoreError(format!(
                    "outbox item {id} is being sent; cancel or delete it afterwards"
                )));
            }
            tx.exec(
                "UPDATE messages SET match_detail = coalesce(match_detail, '') || '; removed from the outbox by an operator'
                 WHERE id = (SELECT message_id FROM outbox WHERE id = ?1)",
                params![id],
            )?;
            tx.exec("DELETE FROM outbox_events WHERE item_id = ?1", params![id])?;
            tx.exec("DELETE FROM outbox WHERE id = ?1", params![id])?;
            1
        }
    };
    tx.commit()?;
    Ok(n)
}

/// How many items are in each state, and their bytes (the line `mailq` ends with).
pub(super) fn summary(conn: &Connection) -> Result<Vec<(String, i64, i64)>> {
    // Kept by triggers as items change (migration 8): no count over the history.
    let mut stmt = conn.prepare_cached(
        "SELECT state, items, bytes FROM outbox_counts WHERE items > 0 ORDER BY state",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

impl Store {
    /// Puts mails in the outbox, all or none, in one transaction.
    /// Queues composed mails in one transaction (a bulk send calls it per
    /// chunk: [`ENQUEUE_CHUNK_ITEMS`], [`ENQUEUE_CHUNK_BYTES`]). With
    /// `acknowledgement`, that decision is marked `queued` in the
    /// transaction that queues its mail.
    pub fn enqueue_all(
        &mut self,
        items: &[NewItem],
        acknowledgement: Option<i64>,
    ) -> Result<Vec<Queued>> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut queued = Vec::with_capacity(items.len());
        for item in items {
            queued.push(enqueue(&tx, item)?);
        }
        if let (Some(id), Some(first)) = (acknowledgement, queued.first()) {
            super::candidates::finish_auto_reply(&tx, id, "queued", Some(first.item), "")?;
        }
        tx.commit()?;
        Ok(queued)
    }

    /// The outbox, newest first; `states` empty: all.
    pub fn queue(&self, states: &[String], limit: usize) -> Result<Vec<QueueEntry>> {
        list(
            &self.conn,
            &QueueFilter {
                states: states.to_vec(),
                limit,
                ..Default::default()
            },
        )
    }

    /// The outbox as the filter says.
    pub fn queue_filtered(&self, filter: &QueueFilter) -> Result<Vec<QueueEntry>> {
        list(&self.conn, filter)
    }

    /// Items and bytes per state.
    pub fn queue_summary(&self) -> Result<Vec<(String, i64, i64)>> {
        summary(&self.conn)
    }

    /// Cancels a scheduled, queued or deferred item; returns the state it had.
    /// An item's state, if it exists.
    pub fn outbox_state(&self, item: i64) -> Result<Option<String>> {
        Ok(self
            .conn
            .row(
                "SELECT state FROM outbox WHERE id = ?1",
                params![item],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn cancel(&mut self, item: i64, now_ms: i64) -> Result<String> {
        cancel(&mut self.conn, item, now_ms)
    }

    /// Queues the scheduled items that are due at `now_ms` (or cancels them, saying why).
    pub fn promote_due(&mut self, now_ms: i64) -> Result<Vec<Promoted>> {
        promote_due(&mut self.conn, now_ms)
    }

    /// Operator actions on the outbox (retry, hold, release, delete, flush).
    pub fn queue_action(&mut self, action: Action, now_ms: i64) -> Result<usize> {
        act(&mut self.conn, action, now_ms)
    }

    /// The recorded history of an outbox item.
    pub fn events(&self, item: i64) -> Result<Vec<Event>> {
        events(&self.conn, item)
    }
}

#[cfg(test)]
mod tests {
    use super::super::filing::{Filed, Placement, Report, ReportKind};
    use super::*;
    use crate::store::candidates::FormApplication;

    const MAIL: &[u8] = b"From: Jobs <jobs@acme.example>\r\nTo: kim@example.org\r\n\
Subject: Einladung\r\nMessage-ID: <jobmail.1@acme.example>\r\n\r\nHallo\r\n";

    /// A store with one candidate and one item queued to them at `now`.
    fn queued(now: i64, not_before: Option<i64>) -> (tempfile::TempDir, Store, i64, i64) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = Store::create(&dir.path().join("j.db")).expect("store");
        let (candidate, _, _) = store
            .add_form_application(&FormApplication {
                candidate: None,
                email: Some("kim@example.org"),
                first_name: "Kim",
                last_name: "Lee",
                subsidiary: "acme-de",
                position: None,
                language: None,
            })
            .expect("form");
        let item = NewItem {
            batch_id: "b1",
            candidate,
            application: None,
            template: Some("invitation"),
            subsidiary: "acme-de",
            sender: "default",
            envelope_from: Box::new(|id| format!("bounce+{id}.mac@acme.example")),
            recipients: vec!["kim@example.org".into()],
            bytes: MAIL.to_vec(),
            parsed: crate::inbound::parse::parse_message(MAIL, false),
            document_category: "sent",
            not_before,
            now_ms: now,
        };
        let done = store.enqueue_all(&[item], None).expect("enqueue");
        (dir, store, done[0].item, candidate)
    }

    fn state(store: &Store, item: i64) -> String {
        store
            .queue_filtered(&QueueFilter {
                item: Some(item),
                limit: 1,
                ..Default::default()
            })
            .expect("list")
            .pop()
            .expect("item")
            .state
    }

    fn everything() -> ClaimLimits {
        ClaimLimits {
            per_subsidiary: vec![("acme-de".into(), 10)],
            others: 10,
        }
    }

    #[test]
    fn an_item_goes_queued_sending_deferred_sending_sent_with_its_history() {
        let now = 1_000_000;
        let (_dir, mut store, item, _) = queued(now, None);
        assert_eq!(state(&store, item), "queued");
        let claimed = store.claim_due(now, &everything()).expect("claim");
        assert_eq!(claimed.len(), 1);
        assert_eq!(
            claimed[0].envelope_from,
            format!("bounce+{item}.mac@acme.example")
        );
        assert_eq!(claimed[0].bytes, MAIL, "the frozen bytes");
        assert_eq!(state(&store, item), "sending");
        assert!(
            store
                .claim_due(now, &everything())
                .expect("again")
                .is_empty(),
            "claimed once"
        );
        let later = now + 60_000;
        store
            .record_outcomes(
                &[(
                    item,
                    Outcome::Deferred {
                        code: Some(451),
                        text: "451 try later".into(),
                        next_ms: later,
                    },
                    now,
                )],
                &[],
            )
            .expect("deferred");
        assert_eq!(state(&store, item), "deferred");
        assert!(
            store
                .claim_due(now + 1, &everything())
                .expect("early")
                .is_empty(),
            "not due yet"
        );
        let second = store.claim_due(later, &everything()).expect("due");
        assert_eq!(second[0].attempt, 2);
        store
            .record_outcomes(
                &[(
                    item,
                    Outcome::Sent {
                        code: Some(250),
                        text: "250 ok".into(),
                    },
                    later,
                )],
                &[],
            )
            .expect("sent");
        assert_eq!(state(&store, item), "sent");
        let history: Vec<String> = store
            .events(item)
            .expect("events")
            .iter()
            .map(|e| e.to_state.clone())
            .collect();
        assert_eq!(
            history,
            ["queued", "sending", "deferred", "sending", "sent"]
        );
        // Sent mail cannot be cancelled any more.
        assert!(store.cancel(item, later).is_err());
    }

    #[test]
    fn a_scheduled_item_waits_and_can_be_cancelled_until_it_goes() {
        let now = 1_000_000;
        let (_dir, mut store, item, _) = queued(now, Some(now + 3_600_000));
        assert_eq!(state(&store, item), "scheduled");
        assert!(
            store
                .claim_due(now, &everything())
                .expect("claim")
                .is_empty()
        );
        assert_eq!(store.cancel(item, now).expect("cancel"), "scheduled");
        assert_eq!(state(&store, item), "cancelled");
        assert!(store.cancel(item, now).is_err(), "once");
    }

    #[test]
    fn a_hard_report_bounces_a_sent_item_and_suppresses_only_its_recipient() {
        let now = 1_000_000;
        let (_dir, mut store, item, candidate) = queued(now, None);
        let report = |kind| Filed {
            placement: Placement::Candidate(candidate),
            reason: "bounce",
            detail: "a report",
            closed_thread: false,
            learn_address: None,
            report: Some(Report {
                item,
                kind,
                summary: "kim@example.org: 550 5.1.1 no such user",
                recipient: Some("kim@example.org"),
            }),
        };
        // About an item still queued: recorded as an event, nothing changes.
        store
            .write(|tx| tx.record(1, &report(ReportKind::Hard), now))
            .expect("early report");
        assert_eq!(state(&store, item), "queued");
        assert!(
            store
                .suppressed("kim@example.org", now)
                .expect("read")
                .is_none()
        );
        store.claim_due(now, &everything()).expect("claim");
        store
            .record_outcomes(
                &[(
                    item,
                    Outcome::Sent {
                        code: Some(250),
                        text: "250".into(),
                    },
                    now,
                )],
                &[],
            )
            .expect("sent");
        // A delay notice: an event only.
        store
            .write(|tx| tx.record(1, &report(ReportKind::Notice), now))
            .expect("notice");
        assert_eq!(state(&store, item), "sent");
        store
            .write(|tx| tx.record(1, &report(ReportKind::Hard), now))
            .expect("hard");
        assert_eq!(state(&store, item), "bounced");
        let s = store
            .suppressed("KIM@example.org", now)
            .expect("read")
            .expect("suppressed");
        assert_eq!(s.item, Some(item));
        assert!(
            store
                .suppressed("kim@example.org", now + SUPPRESSION_DAYS * 86_400_000 + 1)
                .expect("read")
                .is_none(),
            "expires"
        );
        assert_eq!(store.suppressions(now).expect("list").len(), 1);
        assert!(store.unsuppress("kim@example.org").expect("remove"));
    }

    #[test]
    fn an_items_end_and_a_mail_left_unassigned_are_events_for_the_webhooks() {
        let now = 1_000_000;
        let (_dir, mut store, item, candidate) = queued(now, None);
        let events: Vec<String> = crate::config::EVENTS
            .iter()
            .map(|e| e.to_string())
            .collect();
        store
            .set_webhook_endpoints(
                &[crate::store::webhooks::EndpointSpec {
                    id: "ats",
                    url: "https://ats.example/hooks",
                    events: &events,
                }],
                now,
            )
            .expect("endpoints");
        store.claim_due(now, &everything()).expect("claim");
        let sent = Outcome::Sent {
            code: Some(250),
            text: "250 2.0.0 queued as 4711".into(),
        };
        store
            .record_outcomes(&[(item, sent, now)], &[])
            .expect("sent");
        let report = Filed {
            placement: Placement::Candidate(candidate),
            reason: "bounce",
            detail: "a report",
            closed_thread: false,
            learn_address: None,
            report: Some(Report {
                item,
                kind: ReportKind::Hard,
                summary: "kim@example.org: 550 5.1.1 no such user",
                recipient: Some("kim@example.org"),
            }),
        };
        store.write(|tx| tx.record(1, &report, now)).expect("hard");
        let unassigned = Filed {
            placement: Placement::Unassigned(&[candidate]),
            reason: "conflict",
            detail: "two candidates",
            closed_thread: false,
            learn_address: None,
            report: None,
        };
        store
            .write(|tx| tx.record(1, &unassigned, now))
            .expect("unassigned");
        let mut due = Vec::new();
        // Each candidate's events one at a time, in order.
        loop {
            let batch = store.due_webhook_deliveries(now, 10).expect("due");
            if batch.is_empty() {
                break;
            }
            let ends: Vec<_> = batch
                .iter()
                .map(|d| {
                    (
                        d.endpoint.clone(),
                        d.event,
                        crate::store::webhooks::Attempt::Delivered { status: 200 },
                    )
                })
                .collect();
            store.record_webhook_attempts(&ends, now).expect("record");
            due.extend(batch);
        }
        let bodies: Vec<serde_json::Value> = due
            .iter()
            .map(|d| serde_json::from_str(&d.body).expect("JSON"))
            .collect();
        // The candidate's in the order they happened; the unassigned
        // mail's (nobody's) beside them.
        let kinds = |who: serde_json::Value| -> Vec<&str> {
            bodies
                .iter()
                .filter(|b| b["candidate"] == who)
                .map(|b| b["type"].as_str().unwrap())
                .collect()
        };
        assert_eq!(
            kinds(candidate.into()),
            ["outbox.sent", "outbox.bounced", "message.received"]
        );
        assert_eq!(kinds(serde_json::Value::Null), ["message.unassigned"]);
        let bodies: Vec<&serde_json::Value> = [
            "outbox.sent",
            "outbox.bounced",
            "message.received",
            "message.unassigned",
        ]
        .iter()
        .map(|k| bodies.iter().find(|b| b["type"] == *k).unwrap())
        .collect();
        assert_eq!(bodies[0]["candidate"], candidate);
        assert_eq!(bodies[0]["data"]["outbox"], item);
        assert_eq!(bodies[0]["data"]["code"], 250);
        assert_eq!(bodies[1]["data"]["code"], 550);
        assert_eq!(
            bodies[1]["data"]["reply"],
            "kim@example.org: 550 5.1.1 no such user"
        );
        assert_eq!(bodies[3]["candidate"], serde_json::Value::Null);
        assert_eq!(
            bodies[3]["data"]["suggestions"],
            serde_json::json!([candidate])
        );
        assert_eq!(bodies[3]["data"]["reason"], "conflict");

        // A permanent refusal: outbox.failed.
        let (_dir2, mut store, item, _) = queued(now, None);
        store
            .set_webhook_endpoints(
                &[crate::store::webhooks::EndpointSpec {
                    id: "ats",
                    url: "https://ats.example/hooks",
                    events: &events,
                }],
                now,
            )
            .expect("endpoints");
        store.claim_due(now, &everything()).expect("claim");
        let failed = Outcome::Failed {
            code: Some(550),
            text: "550 5.7.1 refused".into(),
        };
        store
            .record_outcomes(&[(item, failed, now)], &[])
            .expect("failed");
        let due = store.due_webhook_deliveries(now, 10).expect("due");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].kind, "outbox.failed");
    }
}
