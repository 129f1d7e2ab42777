//! Mail going out: templates and their rendering, composing outbox items,
//! the RFC 5322 message, acknowledgements, and the relay that delivers to
//! each subsidiary's upstream. Nothing here parses inbound mail.

pub mod acknowledgements;
pub mod audience;
pub mod autoreply;
pub mod compose;
pub mod message;
pub mod relay;
pub mod render;
pub mod template;
pub mod webhook;
