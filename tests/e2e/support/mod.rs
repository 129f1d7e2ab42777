//! What the tests run against besides the binary: the harness (a daemon on
//! a free port with its own store, clients, JSON helpers), a real SMTP
//! upstream that can fail on purpose, and a loopback DNS server.

pub mod dns;
pub mod harness;
pub mod upstream;
