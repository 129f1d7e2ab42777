//! The HTTP API over real HTTP (curl) against the real daemon.

mod api;
mod candidates;
mod client;
mod readme;
mod schemathesis;
mod web;
