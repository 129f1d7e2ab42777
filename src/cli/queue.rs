//! `jobmail queue`: the outbox as Postfix's mailq, postqueue and postsuper
//! show and change it.

use std::io::Write;

use clap::Subcommand;

use super::output::{clip, print_json};
use crate::app::App;
use crate::app::outbox::{ItemView, QueueView};
use crate::store::outbox::{Action, QueueFilter};

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

pub fn queue_command(app: &App, command: QueueCommand) -> anyhow::Result<()> {
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
            let QueueView {
                items,
                summary,
                paused_upstreams: paused,
            } = app.queue(&QueueFilter {
                states: state,
                subsidiary,
                batch,
                item: None,
                before,
                limit: limit as usize,
            })?;
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
                    .and_then(crate::clock::rfc3339)
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
            let ItemView { item, events, raw } = app.queue_item(id)?;
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
            done("retry", app.queue_action(Action::Retry(id))?);
            Ok(())
        }
        QueueCommand::Retry { id: None, .. } | QueueCommand::Flush => {
            done("flush", app.queue_action(Action::Flush)?);
            Ok(())
        }
        QueueCommand::Hold { id } => {
            done("hold", app.queue_action(Action::Hold(id))?);
            Ok(())
        }
        QueueCommand::Release { id } => {
            done("release", app.queue_action(Action::Release(id))?);
            Ok(())
        }
        QueueCommand::Delete { id } => {
            done("delete", app.queue_action(Action::Delete(id))?);
            Ok(())
        }
        QueueCommand::Cancel { id } => {
            let was = app.cancel(id)?;
            println!("outbox item {id} cancelled (was {was})");
            Ok(())
        }
    }
}
