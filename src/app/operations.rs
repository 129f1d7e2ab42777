//! The operations of a recruiter or an ATS as a [`Caller`]: the same
//! functions the operator's CLI calls, each behind the right it needs
//! (`assign`, `compose`, `operate_queue`) and the caller's subsidiaries.
//! The HTTP API calls these; the operator (every right) may call either.

use super::access::Caller;
use super::messages::Assigned;
use super::outbox::{ItemView, Preview, PreviewInput, QueueView};
use super::{App, Error, Result};
use crate::config::Right;
use crate::store::outbox::{Action, QueueFilter};
use crate::store::{InboxEntry, InboxFilter, Store};

impl App {
    /// `NotFound` unless the caller sees this candidate.
    fn require_candidate(&self, store: &Store, caller: &Caller, candidate: i64) -> Result<()> {
        let found = store.resolve_candidate(candidate)?;
        match found {
            Some(id) if caller.sees(&store.candidate_subsidiaries(id)?) => Ok(()),
            _ => Err(Error::NotFound(format!("no candidate {candidate}"))),
        }
    }

    /// The inbox as the caller may see it: mail of their subsidiaries'
    /// candidates and mail filed on nobody yet, with only the attachments
    /// their role shows.
    pub fn inbox_as(&self, caller: &Caller, filter: &InboxFilter) -> Result<Vec<InboxEntry>> {
        if let Some(category) = &filter.category
            && !caller.may_view(category, &self.config)
        {
            // Which mails hold a hidden category's documents is not theirs to learn.
            return Err(Error::Forbidden(format!(
                "your role may not see documents of category {category:?}"
            )));
        }
        let mut filter = filter.clone();
        if let Caller::User { user, .. } = caller
            && !user.subsidiaries.is_empty()
        {
            filter.visible = Some(user.subsidiaries.clone());
        }
        let store = self.store()?;
        let mut out = Vec::new();
        // The store lists only what they see; checked again here, per mail.
        for mut e in self.inbox(&filter)? {
            let visible = match &e.candidate {
                Some(c) => caller.sees(&store.candidate_subsidiaries(c.id)?),
                None => true,
            };
            if visible {
                e.attachments
                    .retain(|d| caller.may_view(&d.category, &self.config));
                e.suggestions = self.visible_suggestions(&store, caller, e.suggestions)?;
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Only the suggested candidates the caller sees (another subsidiary's
    /// candidate is not named to them).
    pub(super) fn visible_suggestions(
        &self,
        store: &Store,
        caller: &Caller,
        suggestions: Vec<crate::store::CandidateRef>,
    ) -> Result<Vec<crate::store::CandidateRef>> {
        let mut out = Vec::new();
        for s in suggestions {
            if caller.sees(&store.candidate_subsidiaries(s.id)?) {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Files a mail under a candidate (the right `assign`).
    pub fn assign_as(&self, caller: &Caller, message: i64, candidate: i64) -> Result<Assigned> {
        caller.require(Right::Assign)?;
        self.message_as(caller, message)?;
        self.require_candidate(&self.store()?, caller, candidate)?;
        self.assign(message, candidate)
    }

    /// The exact mail a send would queue for this candidate (`compose`).
    pub fn preview_as(&self, caller: &Caller, input: &PreviewInput) -> Result<Preview> {
        caller.require(Right::Compose)?;
        self.require_candidate(&self.store()?, caller, input.candidate)?;
        self.preview(input)
    }

    /// The outbox (`operate_queue`).
    pub fn queue_as(&self, caller: &Caller, filter: &QueueFilter) -> Result<QueueView> {
        caller.require(Right::OperateQueue)?;
        self.queue(filter)
    }

    /// One outbox item (`operate_queue`).
    pub fn queue_item_as(&self, caller: &Caller, id: i64) -> Result<ItemView> {
        caller.require(Right::OperateQueue)?;
        self.queue_item(id)
    }

    /// Retry, hold, release or delete (`operate_queue`).
    pub fn queue_action_as(&self, caller: &Caller, action: Action) -> Result<usize> {
        caller.require(Right::OperateQueue)?;
        self.queue_action(action)
    }

    /// An operator's action on one item by its name: `retry`, `hold`,
    /// `release`, `cancel` or `delete` (`operate_queue`); how many items
    /// changed. The API's and the web page's queue buttons call this.
    pub fn queue_action_named_as(&self, caller: &Caller, item: i64, action: &str) -> Result<usize> {
        match action {
            "retry" => self.queue_action_as(caller, Action::Retry(item)),
            "hold" => self.queue_action_as(caller, Action::Hold(item)),
            "release" => self.queue_action_as(caller, Action::Release(item)),
            "delete" => self.queue_action_as(caller, Action::Delete(item)),
            "cancel" => self.cancel_as(caller, item).map(|_| 1),
            other => Err(Error::Invalid(format!(
                "{other:?} is not an action (retry, hold, release, cancel, delete)"
            ))),
        }
    }

    /// The addresses not written to (`operate_queue`).
    pub fn suppressions_as(
        &self,
        caller: &Caller,
    ) -> Result<Vec<crate::store::outbox::Suppression>> {
        caller.require(Right::OperateQueue)?;
        self.suppressions()
    }

    /// Writes to an address again (`operate_queue`).
    pub fn unsuppress_as(&self, caller: &Caller, address: &str) -> Result<()> {
        caller.require(Right::OperateQueue)?;
        self.unsuppress(address)
    }

    /// Cancels a mail not sent yet (`operate_queue`).
    pub fn cancel_as(&self, caller: &Caller, item: i64) -> Result<String> {
        caller.require(Right::OperateQueue)?;
        self.cancel(item)
    }
}
