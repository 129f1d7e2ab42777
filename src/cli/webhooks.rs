//! `jobmail webhooks list|events|retry`: each endpoint's backlog, the
//! deliveries with their state and last error, and failed ones put back
//! in line.

use clap::Subcommand;

use super::output::{clip, print_json};
use crate::app::App;

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Each endpoint: URL, pending, failed and delivered, the oldest waiting, the last error
    List {
        #[arg(long)]
        json: bool,
    },
    /// The deliveries, newest first
    Events {
        /// Only this endpoint's
        #[arg(long)]
        endpoint: Option<String>,
        /// pending, delivered or failed
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Put failed deliveries back in line, due now
    Retry {
        /// Only this endpoint's
        #[arg(long)]
        endpoint: Option<String>,
    },
}

pub fn webhook_command(app: &App, command: WebhookCommand) -> anyhow::Result<()> {
    match command {
        WebhookCommand::List { json } => {
            let endpoints = app.webhook_endpoints()?;
            if json {
                return print_json(&serde_json::json!({ "endpoints": endpoints }));
            }
            if endpoints.is_empty() {
                println!("no webhooks configured ([[webhook]] in the config)");
            }
            for e in &endpoints {
                let served = if e.configured { "" } else { "  (not served)" };
                println!("{}  {}{served}", e.endpoint, e.url);
                println!(
                    "  pending {}  failed {}  delivered {}{}",
                    e.pending,
                    e.failed,
                    e.delivered,
                    e.oldest_pending_at
                        .as_deref()
                        .map(|t| format!("  oldest waiting since {t}"))
                        .unwrap_or_default()
                );
                if let Some(error) = &e.last_error {
                    println!("  last error: {}", clip(error, 100));
                }
            }
            Ok(())
        }
        WebhookCommand::Events {
            endpoint,
            state,
            limit,
            json,
        } => {
            let rows = app.webhook_deliveries(endpoint.as_deref(), state.as_deref(), limit)?;
            if json {
                return print_json(&serde_json::json!({ "deliveries": rows }));
            }
            if rows.is_empty() {
                println!("no deliveries");
            }
            for r in &rows {
                let when = match r.state.as_str() {
                    "delivered" => r.delivered_at.clone().unwrap_or_default(),
                    "pending" if r.behind_earlier => "after this candidate's earlier event".into(),
                    "pending" => format!("next {}", r.next_attempt_at.clone().unwrap_or_default()),
                    _ => String::new(),
                };
                println!(
                    "{:<9} {:<12} {} {:<22} candidate {:<6} attempts {:<3} {}{}",
                    r.state,
                    r.endpoint,
                    r.event,
                    r.kind,
                    r.candidate
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into()),
                    r.attempts,
                    when,
                    r.last_error
                        .as_deref()
                        .filter(|_| r.state != "delivered")
                        .map(|e| format!("  {}", clip(e, 80)))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        WebhookCommand::Retry { endpoint } => {
            let n = app.retry_webhook_deliveries(endpoint.as_deref())?;
            println!("{n} failed deliveries put back in line");
            Ok(())
        }
    }
}
