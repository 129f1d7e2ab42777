//! The SQLite store: schema, migrations, the durable write path and the reads
//! the CLI needs.
//!
//! This is the only module that opens SQLite or holds SQL, so that another
//! backend can be added later without touching the rest. Writes go through a
//! single writer thread that commits whatever mails are waiting in one
//! transaction (group commit) with `synchronous=FULL`, and only then answers
//! each waiting session: nothing is reported stored before its commit.
//! A checkpoint thread of its own copies the WAL into the database file, so
//! commits do not wait for that. Listings build their SQL from the filters
//! asked for, so that each walks an index and the cost stays flat as the
//! store grows. It must not parse mail or speak SMTP.

pub mod candidates;
pub mod filing;
pub mod outbox;

pub use filing::{OnStored, Tx};

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

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

/// Schema migrations, applied in order; `PRAGMA user_version` counts how many ran.
/// Append only: never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: inbound messages, their envelope recipients, raw bytes and documents.
    r#"
    CREATE TABLE messages (
        id              INTEGER PRIMARY KEY,
        direction       TEXT    NOT NULL DEFAULT 'inbound',
        received_at     INTEGER NOT NULL,           -- unix ms, final dot received
        session_id      TEXT    NOT NULL,
        envelope_sender TEXT    NOT NULL,           -- '' for the null sender
        client_addr     TEXT    NOT NULL,
        helo            TEXT    NOT NULL,
        size            INTEGER NOT NULL,           -- bytes as stored (trace headers included)
        sha256          TEXT    NOT NULL,           -- of the bytes the client sent: dedup key
        from_name       TEXT,
        from_addr       TEXT,
        to_json         TEXT    NOT NULL DEFAULT '[]',
        cc_json         TEXT    NOT NULL DEFAULT '[]',
        reply_to_json   TEXT    NOT NULL DEFAULT '[]',
        subject         TEXT,
        date            TEXT,
        message_id      TEXT,
        in_reply_to_json TEXT   NOT NULL DEFAULT '[]',
        references_json TEXT    NOT NULL DEFAULT '[]',
        auto_submitted  TEXT,
        list_id         TEXT,
        precedence      TEXT,
        automatic       INTEGER NOT NULL DEFAULT 0,
        delivery_report INTEGER NOT NULL DEFAULT 0,
        parsed          INTEGER NOT NULL DEFAULT 1  -- 0: parser failed, raw kept
    );
    CREATE UNIQUE INDEX messages_sha256 ON messages(sha256);
    CREATE INDEX messages_message_id ON messages(message_id);
    CREATE INDEX messages_from_addr ON messages(from_addr);

    CREATE TABLE message_recipients (
        message_id INTEGER NOT NULL REFERENCES messages(id),
        address    TEXT    NOT NULL,
        PRIMARY KEY (message_id, address)
    ) WITHOUT ROWID;

    CREATE TABLE message_raw (
        message_id INTEGER PRIMARY KEY REFERENCES messages(id),
        trace_len  INTEGER NOT NULL,                -- bytes of our Return-Path/Received
        raw        BLOB    NOT NULL
    );

    CREATE TABLE documents (
        id           INTEGER PRIMARY KEY,
        message_id   INTEGER REFERENCES messages(id),
        part         TEXT    NOT NULL,
        filename     TEXT    NOT NULL,
        content_type TEXT    NOT NULL,
        size         INTEGER NOT NULL,
        sha256       TEXT    NOT NULL,
        category     TEXT    NOT NULL DEFAULT 'unsorted',
        content      BLOB    NOT NULL
    );
    CREATE INDEX documents_message ON documents(message_id);
    "#,
    // 2: candidates, applications, and each message's place in a thread.
    r#"
    CREATE TABLE candidates (
        id          INTEGER PRIMARY KEY,
        first_name  TEXT    NOT NULL DEFAULT '',
        last_name   TEXT    NOT NULL DEFAULT '',
        gender      TEXT    NOT NULL DEFAULT 'unknown'
                    CHECK (gender IN ('female', 'male', 'diverse', 'unknown')),
        language    TEXT,
        created_at  INTEGER NOT NULL,
        merged_into INTEGER REFERENCES candidates(id)   -- set when merged into another record
    );

    CREATE TABLE candidate_addresses (
        candidate_id INTEGER NOT NULL REFERENCES candidates(id),
        address      TEXT    NOT NULL,                  -- as written, domain lowercased
        address_key  TEXT    NOT NULL,                  -- lowercased, for lookups
        added_at     INTEGER NOT NULL,
        PRIMARY KEY (address_key, candidate_id)
    ) WITHOUT ROWID;
    CREATE INDEX candidate_addresses_candidate ON candidate_addresses(candidate_id);

    CREATE TABLE applications (
        id           INTEGER PRIMARY KEY,
        candidate_id INTEGER NOT NULL REFERENCES candidates(id),
        subsidiary   TEXT    NOT NULL,
        position     TEXT,                              -- NULL: general application
        source       TEXT    NOT NULL CHECK (source IN ('email', 'form')),
        status       TEXT    NOT NULL DEFAULT 'new'
                     CHECK (status IN ('new', 'in-review', 'interview', 'offer', 'hired', 'rejected', 'withdrawn')),
        received_at  INTEGER NOT NULL,
        message_id   INTEGER REFERENCES messages(id)    -- the mail that made it, for e-mail applications
    );
    CREATE INDEX applications_candidate ON applications(candidate_id);

    ALTER TABLE messages ADD COLUMN original_message_id TEXT;     -- X-Microsoft-Original-Message-ID
    ALTER TABLE messages ADD COLUMN candidate_id INTEGER REFERENCES candidates(id);
    ALTER TABLE messages ADD COLUMN assignment TEXT NOT NULL DEFAULT 'pending'
        CHECK (assignment IN ('pending', 'assigned', 'unassigned', 'none'));
    ALTER TABLE messages ADD COLUMN match_reason TEXT;
    ALTER TABLE messages ADD COLUMN match_detail TEXT;
    ALTER TABLE messages ADD COLUMN closed_thread INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX messages_original_message_id ON messages(original_message_id);
    CREATE INDEX messages_candidate ON messages(candidate_id, id);
    CREATE INDEX messages_assignment ON messages(assignment, id);

    CREATE TABLE message_suggestions (
        message_id   INTEGER NOT NULL REFERENCES messages(id),
        candidate_id INTEGER NOT NULL REFERENCES candidates(id),
        PRIMARY KEY (message_id, candidate_id)
    ) WITHOUT ROWID;
    "#,
    // 3: the outbox: one item per outgoing mail, its frozen bytes in the
    // thread (messages, direction 'outbound'), every state change an event.
    r#"
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        batch_id        TEXT    NOT NULL,
        candidate_id    INTEGER NOT NULL REFERENCES candidates(id),
        application_id  INTEGER REFERENCES applications(id),
        message_id      INTEGER NOT NULL REFERENCES messages(id),
        template        TEXT,
        subsidiary      TEXT    NOT NULL,
        sender          TEXT    NOT NULL,                -- sender id ('default': the jobs address)
        envelope_from   TEXT    NOT NULL,
        recipients_json TEXT    NOT NULL,                -- envelope: the candidate, an archive Bcc
        state           TEXT    NOT NULL CHECK (state IN
            ('scheduled', 'queued', 'sending', 'sent', 'deferred', 'failed', 'cancelled', 'bounced')),
        not_before      INTEGER,                         -- scheduled: not before this (unix ms)
        next_attempt_at INTEGER,                         -- when the relay may try (unix ms)
        attempts        INTEGER NOT NULL DEFAULT 0,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL,
        last_reply      TEXT
    );
    CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
    CREATE INDEX outbox_candidate ON outbox(candidate_id);
    CREATE INDEX outbox_batch ON outbox(batch_id);

    CREATE TABLE outbox_events (
        id         INTEGER PRIMARY KEY,
        item_id    INTEGER NOT NULL REFERENCES outbox(id),
        at         INTEGER NOT NULL,
        from_state TEXT,
        to_state   TEXT    NOT NULL,
        attempt    INTEGER NOT NULL DEFAULT 0,
        code       INTEGER,
        text       TEXT    NOT NULL DEFAULT ''
    );
    CREATE INDEX outbox_events_item ON outbox_events(item_id, id);
    "#,
    // 4: an operator may hold an item (postsuper -h): the relay leaves it alone.
    r#"
    ALTER TABLE outbox ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
    "#,
    // 5: addresses that bounced hard are not written to until they expire
    // or an operator removes them.
    r#"
    CREATE TABLE suppressions (
        address_key TEXT PRIMARY KEY,                    -- lowercased
        address     TEXT    NOT NULL,
        reason      TEXT    NOT NULL,
        item_id     INTEGER,                             -- the outbox item that bounced
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 6: the circuit breaker of each subsidiary's upstream, for the relay
    // and for `queue list`.
    r#"
    CREATE TABLE upstreams (
        subsidiary   TEXT PRIMARY KEY,
        failures     INTEGER NOT NULL DEFAULT 0,            -- consecutive
        paused_until INTEGER,                               -- unix ms
        pause_ms     INTEGER NOT NULL DEFAULT 0,            -- the last pause's length
        last_error   TEXT,
        updated_at   INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 7: every acknowledgement decision, on the application it answers.
    r#"
    CREATE TABLE auto_replies (
        id             INTEGER PRIMARY KEY,
        application_id INTEGER NOT NULL REFERENCES applications(id),
        candidate_id   INTEGER NOT NULL REFERENCES candidates(id),
        category       TEXT,
        source         TEXT    NOT NULL,                 -- email | form
        address        TEXT    NOT NULL,                 -- lowercased: whom it would go to
        decision       TEXT    NOT NULL CHECK (decision IN ('pending', 'queued', 'suppressed', 'failed')),
        rule           TEXT,                             -- why suppressed
        detail         TEXT    NOT NULL DEFAULT '',
        template       TEXT,
        sender         TEXT,
        item_id        INTEGER REFERENCES outbox(id),
        created_at     INTEGER NOT NULL
    );
    CREATE INDEX auto_replies_decision ON auto_replies(decision);
    CREATE INDEX auto_replies_candidate ON auto_replies(candidate_id, category, created_at);
    CREATE INDEX auto_replies_address ON auto_replies(address, created_at);
    "#,
    // 8: a store of a million messages: every listing walks an index newest
    // first, and the outbox's per-state totals are kept as items change
    // instead of being counted over its whole history.
    r#"
    CREATE INDEX outbox_state ON outbox(state, id);
    CREATE INDEX outbox_message ON outbox(message_id);
    CREATE INDEX auto_replies_application ON auto_replies(application_id, id);
    CREATE INDEX applications_message ON applications(message_id);
    -- A delivery report that names only the recipient finds our mail to it.
    CREATE INDEX message_recipients_address ON message_recipients(address COLLATE NOCASE);

    CREATE TABLE outbox_counts (
        state TEXT    PRIMARY KEY,
        items INTEGER NOT NULL,
        bytes INTEGER NOT NULL                        -- the mails' sizes
    ) WITHOUT ROWID;
    INSERT INTO outbox_counts (state, items, bytes)
        SELECT o.state, count(*), coalesce(sum(m.size), 0)
        FROM outbox o LEFT JOIN messages m ON m.id = o.message_id GROUP BY o.state;
    CREATE TRIGGER outbox_counts_insert AFTER INSERT ON outbox BEGIN
        INSERT INTO outbox_counts (state, items, bytes)
            VALUES (new.state, 1, coalesce((SELECT size FROM messages WHERE id = new.message_id), 0))
            ON CONFLICT (state) DO UPDATE SET items = items + 1, bytes = bytes + excluded.bytes;
    END;
    CREATE TRIGGER outbox_counts_update AFTER UPDATE OF state ON outbox
        WHEN old.state IS NOT new.state BEGIN
        UPDATE outbox_counts SET items = items - 1,
            bytes = bytes - coalesce((SELECT size FROM messages WHERE id = old.message_id), 0)
            WHERE state = old.state;
        INSERT INTO outbox_counts (state, items, bytes)
            VALUES (new.state, 1, coalesce((SELECT size FROM messages WHERE id = new.message_id), 0))
            ON CONFLICT (state) DO UPDATE SET items = items + 1, bytes = bytes + excluded.bytes;
    END;
    CREATE TRIGGER outbox_counts_delete AFTER DELETE ON outbox BEGIN
        UPDATE outbox_counts SET items = items - 1,
            bytes = bytes - coalesce((SELECT size FROM messages WHERE id = old.message_id), 0)
            WHERE state = old.state;
    END;
    "#,
    // 9: what SPF, DKIM, DMARC and ARC said of a mail on receipt (JSON of
    // model::Authentication; NULL when not checked).
    r#"
    ALTER TABLE messages ADD COLUMN authentication_json TEXT;
    -- The hourly limit over all acknowledgements counts the last hour only.
    CREATE INDEX auto_replies_created ON auto_replies(created_at);
    "#,
    // 10: the relay claims per subsidiary, as many as its upstream can take.
    r#"
    CREATE INDEX outbox_due_subsidiary ON outbox(subsidiary, state, next_attempt_at);
    "#,
    // 11: `queue retry` of a failed item starts its queue lifetime again.
    r#"
    ALTER TABLE outbox ADD COLUMN lifetime_from INTEGER;
    "#,
    // 12: the mail had more documents than are kept (the raw mail has them all).
    r#"
    ALTER TABLE messages ADD COLUMN documents_truncated INTEGER NOT NULL DEFAULT 0;
    "#,
    // 13: where a candidate's language came from (matcher::language::
    // LanguageSource: form, content-language, detected). Until now only
    // Content-Language set one.
    r#"
    ALTER TABLE candidates ADD COLUMN language_source TEXT;
    UPDATE candidates SET language_source = 'content-language' WHERE language IS NOT NULL;
    "#,
    // 14: the TLS of the session a mail came in, as negotiated (version
    // and cipher, mail::parsed::TlsInfo); NULL: in the clear, or our own.
    r#"
    ALTER TABLE messages ADD COLUMN tls_version TEXT;
    ALTER TABLE messages ADD COLUMN tls_cipher TEXT;
    "#,
];

/// A bulk send queues its mails in transactions of at most this many …
pub const ENQUEUE_CHUNK_ITEMS: usize = 500;
/// … or this many bytes of mail.
pub const ENQUEUE_CHUNK_BYTES: usize = 16 * 1024 * 1024;

/// The document category given to attachments as they arrive.
pub const DEFAULT_DOCUMENT_CATEGORY: &str = "unsorted";

/// Page size of a new database. Measured (BENCHMARKS.md): 16 KiB pages cut
/// the system calls per 1 MB mail by four and raised 1 MB ingest by about a
/// fifth, but every commit of small mails then writes 16 KiB per touched
/// index page, and 5 KB ingest at one session fell by more than a quarter.
/// Most recruiting mail is small, so the store keeps SQLite's 4 KiB.
const PAGE_SIZE: i64 = 4096;

/// Opens (creating if needed) the database file and brings its schema up to date.
pub fn open(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut conn = Connection::open(path)
        .map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Only a new, empty database takes it (before WAL mode is set).
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Savepoint and statement journals in memory: no temporary file created
    // and removed for every batch (they only serve a rollback, never a crash).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Statements are prepared once per connection (`Cached`, `prepare_cached`).
    conn.set_prepared_statement_cache_capacity(256);
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError(format!(
            "database schema version {version} is newer than this jobmail ({known}); upgrade jobmail"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// A complete mail as received, handed to the writer.
#[derive(Debug)]
pub struct IncomingMessage {
    pub envelope: Envelope,
    /// Our `Return-Path:` and `Received:` lines, stored in front of `content`.
    pub trace: Vec<u8>,
    /// The bytes the client meant, dot-unstuffed, exactly as sent.
    pub content: Vec<u8>,
    /// SHA-256 of `content`, hex.
    pub sha256: String,
    /// `None` when the parser failed: the raw bytes are still stored.
    pub parsed: Option<ParsedMessage>,
}

/// What the writer did with a mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New(i64),
    /// The same bytes were stored before (a client retrying after a lost 250).
    Duplicate(i64),
}

impl Stored {
    pub fn id(self) -> i64 {
        match self {
            Stored::New(id) | Stored::Duplicate(id) => id,
        }
    }
}

struct WriteJob {
    message: IncomingMessage,
    reply: oneshot::Sender<Result<Stored>>,
}

/// Most mails or bytes committed in one transaction.
const MAX_BATCH_MESSAGES: usize = 256;
const MAX_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// The writer's page cache (KiB): a batch's pages stay in memory until its
/// commit writes them to the WAL once, instead of spilling mid-transaction
/// (which also copies pages into the savepoint journal).
const WRITER_CACHE_KIB: i64 = 40 * 1024;

/// WAL size after which the checkpointer copies the WAL into the database
/// file, and after which the writer does so itself, waiting for it, because
/// the checkpointer has fallen behind (a long reader, a slow disk).
const CHECKPOINT_BYTES: i64 = 8 * 1024 * 1024;
const WRITER_CHECKPOINT_BYTES: i64 = 64 * 1024 * 1024;

/// Handle to the writer thread. Cloning is cheap; the thread ends when the
/// last handle is dropped and the waiting mails are committed.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<WriteJob>,
}

impl Writer {
    /// Opens the database and starts the writer thread, which matches each
    /// new mail in the transaction that stores it.
    pub fn start(
        path: &Path,
        on_stored: Arc<dyn OnStored>,
    ) -> Result<(Writer, std::thread::JoinHandle<()>)> {
        let mut conn = open(path)?;
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        // In pages of this database, which may predate PAGE_SIZE.
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let checkpoint_pages = (CHECKPOINT_BYTES / page_size.max(512)) as i32;
        let writer_checkpoint_pages = (WRITER_CHECKPOINT_BYTES / page_size.max(512)) as i32;
        // Checkpoints run on a thread of their own, so that the writer's
        // commits (and the sessions waiting for them) do not wait while the
        // WAL is copied into the database file and synced.
        let checkpoints = Checkpointer::start(path)?;
        conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: i32| {
            if pages >= writer_checkpoint_pages {
                // The checkpointer has fallen behind: this commit (already
                // durable) waits until the WAL is copied and starts over, so
                // the WAL stays bounded and the writer slows to the disk's
                // pace. Measured: with PASSIVE here the WAL kept growing and
                // sustained 1 MB ingest fell by a third after 1.5 GB.
                let _ = wal.checkpoint_v2(rusqlite::wal::CheckpointMode::RESTART);
            } else if pages >= checkpoint_pages {
                checkpoints.due();
            }
            Ok(())
        }))?;
        let (tx, rx) = mpsc::channel::<WriteJob>(1024);
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, rx, &*on_stored))?;
        Ok((Writer { tx }, handle))
    }

    /// Stores one mail; returns only after the transaction holding it has committed.
    pub async fn store(&self, message: IncomingMessage) -> Result<Stored> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(WriteJob { message, reply })
            .await
            .map_err(|_| StoreError("store writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError("store writer dropped the mail".into()))?
    }
}

/// Wakes the checkpoint thread; it ends when the writer's hook is dropped.
struct Checkpointer {
    wake: std::sync::mpsc::SyncSender<()>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer> {
        let conn = open(path)?;
        let (wake, due) = std::sync::mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                while due.recv().is_ok() {
                    // PASSIVE: copies what no reader still needs, never waits
                    // for the writer; the writer restarts the WAL once all of
                    // it is in the database file.
                    if let Err(e) = conn.wal_checkpoint_v2(None::<&str>, rusqlite::wal::CheckpointMode::PASSIVE) {
                        tracing::warn!(error = %e, "store: checkpoint failed; the writer will retry");
                    }
                }
            })?;
        Ok(Checkpointer { wake })
    }

    /// Asks for a checkpoint; one already asked for covers this one too.
    fn due(&self) {
        let _ = self.wake.try_send(());
    }
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<WriteJob>, on_stored: &dyn OnStored) {
    while let Some(first) = rx.blocking_recv() {
        let mut bytes = first.message.content.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_MESSAGES && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.message.content.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let results = commit_batch(&mut conn, &batch, on_stored);
        for (job, result) in batch.into_iter().zip(results) {
            // A session that went away no longer waits; its mail is stored all the same.
            let _ = job.reply.send(result);
        }
    }
}

/// One transaction for the whole batch; each mail in its own savepoint so that
/// one failure does not take the others down. If the commit fails, all fail.
fn commit_batch(
    conn: &mut Connection,
    batch: &[WriteJob],
    on_stored: &dyn OnStored,
) -> Vec<Result<Stored>> {
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "store: cannot begin a transaction");
            return batch
                .iter()
                .map(|_| Err(StoreError(format!("begin failed: {e}"))))
                .collect();
        }
    };
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let outcome = (|| {
            let mut sp = tx.savepoint()?;
            if let Some(parsed) = &job.message.parsed {
                fault("writer-panic", parsed);
            }
            let stored = insert_message(&sp, &job.message)?;
            if let Stored::New(id) = stored {
                file_new_message(&mut sp, id, &job.message, on_stored);
            }
            sp.commit()?;
            Ok::<_, StoreError>(stored)
        })();
        if let Err(e) = &outcome {
            tracing::error!(session = %job.message.envelope.session_id, error = %e, "store: insert failed");
        }
        results.push(outcome);
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => {
            tracing::error!(error = %e, "store: commit failed");
            batch
                .iter()
                .map(|_| Err(StoreError(format!("commit failed: {e}"))))
                .collect()
        }
    }
}

/// Files a just-inserted mail in a savepoint of its own: if filing fails,
/// the mail stays stored as `pending` and is filed again at the next start.
fn file_new_message(
    conn: &mut rusqlite::Savepoint<'_>,
    id: i64,
    message: &IncomingMessage,
    on_stored: &dyn OnStored,
) {
    // A panic while filing (a bug meeting a mail no test had) costs the
    // match, never the mail or the writer: the savepoint unwinds, the mail
    // stays pending, the batch commits.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        conn.savepoint().map_err(StoreError::from).and_then(|sp| {
            if let Some(parsed) = &message.parsed {
                fault("match-panic", parsed);
            }
            on_stored.on_stored(
                &Tx { conn: &sp },
                id,
                message.parsed.as_ref(),
                &message.envelope,
            )?;
            sp.commit()?;
            Ok(())
        })
    }))
    .unwrap_or_else(|panic| {
        Err(StoreError(format!(
            "filing panicked: {}",
            panic_text(&panic)
        )))
    });
    if let Err(e) = outcome {
        tracing::error!(message = id, error = %e, "matching failed; left pending");
    }
}

/// The message of a caught panic.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Fault injection for the end-to-end tests, in debug builds only:
/// `JOBMAIL_FAULT=<kind>` panics at the place of that kind for a mail whose
/// subject is `FAULT`. Release builds compile it to nothing.
fn fault(kind: &str, parsed: &ParsedMessage) {
    if cfg!(debug_assertions)
        && parsed.headers.subject.as_deref() == Some("FAULT")
        && std::env::var("JOBMAIL_FAULT").is_ok_and(|v| v == kind)
    {
        panic!("injected fault: {kind}");
    }
}

/// The same fault while `serve` matches the mails left pending at start.
pub fn fault_for_startup(parsed: &ParsedMessage) {
    fault("match-panic", parsed);
}

/// The TLS columns of a message as one value (both or neither).
fn tls_info(
    version: Option<String>,
    cipher: Option<String>,
) -> Option<crate::mail::parsed::TlsInfo> {
    Some(crate::mail::parsed::TlsInfo {
        version: version?,
        cipher: cipher?,
    })
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn insert_message(conn: &Connection, m: &IncomingMessage) -> Result<Stored> {
    let existing: Option<i64> = conn
        .row(
            "SELECT id FROM messages WHERE sha256 = ?1",
            params![m.sha256],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = existing {
        // Same bytes again: keep one copy, but lose no envelope recipient.
        add_recipients(conn, id, &m.envelope.recipients)?;
        return Ok(Stored::Duplicate(id));
    }
    let default = ParsedMessage::default();
    let p = m.parsed.as_ref().unwrap_or(&default);
    let h = &p.headers;
    let size = (m.trace.len() + m.content.len()) as i64;
    conn.exec(
        "INSERT INTO messages (received_at, session_id, envelope_sender, client_addr, helo, size, sha256,
            from_name, from_addr, to_json, cc_json, reply_to_json, subject, date, message_id,
            in_reply_to_json, references_json, auto_submitted, list_id, precedence,
            automatic, delivery_report, parsed, original_message_id, authentication_json, documents_truncated,
            tls_version, tls_cipher)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)",
        params![
            m.envelope.received_at_ms,
            m.envelope.session_id,
            m.envelope.sender,
            m.envelope.client_addr,
            m.envelope.helo,
            size,
            m.sha256,
            h.from.as_ref().and_then(|f| f.name.clone()),
            h.from.as_ref().map(|f| f.address.clone()),
            to_json(&h.to),
            to_json(&h.cc),
            to_json(&h.reply_to),
            h.subject,
            h.date,
            h.message_id,
            to_json(&h.in_reply_to),
            to_json(&h.references),
            h.auto_submitted,
            h.list_id,
            h.precedence,
            h.automatic || (m.parsed.is_none() && m.envelope.sender.is_empty()),
            h.delivery_report,
            m.parsed.is_some(),
            h.original_message_id,
            m.envelope.authentication.as_ref().map(to_json),
            p.documents_truncated,
            m.envelope.tls.as_ref().map(|t| t.version.as_str()),
            m.envelope.tls.as_ref().map(|t| t.cipher.as_str()),
        ],
    )?;
    let id = conn.last_insert_rowid();
    add_recipients(conn, id, &m.envelope.recipients)?;

    // Raw bytes: reserve the blob, then write trace and content into it, so
    // that a 10 MB mail is not copied into one more buffer first.
    conn.exec(
        "INSERT INTO message_raw (message_id, trace_len, raw) VALUES (?1, ?2, zeroblob(?3))",
        params![id, m.trace.len() as i64, size],
    )?;
    let rowid = conn.last_insert_rowid();
    let mut blob = conn.blob_open(rusqlite::MAIN_DB, c"message_raw", c"raw", rowid, false)?;
    blob.write_all(&m.trace)?;
    blob.write_all(&m.content)?;
    drop(blob);

    let mut insert_doc = conn.prepare_cached(
        "INSERT INTO documents (message_id, part, filename, content_type, size, sha256, category, content)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for d in &p.documents {
        insert_doc.execute(params![
            id,
            d.part,
            d.filename,
            d.content_type,
            d.bytes.len() as i64,
            sha256_hex(&d.bytes),
            DEFAULT_DOCUMENT_CATEGORY,
            d.bytes,
        ])?;
    }
    Ok(Stored::New(id))
}

fn add_recipients(conn: &Connection, id: i64, recipients: &[String]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO message_recipients (message_id, address) VALUES (?1, ?2)",
    )?;
    for r in recipients {
        stmt.execute(params![id, r])?;
    }
    Ok(())
}

/// The SQL of `inbox`: only the conditions asked for, so that SQLite walks
/// the index that answers them newest first (messages_assignment,
/// messages_candidate, or the ids) and stops after `limit` rows.
fn inbox_sql(filter: &InboxFilter) -> String {
    let mut conditions = String::from("m.id < :before");
    if filter.unassigned {
        conditions.push_str(" AND m.assignment = 'unassigned'");
    }
    if filter.candidate.is_some() {
        conditions.push_str(" AND m.candidate_id = :candidate");
    }
    format!(
        "SELECT m.id, m.received_at, m.envelope_sender, m.from_name, m.from_addr, m.subject, m.size,
                m.automatic, m.delivery_report, m.assignment, m.candidate_id, c.first_name,
                c.last_name, m.match_reason
         FROM messages m LEFT JOIN candidates c ON c.id = m.candidate_id
         WHERE {conditions} ORDER BY m.id DESC LIMIT :limit"
    )
}

/// Binds a named parameter if the statement has it (listings build their
/// SQL from the filters given, so a parameter may be absent).
fn bind_named<T: rusqlite::ToSql>(
    stmt: &mut rusqlite::CachedStatement<'_>,
    name: &str,
    value: T,
) -> Result<()> {
    if let Some(i) = stmt.parameter_index(name)? {
        stmt.raw_bind_parameter(i, value)?;
    }
    Ok(())
}

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

// ---------------------------------------------------------------- reads

/// An attachment as listed (without its bytes).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DocumentSummary {
    pub id: i64,
    pub part: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub category: String,
}

/// One line of `jobmail inbox`.
#[derive(Debug, Clone, Serialize)]
pub struct InboxEntry {
    pub id: i64,
    /// RFC 3339, UTC.
    pub received_at: String,
    pub envelope_sender: String,
    pub from: Option<Mailbox>,
    pub subject: Option<String>,
    pub size: i64,
    pub automatic: bool,
    pub delivery_report: bool,
    /// `assigned`, `unassigned`, `none` or `pending`.
    pub assignment: String,
    pub candidate: Option<CandidateRef>,
    /// The match reason (see `docs/matching.md`).
    pub reason: Option<String>,
    /// How sure the reason is: certain, high, medium, new, none.
    pub confidence: Option<&'static str>,
    pub attachments: Vec<DocumentSummary>,
}

/// A candidate named in a listing.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateRef {
    pub id: i64,
    pub name: String,
}

/// Which mails `inbox` lists.
#[derive(Debug, Clone, Default)]
pub struct InboxFilter {
    pub limit: usize,
    /// Only ids below this one (to page on).
    pub before: Option<i64>,
    /// Only mails waiting for a human (`assignment = unassigned`).
    pub unassigned: bool,
    /// Only mails in this candidate's thread.
    pub candidate: Option<i64>,
}

/// Everything stored about one message except its raw bytes.
#[derive(Debug, Clone, Serialize)]
pub struct MessageDetail {
    pub id: i64,
    pub direction: String,
    pub received_at: String,
    pub session_id: String,
    pub envelope_sender: String,
    pub envelope_recipients: Vec<String>,
    pub client_addr: String,
    pub helo: String,
    pub size: i64,
    pub sha256: String,
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub subject: Option<String>,
    pub date: Option<String>,
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub auto_submitted: Option<String>,
    pub list_id: Option<String>,
    pub precedence: Option<String>,
    pub automatic: bool,
    pub delivery_report: bool,
    pub parsed: bool,
    pub original_message_id: Option<String>,
    pub assignment: String,
    pub candidate: Option<CandidateRef>,
    pub reason: Option<String>,
    /// How sure the reason is: certain, high, medium, new, none.
    pub confidence: Option<&'static str>,
    pub detail: Option<String>,
    pub closed_thread: bool,
    /// For unassigned mail: the candidates it could belong to.
    pub suggestions: Vec<CandidateRef>,
    pub attachments: Vec<DocumentSummary>,
    /// SPF, DKIM, DMARC and ARC on receipt; `None` when not checked.
    pub authentication: Option<crate::mail::parsed::Authentication>,
    /// More documents than are kept (`crate::inbound::parse` caps them); the raw
    /// mail still holds every one.
    pub documents_truncated: bool,
    /// The session's TLS version and cipher; `None`: in the clear (or ours).
    pub tls: Option<crate::mail::parsed::TlsInfo>,
}

/// The database as the CLI and the tests use it: reads, and the operators'
/// changes. (The daemon's inbound writes go through [`Writer`].)
pub struct Store {
    conn: Connection,
}

fn candidate_ref(
    id: Option<i64>,
    first: Option<String>,
    last: Option<String>,
) -> Option<CandidateRef> {
    id.map(|id| CandidateRef {
        id,
        name: format!("{} {}", first.unwrap_or_default(), last.unwrap_or_default())
            .trim()
            .to_string(),
    })
}

/// Attachments of a message, without their bytes.
fn documents(conn: &Connection, message_id: i64) -> Result<Vec<DocumentSummary>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, part, filename, content_type, size, sha256, category
         FROM documents WHERE message_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![message_id], |r| {
        Ok(DocumentSummary {
            id: r.get(0)?,
            part: r.get(1)?,
            filename: r.get(2)?,
            content_type: r.get(3)?,
            size: r.get(4)?,
            sha256: r.get(5)?,
            category: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
}

fn rfc3339(ms: i64) -> String {
    crate::clock::rfc3339_ms(ms)
}

fn mailbox(name: Option<String>, address: Option<String>) -> Option<Mailbox> {
    address.map(|address| Mailbox { name, address })
}

fn from_json<T: serde::de::DeserializeOwned + Default>(text: String) -> T {
    serde_json::from_str(&text).unwrap_or_default()
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(StoreError(format!(
                "no database at {} (has `jobmail serve` run with this config?)",
                path.display()
            )));
        }
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

    /// The latest mails, newest first, as the filter says.
    pub fn inbox(&self, filter: &InboxFilter) -> Result<Vec<InboxEntry>> {
        let mut stmt = self.conn.prepare_cached(&inbox_sql(filter))?;
        bind_named(&mut stmt, ":before", filter.before.unwrap_or(i64::MAX))?;
        bind_named(&mut stmt, ":limit", filter.limit as i64)?;
        bind_named(&mut stmt, ":candidate", filter.candidate)?;
        let rows = stmt.raw_query().mapped(|r| {
            Ok(InboxEntry {
                id: r.get(0)?,
                received_at: rfc3339(r.get(1)?),
                envelope_sender: r.get(2)?,
                from: mailbox(r.get(3)?, r.get(4)?),
                subject: r.get(5)?,
                size: r.get(6)?,
                automatic: r.get(7)?,
                delivery_report: r.get(8)?,
                assignment: r.get(9)?,
                candidate: candidate_ref(r.get(10)?, r.get(11)?, r.get(12)?),
                reason: r.get(13)?,
                confidence: None,
                attachments: Vec::new(),
            })
        });
        let mut entries = rows.collect::<std::result::Result<Vec<_>, _>>()?;
        for e in &mut entries {
            e.attachments = documents(&self.conn, e.id)?;
        }
        Ok(entries)
    }

    pub fn documents(&self, message_id: i64) -> Result<Vec<DocumentSummary>> {
        documents(&self.conn, message_id)
    }

    pub fn message(&self, id: i64) -> Result<Option<MessageDetail>> {
        let detail = self
            .conn
            .row(
                "SELECT m.id, m.direction, m.received_at, m.session_id, m.envelope_sender, m.client_addr,
                        m.helo, m.size, m.sha256, m.from_name, m.from_addr, m.to_json, m.cc_json,
                        m.reply_to_json, m.subject, m.date, m.message_id, m.in_reply_to_json,
                        m.references_json, m.auto_submitted, m.list_id, m.precedence,
                        m.automatic, m.delivery_report, m.parsed, m.original_message_id,
                        m.assignment, m.candidate_id, c.first_name, c.last_name, m.match_reason,
                        m.match_detail, m.closed_thread, m.authentication_json, m.documents_truncated,
                        m.tls_version, m.tls_cipher
                 FROM messages m LEFT JOIN candidates c ON c.id = m.candidate_id WHERE m.id = ?1",
                params![id],
                |r| {
                    Ok(MessageDetail {
                        id: r.get(0)?,
                        direction: r.get(1)?,
                        received_at: rfc3339(r.get(2)?),
                        session_id: r.get(3)?,
                        envelope_sender: r.get(4)?,
                        envelope_recipients: Vec::new(),
                        client_addr: r.get(5)?,
                        helo: r.get(6)?,
                        size: r.get(7)?,
                        sha256: r.get(8)?,
                        from: mailbox(r.get(9)?, r.get(10)?),
                        to: from_json(r.get(11)?),
                        cc: from_json(r.get(12)?),
                        reply_to: from_json(r.get(13)?),
                        subject: r.get(14)?,
                        date: r.get(15)?,
                        message_id: r.get(16)?,
                        in_reply_to: from_json(r.get(17)?),
                        references: from_json(r.get(18)?),
                        auto_submitted: r.get(19)?,
                        list_id: r.get(20)?,
                        precedence: r.get(21)?,
                        automatic: r.get(22)?,
                        delivery_report: r.get(23)?,
                        parsed: r.get(24)?,
                        original_message_id: r.get(25)?,
                        assignment: r.get(26)?,
                        candidate: candidate_ref(r.get(27)?, r.get(28)?, r.get(29)?),
                        reason: r.get(30)?,
                        confidence: None,
                        detail: r.get(31)?,
                        closed_thread: r.get(32)?,
                        suggestions: Vec::new(),
                        attachments: Vec::new(),
                        authentication: r
                            .get::<_, Option<String>>(33)?
                            .and_then(|j| serde_json::from_str(&j).ok()),
                        documents_truncated: r.get(34)?,
                        tls: tls_info(r.get(35)?, r.get(36)?),
                    })
                },
            )
            .optional()?;
        let Some(mut detail) = detail else {
            return Ok(None);
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT address FROM message_recipients WHERE message_id = ?1 ORDER BY address",
        )?;
        detail.envelope_recipients = stmt
            .query_map(params![id], |r| r.get(0))?
            .collect::<std::result::Result<Vec<String>, _>>()?;
        detail.attachments = documents(&self.conn, id)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.id, c.first_name, c.last_name FROM message_suggestions s
             JOIN candidates c ON c.id = s.candidate_id WHERE s.message_id = ?1 ORDER BY c.id",
        )?;
        detail.suggestions = stmt
            .query_map(params![id], |r| {
                Ok(candidate_ref(r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .filter_map(|r| r.transpose())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Some(detail))
    }

    /// A stored inbound mail as it came: envelope and the bytes the client sent.
    pub fn envelope_and_content(&self, id: i64) -> Result<Option<(Envelope, Vec<u8>)>> {
        let row = self
            .conn
            .row(
                "SELECT m.envelope_sender, m.client_addr, m.helo, m.session_id, m.received_at,
                        r.trace_len, r.raw, m.authentication_json, m.tls_version, m.tls_cipher
                 FROM messages m JOIN message_raw r ON r.message_id = m.id WHERE m.id = ?1",
                params![id],
                |r| {
                    Ok((
                        Envelope {
                            sender: r.get(0)?,
                            recipients: Vec::new(),
                            client_addr: r.get(1)?,
                            helo: r.get(2)?,
                            session_id: r.get(3)?,
                            received_at_ms: r.get(4)?,
                            authentication: r
                                .get::<_, Option<String>>(7)?
                                .and_then(|j| serde_json::from_str(&j).ok()),
                            tls: tls_info(r.get(8)?, r.get(9)?),
                        },
                        r.get::<_, i64>(5)?,
                        r.get::<_, Vec<u8>>(6)?,
                    ))
                },
            )
            .optional()?;
        let Some((mut envelope, trace_len, mut raw)) = row else {
            return Ok(None);
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT address FROM message_recipients WHERE message_id = ?1 ORDER BY address",
        )?;
        envelope.recipients = stmt
            .query_map(params![id], |r| r.get(0))?
            .collect::<std::result::Result<Vec<String>, _>>()?;
        raw.drain(..(trace_len.max(0) as usize).min(raw.len()));
        Ok(Some((envelope, raw)))
    }

    /// Inbound mails not matched yet, oldest first.
    /// Mails still `pending`, oldest first, with ids above `after`.
    pub fn pending(&self, after: i64, limit: usize) -> Result<Vec<i64>> {
        candidates::pending(&self.conn, after, limit)
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

    /// Puts mails in the outbox, all or none, in one transaction.
    /// Queues composed mails in one transaction (a bulk send calls it per
    /// chunk: [`ENQUEUE_CHUNK_ITEMS`], [`ENQUEUE_CHUNK_BYTES`]). With
    /// `acknowledgement`, that decision is marked `queued` in the
    /// transaction that queues its mail.
    pub fn enqueue_all(
        &mut self,
        items: &[outbox::NewItem],
        acknowledgement: Option<i64>,
    ) -> Result<Vec<outbox::Queued>> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut queued = Vec::with_capacity(items.len());
        for item in items {
            queued.push(outbox::enqueue(&tx, item)?);
        }
        if let (Some(id), Some(first)) = (acknowledgement, queued.first()) {
            candidates::finish_auto_reply(&tx, id, "queued", Some(first.item), "")?;
        }
        tx.commit()?;
        Ok(queued)
    }

    /// The outbox, newest first; `states` empty: all.
    pub fn queue(&self, states: &[String], limit: usize) -> Result<Vec<outbox::QueueEntry>> {
        outbox::list(
            &self.conn,
            &outbox::QueueFilter {
                states: states.to_vec(),
                limit,
                ..Default::default()
            },
        )
    }

    /// The outbox as the filter says.
    pub fn queue_filtered(&self, filter: &outbox::QueueFilter) -> Result<Vec<outbox::QueueEntry>> {
        outbox::list(&self.conn, filter)
    }

    /// Items and bytes per state.
    pub fn queue_summary(&self) -> Result<Vec<(String, i64, i64)>> {
        outbox::summary(&self.conn)
    }

    /// Cancels a scheduled, queued or deferred item; returns the state it had.
    pub fn cancel(&mut self, item: i64, now_ms: i64) -> Result<String> {
        outbox::cancel(&mut self.conn, item, now_ms)
    }

    /// Queues the scheduled items that are due at `now_ms` (or cancels them, saying why).
    pub fn promote_due(&mut self, now_ms: i64) -> Result<Vec<outbox::Promoted>> {
        outbox::promote_due(&mut self.conn, now_ms)
    }

    /// The relay takes due items (marked `sending`), leaving paused upstreams' mail alone.
    pub fn claim_due(
        &mut self,
        now_ms: i64,
        limits: &outbox::ClaimLimits,
    ) -> Result<Vec<outbox::Claimed>> {
        outbox::claim_due(&mut self.conn, now_ms, limits)
    }

    pub fn anything_due(&self, now_ms: i64) -> Result<bool> {
        outbox::anything_due(&self.conn, now_ms)
    }

    pub fn unclaim(
        &mut self,
        item: &outbox::Claimed,
        due_ms: i64,
        why: &str,
        now_ms: i64,
    ) -> Result<()> {
        outbox::unclaim(&mut self.conn, item, due_ms, why, now_ms)
    }

    pub fn recover_sending_except(
        &mut self,
        held: &[i64],
        older_than_ms: i64,
        now_ms: i64,
    ) -> Result<usize> {
        outbox::recover_sending_except(
            &mut self.conn,
            held,
            older_than_ms,
            now_ms,
            "no attempt holds it (its outcome was never recorded): trying again with the same bytes",
        )
    }

    /// The breaker state of a subsidiary's upstream.
    pub fn upstream_state(&self, subsidiary: &str) -> Result<outbox::UpstreamState> {
        outbox::upstream_state(&self.conn, subsidiary)
    }

    pub fn set_upstream_state(&self, state: &outbox::UpstreamState, now_ms: i64) -> Result<()> {
        outbox::set_upstream_state(&self.conn, state, now_ms)
    }

    /// Upstreams paused at `now_ms`.
    pub fn paused_upstreams(&self, now_ms: i64) -> Result<Vec<outbox::UpstreamState>> {
        outbox::paused_upstreams(&self.conn, now_ms)
    }

    /// The relay records the ends of attempts, `(item, outcome, at)`, in one commit.
    /// Outcomes, and the circuit breakers' states they led to (the newest
    /// per upstream), in one commit.
    pub fn record_outcomes(
        &mut self,
        outcomes: &[(i64, outbox::Outcome, i64)],
        upstreams: &[(outbox::UpstreamState, i64)],
    ) -> Result<()> {
        outbox::record_outcomes(&mut self.conn, outcomes, upstreams)
    }

    /// Puts items left `sending` by a crash back in line, due now.
    pub fn recover_sending(&mut self, now_ms: i64) -> Result<usize> {
        outbox::recover_sending(&mut self.conn, now_ms)
    }

    /// Operator actions on the outbox (retry, hold, release, delete, flush).
    pub fn queue_action(&mut self, action: outbox::Action, now_ms: i64) -> Result<usize> {
        outbox::act(&mut self.conn, action, now_ms)
    }

    /// The suppression of an address in force now, if any.
    pub fn suppressed(&self, address: &str, now_ms: i64) -> Result<Option<outbox::Suppression>> {
        outbox::suppressed(&self.conn, address, now_ms)
    }

    /// Suppressions in force.
    pub fn suppressions(&self, now_ms: i64) -> Result<Vec<outbox::Suppression>> {
        outbox::suppressions(&self.conn, now_ms)
    }

    /// Lifts a suppression; false if there was none.
    pub fn unsuppress(&self, address: &str) -> Result<bool> {
        outbox::unsuppress(&self.conn, address)
    }

    /// Acknowledgements decided but not composed yet.
    pub fn pending_auto_replies(&self) -> Result<Vec<candidates::PendingAutoReply>> {
        candidates::pending_auto_replies(&self.conn)
    }

    pub fn auto_reply_failed(&self, id: i64, why: &str) -> Result<()> {
        candidates::finish_auto_reply(&self.conn, id, "failed", None, why)
    }

    /// The recorded history of an outbox item.
    pub fn events(&self, item: i64) -> Result<Vec<outbox::Event>> {
        outbox::events(&self.conn, item)
    }

    /// A stored document of this candidate's thread (one they sent, or one
    /// sent to them), with its bytes; another candidate's is refused.
    pub fn candidate_document(
        &self,
        candidate: i64,
        document: i64,
    ) -> Result<(DocumentSummary, Vec<u8>)> {
        let row = self
            .conn
            .row(
                "SELECT d.id, d.part, d.filename, d.content_type, d.size, d.sha256, d.category, d.content,
                        m.candidate_id
                 FROM documents d JOIN messages m ON m.id = d.message_id WHERE d.id = ?1",
                params![document],
                |r| {
                    Ok((
                        DocumentSummary {
                            id: r.get(0)?,
                            part: r.get(1)?,
                            filename: r.get(2)?,
                            content_type: r.get(3)?,
                            size: r.get(4)?,
                            sha256: r.get(5)?,
                            category: r.get(6)?,
                        },
                        r.get::<_, Vec<u8>>(7)?,
                        r.get::<_, Option<i64>>(8)?,
                    ))
                },
            )
            .optional()?;
        match row {
            None => Err(StoreError(format!("no document {document}"))),
            Some((summary, bytes, owner)) if owner == Some(candidate) => Ok((summary, bytes)),
            Some(_) => Err(StoreError(format!(
                "document {document} is not in the thread of candidate {candidate}"
            ))),
        }
    }

    /// Candidates with an application matching every given filter
    /// (position among `positions`, status), oldest first.
    pub fn candidates_with_applications(
        &self,
        positions: Option<&[String]>,
        status: Option<&str>,
    ) -> Result<Vec<i64>> {
        let positions_json =
            positions.map(|p| serde_json::to_string(p).unwrap_or_else(|_| "[]".into()));
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT a.candidate_id FROM applications a JOIN candidates c ON c.id = a.candidate_id
             WHERE c.merged_into IS NULL
               AND (?1 IS NULL OR a.position IN (SELECT value FROM json_each(?1)))
               AND (?2 IS NULL OR a.status = ?2)
             ORDER BY a.candidate_id",
        )?;
        let rows = stmt.query_map(params![positions_json, status], |r| r.get(0))?;
        Ok(rows.collect::<std::result::Result<Vec<i64>, _>>()?)
    }

    /// What composing a mail to a candidate needs (merged ids lead to the survivor).
    pub fn compose_facts(&self, candidate: i64) -> Result<Option<candidates::ComposeFacts>> {
        candidates::compose_facts(&self.conn, candidate)
    }

    /// Candidates, newest first; `search` matches names and addresses.
    pub fn candidates(
        &self,
        search: Option<&str>,
        limit: usize,
    ) -> Result<Vec<candidates::CandidateSummary>> {
        candidates::list(&self.conn, search, limit)
    }

    /// One candidate with addresses, applications and thread (merged ids lead to the survivor).
    pub fn candidate(&self, id: i64) -> Result<Option<candidates::CandidateDetail>> {
        candidates::show(&self.conn, id)
    }

    /// Files a message under a candidate by hand; `author` becomes one of the candidate's addresses.
    pub fn assign(&mut self, message: i64, candidate: i64, author: Option<&str>) -> Result<()> {
        candidates::assign(&mut self.conn, message, candidate, author)
    }

    /// Merges candidate `from` into `into`.
    pub fn merge(&mut self, into: i64, from: i64) -> Result<()> {
        candidates::merge(&mut self.conn, into, from)
    }

    /// Records an application from the online form; returns (candidate, application, created).
    pub fn add_form_application(
        &mut self,
        f: &candidates::FormApplication,
    ) -> Result<(i64, i64, bool)> {
        self.write(|tx| tx.add_form_application(f))
    }

    /// Sets the status of an application, or of all of a candidate's.
    pub fn set_status(
        &self,
        candidate: Option<i64>,
        application: Option<i64>,
        status: &str,
    ) -> Result<usize> {
        candidates::set_status(&self.conn, candidate, application, status)
    }

    /// The stored bytes: our trace headers followed by the mail as sent.
    pub fn raw(&self, id: i64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .row(
                "SELECT raw FROM message_raw WHERE message_id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// A document's bytes.
    pub fn document_content(&self, id: i64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .row(
                "SELECT content FROM documents WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn count_messages(&self) -> Result<i64> {
        Ok(self
            .conn
            .row("SELECT count(*) FROM messages", [], |r| r.get(0))?)
    }

    /// (sha256 of the content as sent, message id) for every stored mail, for checks.
    pub fn content_hashes(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT sha256, id FROM messages ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let filer = crate::app::filing::Filer {
            matching: crate::matcher::Matching {
                directory: crate::config::company::Company::from_config(&world),
                key: crate::matcher::token::TokenKey::new([0x42; 32]),
            },
        };
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

    /// Listings stay fast on a store of a million messages: each walks an
    /// index (or the ids) and never scans the messages or the outbox.
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
                inbox_sql(&inbox(false, None, None)),
                "SEARCH m USING INTEGER PRIMARY KEY",
            ),
            (inbox_sql(&inbox(true, None, None)), "messages_assignment"),
            (
                inbox_sql(&inbox(false, Some(5), Some(1000))),
                "messages_candidate",
            ),
            (
                inbox_sql(&inbox(true, Some(5), None)),
                "SEARCH m USING INDEX messages_",
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
