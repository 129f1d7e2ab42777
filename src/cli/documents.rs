//! `jobmail document list|get|categorise` and `jobmail audit`: documents
//! by category as a user's role allows (`--as USER`; without it, the
//! operator, who sees everything), and who saw what.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::caller;
use super::files::read_upload;
use super::output::{clip, print_json};
use crate::app::App;
use crate::app::access::Caller;

#[derive(Debug, Subcommand)]
pub enum DocumentCommand {
    /// A candidate's documents, as the user may see them
    List {
        #[arg(long)]
        candidate: i64,
        /// Act as this [[user]] (their role's rights); default: the operator
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One document's bytes (to stdout, or --output FILE)
    Get {
        id: i64,
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// File a document under another category
    Categorise {
        id: i64,
        category: String,
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
    },
    /// Add files to a candidate's documents
    Upload {
        #[arg(long)]
        candidate: i64,
        /// The category; default: the [[document_category]] rules decide
        #[arg(long)]
        category: Option<String>,
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Delete a document (its bytes go; the raw mail it came in keeps them)
    Delete {
        id: i64,
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this user's lines (`cli` for the operator's)
    #[arg(long)]
    pub actor: Option<String>,
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub limit: u32,
    #[arg(long)]
    pub json: bool,
}

pub fn document_command(app: &App, command: DocumentCommand) -> anyhow::Result<()> {
    match command {
        DocumentCommand::List {
            candidate,
            as_user,
            json,
        } => {
            let docs = app.candidate_documents(&caller(app, as_user.as_deref())?, candidate)?;
            if json {
                return print_json(&serde_json::json!({ "documents": docs }));
            }
            if docs.is_empty() {
                println!("no documents");
            }
            for d in &docs {
                println!(
                    "{:>7}  {:<14}  {:>9}  {:<8}  {:<10}  {}",
                    d.document.id,
                    clip(&d.document.category, 14),
                    d.document.size,
                    d.direction,
                    match (d.message, &d.added_by) {
                        (Some(m), _) => format!("msg {m}"),
                        (None, Some(by)) => format!("by {}", clip(by, 7)),
                        (None, None) => String::new(),
                    },
                    clip(&d.document.filename, 60)
                );
            }
            Ok(())
        }
        DocumentCommand::Get {
            id,
            as_user,
            output,
        } => {
            let (_, bytes) = app.document(&caller(app, as_user.as_deref())?, id)?;
            match output {
                Some(path) => std::fs::write(&path, &bytes)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                None => std::io::stdout().lock().write_all(&bytes)?,
            }
            Ok(())
        }
        DocumentCommand::Categorise {
            id,
            category,
            as_user,
        } => {
            app.set_document_category(&caller(app, as_user.as_deref())?, id, &category)?;
            println!("document {id} is now {category}");
            Ok(())
        }
        DocumentCommand::Upload {
            candidate,
            category,
            as_user,
            files,
        } => {
            let uploads = files
                .iter()
                .map(|path| read_upload(path, category.clone()))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let docs =
                app.upload_documents(&caller(app, as_user.as_deref())?, candidate, uploads)?;
            for d in &docs {
                println!(
                    "document {} uploaded: {} ({})",
                    d.document.id, d.document.filename, d.document.category
                );
            }
            Ok(())
        }
        DocumentCommand::Delete { id, as_user } => {
            app.delete_document(&caller(app, as_user.as_deref())?, id)?;
            println!("document {id} deleted");
            Ok(())
        }
    }
}

pub fn audit(app: &App, args: &AuditArgs) -> anyhow::Result<()> {
    let lines = app.audit_log(
        &Caller::Operator,
        args.actor.as_deref(),
        args.limit as usize,
    )?;
    if args.json {
        return print_json(&serde_json::json!({ "audit": lines }));
    }
    for a in &lines {
        println!(
            "{}  {:<12}  {:<20}  {:<14}  {}  {}",
            a.at.get(..19).unwrap_or(&a.at).replace('T', " "),
            clip(&a.actor, 12),
            a.action,
            a.object,
            if a.allowed { "allowed" } else { "DENIED " },
            clip(&a.detail, 60)
        );
    }
    Ok(())
}
