//! Compose: one mail to one candidate from a template, ready to go out.
//!
//! Gathers what the mail needs (the candidate, their latest application and
//! so the subsidiary, sender and position, their latest mail for threading),
//! renders the template for them, appends the sender's signature, adds the
//! subject tag and the signed Reply-To, reads the template's files, and
//! builds the message, refusing it when it is too big. The library function
//! behind `template preview` (and `send` and the HTTP API later). It reads
//! the store and the template files; it sends nothing and queues nothing yet.

use crate::config::{Config, Sender};
use crate::matcher::token::TokenKey;
use crate::outgoing::{self, OutgoingMail, Party};
use crate::render::{self, Context};
use crate::store::Store;
use crate::template::Templates;

/// What to compose.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub candidate: i64,
    pub template: &'a str,
    /// A sender id of the candidate's subsidiary; default: its jobs address.
    pub sender: Option<&'a str>,
    /// A language variant to use instead of the candidate's.
    pub language: Option<&'a str>,
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
pub struct ComposeError(pub String);

impl std::fmt::Display for ComposeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ComposeError {}

impl From<crate::store::StoreError> for ComposeError {
    fn from(e: crate::store::StoreError) -> Self {
        ComposeError(e.to_string())
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
            .ok_or_else(|| ComposeError(format!("no candidate {}", request.candidate)))?;
        let template = self
            .templates
            .get(request.template)
            .ok_or_else(|| ComposeError(format!("no template {:?}", request.template)))?;
        let application = facts.application.as_ref().ok_or_else(|| {
            ComposeError(format!(
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
                ComposeError(format!(
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
                ComposeError(format!(
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
        let ctx = Context {
            first_name: facts.first_name.clone(),
            last_name: facts.last_name.clone(),
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
            .map_err(|e| ComposeError(format!("candidate {}: {e}", facts.id)))?;
        let mut attachments = Vec::new();
        for name in &rendered.attachments {
            attachments.push(self.templates.read_file(name).map_err(ComposeError)?);
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
        let message_id = outgoing::new_message_id(jobs.domain());
        let (in_reply_to, references) = match &facts.last_inbound {
            Some((id, refs)) => {
                let mut r = refs.clone();
                r.push(id.clone());
                (Some(id.clone()), r)
            }
            None => (None, Vec::new()),
        };
        let text = outgoing::sign_text(&rendered.text, sender.signature.as_deref());
        let html = rendered.html.as_deref().map(|h| {
            outgoing::sign_html(
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
                name: format!("{} {}", facts.first_name, facts.last_name)
                    .trim()
                    .to_string(),
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
            auto_submitted: None,
        };
        let bytes = outgoing::build(&mail, self.config.server.max_message_size)
            .map_err(|e| ComposeError(format!("candidate {}: {e}", facts.id)))?;
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
