//! Messages: the inbox, one message and its raw bytes, and filing a mail
//! under a candidate by hand.

use super::{App, Error, Result};
use crate::mail::parsed::Mailbox;
use crate::matcher::{self, MatchInput, Reason};
use crate::store::{InboxEntry, InboxFilter, MessageDetail};

/// How sure a stored match reason is: certain, high, medium, new, none.
pub fn confidence(reason: Option<&str>) -> Option<&'static str> {
    reason.and_then(Reason::parse).map(Reason::confidence)
}

/// A mail filed by hand, and the author address now known for the candidate.
#[derive(Debug, Clone)]
pub struct Assigned {
    pub message: i64,
    pub candidate: i64,
    pub author: Option<Mailbox>,
}

impl App {
    /// The inbox, newest first, with each match reason's confidence.
    pub fn inbox(&self, filter: &InboxFilter) -> Result<Vec<InboxEntry>> {
        self.check_inbox_filter(filter)?;
        let mut entries = self.store()?.inbox(filter)?;
        for e in &mut entries {
            e.confidence = confidence(e.reason.as_deref());
        }
        Ok(entries)
    }

    /// `Invalid` for a subsidiary, position, status or category the config
    /// does not have (a typo would otherwise list nothing, silently).
    fn check_inbox_filter(&self, filter: &InboxFilter) -> Result<()> {
        let c = &self.config;
        let checks: [(&str, &Option<String>, Vec<&str>); 4] = [
            (
                "subsidiary",
                &filter.subsidiary,
                c.subsidiaries.iter().map(|s| s.id.as_str()).collect(),
            ),
            (
                "position",
                &filter.position,
                c.positions.iter().map(|p| p.id.as_str()).collect(),
            ),
            (
                "status",
                &filter.status,
                crate::store::candidates::STATUSES.to_vec(),
            ),
            (
                "category",
                &filter.category,
                c.document_categories
                    .iter()
                    .map(|d| d.id.as_str())
                    .collect(),
            ),
        ];
        if let Some(text) = filter.search.as_deref().map(str::trim)
            && !text.is_empty()
            && text.chars().count() < 3
        {
            // The index finds three characters or more; fewer would read
            // every mail of the store.
            return Err(Error::Invalid(format!(
                "search {text:?}: at least 3 characters"
            )));
        }
        for (what, given, known) in checks {
            if let Some(g) = given
                && !known.contains(&g.as_str())
            {
                return Err(Error::Invalid(format!(
                    "no {what} {g:?}; known: {}",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Everything stored about one message but its bytes.
    pub fn message(&self, id: i64) -> Result<MessageDetail> {
        let mut detail = self
            .store()?
            .message(id)?
            .ok_or_else(|| Error::NotFound(format!("no message {id}")))?;
        detail.confidence = confidence(detail.reason.as_deref());
        Ok(detail)
    }

    /// Files a message under a candidate by hand. Its author, as the
    /// matcher sees it (the original author of a forward, not the colleague
    /// who forwarded it), becomes one of the candidate's addresses.
    pub fn assign(&self, message: i64, candidate: i64) -> Result<Assigned> {
        let mut store = self.store()?;
        let (envelope, content) = store
            .envelope_and_content(message)?
            .ok_or_else(|| Error::NotFound(format!("no message {message}")))?;
        let parsed = crate::inbound::parse::parse_message(&content, envelope.sender.is_empty());
        let input = MatchInput::of(&parsed, &envelope, None);
        let author = matcher::author_of(&input, &self.company);
        store.assign(
            message,
            candidate,
            author.as_ref().map(|m| m.address.as_str()),
        )?;
        Ok(Assigned {
            message,
            candidate,
            author,
        })
    }
}
