//! Documents by category, and the audit of who saw or changed them: the
//! reads and writes behind the access check of the application layer,
//! which decides who may (the store records what it is told).

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::filing::Tx;
use super::{Cached, DocumentSummary, Result, Store, rfc3339};

/// A document with where it is: its message, the message's candidate and
/// direction; or the candidate it was uploaded to, and by whom.
#[derive(Debug, Clone, Serialize)]
pub struct PlacedDocument {
    #[serde(flatten)]
    pub document: DocumentSummary,
    /// `None` for an upload.
    pub message: Option<i64>,
    pub candidate: Option<i64>,
    /// `inbound`, `outbound`, or `upload`.
    pub direction: String,
    /// When the mail came (or went), or when the upload was made.
    pub received_at: String,
    /// Who uploaded it (a user's id, `cli`, `form`); `None` for a mail's.
    pub added_by: Option<String>,
}

/// A document to file on a candidate, not from a mail.
#[derive(Debug, Clone)]
pub struct NewUpload<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub category: &'a str,
    pub content: &'a [u8],
    /// A user's id, `cli`, or `form`.
    pub added_by: &'a str,
    pub at_ms: i64,
}

/// One line of the audit: who did (or was refused) what, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    /// The user's id, or `cli` for the local operator.
    pub actor: String,
    /// `document.list`, `document.download`, `document.categorise`,
    /// `message.raw`, ...
    pub action: String,
    /// `document 12`, `candidate 3`, `message 7`.
    pub object: String,
    pub allowed: bool,
    pub detail: String,
}

/// An audit line to record.
#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub object: &'a str,
    pub allowed: bool,
    pub detail: &'a str,
    pub at_ms: i64,
}

// An upload has no message: its candidate, `upload` and its time stand in.
const PLACED: &str =
    "SELECT d.id, d.part, d.filename, d.content_type, d.size, d.sha256, d.category,
        m.id, coalesce(m.candidate_id, d.candidate_id), coalesce(m.direction, 'upload'),
        coalesce(m.received_at, d.added_at, 0), d.added_by
 FROM documents d LEFT JOIN messages m ON m.id = d.message_id";

fn placed(r: &rusqlite::Row<'_>) -> rusqlite::Result<PlacedDocument> {
    Ok(PlacedDocument {
        document: DocumentSummary {
            id: r.get(0)?,
            part: r.get(1)?,
            filename: r.get(2)?,
            content_type: r.get(3)?,
            size: r.get(4)?,
            sha256: r.get(5)?,
            category: r.get(6)?,
        },
        message: r.get(7)?,
        candidate: r.get(8)?,
        direction: r.get(9)?,
        received_at: rfc3339(r.get(10)?),
        added_by: r.get(11)?,
    })
}

fn insert_upload(conn: &Connection, candidate: i64, u: &NewUpload<'_>) -> Result<i64> {
    let sha = super::sha256_hex(u.content);
    conn.exec(
        "INSERT INTO documents (message_id, part, filename, content_type, size, sha256, category,
                                content, candidate_id, added_by, added_at)
         VALUES (NULL, 'upload', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            u.filename,
            u.content_type,
            u.content.len() as i64,
            sha,
            u.category,
            u.content,
            candidate,
            u.added_by,
            u.at_ms
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

fn set_category(conn: &Connection, id: i64, category: &str) -> Result<bool> {
    Ok(conn.exec(
        "UPDATE documents SET category = ?2 WHERE id = ?1",
        params![id, category],
    )? == 1)
}

impl Tx<'_> {
    /// (id, file name, content type) of each document of a message.
    pub fn documents_of_message(&self, message: i64) -> Result<Vec<(i64, String, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, filename, content_type FROM documents WHERE message_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![message], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Files a document under a category.
    pub fn set_document_category(&self, id: i64, category: &str) -> Result<bool> {
        set_category(self.conn, id, category)
    }

    /// Files an uploaded document on a candidate (a form application's,
    /// in the transaction that records it); returns its id.
    pub fn add_upload(&self, candidate: i64, u: &NewUpload<'_>) -> Result<i64> {
        insert_upload(self.conn, candidate, u)
    }
}

impl Store {
    /// Every document of a candidate's thread, newest mail first (merged
    /// ids lead to the survivor); the caller filters by right.
    pub fn candidate_documents(&self, candidate: i64) -> Result<Vec<PlacedDocument>> {
        // Two index lookups (the thread's mails, the uploads), newest first.
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT * FROM (
                 {PLACED} WHERE m.candidate_id = ?1 AND d.deleted_at IS NULL
                 UNION ALL
                 {PLACED} WHERE d.candidate_id = ?1 AND d.message_id IS NULL AND d.deleted_at IS NULL
             ) ORDER BY 11 DESC, 1 DESC"
        ))?;
        let rows = stmt.query_map(params![candidate], placed)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Files an uploaded document on a candidate; returns its id.
    pub fn add_upload(&self, candidate: i64, u: &NewUpload<'_>) -> Result<i64> {
        insert_upload(&self.conn, candidate, u)
    }

    /// Deletes a document: its bytes go, its row stays (marked, with who
    /// and when) so that the raw mail it came in is still checked against
    /// its category. Returns false for one already deleted.
    pub fn delete_document(&self, id: i64, by: &str, at_ms: i64) -> Result<bool> {
        Ok(self.conn.exec(
            "UPDATE documents SET content = x'', deleted_at = ?2, deleted_by = ?3
             WHERE id = ?1 AND deleted_at IS NULL",
            params![id, at_ms, by],
        )? == 1)
    }

    /// One document, where it is, and its bytes.
    pub fn document_with_content(&self, id: i64) -> Result<Option<(PlacedDocument, Vec<u8>)>> {
        Ok(self
            .conn
            .row(
                &format!("SELECT * FROM ({PLACED} WHERE d.id = ?1 AND d.deleted_at IS NULL), (SELECT content FROM documents WHERE id = ?1)"),
                params![id],
                |r| Ok((placed(r)?, r.get::<_, Vec<u8>>(12)?)),
            )
            .optional()?)
    }

    /// The categories of a message's documents (for the raw mail, which
    /// holds them all).
    pub fn message_document_categories(&self, message: i64) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT category FROM documents WHERE message_id = ?1 ORDER BY category",
        )?;
        let rows = stmt.query_map(params![message], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The subsidiaries a candidate applied to.
    pub fn candidate_subsidiaries(&self, candidate: i64) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT subsidiary FROM applications WHERE candidate_id = ?1 ORDER BY subsidiary",
        )?;
        let rows = stmt.query_map(params![candidate], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Files a document under another category.
    pub fn set_document_category(&self, id: i64, category: &str) -> Result<bool> {
        set_category(&self.conn, id, category)
    }

    /// Records one line of the audit.
    pub fn record_audit(&self, a: &NewAudit<'_>) -> Result<()> {
        self.conn.exec(
            "INSERT INTO audit (at, actor, action, object, allowed, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![a.at_ms, a.actor, a.action, a.object, a.allowed, a.detail],
        )?;
        Ok(())
    }

    /// The audit, newest first: every line, or one actor's.
    pub fn audit(&self, actor: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at, actor, action, object, allowed, detail FROM audit
             WHERE ?1 IS NULL OR actor = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![actor, limit as i64], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at: rfc3339(r.get(1)?),
                actor: r.get(2)?,
                action: r.get(3)?,
                object: r.get(4)?,
                allowed: r.get(5)?,
                detail: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
