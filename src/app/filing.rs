//! Filing a mail on a candidate, and deciding its acknowledgement: the
//! policy the store's writer calls for every new mail (through
//! [`OnStored`]), and that `serve` runs at start over mails left pending
//! and `application add` runs for a form application. The matcher decides
//! where a mail goes and the acknowledgement rules whether a reply goes
//! out, both pure; this module asks their questions of the open
//! transaction and records their answers in it.
//!
//! No SQL: every read and write goes through [`Tx`].

use std::cell::RefCell;

use crate::config::company::Company;
use crate::inbound::dsn;
use crate::mail::parsed::{Envelope, ParsedMessage};
use crate::matcher::{
    self, Assignment, Decision, Lookups, MatchInput, Matching, OutboxFacts, Reason,
};
use crate::outbound::autoreply::{self, Rule};
use crate::store::candidates::{AutoReplyRow, FormApplication};
use crate::store::documents::NewUpload;
use crate::store::filing::{
    AcknowledgementCounts, Filed, NewAcknowledgement, NewApplication, NewCandidate, Placement,
    Report, ReportKind,
};
use crate::store::{OnStored, Result, Store, StoreError, Tx};

/// The daemon's hook: files each mail the writer stores, with the company
/// as last (re)loaded: a reload swaps it in for the mails stored after it.
pub struct Filer {
    matching: std::sync::RwLock<std::sync::Arc<Matching>>,
}

impl Filer {
    pub fn new(matching: Matching) -> Filer {
        Filer {
            matching: std::sync::RwLock::new(std::sync::Arc::new(matching)),
        }
    }

    /// What the next mail is filed with.
    pub fn matching(&self) -> std::sync::Arc<Matching> {
        self.matching
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Files the mails stored from now on with `matching` (a reload).
    pub fn replace(&self, matching: Matching) {
        *self
            .matching
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = std::sync::Arc::new(matching);
    }
}

impl OnStored for Filer {
    fn on_stored(
        &self,
        tx: &Tx<'_>,
        message: i64,
        parsed: Option<&ParsedMessage>,
        envelope: &Envelope,
    ) -> Result<()> {
        // Logged by the writer once the mail is committed ("stored", with
        // the reason and the acknowledgement decision as recorded).
        file(tx, message, parsed, envelope, &self.matching())?;
        Ok(())
    }
}

/// Files one stored mail: matches it, records the decision, and for a new
/// e-mail application decides its acknowledgement, all in `tx`.
pub fn file(
    tx: &Tx<'_>,
    message: i64,
    parsed: Option<&ParsedMessage>,
    envelope: &Envelope,
    matching: &Matching,
) -> Result<Decision> {
    let Some(parsed) = parsed else {
        let decision = Decision {
            assignment: Assignment::Unassigned(Vec::new()),
            reason: Reason::UnknownAuthor,
            detail: "the mail could not be parsed".into(),
            closed_thread: false,
            learn_address: None,
            bounce: None,
        };
        tx.record(message, &filed(&decision), envelope.received_at_ms)?;
        return Ok(decision);
    };
    let report = dsn::read(parsed);
    let input = MatchInput::of(parsed, envelope, report.as_ref());
    let lookups = TxLookups::new(tx);
    let decision = matcher::decide(&input, &matching.directory, &matching.key, &lookups);
    lookups.finish()?;
    // Before the record: the events it writes list the documents with
    // their categories.
    classify_documents(tx, message, &matching.directory)?;
    let application = tx.record(message, &filed(&decision), envelope.received_at_ms)?;
    if let (Assignment::New(candidate, _), Some(application)) = (&decision.assignment, application)
    {
        let rule = autoreply::check_mail(
            &envelope.sender,
            &parsed.headers,
            &candidate.email,
            &matching.directory,
            envelope.authentication.as_ref(),
        );
        acknowledge(
            tx,
            application,
            "email",
            rule,
            &matching.directory,
            envelope.received_at_ms,
        )?;
    }
    Ok(decision)
}

/// Files each document of a new mail under the category the company's
/// rules give it ([`Company::classify`]); a recruiter may change it later.
fn classify_documents(tx: &Tx<'_>, message: i64, company: &Company) -> Result<()> {
    for (id, filename, content_type) in tx.documents_of_message(message)? {
        let category = company.classify(&filename, &content_type);
        if category != crate::store::DEFAULT_DOCUMENT_CATEGORY {
            tx.set_document_category(id, category)?;
        }
    }
    Ok(())
}

/// Decides whether an application gets an acknowledgement and records it:
/// `mail_rule` is what the RFC 3834, loop and authentication rules said of
/// the mail that made it (e-mail applications); the category, the period
/// and the rates are decided by [`autoreply::decide`].
pub fn acknowledge(
    tx: &Tx<'_>,
    application: i64,
    source: &str,
    mail_rule: Option<(Rule, String)>,
    company: &Company,
    now_ms: i64,
) -> Result<AutoReplyRow> {
    let subject = tx.acknowledgement_subject(application)?;
    let (category, settings) = match &subject.position {
        Some(p) => company.auto_reply_of_position(p),
        None => (None, None),
    };
    let counts = match settings {
        Some(s) => tx.acknowledgement_counts(
            &subject,
            category,
            now_ms - s.period.as_millis() as i64,
            now_ms,
        )?,
        None => AcknowledgementCounts::default(),
    };
    let verdict = autoreply::decide(&autoreply::Application {
        source,
        position: subject.position.as_deref(),
        category,
        settings,
        mail_rule,
        address: &subject.address,
        counts,
        hourly_limit: company.acknowledgements_per_hour(),
    });
    match &verdict {
        Some((Rule::HourlyLimit, _)) => tracing::warn!(
            limit = company.acknowledgements_per_hour(),
            "acknowledgements: the hourly limit over all addresses is reached; holding back"
        ),
        Some((Rule::RateLimit, _)) => tracing::warn!(
            address = %subject.address,
            limit = settings.map(|s| s.max_per_hour).unwrap_or(0),
            "acknowledgements: rate limit reached for this address; holding back"
        ),
        _ => {}
    }
    tx.record_acknowledgement(&NewAcknowledgement {
        application,
        subject: &subject,
        category,
        source,
        suppressed: verdict
            .as_ref()
            .map(|(rule, detail)| (rule.as_str(), detail.as_str())),
        template: settings.map(|s| s.template.as_str()),
        sender: settings.map(|s| s.sender.as_str()),
        at_ms: now_ms,
    })
}

/// A form application and its acknowledgement decision, in one transaction.
#[derive(Debug, Clone)]
pub struct FormOutcome {
    pub candidate: i64,
    pub application: i64,
    pub created: bool,
    pub acknowledgement: AutoReplyRow,
    /// The ids of the documents uploaded with it.
    pub documents: Vec<i64>,
}

/// Records an application from the online form with the documents
/// uploaded with it, and decides its acknowledgement, in one transaction.
pub fn add_form_application(
    store: &mut Store,
    form: &FormApplication,
    uploads: &[NewUpload<'_>],
    company: &Company,
    now_ms: i64,
) -> Result<FormOutcome> {
    store.write(|tx| {
        let (candidate, application, created) = tx.add_form_application(form)?;
        let documents = uploads
            .iter()
            .map(|u| tx.add_upload(candidate, u))
            .collect::<Result<Vec<i64>>>()?;
        let acknowledgement = acknowledge(tx, application, "form", None, company, now_ms)?;
        Ok(FormOutcome {
            candidate,
            application,
            created,
            acknowledgement,
            documents,
        })
    })
}

/// Files every stored mail still `pending` (stored before matching
/// existed, or whose filing failed), oldest first. A mail that cannot be
/// filed (an error, a panic) is logged and stays pending; the others are
/// filed all the same.
pub fn file_pending(store: &mut Store, matching: &Matching) -> Result<usize> {
    let mut done = 0;
    let mut after = 0;
    loop {
        let ids = store.pending(after, 500)?;
        let Some(&last) = ids.last() else {
            return Ok(done);
        };
        after = last;
        for id in ids {
            let Some((envelope, content)) = store.envelope_and_content(id)? else {
                continue;
            };
            let null_sender = envelope.sender.is_empty();
            let parsed = std::panic::catch_unwind(|| {
                crate::inbound::parse::parse_message(&content, null_sender)
            })
            .unwrap_or_default();
            let matched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                crate::store::fault_for_startup(&parsed);
                store.write(|tx| file(tx, id, Some(&parsed), &envelope, matching))
            }));
            match matched {
                Ok(Ok(decision)) => {
                    tracing::info!(message = id, reason = %decision.reason, "filed at start (it was left pending)");
                    done += 1
                }
                Ok(Err(e)) => {
                    tracing::error!(message = id, error = %e, "cannot match this mail; it stays pending")
                }
                Err(panic) => tracing::error!(
                    message = id,
                    error = %crate::store::panic_text(&*panic),
                    "matching this mail panicked; it stays pending"
                ),
            }
        }
    }
}

/// The matcher's decision in the store's terms.
fn filed(d: &Decision) -> Filed<'_> {
    Filed {
        placement: match &d.assignment {
            Assignment::Candidate(c) => Placement::Candidate(*c),
            Assignment::New(c, a) => Placement::New(
                NewCandidate {
                    first_name: &c.first_name,
                    last_name: &c.last_name,
                    email: &c.email,
                    language: c.language.as_deref(),
                    language_source: c.language_source.map(|s| s.as_str()),
                },
                NewApplication {
                    subsidiary: &a.subsidiary,
                    position: a.position.as_deref(),
                },
            ),
            Assignment::Unassigned(suggestions) => Placement::Unassigned(suggestions),
            Assignment::Nowhere => Placement::Nowhere,
        },
        reason: d.reason.as_str(),
        detail: &d.detail,
        closed_thread: d.closed_thread,
        learn_address: d.learn_address.as_deref(),
        report: d.bounce.as_ref().map(|b| Report {
            item: b.item,
            kind: match b.kind {
                dsn::Kind::Hard => ReportKind::Hard,
                dsn::Kind::Soft => ReportKind::Soft,
                dsn::Kind::Notice => ReportKind::Notice,
            },
            summary: &b.summary,
            recipient: b.recipient.as_deref(),
        }),
    }
}

/// The matcher's questions, answered from the open transaction. A failed
/// query answers "nothing" and is kept, so that [`TxLookups::finish`]
/// refuses the decision made without it.
struct TxLookups<'t, 'c> {
    tx: &'t Tx<'c>,
    error: RefCell<Option<StoreError>>,
}

impl<'t, 'c> TxLookups<'t, 'c> {
    fn new(tx: &'t Tx<'c>) -> Self {
        TxLookups {
            tx,
            error: RefCell::new(None),
        }
    }

    fn keep<T: Default>(&self, r: Result<T>) -> T {
        r.unwrap_or_else(|e| {
            self.error.borrow_mut().get_or_insert(e);
            T::default()
        })
    }

    fn finish(self) -> Result<()> {
        match self.error.into_inner() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Lookups for TxLookups<'_, '_> {
    fn candidates_with_address(&self, address: &str) -> Vec<i64> {
        self.keep(self.tx.candidates_with_address(address))
    }

    fn candidates_of_message_id(&self, message_id: &str) -> Vec<i64> {
        self.keep(self.tx.candidates_of_message_id(message_id))
    }

    fn resolve_candidate(&self, id: i64) -> Option<i64> {
        self.keep(self.tx.resolve_candidate(id))
    }

    fn thread_closed(&self, id: i64) -> bool {
        self.keep(self.tx.thread_closed(id))
    }

    fn outbox_item(&self, item: i64) -> Option<OutboxFacts> {
        self.keep(self.tx.outbox_item(item)).map(|i| OutboxFacts {
            candidate: i.candidate,
            state: i.state,
            envelope_from: i.envelope_from,
            recipients: i.recipients,
            updated_at_ms: i.updated_at_ms,
        })
    }

    fn outbox_item_of_message_id(&self, message_id: &str) -> Option<(i64, i64)> {
        self.keep(self.tx.outbox_item_of_message_id(message_id))
    }

    fn outbox_item_to_address(&self, address: &str) -> Option<(i64, i64)> {
        self.keep(self.tx.outbox_item_to_address(address))
    }
}
