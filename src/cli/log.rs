//! `jobmail log message ID` and `jobmail log item ID`: one mail's life
//! from its RCPT to sent or bounced, from the store's records, and the
//! `journalctl` grep that finds its log lines.

use clap::Subcommand;

use super::output::{clip, print_json};
use crate::app::App;
use crate::app::history::Subject;

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// A stored mail: received, filed, its application and acknowledgement, what went out for it
    Message {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// An outbox item: its attempts and replies (an acknowledgement's from the mail it answers)
    Item {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

pub fn log_command(app: &App, command: LogCommand) -> anyhow::Result<()> {
    let (subject, json) = match command {
        LogCommand::Message { id, json } => (Subject::Message(id), json),
        LogCommand::Item { id, json } => (Subject::Item(id), json),
    };
    let log = app.mail_log(subject)?;
    if json {
        return print_json(&log);
    }
    for s in &log.steps {
        // The mail a step is about; an outbox item's own steps by the item.
        let about = match (s.message, s.item) {
            (Some(message), _) => format!("message {message}"),
            (None, Some(item)) => format!("item {item}"),
            (None, None) => String::new(),
        };
        println!(
            "{:<24}  {:<13}  {:<15}  {}",
            s.at,
            about,
            s.step,
            clip(&s.text, 400)
        );
    }
    println!("log lines: {}", log.journal);
    Ok(())
}
