//! Compose: mail to candidates from a template, ready to go out.
//!
//! For each candidate it gathers what the mail needs (the candidate, their
//! latest application and so the subsidiary, sender and position, their
//! latest mail for threading), renders the template for them, appends the
//! sender's signature, adds the subject tag and the signed Reply-To, reads
//! the template's files, and builds the message, refusing it when it is too
//! big ([`Composer::prepare`], behind `template preview`); [`Composer::send`]
//! queues a batch of them in the outbox, in chunks of one transaction each,
//! skipping (and reporting) a candidate whose mail cannot be made. It reads
//! the store and the template files and writes the outbox; it never sends.

use crate::config::{Config, Sender};
use crate::matcher::token::TokenKey;
use crate::outbound::message::{self, OutgoingMail, Party};
use crate::outbound::render::{self, Context};
use crate::outbound::template::{FileAttachment, Templates};
use crate::store::Store;
use crate::store::outbox::{NewItem, Queued};

/// What to compose.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub candidate: i64,
    pub template: &'a str,
    /// A sender id of the candidate's subsidiary; default: its jobs address.
    pub sender: Option<&'a str>,
    /// A language variant to use instead of the candidate's.
    pub language: Option<&'a str>,
    /// New files to attach besides the template's.
    pub attachments: Vec<FileAttachment>,
    /// Documents of the candidate's thread to attach again, by id.
    pub reuse_documents: Vec<i64>,
    /// An automatic mail (an acknowledgement): `Auto-Submitted: auto-replied` and our loop marker.
    pub automatic: bool,
}

/// A mail ready to queue: its frozen bytes and what they were made of.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub candidate: i64,
    pub application: Option<i64>,
    pub subsidiary: String,
    pub sender: Sender,
    pub to: String,
    pub language: String,
    pub subject: String,
    /// Without angle brackets.
    pub message_id: String,
    pub bytes: Vec<u8>,
}

/// Why a mail cannot be composed; said to the operator as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeError {
    pub message: String,
    /// The store failed (locked, full disk): the same request may work
    /// later. Otherwise it never will as it is (no template, no candidate,
    /// a placeholder that does not render, too big).
    pub transient: bool,
    /// The template does not render for this candidate (a placeholder, a
    /// language, a variant): the template needs fixing, not the request.
    pub unrenderable: bool,
}

impl ComposeError {
    pub fn new(message: String) -> ComposeError {
        ComposeError {
            message,
            transient: false,
            unrenderable: false,
        }
    }

    fn unrenderable(message: String) -> ComposeError {
        ComposeError {
            unrenderable: true,
            ..ComposeError::new(message)
        }
    }
}

impl std::fmt::Display for ComposeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ComposeError {}

impl From<crate::store::StoreError> for ComposeError {
    fn from(e: crate::store::StoreError) -> Self {
        ComposeError {
            message: e.to_string(),
            transient: true,
            unrenderable: false,
        }
    }
}

/// Composes mails with one config, template set and token key.
pub struct Composer<'a> {
    pub config: &'a Config,
    pub templates: &'a Templates,
    pub key: &'a TokenKey,
}

impl Composer<'_> {
    /// Renders and builds one mail; `now_ms` is its Date.
    pub fn prepare(
        &self,
        store: &Store,
        request: &Request,
        now_ms: i64,
    ) -> Result<Prepared, ComposeError> {
        let facts = store
            .compose_facts(request.candidate)?
            .ok_or_else(|| ComposeError::new(format!("no candidate {}", request.candidate)))?;
        let template = self
            .templates
            .get(request.template)
            .ok_or_else(|| ComposeError::new(format!("no template {:?}", request.template)))?;
        let application = facts.application.as_ref().ok_or_else(|| {
            ComposeError::new(format!(
                "candidate {} has no application, so no subsidiary to write for",
                facts.id
            ))
        })?;
        let subsidiary = self
            .config
            .subsidiaries
            .iter()
            .find(|s| s.id == application.subsidiary)
            .ok_or_else(|| {
                ComposeError::new(format!(
                    "subsidiary {:?} of application {} is no longer in the config",
                    application.subsidiary, application.id
                ))
            })?;
        let sender = match request.sender {
            None => subsidiary.default_sender(),
            Some(id) => subsidiary.sender(id).ok_or_else(|| {
                let known: Vec<String> = std::iter::once(crate::config::DEFAULT_SENDER.to_string())
                    .chain(subsidiary.senders.iter().map(|s| s.id.clone()))
                    .collect();
                ComposeError::new(format!(
                    "sender {id:?} may not send for {} (its senders: {})",
                    subsidiary.id,
                    known.join(", ")
                ))
            })?,
        };
        let position = application.position.as_ref().and_then(|p| {
            self.config
                .positions
                .iter()
                .find(|x| &x.id == p)
                .map(|x| x.title.clone())
        });
        // Automatic mail answers whoever wrote the display name: only a name
        // that looks like one, never raw display text.
        let (first_name, last_name) = if request.automatic {
            let clean = crate::outbound::autoreply::name_for_automatic_mail;
            let (first, last) = (clean(&facts.first_name), clean(&facts.last_name));
            // Half a name that is junk makes the other half suspect too.
            if (first.is_empty() && !facts.first_name.trim().is_empty())
                || (last.is_empty() && !facts.last_name.trim().is_empty())
            {
                (String::new(), String::new())
            } else {
                (first, last)
            }
        } else {
            (facts.first_name.clone(), facts.last_name.clone())
        };
        let ctx = Context {
            first_name: first_name.clone(),
            last_name: last_name.clone(),
            email: facts.email.clone(),
            gender: facts.gender.clone(),
            language: facts.language.clone(),
            position,
            subsidiary: subsidiary.name.clone(),
            subsidiary_language: subsidiary.language.clone(),
            sender_name: sender.name.clone(),
            application_date_ms: Some(application.received_at_ms),
        };
        let rendered = render::render(template, &ctx, request.language)
            .map_err(|e| ComposeError::unrenderable(format!("candidate {}: {e}", facts.id)))?;
        let mut attachments = Vec::new();
        for name in &rendered.attachments {
            attachments.push(self.templates.read_file(name).map_err(ComposeError::new)?);
        }
        attachments.extend(request.attachments.iter().cloned());
        for &document in &request.reuse_documents {
            let (doc, bytes) = store
                .candidate_document(facts.id, document)
                .map_err(|e| ComposeError::new(format!("candidate {}: {e}", facts.id)))?;
            attachments.push(FileAttachment {
                filename: doc.filename,
                content_type: doc.content_type,
                bytes,
            });
        }
        let tag = self.key.subject_tag(facts.id);
        let subject = if rendered.subject.contains(&tag) {
            rendered.subject.clone()
        } else {
            format!("{} {tag}", rendered.subject)
        };
        let jobs = &subsidiary.jobs_address;
        let (base, _) = jobs.plus_split();
        let reply_to = format!(
            "{base}+{}@{}",
            self.key.reply_token(facts.id),
            jobs.domain()
        );
        let message_id = crate::mail::message_id::new_message_id(jobs.domain());
        let (in_reply_to, references) = match &facts.last_inbound {
            Some((id, refs)) => {
                let mut r = refs.clone();
                r.push(id.clone());
                (Some(id.clone()), r)
            }
            None => (None, Vec::new()),
        };
        let text = message::sign_text(&rendered.text, sender.signature.as_deref());
        let html = rendered.html.as_deref().map(|h| {
            message::sign_html(
                h,
                sender.signature_html.as_deref(),
                sender.signature.as_deref(),
            )
        });
        let mail = OutgoingMail {
            from: Party {
                name: sender.name.clone(),
                address: sender.address.to_string(),
            },
            to: Party {
                name: format!("{first_name} {last_name}").trim().to_string(),
                address: facts.email.clone(),
            },
            reply_to,
            message_id: message_id.clone(),
            in_reply_to,
            references,
            subject: subject.clone(),
            date: now_ms / 1000,
            text,
            html,
            attachments,
            auto_submitted: request.automatic.then_some("auto-replied"),
            loop_marker: request.automatic.then(|| jobs.to_string()),
        };
        let bytes = message::build(&mail, self.config.server.max_message_size)
            .map_err(|e| ComposeError::new(format!("candidate {}: {e}", facts.id)))?;
        Ok(Prepared {
            candidate: facts.id,
            application: Some(application.id),
            subsidiary: subsidiary.id.clone(),
            sender,
            to: facts.email,
            language: rendered.language,
            subject,
            message_id,
            bytes,
        })
    }
}

/// A mail to many (or one): the same template for each candidate, each
/// rendered for them, with its own Message-ID and tag, under one batch id.
#[derive(Debug, Clone, Default)]
pub struct SendRequest<'a> {
    pub template: &'a str,
    pub sender: Option<&'a str>,
    pub language: Option<&'a str>,
    pub attachments: Vec<FileAttachment>,
    pub reuse_documents: Vec<i64>,
    /// Not before this (unix ms): scheduled until then.
    pub not_before: Option<i64>,
    pub candidates: Vec<i64>,
    /// An automatic mail (an acknowledgement).
    pub automatic: bool,
    /// The acknowledgement decision this mail carries out: marked `queued`
    /// in the transaction that queues the mail, so it is never queued twice.
    pub acknowledgement: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct QueuedMail {
    pub candidate: i64,
    pub item: i64,
    pub message: i64,
    pub to: String,
    pub subject: String,
    pub message_id: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Skipped {
    pub candidate: i64,
    pub reason: String,
}

/// What a send did: queued (or scheduled) and skipped, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub batch: String,
    /// `queued` or `scheduled`.
    pub state: &'static str,
    pub scheduled_for: Option<String>,
    pub queued: Vec<QueuedMail>,
    pub skipped: Vec<Skipped>,
}

impl Composer<'_> {
    /// Composes one mail per candidate and puts them all in the outbox in
    /// one transaction. A candidate selected twice (or merged into one
    /// already selected) gets one mail; one that cannot be rendered is
    /// skipped and reported, the others go.
    pub fn send(
        &self,
        store: &mut Store,
        request: &SendRequest,
        now_ms: i64,
    ) -> Result<Summary, ComposeError> {
        if self.templates.get(request.template).is_none() {
            return Err(ComposeError::new(format!(
                "no template {:?}",
                request.template
            )));
        }
        let batch = format!("b{}", uuid::Uuid::now_v7().simple());
        let mut seen = std::collections::HashSet::new();
        let mut queued = Vec::new();
        let mut skipped = Vec::new();
        // Prepared and queued a chunk at a time (ENQUEUE_CHUNK_BYTES of mail
        // or ENQUEUE_CHUNK_ITEMS mails): a bulk of any size with an
        // attachment holds one chunk in memory, and the listener's writer
        // waits for one chunk's transaction at most.
        let mut rest = request.candidates.as_slice();
        while !rest.is_empty() {
            let mut prepared = Vec::new();
            let mut bytes = 0;
            while let Some((&candidate, tail)) = rest.split_first() {
                if prepared.len() >= crate::store::ENQUEUE_CHUNK_ITEMS
                    || bytes >= crate::store::ENQUEUE_CHUNK_BYTES
                {
                    break;
                }
                rest = tail;
                let one = Request {
                    candidate,
                    template: request.template,
                    sender: request.sender,
                    language: request.language,
                    attachments: request.attachments.clone(),
                    reuse_documents: request.reuse_documents.clone(),
                    automatic: request.automatic,
                };
                match self.prepare(store, &one, now_ms) {
                    Ok(p) if !seen.insert(p.candidate) => skipped.push(Skipped {
                        candidate,
                        reason: format!("already in this batch (as candidate {})", p.candidate),
                    }),
                    Ok(p) if let Some(s) = store.suppressed(&p.to, now_ms)? => skipped.push(Skipped {
                        candidate,
                        reason: format!(
                            "{} is suppressed until {} after a hard bounce ({}); `jobmail suppression remove {}` lifts it",
                            s.address, s.until, s.reason, s.address
                        ),
                    }),
                    Ok(p) => {
                        bytes += p.bytes.len();
                        prepared.push(p);
                    }
                    // The store failed: the whole send may work later.
                    Err(e) if e.transient => return Err(e),
                    Err(e) => skipped.push(Skipped {
                        candidate,
                        reason: e.message,
                    }),
                }
            }
            let done: Vec<Queued> = {
                let items: Vec<NewItem> = prepared
                    .iter()
                    .map(|p| self.new_item(p, &batch, request, now_ms))
                    .collect();
                store.enqueue_all(&items, request.acknowledgement)?
            };
            queued.extend(prepared.into_iter().zip(done).map(|(p, q)| QueuedMail {
                candidate: p.candidate,
                item: q.item,
                message: q.message,
                to: p.to,
                subject: p.subject,
                message_id: p.message_id,
            }));
        }
        let scheduled = request.not_before.is_some_and(|t| t > now_ms);
        Ok(Summary {
            batch,
            state: if scheduled { "scheduled" } else { "queued" },
            scheduled_for: request
                .not_before
                .filter(|_| scheduled)
                .and_then(crate::clock::rfc3339),
            queued,
            skipped,
        })
    }

    /// The outbox item of one prepared mail.
    fn new_item<'a>(
        &'a self,
        p: &'a Prepared,
        batch: &'a str,
        request: &'a SendRequest,
        now_ms: i64,
    ) -> NewItem<'a> {
        let subsidiary = self
            .config
            .subsidiaries
            .iter()
            .find(|s| s.id == p.subsidiary);
        let mut recipients = vec![p.to.clone()];
        if let Some(archive) = subsidiary.and_then(|s| s.archive_bcc.as_ref()) {
            recipients.push(archive.to_string());
        }
        NewItem {
            batch_id: batch,
            candidate: p.candidate,
            application: p.application,
            template: Some(request.template),
            subsidiary: &p.subsidiary,
            sender: &p.sender.id,
            envelope_from: {
                // bounce+<item>.<mac>@<the jobs address's domain>
                let domain = subsidiary
                    .map(|s| s.jobs_address.domain())
                    .unwrap_or("localhost");
                let key = self.key;
                Box::new(move |id| format!("bounce+{}@{domain}", key.verp_tag(id)))
            },
            recipients,
            parsed: crate::inbound::parse::parse_message(&p.bytes, false),
            document_category: &self.config.documents.sent_category,
            bytes: p.bytes.clone(),
            not_before: request.not_before,
            now_ms,
        }
    }
}

/// A time as an operator writes it: RFC 3339 (`2026-12-01T09:00:00+01:00`),
/// or a local date and time (`2026-12-01 09:00`) in the configured zone.
/// Unix milliseconds.
pub fn parse_time(text: &str, zone: &jiff::tz::TimeZone) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond());
    }
    let civil = text
        .replacen(' ', "T", 1)
        .parse::<jiff::civil::DateTime>()
        .map_err(|_| format!("{text:?}: expected RFC 3339 (2026-12-01T09:00:00+01:00) or a local time (2026-12-01 09:00)"))?;
    let zoned = civil
        .to_zoned_datetime(zone.clone())
        .map_err(|e| format!("{text:?}: {e}"))?;
    Ok(zoned.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_rfc3339_or_local() {
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        let utc = parse_time("2026-12-01T08:00:00Z", &berlin).unwrap();
        assert_eq!(
            parse_time("2026-12-01T09:00:00+01:00", &berlin).unwrap(),
            utc
        );
        assert_eq!(
            parse_time("2026-12-01 09:00", &berlin).unwrap(),
            utc,
            "CET in winter"
        );
        assert_eq!(
            parse_time("2026-07-01 10:00", &berlin).unwrap(),
            parse_time("2026-07-01T08:00:00Z", &berlin).unwrap(),
            "CEST in summer"
        );
        assert!(parse_time("tomorrow", &berlin).is_err());
    }
}
