//! The records of one mail's life, for `jobmail log`: the mail as
//! received, the application it made and its acknowledgement decision,
//! the outbox items that went out for it (its own, for our outbound mail)
//! with every event and upstream reply, and the delivery reports about
//! them. Every read walks an index from the mail or the item.
//!
//! SQL only: the timeline is put together by `app::history`.

#[allow(unused_imports)]
use super::*;
use rusqlite::{OptionalExtension, params};

use super::outbox::{Event, QueueEntry, QueueFilter};

// The statements, each walking an index from the mail or the item
// (`tests::every_history_read_walks_an_index`).
const ITEMS_OF_MESSAGE: &str = "SELECT id FROM outbox WHERE message_id = ?1 ORDER BY id";
const ITEM: &str = "SELECT message_id, candidate_id FROM outbox WHERE id = ?1";
/// The mail an acknowledgement answered, through the candidate's
/// decisions (auto_replies has no index on its item).
const ANSWERED: &str = "SELECT a.message_id FROM auto_replies r
    JOIN applications a ON a.id = r.application_id
    WHERE r.candidate_id = ?1 AND r.item_id = ?2 AND a.message_id IS NOT NULL";
const APPLICATIONS: &str = "SELECT id, subsidiary, position, received_at FROM applications
    WHERE message_id = ?1 ORDER BY id";
const ACKNOWLEDGEMENT: &str = "SELECT created_at, decision, rule, detail, item_id FROM auto_replies
    WHERE application_id = ?1 ORDER BY id DESC LIMIT 1";
/// Reports are filed in the candidate's thread and name the item in
/// their detail ("… outbox item 45 …").
const REPORTS: &str =
    "SELECT id, received_at, match_reason, coalesce(match_detail, '') FROM messages
    WHERE candidate_id = ?1 AND id > ?2 AND match_reason IN ('bounce', 'unverified-report')
    ORDER BY id";

/// An application a mail made, with its acknowledgement decision.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryApplication {
    pub id: i64,
    pub subsidiary: String,
    pub position: Option<String>,
    pub received_at: String,
    pub acknowledgement: Option<HistoryAcknowledgement>,
}

/// An acknowledgement decision as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryAcknowledgement {
    pub decided_at: String,
    /// `pending`, `queued`, `suppressed` or `failed`.
    pub decision: String,
    pub rule: Option<String>,
    pub detail: String,
    pub item: Option<i64>,
}

/// A delivery report filed about an item.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryReport {
    pub message: i64,
    pub received_at: String,
    /// `bounce` (verified) or `unverified-report`.
    pub reason: String,
    pub detail: String,
}

/// An outbox item with its events and the reports about it.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryItem {
    #[serde(flatten)]
    pub item: QueueEntry,
    pub events: Vec<Event>,
    pub reports: Vec<HistoryReport>,
}

/// Everything stored about one mail's life.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub message: MessageDetail,
    pub applications: Vec<HistoryApplication>,
    pub items: Vec<HistoryItem>,
}

impl Store {
    /// The life of message `id`: for a mail received, its application and
    /// the acknowledgement that went out for it; for our own, its item.
    pub fn history_of_message(&self, id: i64) -> Result<Option<History>> {
        let Some(message) = self.message(id)? else {
            return Ok(None);
        };
        let applications = self.applications_of_message(id)?;
        let mut item_ids: Vec<i64> = applications
            .iter()
            .filter_map(|a| a.acknowledgement.as_ref().and_then(|r| r.item))
            .collect();
        item_ids.extend(ids(&self.conn, ITEMS_OF_MESSAGE, params![id])?);
        item_ids.sort_unstable();
        item_ids.dedup();
        let mut items = Vec::with_capacity(item_ids.len());
        for item in item_ids {
            if let Some(h) = self.history_item(item)? {
                items.push(h);
            }
        }
        Ok(Some(History {
            message,
            applications,
            items,
        }))
    }

    /// The life of outbox item `id`: an acknowledgement's is that of the
    /// mail it answered (from RCPT to sent); any other's, its own mail's.
    pub fn history_of_item(&self, id: i64) -> Result<Option<History>> {
        let Some((message, candidate)) = self
            .conn
            .row(ITEM, params![id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()?
        else {
            return Ok(None);
        };
        // The mail whose application this item acknowledged, if any.
        let answered: Option<i64> = self
            .conn
            .row(ANSWERED, params![candidate, id], |r| r.get(0))
            .optional()?;
        match answered {
            Some(inbound) => self.history_of_message(inbound),
            None => {
                let Some(mut history) = self.history_of_message(message)? else {
                    return Ok(None);
                };
                history.items.retain(|i| i.item.id == id);
                Ok(Some(history))
            }
        }
    }

    fn applications_of_message(&self, id: i64) -> Result<Vec<HistoryApplication>> {
        let mut stmt = self.conn.prepare_cached(APPLICATIONS)?;
        let rows = stmt.query_map(params![id], |r| {
            Ok(HistoryApplication {
                id: r.get(0)?,
                subsidiary: r.get(1)?,
                position: r.get(2)?,
                received_at: rfc3339(r.get(3)?),
                acknowledgement: None,
            })
        })?;
        let mut applications = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        for a in &mut applications {
            a.acknowledgement = self
                .conn
                .row(ACKNOWLEDGEMENT, params![a.id], |r| {
                    Ok(HistoryAcknowledgement {
                        decided_at: rfc3339(r.get(0)?),
                        decision: r.get(1)?,
                        rule: r.get(2)?,
                        detail: r.get(3)?,
                        item: r.get(4)?,
                    })
                })
                .optional()?;
        }
        Ok(applications)
    }

    fn history_item(&self, id: i64) -> Result<Option<HistoryItem>> {
        let Some(item) = self
            .queue_filtered(&QueueFilter {
                item: Some(id),
                limit: 1,
                ..Default::default()
            })?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let events = self.events(id)?;
        let mut stmt = self.conn.prepare_cached(REPORTS)?;
        let reports = stmt
            .query_map(params![item.candidate, item.message], |r| {
                Ok(HistoryReport {
                    message: r.get(0)?,
                    received_at: rfc3339(r.get(1)?),
                    reason: r.get(2)?,
                    detail: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .filter(|r| names_item(&r.detail, id))
            .collect();
        Ok(Some(HistoryItem {
            item,
            events,
            reports,
        }))
    }
}

/// Whether a report's detail names outbox item `id` (and not `id` with
/// more digits after it).
fn names_item(detail: &str, id: i64) -> bool {
    let named = format!("outbox item {id}");
    detail
        .match_indices(&named)
        .any(|(at, _)| !detail[at + named.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No read of a mail's history scans a table that grows with the store.
    #[test]
    fn every_history_read_walks_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("j.db")).unwrap();
        for sql in [
            ITEMS_OF_MESSAGE,
            ITEM,
            ANSWERED,
            APPLICATIONS,
            ACKNOWLEDGEMENT,
            REPORTS,
        ] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let steps: Vec<String> = stmt
                .raw_query()
                .mapped(|r| r.get::<_, String>(3))
                .map(|s| s.unwrap())
                .collect();
            assert!(
                steps.iter().all(|s| !s.starts_with("SCAN ")),
                "{sql}: {steps:#?}"
            );
        }
    }

    #[test]
    fn a_report_names_its_item_and_not_one_with_a_longer_id() {
        let detail = "delivery report for outbox item 45: failed 5.1.1";
        assert!(names_item(detail, 45));
        assert!(!names_item(detail, 4));
        assert!(names_item("about outbox item 4 (x); nothing changed", 4));
        assert!(!names_item("about outbox item 450", 45));
    }
}
