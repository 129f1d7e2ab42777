//! The relay worker: delivers due outbox items through the upstream SMTP
//! server of each item's subsidiary, from the VERP bounce address, with the
//! frozen bytes, and records every outcome (one writer, group commits).
//! The connections themselves are `connection.rs`'s.
//!
//! Runs inside `jobmail serve`. It claims no more items than each
//! upstream can take now (its free connections, its rate-limit budget), so
//! the queue stays in the store, not in memory, and everything not being
//! sent can still be held, cancelled or deleted. The breaker and shutdown
//! are checked again right before each attempt. Outcomes are retried until
//! they commit; an item `sending` that no attempt holds (its outcome lost)
//! is put back while running, and items left `sending` by a crash at start
//! (at least once, same bytes and Message-ID). Transient and
//! permanent failures are told apart in one place ([`classify`]): 4xx,
//! timeouts, connection and TLS errors are retried with a doubling backoff
//! until the queue lifetime; 5xx fails at once. On shutdown no new send
//! starts; running ones finish or are put back. This is the only module
//! that connects out; it never parses inbound mail or renders.

// The relay connects out (clippy.toml bans sockets elsewhere).
#![allow(clippy::disallowed_types)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::TlsParameters;
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::config::{Config, RelayConfig, Security, Upstream};
use crate::store::Store;
use crate::store::outbox::{ClaimLimits, Claimed, Outcome};

mod connection;
use connection::{ConnectError, Connector};

/// Most outcomes recorded in one commit.
const OUTCOME_BATCH: usize = 256;
/// Items of subsidiaries without a usable upstream in flight at once
/// (they only defer, saying why).
const UNROUTED_IN_FLIGHT: usize = 8;
/// How often the relay asks (with a read, no lock) whether anything is due,
/// between its polls: mail queued by `send` goes out within this.
const PROBE: Duration = Duration::from_millis(100);
/// An item `sending` this long without an attempt of ours holding it has
/// lost its outcome: it is sent again.
const LEASE: Duration = Duration::from_secs(60);

/// What went wrong with one attempt, before it is classified.
#[derive(Debug)]
pub enum AttemptError {
    /// The upstream answered, or lettre failed (connection, TLS, protocol).
    Smtp(lettre::transport::smtp::Error),
    /// No final reply within the send timeout: the upstream may have taken it.
    Timeout(Duration),
    /// The item cannot be sent as it is configured (no upstream, bad address).
    Setup(String),
    /// The TCP connect (or, for implicit TLS, the greeting) failed or timed out.
    Connect(String),
    /// The upstream refused our login or envelope sender for good (5xx on
    /// AUTH or MAIL FROM): the same for every mail, so the mail waits and
    /// the breaker counts it, unless `auth_failure = "fail"` says otherwise
    /// for a login.
    Refused(lettre::transport::smtp::Error),
}

fn code_of(e: &lettre::transport::smtp::Error) -> Option<u16> {
    e.status().and_then(|c| c.to_string().parse().ok())
}

/// The wait before attempt `attempt + 1`: `retry_initial` doubling per
/// attempt, at most `retry_max`.
pub fn backoff(policy: &RelayConfig, attempt: i64) -> Duration {
    let doublings = attempt.clamp(1, 32) as u32 - 1;
    policy
        .retry_initial
        .checked_mul(1u32 << doublings.min(20))
        .unwrap_or(policy.retry_max)
        .min(policy.retry_max)
}

/// SMTP codes of a rejected login (RFC 4954).
const AUTH_CODES: [u16; 4] = [530, 534, 535, 538];

/// The one place that decides what an attempt's result means.
/// `defer_auth`: a rejected login is retried instead of failing the mail.
pub fn classify(
    result: &Result<Response, AttemptError>,
    item: &Claimed,
    policy: &RelayConfig,
    defer_auth: bool,
    now_ms: i64,
) -> Outcome {
    let (code, text) = match result {
        Ok(response) => {
            return Outcome::Sent {
                code: response.code().to_string().parse().ok(),
                text: response.message().collect::<Vec<_>>().join(" "),
            };
        }
        Err(AttemptError::Smtp(e))
            if e.is_permanent()
                && !(defer_auth && code_of(e).is_some_and(|c| AUTH_CODES.contains(&c))) =>
        {
            return Outcome::Failed {
                code: code_of(e),
                text: e.to_string(),
            };
        }
        Err(AttemptError::Refused(e))
            if !defer_auth && code_of(e).is_some_and(|c| AUTH_CODES.contains(&c)) =>
        {
            return Outcome::Failed {
                code: code_of(e),
                text: e.to_string(),
            };
        }
        Err(AttemptError::Refused(e)) => (
            code_of(e),
            format!("the upstream refused us, not this mail (retried, the breaker counts it): {e}"),
        ),
        Err(AttemptError::Smtp(e)) => (code_of(e), e.to_string()),
        Err(AttemptError::Timeout(t)) => (
            None,
            format!(
                "no final reply within {}: the upstream may have taken it; retrying with the same Message-ID",
                humantime::format_duration(*t)
            ),
        ),
        Err(AttemptError::Setup(text) | AttemptError::Connect(text)) => (None, text.clone()),
    };
    let next_ms = now_ms + backoff(policy, item.attempt).as_millis() as i64;
    let expires_ms = item.created_at_ms + policy.queue_lifetime.as_millis() as i64;
    if next_ms > expires_ms {
        Outcome::Failed {
            code,
            text: format!(
                "queue lifetime of {} expired; last: {text}",
                humantime::format_duration(policy.queue_lifetime)
            ),
        }
    } else {
        Outcome::Deferred {
            code,
            text,
            next_ms,
        }
    }
}

/// A subsidiary's upstream, ready to send through.
struct Route {
    connector: Connector,
    send_timeout: Duration,
    /// Bounds concurrent sends, and so connections.
    slots: Arc<Semaphore>,
    defer_on_auth_failure: bool,
    /// The rate limit as the time between two sends, if any.
    interval: Option<Duration>,
    /// When the next send may start under the rate limit.
    next_slot: Arc<tokio::sync::Mutex<tokio::time::Instant>>,
    breaker_threshold: i64,
    breaker_pause: Duration,
    max_connections: usize,
    /// Attempts claimed and not yet finished (their bytes are in memory).
    in_flight: Arc<AtomicUsize>,
    /// Finished attempts whose outcome is not recorded yet (still `sending`).
    unrecorded: Arc<AtomicUsize>,
    /// The breaker's pause as this relay last set it (unix ms; 0: none).
    paused_until: Arc<AtomicI64>,
    /// The breaker, kept here and written with the outcomes it came from.
    breaker: Arc<Mutex<crate::store::outbox::UpstreamState>>,
    /// The password and its forms on the wire (AUTH PLAIN and LOGIN), cut
    /// out of any reply before it is recorded or logged: a careless
    /// upstream may quote what it was sent.
    secrets: Vec<String>,
}

impl Route {
    /// This route with what outlives a reload taken from the one it
    /// replaces: the counts of attempts in flight and of outcomes not yet
    /// recorded, the breaker, the rate limit's next slot, and the
    /// connection slots if their number is the same. Attempts that started
    /// before the reload finish on their old connection and count here.
    fn succeeding(mut self, old: &Route) -> Route {
        self.in_flight = old.in_flight.clone();
        self.unrecorded = old.unrecorded.clone();
        self.paused_until = old.paused_until.clone();
        self.breaker = old.breaker.clone();
        self.next_slot = old.next_slot.clone();
        if self.max_connections == old.max_connections {
            self.slots = old.slots.clone();
        }
        self
    }

    /// `text` without any form of the password in it.
    fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "[redacted]");
            }
        }
        text
    }
}

impl Route {
    /// How many items to claim for this upstream now: enough that each of
    /// its connections has one item being sent and one ready behind it
    /// (so a connection never waits for the store between two mails),
    /// counting outcomes not yet recorded, so the items `sending` never
    /// pass twice the connections; and no more than its rate limit allows
    /// within `window`.
    async fn capacity(&self, window: Duration) -> usize {
        let free = (2 * self.max_connections).saturating_sub(
            self.in_flight.load(Ordering::SeqCst) + self.unrecorded.load(Ordering::SeqCst),
        );
        let Some(interval) = self.interval else {
            return free;
        };
        let now = tokio::time::Instant::now();
        let next = (*self.next_slot.lock().await).max(now);
        let horizon = now + window;
        if next > horizon {
            return 0;
        }
        let fits = 1 + ((horizon - next).as_millis() / interval.as_millis().max(1)) as usize;
        free.min(fits)
    }
}

/// Counts an attempt while it runs, or its outcome while it waits to be
/// recorded; when dropped, wakes the claim loop.
struct InFlight(Arc<AtomicUsize>, Arc<tokio::sync::Notify>);

impl InFlight {
    fn new(counter: Arc<AtomicUsize>, freed: Arc<tokio::sync::Notify>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        InFlight(counter, freed)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        self.1.notify_one();
    }
}

/// One finished attempt on its way to the store.
struct Finished {
    item: i64,
    outcome: Outcome,
    at_ms: i64,
    /// The breaker's new state, if the attempt changed it, with its place
    /// in the order of all breaker changes ([`BREAKER_CHANGES`]).
    upstream: Option<(crate::store::outbox::UpstreamState, u64)>,
    /// Counted as unrecorded until the outcome is committed.
    _unrecorded: InFlight,
}

/// Every breaker change of this process, counted under the breaker's lock:
/// the attempts' outcomes reach the writer in any order, and only the
/// latest change of an upstream may be written (an older one, recorded
/// after it, would undo a pause).
static BREAKER_CHANGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Longest pause of the circuit breaker.
const MAX_PAUSE: Duration = Duration::from_secs(30 * 60);

/// What an attempt says about the upstream's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Good,
    /// A connection, TLS, timeout or 4xx failure.
    Failing(String),
    /// A 5xx or our own setup: nothing about the server.
    Neutral,
}

impl Health {
    pub fn of(result: &Result<Response, AttemptError>) -> Health {
        match result {
            Ok(_) => Health::Good,
            Err(AttemptError::Smtp(e)) if e.is_permanent() => Health::Neutral,
            Err(AttemptError::Smtp(e)) => Health::Failing(e.to_string()),
            Err(AttemptError::Timeout(t)) => Health::Failing(format!(
                "no reply within {}",
                humantime::format_duration(*t)
            )),
            Err(AttemptError::Connect(text)) => Health::Failing(text.clone()),
            Err(AttemptError::Refused(e)) => Health::Failing(e.to_string()),
            Err(AttemptError::Setup(_)) => Health::Neutral,
        }
    }
}

/// The circuit breaker's next state after an attempt: a success closes it;
/// a failing attempt counts, and `threshold` of them in a row pause the
/// upstream, each new pause twice as long (up to 30 minutes). Failures of
/// attempts that were already under way when the pause began are the same
/// burst: they do not count again, so one outage moves the breaker one step.
pub fn breaker(
    mut state: crate::store::outbox::UpstreamState,
    health: &Health,
    threshold: i64,
    pause: Duration,
    now_ms: i64,
) -> crate::store::outbox::UpstreamState {
    if matches!(health, Health::Failing(_)) && state.paused_until.is_some_and(|u| u > now_ms) {
        return state;
    }
    match health {
        Health::Good => {
            state.failures = 0;
            state.pause_ms = 0;
            state.paused_until = None;
            state.last_error = None;
        }
        Health::Neutral => {}
        Health::Failing(error) => {
            state.failures += 1;
            state.last_error = Some(error.clone());
            if state.failures >= threshold {
                let next = if state.pause_ms == 0 {
                    pause
                } else {
                    (Duration::from_millis(state.pause_ms as u64) * 2).min(MAX_PAUSE)
                };
                state.pause_ms = next.as_millis() as i64;
                state.paused_until = Some(now_ms + state.pause_ms);
                state.failures = 0;
            }
        }
    }
    state
}

fn route(upstream: &Upstream, hostname: &str) -> Result<Route, String> {
    let security = match upstream.security {
        Security::None => connection::Security::Plain,
        Security::StartTls | Security::Tls => {
            let mut builder = TlsParameters::builder(upstream.host.clone());
            if let Some(file) = &upstream.ca_file {
                let pem = std::fs::read(file)
                    .map_err(|e| format!("cannot read the CA file {}: {e}", file.display()))?;
                let ca = lettre::transport::smtp::client::Certificate::from_pem(&pem)
                    .map_err(|e| format!("CA file {}: {e}", file.display()))?;
                builder = builder.add_root_certificate(ca);
            }
            let params = builder
                .build()
                .map_err(|e| format!("TLS setup for {}: {e}", upstream.host))?;
            if upstream.security == Security::Tls {
                connection::Security::Implicit(params)
            } else {
                connection::Security::StartTls(params)
            }
        }
    };
    let mut secrets = Vec::new();
    let credentials = match (&upstream.username, &upstream.password_file) {
        (Some(user), Some(file)) => {
            let password = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read the password file {}: {e}", file.display()))?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            secrets = wire_forms(user, &password);
            Some(Credentials::new(user.clone(), password))
        }
        _ => None,
    };
    // The connect timeout bounds the TCP connect and the greeting; the
    // whole send (the reply after the final dot included: RFC 5321's 10
    // minutes) is bounded by `send_timeout` in `attempt`.
    let connector = Connector::new(
        upstream.host.clone(),
        upstream.port,
        security,
        ClientId::Domain(hostname.to_string()),
        credentials,
        upstream.connect_timeout,
        upstream.max_connections,
    );
    Ok(Route {
        connector,
        send_timeout: upstream.send_timeout,
        slots: Arc::new(Semaphore::new(upstream.max_connections)),
        defer_on_auth_failure: upstream.defer_on_auth_failure,
        interval: (upstream.rate_limit > 0).then(|| Duration::from_secs(60) / upstream.rate_limit),
        next_slot: Arc::new(tokio::sync::Mutex::new(tokio::time::Instant::now())),
        breaker_threshold: upstream.breaker_threshold as i64,
        breaker_pause: upstream.breaker_pause,
        max_connections: upstream.max_connections,
        in_flight: Arc::new(AtomicUsize::new(0)),
        unrecorded: Arc::new(AtomicUsize::new(0)),
        paused_until: Arc::new(AtomicI64::new(0)),
        breaker: Arc::new(Mutex::new(crate::store::outbox::UpstreamState::default())),
        secrets,
    })
}

/// A password as it may come back in a reply: itself, and the base64 of
/// AUTH LOGIN and of AUTH PLAIN (with and without the user as authzid).
fn wire_forms(user: &str, password: &str) -> Vec<String> {
    use data_encoding::BASE64;
    if password.is_empty() {
        return Vec::new();
    }
    let mut forms = vec![
        BASE64.encode(format!("\0{user}\0{password}").as_bytes()),
        BASE64.encode(format!("{user}\0{user}\0{password}").as_bytes()),
        BASE64.encode(password.as_bytes()),
        password.to_string(),
    ];
    // Longest first, so that no form is cut through by a shorter one.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms
}

/// The routes of `config`'s upstreams, each built anew (password and CA
/// files read again), succeeding the route of the same subsidiary in
/// `previous`. A new upstream's breaker is read from the store.
async fn routes_for(
    config: &Config,
    previous: &HashMap<String, Arc<Route>>,
    store: &Arc<Mutex<Store>>,
) -> HashMap<String, Arc<Route>> {
    let mut routes = HashMap::new();
    for s in &config.subsidiaries {
        match s
            .upstream
            .as_ref()
            .map(|u| route(u, &config.server.hostname))
        {
            Some(Ok(r)) => {
                let r = match previous.get(&s.id) {
                    Some(old) => r.succeeding(old),
                    None => {
                        let id = s.id.clone();
                        if let Some(state) = blocking(store, move |s| s.upstream_state(&id)).await {
                            r.paused_until
                                .store(state.paused_until.unwrap_or(0), Ordering::SeqCst);
                            *r.breaker.lock().unwrap_or_else(|p| p.into_inner()) = state;
                        }
                        r
                    }
                };
                routes.insert(s.id.clone(), Arc::new(r));
            }
            Some(Err(e)) => {
                tracing::error!(subsidiary = %s.id, error = %e, "relay: upstream unusable")
            }
            None => {
                tracing::info!(subsidiary = %s.id, "relay: no upstream configured; its mail waits in the queue")
            }
        }
    }
    routes
}

async fn attempt(route: Option<&Route>, item: &Claimed) -> Result<Response, AttemptError> {
    let route = route.ok_or_else(|| {
        AttemptError::Setup(format!(
            "subsidiary {} has no usable [subsidiary.upstream]",
            item.subsidiary
        ))
    })?;
    let from = item.envelope_from.parse().map_err(|e| {
        AttemptError::Setup(format!("envelope sender {:?}: {e}", item.envelope_from))
    })?;
    let to = item
        .recipients
        .iter()
        .map(|r| r.parse())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AttemptError::Setup(format!("recipient: {e}")))?;
    let envelope = Envelope::new(Some(from), to).map_err(|e| AttemptError::Setup(e.to_string()))?;
    if let Some(interval) = route.interval {
        // Rate limit: each send takes the next free slot.
        let start = {
            let mut next = route.next_slot.lock().await;
            let start = (*next).max(tokio::time::Instant::now());
            *next = start + interval;
            start
        };
        tokio::time::sleep_until(start).await;
    }
    // lettre always writes CRLF "." CRLF after the data: without our last
    // CRLF, the upstream receives exactly the frozen bytes.
    let data = item.bytes.strip_suffix(b"\r\n").unwrap_or(&item.bytes);
    let upstream = || format!("{}:{}", route.connector.host, route.connector.port);
    match tokio::time::timeout(route.send_timeout, route.connector.send(&envelope, data)).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(ConnectError::Smtp(e))) => Err(AttemptError::Smtp(e)),
        Ok(Err(ConnectError::Refused(e))) => Err(AttemptError::Refused(e)),
        Ok(Err(ConnectError::Io(e))) => Err(AttemptError::Connect(format!(
            "cannot connect to {}: {e}",
            upstream()
        ))),
        Ok(Err(ConnectError::Timeout(t))) => Err(AttemptError::Connect(format!(
            "connection to {} timed out after {}",
            upstream(),
            humantime::format_duration(t)
        ))),
        Err(_) => Err(AttemptError::Timeout(route.send_timeout)),
    }
}

fn now_ms() -> i64 {
    crate::clock::now_ms()
}

/// Runs the relay until `shutdown`; then lets running sends finish for up
/// to `grace` (the others stay `sending` and are put back at the next start).
/// Each turn it reads the config as last (re)loaded: after a reload the
/// retry policy is the new one and every upstream's route is built again
/// (its address, security, login, limits; the password and CA files read
/// again), keeping the breakers and the counts of what is in flight.
pub async fn run(
    database: &Path,
    mut configs: watch::Receiver<Arc<Config>>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut config = configs.borrow_and_update().clone();
    let store = match Store::open(database).and_then(Store::for_claims) {
        Ok(s) => Arc::new(Mutex::new(s)),
        Err(e) => {
            tracing::error!(error = %e, "relay: cannot open the store; nothing will be sent");
            return;
        }
    };
    let mut routes = Arc::new(routes_for(&config, &HashMap::new(), &store).await);
    let recovered = blocking(&store, |s| s.recover_sending(now_ms())).await;
    if let Some(n @ 1..) = recovered {
        tracing::warn!(
            count = n,
            "relay: mail interrupted by a stop is being sent again"
        );
    }
    // Items claimed and not yet recorded: the lease. Anything else left
    // `sending` lost its outcome and is put back while running.
    let held: Arc<Mutex<HashSet<i64>>> = Arc::new(Mutex::new(HashSet::new()));
    // Group commit of outcomes: one writer records every outcome waiting in
    // one transaction, instead of one fsync per mail. Until its commit an
    // item stays `sending` (a crash in between sends it again, as before).
    // A failed commit (a lock held too long, a full disk) is retried with
    // the same outcomes until it succeeds: a delivered mail is never sent
    // again because its outcome was dropped. After shutdown it keeps trying
    // for the shutdown grace, then leaves them to the next start.
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (outcomes, mut waiting) = tokio::sync::mpsc::unbounded_channel::<Finished>();
    let freed = Arc::new(tokio::sync::Notify::new());
    // Its own connection: outcomes never wait behind a claim that waits
    // for a lock.
    let outcome_store = match Store::open(database) {
        Ok(s) => Arc::new(Mutex::new(s)),
        Err(e) => {
            tracing::error!(error = %e, "relay: cannot open the store; nothing will be sent");
            return;
        }
    };
    let writer = {
        let (store, held, stopping) = (outcome_store, held.clone(), stopping.clone());
        tokio::spawn(async move {
            // The latest breaker change written, per upstream.
            let mut written: HashMap<String, u64> = HashMap::new();
            while let Some(first) = waiting.recv().await {
                let mut batch = vec![first];
                let mut wait = Duration::from_millis(50);
                let mut given_up_at = None;
                loop {
                    while batch.len() < OUTCOME_BATCH
                        && let Ok(next) = waiting.try_recv()
                    {
                        batch.push(next);
                    }
                    let outcomes: Vec<(i64, Outcome, i64)> = batch
                        .iter()
                        .map(|f| (f.item, f.outcome.clone(), f.at_ms))
                        .collect();
                    // The latest breaker change of each upstream in the
                    // batch, if none later was written already.
                    let mut latest: HashMap<
                        String,
                        (crate::store::outbox::UpstreamState, i64, u64),
                    > = HashMap::new();
                    for f in &batch {
                        if let Some((state, seq)) = &f.upstream {
                            let newer = latest
                                .get(&state.subsidiary)
                                .is_none_or(|(_, _, s)| seq > s)
                                && written.get(&state.subsidiary).is_none_or(|w| seq > w);
                            if newer {
                                latest.insert(
                                    state.subsidiary.clone(),
                                    (state.clone(), f.at_ms, *seq),
                                );
                            }
                        }
                    }
                    let upstreams: Vec<(crate::store::outbox::UpstreamState, i64)> =
                        latest.values().map(|(s, at, _)| (s.clone(), *at)).collect();
                    if blocking(&store, move |s| s.record_outcomes(&outcomes, &upstreams))
                        .await
                        .is_some()
                    {
                        for (subsidiary, (_, _, seq)) in latest {
                            written.insert(subsidiary, seq);
                        }
                        break;
                    }
                    if stopping.load(Ordering::SeqCst) {
                        let deadline =
                            *given_up_at.get_or_insert_with(|| tokio::time::Instant::now() + grace);
                        if tokio::time::Instant::now() >= deadline {
                            tracing::error!(
                                count = batch.len(),
                                "relay: outcomes still not recorded at shutdown; those mails are sent again at the next start"
                            );
                            break;
                        }
                    }
                    tracing::warn!(count = batch.len(), retry_in = ?wait, "relay: outcomes not recorded yet; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
                for f in &batch {
                    held.remove(&f.item);
                }
                // Dropping the batch counts its outcomes as recorded.
            }
        })
    };
    let unrouted = Arc::new(AtomicUsize::new(0));
    let mut sends = JoinSet::new();
    let mut next_recovery = tokio::time::Instant::now() + LEASE;
    let mut next_promotion = tokio::time::Instant::now();
    // A reload seen while waiting (`changed` marks it seen).
    let mut reloaded = false;
    loop {
        crate::metrics::RELAY_HEARTBEAT.beat();
        if std::mem::take(&mut reloaded) || configs.has_changed().unwrap_or(false) {
            config = configs.borrow_and_update().clone();
            routes = Arc::new(routes_for(&config, &routes, &store).await);
            tracing::info!(
                upstreams = routes.len(),
                "relay: config reloaded; upstream routes built again"
            );
        }
        // Scheduled mail becomes due at the poll interval, not on every
        // wake-up after a send.
        if tokio::time::Instant::now() >= next_promotion {
            next_promotion = tokio::time::Instant::now() + config.relay.poll_interval;
            for promoted in blocking(&store, |s| s.promote_due(now_ms()))
                .await
                .unwrap_or_default()
            {
                tracing::info!(item = promoted.item, state = %promoted.state, reason = %promoted.reason, "relay: scheduled mail due");
            }
        }
        if *shutdown.borrow() {
            break;
        }
        // Claim only what can be sent now: the queue stays in the store.
        let mut limits = ClaimLimits {
            others: UNROUTED_IN_FLIGHT.saturating_sub(unrouted.load(Ordering::SeqCst)),
            ..ClaimLimits::default()
        };
        let now = now_ms();
        for (id, r) in routes.iter() {
            let free = if r.paused_until.load(Ordering::SeqCst) > now {
                0
            } else {
                r.capacity(config.relay.poll_interval).await
            };
            limits.per_subsidiary.push((id.clone(), free));
        }
        let claimed = if limits.others > 0 || limits.per_subsidiary.iter().any(|(_, n)| *n > 0) {
            blocking(&store, move |s| s.claim_due(now_ms(), &limits))
                .await
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        for item in claimed {
            held.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(item.id);
            let store = store.clone();
            let routes = routes.clone();
            let policy = config.relay.clone();
            let outcomes = outcomes.clone();
            let held = held.clone();
            let shutdown = shutdown.clone();
            // Counted from the claim on, so the next claim sees the slot taken.
            let slot = InFlight::new(
                routes
                    .get(&item.subsidiary)
                    .map_or_else(|| unrouted.clone(), |r| r.in_flight.clone()),
                freed.clone(),
            );
            let unrecorded = routes
                .get(&item.subsidiary)
                .map_or_else(|| Arc::new(AtomicUsize::new(0)), |r| r.unrecorded.clone());
            let freed = freed.clone();
            sends.spawn(async move {
                let route = routes.get(&item.subsidiary);
                // A connection of the upstream's, then checked again right
                // before the attempt: a pause that began since the claim, or
                // a stop, gives the item back unsent.
                let _connection = match route {
                    Some(r) => r.slots.clone().acquire_owned().await.ok(),
                    None => None,
                };
                let paused_until = route.map_or(0, |r| r.paused_until.load(Ordering::SeqCst));
                let now = now_ms();
                if *shutdown.borrow() || paused_until > now {
                    let (due, why) = if paused_until > now {
                        (
                            paused_until,
                            "not started: the upstream is paused (circuit breaker)",
                        )
                    } else {
                        (now, "not started: jobmail is stopping")
                    };
                    let back = item.clone();
                    blocking(&store, move |s| s.unclaim(&back, due, why, now)).await;
                    held.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&item.id);
                    drop(slot);
                    return;
                }
                let result = attempt(route.map(|r| &**r), &item).await;
                let now = now_ms();
                let defer_auth = route.is_some_and(|r| r.defer_on_auth_failure);
                let mut outcome = classify(&result, &item, &policy, defer_auth, now);
                if let Some(route) = route {
                    match &mut outcome {
                        Outcome::Sent { text, .. }
                        | Outcome::Deferred { text, .. }
                        | Outcome::Failed { text, .. } => *text = route.redact(text),
                    }
                }
                crate::metrics::attempt(match &outcome {
                    Outcome::Sent { .. } => crate::metrics::Attempt::Sent,
                    Outcome::Deferred { .. } => crate::metrics::Attempt::Deferred,
                    Outcome::Failed { .. } => crate::metrics::Attempt::Failed,
                });
                let mut upstream = None;
                if let Some(route) = route {
                    let health = match Health::of(&result) {
                        Health::Failing(text) => Health::Failing(route.redact(&text)),
                        other => other,
                    };
                    let (after, paused) = {
                        let mut state = route.breaker.lock().unwrap_or_else(|p| p.into_inner());
                        let before = state.clone();
                        let mut after = breaker(
                            before.clone(),
                            &health,
                            route.breaker_threshold,
                            route.breaker_pause,
                            now,
                        );
                        after.subsidiary = item.subsidiary.clone();
                        *state = after.clone();
                        let paused = after
                            .paused_until
                            .filter(|_| after.paused_until != before.paused_until);
                        let seq = BREAKER_CHANGES.fetch_add(1, Ordering::SeqCst) + 1;
                        ((after != before).then_some((after, seq)), paused)
                    };
                    upstream = after;
                    if let Some(until) = paused {
                        route.paused_until.store(until, Ordering::SeqCst);
                        tracing::warn!(
                            subsidiary = %item.subsidiary,
                            until = %crate::clock::rfc3339(until).unwrap_or_default(),
                            "relay: upstream paused after consecutive failures (circuit breaker)"
                        );
                    }
                }
                log_attempt(&item, route.map(Arc::as_ref), &outcome, now);
                // The connection is free for the next item now; the item is
                // `sending` until the outcome commits, and counted as such.
                let unrecorded = InFlight::new(unrecorded, freed);
                let id = item.id;
                drop(item);
                drop(_connection);
                drop(slot);
                // Only fails once the writer is gone, at the very end.
                let _ = outcomes.send(Finished {
                    item: id,
                    outcome,
                    at_ms: now,
                    upstream,
                    _unrecorded: unrecorded,
                });
            });
        }
        while sends.try_join_next().is_some() {}
        if tokio::time::Instant::now() >= next_recovery {
            next_recovery = tokio::time::Instant::now() + LEASE;
            let ids: Vec<i64> = held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .copied()
                .collect();
            let before = now_ms() - LEASE.as_millis() as i64;
            if let Some(n @ 1..) = blocking(&store, move |s| {
                s.recover_sending_except(&ids, before, now_ms())
            })
            .await
            {
                tracing::warn!(
                    count = n,
                    "relay: mail left sending without an attempt is sent again"
                );
            }
        }
        // Look again when a slot is free (an outcome recorded), or after
        // the poll interval for mail that became due.
        let next_poll = tokio::time::Instant::now() + config.relay.poll_interval;
        // A reload is taken up at once (unless the daemon is past them).
        let reloadable = configs.has_changed().is_ok();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next_poll.min(tokio::time::Instant::now() + PROBE)) => {}
                _ = freed.notified() => break,
                _ = shutdown.changed() => break,
                _ = configs.changed(), if reloadable => {
                    reloaded = true;
                    break;
                }
            }
            crate::metrics::RELAY_HEARTBEAT.beat();
            if tokio::time::Instant::now() >= next_poll
                || blocking(&store, |s| s.anything_due(now_ms())).await == Some(true)
            {
                break;
            }
        }
    }
    // No new sends; the running ones may finish.
    let drained =
        tokio::time::timeout(grace, async { while sends.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            open = sends.len(),
            "relay: stopping with sends still open; they are sent again at the next start"
        );
        sends.abort_all();
        while sends.join_next().await.is_some() {}
    }
    // Every outcome sent is recorded before the relay returns.
    stopping.store(true, Ordering::SeqCst);
    drop(outcomes);
    if writer.await.is_err() {
        tracing::error!(
            "relay: the outcome writer failed; unrecorded sends go again at the next start"
        );
    }
    // Idle connections are closed with QUIT, briefly: the upstream may be gone.
    let closing = async {
        for r in routes.values() {
            r.connector.close().await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), closing).await;
}

/// The one line per delivery attempt (README, "The log"): the item, the
/// upstream, its reply, how long since the mail was queued; never the
/// envelope (a VERP address is no secret, but a recipient's reply-token
/// address would be) nor a byte of the mail.
fn log_attempt(item: &Claimed, route: Option<&Route>, outcome: &Outcome, now_ms: i64) {
    let upstream = route.map_or_else(
        || "none".to_string(),
        |r| format!("{}:{}", r.connector.host, r.connector.port),
    );
    let delay_ms = (now_ms - item.created_at_ms).max(0) as u64;
    macro_rules! attempt_line {
        ($level:ident, $result:expr, $code:expr, $text:expr, $next:expr) => {
            tracing::$level!(
                item = item.id,
                attempt = item.attempt,
                upstream = %upstream,
                result = $result,
                code = $code,
                reply = %$text,
                delay_ms,
                next_attempt = $next,
                "delivery attempt"
            )
        };
    }
    match outcome {
        Outcome::Sent { code, text } => attempt_line!(info, "sent", *code, text, None::<&str>),
        Outcome::Deferred {
            code,
            text,
            next_ms,
        } => {
            let next = crate::clock::rfc3339(*next_ms).unwrap_or_default();
            attempt_line!(warn, "deferred", *code, text, Some(next.as_str()))
        }
        Outcome::Failed { code, text } => {
            attempt_line!(error, "failed", *code, text, None::<&str>)
        }
    }
}

/// Runs a store call off the async workers; a failure is logged and `None`.
async fn blocking<T: Send + 'static>(
    store: &Arc<Mutex<Store>>,
    f: impl FnOnce(&mut Store) -> crate::store::Result<T> + Send + 'static,
) -> Option<T> {
    let store = store.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let mut guard = store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    })
    .await;
    match joined {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "relay: store error");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "relay: store task failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RelayConfig {
        RelayConfig {
            retry_initial: Duration::from_secs(300),
            retry_max: Duration::from_secs(3600),
            queue_lifetime: Duration::from_secs(5 * 86_400),
            poll_interval: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_breaker_pauses_after_a_run_of_failures_and_doubles() {
        use crate::store::outbox::UpstreamState;
        let pause = Duration::from_secs(60);
        let fail = Health::Failing("451".into());
        let mut s = UpstreamState::default();
        s = breaker(s, &fail, 3, pause, 0);
        s = breaker(s, &Health::Neutral, 3, pause, 0);
        s = breaker(s, &fail, 3, pause, 0);
        assert_eq!(s.paused_until, None, "a 5xx neither counts nor resets");
        s = breaker(s, &fail, 3, pause, 1_000);
        assert_eq!(s.paused_until, Some(61_000));
        for _ in 0..3 {
            s = breaker(s, &fail, 3, pause, 100_000);
        }
        assert_eq!(s.pause_ms, 120_000, "the next pause is twice as long");
        s = breaker(s, &Health::Good, 3, pause, 200_000);
        assert_eq!((s.failures, s.pause_ms, s.paused_until), (0, 0, None));
    }

    #[test]
    fn a_password_quoted_back_by_the_upstream_is_cut_out_in_every_form() {
        use data_encoding::BASE64;
        let forms = wire_forms("jobs@acme.example", "s3cret");
        let upstream = Upstream {
            host: "127.0.0.1".into(),
            port: 2600,
            security: Security::None,
            username: None,
            password_file: None,
            ca_file: None,
            defer_on_auth_failure: true,
            connect_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(600),
            max_connections: 1,
            rate_limit: 0,
            breaker_threshold: 5,
            breaker_pause: Duration::from_secs(60),
        };
        let route = Route {
            secrets: forms,
            ..route(&upstream, "mx.test.example").unwrap()
        };
        let plain = BASE64.encode(b"\0jobs@acme.example\0s3cret");
        let login = BASE64.encode(b"s3cret");
        let reply = format!("535 5.7.8 bad: {plain} / {login} / s3cret");
        assert_eq!(
            route.redact(&reply),
            "535 5.7.8 bad: [redacted] / [redacted] / [redacted]"
        );
        assert!(wire_forms("u", "").is_empty());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = policy();
        let mins: Vec<u64> = (1..=7).map(|a| backoff(&p, a).as_secs() / 60).collect();
        assert_eq!(mins, vec![5, 10, 20, 40, 60, 60, 60]);
        assert_eq!(backoff(&p, 1000), Duration::from_secs(3600));
    }

    #[test]
    fn timeouts_defer_until_the_lifetime_then_fail() {
        let p = policy();
        let item = Claimed {
            id: 1,
            subsidiary: "a".into(),
            envelope_from: "bounce+1@a.example".into(),
            recipients: vec![],
            bytes: vec![],
            attempt: 3,
            created_at_ms: 0,
            from_state: "queued".into(),
        };
        let timeout = Err(AttemptError::Timeout(Duration::from_secs(600)));
        match classify(&timeout, &item, &p, false, 1_000) {
            Outcome::Deferred { next_ms, text, .. } => {
                assert_eq!(next_ms, 1_000 + 20 * 60_000);
                assert!(text.contains("same Message-ID"));
            }
            other => panic!("{other:?}"),
        }
        let late = 5 * 86_400_000;
        assert!(matches!(
            classify(&timeout, &item, &p, false, late),
            Outcome::Failed { .. }
        ));
        let setup = Err(AttemptError::Setup("no upstream".into()));
        assert!(matches!(
            classify(&setup, &item, &p, false, 1_000),
            Outcome::Deferred { .. }
        ));
    }
}
