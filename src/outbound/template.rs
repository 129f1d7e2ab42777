//! Template files: one TOML file per template in the templates directory,
//! with language variants and files to attach (see `docs/templates.md`).
//!
//! Loads and checks them, every problem at once. Reads the templates
//! directory and nothing else; rendering is `crate::outbound::render`'s job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One language variant of a template.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// Files for this variant instead of the template's.
    pub attachments: Option<Vec<String>>,
}

/// The keys of a template file besides its language tables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateHead {
    #[serde(default)]
    description: String,
    default_language: String,
    #[serde(default)]
    automatic: bool,
    #[serde(default)]
    attachments: Vec<String>,
}

/// Splits a template file into its head and its language variants (every
/// table is a variant; any other unknown key is an error).
fn parse_template(text: &str) -> Result<(TemplateHead, BTreeMap<String, Variant>), String> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut variants = BTreeMap::new();
    let languages: Vec<String> = table
        .iter()
        .filter(|(_, v)| v.is_table())
        .map(|(k, _)| k.clone())
        .collect();
    for language in languages {
        let Some(value) = table.remove(&language) else {
            continue;
        };
        let variant: Variant = value
            .try_into()
            .map_err(|e: toml::de::Error| format!("[{language}]: {}", e.message()))?;
        if !(2..=8).contains(&language.len())
            || !language
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!(
                "[{language}] is not a language tag such as [de] or [en]"
            ));
        }
        variants.insert(language, variant);
    }
    let head: TemplateHead = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())?;
    Ok((head, variants))
}

#[derive(Debug, Clone)]
pub struct Template {
    pub id: String,
    pub path: PathBuf,
    pub description: String,
    pub default_language: String,
    /// May be sent automatically: every gender form needs a neutral wording.
    pub automatic: bool,
    /// Files sent with every variant that names none of its own, relative
    /// to the templates directory.
    pub attachments: Vec<String>,
    /// By language tag (`de`, `en`, `fr`, …).
    pub variants: BTreeMap<String, Variant>,
}

impl Template {
    /// The files a variant sends.
    pub fn attachments_of<'a>(&'a self, language: &str) -> &'a [String] {
        self.variants
            .get(language)
            .and_then(|v| v.attachments.as_deref())
            .unwrap_or(&self.attachments)
    }
}

/// A problem with a template, for `template check`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TemplateError {
    pub template: String,
    /// The language variant, when the problem is in one.
    pub language: Option<String>,
    pub message: String,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.language {
            Some(l) => write!(f, "{} [{l}]: {}", self.template, self.message),
            None => write!(f, "{}: {}", self.template, self.message),
        }
    }
}

/// All templates of a directory.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    pub dir: PathBuf,
    pub templates: BTreeMap<String, Template>,
}

/// A file to attach, read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAttachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl Templates {
    /// Reads every `*.toml` in `dir`. Files that do not parse are reported
    /// and left out; a missing directory is an empty set (and an error).
    pub fn load(dir: &Path) -> (Templates, Vec<TemplateError>) {
        let mut set = Templates {
            dir: dir.to_path_buf(),
            templates: BTreeMap::new(),
        };
        let mut errors = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                errors.push(TemplateError {
                    template: dir.display().to_string(),
                    language: None,
                    message: format!("cannot read the templates directory: {e}"),
                });
                return (set, errors);
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let id = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| parse_template(&text));
            match parsed {
                Ok((head, variants)) => {
                    set.templates.insert(
                        id.clone(),
                        Template {
                            id,
                            path,
                            description: head.description,
                            default_language: head.default_language,
                            automatic: head.automatic,
                            attachments: head.attachments,
                            variants,
                        },
                    );
                }
                Err(e) => errors.push(TemplateError {
                    template: id,
                    language: None,
                    message: format!("{}: {}", path.display(), e.trim()),
                }),
            }
        }
        (set, errors)
    }

    pub fn get(&self, id: &str) -> Option<&Template> {
        self.templates.get(id)
    }

    /// Reads a template file to attach; names are relative to the templates
    /// directory and may not leave it.
    pub fn read_file(&self, name: &str) -> Result<FileAttachment, String> {
        let relative = Path::new(name);
        if relative.is_absolute()
            || relative
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(format!(
                "{name:?}: must be a path inside the templates directory"
            ));
        }
        let path = self.dir.join(relative);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let filename = relative
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.to_string());
        Ok(FileAttachment {
            content_type: crate::mail::mime::content_type_of(&filename).to_string(),
            filename,
            bytes,
        })
    }

    /// Problems only the files show: attachments that are missing or
    /// unreadable.
    pub fn check_files(&self, template: &Template) -> Vec<TemplateError> {
        let mut errors = Vec::new();
        let mut names: Vec<(Option<&str>, &String)> =
            template.attachments.iter().map(|a| (None, a)).collect();
        for (lang, v) in &template.variants {
            for a in v.attachments.iter().flatten() {
                names.push((Some(lang.as_str()), a));
            }
        }
        for (lang, name) in names {
            if let Err(e) = self.read_file(name) {
                errors.push(TemplateError {
                    template: template.id.clone(),
                    language: lang.map(str::to_string),
                    message: format!("attachment {e}"),
                });
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_reports_and_guards_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ok.toml"),
            "default_language = \"de\"\nattachments = [\"files/a.pdf\"]\n[de]\nsubject = \"S\"\ntext = \"T\"\n[fr]\nsubject = \"S\"\ntext = \"T\"\nattachments = [\"files/b.pdf\"]\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("broken.toml"),
            "default_language = \"de\"\ncolour = 1\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("files")).unwrap();
        std::fs::write(dir.path().join("files/a.pdf"), b"%PDF-1.4").unwrap();
        let (set, errors) = Templates::load(dir.path());
        assert_eq!(set.templates.keys().collect::<Vec<_>>(), vec!["ok"]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].template, "broken");
        let t = set.get("ok").unwrap();
        assert_eq!(t.attachments_of("de"), ["files/a.pdf".to_string()]);
        assert_eq!(t.attachments_of("fr"), ["files/b.pdf".to_string()]);
        let file_errors = set.check_files(t);
        assert_eq!(file_errors.len(), 1, "{file_errors:?}");
        assert_eq!(file_errors[0].language.as_deref(), Some("fr"));
        assert!(set.read_file("../secret").is_err());
        assert!(set.read_file("/etc/passwd").is_err());
        assert_eq!(
            set.read_file("files/a.pdf").unwrap().content_type,
            "application/pdf"
        );
    }
}
