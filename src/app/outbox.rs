//! Mail going out as an operator or recruiter asks: a preview of the exact
//! mail for one candidate, a send to an audience (now or scheduled), the
//! queue (list, one item with its history, retry, flush, hold, release,
//! delete, cancel) and the suppression list.

use super::access::Caller;
use super::{App, Error, Result, now_ms};
use crate::config::Right;
use crate::outbound::audience::{self, Audience, Selection};
use crate::outbound::compose::{Composer, Prepared, Request, SendRequest, Summary};
use crate::outbound::template::{FileAttachment, Templates};
use crate::store::outbox::{Action, Event, QueueEntry, QueueFilter, Suppression, UpstreamState};

/// A send as asked for.
#[derive(Debug, Clone, Default)]
pub struct SendInput {
    pub template: String,
    pub audience: Audience,
    /// A sender id of each candidate's subsidiary; default: its jobs address.
    pub sender: Option<String>,
    /// A language variant instead of each candidate's.
    pub language: Option<String>,
    /// New files to attach, besides the template's.
    pub attachments: Vec<FileAttachment>,
    /// Documents of the candidate's thread to attach again, by id.
    pub reuse_documents: Vec<i64>,
    /// When to send: RFC 3339, or a local time in the configured zone.
    pub at: Option<String>,
}

/// One mail for one candidate, composed and not queued.
#[derive(Debug, Clone, Default)]
pub struct PreviewInput {
    pub template: String,
    pub candidate: i64,
    pub sender: Option<String>,
    pub language: Option<String>,
}

/// The exact mail a send would queue, and whether it would be skipped.
#[derive(Debug, Clone)]
pub struct Preview {
    pub mail: Prepared,
    /// The recipient is suppressed: a send would skip them.
    pub suppressed: Option<Suppression>,
    /// The mail's text as its reader will see it (read back from `mail`).
    pub text: String,
}

/// The outbox at a glance.
#[derive(Debug, Clone)]
pub struct QueueView {
    pub items: Vec<QueueEntry>,
    /// (state, items, bytes) for every state with items.
    pub summary: Vec<(String, i64, i64)>,
    pub paused_upstreams: Vec<UpstreamState>,
}

/// One outbox item with its history and its mail.
#[derive(Debug, Clone)]
pub struct ItemView {
    pub item: QueueEntry,
    pub events: Vec<Event>,
    pub raw: Vec<u8>,
}

impl App {
    fn templates(&self, id: &str) -> Result<Templates> {
        let (templates, load_errors) = Templates::load(&self.config.templates_dir);
        if templates.get(id).is_none() {
            let why: Vec<String> = load_errors
                .iter()
                .filter(|e| e.template == id)
                .map(|e| e.to_string())
                .collect();
            return Err(Error::Invalid(format!(
                "no usable template {id:?} in {}{}",
                templates.dir.display(),
                if why.is_empty() {
                    String::new()
                } else {
                    format!(": {}", why.join("; "))
                }
            )));
        }
        Ok(templates)
    }

    fn key(&self) -> Result<crate::matcher::token::TokenKey> {
        crate::secrets::load_or_create_key(&self.config.server.state_dir).map_err(|e| {
            Error::Store(crate::store::StoreError(format!(
                "cannot read the reply-token key in {}: {e}",
                self.config.server.state_dir.display()
            )))
        })
    }

    /// The candidates an audience names, checked against the config.
    pub fn audience(&self, audience: &Audience) -> Result<Vec<i64>> {
        match audience::select(audience, &self.config).map_err(Error::Invalid)? {
            Selection::Candidates(c) => Ok(c),
            Selection::Applications { positions, status } => Ok(self
                .store()?
                .candidates_with_applications(positions.as_deref(), status.as_deref())?),
        }
    }

    /// [`App::send`] for a user: every candidate of the audience must be
    /// one the caller sees (else `NotFound`, as if there were none), so
    /// that a user of one subsidiary cannot write to another's candidates.
    /// The API and the web page send through this.
    pub fn send_as(&self, caller: &Caller, input: &SendInput) -> Result<Summary> {
        for c in self.audience(&input.audience)? {
            self.candidate_as(caller, c)?;
        }
        self.send(caller, input)
    }

    /// Composes one mail per candidate of the audience and queues them all
    /// (or schedules them) under one batch; a candidate whose mail cannot
    /// be made is skipped and reported, the others go.
    pub fn send(&self, caller: &Caller, input: &SendInput) -> Result<Summary> {
        caller.require(Right::Compose)?;
        let templates = self.templates(&input.template)?;
        // A document attached again is one the caller may see.
        if !input.reuse_documents.is_empty() {
            let store = self.store()?;
            for &id in &input.reuse_documents {
                self.reuse_document(&store, caller, id)?;
            }
        }
        let candidates = self.audience(&input.audience)?;
        let not_before = input
            .at
            .as_deref()
            .map(|t| crate::outbound::compose::parse_time(t, &self.config.server.time_zone))
            .transpose()
            .map_err(|e| Error::Invalid(format!("time {e}")))?;
        let key = self.key()?;
        let composer = Composer {
            config: &self.config,
            templates: &templates,
            key: &key,
        };
        let mut store = self.store()?;
        Ok(composer.send(
            &mut store,
            &SendRequest {
                template: &input.template,
                sender: input.sender.as_deref(),
                language: input.language.as_deref(),
                attachments: input.attachments.clone(),
                reuse_documents: input.reuse_documents.clone(),
                not_before,
                candidates,
                automatic: false,
                acknowledgement: None,
            },
            now_ms(),
        )?)
    }

    /// The exact mail `send` would queue for this candidate; queues nothing.
    pub fn preview(&self, input: &PreviewInput) -> Result<Preview> {
        let (templates, _) = Templates::load(&self.config.templates_dir);
        let key = self.key()?;
        let composer = Composer {
            config: &self.config,
            templates: &templates,
            key: &key,
        };
        let store = self.store()?;
        let mail = composer.prepare(
            &store,
            &Request {
                candidate: input.candidate,
                template: &input.template,
                sender: input.sender.as_deref(),
                language: input.language.as_deref(),
                ..Default::default()
            },
            now_ms(),
        )?;
        let suppressed = store.suppressed(&mail.to, now_ms())?;
        let text = crate::inbound::parse::bodies(&mail.bytes)
            .text
            .unwrap_or_default();
        Ok(Preview {
            mail,
            suppressed,
            text,
        })
    }

    /// Outbox items as filtered, with the counts per state and the paused upstreams.
    pub fn queue(&self, filter: &QueueFilter) -> Result<QueueView> {
        for s in &filter.states {
            if !crate::store::outbox::STATES.contains(&s.as_str()) {
                return Err(Error::Invalid(format!(
                    "unknown state {s:?} (one of {})",
                    crate::store::outbox::STATES.join(", ")
                )));
            }
        }
        let store = self.store()?;
        Ok(QueueView {
            items: store.queue_filtered(filter)?,
            summary: store.queue_summary()?,
            paused_upstreams: store.paused_upstreams(now_ms())?,
        })
    }

    /// One outbox item, its history and its mail.
    pub fn queue_item(&self, id: i64) -> Result<ItemView> {
        let store = self.store()?;
        let item = store
            .queue_filtered(&QueueFilter {
                item: Some(id),
                limit: 1,
                ..Default::default()
            })?
            .pop()
            .ok_or_else(|| Error::NotFound(format!("no outbox item {id}")))?;
        let events = store.events(id)?;
        let raw = store.raw(item.message)?.unwrap_or_default();
        Ok(ItemView { item, events, raw })
    }

    /// `NotFound` for no such item, `Conflict` for one in a state the
    /// action does not apply to (`None`: any but `sending`).
    fn require_state(
        &self,
        store: &crate::store::Store,
        item: i64,
        allowed: Option<&[&str]>,
        what: &str,
    ) -> Result<()> {
        let state = store
            .outbox_state(item)?
            .ok_or_else(|| Error::NotFound(format!("no outbox item {item}")))?;
        let ok = match allowed {
            Some(states) => states.contains(&state.as_str()),
            None => state != "sending",
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Conflict(format!(
                "outbox item {item} is {state}: it cannot be {what} now"
            )))
        }
    }

    /// Retry, flush, hold, release or delete; returns how many items it touched.
    pub fn queue_action(&self, action: Action) -> Result<usize> {
        let mut store = self.store()?;
        if let Some((item, allowed)) = action.target() {
            let what = match action {
                Action::Retry(_) => "retried",
                Action::Hold(_) => "held",
                Action::Release(_) => "released",
                _ => "deleted",
            };
            self.require_state(&store, item, allowed, what)?;
        }
        Ok(store.queue_action(action, now_ms())?)
    }

    /// Cancels a scheduled, queued or deferred item; returns the state it had.
    pub fn cancel(&self, item: i64) -> Result<String> {
        let mut store = self.store()?;
        self.require_state(
            &store,
            item,
            Some(&crate::store::outbox::WAITING),
            "cancelled",
        )?;
        Ok(store.cancel(item, now_ms())?)
    }

    /// Addresses not written to because they bounced hard.
    pub fn suppressions(&self) -> Result<Vec<Suppression>> {
        Ok(self.store()?.suppressions(now_ms())?)
    }

    /// Writes to an address again.
    pub fn unsuppress(&self, address: &str) -> Result<()> {
        if self.store()?.unsuppress(address)? {
            Ok(())
        } else {
            Err(Error::NotFound(format!("{address} is not suppressed")))
        }
    }
}
