//! The command-line front end: `serve`, `config check`, `inbox`, `message show`.
//!
//! Each command is a thin layer over library calls (config, store, daemon)
//! that the tests call too; this module only parses arguments and formats
//! output, as a human table or as one stable JSON shape per command
//! (`--json`). It holds no SQL and no protocol logic.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::config::{self, Config};
use crate::store::{InboxEntry, MessageDetail, Reader};

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
    /// Configuration commands
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The latest mails, newest first
    Inbox(InboxArgs),
    /// Stored messages
    #[command(subcommand)]
    Message(MessageCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the config file and report every error at once
    Check,
}

#[derive(Debug, Args)]
pub struct InboxArgs {
    /// How many mails to show
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
    /// Show mails older than this message id (to page on)
    #[arg(long, value_name = "ID")]
    pub before: Option<i64>,
    /// Print JSON: {"messages": [...]}
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// Show one message, parsed, or its raw bytes as stored
    Show {
        id: i64,
        /// Write the stored bytes exactly (trace headers of ours, then the mail as sent)
        #[arg(long, conflicts_with = "json")]
        raw: bool,
        /// Print the parsed message as JSON
        #[arg(long)]
        json: bool,
    },
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let path = config::resolve_path(cli.config);
    let config = match config::load(&path) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Config(ConfigCommand::Check) => {
            println!("{}: ok", path.display());
            Ok(())
        }
        Command::Serve => {
            crate::daemon::init_logging();
            crate::daemon::serve(config)
        }
        Command::Inbox(args) => inbox(&config, &args),
        Command::Message(MessageCommand::Show { id, raw, json }) => show(&config, id, raw, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jobmail: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Serialize)]
struct InboxJson<'a> {
    messages: &'a [InboxEntry],
}

fn inbox(config: &Config, args: &InboxArgs) -> anyhow::Result<()> {
    let reader = Reader::open(&config.server.database)?;
    let entries = reader.inbox(args.limit as usize, args.before)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &InboxJson { messages: &entries })?;
        writeln!(out)?;
    } else {
        out.write_all(format_inbox(&entries).as_bytes())?;
    }
    Ok(())
}

/// The human table of `jobmail inbox`.
pub fn format_inbox(entries: &[InboxEntry]) -> String {
    if entries.is_empty() {
        return "no mail yet\n".to_string();
    }
    let mut out = format!(
        "{:>7}  {:<20}  {:<32}  {:<40}  {:>9}  {}\n",
        "ID", "RECEIVED (UTC)", "FROM", "SUBJECT", "SIZE", "ATTACHMENTS"
    );
    for e in entries {
        let from = e
            .from
            .as_ref()
            .map(|m| m.address.clone())
            .unwrap_or_else(|| format!("<{}>", e.envelope_sender));
        let mut subject = e.subject.clone().unwrap_or_default();
        if e.delivery_report {
            subject = format!("[bounce] {subject}");
        } else if e.automatic {
            subject = format!("[auto] {subject}");
        }
        let received = e
            .received_at
            .get(..19)
            .unwrap_or(&e.received_at)
            .replace('T', " ");
        let attachments = e
            .attachments
            .iter()
            .map(|d| d.filename.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "{:>7}  {:<20}  {:<32}  {:<40}  {:>9}  {}\n",
            e.id,
            received,
            clip(&from, 32),
            clip(&subject, 40),
            e.size,
            attachments
        ));
    }
    out
}

/// At most `n` characters, control characters shown as spaces.
fn clip(s: &str, n: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= n {
        clean
    } else {
        let mut cut: String = clean.chars().take(n.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

fn show(config: &Config, id: i64, raw: bool, json: bool) -> anyhow::Result<()> {
    let reader = Reader::open(&config.server.database)?;
    let mut out = std::io::stdout().lock();
    if raw {
        let bytes = reader
            .raw(id)?
            .ok_or_else(|| anyhow::anyhow!("no message {id}"))?;
        out.write_all(&bytes)?;
        return Ok(());
    }
    let detail = reader
        .message(id)?
        .ok_or_else(|| anyhow::anyhow!("no message {id}"))?;
    if json {
        serde_json::to_writer_pretty(&mut out, &detail)?;
        writeln!(out)?;
    } else {
        out.write_all(format_message(&detail).as_bytes())?;
    }
    Ok(())
}

/// The human view of `jobmail message show`.
pub fn format_message(m: &MessageDetail) -> String {
    let list = |v: &[crate::model::Mailbox]| {
        v.iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut lines = vec![
        ("Message", m.id.to_string()),
        (
            "Received",
            format!(
                "{} from [{}] (HELO {}), session {}",
                m.received_at, m.client_addr, m.helo, m.session_id
            ),
        ),
        (
            "Envelope",
            format!(
                "<{}> -> {}",
                m.envelope_sender,
                m.envelope_recipients.join(", ")
            ),
        ),
        (
            "From",
            m.from.as_ref().map(|f| f.to_string()).unwrap_or_default(),
        ),
        ("To", list(&m.to)),
    ];
    if !m.cc.is_empty() {
        lines.push(("Cc", list(&m.cc)));
    }
    if !m.reply_to.is_empty() {
        lines.push(("Reply-To", list(&m.reply_to)));
    }
    lines.push(("Subject", m.subject.clone().unwrap_or_default()));
    lines.push(("Date", m.date.clone().unwrap_or_default()));
    lines.push(("Message-ID", m.message_id.clone().unwrap_or_default()));
    if !m.in_reply_to.is_empty() {
        lines.push(("In-Reply-To", m.in_reply_to.join(" ")));
    }
    if !m.references.is_empty() {
        lines.push(("References", m.references.join(" ")));
    }
    let mut flags = Vec::new();
    if m.automatic {
        flags.push("automatic");
    }
    if m.delivery_report {
        flags.push("delivery-report");
    }
    if !m.parsed {
        flags.push("unparsed");
    }
    if !flags.is_empty() {
        lines.push(("Flags", flags.join(", ")));
    }
    lines.push(("Size", format!("{} bytes, sha256 {}", m.size, m.sha256)));
    let mut out = String::new();
    for (k, v) in lines {
        out.push_str(&format!("{k:<12} {}\n", clip(&v, 500)));
    }
    if !m.attachments.is_empty() {
        out.push_str("Attachments:\n");
        for d in &m.attachments {
            out.push_str(&format!(
                "  #{:<6} {:<40} {:<28} {:>9} bytes  part {}  [{}]\n",
                d.id,
                clip(&d.filename, 40),
                d.content_type,
                d.size,
                d.part,
                d.category
            ));
        }
    }
    out
}
