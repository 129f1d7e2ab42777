//! Templates as an operator sees them: the list, one template with its
//! language variants, and their checks.

use super::{App, Error, Result};
use crate::outbound::template::{Template, TemplateError, Templates};

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
