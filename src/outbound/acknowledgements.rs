//! The daemon's worker that carries out acknowledgements: every decision
//! left `pending` (by the rules of [`super::autoreply`], where the
//! application was made) becomes a mail through the ordinary compose,
//! outbox and relay path, marked `Auto-Submitted: auto-replied` with our
//! loop marker; one that cannot be made is marked `failed` with why. It
//! decides nothing itself.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::Config;
use crate::matcher::token::TokenKey;
use crate::outbound::template::Templates;

/// Fault injection for the end-to-end tests, in debug builds only:
/// `JOBMAIL_FAULT=ack-transient` makes the first composition fail as a
/// locked store would.
fn injected_store_error() -> bool {
    use std::sync::atomic::{AtomicBool, Ordering};
    static FIRED: AtomicBool = AtomicBool::new(false);
    cfg!(debug_assertions)
        && std::env::var("JOBMAIL_FAULT").is_ok_and(|v| v == "ack-transient")
        && !FIRED.swap(true, Ordering::Relaxed)
}

/// How often the worker looks for acknowledgements to compose.
const POLL: Duration = Duration::from_millis(200);

/// Composes the `pending` acknowledgements into the outbox until
/// `shutdown`, each pass with the config as last (re)loaded.
pub async fn run(
    database: &Path,
    configs: watch::Receiver<Arc<Config>>,
    key: TokenKey,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut store = match crate::store::Store::open(database) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "acknowledgements: cannot open the store; none will be sent");
            return;
        }
    };
    loop {
        let config = configs.borrow().clone();
        let key = key.clone();
        // The connection goes into the blocking pass and comes back.
        let done = tokio::task::spawn_blocking(move || {
            let result = compose_pending(&mut store, &config, &key);
            (store, result)
        })
        .await;
        match done {
            Ok((back, result)) => {
                store = back;
                match result {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(count = n, "acknowledgements queued"),
                    Err(e) => tracing::error!(error = %e, "acknowledgements: cannot compose"),
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "acknowledgements: task failed; stopping");
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// One pass: every pending acknowledgement composed and queued (or failed, saying why).
pub fn compose_pending(
    store: &mut crate::store::Store,
    config: &Config,
    key: &TokenKey,
) -> anyhow::Result<usize> {
    let pending = store.pending_auto_replies()?;
    if pending.is_empty() {
        return Ok(0);
    }
    let (templates, _) = Templates::load(&config.templates_dir);
    let composer = crate::outbound::compose::Composer {
        config,
        templates: &templates,
        key,
    };
    let mut queued = 0;
    for p in pending {
        let now = crate::clock::now_ms();
        let summary = if injected_store_error() {
            Err(crate::outbound::compose::ComposeError {
                message: "database is locked (injected by JOBMAIL_FAULT)".into(),
                transient: true,
                unrenderable: false,
            })
        } else {
            composer.send(
                store,
                &crate::outbound::compose::SendRequest {
                    template: &p.template,
                    sender: Some(&p.sender),
                    candidates: vec![p.candidate],
                    automatic: true,
                    acknowledgement: Some(p.id),
                    ..Default::default()
                },
                now,
            )
        };
        match summary {
            // Marked queued in the transaction that queued the mail.
            Ok(s) if !s.queued.is_empty() => queued += 1,
            Ok(s) => {
                let why = s
                    .skipped
                    .first()
                    .map(|k| k.reason.clone())
                    .unwrap_or_default();
                store.auto_reply_failed(p.id, &why)?;
            }
            // The store failed: still pending, tried again on the next pass.
            Err(e) if e.transient => {
                tracing::warn!(acknowledgement = p.id, error = %e, "acknowledgements: store error; trying again");
                return Ok(queued);
            }
            Err(e) => store.auto_reply_failed(p.id, &e.to_string())?,
        }
    }
    Ok(queued)
}
