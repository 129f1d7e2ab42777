//! Templates as an operator sees them: the list, one template with its
//! language variants, and their checks.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{App, Error, Result};
use crate::outbound::template::{Template, TemplateError, Templates};

/// A template in a list: what it is for and which languages it has.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateSummary {
    pub id: String,
    pub description: String,
    pub default_language: String,
    pub languages: Vec<String>,
    pub automatic: bool,
    pub attachments: Vec<String>,
}

impl TemplateSummary {
    pub fn of(t: &Template) -> TemplateSummary {
        TemplateSummary {
            id: t.id.clone(),
            description: t.description.clone(),
            default_language: t.default_language.clone(),
            languages: t.variants.keys().cloned().collect(),
            automatic: t.automatic,
            attachments: t.attachments.clone(),
        }
    }
}

/// One language variant as written (placeholders not rendered).
#[derive(Debug, Clone, Serialize)]
pub struct VariantView {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    pub attachments: Vec<String>,
}

/// One template with every variant.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateView {
    pub template: TemplateSummary,
    pub variants: BTreeMap<String, VariantView>,
}

impl TemplateView {
    pub fn of(t: &Template) -> TemplateView {
        TemplateView {
            template: TemplateSummary::of(t),
            variants: t
                .variants
                .iter()
                .map(|(l, v)| {
                    (
                        l.clone(),
                        VariantView {
                            subject: v.subject.clone(),
                            text: v.text.clone(),
                            html: v.html.clone(),
                            attachments: t.attachments_of(l).to_vec(),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// The templates directory as loaded: the usable templates, and the files
/// that could not be read as one.
#[derive(Debug)]
pub struct Loaded {
    pub templates: Templates,
    pub errors: Vec<TemplateError>,
}

/// What `template check` found: how many templates it checked, and every
/// problem at once.
#[derive(Debug)]
pub struct Checked {
    pub checked: usize,
    pub problems: Vec<TemplateError>,
}

impl App {
    /// Every template in the templates directory.
    pub fn templates_loaded(&self) -> Loaded {
        let (templates, errors) = Templates::load(&self.config.templates_dir);
        Loaded { templates, errors }
    }

    /// One template.
    pub fn template(&self, id: &str) -> Result<Template> {
        let loaded = self.templates_loaded();
        loaded.templates.get(id).cloned().ok_or_else(|| {
            Error::NotFound(format!(
                "no template {id:?} in {}",
                loaded.templates.dir.display()
            ))
        })
    }

    /// Every usable template, by id.
    pub fn template_summaries(&self) -> Vec<TemplateSummary> {
        self.templates_loaded()
            .templates
            .templates
            .values()
            .map(TemplateSummary::of)
            .collect()
    }

    /// Checks every template, or only `only`.
    pub fn check_templates(&self, only: Option<&str>) -> Result<Checked> {
        let Loaded { templates, errors } = self.templates_loaded();
        if let Some(id) = only
            && templates.get(id).is_none()
            && !errors.iter().any(|e| e.template == id)
        {
            return Err(Error::NotFound(format!(
                "no template {id:?} in {}",
                templates.dir.display()
            )));
        }
        let problems = super::checks::check_templates(&self.config, &templates, &errors, only);
        Ok(Checked {
            checked: if only.is_some() {
                1
            } else {
                templates.templates.len()
            },
            problems,
        })
    }
}
