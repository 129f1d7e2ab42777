//! SIGHUP: the config file, the templates and the certificate read again
//! and, if they pass every check `serve` makes, swapped in for what comes
//! next, without a restart. A config with any problem is refused with
//! every problem logged, and the old one keeps serving. Sessions in flight
//! finish on the settings they started with.
//!
//! What applies and what needs a restart is [`crate::app::reload::plan`]'s
//! to say; this task reads, checks, builds and swaps, and tells systemd
//! (`RELOADING=1`, then `READY=1`).

use std::sync::Arc;
use std::time::Instant;

use tokio::signal::unix::Signal;
use tokio::sync::watch;

use crate::app::filing::Filer;
use crate::config::Config;
use crate::config::company::Company;
use crate::inbound::listener::LiveSettings;
use crate::matcher::Matching;
use crate::matcher::token::TokenKey;

/// What a reload swaps things in.
pub struct Running {
    /// The config served now.
    pub config: Arc<Config>,
    /// The next session's settings.
    pub listener: LiveSettings,
    /// The company new mail is filed with.
    pub filer: Arc<Filer>,
    /// The config the relay and the acknowledgement worker read.
    pub configs: watch::Sender<Arc<Config>>,
    /// The reply-token key (from the state directory, which a reload keeps).
    pub key: TokenKey,
}

/// Reloads on every SIGHUP until shutdown.
pub async fn run(mut hangups: Signal, mut running: Running, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            got = hangups.recv() => {
                if got.is_none() {
                    return;
                }
                reload(&mut running).await;
            }
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// One reload: `RELOADING=1`, read and check, apply or refuse, `READY=1`.
async fn reload(running: &mut Running) {
    let started = Instant::now();
    let path = running.config.path.clone();
    tracing::info!(config = %path.display(), "reloading the config (SIGHUP)");
    let mut states = vec![sd_notify::NotifyState::Reloading];
    // systemd 253+ wants the moment of the reload with RELOADING=1.
    if let Ok(now) = sd_notify::NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    super::notify_systemd(&states);
    // Files are read off the async workers: the config, the templates the
    // checks look at, the certificate and key.
    let current = running.config.clone();
    let serving = running.listener.current().tls.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let new = crate::config::load(&current.path).map_err(|errors| {
            errors
                .errors
                .iter()
                .map(|e| match (e.line, e.key.as_str()) {
                    (Some(line), "") => format!("line {line}: {}", e.message),
                    (Some(line), key) => format!("line {line}: {key}: {}", e.message),
                    (None, "") => e.message.clone(),
                    (None, key) => format!("{key}: {}", e.message),
                })
                .collect::<Vec<_>>()
        })?;
        let problems = crate::app::checks::serve_problems(&new);
        if !problems.is_empty() {
            return Err(problems);
        }
        let plan = crate::app::reload::plan(&current, new);
        let settings =
            super::listener_settings(&plan.config, serving.as_ref().zip(current.tls.as_ref()))?;
        Ok((plan, settings))
    })
    .await;
    let outcome = checked.unwrap_or_else(|e| Err(vec![format!("the reload task failed: {e}")]));
    let (plan, settings) = match outcome {
        Ok(ready) => ready,
        Err(problems) => {
            crate::metrics::RELOADS_REFUSED.inc();
            for problem in &problems {
                tracing::error!(config = %path.display(), problem = %problem, "reload refused");
            }
            tracing::error!(
                config = %path.display(),
                errors = problems.len(),
                "reload refused; still serving the config loaded before"
            );
            super::notify_systemd(&[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::Status("reload refused: see the log"),
            ]);
            return;
        }
    };
    // Nothing below can fail: the new config goes in everywhere or nowhere.
    running.listener.replace(settings);
    running.filer.replace(Matching {
        directory: Company::from_config(&plan.config),
        key: running.key.clone(),
    });
    let config = Arc::new(plan.config);
    running.configs.send_replace(config.clone());
    running.config = config;
    crate::metrics::RELOADS_APPLIED.inc();
    for line in &plan.needs_restart {
        tracing::warn!(config = %path.display(), "needs a restart: {line}");
    }
    tracing::info!(
        config = %path.display(),
        changed = %if plan.applied.is_empty() { "nothing".to_string() } else { plan.applied.join(",") },
        needs_restart = plan.needs_restart.len(),
        took_ms = started.elapsed().as_millis() as u64,
        "config reloaded"
    );
    super::notify_systemd(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("config reloaded"),
    ]);
}

/// Sends SIGHUP to the `serve` holding the instance lock of the store at
/// `database` (`jobmail reload`); its pid, or why there is none.
pub fn send_reload(database: &std::path::Path) -> anyhow::Result<u32> {
    let pid = crate::secrets::instance_holder(database)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no jobmail serve is running on {} (nothing holds {}.serve-lock): nothing to reload",
            database.display(),
            database.display()
        )
    })?;
    let target = libc::pid_t::try_from(pid)
        .map_err(|_| anyhow::anyhow!("pid {pid} in the lock file is not a pid"))?;
    // SAFETY: kill(2) with a pid and a signal number; no memory is involved.
    if unsafe { libc::kill(target, libc::SIGHUP) } != 0 {
        let e = std::io::Error::last_os_error();
        anyhow::bail!("cannot signal jobmail serve (pid {pid}): {e}");
    }
    Ok(pid)
}
