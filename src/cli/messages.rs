//! `jobmail inbox` and `jobmail message show|assign`.

use std::io::Write;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::output::clip;
use crate::app::App;
use crate::store::{InboxEntry, InboxFilter, MessageDetail};

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
    /// Only mails whose subject, sender or candidate's name holds this text
    /// (any case, accents or not)
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Only mails of candidates with an application to this subsidiary
    #[arg(long, value_name = "ID")]
    pub subsidiary: Option<String>,
    /// ... for this position
    #[arg(long, value_name = "ID")]
    pub position: Option<String>,
    /// ... in this status (new, in-review, interview, offer, hired, rejected, withdrawn)
    #[arg(long)]
    pub status: Option<String>,
    /// Only mails with a document of this category
    #[arg(long, value_name = "ID")]
    pub category: Option<String>,
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
        /// With --raw: as this [[user]], who gets it only if their role may
        /// see every document in it; default: the operator
        #[arg(long = "as", value_name = "USER", requires = "raw")]
        as_user: Option<String>,
    },
    /// File a mail under a candidate by hand; its author's address becomes known for them
    Assign {
        id: i64,
        #[arg(long)]
        candidate: i64,
    },
}

#[derive(Serialize)]
struct InboxJson<'a> {
    messages: &'a [InboxEntry],
}

pub fn inbox(app: &App, args: &InboxArgs) -> anyhow::Result<()> {
    let entries = app.inbox(&InboxFilter {
        limit: args.limit as usize,
        before: args.before,
        unassigned: args.unassigned,
        candidate: args.candidate,
        search: args.search.clone(),
        subsidiary: args.subsidiary.clone(),
        position: args.position.clone(),
        status: args.status.clone(),
        category: args.category.clone(),
        visible: None,
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
        if e.direction == "outbound" {
            subject = format!("[sent] {subject}");
        } else if e.delivery_report {
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

pub fn message_command(app: &App, command: MessageCommand) -> anyhow::Result<()> {
    match command {
        MessageCommand::Show {
            id,
            raw,
            json,
            as_user,
        } => show(app, id, raw, json, as_user.as_deref()),
        MessageCommand::Assign { id, candidate } => {
            let done = app.assign(id, candidate)?;
            match done.author {
                Some(a) => println!(
                    "message {id} filed under candidate {candidate}; {} is now known for them",
                    a.address
                ),
                None => println!("message {id} filed under candidate {candidate}"),
            }
            Ok(())
        }
    }
}

fn show(app: &App, id: i64, raw: bool, json: bool, as_user: Option<&str>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if raw {
        let caller = match as_user {
            Some(user) => app.caller_named(user)?,
            None => crate::app::access::Caller::Operator,
        };
        out.write_all(&app.raw_message(&caller, id)?)?;
        return Ok(());
    }
    let detail = app.message(id)?;
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
            "TLS",
            match (&m.tls, m.direction.as_str()) {
                (Some(tls), _) => format!("{} {}", tls.version, tls.cipher),
                (None, "inbound") => "none (plaintext)".into(),
                (None, _) => "-".into(),
            },
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
