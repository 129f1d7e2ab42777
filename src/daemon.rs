//! The daemon: wires config, store writer and listener together, handles
//! signals, readiness (systemd `READY=1`) and an orderly shutdown.
//!
//! It owns no protocol or storage logic of its own; it only starts, waits
//! and stops the parts that do. Beside it: `reload` (SIGHUP), `watchdog`
//! (systemd's keep-alives) and `exporter` (`/metrics`).

mod exporter;
mod reload;
mod watchdog;

pub use reload::send_reload;

use anyhow::Context;
use tokio::sync::watch;

use std::path::Path;
use std::sync::Arc;

use crate::config::company::Company;
use crate::config::{Config, TlsConfig};
use crate::inbound::listener::{Listener, Settings};
use crate::inbound::tls::ServerTls;
use crate::matcher::Matching;
use crate::store::Store;
use crate::store::Writer;

/// The problems that keep a config from being served (see
/// [`crate::app::checks::serve_problems`]), every one at once.
#[derive(Debug, Clone)]
pub struct ConfigProblems(pub Vec<String>);

impl std::fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.join("; "))
    }
}

impl std::error::Error for ConfigProblems {}

/// Runs `jobmail serve` until SIGTERM or SIGINT. Refuses a config that
/// [`crate::app::checks::serve_problems`] finds fault with
/// ([`ConfigProblems`]).
pub fn serve(config: Config) -> anyhow::Result<()> {
    let problems = crate::app::checks::serve_problems(&config);
    if !problems.is_empty() {
        return Err(ConfigProblems(problems).into());
    }
    // glibc gives each thread that allocates its own arena (up to 8 per
    // core); big mails parsed on the blocking threads then leave their
    // peak in a dozen arenas that trimming cannot empty. Four arenas keep
    // the memory of a burst returnable (measured: 100 concurrent 9.9 MB
    // mails left 196 MB idle with the default, 70 MB with two or four);
    // two cost about a sixth of small-mail ingest at 8 sessions.
    // An operator's own MALLOC_ARENA_MAX wins.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt before any other thread exists; it only sets a limit.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 4);
        }
    }
    // glibc raises its mmap threshold to the size of each big block freed
    // (up to 32 MiB): after the first 10 MB mail, every mail buffer below
    // that comes from the arenas, among small blocks that pin it there. A
    // fixed 1 MiB keeps big buffers in their own mappings, returned when
    // freed (measured, the soak: RSS plateau 115-127 MiB with glibc's
    // sliding threshold, 67-70 MiB with 1 MiB). An operator's own
    // MALLOC_MMAP_THRESHOLD_ wins.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt before any other thread exists; it only sets a limit.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("jobmail")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    // From the first moment: a SIGHUP before the handler would end the
    // process (its default action).
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot handle SIGHUP")?;
    let _instance = crate::secrets::lock_instance(&config.server.database)
        .context("cannot start the daemon")?;
    // A restore that passed its commit point and was interrupted (a crash,
    // a reboot) is finished before the store is opened.
    if let Some(done) =
        crate::app::backup::finish_pending(&config).context("cannot finish the restore")?
    {
        tracing::warn!(
            database = %done.database.display(),
            previous = %done.previous_database.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
            "finished a restore that was interrupted"
        );
    }
    let directory = Company::from_config(&config);
    let key = crate::secrets::load_or_create_key(&config.server.state_dir).with_context(|| {
        format!(
            "cannot read or create the reply-token key in {}",
            config.server.state_dir.display()
        )
    })?;
    let matching = Matching {
        directory: directory.clone(),
        key: key.clone(),
    };
    let filer = Arc::new(crate::app::filing::Filer::new(matching.clone()));
    let (writer, writer_thread) = Writer::start(&config.server.database, filer.clone())
        .with_context(|| format!("cannot open the store {}", config.server.database.display()))?;
    // Without its writer the daemon could only answer 451: if the writer
    // thread dies, the daemon exits (70, EX_SOFTWARE) and says why, so that
    // systemd (Restart=on-failure) starts it again.
    let writer_supervisor = std::thread::Builder::new()
        .name("store-supervisor".into())
        .spawn(move || {
            if let Err(panic) = writer_thread.join() {
                tracing::error!(
                    error = %crate::store::panic_text(&*panic),
                    "the store writer stopped; exiting so that jobmail is restarted"
                );
                // The sessions whose mail the writer held answer 451 as
                // soon as it is gone; exiting at once could cut them off
                // before that reply (the client would see a dropped
                // connection instead of "try again later").
                std::thread::sleep(std::time::Duration::from_millis(500));
                std::process::exit(70);
            }
        })
        .context("cannot start the store supervisor")?;
    // Before any mail is filed (the pending ones below, then the
    // listener's), so that each event finds its endpoints.
    Store::open(&config.server.database)
        .and_then(|mut store| crate::outbound::webhook::register_endpoints(&mut store, &config))
        .context("cannot record the webhook endpoints")?;
    // Mail stays stored either way; a failure here only leaves it pending.
    match match_pending(&config.server.database, &matching) {
        Ok(0) => {}
        Ok(n) => tracing::info!(count = n, "matched mails left pending"),
        Err(e) => tracing::error!(error = %format!("{e:#}"), "cannot match the mails left pending"),
    }
    // The certificate was checked with the config (serve_problems); read
    // again here, it is what the listener serves until a reload swaps it.
    let settings = listener_settings(&config, None).map_err(ConfigProblems)?;
    let implicit_tls = config
        .tls
        .as_ref()
        .map(|t| t.implicit_listen.clone())
        .unwrap_or_default();
    let listener = Listener::bind(
        &config.server.listen,
        &implicit_tls,
        settings,
        config.server.max_connections,
    )
    .await
    .context("cannot start the SMTP listener")?;
    // The HTTP API, when configured: bound before readiness, so that a port
    // in use fails the start like the SMTP one.
    let api = match &config.api {
        None => None,
        Some(api) => Some(
            crate::http::bind(api.listen)
                .await
                .with_context(|| format!("cannot listen on {} for the HTTP API", api.listen))?,
        ),
    };
    for (addr, implicit) in listener.local_addrs() {
        if implicit {
            tracing::info!(%addr, "listening for SMTP over TLS (implicit)");
        } else {
            tracing::info!(%addr, starttls = config.tls.is_some(), "listening for SMTP");
        }
    }
    let (configs, _) = watch::channel(Arc::new(config.clone()));
    let exporter = match &config.metrics {
        None => None,
        Some(metrics) => {
            let exporter = exporter::Exporter::bind(metrics.listen, configs.subscribe())
                .await
                .with_context(|| format!("cannot serve metrics on {}", metrics.listen))?;
            tracing::info!(addr = %metrics.listen, "serving metrics on /metrics");
            Some(exporter)
        }
    };
    tracing::info!(
        config = %config.path.display(),
        database = %config.server.database.display(),
        "jobmail ready"
    );
    notify_systemd(&[sd_notify::NotifyState::Ready]);

    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: no new connections, finishing open transactions");
        notify_systemd(&[sd_notify::NotifyState::Stopping]);
        let _ = stop.send(true);
    });
    if let Some(api) = api {
        if let Ok(addr) = api.local_addr() {
            tracing::info!(%addr, "listening for the HTTP API");
        }
        let configs = configs.subscribe();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::http::serve(api, configs, shutdown).await {
                tracing::error!(error = %e, "the HTTP API stopped");
            }
        });
    }
    let exporter = exporter.map(|e| tokio::spawn(e.serve(shutdown.clone())));
    let watchdog = tokio::spawn(watchdog::run(writer.pinger(), shutdown.clone()));
    let reloads = tokio::spawn(reload::run(
        hangups,
        reload::Running {
            config: Arc::new(config.clone()),
            listener: listener.settings(),
            filer,
            configs: configs.clone(),
            key: key.clone(),
        },
        shutdown.clone(),
    ));
    let acknowledgements = {
        let database = config.server.database.clone();
        let configs = configs.subscribe();
        let key = key.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            crate::outbound::acknowledgements::run(&database, configs, key, shutdown).await
        })
    };
    let relay = {
        let database = config.server.database.clone();
        let grace = config.server.shutdown_timeout;
        let configs = configs.subscribe();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            crate::outbound::relay::run(&database, configs, shutdown, grace).await
        })
    };
    let webhooks = {
        let database = config.server.database.clone();
        let configs = configs.subscribe();
        let shutdown = shutdown.clone();
        tokio::spawn(
            async move { crate::outbound::webhook::run(&database, configs, shutdown).await },
        )
    };
    listener.serve(writer, shutdown).await;
    if let Err(e) = relay.await {
        tracing::error!(error = %e, "relay task failed");
    }
    if let Err(e) = acknowledgements.await {
        tracing::error!(error = %e, "acknowledgement task failed");
    }
    for (name, task) in [
        ("reload", reloads),
        ("watchdog", watchdog),
        ("webhooks", webhooks),
    ]
    .into_iter()
    .chain(exporter.map(|e| ("metrics", e)))
    {
        if let Err(e) = task.await {
            tracing::error!(error = %e, task = name, "task failed");
        }
    }

    // Every session is gone, so are their writer handles: the writer commits
    // what is waiting and ends.
    tokio::task::spawn_blocking(move || writer_supervisor.join())
        .await
        .ok();
    tracing::info!("stopped");
    Ok(())
}

/// The listener's settings for `config`: its `[server]` section, the
/// company, the verifier of `[authentication]`, and TLS. `serving`: the TLS
/// the listener serves now and the section it was made from; when the
/// networks and the timeout are the same, its certificate is read again
/// and swapped in place (so that even sessions already open get the new
/// one at their STARTTLS), else a new one is loaded. Every problem is
/// returned; nothing is swapped unless all went well (the certificate is
/// the last step).
fn listener_settings(
    config: &Config,
    serving: Option<(&Arc<ServerTls>, &TlsConfig)>,
) -> Result<Settings, Vec<String>> {
    let verifier = crate::inbound::auth::Verifier::from_config(
        &config.authentication,
        &config.server.hostname,
    )
    .map_err(|e| vec![format!("authentication: {e}")])?
    .map(Arc::new);
    let tls = match (&config.tls, serving) {
        (None, _) => {
            crate::metrics::TLS_NOT_AFTER_MS.store(0, std::sync::atomic::Ordering::Relaxed);
            None
        }
        (Some(wanted), Some((tls, was)))
            if wanted.require_from == was.require_from
                && wanted.handshake_timeout == was.handshake_timeout =>
        {
            let loaded = tls.reload(wanted)?;
            log_certificate(wanted, &loaded);
            Some(tls.clone())
        }
        (Some(wanted), _) => {
            let (tls, loaded) = ServerTls::new(wanted)?;
            log_certificate(wanted, &loaded);
            Some(Arc::new(tls))
        }
    };
    Ok(Settings {
        server: config.server.clone(),
        directory: Company::from_config(config),
        verifier,
        memory: Arc::new(tokio::sync::Semaphore::new(
            config.server.memory_budget.div_ceil(1024) as usize,
        )),
        tls,
    })
}

fn log_certificate(config: &TlsConfig, loaded: &crate::inbound::tls::Loaded) {
    crate::metrics::TLS_NOT_AFTER_MS
        .store(loaded.not_after_ms, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(
        certificate = %config.certificate.display(),
        valid_until = %crate::clock::rfc3339(loaded.not_after_ms).unwrap_or_default(),
        "TLS certificate loaded"
    );
}

/// Files every stored mail still `pending` (see
/// [`crate::app::filing::file_pending`]).
pub fn match_pending(database: &Path, matching: &Matching) -> anyhow::Result<usize> {
    let mut store = Store::open(database)?;
    Ok(crate::app::filing::file_pending(&mut store, matching)?)
}

fn notify_systemd(state: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(e) = sd_notify::notify(state)
    {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Sets up logging to stderr (journald keeps it under systemd), one
/// `key=value` line per event ([`crate::logging::Lines`]). `JOBMAIL_LOG`
/// takes a tracing filter such as `info` or `jobmail=debug`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("JOBMAIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // systemd sets JOURNAL_STREAM when stderr is connected to the journal.
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(crate::logging::Lines { journal })
        .try_init();
}
