//! End-to-end tests: the real `jobmail` binary, real clients over loopback,
//! the real SQLite store. One test binary; folders grouped like `src/`
//! (see `docs/testing.md`), helpers in `support/`.

mod support;

mod cli;
mod daemon;
mod inbound;
mod matcher;
mod outbound;
