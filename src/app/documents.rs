//! Documents as a recruiter sees them: a candidate's documents by the
//! caller's rights, one document's bytes, a new category; the raw mail
//! only to a caller who may see every document in it; and the audit of
//! every access and every refusal. A document the caller may not see is
//! neither listed nor revealed by its id: `NotFound`, as for one that does
//! not exist.

use super::access::Caller;
use super::{App, Error, Result, now_ms};
use crate::store::Store;
use crate::store::documents::{AuditEntry, NewAudit, PlacedDocument};

/// The caller sees the mail of this candidate, or the mail is filed on
/// nobody yet (the inbox's, every user's to read and assign).
fn sees_mail_of(store: &Store, caller: &Caller, candidate: Option<i64>) -> Result<bool> {
    Ok(match candidate {
        Some(c) => caller.sees(&store.candidate_subsidiaries(c)?),
        None => true,
    })
}

impl App {
    fn audit(
        &self,
        store: &Store,
        caller: &Caller,
        action: &str,
        object: &str,
        allowed: bool,
        detail: &str,
    ) -> Result<()> {
        Ok(store.record_audit(&NewAudit {
            actor: caller.id(),
            action,
            object,
            allowed,
            detail,
            at_ms: now_ms(),
        })?)
    }

    /// The candidate exists (merged ids lead to the survivor) and the
    /// caller sees their subsidiaries; else `NotFound`, audited.
    fn visible_candidate(
        &self,
        store: &Store,
        caller: &Caller,
        candidate: i64,
        action: &str,
    ) -> Result<i64> {
        let found = store.candidate(candidate)?.map(|c| c.summary.id);
        let visible = match found {
            Some(id) => caller.sees(&store.candidate_subsidiaries(id)?),
            None => false,
        };
        match found {
            Some(id) if visible => Ok(id),
            _ => {
                self.audit(
                    store,
                    caller,
                    action,
                    &format!("candidate {candidate}"),
                    false,
                    "not found or not visible",
                )?;
                Err(Error::NotFound(format!("no candidate {candidate}")))
            }
        }
    }

    /// A candidate's documents the caller may see, newest mail first.
    pub fn candidate_documents(
        &self,
        caller: &Caller,
        candidate: i64,
    ) -> Result<Vec<PlacedDocument>> {
        let store = self.store()?;
        let id = self.visible_candidate(&store, caller, candidate, "document.list")?;
        let all = store.candidate_documents(id)?;
        let shown: Vec<PlacedDocument> = all
            .into_iter()
            .filter(|d| caller.may_view(&d.document.category, &self.config))
            .collect();
        self.audit(
            &store,
            caller,
            "document.list",
            &format!("candidate {id}"),
            true,
            &format!("{} shown", shown.len()),
        )?;
        Ok(shown)
    }

    /// A document the caller may see, and whether they may: `NotFound`
    /// for one that does not exist, is another subsidiary's or of a
    /// category their role does not show. Audited either way.
    fn visible_document(
        &self,
        store: &Store,
        caller: &Caller,
        id: i64,
        action: &str,
    ) -> Result<(PlacedDocument, Vec<u8>)> {
        let found = store.document_with_content(id)?;
        let why = match &found {
            None => Some("no such document"),
            Some((d, _)) if !caller.may_view(&d.document.category, &self.config) => {
                Some("category not viewable")
            }
            Some((d, _)) => {
                if sees_mail_of(store, caller, d.candidate)? {
                    None
                } else {
                    Some("candidate not visible")
                }
            }
        };
        let object = format!("document {id}");
        match (found, why) {
            (Some(found), None) => Ok(found),
            (_, why) => {
                self.audit(store, caller, action, &object, false, why.unwrap_or(""))?;
                Err(Error::NotFound(format!("no document {id}")))
            }
        }
    }

    /// A document a mail is to carry again (compose): one the caller may
    /// see, audited like a download.
    pub(super) fn reuse_document(&self, store: &Store, caller: &Caller, id: i64) -> Result<()> {
        let (d, _) = self.visible_document(store, caller, id, "document.reuse")?;
        self.audit(
            store,
            caller,
            "document.reuse",
            &format!("document {id}"),
            true,
            &d.document.filename,
        )
    }

    /// One document and its bytes, audited.
    pub fn document(&self, caller: &Caller, id: i64) -> Result<(PlacedDocument, Vec<u8>)> {
        let store = self.store()?;
        let found = self.visible_document(&store, caller, id, "document.download")?;
        self.audit(
            &store,
            caller,
            "document.download",
            &format!("document {id}"),
            true,
            &found.0.document.filename,
        )?;
        Ok(found)
    }

    /// Files a document under another category: the caller must see it,
    /// and may edit both its category and the new one.
    pub fn set_document_category(&self, caller: &Caller, id: i64, category: &str) -> Result<()> {
        if !self
            .config
            .document_categories
            .iter()
            .any(|c| c.id == category)
        {
            return Err(Error::Invalid(format!(
                "no [[document_category]] has id {category:?}"
            )));
        }
        let store = self.store()?;
        let (d, _) = self.visible_document(&store, caller, id, "document.categorise")?;
        let object = format!("document {id}");
        let from = d.document.category.as_str();
        if !caller.may_edit(from, &self.config) || !caller.may_edit(category, &self.config) {
            self.audit(
                &store,
                caller,
                "document.categorise",
                &object,
                false,
                &format!("{from} -> {category}: no edit right"),
            )?;
            return Err(Error::Forbidden(format!(
                "{} may not move documents from {from} to {category}",
                caller.id()
            )));
        }
        store.set_document_category(id, category)?;
        self.audit(
            &store,
            caller,
            "document.categorise",
            &object,
            true,
            &format!("{from} -> {category}"),
        )?;
        Ok(())
    }

    /// The stored bytes of a mail (our trace headers, then the mail as
    /// sent), which hold every attachment: only for a caller who may see
    /// every document in it (and its candidate).
    pub fn raw_message(&self, caller: &Caller, id: i64) -> Result<Vec<u8>> {
        let store = self.store()?;
        let object = format!("message {id}");
        let Some(detail) = store.message(id)? else {
            self.audit(
                &store,
                caller,
                "message.raw",
                &object,
                false,
                "no such message",
            )?;
            return Err(Error::NotFound(format!("no message {id}")));
        };
        if !sees_mail_of(&store, caller, detail.candidate.as_ref().map(|c| c.id))? {
            self.audit(
                &store,
                caller,
                "message.raw",
                &object,
                false,
                "candidate not visible",
            )?;
            return Err(Error::NotFound(format!("no message {id}")));
        }
        let hidden: Vec<String> = store
            .message_document_categories(id)?
            .into_iter()
            .filter(|c| !caller.may_view(c, &self.config))
            .collect();
        if !hidden.is_empty() {
            self.audit(
                &store,
                caller,
                "message.raw",
                &object,
                false,
                &format!("holds {}", hidden.join(", ")),
            )?;
            return Err(Error::Forbidden(format!(
                "message {id} holds documents {} may not see ({})",
                caller.id(),
                hidden.join(", ")
            )));
        }
        let raw = store
            .raw(id)?
            .ok_or_else(|| Error::NotFound(format!("no message {id}")))?;
        self.audit(&store, caller, "message.raw", &object, true, "")?;
        Ok(raw)
    }

    /// The audit, newest first (the operator's).
    pub fn audit_log(
        &self,
        caller: &Caller,
        actor: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>> {
        if *caller != Caller::Operator {
            return Err(Error::Forbidden("the audit is the operator's".into()));
        }
        Ok(self.store()?.audit(actor, limit)?)
    }
}

impl App {
    /// Candidates as the caller may see them (their subsidiaries'),
    /// newest first.
    pub fn candidates_as(
        &self,
        caller: &Caller,
        search: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::store::candidates::CandidateSummary>> {
        let store = self.store()?;
        let mut out = Vec::new();
        for c in store.candidates(search, limit)? {
            if caller.sees(&store.candidate_subsidiaries(c.id)?) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// One candidate with the thread in both directions, as the caller may
    /// see it: `NotFound` for another subsidiary's candidate, and in each
    /// mail only the attachments of the categories the caller's role shows.
    pub fn candidate_as(
        &self,
        caller: &Caller,
        id: i64,
    ) -> Result<crate::store::candidates::CandidateDetail> {
        let store = self.store()?;
        let id = self.visible_candidate(&store, caller, id, "candidate.show")?;
        drop(store);
        let mut detail = self.candidate(id)?;
        for t in &mut detail.thread {
            t.attachments
                .retain(|d| caller.may_view(&d.category, &self.config));
        }
        Ok(detail)
    }

    /// One message as the caller may see it: `NotFound` when its candidate
    /// is another subsidiary's (an unassigned mail is every user's), and
    /// only the attachments the caller's role shows.
    pub fn message_as(&self, caller: &Caller, id: i64) -> Result<crate::store::MessageDetail> {
        let mut detail = self.message(id)?;
        if let Some(c) = &detail.candidate {
            let store = self.store()?;
            if !caller.sees(&store.candidate_subsidiaries(c.id)?) {
                self.audit(
                    &store,
                    caller,
                    "message.show",
                    &format!("message {id}"),
                    false,
                    "candidate not visible",
                )?;
                return Err(Error::NotFound(format!("no message {id}")));
            }
        }
        detail
            .attachments
            .retain(|d| caller.may_view(&d.category, &self.config));
        Ok(detail)
    }
}
