//! `jobmail status`: one instance at a glance, with or without a daemon
//! running. The listener as configured and whether a daemon holds the
//! store's instance lock (and its pid); the certificate and key as `serve`
//! would load them now; the store's size and its WAL; the outbox per state,
//! the deferred item waiting longest, the upstreams paused by their
//! breaker; the acknowledgement decisions of the last hour. Everything is
//! read through the store and the files the config names.

use serde::Serialize;

use super::{App, Result};
use crate::store::status::DecisionCount;

/// The window of the acknowledgement decisions shown.
pub const DECISIONS_WINDOW_MS: i64 = 3_600_000;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The config file this describes.
    pub config: String,
    pub daemon: Daemon,
    pub listener: Listener,
    /// `None`: no `[tls]`, STARTTLS is not offered.
    pub tls: Option<Tls>,
    /// Where `/metrics` is served; `None`: off.
    pub metrics: Option<String>,
    /// `None`: no database yet (`serve` has not run with this config).
    pub store: Option<StoreFiles>,
    /// Outbox items per state that has any.
    pub queue: Vec<QueueCount>,
    pub oldest_deferred: Option<OldestDeferred>,
    pub paused_upstreams: Vec<PausedUpstream>,
    pub acknowledgements_last_hour: Vec<DecisionCount>,
    /// Each webhook endpoint's backlog (`jobmail webhooks list`).
    pub webhooks: Vec<crate::store::webhooks::EndpointBacklog>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Daemon {
    /// A `jobmail serve` holds the instance lock of this store.
    pub running: bool,
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Listener {
    /// `[server] listen`, as configured (a running daemon may still serve
    /// the addresses it started with: they change at a restart).
    pub listen: Vec<String>,
    /// `[tls] implicit_listen`.
    pub implicit_tls: Vec<String>,
    /// STARTTLS is offered on `listen`.
    pub starttls: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tls {
    pub certificate: String,
    pub key: String,
    /// `CN=…` of the certificate, when it loads.
    pub subject: Option<String>,
    /// When it expires (RFC 3339), when it loads.
    pub not_after: Option<String>,
    pub days_left: Option<i64>,
    /// Why it does not load, as `config check` says it; empty when it does.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoreFiles {
    pub database: String,
    pub database_bytes: u64,
    pub wal_bytes: u64,
    /// Mails filed but not yet in the search index (the daemon indexes them
    /// about once a second; a search finds them meanwhile all the same).
    pub search_backlog: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueCount {
    pub state: String,
    pub items: i64,
    pub bytes: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OldestDeferred {
    pub id: i64,
    pub subsidiary: String,
    pub created_at: String,
    pub age_seconds: i64,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_reply: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PausedUpstream {
    pub subsidiary: String,
    pub paused_until: String,
    pub failures: i64,
    pub last_error: Option<String>,
}

impl App {
    /// The instance's status at `now_ms`.
    pub fn status(&self, now_ms: i64) -> Result<Status> {
        let config = &self.config;
        let database = &config.server.database;
        let pid = crate::secrets::instance_holder(database).map_err(|e| {
            super::Error::Invalid(format!(
                "cannot tell whether a daemon runs on {}: {e}",
                database.display()
            ))
        })?;
        let addresses =
            |a: &[std::net::SocketAddr]| a.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let tls = config.tls.as_ref().map(|t| {
            let (loaded, problems) = match crate::inbound::tls::load(t, now_ms) {
                Ok(loaded) => (Some(loaded), Vec::new()),
                Err(problems) => (None, problems),
            };
            Tls {
                certificate: t.certificate.display().to_string(),
                key: t.key.display().to_string(),
                subject: loaded.as_ref().and_then(|l| l.subject.clone()),
                not_after: loaded
                    .as_ref()
                    .and_then(|l| crate::clock::rfc3339(l.not_after_ms)),
                days_left: loaded
                    .as_ref()
                    .map(|l| (l.not_after_ms - now_ms).div_euclid(86_400_000)),
                problems,
            }
        });
        let mut status = Status {
            config: config.path.display().to_string(),
            daemon: Daemon {
                running: pid.is_some(),
                pid,
            },
            listener: Listener {
                listen: addresses(&config.server.listen),
                implicit_tls: config
                    .tls
                    .as_ref()
                    .map(|t| addresses(&t.implicit_listen))
                    .unwrap_or_default(),
                starttls: config.tls.is_some(),
            },
            tls,
            metrics: config.metrics.as_ref().map(|m| m.listen.to_string()),
            store: None,
            queue: Vec::new(),
            oldest_deferred: None,
            paused_upstreams: Vec::new(),
            acknowledgements_last_hour: Vec::new(),
            webhooks: Vec::new(),
        };
        if !database.exists() {
            return Ok(status);
        }
        let store = self.store()?;
        let files = store.files()?;
        status.store = Some(StoreFiles {
            database: database.display().to_string(),
            database_bytes: files.database_bytes,
            wal_bytes: files.wal_bytes,
            search_backlog: store.search_backlog()?,
        });
        status.queue = store
            .queue_summary()?
            .into_iter()
            .map(|(state, items, bytes)| QueueCount {
                state,
                items,
                bytes,
            })
            .collect();
        status.oldest_deferred = store.oldest_deferred()?.map(|d| OldestDeferred {
            id: d.id,
            subsidiary: d.subsidiary,
            created_at: crate::clock::rfc3339_ms(d.created_at_ms),
            age_seconds: (now_ms - d.created_at_ms).max(0) / 1000,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at_ms.map(crate::clock::rfc3339_ms),
            last_reply: d.last_reply,
        });
        status.paused_upstreams = store
            .upstream_states()?
            .into_iter()
            .filter_map(|u| {
                let until = u.paused_until.filter(|&t| t > now_ms)?;
                Some(PausedUpstream {
                    subsidiary: u.subsidiary,
                    paused_until: crate::clock::rfc3339_ms(until),
                    failures: u.failures,
                    last_error: u.last_error,
                })
            })
            .collect();
        status.acknowledgements_last_hour =
            store.acknowledgement_decisions(now_ms - DECISIONS_WINDOW_MS)?;
        status.webhooks = self.webhook_endpoints()?;
        Ok(status)
    }
}
