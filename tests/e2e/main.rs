//! End-to-end tests: the real `jobmail` binary, real clients over loopback,
//! the real SQLite store. One test binary; folders grouped like `src/`
//! (see `docs/testing.md`), helpers in `support/`.

// The tests talk to the daemon over real sockets, read its store file to
// check what it wrote, and read the clock to make times.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod support;

mod cli;
mod daemon;
mod http;
mod inbound;
mod matcher;
mod outbound;
