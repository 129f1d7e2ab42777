//! Who is asking, and what they may do: the one check every path goes
//! through (the CLI, the HTTP API, compose's reuse of a document). A
//! [`Caller`] is the local operator (every right) or a configured user with
//! a role; roles grant `view` or `edit` per document category and
//! operation rights, users see the candidates of their subsidiaries.
//!
//! Pure: the caller's rights from the config; the store is asked and the
//! audit written by the operations that use this.

use sha2::Digest;

use super::{App, Error, Result};
use crate::config::{Config, Right, Role, User};

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The operator at the server's shell (`jobmail` without `--as`): every
    /// right and every category; audited as `cli`.
    Operator,
    /// A configured user (an API client, or `--as USER`).
    User { user: Box<User>, role: Box<Role> },
}

impl Caller {
    /// The name the audit records.
    pub fn id(&self) -> &str {
        match self {
            Caller::Operator => "cli",
            Caller::User { user, .. } => &user.id,
        }
    }

    /// May see (list, download, preview) documents of this category. A
    /// sensitive category, or one the config no longer has, only when the
    /// role names it.
    pub fn may_view(&self, category: &str, config: &Config) -> bool {
        let Caller::User { role, .. } = self else {
            return true;
        };
        let named = role.view.iter().chain(&role.edit).any(|c| c == category);
        let open = config
            .document_categories
            .iter()
            .any(|c| c.id == category && !c.sensitive);
        named || (open && (role.view_all || role.edit_all))
    }

    /// May upload, re-categorise and delete documents of this category.
    pub fn may_edit(&self, category: &str, config: &Config) -> bool {
        let Caller::User { role, .. } = self else {
            return true;
        };
        let open = config
            .document_categories
            .iter()
            .any(|c| c.id == category && !c.sensitive);
        role.edit.iter().any(|c| c == category) || (open && role.edit_all)
    }

    /// Has an operation right.
    pub fn has(&self, right: Right) -> bool {
        match self {
            Caller::Operator => true,
            Caller::User { role, .. } => role.rights.contains(&right),
        }
    }

    /// Sees a candidate who applied to these subsidiaries (a user limited
    /// to some subsidiaries sees only their candidates).
    pub fn sees(&self, subsidiaries: &[String]) -> bool {
        match self {
            Caller::Operator => true,
            Caller::User { user, .. } => {
                user.subsidiaries.is_empty()
                    || subsidiaries.iter().any(|s| user.subsidiaries.contains(s))
            }
        }
    }

    /// `Forbidden` unless the caller has the right.
    pub fn require(&self, right: Right) -> Result<()> {
        if self.has(right) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "{} may not {} (the right {:?})",
                self.id(),
                match right {
                    Right::Compose => "compose mail",
                    Right::Assign => "assign mail",
                    Right::OperateQueue => "operate the queue",
                    Right::ManageCandidates => "manage candidates",
                },
                right.as_str()
            )))
        }
    }
}

/// Equal in time whatever the bytes (for comparing token hashes).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl App {
    /// The user a bearer token belongs to; `None` for an unknown token.
    pub fn caller_with_token(&self, token: &str) -> Option<Caller> {
        let hash = hex::encode(sha2::Sha256::digest(token.trim().as_bytes()));
        // Every user compared, found or not: the time says nothing.
        let user = self.config.users.iter().fold(None, |found, u| {
            if same(u.token_sha256.as_bytes(), hash.as_bytes()) {
                Some(u)
            } else {
                found
            }
        })?;
        self.user_caller(user)
    }

    /// A configured user by id (`--as USER`).
    pub fn caller_named(&self, id: &str) -> Result<Caller> {
        let user = self
            .config
            .users
            .iter()
            .find(|u| u.id == id)
            .ok_or_else(|| Error::NotFound(format!("no [[user]] has id {id:?}")))?;
        self.user_caller(user)
            .ok_or_else(|| Error::Invalid(format!("user {id:?} has no role")))
    }

    fn user_caller(&self, user: &User) -> Option<Caller> {
        let role = self.config.roles.iter().find(|r| r.id == user.role)?;
        Some(Caller::User {
            user: Box::new(user.clone()),
            role: Box::new(role.clone()),
        })
    }
}
