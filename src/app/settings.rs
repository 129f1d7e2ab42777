//! The settings as a recruiter may read them: subsidiaries and their
//! senders, the templates with what their check finds, the acknowledgement
//! rules per recruiting category, the document categories and the roles.
//! Read-only, from the config in force; no secret (tokens, passwords,
//! webhook secrets) is part of it.

use serde::Serialize;

use super::{App, Result};

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub subsidiaries: Vec<SubsidiaryView>,
    pub templates: Vec<TemplateView>,
    pub categories: Vec<CategoryView>,
    pub document_categories: Vec<DocumentCategoryView>,
    pub roles: Vec<RoleView>,
    pub time_zone: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubsidiaryView {
    pub id: String,
    pub name: String,
    pub jobs_address: String,
    pub aliases: Vec<String>,
    pub language: Option<String>,
    /// `(id, name, address)`, the jobs address (`default`) first.
    pub senders: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TemplateView {
    pub id: String,
    pub description: String,
    pub languages: Vec<String>,
    pub automatic: bool,
    /// What `jobmail template lint` says of it; empty: fine.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CategoryView {
    pub id: String,
    pub name: String,
    /// `None`: no acknowledgements in this category.
    pub email: Option<bool>,
    pub form: Option<bool>,
    pub template: Option<String>,
    pub sender: Option<String>,
    pub period: Option<String>,
    pub max_per_hour: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DocumentCategoryView {
    pub id: String,
    pub name: String,
    pub sensitive: bool,
    pub names: Vec<String>,
    pub types: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    pub id: String,
    pub name: String,
    pub view: Vec<String>,
    pub edit: Vec<String>,
    pub rights: Vec<&'static str>,
}

impl App {
    /// The settings in force, with every template checked.
    pub fn settings(&self) -> Result<Settings> {
        let c = &self.config;
        let checked = self.check_templates(None)?;
        let templates = self
            .template_summaries()
            .into_iter()
            .map(|t| TemplateView {
                problems: checked
                    .problems
                    .iter()
                    .filter(|p| p.template == t.id)
                    .map(|p| p.to_string())
                    .collect(),
                id: t.id,
                description: t.description,
                languages: t.languages,
                automatic: t.automatic,
            })
            .collect();
        let star = |all: bool, named: &[String]| {
            let mut v: Vec<String> = all.then(|| "*".to_string()).into_iter().collect();
            v.extend(named.iter().cloned());
            v
        };
        Ok(Settings {
            subsidiaries: c
                .subsidiaries
                .iter()
                .map(|s| SubsidiaryView {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    jobs_address: s.jobs_address.to_string(),
                    aliases: s.aliases.iter().map(|a| a.to_string()).collect(),
                    language: s.language.clone(),
                    senders: s
                        .senders
                        .iter()
                        .map(|x| (x.id.clone(), x.name.clone(), x.address.to_string()))
                        .collect(),
                })
                .collect(),
            templates,
            categories: c
                .categories
                .iter()
                .map(|k| CategoryView {
                    id: k.id.clone(),
                    name: k.name.clone(),
                    email: k.auto_reply.as_ref().map(|a| a.email),
                    form: k.auto_reply.as_ref().map(|a| a.form),
                    template: k.auto_reply.as_ref().map(|a| a.template.clone()),
                    sender: k.auto_reply.as_ref().map(|a| a.sender.clone()),
                    period: k
                        .auto_reply
                        .as_ref()
                        .map(|a| humantime::format_duration(a.period).to_string()),
                    max_per_hour: k.auto_reply.as_ref().map(|a| a.max_per_hour),
                })
                .collect(),
            document_categories: c
                .document_categories
                .iter()
                .map(|d| DocumentCategoryView {
                    id: d.id.clone(),
                    name: d.name.clone(),
                    sensitive: d.sensitive,
                    names: d.names.clone(),
                    types: d.types.clone(),
                })
                .collect(),
            roles: c
                .roles
                .iter()
                .map(|r| RoleView {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    view: star(r.view_all, &r.view),
                    edit: star(r.edit_all, &r.edit),
                    rights: r.rights.iter().map(|x| x.as_str()).collect(),
                })
                .collect(),
            time_zone: c.server.time_zone.iana_name().unwrap_or("UTC").to_string(),
        })
    }
}
