//! jobmail: a self-hosted SMTP gateway for recruiting mail.
//!
//! Data flows one way: `ingress` (SMTP) → `parse` → `store` (SQLite); the
//! `cli` reads the store. See `docs/architecture.md` for the code map.

pub mod address;
pub mod autoreply;
pub mod cli;
pub mod compose;
pub mod config;
pub mod daemon;
pub mod directory;
pub mod dsn;
pub mod ingress;
pub mod matcher;
pub mod model;
pub mod outgoing;
pub mod parse;
pub mod relay;
pub mod render;
pub mod state;
pub mod store;
pub mod template;
