//! Documents by category, and the audit of who saw or changed them: the
//! reads and writes behind the access check of the application layer,
//! which decides who may (the store records what it is told).

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::filing::Tx;
use super::{Cached, DocumentSummary, Result, Store, rfc3339};

/// A document with where it is: its message, the message's candidate and
/// direction.
#[derive(Debug, Clone, Serialize)]
pub struct PlacedDocument {
    #[serde(flatten)]
    pub document: DocumentSummary,
    pub message: i64,
    pub candidate: Option<i64>,
    /// `inbound` or `outbound`.
    pub direction: String,
    pub received_at: String,
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

const PLACED: &str =
    "SELECT d.id, d.part, d.filename, d.content_type, d.size, d.sha256, d.category,
        m.id, m.candidate_id, m.direction, m.received_at
 FROM documents d JOIN messages m ON m.id = d.message_id";

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
    })
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
}

impl Store {
    /// Every document of a candidate's thread, newest mail first (merged
    /// ids lead to the survivor); the caller filters by right.
    pub fn candidate_documents(&self, candidate: i64) -> Result<Vec<PlacedDocument>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{PLACED} WHERE m.candidate_id = ?1 ORDER BY m.id DESC, d.id"
        ))?;
        let rows = stmt.query_map(params![candidate], placed)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// One document, where it is, and its bytes.
    pub fn document_with_content(&self, id: i64) -> Result<Option<(PlacedDocument, Vec<u8>)>> {
        Ok(self
            .conn
            .row(
                "SELECT d.id, d.part, d.filename, d.content_type, d.size, d.sha256, d.category,
                        m.id, m.candidate_id, m.direction, m.received_at, d.content
                 FROM documents d JOIN messages m ON m.id = d.message_id WHERE d.id = ?1",
                params![id],
                |r| Ok((placed(r)?, r.get::<_, Vec<u8>>(11)?)),
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
