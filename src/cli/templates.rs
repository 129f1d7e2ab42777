//! `jobmail template list|show|check|preview`.

use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;

use super::output::print_json;
use crate::app::App;
use crate::app::outbox::{Preview, PreviewInput};
use crate::app::templates::{Loaded, TemplateSummary, TemplateView};

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

pub fn template_command(app: &App, command: TemplateCommand) -> ExitCode {
    let Loaded {
        templates,
        errors: load_errors,
    } = app.templates_loaded();
    let result: anyhow::Result<ExitCode> = (|| match command {
        TemplateCommand::List { json } => {
            let list: Vec<TemplateSummary> = templates
                .templates
                .values()
                .map(TemplateSummary::of)
                .collect();
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
                print_json(&TemplateView::of(t))?;
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
            let checked = app.check_templates(id.as_deref())?;
            if checked.problems.is_empty() {
                println!(
                    "{}: {} template(s) ok",
                    templates.dir.display(),
                    checked.checked
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "{}: {} error(s)",
                    templates.dir.display(),
                    checked.problems.len()
                );
                for e in &checked.problems {
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
            let Preview {
                mail, suppressed, ..
            } = app.preview(&PreviewInput {
                template: id,
                candidate,
                sender,
                language: lang,
            })?;
            if let Some(s) = suppressed {
                eprintln!(
                    "# warning: {} is suppressed until {} ({}); send would skip it",
                    s.address, s.until, s.reason
                );
            }
            eprintln!(
                "# from {} <{}> (sender {:?} of {}), to <{}>, language {}, {} bytes; nothing queued",
                mail.sender.name,
                mail.sender.address,
                mail.sender.id,
                mail.subsidiary,
                mail.to,
                mail.language,
                mail.bytes.len()
            );
            std::io::stdout().lock().write_all(&mail.bytes)?;
            Ok(ExitCode::SUCCESS)
        }
    })();
    result.unwrap_or_else(|e| {
        eprintln!("jobmail: {e:#}");
        ExitCode::FAILURE
    })
}
