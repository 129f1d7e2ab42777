//! The seam between storing a mail and deciding where it goes. The writer
//! (or a caller of [`Store::write`](super::Store::write)) opens a
//! transaction and hands it, as a [`Tx`], to whoever decides: the daemon's
//! [`OnStored`] hook, which runs the matcher and the acknowledgement rules.
//! [`Tx`] answers their questions and records their answers ([`Filed`],
//! [`NewAcknowledgement`]) as they are.
//!
//! SQL only: nothing here decides which candidate a mail belongs to, or
//! whether an acknowledgement goes out; the store imports no policy.

use rusqlite::{Connection, OptionalExtension, params};

use super::candidates::{self, AutoReplyRow, FormApplication};
use super::{Cached, Result, ids};
use crate::mail::parsed::{Envelope, ParsedMessage};

/// What the daemon does with each new mail, in the transaction that stores
/// it (the writer catches a panic; an error or a panic leaves the mail
/// `pending`, stored all the same, to be filed again at the next start).
pub trait OnStored: Send + Sync {
    /// Files message `message`; `parsed` is `None` when the mail could not
    /// be parsed at all.
    fn on_stored(
        &self,
        tx: &Tx<'_>,
        message: i64,
        parsed: Option<&ParsedMessage>,
        envelope: &Envelope,
    ) -> Result<()>;
}

/// An open write transaction, as the policy above the store sees it.
pub struct Tx<'c> {
    pub(super) conn: &'c Connection,
}

/// A candidate to create, with the address the mail came from.
#[derive(Debug, Clone)]
pub struct NewCandidate<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    /// Lowercased in the domain.
    pub email: &'a str,
    pub language: Option<&'a str>,
    /// Where `language` came from (`form`, `content-language`, `detected`).
    pub language_source: Option<&'a str>,
}

/// An application to create for a candidate.
#[derive(Debug, Clone)]
pub struct NewApplication<'a> {
    pub subsidiary: &'a str,
    /// `None`: a general application to the subsidiary.
    pub position: Option<&'a str>,
}

/// Where a mail goes.
#[derive(Debug, Clone)]
pub enum Placement<'a> {
    /// An existing candidate's thread.
    Candidate(i64),
    /// A new candidate with a new e-mail application.
    New(NewCandidate<'a>, NewApplication<'a>),
    /// The unassigned inbox, with these candidates suggested.
    Unassigned(&'a [i64]),
    /// Nobody's: a mail with no candidate (a colleague's, a report).
    Nowhere,
}

/// How bad a delivery report about an outbox item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Permanent failure: the item bounces and its recipient is suppressed.
    Hard,
    /// Failed for a temporary reason in the end: the item bounces.
    Soft,
    /// Delayed, relayed, delivered: an event only.
    Notice,
}

/// A verified delivery report about one of our outbox items.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    pub item: i64,
    pub kind: ReportKind,
    pub summary: &'a str,
    /// The address that bounced (for the suppression list).
    pub recipient: Option<&'a str>,
}

/// The decision about a mail, to record as it is.
#[derive(Debug, Clone)]
pub struct Filed<'a> {
    pub placement: Placement<'a>,
    /// The match reason's name (`reply-token`, `sender`, `conflict`, ...).
    pub reason: &'a str,
    /// In plain words, for `candidate show` and `message show`.
    pub detail: &'a str,
    /// The candidate's applications are all closed.
    pub closed_thread: bool,
    /// An address to record for the candidate.
    pub learn_address: Option<&'a str>,
    pub report: Option<Report<'a>>,
}

/// An outbox item, as a delivery report about it is checked against it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SentItem {
    pub candidate: i64,
    pub state: String,
    pub envelope_from: String,
    pub recipients: Vec<String>,
    pub updated_at_ms: i64,
}

/// Who an application's acknowledgement would go to.
#[derive(Debug, Clone)]
pub struct AcknowledgementSubject {
    pub candidate: i64,
    pub position: Option<String>,
    /// The candidate's first address, lowercased.
    pub address: String,
}

/// Acknowledgements already decided to go out (pending or queued).
#[derive(Debug, Clone, Copy, Default)]
pub struct AcknowledgementCounts {
    /// To this candidate in this category since the period began.
    pub in_period: i64,
    /// To this address in the last hour.
    pub to_address_last_hour: i64,
    /// To anyone in the last hour.
    pub last_hour: i64,
}

/// An acknowledgement decision to record.
#[derive(Debug, Clone)]
pub struct NewAcknowledgement<'a> {
    pub application: i64,
    pub subject: &'a AcknowledgementSubject,
    pub category: Option<&'a str>,
    /// `form` or `email`.
    pub source: &'a str,
    /// The rule that suppressed it, and why; `None`: pending, to compose.
    pub suppressed: Option<(&'a str, &'a str)>,
    pub template: Option<&'a str>,
    pub sender: Option<&'a str>,
    pub at_ms: i64,
}

impl Tx<'_> {
    /// Candidates (current ids) owning this address, ignoring case.
    pub fn candidates_with_address(&self, address: &str) -> Result<Vec<i64>> {
        Ok(ids(
            self.conn,
            "SELECT candidate_id FROM candidate_addresses WHERE address_key = ?1 ORDER BY candidate_id",
            params![address.to_lowercase()],
        )?)
    }

    /// Candidates of stored mails whose Message-ID (or original Message-ID) this is.
    pub fn candidates_of_message_id(&self, message_id: &str) -> Result<Vec<i64>> {
        Ok(ids(
            self.conn,
            "SELECT DISTINCT candidate_id FROM messages
             WHERE (message_id = ?1 OR original_message_id = ?1) AND candidate_id IS NOT NULL",
            params![message_id],
        )?)
    }

    /// The current id of a candidate, following merges.
    pub fn resolve_candidate(&self, id: i64) -> Result<Option<i64>> {
        Ok(candidates::resolve(self.conn, id)?)
    }

    /// The candidate has applications, and all of them are closed.
    pub fn thread_closed(&self, id: i64) -> Result<bool> {
        Ok(candidates::thread_closed(self.conn, id)?)
    }

    pub fn outbox_item(&self, item: i64) -> Result<Option<SentItem>> {
        Ok(self
            .conn
            .row(
                "SELECT candidate_id, state, envelope_from, recipients_json, updated_at FROM outbox WHERE id = ?1",
                params![item],
                |r| {
                    Ok(SentItem {
                        candidate: r.get(0)?,
                        state: r.get(1)?,
                        envelope_from: r.get(2)?,
                        recipients: serde_json::from_str(&r.get::<_, String>(3)?)
                            .unwrap_or_default(),
                        updated_at_ms: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// The latest item (and its candidate) sent, sending or deferred to this address.
    pub fn outbox_item_to_address(&self, address: &str) -> Result<Option<(i64, i64)>> {
        Ok(self
            .conn
            .row(
                // Our mail's envelope recipients are its message's
                // (message_recipients_address): no walk of the outbox.
                "SELECT o.id, o.candidate_id FROM message_recipients r
                 JOIN outbox o ON o.message_id = r.message_id
                 WHERE r.address = ?1 COLLATE NOCASE AND o.state IN ('sent', 'sending', 'deferred')
                 ORDER BY o.id DESC LIMIT 1",
                params![address],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// The item (and its candidate) whose mail had this Message-ID.
    pub fn outbox_item_of_message_id(&self, message_id: &str) -> Result<Option<(i64, i64)>> {
        Ok(self
            .conn
            .row(
                "SELECT o.id, o.candidate_id FROM outbox o JOIN messages m ON m.id = o.message_id
                 WHERE m.message_id = ?1 ORDER BY o.id DESC LIMIT 1",
                params![message_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Records the decision about a message; returns the application it
    /// created, if any.
    pub fn record(&self, message: i64, filed: &Filed<'_>, at_ms: i64) -> Result<Option<i64>> {
        candidates::apply(self.conn, message, filed, at_ms)
    }

    /// Who an application's acknowledgement would go to.
    pub fn acknowledgement_subject(&self, application: i64) -> Result<AcknowledgementSubject> {
        candidates::acknowledgement_subject(self.conn, application)
    }

    /// What was already decided to go out, for the rate rules.
    pub fn acknowledgement_counts(
        &self,
        subject: &AcknowledgementSubject,
        category: Option<&str>,
        period_start_ms: i64,
        now_ms: i64,
    ) -> Result<AcknowledgementCounts> {
        candidates::acknowledgement_counts(self.conn, subject, category, period_start_ms, now_ms)
    }

    /// Records an acknowledgement decision on its application.
    pub fn record_acknowledgement(&self, a: &NewAcknowledgement<'_>) -> Result<AutoReplyRow> {
        candidates::record_acknowledgement(self.conn, a)
    }

    /// Records an application from the online form; returns (candidate,
    /// application, candidate created).
    pub fn add_form_application(&self, f: &FormApplication) -> Result<(i64, i64, bool)> {
        candidates::add_form_application(self.conn, f)
    }
}
