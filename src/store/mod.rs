//! The store: the only module that knows SQL (SQLite today, `schema`).
//!
//! Its public surface is the seam a second backend (PostgreSQL, for several
//! instances) implements without touching a caller: [`Store`] (reads and
//! the operators' changes; each table group's methods in its own file:
//! `messages`, `candidates`, `outbox`, `status`, `history` for one mail's
//! life, and `backup` for copies of the database), [`Writer`] (the durable
//! path of inbound mail, group commit with `synchronous=FULL`, nothing
//! reported stored before its commit), the [`OnStored`] hook and the
//! transaction [`Tx`] the policy above reads and records through, and the
//! plain data types they take and return. No rusqlite type crosses it (the
//! layering test checks that nothing outside `store` names rusqlite).
//!
//! It must not parse mail, speak SMTP, or decide anything: which candidate
//! a mail belongs to and whether an acknowledgement goes out are decided
//! above it and handed in ([`filing`]).

// The store is where SQL lives (clippy.toml bans its types elsewhere).
#![allow(clippy::disallowed_types)]

pub mod backup;
pub mod candidates;
mod delivery;
pub mod documents;
pub mod filing;
pub mod history;
mod messages;
pub mod outbox;
mod schema;
mod search;
pub mod status;
mod suppressions;
pub mod webhooks;
mod writer;

pub use filing::{OnStored, Tx};
#[allow(unused_imports)]
use messages::*;
pub use messages::{CandidateRef, DocumentSummary, InboxEntry, InboxFilter, MessageDetail};
pub(crate) use schema::open;
#[allow(unused_imports)]
use writer::*;
pub use writer::{IncomingMessage, Pinger, Stored, Writer, fault_for_startup, panic_text};

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;
use serde::Serialize;

use crate::mail::parsed::{Envelope, Mailbox, ParsedMessage};

/// A store error: the mail was not stored, the client must try again later.
#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A bulk send queues its mails in transactions of at most this many …
pub const ENQUEUE_CHUNK_ITEMS: usize = 500;
/// … or this many bytes of mail.
pub const ENQUEUE_CHUNK_BYTES: usize = 16 * 1024 * 1024;

/// The document category given to attachments as they arrive.
pub const DEFAULT_DOCUMENT_CATEGORY: &str = "unsorted";

/// `execute` and `query_row` through the connection's statement cache: the
/// writer runs some fifty statements per mail, and preparing them again every
/// time was a tenth of the daemon's CPU at 5 KB ingest (BENCHMARKS.md).
trait Cached {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// The ids a one-column query returns.
fn ids(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(p, |r| r.get(0))?;
    rows.collect()
}

/// SHA-256 as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The database as the application layer and the relay use it: reads, and
/// the operators' changes, each group's methods in its own file. (The
/// daemon's inbound writes go through [`Writer`].)
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens an existing database (bringing its schema up to date); a
    /// missing file is an error, so that a mistyped path creates nothing.
    pub fn open(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(StoreError(format!(
                "no database at {} (has `jobmail serve` run with this config?)",
                path.display()
            )));
        }
        Ok(Store { conn: open(path)? })
    }

    /// Opens the database, creating it if needed, as `serve` does at its
    /// first start.
    pub fn create(path: &Path) -> Result<Store> {
        Ok(Store { conn: open(path)? })
    }

    /// For the relay's claims only: commits without their own fsync
    /// (`synchronous = NORMAL`; the WAL is synced by the next full commit,
    /// the outcomes' on their own connection). Losing a claim in a power
    /// cut loses nothing: the item is simply still `queued` and is sent,
    /// as an item left `sending` would be sent again at start.
    pub fn for_claims(self) -> Result<Store> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(self)
    }

    /// Runs `f` in one write transaction: committed if it returns `Ok`,
    /// rolled back otherwise. How the policy above the store records what
    /// it decides (see [`filing`]).
    pub fn write<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&Tx { conn: &tx })?;
        tx.commit()?;
        Ok(out)
    }
}

fn rfc3339(ms: i64) -> String {
    crate::clock::rfc3339_ms(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::sync::oneshot;

    /// What SQLite plans for `sql`, one line per step.
    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // Parameters left unbound: the plan does not depend on their values.
        stmt.raw_query()
            .mapped(|r| r.get::<_, String>(3))
            .map(|step| step.unwrap())
            .collect()
    }

    /// Big tables: a full scan of one grows with the store.
    const BIG_TABLES: [&str; 11] = [
        "messages",
        "message_recipients",
        "message_raw",
        "documents",
        "candidates",
        "candidate_addresses",
        "applications",
        "outbox",
        "outbox_events",
        "auto_replies",
        "message_suggestions",
    ];

    /// Every statement the writer runs to store and match the fixtures
    /// (applications, replies, forwards, bounces, robots, broken MIME) finds
    /// its rows through an index: ingest costs the same at a million
    /// messages as at a thousand.
    #[test]
    fn storing_and_matching_a_mail_scans_no_big_table() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("j.db")).unwrap();
        let world = crate::config::parse(
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/matching/world.toml"
            )),
            Path::new("world.toml"),
        )
        .unwrap();
        // The daemon's own filing policy, so that its statements are traced too.
        let filer = crate::app::filing::Filer::new(crate::matcher::Matching {
            directory: crate::config::company::Company::from_config(&world),
            key: crate::matcher::token::TokenKey::new([0x42; 32]),
        });
        let seen = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
        let record = seen.clone();
        conn.trace_v2(
            rusqlite::trace::TraceEventCodes::SQLITE_TRACE_STMT,
            Some(move |event: rusqlite::trace::TraceEvent<'_>| {
                if let rusqlite::trace::TraceEvent::Stmt(_, sql) = event {
                    record.lock().unwrap().insert(sql.to_string());
                }
            }),
        )
        .unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut files: Vec<_> = [root.clone(), root.join("matching")]
            .iter()
            .flat_map(|d| std::fs::read_dir(d).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort();
        assert!(files.len() > 40, "{files:?}");
        for (i, file) in files.iter().enumerate() {
            let content = std::fs::read(file).unwrap();
            let null_sender = file.to_string_lossy().contains("dsn");
            let (reply, _answer) = oneshot::channel();
            let job = WriteJob {
                message: IncomingMessage {
                    envelope: Envelope {
                        sender: if null_sender {
                            String::new()
                        } else {
                            "a@example.org".into()
                        },
                        recipients: vec!["jobs@acme.example".into()],
                        client_addr: "192.0.2.1".into(),
                        helo: "mx.example.org".into(),
                        session_id: format!("s{i}"),
                        received_at_ms: 1_790_000_000_000 + i as i64,
                        authentication: None,
                        tls: None,
                    },
                    trace: Vec::new(),
                    sha256: sha256_hex(&content),
                    parsed: Some(crate::inbound::parse::parse_message(&content, null_sender)),
                    content,
                },
                reply,
            };
            for result in commit_batch(&mut conn, &[job], &filer) {
                result.unwrap();
            }
        }
        conn.trace_v2(
            rusqlite::trace::TraceEventCodes::empty(),
            None::<fn(rusqlite::trace::TraceEvent<'_>)>,
        )
        .unwrap();
        let seen = seen.lock().unwrap().clone();
        // The lookups by sender, by thread and by bounced recipient all ran.
        for part in [
            "WHERE address_key = ?1",
            "WHERE (message_id = ?1 OR original_message_id = ?1)",
            "JOIN outbox o ON o.message_id = r.message_id",
        ] {
            assert!(
                seen.iter().any(|s| s.contains(part)),
                "{part} not run: {seen:#?}"
            );
        }
        let mut scans = Vec::new();
        for sql in seen.iter().filter(|s| !s.starts_with("--")) {
            let upper = sql.trim_start().to_uppercase();
            if !(upper.starts_with("SELECT")
                || upper.starts_with("INSERT")
                || upper.starts_with("UPDATE")
                || upper.starts_with("DELETE"))
            {
                continue; // SAVEPOINT, RELEASE, BEGIN, COMMIT
            }
            let steps = plan(&conn, sql);
            for step in &steps {
                let scanned = step
                    .strip_prefix("SCAN ")
                    .map(|rest| rest.split_whitespace().next().unwrap_or(""));
                if scanned.is_some_and(|t| BIG_TABLES.contains(&t)) {
                    scans.push(format!("{step}: {sql}"));
                }
            }
        }
        assert!(
            scans.is_empty(),
            "full scans of big tables:\n{}",
            scans.join("\n")
        );
    }

    /// A rare filter's rows (the few picked, sorted) and a common one's
    /// (newest first, filtered as they go) are the same mails in the same
    /// order, page by page; and the store picks the rare way only for few.
    #[test]
    fn the_inbox_lists_the_same_mails_whichever_way_it_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("j.db")).unwrap();
        // 300 mails of 30 candidates; every third a CV, some a contract.
        let mut sql = String::new();
        for c in 1..=30 {
            let status = if c % 7 == 0 { "hired" } else { "new" };
            let sub = if c % 2 == 0 { "acme-de" } else { "acme-fr" };
            sql.push_str(&format!(
                "INSERT INTO candidates (id, first_name, last_name, created_at) VALUES ({c}, 'K', 'T{c}', 0);
                 INSERT INTO applications (candidate_id, subsidiary, position, source, status, received_at)
                 VALUES ({c}, '{sub}', 'dev', 'email', '{status}', 0);"
            ));
        }
        for m in 1..=300 {
            let c = m % 30 + 1;
            sql.push_str(&format!(
                "INSERT INTO messages (id, received_at, session_id, envelope_sender, client_addr, helo,
                     size, sha256, subject, candidate_id, assignment)
                 VALUES ({m}, {m}, 's', 'a@b.c', '', '', 1, 'h{m}', 'Mail {m}', {c}, 'assigned');"
            ));
            if m % 3 == 0 {
                let category = if m % 27 == 0 { "contract" } else { "cv" };
                sql.push_str(&format!(
                    "INSERT INTO documents (message_id, part, filename, content_type, size, sha256, category, content)
                     VALUES ({m}, '2', 'f.pdf', 'application/pdf', 1, 'x', '{category}', x'00');"
                ));
            }
        }
        store.conn.execute_batch(&sql).unwrap();
        let ids = |filter: &InboxFilter, driver: Driver| -> Vec<i64> {
            let mut stmt = store
                .conn
                .prepare_cached(&inbox_sql(filter, driver))
                .unwrap();
            bind_named(&mut stmt, ":before", filter.before.unwrap_or(i64::MAX)).unwrap();
            bind_named(&mut stmt, ":limit", filter.limit as i64).unwrap();
            bind_named(&mut stmt, ":subsidiary", filter.subsidiary.as_deref()).unwrap();
            bind_named(&mut stmt, ":status", filter.status.as_deref()).unwrap();
            bind_named(&mut stmt, ":category", filter.category.as_deref()).unwrap();
            bind_named(
                &mut stmt,
                ":visible",
                filter
                    .visible
                    .as_ref()
                    .map(|v| serde_json::to_string(v).unwrap()),
            )
            .unwrap();
            stmt.raw_query()
                .mapped(|r| r.get::<_, i64>(0))
                .map(|r| r.unwrap())
                .collect()
        };
        let filters = [
            InboxFilter {
                status: Some("hired".into()),
                ..Default::default()
            },
            InboxFilter {
                subsidiary: Some("acme-de".into()),
                status: Some("new".into()),
                ..Default::default()
            },
            InboxFilter {
                category: Some("contract".into()),
                ..Default::default()
            },
            InboxFilter {
                category: Some("cv".into()),
                status: Some("hired".into()),
                ..Default::default()
            },
            InboxFilter {
                category: Some("cv".into()),
                visible: Some(vec!["acme-fr".into()]),
                ..Default::default()
            },
        ];
        for f in filters {
            for before in [None, Some(200)] {
                let f = InboxFilter {
                    limit: 7,
                    before,
                    ..f.clone()
                };
                let scanned = ids(&f, Driver::Scan);
                assert!(!scanned.is_empty(), "{f:?}");
                let rare = if f.subsidiary.is_some() || f.status.is_some() {
                    Driver::Applications
                } else {
                    Driver::Category
                };
                assert_eq!(ids(&f, rare), scanned, "{f:?}");
                // Few here: the store reads the rare way.
                assert_eq!(store.inbox_driver(&f).unwrap(), rare, "{f:?}");
                assert_eq!(
                    store
                        .inbox(&f)
                        .unwrap()
                        .iter()
                        .map(|e| e.id)
                        .collect::<Vec<_>>(),
                    scanned
                );
            }
        }
        // A user of few applications' subsidiaries: their candidates' mails
        // and the mails filed on nobody, merged, as a walk would find them.
        let mut nobody = String::new();
        for m in 301..=320 {
            nobody.push_str(&format!(
                "INSERT INTO messages (id, received_at, session_id, envelope_sender, client_addr, helo,
                     size, sha256, subject, assignment)
                 VALUES ({m}, {m}, 's', 'x@y.z', '', '', 1, 'h{m}', 'Frage {m}', 'unassigned');"
            ));
        }
        store.conn.execute_batch(&nobody).unwrap();
        for visible in [
            vec!["acme-fr"],
            vec!["acme-de", "acme-fr"],
            vec!["elsewhere"],
        ] {
            for (before, limit) in [(None, 7), (Some(310), 7), (Some(200), 7), (None, 400)] {
                let f = InboxFilter {
                    visible: Some(visible.iter().map(|v| v.to_string()).collect()),
                    before,
                    limit,
                    ..Default::default()
                };
                assert_eq!(store.inbox_driver(&f).unwrap(), Driver::Visible, "{f:?}");
                let listed: Vec<i64> = store.inbox(&f).unwrap().iter().map(|e| e.id).collect();
                assert_eq!(listed, ids(&f, Driver::Scan), "{f:?}");
            }
        }
        // Many: more than FEW applications in the status, read newest first.
        let mut more = String::new();
        for c in 31..=(31 + FEW) {
            more.push_str(&format!(
                "INSERT INTO candidates (id, first_name, last_name, created_at) VALUES ({c}, 'K', 'T', 0);
                 INSERT INTO applications (candidate_id, subsidiary, position, source, status, received_at)
                 VALUES ({c}, 'acme-de', 'dev', 'email', 'new', 0);"
            ));
        }
        store.conn.execute_batch(&more).unwrap();
        let common = InboxFilter {
            status: Some("new".into()),
            limit: 7,
            ..Default::default()
        };
        assert_eq!(store.inbox_driver(&common).unwrap(), Driver::Scan);
        assert_eq!(
            store
                .inbox(&common)
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect::<Vec<_>>(),
            ids(&common, Driver::Applications)
        );
    }

    /// Listings stay fast on a store of a million messages: each walks an
    /// index (or the ids) and never scans the messages or the outbox.
    /// A cached statement runs as prepared, whatever it is bound to. With
    /// SQLite's default, binding a new value to `x = ?1 ... ORDER BY` (and
    /// to a LEFT JOIN's lookup) expired the statement, so the filing of
    /// every mail parsed three statements again: a tenth of the writer's
    /// time under perf (5 KB mails, 8 sessions).
    #[test]
    fn a_statement_is_prepared_once_whatever_it_is_bound_to() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("j.db")).unwrap();
        for sql in [
            "SELECT candidate_id FROM candidate_addresses WHERE address_key = ?1 ORDER BY candidate_id",
            "SELECT id, filename, content_type FROM documents WHERE message_id = ?1 ORDER BY id",
            "SELECT m.match_reason, m.candidate_id, a.id, r.decision, r.rule
             FROM messages m
             LEFT JOIN applications a ON a.message_id = m.id
             LEFT JOIN auto_replies r ON r.application_id = a.id
             WHERE m.id = ?1 LIMIT 1",
        ] {
            for value in 1..=3 {
                let mut stmt = conn.prepare_cached(sql).unwrap();
                let rows = stmt.query_map([value], |_| Ok(())).unwrap().count();
                assert_eq!(rows, 0);
                assert_eq!(
                    stmt.get_status(rusqlite::StatementStatus::RePrepare),
                    0,
                    "prepared again for {value}: {sql}"
                );
            }
        }
    }

    /// The inbox is the mail received; a candidate's thread is both
    /// directions, our own mail marked as such.
    #[test]
    fn the_inbox_lists_received_mail_and_a_thread_both_directions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("j.db")).unwrap();
        store
            .conn
            .execute_batch(
                "INSERT INTO candidates (id, first_name, last_name, created_at) VALUES (1, 'Erika', 'Muster', 0);
                 INSERT INTO messages (id, received_at, session_id, envelope_sender, client_addr, helo,
                     size, sha256, subject, candidate_id, assignment)
                 VALUES (1, 1, 's', 'erika@example.org', '', '', 1, 'a', 'Bewerbung', 1, 'assigned');
                 INSERT INTO messages (id, received_at, session_id, envelope_sender, client_addr, helo,
                     size, sha256, subject, candidate_id, assignment, direction)
                 VALUES (2, 2, '', 'bounce+1@acme.example', '', '', 1, 'b', 'Ihre Bewerbung', 1,
                         'assigned', 'outbound');",
            )
            .unwrap();
        let ids = |f: InboxFilter| -> Vec<(i64, String)> {
            store
                .inbox(&InboxFilter { limit: 10, ..f })
                .unwrap()
                .into_iter()
                .map(|e| (e.id, e.direction))
                .collect()
        };
        let inbound = vec![(1, "inbound".to_string())];
        assert_eq!(ids(InboxFilter::default()), inbound);
        let search = |text: &str| InboxFilter {
            search: Some(text.into()),
            ..Default::default()
        };
        assert_eq!(ids(search("bewerbung")), inbound);
        assert_eq!(
            ids(InboxFilter {
                candidate: Some(1),
                ..Default::default()
            }),
            [(2, "outbound".to_string()), (1, "inbound".to_string())]
        );
    }

    /// A search finds the same mails, in the same order, whether they are
    /// indexed, still in the backlog (filed since the writer's last pass),
    /// or some of each.
    #[test]
    fn a_search_finds_the_same_mails_before_and_after_they_are_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create(&dir.path().join("j.db")).unwrap();
        let names = [
            "Jörg', 'Weiß",
            "ΣΟΦΙΑ', 'Παππά",
            "Li', 'Wei",
            "Anna', 'Schmidt",
        ];
        let mut sql = String::new();
        for (c, name) in names.iter().enumerate() {
            sql.push_str(&format!(
                "INSERT INTO candidates (id, first_name, last_name, created_at) VALUES ({}, '{name}', 0);",
                c + 1
            ));
        }
        for m in 1..=80 {
            let (candidate, assignment) = match m % 5 {
                0 => ("NULL", "unassigned"),
                k => (&*k.to_string(), "assigned"),
            };
            let subject = [
                "Bewerbung",
                "Rückfrage zum Termin",
                "Zeugnis",
                "Li Wei: CV",
                "Ölmühle",
            ][m % 5];
            sql.push_str(&format!(
                "INSERT INTO messages (id, received_at, session_id, envelope_sender, client_addr, helo,
                     size, sha256, from_name, subject, candidate_id, assignment)
                 VALUES ({m}, {m}, 's', 'a@b.c', '', '', 1, 'h{m}', 'Sender {m}', '{subject} {m}',
                         {candidate}, '{assignment}');"
            ));
        }
        // Jörg applied to acme-de: a user of acme-de sees his mails and
        // the ones filed on nobody.
        sql.push_str(
            "INSERT INTO applications (candidate_id, subsidiary, position, source, status, received_at)
             VALUES (1, 'acme-de', 'dev', 'email', 'new', 0);",
        );
        store.conn.execute_batch(&sql).unwrap();
        let texts = ["jorg", "bewerbung", "li", "sender 7", "frage", "nobody"];
        let restricted = |store: &Store| {
            for text in texts {
                for before in [None, Some(60)] {
                    let f = |visible: Option<Vec<String>>, limit| InboxFilter {
                        search: Some(text.into()),
                        before,
                        visible,
                        limit,
                        ..Default::default()
                    };
                    let seen: Vec<i64> = store
                        .inbox(&f(None, 100))
                        .unwrap()
                        .into_iter()
                        .filter(|e| e.candidate.as_ref().is_none_or(|c| c.id == 1))
                        .map(|e| e.id)
                        .take(7)
                        .collect();
                    let only = f(Some(vec!["acme-de".into()]), 7);
                    assert_eq!(store.inbox_driver(&only).unwrap(), Driver::Visible);
                    let listed: Vec<i64> =
                        store.inbox(&only).unwrap().iter().map(|e| e.id).collect();
                    assert_eq!(listed, seen, "{text} below {before:?}");
                }
            }
        };
        let filters: Vec<InboxFilter> = [
            ("jorg", None, false),
            ("WEISS", Some(1), false),
            ("σοφια", None, false),
            ("παππα", Some(2), false),
            ("li", None, false),
            ("termin", None, false),
            ("olmuh", None, true),
            ("sender 7", None, false),
            ("nobody", None, false),
        ]
        .into_iter()
        .flat_map(|(text, candidate, unassigned)| {
            [None, Some(60)].map(|before| InboxFilter {
                search: Some(text.into()),
                candidate,
                unassigned,
                before,
                limit: 7,
                ..Default::default()
            })
        })
        .collect();
        let ids = |store: &Store| -> Vec<Vec<i64>> {
            filters
                .iter()
                .map(|f| store.inbox(f).unwrap().iter().map(|e| e.id).collect())
                .collect()
        };
        let waiting: i64 = store
            .conn
            .query_row("SELECT count(*) FROM search_backlog", [], |r| r.get(0))
            .unwrap();
        assert_eq!(waiting, 80);
        let in_backlog = ids(&store);
        restricted(&store);
        assert_eq!(in_backlog[0], [76, 71, 66, 61, 56, 51, 46], "Jörg's mails");
        // (Each text twice: from the newest, and below 60.)
        assert_eq!(
            in_backlog[4],
            [77, 72, 67, 62, 57, 52, 47],
            "ΣΟΦΙΑ's, any case"
        );
        assert_eq!(
            in_backlog[9],
            [58, 53, 48, 43, 38, 33, 28],
            "Li Wei's, 'li'"
        );
        assert!(in_backlog[16].is_empty());
        // Half indexed (the oldest), half waiting; then all indexed.
        search::index_backlog(&mut store.conn, 40).unwrap();
        assert_eq!(ids(&store), in_backlog);
        restricted(&store);
        search::index_backlog(&mut store.conn, search::BACKLOG_PASS).unwrap();
        let waiting: i64 = store
            .conn
            .query_row("SELECT count(*) FROM search_backlog", [], |r| r.get(0))
            .unwrap();
        assert_eq!(waiting, 0);
        assert_eq!(ids(&store), in_backlog);
        restricted(&store);
    }

    #[test]
    fn every_listing_walks_an_index_and_scans_no_big_table() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("j.db")).unwrap();
        let inbox = |unassigned, candidate, before| InboxFilter {
            unassigned,
            candidate,
            before,
            ..Default::default()
        };
        let queue =
            |states: &[&str], subsidiary: Option<&str>, batch: Option<&str>| outbox::QueueFilter {
                states: states.iter().map(|s| s.to_string()).collect(),
                subsidiary: subsidiary.map(str::to_string),
                batch: batch.map(str::to_string),
                before: Some(99),
                ..Default::default()
            };
        // Each listing and the index it must walk.
        let cases = [
            (
                inbox_sql(&inbox(false, None, None), Driver::Scan),
                "SEARCH m USING INTEGER PRIMARY KEY",
            ),
            (
                inbox_sql(&inbox(true, None, None), Driver::Scan),
                "messages_assignment",
            ),
            (
                inbox_sql(&inbox(false, Some(5), Some(1000)), Driver::Scan),
                "messages_candidate",
            ),
            (
                inbox_sql(&inbox(true, Some(5), None), Driver::Scan),
                "SEARCH m USING INDEX messages_",
            ),
            (
                inbox_sql(
                    &InboxFilter {
                        search: Some("Lebenslauf".into()),
                        subsidiary: Some("acme-de".into()),
                        category: Some("cv".into()),
                        visible: Some(vec!["acme-de".into()]),
                        ..inbox(false, None, Some(10))
                    },
                    Driver::Search,
                ),
                "SCAN s VIRTUAL TABLE INDEX",
            ),
            (
                inbox_sql(
                    &InboxFilter {
                        search: Some("Li".into()),
                        ..inbox(false, None, None)
                    },
                    Driver::Search,
                ),
                "SCAN s VIRTUAL TABLE INDEX",
            ),
            (
                inbox_sql(
                    &InboxFilter {
                        position: Some("dev".into()),
                        status: Some("new".into()),
                        category: Some("cv".into()),
                        visible: Some(vec!["acme-de".into()]),
                        ..inbox(false, None, None)
                    },
                    Driver::Scan,
                ),
                "SEARCH m USING INTEGER PRIMARY KEY",
            ),
            // A common category: each mail's own documents are looked at.
            (
                inbox_sql(
                    &InboxFilter {
                        category: Some("cv".into()),
                        ..inbox(false, None, None)
                    },
                    Driver::Scan,
                ),
                "USING INDEX documents_message (message_id=?)",
            ),
            // A user of few applications' subsidiaries: their candidates,
            // then each one's mails; and the mails filed on nobody.
            (
                inbox_sql(
                    &InboxFilter {
                        visible: Some(vec!["acme-de".into()]),
                        ..inbox(false, None, Some(10))
                    },
                    Driver::Visible,
                ),
                "applications_subsidiary",
            ),
            (
                inbox_sql(
                    &InboxFilter {
                        visible: Some(vec!["acme-de".into()]),
                        ..inbox(false, None, Some(10))
                    },
                    Driver::Nobody,
                ),
                "SEARCH m USING INDEX messages_candidate (candidate_id=? AND id<?)",
            ),
            // The backlog (a second of mail), each of its mails by id.
            (
                inbox_sql(
                    &InboxFilter {
                        search: Some("Lebenslauf".into()),
                        category: Some("cv".into()),
                        visible: Some(vec!["acme-de".into()]),
                        ..inbox(false, None, Some(10))
                    },
                    Driver::Backlog,
                ),
                "SEARCH m USING INTEGER PRIMARY KEY",
            ),
            // A rare filter reads the few mails it picks, then sorts them.
            (
                inbox_sql(
                    &InboxFilter {
                        status: Some("hired".into()),
                        category: Some("cv".into()),
                        ..inbox(false, None, None)
                    },
                    Driver::Applications,
                ),
                "SEARCH m USING INDEX messages_candidate",
            ),
            (
                inbox_sql(
                    &InboxFilter {
                        category: Some("contract".into()),
                        ..inbox(false, None, None)
                    },
                    Driver::Category,
                ),
                "SEARCH d USING INDEX documents_category",
            ),
            (
                outbox::list_sql(&queue(&[], None, None)).0,
                "SEARCH o USING INTEGER PRIMARY KEY",
            ),
            (
                outbox::list_sql(&queue(&["deferred"], None, None)).0,
                "outbox_state",
            ),
            (
                outbox::list_sql(&queue(&["sent", "deferred", "sent"], Some("acme"), None)).0,
                "outbox_state",
            ),
            (
                outbox::list_sql(&queue(&[], None, Some("b"))).0,
                "outbox_batch",
            ),
        ];
        for (sql, index) in &cases {
            let steps = plan(&conn, sql);
            for step in &steps {
                // A sort of the inbox would read every match before the
                // first row (the queue sorts its per-state pages, each cut).
                assert!(
                    !(step.contains("TEMP B-TREE")
                        && sql.contains("m.match_reason")
                        && !sql.contains("picked")),
                    "sorted after the fact: {steps:#?}\nfor {sql}"
                );
                assert!(
                    !(step.starts_with("SCAN m") || step.starts_with("SCAN o")),
                    "a full scan in {steps:#?}\nfor {sql}"
                );
            }
            assert!(
                steps.iter().any(|s| s.contains(index)),
                "{index} not used: {steps:#?}\nfor {sql}"
            );
        }
    }
}
