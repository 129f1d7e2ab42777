//! Mail going out: templates, the outbox, the relay to a real upstream,
//! acknowledgements.

pub mod acknowledgements;
mod outbox;
mod relay;
mod templates;
mod webhooks;
