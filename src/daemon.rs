//! The daemon: wires config, store writer and listener together, handles
//! signals, readiness (systemd `READY=1`) and an orderly shutdown.
//!
//! It owns no protocol or storage logic of its own; it only starts, waits
//! and stops the parts that do.

use anyhow::Context;
use tokio::sync::watch;

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::config::company::Company;
use crate::inbound::listener::{Listener, Settings};
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("jobmail")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
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
    let matching = Arc::new(Matching {
        directory: directory.clone(),
        key,
    });
    let filer = Arc::new(crate::app::filing::Filer {
        matching: (*matching).clone(),
    });
    let (writer, writer_thread) = Writer::start(&config.server.database, filer)
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
                std::process::exit(70);
            }
        })
        .context("cannot start the store supervisor")?;
    // Mail stays stored either way; a failure here only leaves it pending.
    match match_pending(&config.server.database, &matching) {
        Ok(0) => {}
        Ok(n) => tracing::info!(count = n, "matched mails left pending"),
        Err(e) => tracing::error!(error = %format!("{e:#}"), "cannot match the mails left pending"),
    }
    let verifier = crate::inbound::auth::Verifier::from_config(
        &config.authentication,
        &config.server.hostname,
    )
    .map_err(anyhow::Error::msg)?
    .map(Arc::new);
    // The certificate was checked with the config (serve_problems); read
    // again here, it is what the listener serves until a reload swaps it.
    let tls = match &config.tls {
        None => None,
        Some(tls_config) => {
            let (tls, loaded) =
                crate::inbound::tls::ServerTls::new(tls_config).map_err(ConfigProblems)?;
            tracing::info!(
                certificate = %tls_config.certificate.display(),
                valid_until = %crate::clock::rfc3339(loaded.not_after_ms).unwrap_or_default(),
                "TLS certificate loaded"
            );
            Some(Arc::new(tls))
        }
    };
    let settings = Settings {
        server: config.server.clone(),
        directory,
        verifier,
        memory: Arc::new(tokio::sync::Semaphore::new(
            config.server.memory_budget.div_ceil(1024) as usize,
        )),
        tls,
    };
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
    for (addr, implicit) in listener.local_addrs() {
        if implicit {
            tracing::info!(%addr, "listening for SMTP over TLS (implicit)");
        } else {
            tracing::info!(%addr, starttls = config.tls.is_some(), "listening for SMTP");
        }
    }
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
    let acknowledgements = {
        let database = config.server.database.clone();
        let config = Arc::new(config.clone());
        let key = matching.key.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            crate::outbound::acknowledgements::run(&database, config, key, shutdown).await
        })
    };
    let relay = {
        let database = config.server.database.clone();
        let grace = config.server.shutdown_timeout;
        let config = Arc::new(config.clone());
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            crate::outbound::relay::run(&database, config, shutdown, grace).await
        })
    };
    listener.serve(writer, shutdown).await;
    if let Err(e) = relay.await {
        tracing::error!(error = %e, "relay task failed");
    }
    if let Err(e) = acknowledgements.await {
        tracing::error!(error = %e, "acknowledgement task failed");
    }

    // Every session is gone, so are their writer handles: the writer commits
    // what is waiting and ends.
    tokio::task::spawn_blocking(move || writer_supervisor.join())
        .await
        .ok();
    tracing::info!("stopped");
    Ok(())
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
