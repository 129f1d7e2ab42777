//! What `jobmail status` and the metrics exporter read besides the queue
//! counts (`outbox_counts`, [`Store::queue_summary`]): the store's file
//! sizes, the oldest deferred item, the breaker of every upstream, and the
//! acknowledgement decisions of a window. Each query walks an index; none
//! counts over a table's history.

#[allow(unused_imports)]
use super::*;
use rusqlite::{OptionalExtension, params};

use super::outbox::UpstreamState;

/// The database file and its write-ahead log, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StoreFiles {
    pub database_bytes: u64,
    /// 0 when there is no WAL file (after a clean close).
    pub wal_bytes: u64,
}

/// The deferred item waiting longest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeferredItem {
    pub id: i64,
    pub subsidiary: String,
    pub created_at_ms: i64,
    pub next_attempt_at_ms: Option<i64>,
    pub attempts: i64,
    pub last_reply: Option<String>,
}

/// How many acknowledgement decisions of a kind (and rule) were recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionCount {
    /// `pending`, `queued`, `suppressed` or `failed`.
    pub decision: String,
    /// Why suppressed (`rate-limit`, `robot-sender`, …); `None` otherwise.
    pub rule: Option<String>,
    pub count: i64,
}

const OLDEST_DEFERRED: &str =
    "SELECT id, subsidiary, created_at, next_attempt_at, attempts, last_reply
     FROM outbox WHERE state = 'deferred' ORDER BY id LIMIT 1";

// The window, not the history: without statistics SQLite would rather walk
// auto_replies_decision for the grouping.
const DECISIONS: &str =
    "SELECT decision, rule, count(*) FROM auto_replies INDEXED BY auto_replies_created
     WHERE created_at >= ?1 GROUP BY decision, rule ORDER BY decision, rule";

impl Store {
    /// The sizes of the database file and of its `-wal` beside it.
    pub fn files(&self) -> Result<StoreFiles> {
        let path = self
            .conn
            .path()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| StoreError("the store has no file".into()))?;
        let size = |p: &str| match std::fs::metadata(p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(StoreError(format!("cannot read the size of {p}: {e}"))),
        };
        Ok(StoreFiles {
            database_bytes: size(path)?,
            wal_bytes: size(&format!("{path}-wal"))?,
        })
    }

    /// How many filed mails wait for the search index: a second's worth
    /// while the daemon runs (a small table: counting it is cheap).
    pub fn search_backlog(&self) -> Result<i64> {
        Ok(self
            .conn
            .row("SELECT count(*) FROM search_backlog", [], |r| r.get(0))?)
    }

    /// The deferred item that has waited longest (the oldest by id).
    pub fn oldest_deferred(&self) -> Result<Option<DeferredItem>> {
        Ok(self
            .conn
            .row(OLDEST_DEFERRED, [], |r| {
                Ok(DeferredItem {
                    id: r.get(0)?,
                    subsidiary: r.get(1)?,
                    created_at_ms: r.get(2)?,
                    next_attempt_at_ms: r.get(3)?,
                    attempts: r.get(4)?,
                    last_reply: r.get(5)?,
                })
            })
            .optional()?)
    }

    /// The breaker of every upstream that has had one (one row per
    /// subsidiary that has sent), by subsidiary.
    pub fn upstream_states(&self) -> Result<Vec<UpstreamState>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT subsidiary, failures, paused_until, pause_ms, last_error FROM upstreams
             ORDER BY subsidiary",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(UpstreamState {
                subsidiary: r.get(0)?,
                failures: r.get(1)?,
                paused_until: r.get(2)?,
                pause_ms: r.get(3)?,
                last_error: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The acknowledgement decisions recorded since `since_ms`, counted by
    /// decision and rule.
    pub fn acknowledgement_decisions(&self, since_ms: i64) -> Result<Vec<DecisionCount>> {
        let mut stmt = self.conn.prepare_cached(DECISIONS)?;
        let rows = stmt.query_map(params![since_ms], |r| {
            Ok(DecisionCount {
                decision: r.get(0)?,
                rule: r.get(1)?,
                count: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_reads_walk_an_index_and_see_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("jobmail.db")).unwrap();
        let files = store.files().unwrap();
        assert!(files.database_bytes > 0, "{files:?}");
        assert_eq!(store.oldest_deferred().unwrap(), None);
        assert!(store.upstream_states().unwrap().is_empty());
        assert!(store.acknowledgement_decisions(0).unwrap().is_empty());
        for (sql, table) in [(OLDEST_DEFERRED, "outbox"), (DECISIONS, "auto_replies")] {
            let mut stmt = store
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            // Parameters left unbound: the plan does not depend on them.
            let plan: Vec<String> = stmt
                .raw_query()
                .mapped(|r| r.get::<_, String>(3))
                .map(|s| s.unwrap())
                .collect();
            assert!(
                plan.iter()
                    .any(|step| step.starts_with(&format!("SEARCH {table} USING"))),
                "{sql}: {plan:?}"
            );
            assert!(
                !plan
                    .iter()
                    .any(|step| step.starts_with(&format!("SCAN {table}"))),
                "{sql}: {plan:?}"
            );
        }
    }
}
