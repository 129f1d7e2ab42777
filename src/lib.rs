//! jobmail: a self-hosted SMTP gateway for recruiting mail.
//!
//! Mail flows two ways. Inbound: `inbound` (SMTP listener, session, DATA,
//! parse) → `store` (SQLite, 250 only after commit) → `matcher` (which
//! candidate, and why) → acknowledgements. Outbound: `app` (what an operator
//! or recruiter asks for) → `outbound` (audience, compose, render, the RFC
//! 5322 message) → `store` (outbox) → `outbound::relay` → the subsidiary's
//! upstream. `mail` holds the pure pieces both directions share, `config`
//! the typed configuration and the company it describes, `cli` the command
//! line, `daemon` the wiring, `logging` the format of its log lines,
//! `metrics` what the daemon counts about itself. See
//! `docs/architecture.md` for the code map.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod http;
pub mod inbound;
pub mod logging;
pub mod mail;
pub mod matcher;
pub mod metrics;
pub mod outbound;
pub mod secrets;
pub mod store;
