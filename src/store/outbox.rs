//! The outbox: one item per outgoing mail to one candidate, its frozen bytes
//! stored in the candidate's thread like an inbound mail, and every change
//! of state recorded as an event in the same transaction.
//!
//! SQL only. Composing the bytes is `crate::outbound::compose`'s job; delivering them
//! is the relay's.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use super::filing::Report;
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
fn event(
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
fn coded_event(
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

fn state_of(conn: &Connection, id: i64) -> Result<String> {
    conn.row("SELECT state FROM outbox WHERE id = ?1", params![id], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| StoreError(format!("no outbox item {id}")))
}

/// One change of state, if the item is still in `from`; with its event.
fn transition(
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
    if !["scheduled", "queued", "deferred"].contains(&state.as_str()) {
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

/// A due item taken by the relay: what it needs to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub subsidiary: String,
    pub envelope_from: String,
    pub recipients: Vec<String>,
    /// The frozen bytes: the same on every attempt.
    pub bytes: Vec<u8>,
    /// This attempt's number, from 1.
    pub attempt: i64,
    pub created_at_ms: i64,
    /// The state it was claimed from (`queued` or `deferred`), to go back
    /// to if the attempt does not start after all.
    pub from_state: String,
}

/// How many due items to claim: per subsidiary with an upstream, and for
/// all other subsidiaries together.
#[derive(Debug, Clone, Default)]
pub struct ClaimLimits {
    pub per_subsidiary: Vec<(String, usize)>,
    /// Items of subsidiaries not listed (no usable upstream: they defer).
    pub others: usize,
}

/// A due item as read: id, subsidiary, envelope sender, recipients (JSON),
/// message, state, attempts, created at.
type DueRow = (i64, String, String, String, i64, String, i64, i64);

/// Takes up to `limit` due items (queued, or deferred whose time has come)
/// and marks them `sending`, all in one transaction.
/// Claims due items, no more than `limits` allows for each subsidiary
/// (the relay asks for what its free connections and rate limits can send
/// now): `sending`, one more attempt, their frozen bytes loaded.
pub(super) fn claim_due(
    conn: &mut Connection,
    now_ms: i64,
    limits: &ClaimLimits,
) -> Result<Vec<Claimed>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let due_row = |r: &rusqlite::Row| -> rusqlite::Result<DueRow> {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        ))
    };
    let mut rows: Vec<DueRow> = Vec::new();
    for (subsidiary, limit) in limits.per_subsidiary.iter().filter(|(_, l)| *l > 0) {
        let mut stmt = tx.prepare_cached(
            "SELECT id, subsidiary, envelope_from, recipients_json, message_id, state, attempts,
                    coalesce(lifetime_from, created_at)
             FROM outbox WHERE subsidiary = ?3 AND state IN ('queued', 'deferred') AND held = 0
               AND next_attempt_at <= ?1
               AND NOT EXISTS (SELECT 1 FROM upstreams WHERE subsidiary = ?3 AND paused_until > ?1)
             ORDER BY next_attempt_at, id LIMIT ?2",
        )?;
        let found = stmt.query_map(params![now_ms, *limit as i64, subsidiary], due_row)?;
        rows.extend(found.collect::<rusqlite::Result<Vec<_>>>()?);
    }
    if limits.others > 0 {
        let listed: Vec<&str> = limits
            .per_subsidiary
            .iter()
            .map(|(s, _)| s.as_str())
            .collect();
        let mut stmt = tx.prepare_cached(
            "SELECT id, subsidiary, envelope_from, recipients_json, message_id, state, attempts,
                    coalesce(lifetime_from, created_at)
             FROM outbox WHERE state IN ('queued', 'deferred') AND held = 0 AND next_attempt_at <= ?1
               AND subsidiary NOT IN (SELECT value FROM json_each(?3))
             ORDER BY next_attempt_at, id LIMIT ?2",
        )?;
        let found = stmt.query_map(
            params![
                now_ms,
                limits.others as i64,
                serde_json::to_string(&listed).unwrap_or_else(|_| "[]".into())
            ],
            due_row,
        )?;
        rows.extend(found.collect::<rusqlite::Result<Vec<_>>>()?);
    }
    let mut claimed = Vec::with_capacity(rows.len());
    for (id, subsidiary, envelope_from, recipients, message, state, attempts, created_at_ms) in rows
    {
        let bytes: Vec<u8> = tx.row(
            "SELECT raw FROM message_raw WHERE message_id = ?1",
            params![message],
            |r| r.get(0),
        )?;
        tx.exec(
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_at = ?2 WHERE id = ?1",
            params![id, now_ms],
        )?;
        event(&tx, id, Some(&state), "sending", "", now_ms)?;
        claimed.push(Claimed {
            id,
            subsidiary,
            envelope_from,
            recipients: serde_json::from_str(&recipients).unwrap_or_default(),
            bytes,
            attempt: attempts + 1,
            created_at_ms,
            from_state: state,
        });
    }
    tx.commit()?;
    Ok(claimed)
}

/// Whether anything is due to be sent now (a read: it takes no lock, so
/// the relay may ask it often).
pub(super) fn anything_due(conn: &Connection, now_ms: i64) -> Result<bool> {
    Ok(conn
        .row(
            "SELECT 1 FROM outbox WHERE state IN ('queued', 'deferred') AND next_attempt_at <= ?1
               AND held = 0 LIMIT 1",
            params![now_ms],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Gives back a claimed item whose attempt did not start (the upstream
/// was paused meanwhile, or the relay is stopping): its state and attempt
/// count as before the claim, due again at `due_ms`.
pub(super) fn unclaim(
    conn: &mut Connection,
    item: &Claimed,
    due_ms: i64,
    why: &str,
    now_ms: i64,
) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let n = tx.exec(
        "UPDATE outbox SET state = ?2, attempts = attempts - 1, next_attempt_at = ?3, updated_at = ?4
         WHERE id = ?1 AND state = 'sending'",
        params![item.id, item.from_state, due_ms, now_ms],
    )?;
    if n == 1 {
        event(&tx, item.id, Some("sending"), &item.from_state, why, now_ms)?;
    }
    tx.commit()?;
    Ok(())
}

/// How an attempt ended, as the relay decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        code: Option<u16>,
        text: String,
    },
    /// Try again at `next_ms`.
    Deferred {
        code: Option<u16>,
        text: String,
        next_ms: i64,
    },
    Failed {
        code: Option<u16>,
        text: String,
    },
}

/// Records the ends of attempts, `(item, outcome, at)`: `sending` → sent,
/// deferred or failed, all in one commit.
pub(super) fn record_outcomes(
    conn: &mut Connection,
    outcomes: &[(i64, Outcome, i64)],
    upstreams: &[(UpstreamState, i64)],
) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for (state, at) in upstreams {
        set_upstream_state(&tx, state, *at)?;
    }
    for (id, outcome, now_ms) in outcomes {
        let (to, code, text, next) = match outcome {
            Outcome::Sent { code, text } => ("sent", code, text, None),
            Outcome::Deferred {
                code,
                text,
                next_ms,
            } => ("deferred", code, text, Some(*next_ms)),
            Outcome::Failed { code, text } => ("failed", code, text, None),
        };
        let n = tx.exec(
            "UPDATE outbox SET state = ?2, updated_at = ?3, last_reply = ?4,
                    next_attempt_at = coalesce(?5, next_attempt_at)
             WHERE id = ?1 AND state = 'sending'",
            params![id, to, now_ms, text, next],
        )?;
        if n == 1 {
            coded_event(
                &tx,
                *id,
                Some("sending"),
                to,
                code.map(i64::from),
                text,
                *now_ms,
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// After a crash or kill: items left `sending` may or may not have reached
/// the upstream. They are tried again now, with the same bytes and
/// Message-ID (at least once; a repeat is recognisable as one).
pub(super) fn recover_sending(conn: &mut Connection, now_ms: i64) -> Result<usize> {
    recover_sending_except(
        conn,
        &[],
        now_ms,
        now_ms,
        "interrupted: jobmail stopped during the send; trying again with the same bytes",
    )
}

/// Items `sending` that no attempt of ours holds (`held`), unchanged since
/// before `older_than_ms`: an outcome that could not be recorded, a send
/// that died. Due again now, with the same bytes.
pub(super) fn recover_sending_except(
    conn: &mut Connection,
    held: &[i64],
    older_than_ms: i64,
    now_ms: i64,
    why: &str,
) -> Result<usize> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let ids: Vec<i64> = ids(
        &tx,
        "SELECT id FROM outbox WHERE state = 'sending' AND updated_at <= ?1",
        params![older_than_ms],
    )?
    .into_iter()
    .filter(|id| !held.contains(id))
    .collect();
    for &id in &ids {
        tx.exec(
            "UPDATE outbox SET state = 'deferred', next_attempt_at = ?2, updated_at = ?2 WHERE id = ?1",
            params![id, now_ms],
        )?;
        event(&tx, id, Some("sending"), "deferred", why, now_ms)?;
    }
    tx.commit()?;
    Ok(ids.len())
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

/// Carries out an operator's action; returns how many items it touched.
pub(super) fn act(conn: &mut Connection, action: Action, now_ms: i64) -> Result<usize> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let n = match action {
        Action::Retry(id) => {
            let state = state_of(&tx, id)?;
            if !["queued", "deferred", "failed"].contains(&state.as_str()) {
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
            if !["scheduled", "queued", "deferred"].contains(&state.as_str()) {
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

/// How long a hard-bounced address stays suppressed.
pub const SUPPRESSION_DAYS: i64 = 180;

/// A verified delivery report about an item: a
/// failure makes a `sent` item, or a `deferred` one (the report came after
/// a retry), `bounced`; a permanent one also suppresses the recipient it
/// names, which the matcher checked is the item's. An item in any other
/// state (queued, sending, failed, …) is not changed: its own outcome
/// stands. A delay or relay notice is recorded as an event only.
pub(super) fn record_bounce(conn: &Connection, bounce: &Report<'_>, now_ms: i64) -> Result<()> {
    use super::filing::ReportKind as Kind;
    let state = state_of(conn, bounce.item)?;
    let code: Option<i64> = bounce
        .summary
        .split(": ")
        .nth(1)
        .and_then(|d| d.get(..3))
        .and_then(|c| c.parse().ok());
    if bounce.kind == Kind::Notice {
        return event(
            conn,
            bounce.item,
            Some(&state),
            &state,
            &format!("delivery report: {}", bounce.summary),
            now_ms,
        );
    }
    let n = conn.exec(
        "UPDATE outbox SET state = 'bounced', last_reply = ?2, updated_at = ?3
         WHERE id = ?1 AND state IN ('sent', 'deferred')",
        params![bounce.item, bounce.summary, now_ms],
    )?;
    if n == 0 {
        return event(
            conn,
            bounce.item,
            Some(&state),
            &state,
            &format!(
                "delivery report while {state}, not applied: {}",
                bounce.summary
            ),
            now_ms,
        );
    }
    if n == 1 {
        coded_event(
            conn,
            bounce.item,
            Some(&state),
            "bounced",
            code,
            &format!("{:?} bounce: {}", bounce.kind, bounce.summary),
            now_ms,
        )?;
    }
    if bounce.kind == Kind::Hard
        && let Some(address) = bounce.recipient
    {
        conn.exec(
            "INSERT INTO suppressions (address_key, address, reason, item_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(address_key) DO UPDATE SET reason = excluded.reason, item_id = excluded.item_id,
                 created_at = excluded.created_at, expires_at = excluded.expires_at",
            params![
                address.to_lowercase(),
                address,
                bounce.summary,
                bounce.item,
                now_ms,
                now_ms + SUPPRESSION_DAYS * 86_400_000
            ],
        )?;
    }
    Ok(())
}

/// An address not written to because it bounced hard.
#[derive(Debug, Clone, Serialize)]
pub struct Suppression {
    pub address: String,
    pub reason: String,
    pub item: Option<i64>,
    pub since: String,
    pub until: String,
}

fn suppression_row(r: &rusqlite::Row) -> rusqlite::Result<Suppression> {
    Ok(Suppression {
        address: r.get(0)?,
        reason: r.get(1)?,
        item: r.get(2)?,
        since: rfc3339(r.get(3)?),
        until: rfc3339(r.get(4)?),
    })
}

/// The suppression of an address, if one is in force at `now_ms`.
pub(super) fn suppressed(
    conn: &Connection,
    address: &str,
    now_ms: i64,
) -> Result<Option<Suppression>> {
    Ok(conn
        .row(
            "SELECT address, reason, item_id, created_at, expires_at FROM suppressions
             WHERE address_key = ?1 AND expires_at > ?2",
            params![address.to_lowercase(), now_ms],
            suppression_row,
        )
        .optional()?)
}

pub(super) fn suppressions(conn: &Connection, now_ms: i64) -> Result<Vec<Suppression>> {
    let mut stmt = conn.prepare(
        "SELECT address, reason, item_id, created_at, expires_at FROM suppressions
         WHERE expires_at > ?1 ORDER BY created_at DESC",
    )?;
    let rows = stmt.query_map(params![now_ms], suppression_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn unsuppress(conn: &Connection, address: &str) -> Result<bool> {
    Ok(conn.exec(
        "DELETE FROM suppressions WHERE address_key = ?1",
        params![address.to_lowercase()],
    )? == 1)
}

/// A subsidiary's upstream as the circuit breaker sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UpstreamState {
    pub subsidiary: String,
    /// Consecutive connection or 4xx failures.
    pub failures: i64,
    /// Unix ms; no mail of the subsidiary is tried before.
    pub paused_until: Option<i64>,
    pub pause_ms: i64,
    pub last_error: Option<String>,
}

fn upstream_row(r: &rusqlite::Row) -> rusqlite::Result<UpstreamState> {
    Ok(UpstreamState {
        subsidiary: r.get(0)?,
        failures: r.get(1)?,
        paused_until: r.get(2)?,
        pause_ms: r.get(3)?,
        last_error: r.get(4)?,
    })
}

pub(super) fn upstream_state(conn: &Connection, subsidiary: &str) -> Result<UpstreamState> {
    Ok(conn
        .row(
            "SELECT subsidiary, failures, paused_until, pause_ms, last_error FROM upstreams WHERE subsidiary = ?1",
            params![subsidiary],
            upstream_row,
        )
        .optional()?
        .unwrap_or_else(|| UpstreamState {
            subsidiary: subsidiary.to_string(),
            ..Default::default()
        }))
}

pub(super) fn set_upstream_state(conn: &Connection, s: &UpstreamState, now_ms: i64) -> Result<()> {
    conn.exec(
        "INSERT INTO upstreams (subsidiary, failures, paused_until, pause_ms, last_error, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(subsidiary) DO UPDATE SET failures = excluded.failures, paused_until = excluded.paused_until,
             pause_ms = excluded.pause_ms, last_error = excluded.last_error, updated_at = excluded.updated_at",
        params![s.subsidiary, s.failures, s.paused_until, s.pause_ms, s.last_error, now_ms],
    )?;
    Ok(())
}

pub(super) fn paused_upstreams(conn: &Connection, now_ms: i64) -> Result<Vec<UpstreamState>> {
    let mut stmt = conn.prepare_cached(
        "SELECT subsidiary, failures, paused_until, pause_ms, last_error FROM upstreams
         WHERE paused_until > ?1 ORDER BY subsidiary",
    )?;
    let rows = stmt.query_map(params![now_ms], upstream_row)?;
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
    pub fn cancel(&mut self, item: i64, now_ms: i64) -> Result<String> {
        cancel(&mut self.conn, item, now_ms)
    }

    /// Queues the scheduled items that are due at `now_ms` (or cancels them, saying why).
    pub fn promote_due(&mut self, now_ms: i64) -> Result<Vec<Promoted>> {
        promote_due(&mut self.conn, now_ms)
    }

    /// The relay takes due items (marked `sending`), leaving paused upstreams' mail alone.
    pub fn claim_due(&mut self, now_ms: i64, limits: &ClaimLimits) -> Result<Vec<Claimed>> {
        claim_due(&mut self.conn, now_ms, limits)
    }

    pub fn anything_due(&self, now_ms: i64) -> Result<bool> {
        anything_due(&self.conn, now_ms)
    }

    pub fn unclaim(&mut self, item: &Claimed, due_ms: i64, why: &str, now_ms: i64) -> Result<()> {
        unclaim(&mut self.conn, item, due_ms, why, now_ms)
    }

    pub fn recover_sending_except(
        &mut self,
        held: &[i64],
        older_than_ms: i64,
        now_ms: i64,
    ) -> Result<usize> {
        recover_sending_except(
            &mut self.conn,
            held,
            older_than_ms,
            now_ms,
            "no attempt holds it (its outcome was never recorded): trying again with the same bytes",
        )
    }

    /// The breaker state of a subsidiary's upstream.
    pub fn upstream_state(&self, subsidiary: &str) -> Result<UpstreamState> {
        upstream_state(&self.conn, subsidiary)
    }

    pub fn set_upstream_state(&self, state: &UpstreamState, now_ms: i64) -> Result<()> {
        set_upstream_state(&self.conn, state, now_ms)
    }

    /// Upstreams paused at `now_ms`.
    pub fn paused_upstreams(&self, now_ms: i64) -> Result<Vec<UpstreamState>> {
        paused_upstreams(&self.conn, now_ms)
    }

    /// The relay records the ends of attempts, `(item, outcome, at)`, in one commit.
    /// Outcomes, and the circuit breakers' states they led to (the newest
    /// per upstream), in one commit.
    pub fn record_outcomes(
        &mut self,
        outcomes: &[(i64, Outcome, i64)],
        upstreams: &[(UpstreamState, i64)],
    ) -> Result<()> {
        record_outcomes(&mut self.conn, outcomes, upstreams)
    }

    /// Puts items left `sending` by a crash back in line, due now.
    pub fn recover_sending(&mut self, now_ms: i64) -> Result<usize> {
        recover_sending(&mut self.conn, now_ms)
    }

    /// Operator actions on the outbox (retry, hold, release, delete, flush).
    pub fn queue_action(&mut self, action: Action, now_ms: i64) -> Result<usize> {
        act(&mut self.conn, action, now_ms)
    }

    /// The suppression of an address in force now, if any.
    pub fn suppressed(&self, address: &str, now_ms: i64) -> Result<Option<Suppression>> {
        suppressed(&self.conn, address, now_ms)
    }

    /// Suppressions in force.
    pub fn suppressions(&self, now_ms: i64) -> Result<Vec<Suppression>> {
        suppressions(&self.conn, now_ms)
    }

    /// Lifts a suppression; false if there was none.
    pub fn unsuppress(&self, address: &str) -> Result<bool> {
        unsuppress(&self.conn, address)
    }

    /// The recorded history of an outbox item.
    pub fn events(&self, item: i64) -> Result<Vec<Event>> {
        events(&self.conn, item)
    }
}

#[cfg(test)]
mod tests {
    use super::super::filing::{Filed, Placement, ReportKind};
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
}
