//! Reads of stored messages: the inbox (SQL built from the filters asked
//! for, so that each walks an index), one message, its raw bytes and
//! documents, the mails still to file.

use super::search::SearchText;
#[allow(unused_imports)]
use super::*;
use rusqlite::{Connection, OptionalExtension, params};

/// Where the inbox's rows come from: the mails newest first, filtered as
/// they go (the common case: what is asked for is frequent, so a page
/// fills after a few rows), or the few mails a rare filter picks, sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Driver {
    /// The ids (or an index in id order), newest first.
    Scan,
    /// The search index, newest first.
    Search,
    /// The mails of the candidates with a matching application (few).
    Applications,
    /// The mails with a document of the category (few).
    Category,
    /// The filed mails not yet in the search index (`search_backlog`: at
    /// most about a second of mail), read row by row beside `Search`.
    Backlog,
    /// The mails of the candidates a user may see, when their subsidiaries
    /// have few applications; read beside `Nobody`.
    Visible,
    /// The mails filed on nobody (everyone's to file), newest first; a
    /// search reads them row by row (they are the unassigned inbox and the
    /// automatic mail: few beside a user's own).
    Nobody,
}

/// At most this many rows picked by a filter are sorted; above it the
/// inbox walks the mails newest first instead, which then stops early.
pub(super) const FEW: i64 = 2000;

/// The SQL of `inbox`: only the conditions asked for, so that SQLite walks
/// the index that answers them newest first (messages_assignment,
/// messages_candidate, the search index, or the ids) and stops after `limit`
/// rows; or, for a rare filter (`driver`), reads the few mails it picks
/// and sorts them.
pub(super) fn inbox_sql(filter: &InboxFilter, driver: Driver) -> String {
    let search = filter.search_text();
    let application = application_conditions(filter);
    let category = " d.category = :category AND d.deleted_at IS NULL";
    let (from, id) = match (driver, &search) {
        (Driver::Search | Driver::Scan, Some(_)) => (
            "message_search s JOIN messages m ON m.id = s.rowid".to_string(),
            "s.rowid",
        ),
        // CROSS JOIN keeps the order: the few picked first, then each mail.
        (Driver::Applications, _) => (
            format!(
                "(SELECT DISTINCT ap.candidate_id FROM applications ap WHERE 1{application}) picked
                 CROSS JOIN messages m ON m.candidate_id = picked.candidate_id"
            ),
            "m.id",
        ),
        (Driver::Category, _) => (
            format!(
                "(SELECT DISTINCT d.message_id FROM documents d WHERE{category}) picked
                 CROSS JOIN messages m ON m.id = picked.message_id"
            ),
            "m.id",
        ),
        (Driver::Backlog, _) => (
            "search_backlog b JOIN messages m ON m.id = b.message_id".to_string(),
            "b.message_id",
        ),
        (Driver::Visible, _) => (
            "(SELECT DISTINCT ap.candidate_id FROM applications ap
              WHERE ap.subsidiary IN (SELECT value FROM json_each(:visible))) picked
             CROSS JOIN messages m ON m.candidate_id = picked.candidate_id"
                .to_string(),
            "m.id",
        ),
        _ => ("messages m".to_string(), "m.id"),
    };
    let mut conditions = format!("{id} < :before");
    if matches!(driver, Driver::Search | Driver::Scan) {
        match &search {
            Some(SearchText::Trigram(_)) => {
                conditions.push_str(" AND message_search MATCH :search")
            }
            Some(SearchText::Short(_)) => {
                conditions.push_str(" AND (instr(s.mail, :search) OR instr(s.candidate, :search))")
            }
            None => {}
        }
    }
    if matches!(driver, Driver::Backlog | Driver::Visible | Driver::Nobody) {
        // What the index would match: the mail's text as the writer will
        // index it; the candidate's name folded in case as the trigram
        // index folds it (the short search's `instr` above does not).
        let mail = super::search::MAIL_TEXT;
        match &search {
            Some(SearchText::Trigram(_)) => conditions.push_str(&format!(
                " AND (instr({mail}, :folded)
                       OR instr(jobmail_fold(coalesce(c.search_name, '')), :folded))"
            )),
            Some(SearchText::Short(_)) => conditions.push_str(&format!(
                " AND (instr({mail}, :folded) OR instr(coalesce(c.search_name, ''), :folded))"
            )),
            None => {}
        }
    }
    if filter.unassigned {
        conditions.push_str(" AND m.assignment = 'unassigned'");
    }
    if filter.candidate.is_some() {
        conditions.push_str(" AND m.candidate_id = :candidate");
    } else {
        // The inbox is the mail received; ours is in the thread and the queue.
        conditions.push_str(" AND m.direction = 'inbound'");
    }
    if !application.is_empty() && driver != Driver::Applications {
        conditions.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM applications ap WHERE ap.candidate_id = m.candidate_id{application})"
        ));
    }
    if driver == Driver::Nobody {
        conditions.push_str(" AND m.candidate_id IS NULL");
    }
    if filter.visible.is_some() && !matches!(driver, Driver::Visible | Driver::Nobody) {
        // Mail filed on nobody is everyone's to file.
        conditions.push_str(
            " AND (m.candidate_id IS NULL OR EXISTS (SELECT 1 FROM applications ap
                   WHERE ap.candidate_id = m.candidate_id
                     AND ap.subsidiary IN (SELECT value FROM json_each(:visible))))",
        );
    }
    if filter.category.is_some() && driver != Driver::Category {
        // `+`: the mail's own documents (documents_message), never every
        // document of the category for each mail (documents_category,
        // which SQLite picks otherwise: measured, a page took seconds).
        conditions.push_str(
            " AND EXISTS (SELECT 1 FROM documents d WHERE d.message_id = m.id
                   AND +d.category = :category AND d.deleted_at IS NULL)",
        );
    }
    format!(
        "SELECT m.id, m.received_at, m.envelope_sender, m.from_name, m.from_addr, m.subject, m.size,
                m.automatic, m.delivery_report, m.assignment, m.candidate_id, c.first_name,
                c.last_name, m.match_reason, m.direction
         FROM {from} LEFT JOIN candidates c ON c.id = m.candidate_id
         WHERE {conditions} ORDER BY {id} DESC LIMIT :limit"
    )
}

/// ` AND ap.subsidiary = :subsidiary …` for the application filters
/// given: one and the same application matches them all.
fn application_conditions(filter: &InboxFilter) -> String {
    let mut conditions = String::new();
    for (field, given) in [
        ("subsidiary", filter.subsidiary.is_some()),
        ("position", filter.position.is_some()),
        ("status", filter.status.is_some()),
    ] {
        if given {
            conditions.push_str(&format!(" AND ap.{field} = :{field}"));
        }
    }
    conditions
}

/// How many rows a filter picks, counted up to `FEW + 1` (the SQL of
/// `Store::inbox_driver`).
fn few_sql(filter: &InboxFilter, driver: Driver) -> Option<String> {
    match driver {
        Driver::Applications => Some(format!(
            "SELECT count(*) FROM (SELECT 1 FROM applications ap WHERE 1{} LIMIT :few)",
            application_conditions(filter)
        )),
        Driver::Category => Some(
            "SELECT count(*) FROM (SELECT 1 FROM documents d
             WHERE d.category = :category AND d.deleted_at IS NULL LIMIT :few)"
                .to_string(),
        ),
        Driver::Visible => Some(
            "SELECT count(*) FROM (SELECT 1 FROM applications ap
             WHERE ap.subsidiary IN (SELECT value FROM json_each(:visible)) LIMIT :few)"
                .to_string(),
        ),
        Driver::Scan | Driver::Search | Driver::Backlog | Driver::Nobody => None,
    }
}

/// The user's subsidiaries as the JSON array `json_each` reads.
fn visible_json(filter: &InboxFilter) -> Result<Option<String>> {
    filter
        .visible
        .as_ref()
        .map(|v| serde_json::to_string(v).map_err(|e| StoreError(e.to_string())))
        .transpose()
}

/// Binds a named parameter if the statement has it (listings build their
/// SQL from the filters given, so a parameter may be absent).
pub(super) fn bind_named<T: rusqlite::ToSql>(
    stmt: &mut rusqlite::CachedStatement<'_>,
    name: &str,
    value: T,
) -> Result<()> {
    if let Some(i) = stmt.parameter_index(name)? {
        stmt.raw_bind_parameter(i, value)?;
    }
    Ok(())
}

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
    /// `inbound`, or `outbound` (our own mail, listed in a thread only).
    pub direction: String,
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
    /// For unassigned mail: the candidates it could belong to.
    pub suggestions: Vec<CandidateRef>,
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
    /// Only mails whose subject, sender or candidate's name holds this text
    /// (any case, accents or not).
    pub search: Option<String>,
    /// Only mails of candidates with an application to this subsidiary, for
    /// this position, in this status (one application matching all given).
    pub subsidiary: Option<String>,
    pub position: Option<String>,
    pub status: Option<String>,
    /// Only mails with a document of this category.
    pub category: Option<String>,
    /// Only mails filed on nobody or on a candidate with an application to
    /// one of these subsidiaries (a user's); `None`: all.
    pub visible: Option<Vec<String>>,
}

impl InboxFilter {
    /// The search asked for, if any text is left once trimmed.
    pub(super) fn search_text(&self) -> Option<SearchText> {
        SearchText::given(self.search.as_deref())
    }
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

pub(super) fn candidate_ref(
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
pub(super) fn documents(conn: &Connection, message_id: i64) -> Result<Vec<DocumentSummary>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, part, filename, content_type, size, sha256, category
         FROM documents WHERE message_id = ?1 AND deleted_at IS NULL ORDER BY id",
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

/// The candidates an unassigned mail could belong to.
fn suggestions(conn: &Connection, message: i64) -> Result<Vec<CandidateRef>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.first_name, c.last_name FROM message_suggestions s
         JOIN candidates c ON c.id = s.candidate_id WHERE s.message_id = ?1 ORDER BY c.id",
    )?;
    Ok(stmt
        .query_map(params![message], |r| {
            Ok(candidate_ref(r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .filter_map(|r| r.transpose())
        .collect::<std::result::Result<Vec<_>, _>>()?)
}

pub(super) fn mailbox(name: Option<String>, address: Option<String>) -> Option<Mailbox> {
    address.map(|address| Mailbox { name, address })
}

pub(super) fn from_json<T: serde::de::DeserializeOwned + Default>(text: String) -> T {
    serde_json::from_str(&text).unwrap_or_default()
}

impl Store {
    /// The latest mails, newest first, as the filter says. A search reads
    /// the index and the mails filed since its last pass (the backlog),
    /// and merges them: the same mails as if all were indexed.
    pub fn inbox(&self, filter: &InboxFilter) -> Result<Vec<InboxEntry>> {
        let driver = self.inbox_driver(filter)?;
        // A search of the index: the backlog too, first (a mail the writer
        // indexes between the two reads is then read twice and once kept,
        // never missed). A user of few applications' subsidiaries: their
        // candidates' mails and the mails filed on nobody, both read from
        // `messages` itself (so the backlog's are among them).
        let beside: &[Driver] = match (filter.search_text(), driver) {
            (_, Driver::Visible) => &[Driver::Nobody],
            (Some(_), _) => &[Driver::Backlog],
            (None, _) => &[],
        };
        let mut newest = Vec::new();
        for d in beside {
            newest.extend(self.inbox_rows(filter, *d)?);
        }
        let mut entries = self.inbox_rows(filter, driver)?;
        if !newest.is_empty() {
            entries.extend(newest);
            entries.sort_by_key(|e| std::cmp::Reverse(e.id));
            entries.dedup_by_key(|e| e.id);
            entries.truncate(filter.limit);
        }
        for e in &mut entries {
            e.attachments = documents(&self.conn, e.id)?;
            if e.assignment == "unassigned" {
                e.suggestions = suggestions(&self.conn, e.id)?;
            }
        }
        Ok(entries)
    }

    /// The rows of `inbox_sql(filter, driver)`, without their documents.
    fn inbox_rows(&self, filter: &InboxFilter, driver: Driver) -> Result<Vec<InboxEntry>> {
        let mut stmt = self.conn.prepare_cached(&inbox_sql(filter, driver))?;
        bind_named(&mut stmt, ":before", filter.before.unwrap_or(i64::MAX))?;
        bind_named(&mut stmt, ":limit", filter.limit as i64)?;
        bind_named(&mut stmt, ":candidate", filter.candidate)?;
        let search = filter.search_text();
        bind_named(&mut stmt, ":search", search.as_ref().map(SearchText::param))?;
        bind_named(
            &mut stmt,
            ":folded",
            search.as_ref().map(SearchText::folded),
        )?;
        bind_named(&mut stmt, ":subsidiary", filter.subsidiary.as_deref())?;
        bind_named(&mut stmt, ":position", filter.position.as_deref())?;
        bind_named(&mut stmt, ":status", filter.status.as_deref())?;
        bind_named(&mut stmt, ":category", filter.category.as_deref())?;
        bind_named(&mut stmt, ":visible", visible_json(filter)?)?;
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
                direction: r.get(14)?,
                confidence: None,
                attachments: Vec::new(),
                suggestions: Vec::new(),
            })
        });
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    /// Which rows the inbox reads first: the search index when searching;
    /// else the few mails a rare filter (applications, then a category)
    /// picks; else the mails newest first. A filter is rare when it picks
    /// at most `FEW` rows, counted with a limit (so a common one costs the
    /// count of a few thousand rows).
    pub(super) fn inbox_driver(&self, filter: &InboxFilter) -> Result<Driver> {
        if filter.search_text().is_some() {
            // A user of few applications' subsidiaries: their candidates'
            // mails searched row by row, beside the index for the mails
            // filed on nobody (the index walk would find none of theirs).
            let few = filter.visible.is_some() && self.few(filter, Driver::Visible)?;
            return Ok(if few { Driver::Visible } else { Driver::Search });
        }
        if filter.unassigned || filter.candidate.is_some() {
            // Their own indexes walk newest first.
            return Ok(Driver::Scan);
        }
        let application_filter =
            filter.subsidiary.is_some() || filter.position.is_some() || filter.status.is_some();
        for (given, driver) in [
            (application_filter, Driver::Applications),
            (filter.category.is_some(), Driver::Category),
            (filter.visible.is_some(), Driver::Visible),
        ] {
            if given && self.few(filter, driver)? {
                return Ok(driver);
            }
        }
        Ok(Driver::Scan)
    }

    /// Whether `driver` picks at most `FEW` rows for `filter`.
    fn few(&self, filter: &InboxFilter, driver: Driver) -> Result<bool> {
        let Some(sql) = few_sql(filter, driver) else {
            return Ok(false);
        };
        let mut stmt = self.conn.prepare_cached(&sql)?;
        bind_named(&mut stmt, ":subsidiary", filter.subsidiary.as_deref())?;
        bind_named(&mut stmt, ":position", filter.position.as_deref())?;
        bind_named(&mut stmt, ":status", filter.status.as_deref())?;
        bind_named(&mut stmt, ":category", filter.category.as_deref())?;
        bind_named(&mut stmt, ":visible", visible_json(filter)?)?;
        bind_named(&mut stmt, ":few", FEW + 1)?;
        let mut rows = stmt.raw_query();
        let picked: i64 = match rows.next()? {
            Some(row) => row.get(0)?,
            None => 0,
        };
        Ok(picked <= FEW)
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
        detail.suggestions = suggestions(&self.conn, id)?;
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
                "SELECT content FROM documents WHERE id = ?1 AND deleted_at IS NULL",
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
                        coalesce(m.candidate_id, d.candidate_id)
                 FROM documents d LEFT JOIN messages m ON m.id = d.message_id
                 WHERE d.id = ?1 AND d.deleted_at IS NULL",
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
}
