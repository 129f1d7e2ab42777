//! End-to-end tests: the real `jobmail` binary, real clients over loopback,
//! the real SQLite store. One test binary, one module per concern.

mod harness;

mod acknowledgements;
mod authentication;
mod candidates;
mod clients;
mod config_check;
mod dialogs;
mod dns;
mod documents;
mod durability;
mod limits;
mod matching;
mod outbox;
mod relay;
mod systemd;
mod templates;
mod upstream;
