//! The application layer: every operation a recruiter or operator does,
//! with typed inputs and outputs, for both front ends (the CLI and the
//! HTTP API). A front end parses its input, calls one function here,
//! and prints or serialises what it returns; the decisions are here or
//! below (matcher, outbound rules), and every read and write goes through
//! the store.
//!
//! No SQL, no sockets, no printing.

pub mod access;
pub mod backup;
pub mod candidates;
pub mod checks;
pub mod documents;
pub mod filing;
pub mod history;
pub mod messages;
pub mod operations;
pub mod outbox;
pub mod reload;
pub mod settings;
pub mod status;
pub mod templates;
pub mod webhooks;

use std::fmt;

use crate::config::Config;
use crate::config::company::Company;
use crate::store::{Store, StoreError};

/// What an operation failed on, in words for the person who asked, and of
/// a kind a front end maps to its own answer (exit code, HTTP status).
#[derive(Debug)]
pub enum Error {
    /// The thing asked for does not exist (HTTP 404).
    NotFound(String),
    /// The request cannot be done as asked (HTTP 400).
    Invalid(String),
    /// The caller may see the thing but not do this to it (HTTP 403).
    Forbidden(String),
    /// The request clashes with the state of the thing (HTTP 409): a
    /// merged candidate, an outbox item already sent.
    Conflict(String),
    /// More bytes than the limit allows (HTTP 413).
    TooLarge(String),
    /// A template that does not render for this candidate (HTTP 422).
    Unrenderable(String),
    /// The store failed; the same request may work later (HTTP 503).
    Store(StoreError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(m)
            | Error::Invalid(m)
            | Error::Forbidden(m)
            | Error::Conflict(m)
            | Error::TooLarge(m)
            | Error::Unrenderable(m) => f.write_str(m),
            Error::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        Error::Store(e)
    }
}

impl From<crate::outbound::compose::ComposeError> for Error {
    fn from(e: crate::outbound::compose::ComposeError) -> Error {
        if e.transient {
            Error::Store(StoreError(e.message))
        } else if e.unrenderable {
            Error::Unrenderable(e.message)
        } else {
            Error::Invalid(e.message)
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// One jobmail instance as the front ends see it: its config and the
/// company it describes. Each operation opens the store it needs.
pub struct App {
    pub config: Config,
    pub company: Company,
}

impl App {
    pub fn new(config: Config) -> App {
        let company = Company::from_config(&config);
        App { config, company }
    }

    fn store(&self) -> Result<Store> {
        Ok(Store::open(&self.config.server.database)?)
    }
}

pub use crate::clock::now_ms;

#[cfg(test)]
mod tests;
