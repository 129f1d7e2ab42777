//! The daemon as systemd and an operator run it: the unit, reloads,
//! readiness and the watchdog, `status`, metrics.

mod metrics;
mod reload;
mod status;
mod systemd;
mod watchdog;
