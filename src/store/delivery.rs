//! The relay's side of the outbox: claiming due items per upstream,
//! putting back what did not start, recording outcomes in one commit,
//! recovering items left `sending`, and each upstream's circuit breaker.
//!
//! SQL only: when to retry and what a reply means are the relay's.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::outbox::{coded_event, event};
use super::{Cached, Result, Store, ids, webhooks};

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
            if to != "deferred" {
                emit_outcome(&tx, *id, &format!("outbox.{to}"), *code, text, *now_ms)?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// `outbox.sent`, `outbox.failed`, `outbox.bounced`: an item's end, with
/// the upstream's (or the report's) reply.
pub(super) fn emit_outcome(
    conn: &Connection,
    item: i64,
    kind: &str,
    code: Option<u16>,
    reply: &str,
    at_ms: i64,
) -> Result<()> {
    if !webhooks::wanted(conn, kind)? {
        return Ok(());
    }
    let facts = webhooks::outbox_facts(conn, item)?;
    webhooks::emit(
        conn,
        kind,
        facts.map(|(candidate, _)| candidate),
        || {
            Ok(serde_json::json!({
                "outbox": item,
                "message": facts.map(|(_, message)| message),
                "code": code,
                "reply": reply,
            }))
        },
        at_ms,
    )
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
}
