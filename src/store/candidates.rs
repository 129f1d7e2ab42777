//! Candidates, their addresses and applications, and the matching of
//! stored mail to them: the matcher's lookups over SQLite, applying its
//! decision, and the operator's corrections (assign, merge, status).
//!
//! SQL only; the decisions themselves come from above the store (see
//! [`super::filing`]).

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::filing::{
    AcknowledgementCounts, AcknowledgementSubject, Filed, NewAcknowledgement, NewApplication,
    NewCandidate, Placement,
};
use super::{Cached, Result, Store, StoreError, ids, rfc3339, webhooks};
use crate::mail::parsed::Mailbox;

/// Application statuses; the last two close an application.
pub const STATUSES: [&str; 7] = [
    "new",
    "in-review",
    "interview",
    "offer",
    "hired",
    "rejected",
    "withdrawn",
];
pub const CLOSED_STATUSES: [&str; 2] = ["rejected", "withdrawn"];
pub const GENDERS: [&str; 4] = ["female", "male", "diverse", "unknown"];

/// Follows merges to the surviving record.
pub(super) fn resolve(conn: &Connection, mut id: i64) -> rusqlite::Result<Option<i64>> {
    for _ in 0..16 {
        let merged: Option<Option<i64>> = conn
            .row(
                "SELECT merged_into FROM candidates WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?;
        match merged {
            None => return Ok(None),
            Some(None) => return Ok(Some(id)),
            Some(Some(next)) => id = next,
        }
    }
    Ok(None)
}

pub(super) fn thread_closed(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    let (all, open): (i64, i64) = conn.row(
        "SELECT count(*), coalesce(sum(status NOT IN ('rejected', 'withdrawn')), 0)
         FROM applications WHERE candidate_id = ?1",
        params![id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(all > 0 && open == 0)
}

fn now_ms() -> i64 {
    crate::clock::now_ms()
}

/// Creates a candidate with one address.
fn insert_candidate(conn: &Connection, c: &NewCandidate<'_>, at_ms: i64) -> Result<i64> {
    conn.exec(
        "INSERT INTO candidates (first_name, last_name, language, language_source, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            c.first_name,
            c.last_name,
            c.language,
            c.language.and(c.language_source),
            at_ms
        ],
    )?;
    let id = conn.last_insert_rowid();
    add_address(conn, id, c.email, at_ms)?;
    Ok(id)
}

/// Records that an address belongs to a candidate (no-op if known).
pub(super) fn add_address(
    conn: &Connection,
    candidate: i64,
    address: &str,
    at_ms: i64,
) -> Result<()> {
    let address = crate::mail::address::normalise(address);
    conn.exec(
        "INSERT OR IGNORE INTO candidate_addresses (candidate_id, address, address_key, added_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![candidate, address, address.to_lowercase(), at_ms],
    )?;
    Ok(())
}

fn insert_application(
    conn: &Connection,
    candidate: i64,
    app: &NewApplication<'_>,
    source: &str,
    at_ms: i64,
    message: Option<i64>,
) -> Result<i64> {
    conn.exec(
        "INSERT INTO applications (candidate_id, subsidiary, position, source, received_at, message_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![candidate, app.subsidiary, app.position, source, at_ms, message],
    )?;
    let id = conn.last_insert_rowid();
    webhooks::emit(
        conn,
        "application.created",
        Some(candidate),
        || {
            Ok(serde_json::json!({
                "application": id,
                "subsidiary": app.subsidiary,
                "position": app.position,
                "source": source,
                "message": message,
            }))
        },
        at_ms,
    )?;
    Ok(id)
}

/// `message.received`: a mail filed on a candidate, and why.
fn emit_received(
    conn: &Connection,
    message: i64,
    candidate: i64,
    d: &Filed<'_>,
    application: Option<i64>,
    at_ms: i64,
) -> Result<()> {
    webhooks::emit(
        conn,
        "message.received",
        Some(candidate),
        || {
            Ok(serde_json::json!({
                "message": webhooks::message_data(conn, message)?,
                "reason": d.reason,
                "detail": d.detail,
                "application": application,
            }))
        },
        at_ms,
    )
}

fn set_match(
    conn: &Connection,
    message: i64,
    candidate: Option<i64>,
    assignment: &str,
    d: &Filed<'_>,
    closed_thread: bool,
) -> Result<()> {
    conn.exec(
        "UPDATE messages SET candidate_id = ?2, assignment = ?3, match_reason = ?4, match_detail = ?5,
                closed_thread = ?6
         WHERE id = ?1",
        params![message, candidate, assignment, d.reason, d.detail, closed_thread],
    )?;
    conn.exec(
        "DELETE FROM message_suggestions WHERE message_id = ?1",
        params![message],
    )?;
    Ok(())
}

/// Records the decision about a message; returns the application it created.
pub(super) fn apply(
    conn: &Connection,
    message: i64,
    d: &Filed<'_>,
    at_ms: i64,
) -> Result<Option<i64>> {
    match &d.placement {
        Placement::Candidate(c) => {
            if let Some(address) = d.learn_address {
                add_address(conn, *c, address, at_ms)?;
            }
            if let Some(report) = &d.report {
                super::suppressions::record_bounce(conn, report, at_ms)?;
            }
            set_match(conn, message, Some(*c), "assigned", d, d.closed_thread)?;
            emit_received(conn, message, *c, d, None, at_ms)?;
            Ok(None)
        }
        Placement::New(candidate, application) => {
            let id = insert_candidate(conn, candidate, at_ms)?;
            let application =
                insert_application(conn, id, application, "email", at_ms, Some(message))?;
            set_match(conn, message, Some(id), "assigned", d, false)?;
            emit_received(conn, message, id, d, Some(application), at_ms)?;
            Ok(Some(application))
        }
        Placement::Unassigned(suggestions) => {
            set_match(conn, message, None, "unassigned", d, false)?;
            for s in *suggestions {
                conn.exec(
                    "INSERT OR IGNORE INTO message_suggestions (message_id, candidate_id) VALUES (?1, ?2)",
                    params![message, s],
                )?;
            }
            webhooks::emit(
                conn,
                "message.unassigned",
                None,
                || {
                    Ok(serde_json::json!({
                        "message": webhooks::message_data(conn, message)?,
                        "reason": d.reason,
                        "detail": d.detail,
                        "suggestions": suggestions,
                    }))
                },
                at_ms,
            )?;
            Ok(None)
        }
        Placement::Nowhere => {
            set_match(conn, message, None, "none", d, false)?;
            Ok(None)
        }
    }
}

// ------------------------------------------------------------ operators

/// A candidate as listed.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateSummary {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub gender: String,
    pub language: Option<String>,
    /// Where the language came from: `form`, `content-language` or
    /// `detected`.
    pub language_source: Option<String>,
    pub addresses: Vec<String>,
    /// How many (the detail lists them under `applications`).
    #[serde(rename = "application_count")]
    pub applications: i64,
    #[serde(rename = "message_count")]
    pub messages: i64,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplicationRow {
    pub id: i64,
    pub subsidiary: String,
    pub position: Option<String>,
    pub source: String,
    pub status: String,
    pub received_at: String,
    pub message_id: Option<i64>,
    /// The acknowledgement decided for it, if any.
    pub auto_reply: Option<AutoReplyRow>,
}

/// An acknowledgement decision: sent (queued as an outbox item) or
/// suppressed, and why.
#[derive(Debug, Clone, Serialize)]
pub struct AutoReplyRow {
    pub decision: String,
    pub rule: Option<String>,
    pub detail: String,
    pub item: Option<i64>,
}

/// One mail in a candidate's thread.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadEntry {
    pub id: i64,
    pub direction: String,
    pub received_at: String,
    pub from: Option<Mailbox>,
    pub subject: Option<String>,
    pub reason: Option<String>,
    pub confidence: Option<&'static str>,
    pub detail: Option<String>,
    pub closed_thread: bool,
    /// For our own mail: where its delivery stands.
    pub outbox: Option<ThreadDelivery>,
    pub attachments: Vec<super::DocumentSummary>,
}

/// The delivery of one of our mails, as the thread shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadDelivery {
    /// The outbox item.
    pub item: i64,
    /// scheduled, queued, sending, sent, deferred, failed, cancelled, bounced.
    pub state: String,
    pub attempts: i64,
    /// The upstream's last reply (deferred, sent, failed), or the
    /// diagnostic of the bounce report (bounced).
    pub reply: Option<String>,
    /// Scheduled: not before this (RFC 3339, UTC).
    pub not_before: Option<String>,
    /// Deferred: the next try (RFC 3339, UTC).
    pub next_attempt_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CandidateDetail {
    #[serde(flatten)]
    pub summary: CandidateSummary,
    pub applications: Vec<ApplicationRow>,
    pub thread: Vec<ThreadEntry>,
}

fn summary(conn: &Connection, id: i64) -> Result<Option<CandidateSummary>> {
    let row = conn
        .row(
            "SELECT id, first_name, last_name, gender, language, created_at,
                    (SELECT count(*) FROM applications a WHERE a.candidate_id = c.id),
                    (SELECT count(*) FROM messages m WHERE m.candidate_id = c.id),
                    language_source
             FROM candidates c WHERE id = ?1 AND merged_into IS NULL",
            params![id],
            |r| {
                Ok(CandidateSummary {
                    id: r.get(0)?,
                    first_name: r.get(1)?,
                    last_name: r.get(2)?,
                    gender: r.get(3)?,
                    language: r.get(4)?,
                    created_at: rfc3339(r.get(5)?),
                    applications: r.get(6)?,
                    messages: r.get(7)?,
                    language_source: r.get(8)?,
                    addresses: Vec::new(),
                })
            },
        )
        .optional()?;
    let Some(mut s) = row else { return Ok(None) };
    let mut stmt = conn.prepare_cached(
        "SELECT address FROM candidate_addresses WHERE candidate_id = ?1 ORDER BY added_at, address",
    )?;
    s.addresses = stmt
        .query_map(params![id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(Some(s))
}

/// Candidates, newest first; `search` matches names and addresses.
/// Which candidates a list shows, newest first.
#[derive(Debug, Clone, Default)]
pub struct CandidateFilter<'a> {
    /// In the name or an address (any case).
    pub search: Option<&'a str>,
    /// With an application (one and the same) for this position, in this
    /// status, to this subsidiary...
    pub position: Option<&'a str>,
    pub status: Option<&'a str>,
    pub subsidiary: Option<&'a str>,
    /// ... and to one of these subsidiaries (a user's); `None`: any.
    pub visible: Option<&'a [String]>,
    /// Ids below this one only (the cursor of the page before).
    pub before: Option<i64>,
    pub limit: usize,
}

pub(super) fn list(conn: &Connection, f: &CandidateFilter<'_>) -> Result<Vec<CandidateSummary>> {
    use super::search::SearchText;
    let search = SearchText::given(f.search);
    let (trigram, short) = match &search {
        Some(SearchText::Trigram(t)) => (Some(t.as_str()), None),
        Some(SearchText::Short(t)) => (None, Some(t.as_str())),
        None => (None, None),
    };
    let visible = f
        .visible
        .map(|v| serde_json::to_string(v).unwrap_or_else(|_| "[]".into()));
    let needs_application =
        f.position.is_some() || f.status.is_some() || f.subsidiary.is_some() || visible.is_some();
    // A search reads the index newest first (and stops at the page); the
    // rest walk the candidates newest first.
    let (from, id, matched) = match trigram {
        Some(_) => (
            "candidate_search s JOIN candidates c ON c.id = s.rowid",
            "s.rowid",
            "candidate_search MATCH ?2",
        ),
        None => ("candidates c", "c.id", "?2 IS NULL"),
    };
    let found = ids(
        conn,
        &format!(
            "SELECT c.id FROM {from}
         WHERE c.merged_into IS NULL AND {id} < ?1
           AND {matched}
           AND (?9 IS NULL OR instr(c.search_name, ?9)
                OR EXISTS (SELECT 1 FROM candidate_addresses a
                           WHERE a.candidate_id = c.id AND instr(a.address_key, ?9)))
           AND (NOT ?3 OR EXISTS (SELECT 1 FROM applications ap WHERE ap.candidate_id = c.id
                AND (?4 IS NULL OR ap.position = ?4)
                AND (?5 IS NULL OR ap.status = ?5)
                AND (?6 IS NULL OR ap.subsidiary = ?6)
                AND (?7 IS NULL OR ap.subsidiary IN (SELECT value FROM json_each(?7)))))
         ORDER BY {id} DESC LIMIT ?8"
        ),
        params![
            f.before.unwrap_or(i64::MAX),
            trigram,
            needs_application,
            f.position,
            f.status,
            f.subsidiary,
            visible,
            f.limit as i64,
            short
        ],
    )?;
    let mut out = Vec::with_capacity(found.len());
    for id in found {
        if let Some(s) = summary(conn, id)? {
            out.push(s);
        }
    }
    Ok(out)
}

pub(super) fn show(conn: &Connection, id: i64) -> Result<Option<CandidateDetail>> {
    let Some(id) = resolve(conn, id)? else {
        return Ok(None);
    };
    let Some(summary) = summary(conn, id)? else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT id, subsidiary, position, source, status, received_at, message_id
         FROM applications WHERE candidate_id = ?1 ORDER BY received_at, id",
    )?;
    let applications = stmt
        .query_map(params![id], |r| {
            Ok(ApplicationRow {
                id: r.get(0)?,
                subsidiary: r.get(1)?,
                position: r.get(2)?,
                source: r.get(3)?,
                status: r.get(4)?,
                received_at: rfc3339(r.get(5)?),
                message_id: r.get(6)?,
                auto_reply: None,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut applications = applications;
    for a in &mut applications {
        a.auto_reply = conn
            .row(
                "SELECT decision, rule, detail, item_id FROM auto_replies WHERE application_id = ?1 ORDER BY id DESC LIMIT 1",
                params![a.id],
                |r| Ok(AutoReplyRow { decision: r.get(0)?, rule: r.get(1)?, detail: r.get(2)?, item: r.get(3)? }),
            )
            .optional()?;
    }
    let mut stmt = conn.prepare_cached(
        "SELECT m.id, m.direction, m.received_at, m.from_name, m.from_addr, m.subject, m.match_reason,
                m.match_detail, m.closed_thread, o.id, o.state, o.attempts, o.last_reply,
                o.not_before, o.next_attempt_at
         FROM messages m LEFT JOIN outbox o ON o.message_id = m.id
         WHERE m.candidate_id = ?1 ORDER BY m.received_at, m.id",
    )?;
    let mut thread = stmt
        .query_map(params![id], |r| {
            Ok(ThreadEntry {
                id: r.get(0)?,
                direction: r.get(1)?,
                received_at: rfc3339(r.get(2)?),
                from: super::mailbox(r.get(3)?, r.get(4)?),
                subject: r.get(5)?,
                reason: r.get(6)?,
                confidence: None,
                detail: r.get(7)?,
                closed_thread: r.get(8)?,
                outbox: match (r.get::<_, Option<i64>>(9)?, r.get::<_, Option<String>>(10)?) {
                    (Some(item), Some(state)) => Some(ThreadDelivery {
                        item,
                        state,
                        attempts: r.get::<_, Option<i64>>(11)?.unwrap_or(0),
                        reply: r.get(12)?,
                        not_before: r.get::<_, Option<i64>>(13)?.map(rfc3339),
                        next_attempt_at: r.get::<_, Option<i64>>(14)?.map(rfc3339),
                    }),
                    _ => None,
                },
                attachments: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for t in &mut thread {
        t.attachments = super::documents(conn, t.id)?;
    }
    Ok(Some(CandidateDetail {
        summary,
        applications,
        thread,
    }))
}

fn require_candidate(conn: &Connection, id: i64) -> Result<i64> {
    resolve(conn, id)?.ok_or_else(|| StoreError(format!("no candidate {id}")))
}

/// Files a message under a candidate by hand; the mail's author address
/// becomes known for the candidate (`author`, when there is one).
pub(super) fn assign(
    conn: &mut Connection,
    message: i64,
    candidate: i64,
    author: Option<&str>,
) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let candidate = require_candidate(&tx, candidate)?;
    let previous: Option<String> = tx
        .row(
            "SELECT match_reason FROM messages WHERE id = ?1",
            params![message],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| StoreError(format!("no message {message}")))?;
    let detail = format!(
        "assigned by an operator (was: {})",
        previous.as_deref().unwrap_or("not matched")
    );
    let closed = thread_closed(&tx, candidate)?;
    let filed = Filed {
        placement: Placement::Candidate(candidate),
        reason: MANUAL,
        detail: &detail,
        closed_thread: closed,
        learn_address: None,
        report: None,
    };
    set_match(&tx, message, Some(candidate), "assigned", &filed, closed)?;
    let now = now_ms();
    if let Some(address) = author {
        add_address(&tx, candidate, address, now)?;
    }
    emit_received(&tx, message, candidate, &filed, None, now)?;
    tx.commit()?;
    Ok(())
}

/// The match reason of a mail an operator assigned.
pub const MANUAL: &str = "manual";

/// Merges candidate `from` into `into`: addresses, applications, messages and
/// suggestions move; `from` remains as a pointer so old tokens still lead home.
pub(super) fn merge(conn: &mut Connection, into: i64, from: i64) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let into = require_candidate(&tx, into)?;
    let from = require_candidate(&tx, from)?;
    if into == from {
        return Err(StoreError("cannot merge a candidate into itself".into()));
    }
    tx.exec(
        "INSERT OR IGNORE INTO candidate_addresses (candidate_id, address, address_key, added_at)
         SELECT ?1, address, address_key, added_at FROM candidate_addresses WHERE candidate_id = ?2",
        params![into, from],
    )?;
    tx.exec(
        "DELETE FROM candidate_addresses WHERE candidate_id = ?1",
        params![from],
    )?;
    tx.exec(
        "UPDATE applications SET candidate_id = ?1 WHERE candidate_id = ?2",
        params![into, from],
    )?;
    tx.exec(
        "UPDATE messages SET candidate_id = ?1 WHERE candidate_id = ?2",
        params![into, from],
    )?;
    tx.exec(
        "UPDATE documents SET candidate_id = ?1 WHERE candidate_id = ?2",
        params![into, from],
    )?;
    tx.exec(
        "INSERT OR IGNORE INTO message_suggestions (message_id, candidate_id)
         SELECT message_id, ?1 FROM message_suggestions WHERE candidate_id = ?2",
        params![into, from],
    )?;
    tx.exec(
        "DELETE FROM message_suggestions WHERE candidate_id = ?1",
        params![from],
    )?;
    tx.exec(
        "UPDATE candidates SET
            first_name = CASE WHEN first_name = '' THEN (SELECT first_name FROM candidates WHERE id = ?2) ELSE first_name END,
            last_name = CASE WHEN last_name = '' THEN (SELECT last_name FROM candidates WHERE id = ?2) ELSE last_name END,
            language = coalesce(language, (SELECT language FROM candidates WHERE id = ?2)),
            language_source = CASE WHEN language IS NULL
                THEN (SELECT language_source FROM candidates WHERE id = ?2) ELSE language_source END
         WHERE id = ?1",
        params![into, from],
    )?;
    tx.exec(
        "UPDATE candidates SET merged_into = ?1 WHERE id = ?2",
        params![into, from],
    )?;
    tx.commit()?;
    Ok(())
}

/// An application from the online form (or the CLI). The candidate is
/// `candidate` if given; else the one with this address *and* name; else a
/// new one (two people may share an address, e.g. a family's).
pub struct FormApplication<'a> {
    pub candidate: Option<i64>,
    pub email: Option<&'a str>,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub subsidiary: &'a str,
    pub position: Option<&'a str>,
    /// The applicant's language as the form gives it: it replaces any
    /// language the candidate had (source `form`).
    pub language: Option<&'a str>,
}

/// Returns (candidate id, application id, candidate created).
/// The language source of a language the form gave.
const FORM_LANGUAGE: &str = "form";

pub(super) fn add_form_application(
    tx: &Connection,
    f: &FormApplication,
) -> Result<(i64, i64, bool)> {
    let now = now_ms();
    let (candidate, created) = match (f.candidate, f.email) {
        (Some(c), _) => (require_candidate(tx, c)?, false),
        (None, Some(email)) => {
            let same_person = ids(
                tx,
                "SELECT c.id FROM candidates c JOIN candidate_addresses a ON a.candidate_id = c.id
                 WHERE a.address_key = ?1 AND c.merged_into IS NULL
                   AND lower(c.first_name) = lower(?2) AND lower(c.last_name) = lower(?3)
                 ORDER BY c.id",
                params![email.to_lowercase(), f.first_name, f.last_name],
            )?;
            match same_person.first() {
                Some(&c) => (c, false),
                None => {
                    let c = insert_candidate(
                        tx,
                        &NewCandidate {
                            first_name: f.first_name,
                            last_name: f.last_name,
                            email,
                            language: f.language,
                            language_source: f.language.map(|_| FORM_LANGUAGE),
                        },
                        now,
                    )?;
                    (c, true)
                }
            }
        }
        (None, None) => {
            return Err(StoreError(
                "a candidate id or an e-mail address is needed".into(),
            ));
        }
    };
    if let Some(language) = f.language
        && !created
    {
        tx.exec(
            "UPDATE candidates SET language = ?1, language_source = ?2 WHERE id = ?3",
            params![language, FORM_LANGUAGE, candidate],
        )?;
    }
    let app = NewApplication {
        subsidiary: f.subsidiary,
        position: f.position,
    };
    let application = insert_application(tx, candidate, &app, "form", now, None)?;
    Ok((candidate, application, created))
}

/// A change to a candidate as a recruiter makes it: each field given is set.
#[derive(Debug, Clone, Default)]
pub struct CandidateChange<'a> {
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    /// `female`, `male`, `diverse`, `unknown` (the schema refuses others).
    pub gender: Option<&'a str>,
    /// `Some(None)` clears it (the subsidiary's language is used).
    pub language: Option<Option<&'a str>>,
}

/// Where a language set by hand came from: it wins over every other.
const MANUAL_LANGUAGE: &str = "manual";

fn change_candidate(conn: &Connection, id: i64, c: &CandidateChange<'_>) -> Result<i64> {
    let id = require_candidate(conn, id)?;
    conn.exec(
        "UPDATE candidates SET
            first_name = coalesce(?2, first_name),
            last_name = coalesce(?3, last_name),
            gender = coalesce(?4, gender),
            language = CASE WHEN ?5 THEN ?6 ELSE language END,
            language_source = CASE WHEN ?5 THEN (CASE WHEN ?6 IS NULL THEN NULL ELSE ?7 END)
                              ELSE language_source END
         WHERE id = ?1",
        params![
            id,
            c.first_name,
            c.last_name,
            c.gender,
            c.language.is_some(),
            c.language.flatten(),
            MANUAL_LANGUAGE
        ],
    )?;
    Ok(id)
}

/// Sets the status of one application, or of all of a candidate's.
pub(super) fn set_status(
    conn: &Connection,
    candidate: Option<i64>,
    application: Option<i64>,
    status: &str,
) -> Result<usize> {
    if !STATUSES.contains(&status) {
        return Err(StoreError(format!(
            "unknown status {status:?} (one of {})",
            STATUSES.join(", ")
        )));
    }
    let n = match (candidate, application) {
        (_, Some(a)) => conn.exec(
            "UPDATE applications SET status = ?2 WHERE id = ?1",
            params![a, status],
        )?,
        (Some(c), None) => {
            let c = require_candidate(conn, c)?;
            conn.exec(
                "UPDATE applications SET status = ?2 WHERE candidate_id = ?1",
                params![c, status],
            )?
        }
        (None, None) => return Err(StoreError("name an application or a candidate".into())),
    };
    if n == 0 {
        return Err(StoreError("no such application".into()));
    }
    Ok(n)
}

/// Messages not matched yet (stored before matching existed, or whose
/// matching failed), oldest first.
pub(super) fn pending(conn: &Connection, after: i64, limit: usize) -> Result<Vec<i64>> {
    Ok(ids(
        conn,
        "SELECT id FROM messages WHERE assignment = 'pending' AND direction = 'inbound' AND id > ?2
         ORDER BY id LIMIT ?1",
        params![limit as i64, after],
    )?)
}

/// What composing a mail to a candidate needs to know.
#[derive(Debug, Clone)]
pub struct ComposeFacts {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub gender: String,
    pub language: Option<String>,
    /// The address mail goes to: the one the candidate applied with.
    pub email: String,
    /// The latest application.
    pub application: Option<ApplicationFacts>,
    /// The candidate's latest mail with a Message-ID: (id, its References).
    pub last_inbound: Option<(String, Vec<String>)>,
}

#[derive(Debug, Clone)]
pub struct ApplicationFacts {
    pub id: i64,
    pub subsidiary: String,
    pub position: Option<String>,
    pub status: String,
    pub received_at_ms: i64,
}

pub(super) fn compose_facts(conn: &Connection, id: i64) -> Result<Option<ComposeFacts>> {
    let Some(id) = resolve(conn, id)? else {
        return Ok(None);
    };
    let Some(s) = summary(conn, id)? else {
        return Ok(None);
    };
    let Some(email) = s.addresses.first().cloned() else {
        return Err(StoreError(format!("candidate {id} has no e-mail address")));
    };
    let application = conn
        .row(
            "SELECT id, subsidiary, position, status, received_at FROM applications
             WHERE candidate_id = ?1 ORDER BY received_at DESC, id DESC LIMIT 1",
            params![id],
            |r| {
                Ok(ApplicationFacts {
                    id: r.get(0)?,
                    subsidiary: r.get(1)?,
                    position: r.get(2)?,
                    status: r.get(3)?,
                    received_at_ms: r.get(4)?,
                })
            },
        )
        .optional()?;
    let last_inbound = conn
        .row(
            "SELECT message_id, references_json FROM messages
             WHERE candidate_id = ?1 AND direction = 'inbound' AND message_id IS NOT NULL
             ORDER BY received_at DESC, id DESC LIMIT 1",
            params![id],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()?
        .map(|(mid, refs)| (mid, serde_json::from_str(&refs).unwrap_or_default()));
    Ok(Some(ComposeFacts {
        id,
        first_name: s.first_name,
        last_name: s.last_name,
        gender: s.gender,
        language: s.language,
        email,
        application,
        last_inbound,
    }))
}

/// An acknowledgement to compose.
#[derive(Debug, Clone)]
pub struct PendingAutoReply {
    pub id: i64,
    pub candidate: i64,
    pub template: String,
    pub sender: String,
}

pub(super) fn pending_auto_replies(conn: &Connection) -> Result<Vec<PendingAutoReply>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, candidate_id, template, sender FROM auto_replies WHERE decision = 'pending' ORDER BY id LIMIT 500",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(PendingAutoReply {
            id: r.get(0)?,
            candidate: r.get(1)?,
            template: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            sender: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn finish_auto_reply(
    conn: &Connection,
    id: i64,
    decision: &str,
    item: Option<i64>,
    detail: &str,
) -> Result<()> {
    conn.exec(
        "UPDATE auto_replies SET decision = ?2, item_id = ?3, detail = CASE WHEN ?4 = '' THEN detail ELSE ?4 END
         WHERE id = ?1 AND decision = 'pending'",
        params![id, decision, item, detail],
    )?;
    Ok(())
}

/// Who an application's acknowledgement would go to.
pub(super) fn acknowledgement_subject(
    conn: &Connection,
    application: i64,
) -> Result<AcknowledgementSubject> {
    let (candidate, position): (i64, Option<String>) = conn.row(
        "SELECT candidate_id, position FROM applications WHERE id = ?1",
        params![application],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let address: String = conn
        .row(
            "SELECT address_key FROM candidate_addresses WHERE candidate_id = ?1 ORDER BY added_at LIMIT 1",
            params![candidate],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or_default();
    Ok(AcknowledgementSubject {
        candidate,
        position,
        address,
    })
}

/// Acknowledgements decided to go out (pending or queued): to this
/// candidate in this category since `period_start_ms`, to this address and
/// to anyone in the hour before `now_ms`.
pub(super) fn acknowledgement_counts(
    conn: &Connection,
    subject: &AcknowledgementSubject,
    category: Option<&str>,
    period_start_ms: i64,
    now_ms: i64,
) -> Result<AcknowledgementCounts> {
    let in_period: i64 = conn.row(
        "SELECT count(*) FROM auto_replies WHERE candidate_id = ?1 AND category = ?2 AND decision IN ('pending', 'queued')
           AND created_at >= ?3",
        params![subject.candidate, category, period_start_ms],
        |r| r.get(0),
    )?;
    let to_address_last_hour: i64 = conn.row(
        "SELECT count(*) FROM auto_replies WHERE address = ?1 AND decision IN ('pending', 'queued') AND created_at >= ?2",
        params![subject.address, now_ms - 3_600_000],
        |r| r.get(0),
    )?;
    let last_hour: i64 = conn.row(
        "SELECT count(*) FROM auto_replies WHERE created_at >= ?1 AND decision IN ('pending', 'queued')",
        params![now_ms - 3_600_000],
        |r| r.get(0),
    )?;
    Ok(AcknowledgementCounts {
        in_period,
        to_address_last_hour,
        last_hour,
    })
}

/// Records an acknowledgement decision: `pending` (to compose) or
/// `suppressed` with its rule.
pub(super) fn record_acknowledgement(
    conn: &Connection,
    a: &NewAcknowledgement<'_>,
) -> Result<AutoReplyRow> {
    let (decision, rule, detail) = match a.suppressed {
        Some((rule, detail)) => ("suppressed", Some(rule), detail),
        None => ("pending", None, ""),
    };
    conn.exec(
        "INSERT INTO auto_replies (application_id, candidate_id, category, source, address, decision, rule, detail,
                                   template, sender, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            a.application,
            a.subject.candidate,
            a.category,
            a.source,
            a.subject.address,
            decision,
            rule,
            detail,
            a.template,
            a.sender,
            a.at_ms
        ],
    )?;
    if let Some((rule, detail)) = a.suppressed {
        webhooks::emit(
            conn,
            "auto_reply.suppressed",
            Some(a.subject.candidate),
            || {
                Ok(serde_json::json!({
                    "application": a.application,
                    "category": a.category,
                    "source": a.source,
                    "rule": rule,
                    "detail": detail,
                }))
            },
            a.at_ms,
        )?;
    }
    Ok(AutoReplyRow {
        decision: decision.to_string(),
        rule: rule.map(str::to_string),
        detail: detail.to_string(),
        item: None,
    })
}

impl Store {
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
    pub fn compose_facts(&self, candidate: i64) -> Result<Option<ComposeFacts>> {
        compose_facts(&self.conn, candidate)
    }

    /// Candidates, newest first; `search` matches names and addresses.
    pub fn candidates(&self, search: Option<&str>, limit: usize) -> Result<Vec<CandidateSummary>> {
        list(
            &self.conn,
            &CandidateFilter {
                search,
                limit,
                ..CandidateFilter::default()
            },
        )
    }

    /// Candidates as the filter says, newest first.
    pub fn candidates_filtered(
        &self,
        filter: &CandidateFilter<'_>,
    ) -> Result<Vec<CandidateSummary>> {
        list(&self.conn, filter)
    }

    /// One candidate with addresses, applications and thread (merged ids lead to the survivor).
    pub fn candidate(&self, id: i64) -> Result<Option<CandidateDetail>> {
        show(&self.conn, id)
    }

    /// Files a message under a candidate by hand; `author` becomes one of the candidate's addresses.
    pub fn assign(&mut self, message: i64, candidate: i64, author: Option<&str>) -> Result<()> {
        assign(&mut self.conn, message, candidate, author)
    }

    /// Merges candidate `from` into `into`.
    pub fn merge(&mut self, into: i64, from: i64) -> Result<()> {
        merge(&mut self.conn, into, from)
    }

    /// Records an application from the online form; returns (candidate, application, created).
    pub fn add_form_application(&mut self, f: &FormApplication) -> Result<(i64, i64, bool)> {
        self.write(|tx| tx.add_form_application(f))
    }

    /// Changes a candidate's names, gender or language (a merged id leads
    /// to the survivor, whose id is returned).
    pub fn change_candidate(&self, id: i64, change: &CandidateChange<'_>) -> Result<i64> {
        change_candidate(&self.conn, id, change)
    }

    /// The candidate an application belongs to.
    pub fn application_candidate(&self, application: i64) -> Result<Option<i64>> {
        Ok(self
            .conn
            .row(
                "SELECT candidate_id FROM applications WHERE id = ?1",
                params![application],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// A candidate's record without the applications and the thread (a
    /// merged one's survivor's).
    pub fn candidate_summary(&self, id: i64) -> Result<Option<CandidateSummary>> {
        match resolve(&self.conn, id)? {
            Some(id) => summary(&self.conn, id),
            None => Ok(None),
        }
    }

    /// The candidate an id leads to (a merged one's survivor), if any.
    pub fn resolve_candidate(&self, id: i64) -> Result<Option<i64>> {
        Ok(resolve(&self.conn, id)?)
    }

    /// Sets the status of an application, or of all of a candidate's.
    pub fn set_status(
        &self,
        candidate: Option<i64>,
        application: Option<i64>,
        status: &str,
    ) -> Result<usize> {
        set_status(&self.conn, candidate, application, status)
    }

    /// Acknowledgements decided but not composed yet.
    pub fn pending_auto_replies(&self) -> Result<Vec<PendingAutoReply>> {
        pending_auto_replies(&self.conn)
    }

    pub fn auto_reply_failed(&self, id: i64, why: &str) -> Result<()> {
        finish_auto_reply(&self.conn, id, "failed", None, why)
    }
}

#[cfg(test)]
mod tests {
    use super::super::filing::Tx;
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::create(&dir.path().join("j.db")).expect("store");
        (dir, store)
    }

    fn form<'a>(email: &'a str, first: &'a str, last: &'a str) -> FormApplication<'a> {
        FormApplication {
            candidate: None,
            email: Some(email),
            first_name: first,
            last_name: last,
            subsidiary: "acme-de",
            position: Some("backend"),
            language: None,
        }
    }

    #[test]
    fn a_form_application_finds_the_same_person_and_only_them() {
        let (_dir, mut store) = store();
        let (ada, first, created) = store
            .add_form_application(&form("Ada@Example.org", "Ada", "Lovelace"))
            .expect("first");
        assert!(created);
        // Same address (any case) and same name: the same candidate.
        let (again, second, created) = store
            .add_form_application(&form("ada@example.org", "ADA", "lovelace"))
            .expect("second");
        assert_eq!((again, created), (ada, false));
        assert_ne!(first, second, "a second application");
        // Same address, another name (a shared family address): a new person.
        let (other, _, created) = store
            .add_form_application(&form("ada@example.org", "Byron", "Lovelace"))
            .expect("third");
        assert!(created && other != ada);
        let detail = store.candidate(ada).expect("read").expect("ada");
        assert_eq!(detail.applications.len(), 2);
        assert_eq!(detail.summary.addresses, ["Ada@example.org"]);
        // A candidate id that does not exist is refused, nothing written.
        let err = store
            .add_form_application(&FormApplication {
                candidate: Some(999),
                ..form("x@example.org", "X", "Y")
            })
            .expect_err("no candidate 999");
        assert!(err.0.contains("no candidate 999"), "{err}");
        assert_eq!(store.candidates(None, 10).expect("list").len(), 2);
    }

    /// The detail flattens the summary: no key may be in both (a JSON
    /// object with a key twice means what the parser makes of it).
    #[test]
    fn a_candidate_as_json_has_each_key_once() {
        let (_dir, mut store) = store();
        let (a, _, _) = store
            .add_form_application(&form("erika@example.org", "Erika", "Muster"))
            .expect("a");
        let detail = store.candidate(a).expect("read").expect("there");
        let text = serde_json::to_string(&detail).expect("json");
        let value: serde_json::Value = serde_json::from_str(&text).expect("parse");
        let object = value.as_object().expect("object");
        // Every key serde wrote at the top is a distinct key of the object.
        let mut depth = 0;
        let mut keys = 0;
        let mut in_string = false;
        let mut escaped = false;
        let mut after_open_or_comma = false;
        for c in text.chars() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                }
                continue;
            }
            match c {
                '"' => {
                    if depth == 1 && after_open_or_comma {
                        keys += 1;
                    }
                    after_open_or_comma = false;
                    in_string = true;
                }
                '{' | '[' => {
                    depth += 1;
                    after_open_or_comma = c == '{';
                }
                '}' | ']' => depth -= 1,
                ',' => after_open_or_comma = depth == 1,
                _ => {}
            }
        }
        assert_eq!(keys, object.len(), "a key is written twice: {text}");
    }

    #[test]
    fn a_merge_moves_everything_and_old_ids_lead_to_the_survivor() {
        let (_dir, mut store) = store();
        let (a, _, _) = store
            .add_form_application(&form("erika@example.org", "Erika", "Muster"))
            .expect("a");
        let (b, _, _) = store
            .add_form_application(&form("e.muster@example.net", "Erika", "Muster"))
            .expect("b");
        store.merge(a, b).expect("merge");
        let survivor = store.candidate(b).expect("read").expect("b leads to a");
        assert_eq!(survivor.summary.id, a);
        let mut addresses = survivor.summary.addresses.clone();
        addresses.sort();
        assert_eq!(addresses, ["e.muster@example.net", "erika@example.org"]);
        assert_eq!(survivor.applications.len(), 2);
        store
            .write(|tx: &Tx<'_>| {
                assert_eq!(tx.resolve_candidate(b)?, Some(a));
                assert_eq!(tx.candidates_with_address("E.MUSTER@example.net")?, [a]);
                Ok(())
            })
            .expect("lookups");
        assert!(store.merge(a, a).is_err(), "not into itself");
        assert_eq!(store.candidates(None, 10).expect("list").len(), 1);
    }

    #[test]
    fn statuses_close_a_thread_and_unknown_ones_are_refused() {
        let (_dir, mut store) = store();
        let (c, application, _) = store
            .add_form_application(&form("jo@example.org", "Jo", "Doe"))
            .expect("form");
        let closed = |store: &mut Store| store.write(|tx| tx.thread_closed(c)).expect("closed");
        assert!(!closed(&mut store));
        assert_eq!(
            store
                .set_status(None, Some(application), "rejected")
                .expect("set"),
            1
        );
        assert!(closed(&mut store), "every application closed");
        assert!(store.set_status(Some(c), None, "sleeping").is_err());
        assert!(store.set_status(None, None, "new").is_err());
        assert_eq!(
            store
                .set_status(Some(c), None, "interview")
                .expect("reopen"),
            1
        );
        assert!(!closed(&mut store));
    }

    #[test]
    fn acknowledgement_counts_see_only_what_went_out_in_their_window() {
        let (_dir, mut store) = store();
        let (_, application, _) = store
            .add_form_application(&form("kim@example.org", "Kim", "Lee"))
            .expect("form");
        let hour = 3_600_000;
        let now = 100 * hour;
        store
            .write(|tx| {
                let subject = tx.acknowledgement_subject(application)?;
                assert_eq!(subject.address, "kim@example.org");
                assert_eq!(subject.position.as_deref(), Some("backend"));
                for (at, suppressed) in [
                    (now - 2 * hour, None),
                    (now - 10, None),
                    (now - 5, Some(("rate-limit", "x"))),
                ] {
                    tx.record_acknowledgement(&NewAcknowledgement {
                        application,
                        subject: &subject,
                        category: Some("engineering"),
                        source: "form",
                        suppressed,
                        template: Some("received"),
                        sender: Some("default"),
                        at_ms: at,
                    })?;
                }
                let counts =
                    tx.acknowledgement_counts(&subject, Some("engineering"), now - 3 * hour, now)?;
                // Suppressed decisions never count; the old one only in the period.
                assert_eq!(counts.in_period, 2);
                assert_eq!(counts.to_address_last_hour, 1);
                assert_eq!(counts.last_hour, 1);
                let other =
                    tx.acknowledgement_counts(&subject, Some("sales"), now - 3 * hour, now)?;
                assert_eq!(other.in_period, 0, "another category");
                Ok(())
            })
            .expect("counts");
    }
}
