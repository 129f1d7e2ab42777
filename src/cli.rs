//! The command-line front end: `serve`, `config check`, `inbox`, `message`,
//! `candidate`, `application`.
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

use crate::config::company::Company;
use crate::config::{self, Config};
use crate::matcher::{self, MatchInput};
use crate::outbound::template::{TemplateError, Templates};
use crate::store::candidates::{CandidateDetail, CandidateSummary, FormApplication};
use crate::store::{InboxEntry, InboxFilter, MessageDetail, Store};

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
}

#[derive(Debug, Subcommand)]
pub enum SuppressionCommand {
    /// The suppressed addresses, with why and until when
    List {
        #[arg(long)]
        json: bool,
    },
    /// Write to an address again
    Remove { address: String },
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The template's id
    #[arg(long)]
    pub template: String,
    /// One candidate
    #[arg(long, conflicts_with_all = ["candidates", "position", "category", "status"])]
    pub candidate: Option<i64>,
    /// Several candidates: C1,C2,…
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["position", "category", "status"])]
    pub candidates: Vec<i64>,
    /// Everyone with an application for this position
    #[arg(long)]
    pub position: Option<String>,
    /// Everyone with an application in this recruiting category
    #[arg(long)]
    pub category: Option<String>,
    /// Everyone with an application in this status (with --position/--category: both)
    #[arg(long)]
    pub status: Option<String>,
    /// A sender id of the candidate's subsidiary (default: its jobs address)
    #[arg(long)]
    pub sender: Option<String>,
    /// A file to attach besides the template's (repeatable)
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// A document of the candidate's thread to attach again (repeatable)
    #[arg(long, value_name = "DOCUMENT")]
    pub reuse_document: Vec<i64>,
    /// Send at this time: RFC 3339, or local time in server.time_zone ("2026-12-01 09:00")
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// A language variant instead of each candidate's
    #[arg(long)]
    pub lang: Option<String>,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// The outbox, newest first (like mailq)
    List {
        /// Only items in these states (repeatable): scheduled, queued, sending, sent, deferred, failed, cancelled, bounced
        #[arg(long)]
        state: Vec<String>,
        /// Only this subsidiary's mail
        #[arg(long)]
        subsidiary: Option<String>,
        /// Only this batch (from `send`)
        #[arg(long)]
        batch: Option<String>,
        /// Only items older than this id (to page on)
        #[arg(long, value_name = "ID")]
        before: Option<i64>,
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// One item: its state, the mail (headers and body) and every attempt with the upstream's replies
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Try a queued or deferred mail now (or every deferred one)
    Retry {
        #[arg(
            required_unless_present = "all_deferred",
            conflicts_with = "all_deferred"
        )]
        id: Option<i64>,
        #[arg(long)]
        all_deferred: bool,
    },
    /// Keep a waiting mail from being sent until released
    Hold { id: i64 },
    /// Let a held mail go again
    Release { id: i64 },
    /// Stop a scheduled, queued or deferred mail
    Cancel { id: i64 },
    /// Remove an item from the queue (its mail stays in the thread as a record)
    Delete { id: i64 },
    /// Every deferred mail due now (like postqueue -f)
    Flush,
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// The templates in the templates directory
    List {
        #[arg(long)]
        json: bool,
    },
    /// One template's variants as written
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Check every template (or one), reporting every problem at once
    Check { id: Option<String> },
    /// The exact mail a template would make for a candidate; nothing is queued
    Preview {
        id: String,
        #[arg(long)]
        candidate: i64,
        /// A language variant instead of the candidate's
        #[arg(long)]
        lang: Option<String>,
        /// A sender id of the candidate's subsidiary (default: its jobs address)
        #[arg(long)]
        sender: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CandidateCommand {
    /// Candidates, newest first
    List {
        /// Only candidates whose name or address contains this
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: u32,
        /// Print JSON: {"candidates": [...]}
        #[arg(long)]
        json: bool,
    },
    /// One candidate: addresses, applications and the whole thread
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Merge candidate FROM into INTO (two records of one person)
    Merge { into: i64, from: i64 },
}

#[derive(Debug, Subcommand)]
pub enum ApplicationCommand {
    /// Record an application from the online form
    Add {
        /// An existing candidate
        #[arg(long, conflicts_with_all = ["email", "name"])]
        candidate: Option<i64>,
        /// The applicant's e-mail address (with --name)
        #[arg(long, requires = "name")]
        email: Option<String>,
        /// The applicant's name, "First Last" or "Last, First"
        #[arg(long)]
        name: Option<String>,
        /// The position applied for (its id in the config)
        #[arg(long)]
        position: Option<String>,
        /// For a general application: the subsidiary (its id)
        #[arg(long, conflicts_with = "position")]
        subsidiary: Option<String>,
        /// The applicant's language as the form gives it (a language the
        /// templates have: de, en, fr, …); it wins over any other
        #[arg(long)]
        lang: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Set the status of an application, or of all of a candidate's
    Status {
        /// new, in-review, interview, offer, hired, rejected or withdrawn
        status: String,
        #[arg(long, conflicts_with = "candidate")]
        application: Option<i64>,
        #[arg(long)]
        candidate: Option<i64>,
    },
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
    /// Only mails waiting for a human to file them
    #[arg(long)]
    pub unassigned: bool,
    /// Only mails in this candidate's thread
    #[arg(long, value_name = "ID")]
    pub candidate: Option<i64>,
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
    /// File a mail under a candidate by hand; its author's address becomes known for them
    Assign {
        id: i64,
        #[arg(long)]
        candidate: i64,
    },
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
    let result = match cli.command {
        Command::Config(ConfigCommand::Check) | Command::Serve
            if !auto_reply_problems(&config).is_empty() =>
        {
            let problems = auto_reply_problems(&config);
            eprintln!("{}: {} error(s)", path.display(), problems.len());
            for p in &problems {
                eprintln!("{}: {p}", path.display());
            }
            return ExitCode::from(2);
        }
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
        Command::Message(MessageCommand::Assign { id, candidate }) => {
            assign(&config, id, candidate)
        }
        Command::Candidate(c) => candidate_command(&config, c),
        Command::Application(a) => application_command(&config, a),
        Command::Template(t) => return template_command(&config, t),
        Command::Send(args) => send(&config, &args),
        Command::Queue(q) => queue_command(&config, q),
        Command::Suppression(c) => suppression_command(&config, c),
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
    let store = Store::open(&config.server.database)?;
    let entries = store.inbox(&InboxFilter {
        limit: args.limit as usize,
        before: args.before,
        unassigned: args.unassigned,
        candidate: args.candidate,
    })?;
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
        "{:>7}  {:<20}  {:<32}  {:<40}  {:<24}  {:<22}  {:>9}  {}\n",
        "ID", "RECEIVED (UTC)", "FROM", "SUBJECT", "CANDIDATE", "REASON", "SIZE", "ATTACHMENTS"
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
        let candidate = match (&e.candidate, e.assignment.as_str()) {
            (Some(c), _) => format!("#{} {}", c.id, c.name),
            (None, "unassigned") => "(unassigned)".to_string(),
            (None, "pending") => "(pending)".to_string(),
            (None, _) => "-".to_string(),
        };
        out.push_str(&format!(
            "{:>7}  {:<20}  {:<32}  {:<40}  {:<24}  {:<22}  {:>9}  {}\n",
            e.id,
            received,
            clip(&from, 32),
            clip(&subject, 40),
            clip(&candidate, 24),
            e.reason.as_deref().unwrap_or(""),
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
    let reader = Store::open(&config.server.database)?;
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
    let list = |v: &[crate::mail::parsed::Mailbox]| {
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
            "Authentication",
            m.authentication
                .as_ref()
                .map(|a| a.summary())
                .unwrap_or_else(|| "not checked".into()),
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
    let filed = match (&m.candidate, m.assignment.as_str()) {
        (Some(c), _) => format!("candidate #{} {}", c.id, c.name),
        (None, other) => other.to_string(),
    };
    lines.push((
        "Filed",
        format!(
            "{filed}: {}, confidence {} ({})",
            m.reason.as_deref().unwrap_or("-"),
            m.confidence.unwrap_or("-"),
            m.detail.as_deref().unwrap_or("")
        ),
    ));
    if m.closed_thread {
        lines.push((
            "Note",
            "the candidate's applications are all closed".to_string(),
        ));
    }
    if !m.suggestions.is_empty() {
        let s: Vec<String> = m
            .suggestions
            .iter()
            .map(|c| format!("#{} {}", c.id, c.name))
            .collect();
        lines.push(("Could be", s.join(", ")));
    }
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
        if m.documents_truncated {
            out.push_str(&format!(
                "  (the list stops at {} documents; the mail has more, and `message show {} --raw` has them all)\n",
                m.attachments.len(),
                m.id
            ));
        }
    }
    out
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn assign(config: &Config, id: i64, candidate: i64) -> anyhow::Result<()> {
    let mut store = Store::open(&config.server.database)?;
    let (envelope, content) = store
        .envelope_and_content(id)?
        .ok_or_else(|| anyhow::anyhow!("no message {id}"))?;
    // The author as the matcher sees it: the original author of a forward.
    let parsed = crate::inbound::parse::parse_message(&content, envelope.sender.is_empty());
    let directory = Company::from_config(config);
    let input = MatchInput {
        envelope_sender: &envelope.sender,
        headers: &parsed.headers,
        text: &parsed.text,
        attached_authors: &parsed.attached_authors,
        recipients: &envelope.recipients,
        report: None,
        authentication: envelope.authentication.as_ref(),
        received_at_ms: envelope.received_at_ms,
    };
    let author = matcher::author_of(&input, &directory);
    store.assign(id, candidate, author.as_ref().map(|m| m.address.as_str()))?;
    match author {
        Some(a) => println!(
            "message {id} filed under candidate {candidate}; {} is now known for them",
            a.address
        ),
        None => println!("message {id} filed under candidate {candidate}"),
    }
    Ok(())
}

#[derive(Serialize)]
struct CandidatesJson<'a> {
    candidates: &'a [CandidateSummary],
}

fn candidate_name(first: &str, last: &str) -> String {
    let name = format!("{first} {last}");
    let name = name.trim();
    if name.is_empty() {
        "(no name)".to_string()
    } else {
        name.to_string()
    }
}

fn candidate_command(config: &Config, command: CandidateCommand) -> anyhow::Result<()> {
    match command {
        CandidateCommand::List {
            search,
            limit,
            json,
        } => {
            let store = Store::open(&config.server.database)?;
            let list = store.candidates(search.as_deref(), limit as usize)?;
            if json {
                return print_json(&CandidatesJson { candidates: &list });
            }
            if list.is_empty() {
                println!("no candidates");
                return Ok(());
            }
            println!(
                "{:>6}  {:<30}  {:<40}  {:>5}  {:>5}",
                "ID", "NAME", "ADDRESSES", "APPL.", "MAILS"
            );
            for c in &list {
                println!(
                    "{:>6}  {:<30}  {:<40}  {:>5}  {:>5}",
                    c.id,
                    clip(&candidate_name(&c.first_name, &c.last_name), 30),
                    clip(&c.addresses.join(", "), 40),
                    c.applications,
                    c.messages
                );
            }
            Ok(())
        }
        CandidateCommand::Show { id, json } => {
            let store = Store::open(&config.server.database)?;
            let detail = store
                .candidate(id)?
                .ok_or_else(|| anyhow::anyhow!("no candidate {id}"))?;
            if json {
                return print_json(&detail);
            }
            print!("{}", format_candidate(&detail));
            Ok(())
        }
        CandidateCommand::Merge { into, from } => {
            let mut store = Store::open(&config.server.database)?;
            store.merge(into, from)?;
            println!("candidate {from} merged into {into}");
            Ok(())
        }
    }
}

/// The human view of `jobmail candidate show`.
pub fn format_candidate(c: &CandidateDetail) -> String {
    let s = &c.summary;
    let mut out = format!(
        "Candidate #{} {}\nAddresses   {}\nGender      {}\nLanguage    {}\nSince       {}\n",
        s.id,
        clip(&candidate_name(&s.first_name, &s.last_name), 100),
        s.addresses.join(", "),
        s.gender,
        match (&s.language, &s.language_source) {
            (Some(l), Some(source)) => format!("{l} ({source})"),
            (Some(l), None) => l.clone(),
            (None, _) => "-".to_string(),
        },
        s.created_at
    );
    out.push_str("Applications:\n");
    for a in &c.applications {
        out.push_str(&format!(
            "  #{:<5} {:<12} {:<28} {:<6} {:<10} {}\n",
            a.id,
            a.subsidiary,
            a.position.as_deref().unwrap_or("(general application)"),
            a.source,
            a.status,
            a.received_at
        ));
        if let Some(ack) = &a.auto_reply {
            let why = match (&ack.rule, ack.item) {
                (Some(rule), _) => format!(" ({rule}: {})", ack.detail),
                (None, Some(item)) => format!(" (outbox #{item})"),
                (None, None) if !ack.detail.is_empty() => format!(" ({})", ack.detail),
                _ => String::new(),
            };
            out.push_str(&format!("         acknowledgement {}{why}\n", ack.decision));
        }
    }
    out.push_str("Thread:\n");
    for t in &c.thread {
        let from = t.from.as_ref().map(|m| m.address.as_str()).unwrap_or("");
        out.push_str(&format!(
            "  #{:<6} {} {:<8} {:<30} {:<40} {}{}\n",
            t.id,
            t.received_at
                .get(..19)
                .unwrap_or(&t.received_at)
                .replace('T', " "),
            t.direction,
            clip(from, 30),
            clip(t.subject.as_deref().unwrap_or(""), 40),
            match &t.outbox {
                Some((item, state)) => format!("outbox #{item}: {state}"),
                None => t.reason.clone().unwrap_or_default(),
            },
            if t.closed_thread { " [closed]" } else { "" }
        ));
        for d in &t.attachments {
            out.push_str(&format!(
                "           {} ({}, {} bytes)\n",
                clip(&d.filename, 60),
                d.content_type,
                d.size
            ));
        }
    }
    out
}

#[derive(Serialize)]
struct AddedApplication {
    candidate: i64,
    application: i64,
    candidate_created: bool,
    acknowledgement: crate::store::candidates::AutoReplyRow,
}

fn application_command(config: &Config, command: ApplicationCommand) -> anyhow::Result<()> {
    match command {
        ApplicationCommand::Add {
            candidate,
            email,
            name,
            position,
            subsidiary,
            lang,
            json,
        } => {
            let lang = lang.map(|l| l.trim().to_lowercase());
            if let Some(l) = &lang
                && !config.template_languages.contains(l)
            {
                anyhow::bail!(
                    "--lang {l:?}: no template has it (they have: {})",
                    config.template_languages.join(", ")
                );
            }
            let (subsidiary, position) = match (position, subsidiary) {
                (Some(p), _) => {
                    let found = config
                        .positions
                        .iter()
                        .find(|x| x.id == p)
                        .ok_or_else(|| anyhow::anyhow!("no position {p:?} in the config"))?;
                    (found.subsidiary.clone(), Some(p))
                }
                (None, Some(s)) => {
                    if !config.subsidiaries.iter().any(|x| x.id == s) {
                        anyhow::bail!("no subsidiary {s:?} in the config");
                    }
                    (s, None)
                }
                (None, None) => {
                    anyhow::bail!("name a --position, or a --subsidiary for a general application")
                }
            };
            if let Some(e) = &email {
                crate::mail::address::Address::parse(e)
                    .map_err(|err| anyhow::anyhow!("--email {e:?}: {err}"))?;
            }
            if candidate.is_none() && email.is_none() {
                anyhow::bail!("name a --candidate, or an --email with --name");
            }
            let (first, last) = name
                .as_deref()
                .map(|n| matcher::split_name(n, email.as_deref().unwrap_or("")))
                .unwrap_or_default();
            let mut store = Store::open(&config.server.database)?;
            let (candidate, application, created) =
                store.add_form_application(&FormApplication {
                    candidate,
                    email: email.as_deref(),
                    first_name: &first,
                    last_name: &last,
                    subsidiary: &subsidiary,
                    position: position.as_deref(),
                    language: lang.as_deref(),
                })?;
            let ack = store.decide_form_auto_reply(
                application,
                &Company::from_config(config),
                chrono::Utc::now().timestamp_millis(),
            )?;
            if json {
                return print_json(&AddedApplication {
                    candidate,
                    application,
                    candidate_created: created,
                    acknowledgement: ack,
                });
            }
            println!(
                "application {application} recorded for {} candidate {candidate}; acknowledgement {}{}",
                if created { "new" } else { "existing" },
                ack.decision,
                ack.rule
                    .as_deref()
                    .map(|r| format!(" ({r}: {})", ack.detail))
                    .unwrap_or_default()
            );
            Ok(())
        }
        ApplicationCommand::Status {
            status,
            application,
            candidate,
        } => {
            let store = Store::open(&config.server.database)?;
            let n = store.set_status(candidate, application, &status)?;
            println!("{n} application(s) set to {status}");
            Ok(())
        }
    }
}

#[derive(Serialize)]
struct TemplateSummary<'a> {
    id: &'a str,
    description: &'a str,
    default_language: &'a str,
    languages: Vec<&'a str>,
    automatic: bool,
    attachments: &'a [String],
}

fn summarize(t: &crate::outbound::template::Template) -> TemplateSummary<'_> {
    TemplateSummary {
        id: &t.id,
        description: &t.description,
        default_language: &t.default_language,
        languages: t.variants.keys().map(String::as_str).collect(),
        automatic: t.automatic,
        attachments: &t.attachments,
    }
}

/// Every problem with the templates (all, or one), at once.
pub fn check_templates(
    config: &Config,
    templates: &Templates,
    load_errors: &[TemplateError],
    only: Option<&str>,
) -> Vec<TemplateError> {
    let mut languages: Vec<String> = config
        .subsidiaries
        .iter()
        .filter_map(|s| s.language.clone())
        .collect();
    languages.sort();
    languages.dedup();
    let mut errors: Vec<TemplateError> = load_errors
        .iter()
        .filter(|e| only.is_none_or(|id| e.template == id))
        .cloned()
        .collect();
    for t in templates
        .templates
        .values()
        .filter(|t| only.is_none_or(|id| t.id == id))
    {
        errors.extend(crate::outbound::render::check(t, &languages));
        errors.extend(templates.check_files(t));
    }
    errors
}

fn template_command(config: &Config, command: TemplateCommand) -> ExitCode {
    let (templates, load_errors) = Templates::load(&config.templates_dir);
    let result: anyhow::Result<ExitCode> = (|| match command {
        TemplateCommand::List { json } => {
            let list: Vec<TemplateSummary> = templates.templates.values().map(summarize).collect();
            if json {
                print_json(&serde_json::json!({ "templates": list }))?;
            } else if list.is_empty() {
                println!("no templates in {}", templates.dir.display());
            } else {
                println!(
                    "{:<24}  {:<10}  {:<5}  DESCRIPTION",
                    "ID", "LANGUAGES", "AUTO"
                );
                for t in &list {
                    println!(
                        "{:<24}  {:<10}  {:<5}  {}",
                        t.id,
                        t.languages.join(","),
                        if t.automatic { "yes" } else { "no" },
                        t.description
                    );
                }
            }
            for e in &load_errors {
                eprintln!("jobmail: {e}");
            }
            Ok(ExitCode::SUCCESS)
        }
        TemplateCommand::Show { id, json } => {
            let t = templates.get(&id).ok_or_else(|| {
                anyhow::anyhow!("no template {id:?} in {}", templates.dir.display())
            })?;
            if json {
                let variants: serde_json::Map<String, serde_json::Value> = t
                    .variants
                    .iter()
                    .map(|(l, v)| {
                        (
                            l.clone(),
                            serde_json::json!({
                                "subject": v.subject, "text": v.text, "html": v.html,
                                "attachments": t.attachments_of(l),
                            }),
                        )
                    })
                    .collect();
                print_json(&serde_json::json!({ "template": summarize(t), "variants": variants }))?;
            } else {
                println!(
                    "Template    {}\nFile        {}\nDescription {}\nDefault     {}\nAutomatic   {}",
                    t.id,
                    t.path.display(),
                    t.description,
                    t.default_language,
                    t.automatic
                );
                for (l, v) in &t.variants {
                    println!(
                        "\n[{l}] Subject: {}\nAttachments: {}\n{}",
                        v.subject,
                        t.attachments_of(l).join(", "),
                        v.text.trim_end()
                    );
                    if let Some(h) = &v.html {
                        println!("--- HTML ---\n{}", h.trim_end());
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TemplateCommand::Check { id } => {
            if let Some(id) = &id
                && templates.get(id).is_none()
                && !load_errors.iter().any(|e| &e.template == id)
            {
                anyhow::bail!("no template {id:?} in {}", templates.dir.display());
            }
            let errors = check_templates(config, &templates, &load_errors, id.as_deref());
            if errors.is_empty() {
                let n = if id.is_some() {
                    1
                } else {
                    templates.templates.len()
                };
                println!("{}: {n} template(s) ok", templates.dir.display());
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("{}: {} error(s)", templates.dir.display(), errors.len());
                for e in &errors {
                    eprintln!("{e}");
                }
                Ok(ExitCode::from(2))
            }
        }
        TemplateCommand::Preview {
            id,
            candidate,
            lang,
            sender,
        } => {
            let store = Store::open(&config.server.database)?;
            let key = crate::secrets::load_or_create_key(&config.server.state_dir)?;
            let composer = crate::outbound::compose::Composer {
                config,
                templates: &templates,
                key: &key,
            };
            let prepared = composer.prepare(
                &store,
                &crate::outbound::compose::Request {
                    candidate,
                    template: &id,
                    sender: sender.as_deref(),
                    language: lang.as_deref(),
                    ..Default::default()
                },
                chrono::Utc::now().timestamp_millis(),
            )?;
            if let Some(s) =
                store.suppressed(&prepared.to, chrono::Utc::now().timestamp_millis())?
            {
                eprintln!(
                    "# warning: {} is suppressed until {} ({}); send would skip it",
                    s.address, s.until, s.reason
                );
            }
            eprintln!(
                "# from {} <{}> (sender {:?} of {}), to <{}>, language {}, {} bytes; nothing queued",
                prepared.sender.name,
                prepared.sender.address,
                prepared.sender.id,
                prepared.subsidiary,
                prepared.to,
                prepared.language,
                prepared.bytes.len()
            );
            std::io::stdout().lock().write_all(&prepared.bytes)?;
            Ok(ExitCode::SUCCESS)
        }
    })();
    result.unwrap_or_else(|e| {
        eprintln!("jobmail: {e:#}");
        ExitCode::FAILURE
    })
}

fn send(config: &Config, args: &SendArgs) -> anyhow::Result<()> {
    let (templates, load_errors) = Templates::load(&config.templates_dir);
    if templates.get(&args.template).is_none() {
        for e in load_errors.iter().filter(|e| e.template == args.template) {
            eprintln!("jobmail: {e}");
        }
        anyhow::bail!(
            "no usable template {:?} in {}",
            args.template,
            templates.dir.display()
        );
    }
    let mut store = Store::open(&config.server.database)?;
    let candidates: Vec<i64> = if let Some(c) = args.candidate {
        vec![c]
    } else if !args.candidates.is_empty() {
        args.candidates.clone()
    } else if args.position.is_some() || args.category.is_some() || args.status.is_some() {
        let mut positions: Option<Vec<String>> = None;
        if let Some(p) = &args.position {
            if !config.positions.iter().any(|x| &x.id == p) {
                anyhow::bail!("no position {p:?} in the config");
            }
            positions = Some(vec![p.clone()]);
        }
        if let Some(k) = &args.category {
            if !config.categories.iter().any(|x| &x.id == k) {
                anyhow::bail!("no category {k:?} in the config");
            }
            let in_category: Vec<String> = config
                .positions
                .iter()
                .filter(|p| &p.category == k)
                .map(|p| p.id.clone())
                .collect();
            positions = Some(match positions {
                Some(p) => p.into_iter().filter(|x| in_category.contains(x)).collect(),
                None => in_category,
            });
        }
        if let Some(s) = &args.status
            && !crate::store::candidates::STATUSES.contains(&s.as_str())
        {
            anyhow::bail!(
                "unknown status {s:?} (one of {})",
                crate::store::candidates::STATUSES.join(", ")
            );
        }
        store.candidates_with_applications(positions.as_deref(), args.status.as_deref())?
    } else {
        anyhow::bail!(
            "name the candidates: --candidate, --candidates, or --position/--category/--status"
        );
    };
    let mut attachments = Vec::new();
    for path in &args.attach {
        let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let filename = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        attachments.push(crate::outbound::template::FileAttachment {
            content_type: crate::mail::mime::content_type_of(&filename).to_string(),
            filename,
            bytes,
        });
    }
    let not_before = args
        .at
        .as_deref()
        .map(|t| crate::outbound::compose::parse_time(t, &config.server.time_zone))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--at {e}"))?;
    let key = crate::secrets::load_or_create_key(&config.server.state_dir)?;
    let composer = crate::outbound::compose::Composer {
        config,
        templates: &templates,
        key: &key,
    };
    let summary = composer.send(
        &mut store,
        &crate::outbound::compose::SendRequest {
            template: &args.template,
            sender: args.sender.as_deref(),
            language: args.lang.as_deref(),
            attachments,
            reuse_documents: args.reuse_document.clone(),
            not_before,
            candidates,
            automatic: false,
            acknowledgement: None,
        },
        chrono::Utc::now().timestamp_millis(),
    )?;
    if args.json {
        print_json(&summary)?;
    } else {
        match &summary.scheduled_for {
            Some(t) => println!(
                "batch {}: {} scheduled for {t}, {} skipped",
                summary.batch,
                summary.queued.len(),
                summary.skipped.len()
            ),
            None => println!(
                "batch {}: {} queued, {} skipped",
                summary.batch,
                summary.queued.len(),
                summary.skipped.len()
            ),
        }
        for q in &summary.queued {
            println!(
                "  item {:<6} candidate {:<6} <{}>  {}",
                q.item,
                q.candidate,
                q.to,
                clip(&q.subject, 60)
            );
        }
        for k in &summary.skipped {
            println!("  skipped    candidate {:<6} {}", k.candidate, k.reason);
        }
    }
    if summary.queued.is_empty() && !summary.skipped.is_empty() {
        anyhow::bail!("nothing queued");
    }
    Ok(())
}

fn queue_command(config: &Config, command: QueueCommand) -> anyhow::Result<()> {
    use crate::store::outbox::{Action, QueueFilter};
    let mut store = Store::open(&config.server.database)?;
    let now = chrono::Utc::now().timestamp_millis();
    let done = |what: &str, n: usize| {
        println!("{what}: {n} item(s)");
    };
    match command {
        QueueCommand::List {
            state,
            subsidiary,
            batch,
            before,
            limit,
            json,
        } => {
            for s in &state {
                if !crate::store::outbox::STATES.contains(&s.as_str()) {
                    anyhow::bail!(
                        "unknown state {s:?} (one of {})",
                        crate::store::outbox::STATES.join(", ")
                    );
                }
            }
            let items = store.queue_filtered(&QueueFilter {
                states: state,
                subsidiary,
                batch,
                item: None,
                before,
                limit: limit as usize,
            })?;
            let summary = store.queue_summary()?;
            let paused = store.paused_upstreams(now)?;
            if json {
                let counts: serde_json::Map<String, serde_json::Value> = summary
                    .iter()
                    .map(|(s, n, _)| (s.clone(), serde_json::json!(n)))
                    .collect();
                return print_json(&serde_json::json!({
                    "items": items, "summary": counts, "paused_upstreams": paused,
                }));
            }
            if items.is_empty() {
                println!("outbox is empty");
            } else {
                println!(
                    "{:>7}  {:<9}  {:>8}  {:<20}  {:<20}  {:>6}  RECIPIENTS / SUBJECT",
                    "ID", "STATE", "SIZE", "CREATED (UTC)", "DUE (UTC)", "CAND."
                );
            }
            for i in &items {
                let short = |t: &str| t.get(..19).unwrap_or(t).replace('T', " ");
                let state = if i.held {
                    format!("{}!", i.state)
                } else {
                    i.state.clone()
                };
                println!(
                    "{:>7}  {:<9}  {:>8}  {:<20}  {:<20}  {:>6}  {}",
                    i.id,
                    state,
                    i.size,
                    short(&i.created_at),
                    i.next_attempt_at.as_deref().map(short).unwrap_or_default(),
                    i.candidate,
                    i.recipients.join(", ")
                );
                println!("{:>79}{}", "", clip(i.subject.as_deref().unwrap_or(""), 70));
                if let Some(reply) = &i.last_reply {
                    println!("{:>79}({})", "", clip(reply, 70));
                }
            }
            let total: i64 = summary.iter().map(|(_, n, _)| n).sum();
            let bytes: i64 = summary.iter().map(|(_, _, b)| b).sum();
            let parts: Vec<String> = summary.iter().map(|(s, n, _)| format!("{n} {s}")).collect();
            println!(
                "-- {} Kbytes in {total} item(s): {}{}",
                (bytes + 1023) / 1024,
                parts.join(", "),
                if items.iter().any(|i| i.held) {
                    " (! = held)"
                } else {
                    ""
                }
            );
            for p in &paused {
                let until = p
                    .paused_until
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default();
                println!(
                    "-- upstream of {} paused until {until} (circuit breaker): {}",
                    p.subsidiary,
                    p.last_error.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
        QueueCommand::Show { id, json } => {
            let item = store
                .queue_filtered(&QueueFilter {
                    item: Some(id),
                    limit: 1,
                    ..Default::default()
                })?
                .pop()
                .ok_or_else(|| anyhow::anyhow!("no outbox item {id}"))?;
            let events = store.events(id)?;
            let raw = store.raw(item.message)?.unwrap_or_default();
            if json {
                return print_json(&serde_json::json!({
                    "item": item, "events": events, "message": String::from_utf8_lossy(&raw),
                }));
            }
            println!(
                "Item        {}{}\nState       {}\nBatch       {}\nCandidate   {}\nEnvelope    <{}> -> {}\nSender      {} of {}\nCreated     {}\nDue         {}\nAttempts    {}",
                item.id,
                if item.held { " (held)" } else { "" },
                item.state,
                item.batch_id,
                item.candidate,
                item.envelope_from,
                item.recipients.join(", "),
                item.sender,
                item.subsidiary,
                item.created_at,
                item.next_attempt_at.as_deref().unwrap_or("-"),
                item.attempts
            );
            println!("History:");
            for e in &events {
                let code = e.code.map(|c| format!(" {c}")).unwrap_or_default();
                println!(
                    "  {}  {} -> {}  attempt {}{}  {}",
                    e.at,
                    e.from_state.as_deref().unwrap_or("-"),
                    e.to_state,
                    e.attempt,
                    code,
                    clip(&e.text, 120)
                );
            }
            println!("Message:");
            std::io::stdout().lock().write_all(&raw)?;
            Ok(())
        }
        QueueCommand::Retry { id: Some(id), .. } => {
            done("retry", store.queue_action(Action::Retry(id), now)?);
            Ok(())
        }
        QueueCommand::Retry { id: None, .. } | QueueCommand::Flush => {
            done("flush", store.queue_action(Action::Flush, now)?);
            Ok(())
        }
        QueueCommand::Hold { id } => {
            done("hold", store.queue_action(Action::Hold(id), now)?);
            Ok(())
        }
        QueueCommand::Release { id } => {
            done("release", store.queue_action(Action::Release(id), now)?);
            Ok(())
        }
        QueueCommand::Delete { id } => {
            done("delete", store.queue_action(Action::Delete(id), now)?);
            Ok(())
        }
        QueueCommand::Cancel { id } => {
            let was = store.cancel(id, now)?;
            println!("outbox item {id} cancelled (was {was})");
            Ok(())
        }
    }
}

fn suppression_command(config: &Config, command: SuppressionCommand) -> anyhow::Result<()> {
    let store = Store::open(&config.server.database)?;
    match command {
        SuppressionCommand::List { json } => {
            let list = store.suppressions(chrono::Utc::now().timestamp_millis())?;
            if json {
                return print_json(&serde_json::json!({ "suppressions": list }));
            }
            if list.is_empty() {
                println!("no suppressed addresses");
            }
            for s in &list {
                println!(
                    "{:<40} until {}  {}",
                    s.address,
                    s.until.get(..10).unwrap_or(&s.until),
                    clip(&s.reason, 80)
                );
            }
            Ok(())
        }
        SuppressionCommand::Remove { address } => {
            if store.unsuppress(&address)? {
                println!("{address} is no longer suppressed");
                Ok(())
            } else {
                anyhow::bail!("{address} is not suppressed")
            }
        }
    }
}

/// What the config's acknowledgements need from the templates: the template
/// exists, is marked `automatic = true`, and is neutral in gender everywhere
/// (the candidate's gender is usually unknown when they apply).
pub fn auto_reply_problems(config: &Config) -> Vec<String> {
    let wanted: Vec<(usize, &crate::config::AutoReply)> = config
        .categories
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.auto_reply.as_ref().map(|a| (i, a)))
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let (templates, _) = Templates::load(&config.templates_dir);
    let mut problems = Vec::new();
    for (i, auto) in wanted {
        let key = format!("category[{i}].auto_reply.template");
        match templates.get(&auto.template) {
            None => problems.push(format!("{key}: no template {:?} in {}", auto.template, templates.dir.display())),
            Some(t) if !t.automatic => problems.push(format!(
                "{key}: template {:?} is not marked automatic = true (it must be neutral in gender)",
                t.id
            )),
            Some(t) => {
                for e in crate::outbound::render::check(t, &[]) {
                    problems.push(format!("{key}: {e}"));
                }
            }
        }
    }
    problems
}
