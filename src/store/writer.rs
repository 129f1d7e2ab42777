//! The durable write path of inbound mail: one writer thread commits
//! whatever mails are waiting in one transaction (group commit) with
//! `synchronous=FULL` and only then answers each waiting session; each new
//! mail is handed to the [`OnStored`] hook in a savepoint of its own, so a
//! failing or panicking hook costs the match, never the mail. A checkpoint
//! thread copies the WAL into the database file, so commits do not wait.
//! Once a second the writer indexes the mails filed since its last pass
//! for search (`search::index_backlog`), between batches, never in one.

#[allow(unused_imports)]
use super::*;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

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

pub(super) struct WriteJob {
    pub(super) message: IncomingMessage,
    pub(super) reply: oneshot::Sender<Result<Stored>>,
}

/// What the writer thread is asked: a mail to store, whether it is still
/// answering (the watchdog's ping, answered between batches), or to index
/// the search backlog (the ticker's, every `SEARCH_EVERY`).
// A mail's job is as big as it was before pings (the channel held it by
// value); boxing it would cost an allocation per mail for a rare ping.
#[allow(clippy::large_enum_variant)]
pub(super) enum Job {
    Store(WriteJob),
    Ping(oneshot::Sender<()>),
    IndexSearch,
}

/// How often the writer indexes the search backlog. A search reads the
/// backlog row by row, so this bounds its size, not what a search finds.
pub(super) const SEARCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Asks the writer to index the search backlog every `SEARCH_EVERY`, for
/// as long as the writer runs (it holds only a weak handle). A full
/// channel skips a turn: the writer is busy storing mail, which comes first.
fn start_search_ticker(tx: &mpsc::Sender<Job>) -> std::io::Result<()> {
    let weak = tx.downgrade();
    std::thread::Builder::new()
        .name("store-search-tick".into())
        .spawn(move || {
            loop {
                std::thread::sleep(SEARCH_EVERY);
                let Some(tx) = weak.upgrade() else { break };
                if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Job::IndexSearch) {
                    break;
                }
            }
        })?;
    Ok(())
}

/// Indexes the search backlog (at most `BACKLOG_PASS` mails). A failure
/// is logged and left for the next turn: the mails stay in the backlog,
/// where a search still finds them.
fn index_search(conn: &mut Connection) {
    let started = std::time::Instant::now();
    match super::search::index_backlog(conn, super::search::BACKLOG_PASS) {
        Ok(0) => {}
        Ok(n) => tracing::debug!(
            mails = n,
            ms = started.elapsed().as_millis() as u64,
            "store: indexed for search"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "store: indexing for search failed; the next pass retries")
        }
    }
}

/// Most mails or bytes committed in one transaction.
pub(super) const MAX_BATCH_MESSAGES: usize = 256;

pub(super) const MAX_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// The writer's page cache (KiB): a batch's pages stay in memory until its
/// commit writes them to the WAL once, instead of spilling mid-transaction
/// (which also copies pages into the savepoint journal).
pub(super) const WRITER_CACHE_KIB: i64 = 40 * 1024;

/// WAL size after which the checkpointer copies the WAL into the database
/// file, and after which the writer does so itself, waiting for it, because
/// the checkpointer has fallen behind (a long reader, a slow disk).
pub(super) const CHECKPOINT_BYTES: i64 = 8 * 1024 * 1024;

pub(super) const WRITER_CHECKPOINT_BYTES: i64 = 64 * 1024 * 1024;

/// Handle to the writer thread. Cloning is cheap; the thread ends when the
/// last handle is dropped and the waiting mails are committed.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

/// Asks the writer thread whether it still answers, without keeping it
/// running: the thread ends with the last [`Writer`] all the same.
#[derive(Clone)]
pub struct Pinger {
    tx: mpsc::WeakSender<Job>,
}

impl Pinger {
    /// True once the writer has answered: it took the ping off its queue
    /// between two batches, so it is neither wedged in a commit nor behind
    /// a full queue. False when it has stopped.
    pub async fn ping(&self) -> bool {
        let Some(tx) = self.tx.upgrade() else {
            return false;
        };
        let (reply, answer) = oneshot::channel();
        if tx.send(Job::Ping(reply)).await.is_err() {
            return false;
        }
        drop(tx);
        answer.await.is_ok()
    }
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
        let backups = match super::backup::BackupLock::open(path) {
            Ok(lock) => Some(lock),
            Err(e) => {
                tracing::warn!(error = %e, "store: cannot open the backup lock; a backup may slow ingest");
                None
            }
        };
        conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: i32| {
            if pages >= writer_checkpoint_pages
                && backups.as_ref().is_some_and(|b| b.backup_running())
            {
                // A backup's read transaction pins the WAL: a RESTART would
                // wait for it (up to the busy timeout, at every commit) and
                // could not shorten the WAL. The checkpointer copies what it
                // can; once the backup's copy is done, the next commit
                // checkpoints as below. Measured (BENCHMARKS.md): 1 MB mails
                // during a backup of a 1.9 GB store waited 2.8 s otherwise.
                checkpoints.due();
            } else if pages >= writer_checkpoint_pages {
                // The checkpointer has fallen behind: this commit (already
                // durable) waits until the WAL is copied and starts over, so
                // the WAL stays bounded and the writer slows to the disk's
                // pace. Measured: with PASSIVE here the WAL kept growing and
                // sustained 1 MB ingest fell by a third after 1.5 GB.
                let started = std::time::Instant::now();
                let done = wal.checkpoint_v2(rusqlite::wal::CheckpointMode::RESTART);
                let waited = started.elapsed();
                if waited > std::time::Duration::from_secs(1) || done.is_err() {
                    tracing::warn!(
                        wal_pages = pages,
                        waited_ms = waited.as_millis() as u64,
                        done = done.is_ok(),
                        "store: the writer waited for a checkpoint (a slow disk, or a long reader)"
                    );
                }
            } else if pages >= checkpoint_pages {
                checkpoints.due();
            }
            Ok(())
        }))?;
        let (tx, rx) = mpsc::channel::<Job>(1024);
        start_search_ticker(&tx)?;
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, rx, &*on_stored))?;
        Ok((Writer { tx }, handle))
    }

    /// Stores one mail; returns only after the transaction holding it has committed.
    pub async fn store(&self, message: IncomingMessage) -> Result<Stored> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job::Store(WriteJob { message, reply }))
            .await
            .map_err(|_| StoreError("store writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError("store writer dropped the mail".into()))?
    }

    /// A handle for the watchdog's pings (see [`Pinger`]).
    pub fn pinger(&self) -> Pinger {
        Pinger {
            tx: self.tx.downgrade(),
        }
    }
}

/// Wakes the checkpoint thread; it ends when the writer's hook is dropped.
pub(super) struct Checkpointer {
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

pub(super) fn writer_loop(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    on_stored: &dyn OnStored,
) {
    crate::metrics::WRITER_HEARTBEAT.beat();
    while let Some(job) = rx.blocking_recv() {
        let first = match job {
            Job::Ping(answer) => {
                crate::metrics::WRITER_HEARTBEAT.beat();
                let _ = answer.send(());
                continue;
            }
            Job::IndexSearch => {
                index_search(&mut conn);
                continue;
            }
            Job::Store(first) => first,
        };
        let mut bytes = first.message.content.len();
        let mut batch = vec![first];
        let mut pings = Vec::new();
        while batch.len() < MAX_BATCH_MESSAGES && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(Job::Store(job)) => {
                    bytes += job.message.content.len();
                    batch.push(job);
                }
                // Answered once this batch is committed.
                Ok(Job::Ping(answer)) => pings.push(answer),
                // The next tick comes soon enough.
                Ok(Job::IndexSearch) => {}
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let results = commit_batch(&mut conn, &batch, on_stored);
        crate::metrics::STORE_COMMIT.observe(started.elapsed());
        crate::metrics::WRITER_HEARTBEAT.beat();
        for answer in pings {
            let _ = answer.send(());
        }
        for (job, result) in batch.into_iter().zip(results) {
            // A session that went away no longer waits; its mail is stored all the same.
            let _ = job.reply.send(result);
        }
    }
}

/// One transaction for the whole batch; each mail in its own savepoint so that
/// one failure does not take the others down. If the commit fails, all fail.
pub(super) fn commit_batch(
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
    let mut filings = Vec::with_capacity(batch.len());
    for job in batch {
        let outcome = (|| {
            let mut sp = tx.savepoint()?;
            if let Some(parsed) = &job.message.parsed {
                fault("writer-panic", parsed);
                stall("writer-stall", parsed);
            }
            let stored = insert_message(&sp, &job.message)?;
            if let Stored::New(id) = stored {
                file_new_message(&mut sp, id, &job.message, on_stored);
            }
            let filing = filing_of(&sp, stored.id());
            sp.commit()?;
            Ok::<_, StoreError>((stored, filing))
        })();
        match outcome {
            Ok((stored, filing)) => {
                results.push(Ok(stored));
                filings.push(filing);
            }
            Err(e) => {
                tracing::error!(session = %job.message.envelope.session_id, error = %e, "store: insert failed");
                results.push(Err(e));
                filings.push(None);
            }
        }
    }
    match tx.commit() {
        Ok(()) => {
            for ((job, result), filing) in batch.iter().zip(&results).zip(filings) {
                if let Ok(stored) = result {
                    log_stored(&job.message, *stored, filing);
                }
            }
            results
        }
        Err(e) => {
            tracing::error!(error = %e, "store: commit failed");
            batch
                .iter()
                .map(|_| Err(StoreError(format!("commit failed: {e}"))))
                .collect()
        }
    }
}

/// What was recorded about a mail, read back in its transaction for the
/// line logged once the mail is committed.
#[derive(Debug, Default)]
pub(super) struct Filing {
    reason: Option<String>,
    candidate: Option<i64>,
    application: Option<i64>,
    acknowledgement: Option<String>,
}

/// The mail's filing as recorded (three index lookups; `None` if the read
/// fails, which costs only the log line its reason).
pub(super) fn filing_of(conn: &Connection, id: i64) -> Option<Filing> {
    conn.row(
        "SELECT m.match_reason, m.candidate_id, a.id, r.decision, r.rule
         FROM messages m
         LEFT JOIN applications a ON a.message_id = m.id
         LEFT JOIN auto_replies r ON r.application_id = a.id
         WHERE m.id = ?1 LIMIT 1",
        params![id],
        |r| {
            let decision: Option<String> = r.get(3)?;
            let rule: Option<String> = r.get(4)?;
            Ok(Filing {
                reason: r.get(0)?,
                candidate: r.get(1)?,
                application: r.get(2)?,
                acknowledgement: decision.map(|d| match rule {
                    Some(rule) => format!("{d}:{rule}"),
                    None => d,
                }),
            })
        },
    )
    .ok()
}

/// The one line per stored mail (README, "The log"), after its commit:
/// the envelope sender, never a recipient (a reply token is a capability)
/// nor a byte of the mail.
fn log_stored(message: &IncomingMessage, stored: Stored, filing: Option<Filing>) {
    let filing = filing.unwrap_or_default();
    let envelope = &message.envelope;
    tracing::info!(
        message = stored.id(),
        session = %envelope.session_id,
        size = (message.trace.len() + message.content.len()) as u64,
        sender = %format_args!("<{}>", envelope.sender),
        recipients = envelope.recipients.len() as u64,
        duplicate = matches!(stored, Stored::Duplicate(_)),
        reason = filing.reason.as_deref().unwrap_or("pending"),
        candidate = filing.candidate,
        application = filing.application,
        acknowledgement = filing.acknowledgement.as_deref(),
        "stored"
    );
}

/// Files a just-inserted mail in a savepoint of its own: if filing fails,
/// the mail stays stored as `pending` and is filed again at the next start.
pub(super) fn file_new_message(
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
pub(super) fn fault(kind: &str, parsed: &ParsedMessage) {
    if cfg!(debug_assertions)
        && parsed.headers.subject.as_deref() == Some("FAULT")
        && std::env::var("JOBMAIL_FAULT").is_ok_and(|v| v == kind)
    {
        panic!("injected fault: {kind}");
    }
}

/// Like [`fault`], but the writer hangs (a commit that never returns, as
/// on a dead disk) instead of panicking: what the watchdog is for.
pub(super) fn stall(kind: &str, parsed: &ParsedMessage) {
    if cfg!(debug_assertions)
        && parsed.headers.subject.as_deref() == Some("FAULT")
        && std::env::var("JOBMAIL_FAULT").is_ok_and(|v| v == kind)
    {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// The same fault while `serve` matches the mails left pending at start.
pub fn fault_for_startup(parsed: &ParsedMessage) {
    fault("match-panic", parsed);
}

pub(super) fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

pub(super) fn insert_message(conn: &Connection, m: &IncomingMessage) -> Result<Stored> {
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

pub(super) fn add_recipients(conn: &Connection, id: i64, recipients: &[String]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO message_recipients (message_id, address) VALUES (?1, ?2)",
    )?;
    for r in recipients {
        stmt.execute(params![id, r])?;
    }
    Ok(())
}
