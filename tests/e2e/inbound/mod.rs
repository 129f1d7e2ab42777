//! Mail coming in over SMTP: real clients, dialogs, limits, durability,
//! documents, authentication, TLS.

mod authentication;
mod clients;
mod dialogs;
mod documents;
mod durability;
mod limits;
pub(crate) mod tls;
