//! Verified delivery reports applied to outbox items, and the addresses
//! not written to after a hard bounce.
//!
//! SQL only: which reports are genuine is the matcher's to decide.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::filing::Report;
use super::outbox::{coded_event, event, state_of};
use super::{Cached, Result, Store, rfc3339};

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
        super::delivery::emit_outcome(
            conn,
            bounce.item,
            "outbox.bounced",
            code.and_then(|c| u16::try_from(c).ok()),
            bounce.summary,
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

impl Store {
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
}
