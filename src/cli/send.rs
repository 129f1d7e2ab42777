//! `jobmail send`: one template to one candidate or many, now or scheduled.

use std::path::PathBuf;

use clap::Args;

use super::output::{clip, print_json};
use crate::app::App;
use crate::app::outbox::SendInput;
use crate::outbound::audience::Audience;

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

pub fn send(app: &App, args: &SendArgs) -> anyhow::Result<()> {
    let attachments = args
        .attach
        .iter()
        .map(|path| super::files::read_attachment(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let summary = app.send(
        &crate::app::access::Caller::Operator,
        &SendInput {
            template: args.template.clone(),
            audience: Audience {
                candidates: match args.candidate {
                    Some(c) => vec![c],
                    None => args.candidates.clone(),
                },
                position: args.position.clone(),
                category: args.category.clone(),
                status: args.status.clone(),
            },
            sender: args.sender.clone(),
            language: args.lang.clone(),
            attachments,
            reuse_documents: args.reuse_document.clone(),
            at: args.at.clone(),
        },
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
