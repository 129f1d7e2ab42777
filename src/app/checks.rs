//! The checks that gate `serve` and that `config check` and `template
//! check` run: the config's acknowledgements against the templates, every
//! template against the languages the subsidiaries use, and the TLS
//! certificate and key. Pure but for reading the template, certificate and
//! key files.

use crate::config::Config;
use crate::outbound::template::{TemplateError, Templates};

/// Every problem `serve` refuses to start with, beyond the config's own
/// errors (which `config::load` reports).
pub fn serve_problems(config: &Config) -> Vec<String> {
    let mut problems = auto_reply_problems(config);
    problems.extend(tls_problems(config));
    problems
}

/// What is wrong with the `[tls]` certificate and key files, by the same
/// function that loads them at start (and at a reload): a check that
/// passes here cannot fail there.
pub fn tls_problems(config: &Config) -> Vec<String> {
    match &config.tls {
        None => Vec::new(),
        Some(tls) => crate::inbound::tls::load(tls, crate::clock::now_ms())
            .err()
            .unwrap_or_default(),
    }
}

/// Every problem with the templates (all, or one), at once.
pub fn check_templates(
    config: &Config,
    templates: &Templates,
    load_errors: &[TemplateError],
    only: Option<&str>,
) -> Vec<TemplateError> {
    let mut languages: Vec<String> = config
        .subsidiaries
        .iter()
        .filter_map(|s| s.language.clone())
        .collect();
    languages.sort();
    languages.dedup();
    let mut errors: Vec<TemplateError> = load_errors
        .iter()
        .filter(|e| only.is_none_or(|id| e.template == id))
        .cloned()
        .collect();
    for t in templates
        .templates
        .values()
        .filter(|t| only.is_none_or(|id| t.id == id))
    {
        errors.extend(crate::outbound::render::check(t, &languages));
        errors.extend(templates.check_files(t));
    }
    errors
}

/// What the config's acknowledgements need from the templates: the template
/// exists, is marked `automatic = true`, and is neutral in gender everywhere
/// (the candidate's gender is usually unknown when they apply).
pub fn auto_reply_problems(config: &Config) -> Vec<String> {
    let wanted: Vec<(usize, &crate::config::AutoReply)> = config
        .categories
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.auto_reply.as_ref().map(|a| (i, a)))
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let (templates, _) = Templates::load(&config.templates_dir);
    let mut problems = Vec::new();
    for (i, auto) in wanted {
        let key = format!("category[{i}].auto_reply.template");
        match templates.get(&auto.template) {
            None => problems.push(format!("{key}: no template {:?} in {}", auto.template, templates.dir.display())),
            Some(t) if !t.automatic => problems.push(format!(
                "{key}: template {:?} is not marked automatic = true (it must be neutral in gender)",
                t.id
            )),
            Some(t) => {
                for e in crate::outbound::render::check(t, &[]) {
                    problems.push(format!("{key}: {e}"));
                }
            }
        }
    }
    problems
}
