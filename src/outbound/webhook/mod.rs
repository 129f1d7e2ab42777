//! Webhook deliveries: the daemon's worker that keeps the store's endpoint
//! table in step with the config, takes the deliveries that are due
//! (each candidate's in order, per endpoint), posts each one signed
//! ([`signature`]) through [`client`], and records how it ended: delivered
//! on a 2xx, else retried with a doubling wait, and given up (`failed`)
//! once it is older than the endpoint's `give_up_after`.
//!
//! A delivery is recorded only after its answer, so a crash or kill
//! repeats it (at least once; `Jobmail-Event-Id` lets the receiver drop
//! the repeat); nothing is lost. It writes no events (the store does, with
//! the change each reports) and never logs a secret, a signature or a body.

pub mod client;
pub mod signature;

pub use signature::{EVENT_ID_HEADER, EVENTS, SIGNATURE_HEADER, is_event, signature, verify};

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{Config, Webhook};
use crate::store::Store;
use crate::store::webhooks::{Attempt, DueDelivery, EndpointSpec};

/// How often the worker looks for new events when nothing is due sooner
/// (events are written by the store's writer and by CLI commands).
const POLL: Duration = Duration::from_millis(500);
/// Deliveries taken at once (at most one per endpoint and candidate).
const BATCH: usize = 32;
/// The longest wait between two attempts.
const MAX_WAIT: Duration = Duration::from_secs(3600);
/// Delivered events are forgotten after this long.
const KEEP_DELIVERED_MS: i64 = 30 * 86_400 * 1000;

/// When to try again after `attempts` failed attempts (1 for the first),
/// or `None` to give up: the first retry waits `retry_after`, each next one
/// twice as long, at most an hour, and none starts after `give_up_after`
/// has passed since the event.
pub fn next_attempt(
    webhook: &Webhook,
    attempts: i64,
    created_at_ms: i64,
    now_ms: i64,
) -> Option<i64> {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let wait = webhook
        .retry_after
        .saturating_mul(1u32 << doublings)
        .min(MAX_WAIT);
    let next = now_ms.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
    let deadline = created_at_ms
        .saturating_add(i64::try_from(webhook.give_up_after.as_millis()).unwrap_or(i64::MAX));
    (next <= deadline).then_some(next)
}

/// The endpoints of `config`, as the store keeps them.
fn specs(config: &Config) -> Vec<EndpointSpec<'_>> {
    config
        .webhooks
        .iter()
        .map(|w| EndpointSpec {
            id: &w.id,
            url: &w.url,
            events: &w.events,
        })
        .collect()
}

/// Makes the store's endpoint table what `config` says. The daemon does
/// this before it takes mail, so that no event of the first mails is
/// written without its deliveries; the worker again after each reload.
pub fn register_endpoints(store: &mut Store, config: &Config) -> crate::store::Result<()> {
    store.set_webhook_endpoints(&specs(config), crate::clock::now_ms())
}

/// Runs a store call on the blocking pool (SQLite may wait for a lock).
async fn blocking<T: Send + 'static>(
    store: &Arc<Mutex<Store>>,
    f: impl FnOnce(&mut Store) -> crate::store::Result<T> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = store
            .lock()
            .map_err(|_| "the store handle is poisoned".to_string())?;
        f(&mut guard).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The worker: until shutdown, delivers what is due and waits for more.
/// Deliveries cut by a shutdown are not recorded and go again at the next
/// start.
pub async fn run(
    database: &Path,
    mut configs: watch::Receiver<Arc<Config>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let store = match Store::open(database) {
        Ok(s) => Arc::new(Mutex::new(s)),
        Err(e) => {
            tracing::error!(error = %e, "webhooks: cannot open the store; none will be delivered");
            return;
        }
    };
    let system_roots = client::system_roots();
    let mut tls = HashMap::new();
    let mut synced: Option<Arc<Config>> = None;
    let mut pruned_at = 0i64;
    loop {
        let config = configs.borrow_and_update().clone();
        if synced.as_ref().is_none_or(|s| !Arc::ptr_eq(s, &config)) {
            let c = config.clone();
            match blocking(&store, move |s| register_endpoints(s, &c)).await {
                Ok(()) => {
                    tls = tls_by_endpoint(&config, &system_roots);
                    if !config.webhooks.is_empty() {
                        tracing::info!(endpoints = config.webhooks.len(), "webhooks: delivering");
                    }
                    synced = Some(config.clone());
                }
                Err(e) => tracing::error!(error = %e, "webhooks: cannot record the endpoints"),
            }
        }
        let mut wait = POLL;
        if !config.webhooks.is_empty() {
            let now = crate::clock::now_ms();
            if now - pruned_at > 3_600_000 {
                pruned_at = now;
                if let Err(e) = blocking(&store, move |s| {
                    s.prune_webhook_events(now - KEEP_DELIVERED_MS)
                })
                .await
                {
                    tracing::warn!(error = %e, "webhooks: cannot forget old events");
                }
            }
            let delivered = tokio::select! {
                r = deliver_due(&store, &config, &tls) => r,
                _ = shutdown.changed() => return,
            };
            match delivered {
                Ok(n) if n > 0 => wait = Duration::ZERO,
                Ok(_) => {
                    if let Ok(Some(due)) = blocking(&store, |s| s.next_webhook_due()).await {
                        let until = u64::try_from(due - crate::clock::now_ms()).unwrap_or(0);
                        wait = wait.min(Duration::from_millis(until));
                    }
                }
                Err(e) => tracing::error!(error = %e, "webhooks: cannot read or record deliveries"),
            }
        }
        if wait.is_zero() && !*shutdown.borrow() {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait), if !config.webhooks.is_empty() => {}
            _ = configs.changed() => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// Each endpoint's TLS settings: the system's roots and its `ca_file`'s
/// (checked by the config; a file gone since is said, and the system's
/// roots alone are used).
fn tls_by_endpoint(
    config: &Config,
    system: &[rustls::pki_types::CertificateDer<'static>],
) -> HashMap<String, Arc<rustls::ClientConfig>> {
    config
        .webhooks
        .iter()
        .map(|w| {
            let mut roots = system.to_vec();
            if let Some(file) = &w.ca_file {
                match crate::config::read_certificates(file) {
                    Ok(more) => roots.extend(more),
                    Err(e) => tracing::error!(endpoint = %w.id, error = %e, "webhooks: cannot read ca_file"),
                }
            }
            (w.id.clone(), client::tls_settings(roots))
        })
        .collect()
}

/// One pass: the due deliveries posted at once, their ends recorded in one
/// commit; returns how many were attempted.
async fn deliver_due(
    store: &Arc<Mutex<Store>>,
    config: &Arc<Config>,
    tls: &HashMap<String, Arc<rustls::ClientConfig>>,
) -> Result<usize, String> {
    let now = crate::clock::now_ms();
    let due = blocking(store, move |s| s.due_webhook_deliveries(now, BATCH)).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut attempts = tokio::task::JoinSet::new();
    for delivery in due {
        let Some(webhook) = config
            .webhooks
            .iter()
            .find(|w| w.id == delivery.endpoint)
            .cloned()
        else {
            continue;
        };
        let Some(tls) = tls.get(&webhook.id).cloned() else {
            continue;
        };
        attempts.spawn(async move {
            let attempt = attempt(&webhook, &delivery, &tls).await;
            (delivery.endpoint, delivery.event, attempt)
        });
    }
    let mut ends = Vec::new();
    while let Some(done) = attempts.join_next().await {
        match done {
            Ok(end) => ends.push(end),
            Err(e) => tracing::error!(error = %e, "webhooks: a delivery task failed"),
        }
    }
    let n = ends.len();
    blocking(store, move |s| {
        s.record_webhook_attempts(&ends, crate::clock::now_ms())
    })
    .await?;
    Ok(n)
}

/// Posts one delivery, signed now, and says how it ended (one log line).
async fn attempt(webhook: &Webhook, d: &DueDelivery, tls: &Arc<rustls::ClientConfig>) -> Attempt {
    let started = std::time::Instant::now();
    let now = crate::clock::now_ms();
    let number = d.attempts + 1;
    let headers = [
        (
            SIGNATURE_HEADER,
            signature(webhook.secret.bytes(), now / 1000, d.body.as_bytes()),
        ),
        (EVENT_ID_HEADER, d.uid.clone()),
        ("Jobmail-Event-Type", d.kind.clone()),
        ("Jobmail-Attempt", number.to_string()),
    ];
    let answer = client::post(&webhook.url, &headers, d.body.clone(), webhook.timeout, tls).await;
    let ms = started.elapsed().as_millis() as u64;
    let error = match answer {
        Ok(a) if (200..300).contains(&a.status) => {
            tracing::info!(endpoint = %webhook.id, event = %d.uid, kind = %d.kind, attempt = number,
                result = "delivered", status = a.status, ms, "webhook delivery");
            return Attempt::Delivered { status: a.status };
        }
        Ok(a) if a.body.is_empty() => format!("HTTP {}", a.status),
        Ok(a) => format!("HTTP {}: {}", a.status, a.body),
        Err(e) => e,
    };
    match next_attempt(webhook, number, d.created_at_ms, crate::clock::now_ms()) {
        Some(next_ms) => {
            tracing::warn!(endpoint = %webhook.id, event = %d.uid, kind = %d.kind, attempt = number,
                result = "retry", error = %error, next = %crate::clock::rfc3339_ms(next_ms), ms, "webhook delivery");
            Attempt::Retry { error, next_ms }
        }
        None => {
            tracing::error!(endpoint = %webhook.id, event = %d.uid, kind = %d.kind, attempt = number,
                result = "failed", error = %error, ms, "webhook delivery given up");
            Attempt::GaveUp { error }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(retry_after: Duration, give_up_after: Duration) -> Webhook {
        Webhook {
            id: "ats".into(),
            url: "http://127.0.0.1:9/".into(),
            secret: crate::config::WebhookSecret::new(b"x".repeat(32)),
            events: vec!["outbox.sent".into()],
            retry_after,
            give_up_after,
            timeout: Duration::from_secs(10),
            ca_file: None,
        }
    }

    #[test]
    fn retries_wait_twice_as_long_each_time_up_to_an_hour_then_give_up() {
        let w = webhook(Duration::from_secs(10), Duration::from_secs(86_400));
        assert_eq!(next_attempt(&w, 1, 0, 1_000), Some(11_000));
        assert_eq!(next_attempt(&w, 2, 0, 1_000), Some(21_000));
        assert_eq!(next_attempt(&w, 4, 0, 1_000), Some(81_000));
        assert_eq!(next_attempt(&w, 20, 0, 1_000), Some(3_601_000));
        assert_eq!(next_attempt(&w, i64::MAX, 0, 1_000), Some(3_601_000));
        // The next attempt would start after the day: given up.
        assert_eq!(next_attempt(&w, 20, 0, 86_000_000), None);
    }
}
