//! The command-line front end: `serve`, `reload`, `status`, `config
//! check`, `inbox`, `message`, `candidate`, `application`, `template`,
//! `send`, `queue`, `suppression`, `log`, `backup`, `restore`. One file
//! per command group.
//!
//! Each command parses its arguments, calls one function of the
//! application layer ([`crate::app`]), and prints what it returns, as a
//! human table or as one stable JSON shape per command (`--json`). No SQL,
//! no selection logic, no policy here.

mod applications;
mod backup;
mod candidates;
mod documents;
mod files;
mod log;
mod messages;
mod output;
mod queue;
mod reload;
mod send;
mod status;
mod suppressions;
mod templates;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use applications::ApplicationCommand;
pub use backup::{BackupArgs, RestoreArgs};
pub use candidates::{CandidateCommand, format_candidate};
pub use documents::{AuditArgs, DocumentCommand};
pub use log::LogCommand;
pub use messages::{InboxArgs, MessageCommand, format_inbox, format_message};
pub use queue::QueueCommand;
pub use send::SendArgs;
pub use status::format_status;
pub use suppressions::SuppressionCommand;
pub use templates::TemplateCommand;
pub use webhooks::WebhookCommand;

use crate::app::App;
use crate::config;

#[derive(Debug, Parser)]
#[command(name = "jobmail", version, about = "SMTP gateway for recruiting mail")]
pub struct Cli {
    /// Config file [default: $JOBMAIL_CONFIG, else /etc/jobmail/jobmail.toml]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: the SMTP listener and the store writer
    Serve,
    /// Make the running daemon read its config, templates and certificate again (SIGHUP)
    Reload,
    /// The daemon, listener, TLS, store, queue and acknowledgements at a glance
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Configuration commands
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The latest mails, newest first
    Inbox(InboxArgs),
    /// Stored messages
    #[command(subcommand)]
    Message(MessageCommand),
    /// Candidates and their threads
    #[command(subcommand)]
    Candidate(CandidateCommand),
    /// Applications (the online form's entry point)
    #[command(subcommand)]
    Application(ApplicationCommand),
    /// Mail templates: list, show, check, preview
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Write to one candidate or many from a template, now or scheduled
    Send(SendArgs),
    /// The outbox: list, show, retry, hold, release, cancel, delete, flush
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Addresses not written to after a hard bounce
    #[command(subcommand)]
    Suppression(SuppressionCommand),
    /// One mail's life from RCPT to sent or bounced
    #[command(subcommand)]
    Log(LogCommand),
    /// Copy the store and its key while jobmail runs
    Backup(BackupArgs),
    /// Put a backup in place of the store (jobmail stopped)
    Restore(RestoreArgs),
    /// Documents by category: list, get, categorise (as a user's role allows)
    #[command(subcommand)]
    Document(DocumentCommand),
    /// Who saw or changed which document, and every refusal
    Audit(AuditArgs),
    /// Webhook deliveries: each endpoint's backlog, the events, retry
    #[command(subcommand)]
    Webhooks(WebhookCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the config file and report every error at once
    Check,
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    if !matches!(cli.command, Command::Serve) {
        // Like any Unix tool: `jobmail queue list | head` ends quietly when
        // the reader goes away. (The daemon keeps Rust's default: a closed
        // client socket is an error to handle, never a signal.)
        // SAFETY: resetting a signal disposition before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let path = config::resolve_path(cli.config);
    let config = match config::load(&path) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(2);
        }
    };
    let app = App::new(config);
    let result = match cli.command {
        Command::Config(ConfigCommand::Check) => {
            let problems = crate::app::checks::serve_problems(&app.config);
            if !problems.is_empty() {
                return config_problems(&path, &problems);
            }
            println!("{}: ok", path.display());
            Ok(())
        }
        Command::Serve => {
            crate::daemon::init_logging();
            match crate::daemon::serve(app.config) {
                Err(e) if e.downcast_ref::<crate::daemon::ConfigProblems>().is_some() => {
                    let problems = e
                        .downcast_ref::<crate::daemon::ConfigProblems>()
                        .map(|p| p.0.clone())
                        .unwrap_or_default();
                    return config_problems(&path, &problems);
                }
                other => other,
            }
        }
        Command::Reload => return reload::reload(&app),
        Command::Status { json } => status::status(&app, json),
        Command::Inbox(args) => messages::inbox(&app, &args),
        Command::Message(m) => messages::message_command(&app, m),
        Command::Candidate(c) => candidates::candidate_command(&app, c),
        Command::Application(a) => applications::application_command(&app, a),
        Command::Template(t) => return templates::template_command(&app, t),
        Command::Send(args) => send::send(&app, &args),
        Command::Queue(q) => queue::queue_command(&app, q),
        Command::Suppression(c) => suppressions::suppression_command(&app, c),
        Command::Log(c) => log::log_command(&app, c),
        Command::Backup(args) => backup::backup(&app, &args),
        Command::Restore(args) => backup::restore(&app, &args),
        Command::Document(d) => documents::document_command(&app, d),
        Command::Audit(args) => documents::audit(&app, &args),
        Command::Webhooks(c) => webhooks::webhook_command(&app, c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jobmail: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the problems that keep the config from being served; exit code 2.
fn config_problems(path: &std::path::Path, problems: &[String]) -> ExitCode {
    eprintln!("{}: {} error(s)", path.display(), problems.len());
    for p in problems {
        eprintln!("{}: {p}", path.display());
    }
    ExitCode::from(2)
}

#[cfg(test)]
mod tests;

/// Who a command acts as: a configured user (`--as USER`, with their
/// role's rights), or else the operator at the server's shell.
fn caller(
    app: &crate::app::App,
    as_user: Option<&str>,
) -> anyhow::Result<crate::app::access::Caller> {
    Ok(match as_user {
        Some(id) => app.caller_named(id)?,
        None => crate::app::access::Caller::Operator,
    })
}
