//! The daemon as systemd runs it, as an operator backs it up and restores
//! it, and as its log tells a mail's life.

mod backup;
mod log;
mod systemd;
