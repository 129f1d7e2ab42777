//! Candidates and their applications: list and search, one candidate with
//! the thread in both directions, merge, an application from the online
//! form (with its acknowledgement decision), status changes.

use super::filing::FormOutcome;
use super::messages::confidence;
use super::{App, Error, Result};
use crate::store::candidates::{CandidateDetail, CandidateSummary, FormApplication};

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
        Ok(self.store()?.merge(into, from)?)
    }

    /// Records an application from the online form and decides its
    /// acknowledgement, in one transaction.
    pub fn add_form_application(&self, input: &FormInput) -> Result<FormOutcome> {
        let config = &self.config;
        let language = input.language.as_deref().map(|l| l.trim().to_lowercase());
        if let Some(l) = &language
            && !config.template_languages.contains(l)
        {
            return Err(Error::Invalid(format!(
                "language {l:?}: no template has it (they have: {})",
                config.template_languages.join(", ")
            )));
        }
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
        let (first, last) = input
            .name
            .as_deref()
            .map(|n| crate::matcher::split_name(n, input.email.as_deref().unwrap_or("")))
            .unwrap_or_default();
        let mut store = self.store()?;
        Ok(super::filing::add_form_application(
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
            &self.company,
            super::now_ms(),
        )?)
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
