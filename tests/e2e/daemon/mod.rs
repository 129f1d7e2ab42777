//! The daemon as systemd and an operator run it: the unit, reloads,
//! readiness and the watchdog, `status`, metrics, backup and restore, and
//! its log telling a mail's life.

mod backup;
mod log;
mod metrics;
pub mod reload;
mod status;
mod systemd;
mod watchdog;
