//! Documents as a recruiter sees them: a candidate's documents by the
//! caller's rights, one document's bytes, a new category; the raw mail
//! only to a caller who may see every document in it; and the audit of
//! every access and every refusal. A document the caller may not see is
//! neither listed nor revealed by its id: `NotFound`, as for one that does
//! not exist.

use super::access::Caller;
use super::{App, Error, Result, now_ms};
use crate::store::Store;
use crate::store::documents::{AuditEntry, NewAudit, NewUpload, PlacedDocument};

/// A file to file on a candidate, as a front end received it.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    /// As the client named it (made safe before it is kept).
    pub filename: String,
    /// As the client declared it; `None` or `application/octet-stream`:
    /// by the file name's extension.
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
    /// `None`: the `[[document_category]]` rules decide, as for an
    /// attachment that arrives by mail.
    pub category: Option<String>,
}

impl Upload {
    /// The type the client declared, if it is one (`type/subtype`,
    /// printable, not the catch-all `application/octet-stream`); else the
    /// type the file name's extension suggests.
    pub fn content_type(&self) -> String {
        self.content_type
            .as_deref()
            .map(|t| {
                t.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .filter(|t| {
                t != "application/octet-stream"
                    && t.split_once('/').is_some_and(|(a, b)| {
                        !a.is_empty()
                            && !b.is_empty()
                            && t.bytes().all(|c| c.is_ascii_graphic() && c != b'"')
                    })
            })
            .unwrap_or_else(|| crate::mail::mime::content_type_of(&self.filename).to_string())
    }

    /// As a new attachment of a mail (its name made safe).
    pub fn into_attachment(self) -> crate::outbound::template::FileAttachment {
        let content_type = self.content_type();
        crate::outbound::template::FileAttachment {
            filename: crate::mail::filename::sanitize_filename(&self.filename, &content_type),
            content_type,
            bytes: self.bytes,
        }
    }
}

/// An upload checked and ready for the store.
#[derive(Debug, Clone)]
pub(super) struct CheckedUpload {
    filename: String,
    content_type: String,
    category: String,
    bytes: Vec<u8>,
}

impl CheckedUpload {
    pub(super) fn filename(&self) -> &str {
        &self.filename
    }

    pub(super) fn category(&self) -> &str {
        &self.category
    }

    pub(super) fn as_new<'a>(&'a self, by: &'a str, at_ms: i64) -> NewUpload<'a> {
        NewUpload {
            filename: &self.filename,
            content_type: &self.content_type,
            category: &self.category,
            content: &self.bytes,
            added_by: by,
            at_ms,
        }
    }
}

/// The caller sees the mail of this candidate, or the mail is filed on
/// nobody yet (the inbox's, every user's to read and assign).
fn sees_mail_of(store: &Store, caller: &Caller, candidate: Option<i64>) -> Result<bool> {
    Ok(match candidate {
        Some(c) => caller.sees(&store.candidate_subsidiaries(c)?),
        None => true,
    })
}

impl App {
    pub(super) fn audit(
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
    pub(super) fn visible_candidate(
        &self,
        store: &Store,
        caller: &Caller,
        candidate: i64,
        action: &str,
    ) -> Result<i64> {
        let found = store.resolve_candidate(candidate)?;
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

    /// Checks an upload: not empty, within the size a mail may have
    /// (`max_message_size`), a category that exists and that the caller
    /// may edit. The file name is made safe, the type taken from the name
    /// when the client did not say.
    pub(super) fn check_upload(&self, caller: &Caller, u: Upload) -> Result<CheckedUpload> {
        let limit = self.config.server.max_message_size;
        if u.bytes.is_empty() {
            return Err(Error::Invalid(format!("{:?} is empty", u.filename)));
        }
        if u.bytes.len() as u64 > limit {
            return Err(Error::TooLarge(format!(
                "{:?} has {} bytes; a document may have {limit}",
                u.filename,
                u.bytes.len()
            )));
        }
        let content_type = u.content_type();
        let filename = crate::mail::filename::sanitize_filename(&u.filename, &content_type);
        let category = match u.category {
            Some(c) => {
                if !self.config.document_categories.iter().any(|x| x.id == c) {
                    return Err(Error::Invalid(format!(
                        "no [[document_category]] has id {c:?}"
                    )));
                }
                c
            }
            None => self.company.classify(&filename, &content_type).to_string(),
        };
        if !caller.may_edit(&category, &self.config) {
            return Err(Error::Forbidden(format!(
                "{} may not add documents to {category}",
                caller.id()
            )));
        }
        Ok(CheckedUpload {
            filename,
            content_type,
            category,
            bytes: u.bytes,
        })
    }

    /// Files uploaded documents on a candidate the caller sees, each of a
    /// category the caller may edit; all or none. Audited.
    pub fn upload_documents(
        &self,
        caller: &Caller,
        candidate: i64,
        uploads: Vec<Upload>,
    ) -> Result<Vec<PlacedDocument>> {
        if uploads.is_empty() {
            return Err(Error::Invalid("no file to upload".into()));
        }
        let mut store = self.store()?;
        let id = self.visible_candidate(&store, caller, candidate, "document.upload")?;
        let mut checked = Vec::new();
        for u in uploads {
            match self.check_upload(caller, u) {
                Ok(c) => checked.push(c),
                Err(e) => {
                    if let Error::Forbidden(why) = &e {
                        self.audit(
                            &store,
                            caller,
                            "document.upload",
                            &format!("candidate {id}"),
                            false,
                            why,
                        )?;
                    }
                    return Err(e);
                }
            }
        }
        let now = now_ms();
        let ids = store.write(|tx| {
            checked
                .iter()
                .map(|c| tx.add_upload(id, &c.as_new(caller.id(), now)))
                .collect::<crate::store::Result<Vec<i64>>>()
        })?;
        let mut out = Vec::new();
        for (doc, c) in ids.iter().zip(&checked) {
            self.audit(
                &store,
                caller,
                "document.upload",
                &format!("document {doc}"),
                true,
                &format!("candidate {id}: {} ({})", c.filename, c.category),
            )?;
            if let Some((placed, _)) = store.document_with_content(*doc)? {
                out.push(placed);
            }
        }
        Ok(out)
    }

    /// Deletes a document the caller sees and may edit: it leaves every
    /// list and its bytes go (the raw mail it came in still holds them,
    /// and stays checked against its category). Audited.
    pub fn delete_document(&self, caller: &Caller, id: i64) -> Result<()> {
        let store = self.store()?;
        let (d, _) = self.visible_document(&store, caller, id, "document.delete")?;
        let object = format!("document {id}");
        let category = d.document.category.as_str();
        if !caller.may_edit(category, &self.config) {
            self.audit(
                &store,
                caller,
                "document.delete",
                &object,
                false,
                &format!("{category}: no edit right"),
            )?;
            return Err(Error::Forbidden(format!(
                "{} may not delete documents of {category}",
                caller.id()
            )));
        }
        if !store.delete_document(id, caller.id(), now_ms())? {
            return Err(Error::NotFound(format!("no document {id}")));
        }
        self.audit(
            &store,
            caller,
            "document.delete",
            &object,
            true,
            &d.document.filename,
        )
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

    /// One message as a reader sees it: the caller's view of it
    /// ([`App::message_as`]: `NotFound` for another subsidiary's mail) and
    /// its bodies, read from the stored bytes. The bodies are not
    /// documents: a role that may not see an attachment still reads the
    /// mail's text.
    pub fn message_with_bodies_as(
        &self,
        caller: &Caller,
        id: i64,
    ) -> Result<(crate::store::MessageDetail, crate::inbound::parse::Bodies)> {
        let detail = self.message_as(caller, id)?;
        let raw = self
            .store()?
            .raw(id)?
            .ok_or_else(|| Error::NotFound(format!("no message {id}")))?;
        Ok((detail, crate::inbound::parse::bodies(&raw)))
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
        self.find_candidates_as(
            caller,
            &crate::store::candidates::CandidateFilter {
                search,
                limit,
                ..Default::default()
            },
        )
    }

    /// Candidates as the filter says, of the caller's subsidiaries only
    /// (whatever the filter says), newest first: a page of `limit`, after
    /// `before` (the last id of the page before).
    pub fn find_candidates_as(
        &self,
        caller: &Caller,
        filter: &crate::store::candidates::CandidateFilter<'_>,
    ) -> Result<Vec<crate::store::candidates::CandidateSummary>> {
        let mut filter = filter.clone();
        if let Caller::User { user, .. } = caller
            && !user.subsidiaries.is_empty()
        {
            filter.visible = Some(&user.subsidiaries);
        }
        Ok(self.store()?.candidates_filtered(&filter)?)
    }

    /// Candidates' records without their threads, each with the
    /// subsidiaries of their applications, as the caller may see them
    /// (`NotFound` for one they do not): what a bulk's page names.
    pub fn candidate_summaries_as(
        &self,
        caller: &Caller,
        ids: &[i64],
    ) -> Result<Vec<(crate::store::candidates::CandidateSummary, Vec<String>)>> {
        let store = self.store()?;
        let mut out = Vec::with_capacity(ids.len());
        for &asked in ids {
            let id = self.visible_candidate(&store, caller, asked, "candidate.show")?;
            let summary = store
                .candidate_summary(id)?
                .ok_or_else(|| Error::NotFound(format!("no candidate {asked}")))?;
            out.push((summary, store.candidate_subsidiaries(id)?));
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
        if !detail.suggestions.is_empty() {
            let store = self.store()?;
            detail.suggestions = self.visible_suggestions(&store, caller, detail.suggestions)?;
        }
        Ok(detail)
    }
}
