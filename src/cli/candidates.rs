//! `jobmail candidate list|show|set|merge`; `--as USER` acts with that
//! user's rights (their subsidiaries, their role's categories).

use clap::Subcommand;
use serde::Serialize;

use super::caller;
use super::output::{candidate_name, clip, print_json};
use crate::app::App;
use crate::app::candidates::CandidateUpdate;
use crate::store::candidates::{CandidateDetail, CandidateSummary};

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
        /// Act as this [[user]]; default: the operator
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
    },
    /// One candidate: addresses, applications and the whole thread
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
    },
    /// Change a candidate's names, gender or language
    Set {
        id: i64,
        #[arg(long)]
        first_name: Option<String>,
        #[arg(long)]
        last_name: Option<String>,
        /// female, male, diverse or unknown
        #[arg(long)]
        gender: Option<String>,
        /// A language the templates have; it wins over a detected one
        #[arg(long, conflicts_with = "clear_lang")]
        lang: Option<String>,
        /// Forget the language (the subsidiary's is used)
        #[arg(long)]
        clear_lang: bool,
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
    },
    /// Merge candidate FROM into INTO (two records of one person)
    Merge {
        into: i64,
        from: i64,
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
    },
}

#[derive(Serialize)]
struct CandidatesJson<'a> {
    candidates: &'a [CandidateSummary],
}

pub fn candidate_command(app: &App, command: CandidateCommand) -> anyhow::Result<()> {
    match command {
        CandidateCommand::List {
            search,
            limit,
            json,
            as_user,
        } => {
            let list = app.candidates_as(
                &caller(app, as_user.as_deref())?,
                search.as_deref(),
                limit as usize,
            )?;
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
        CandidateCommand::Show { id, json, as_user } => {
            let detail = app.candidate_as(&caller(app, as_user.as_deref())?, id)?;
            if json {
                return print_json(&detail);
            }
            print!("{}", format_candidate(&detail));
            Ok(())
        }
        CandidateCommand::Set {
            id,
            first_name,
            last_name,
            gender,
            lang,
            clear_lang,
            as_user,
        } => {
            let detail = app.update_candidate_as(
                &caller(app, as_user.as_deref())?,
                id,
                &CandidateUpdate {
                    first_name,
                    last_name,
                    gender,
                    language: if clear_lang {
                        Some(None)
                    } else {
                        lang.map(Some)
                    },
                },
            )?;
            print!("{}", format_candidate(&detail));
            Ok(())
        }
        CandidateCommand::Merge {
            into,
            from,
            as_user,
        } => {
            app.merge_as(&caller(app, as_user.as_deref())?, into, from)?;
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
                Some(o) => format!("outbox #{}: {}", o.item, o.state),
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
