//! The daemon as systemd runs it.

mod systemd;
