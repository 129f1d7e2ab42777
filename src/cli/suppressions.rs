//! `jobmail suppression list|remove`.

use clap::Subcommand;

use super::output::{clip, print_json};
use crate::app::App;

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

pub fn suppression_command(app: &App, command: SuppressionCommand) -> anyhow::Result<()> {
    match command {
        SuppressionCommand::List { json } => {
            let list = app.suppressions()?;
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
            app.unsuppress(&address)?;
            println!("{address} is no longer suppressed");
            Ok(())
        }
    }
}
