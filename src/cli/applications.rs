//! `jobmail application add|status`: the online form's entry point (with
//! the documents the applicant uploaded) and status changes; `--as USER`
//! acts with that user's rights.

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;

use super::caller;
use super::files::read_upload;
use super::output::print_json;
use crate::app::App;
use crate::app::candidates::FormInput;
use crate::app::filing::FormOutcome;

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
        /// A document uploaded with the application (repeat for more);
        /// filed by the [[document_category]] rules
        #[arg(long = "document", value_name = "FILE")]
        documents: Vec<PathBuf>,
        /// Act as this [[user]] (their role's rights); default: the operator
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
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
        /// Act as this [[user]] (with --application)
        #[arg(long = "as", value_name = "USER", requires = "application")]
        as_user: Option<String>,
    },
}

#[derive(Serialize)]
struct AddedApplication {
    candidate: i64,
    application: i64,
    candidate_created: bool,
    acknowledgement: crate::store::candidates::AutoReplyRow,
    documents: Vec<i64>,
}

pub fn application_command(app: &App, command: ApplicationCommand) -> anyhow::Result<()> {
    match command {
        ApplicationCommand::Add {
            candidate,
            email,
            name,
            position,
            subsidiary,
            lang,
            documents,
            as_user,
            json,
        } => {
            let documents = documents
                .iter()
                .map(|path| read_upload(path, None))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let FormOutcome {
                candidate,
                application,
                created,
                acknowledgement: ack,
                documents,
            } = app.add_form_application_as(
                &caller(app, as_user.as_deref())?,
                &FormInput {
                    candidate,
                    email,
                    name,
                    position,
                    subsidiary,
                    language: lang,
                    documents,
                },
            )?;
            if json {
                return print_json(&AddedApplication {
                    candidate,
                    application,
                    candidate_created: created,
                    acknowledgement: ack,
                    documents,
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
            for d in &documents {
                println!("document {d} uploaded");
            }
            Ok(())
        }
        ApplicationCommand::Status {
            status,
            application,
            as_user: Some(user),
            ..
        } => {
            let application = application.unwrap_or_default();
            app.set_application_status_as(&app.caller_named(&user)?, application, &status)?;
            println!("application {application} set to {status}");
            Ok(())
        }
        ApplicationCommand::Status {
            status,
            application,
            candidate,
            as_user: None,
        } => {
            let n = app.set_status(candidate, application, &status)?;
            println!("{n} application(s) set to {status}");
            Ok(())
        }
    }
}
