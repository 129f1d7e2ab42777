//! Candidates and their applications: list and search, one candidate with
//! the thread in both directions, changes to names, gender and language,
//! merge, an application from the online form (with its documents and its
//! acknowledgement decision), status changes. The `_as` forms check the
//! caller's right (`manage_candidates`) and subsidiaries first.

use super::access::Caller;
use super::documents::Upload;
use super::filing::FormOutcome;
use super::messages::confidence;
use super::{App, Error, Result};
use crate::config::Right;
use crate::store::candidates::{
    CandidateChange, CandidateDetail, CandidateSummary, FormApplication, STATUSES,
};

/// A change to a candidate: each field given is set.
#[derive(Debug, Clone, Default)]
pub struct CandidateUpdate {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// `female`, `male`, `diverse`, `unknown`.
    pub gender: Option<String>,
    /// `Some(None)` clears it (the subsidiary's language is used then).
    pub language: Option<Option<String>>,
}

/// The genders the store keeps (the templates' forms follow them).
pub const GENDERS: [&str; 4] = ["female", "male", "diverse", "unknown"];

/// A name as a person typed it: trimmed, no control characters, bounded.
fn clean_name(name: &str, field: &str) -> Result<String> {
    let cleaned: String = name
        .chars()
        .filter(|c| !crate::mail::filename::is_invisible(*c))
        .collect();
    let cleaned = cleaned.trim().to_string();
    if cleaned.chars().count() > 200 {
        return Err(Error::Invalid(format!(
            "{field} is longer than 200 characters"
        )));
    }
    Ok(cleaned)
}

/// An application from the online form, as the form (or `application
/// add`) gives it.
#[derive(Debug, Clone, Default)]
pub struct FormInput {
    /// An existing candidate; or else `email` and `name` of a new one (or
    /// of a known one: the same address and name).
    pub candidate: Option<i64>,
    pub email: Option<String>,
    /// "First Last" or "Last, First".
    pub name: Option<String>,
    /// The position applied for; or `subsidiary` for a general application.
    pub position: Option<String>,
    pub subsidiary: Option<String>,
    /// The applicant's language as the form gives it: it wins over any other.
    pub language: Option<String>,
    /// Documents uploaded with the application (a CV, a cover letter).
    pub documents: Vec<Upload>,
}

impl App {
    /// Candidates, newest first; `search` matches names and addresses.
    pub fn candidates(&self, search: Option<&str>, limit: usize) -> Result<Vec<CandidateSummary>> {
        Ok(self.store()?.candidates(search, limit)?)
    }

    /// One candidate with addresses, applications and the whole thread
    /// (a merged id leads to the survivor).
    pub fn candidate(&self, id: i64) -> Result<CandidateDetail> {
        let mut detail = self
            .store()?
            .candidate(id)?
            .ok_or_else(|| Error::NotFound(format!("no candidate {id}")))?;
        for t in &mut detail.thread {
            t.confidence = confidence(t.reason.as_deref());
        }
        Ok(detail)
    }

    /// Merges candidate `from` into `into` (two records of one person).
    pub fn merge(&self, into: i64, from: i64) -> Result<()> {
        self.merge_as(&Caller::Operator, into, from).map(|_| ())
    }

    /// Merges `from` into `into` for a caller with `manage_candidates` who
    /// sees both; returns the survivor. An id already merged into another
    /// is a conflict, as is merging a candidate into themselves.
    pub fn merge_as(&self, caller: &Caller, into: i64, from: i64) -> Result<CandidateDetail> {
        caller.require(Right::ManageCandidates)?;
        let mut store = self.store()?;
        for id in [into, from] {
            self.visible_candidate(&store, caller, id, "candidate.merge")?;
        }
        let survivor = store.resolve_candidate(into)?;
        let merged = store.resolve_candidate(from)?;
        if survivor == merged {
            return Err(Error::Conflict(if into == from {
                format!("cannot merge candidate {into} into themselves")
            } else {
                format!("candidates {from} and {into} are already one")
            }));
        }
        if survivor != Some(into) || merged != Some(from) {
            return Err(Error::Conflict(format!(
                "candidate {} was merged into another; merge the survivor",
                if survivor != Some(into) { into } else { from }
            )));
        }
        store.merge(into, from)?;
        drop(store);
        self.candidate_as(caller, into)
    }

    /// Changes a candidate's names, gender or language, for a caller with
    /// `manage_candidates` who sees them; returns the candidate. A
    /// language set here wins over a detected one (source `manual`).
    pub fn update_candidate_as(
        &self,
        caller: &Caller,
        id: i64,
        update: &CandidateUpdate,
    ) -> Result<CandidateDetail> {
        caller.require(Right::ManageCandidates)?;
        let first = update
            .first_name
            .as_deref()
            .map(|n| clean_name(n, "first_name"))
            .transpose()?;
        let last = update
            .last_name
            .as_deref()
            .map(|n| clean_name(n, "last_name"))
            .transpose()?;
        if let Some(g) = &update.gender
            && !GENDERS.contains(&g.as_str())
        {
            return Err(Error::Invalid(format!(
                "gender {g:?}: one of {}",
                GENDERS.join(", ")
            )));
        }
        let language = match &update.language {
            Some(Some(l)) => Some(Some(self.template_language(l)?)),
            Some(None) => Some(None),
            None => None,
        };
        let store = self.store()?;
        let id = self.visible_candidate(&store, caller, id, "candidate.update")?;
        store.change_candidate(
            id,
            &CandidateChange {
                first_name: first.as_deref(),
                last_name: last.as_deref(),
                gender: update.gender.as_deref(),
                language: language.as_ref().map(|l| l.as_deref()),
            },
        )?;
        drop(store);
        self.candidate_as(caller, id)
    }

    /// Sets an application's status, for a caller with `manage_candidates`
    /// who sees its candidate.
    pub fn set_application_status_as(
        &self,
        caller: &Caller,
        application: i64,
        status: &str,
    ) -> Result<()> {
        caller.require(Right::ManageCandidates)?;
        if !STATUSES.contains(&status) {
            return Err(Error::Invalid(format!(
                "status {status:?}: one of {}",
                STATUSES.join(", ")
            )));
        }
        let store = self.store()?;
        let candidate = store
            .application_candidate(application)?
            .ok_or_else(|| Error::NotFound(format!("no application {application}")))?;
        self.visible_candidate(&store, caller, candidate, "application.status")
            .map_err(|_| Error::NotFound(format!("no application {application}")))?;
        store.set_status(None, Some(application), status)?;
        Ok(())
    }

    /// A language the templates have, lowercased; else `Invalid`.
    fn template_language(&self, language: &str) -> Result<String> {
        let l = language.trim().to_lowercase();
        if self.config.template_languages.contains(&l) {
            Ok(l)
        } else {
            Err(Error::Invalid(format!(
                "language {l:?}: no template has it (they have: {})",
                self.config.template_languages.join(", ")
            )))
        }
    }

    /// Records an application from the online form and decides its
    /// acknowledgement, in one transaction (as the operator).
    pub fn add_form_application(&self, input: &FormInput) -> Result<FormOutcome> {
        self.add_form_application_as(&Caller::Operator, input)
    }

    /// An application from the online form, for a caller with
    /// `manage_candidates` who sees the subsidiary: the candidate (new or
    /// known), the application, its documents (each of a category the
    /// caller may edit) and its acknowledgement decision in one
    /// transaction.
    pub fn add_form_application_as(
        &self,
        caller: &Caller,
        input: &FormInput,
    ) -> Result<FormOutcome> {
        caller.require(Right::ManageCandidates)?;
        let config = &self.config;
        let language = input
            .language
            .as_deref()
            .map(|l| self.template_language(l))
            .transpose()?;
        let (subsidiary, position) = match (&input.position, &input.subsidiary) {
            (Some(p), _) => {
                let found = config
                    .positions
                    .iter()
                    .find(|x| &x.id == p)
                    .ok_or_else(|| Error::Invalid(format!("no position {p:?} in the config")))?;
                (found.subsidiary.clone(), Some(p.clone()))
            }
            (None, Some(s)) => {
                if !config.subsidiaries.iter().any(|x| &x.id == s) {
                    return Err(Error::Invalid(format!("no subsidiary {s:?} in the config")));
                }
                (s.clone(), None)
            }
            (None, None) => {
                return Err(Error::Invalid(
                    "name a position, or a subsidiary for a general application".into(),
                ));
            }
        };
        if let Some(e) = &input.email {
            crate::mail::address::Address::parse(e)
                .map_err(|err| Error::Invalid(format!("e-mail address {e:?}: {err}")))?;
        }
        if input.candidate.is_none() && input.email.is_none() {
            return Err(Error::Invalid(
                "name a candidate, or an e-mail address with a name".into(),
            ));
        }
        if !caller.sees(std::slice::from_ref(&subsidiary)) {
            return Err(Error::Forbidden(format!(
                "{} may not add applications to {subsidiary}",
                caller.id()
            )));
        }
        let name = input
            .name
            .as_deref()
            .map(|n| clean_name(n, "name"))
            .transpose()?;
        let (first, last) = name
            .as_deref()
            .map(|n| crate::matcher::split_name(n, input.email.as_deref().unwrap_or("")))
            .unwrap_or_default();
        let documents = input
            .documents
            .iter()
            .map(|u| self.check_upload(caller, u.clone()))
            .collect::<Result<Vec<_>>>()?;
        let mut store = self.store()?;
        if let Some(c) = input.candidate {
            self.visible_candidate(&store, caller, c, "application.add")?;
        }
        let now = super::now_ms();
        let uploads: Vec<_> = documents
            .iter()
            .map(|d| d.as_new(caller.id(), now))
            .collect();
        let outcome = super::filing::add_form_application(
            &mut store,
            &FormApplication {
                candidate: input.candidate,
                email: input.email.as_deref(),
                first_name: &first,
                last_name: &last,
                subsidiary: &subsidiary,
                position: position.as_deref(),
                language: language.as_deref(),
            },
            &uploads,
            &self.company,
            now,
        )?;
        for (doc, d) in outcome.documents.iter().zip(&documents) {
            self.audit(
                &store,
                caller,
                "document.upload",
                &format!("document {doc}"),
                true,
                &format!(
                    "candidate {}: {} ({})",
                    outcome.candidate,
                    d.filename(),
                    d.category()
                ),
            )?;
        }
        Ok(outcome)
    }

    /// Sets the status of one application, or of all of a candidate's;
    /// returns how many changed (the store refuses an unknown status).
    pub fn set_status(
        &self,
        candidate: Option<i64>,
        application: Option<i64>,
        status: &str,
    ) -> Result<usize> {
        Ok(self.store()?.set_status(candidate, application, status)?)
    }
}
