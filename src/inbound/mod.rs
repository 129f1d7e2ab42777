//! Mail coming in: the SMTP listener and its sessions, TLS (STARTTLS and
//! implicit), the DATA reader, SPF/DKIM/DMARC verdicts, delivery reports,
//! and parsing a stored mail into headers and documents. Nothing here renders or sends mail.

pub mod auth;
pub mod data;
pub mod dsn;
pub mod listener;
pub mod parse;
pub mod session;
pub mod tls;

#[cfg(test)]
mod session_tests;
