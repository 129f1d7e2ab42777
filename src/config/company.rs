//! The company as configured, for questions about addresses: which forward
//! paths are ours (jobs addresses, their aliases, position aliases and
//! plus-forms `jobs+anything@…`), which senders are colleagues, which
//! positions a subsidiary has.
//!
//! The listener accepts a recipient only if [`Company::lookup`] finds it;
//! everything else is refused, whatever the trick: addresses are parsed by
//! [`crate::mail::address::Address`], which refuses quoted local parts holding `@`,
//! `%` and `!` relay hacks, trailing dots and overlong parts. Lookups ignore
//! case. Pure: built once from the config, no I/O.

use std::collections::HashMap;

use crate::config::{AutoReply, Category, Config, Position};
use crate::mail::address::Address;

/// Where an accepted recipient leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub subsidiary: String,
    pub position: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Company {
    /// Exact addresses (jobs addresses, aliases, position aliases), by lowercased key.
    exact: HashMap<String, Target>,
    /// Mailboxes whose plus-forms are accepted: jobs addresses and subsidiary aliases.
    plus_bases: HashMap<String, Target>,
    /// The company's own domains, lowercased: senders there are colleagues.
    company_domains: Vec<String>,
    positions: Vec<Position>,
    /// Subsidiary ids in config order.
    subsidiaries: Vec<String>,
    /// Jobs-address domains and their subsidiary: where VERP bounces come back.
    bounce_domains: Vec<(String, String)>,
    categories: Vec<Category>,
    /// `[acknowledgements] max_per_hour`: all categories and addresses together.
    acknowledgements_per_hour: u32,
    /// The languages the templates have (`Config::template_languages`):
    /// the only ones a candidate's detected language may be.
    template_languages: Vec<String>,
    /// `[[document_category]]` in config order, for [`Company::classify`].
    document_categories: Vec<crate::config::DocumentCategory>,
    /// `[documents] default_category`.
    default_document_category: String,
}

impl Company {
    /// The languages the templates have, lowercased and sorted.
    pub fn template_languages(&self) -> &[String] {
        &self.template_languages
    }

    /// The same company with these template languages (tests, tools).
    pub fn with_template_languages(mut self, languages: &[&str]) -> Company {
        self.template_languages = languages.iter().map(|l| l.to_lowercase()).collect();
        self
    }

    pub fn from_config(config: &Config) -> Company {
        let mut r = Company {
            positions: config.positions.clone(),
            categories: config.categories.clone(),
            acknowledgements_per_hour: config.acknowledgements.max_per_hour,
            template_languages: config.template_languages.clone(),
            document_categories: config.document_categories.clone(),
            default_document_category: config.documents.default_category.clone(),
            ..Company::default()
        };
        for s in &config.subsidiaries {
            r.subsidiaries.push(s.id.clone());
            let domain = s.jobs_address.domain().to_string();
            if !r.bounce_domains.iter().any(|(d, _)| *d == domain) {
                r.bounce_domains.push((domain, s.id.clone()));
            }
            for d in &s.domains {
                if !r.company_domains.contains(d) {
                    r.company_domains.push(d.clone());
                }
            }
        }
        for s in &config.subsidiaries {
            let target = Target {
                subsidiary: s.id.clone(),
                position: None,
            };
            for a in std::iter::once(&s.jobs_address).chain(&s.aliases) {
                r.exact.insert(a.key(), target.clone());
                if a.plus_split().1.is_none() {
                    r.plus_bases.insert(a.key(), target.clone());
                }
            }
        }
        for p in &config.positions {
            if let Some(alias) = &p.alias {
                r.exact.insert(
                    alias.key(),
                    Target {
                        subsidiary: p.subsidiary.clone(),
                        position: Some(p.id.clone()),
                    },
                );
            }
        }
        r
    }

    /// The category an incoming attachment is filed under: the first
    /// `[[document_category]]` with a word of `names` in the file name (any
    /// case; a word of four letters or more anywhere, so that German
    /// compounds match: `vertrag` files `Arbeitsvertrag.pdf`; a shorter one
    /// only at the start of a word: `cv` files `CV_Anna.pdf`, not
    /// `recv.txt`) or with its content type in `types`; else the default.
    /// A recruiter can change it later. Pure.
    pub fn classify(&self, filename: &str, content_type: &str) -> &str {
        let words = |s: &str| {
            let spaced: String = s
                .to_lowercase()
                .chars()
                .map(|c| if c.is_alphanumeric() { c } else { ' ' })
                .collect();
            format!(
                " {} ",
                spaced.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        };
        let name = words(filename);
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        self.document_categories
            .iter()
            .find(|c| {
                c.names.iter().any(|n| {
                    let n = words(n);
                    let word = n.trim();
                    !word.is_empty()
                        && if word.chars().count() >= 4 {
                            name.contains(word)
                        } else {
                            name.contains(n.trim_end())
                        }
                }) || c.types.contains(&mime)
            })
            .map(|c| c.id.as_str())
            .unwrap_or(if self.default_document_category.is_empty() {
                crate::config::UNSORTED
            } else {
                &self.default_document_category
            })
    }

    /// True when the address is in one of the company's domains.
    pub fn is_colleague(&self, address: &str) -> bool {
        address.rsplit_once('@').is_some_and(|(_, domain)| {
            self.company_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(domain))
        })
    }

    /// The plus-tag of an address whose base is a jobs address or subsidiary
    /// alias (`jobs+TAG@…` → `TAG`), with the subsidiary it belongs to.
    pub fn plus_tag<'a>(&self, address: &'a str) -> Option<(&'a str, &Target)> {
        let (local, domain) = address.rsplit_once('@')?;
        let (base, tag) = local.split_once('+')?;
        let key = format!("{}@{}", base.to_lowercase(), domain.to_lowercase());
        let target = self.plus_bases.get(&key)?;
        (!tag.is_empty()).then_some((tag, target))
    }

    /// The category of a position and its acknowledgement settings, if any.
    pub fn auto_reply_of_position(&self, position: &str) -> (Option<&str>, Option<&AutoReply>) {
        let Some(p) = self.positions.iter().find(|p| p.id == position) else {
            return (None, None);
        };
        let category = self.categories.iter().find(|c| c.id == p.category);
        (
            Some(p.category.as_str()),
            category.and_then(|c| c.auto_reply.as_ref()),
        )
    }

    /// The most acknowledgements decided in any hour, all addresses together.
    pub fn acknowledgements_per_hour(&self) -> u32 {
        self.acknowledgements_per_hour
    }

    /// The first configured subsidiary: where mail goes when nothing else says.
    pub fn first_subsidiary(&self) -> Option<&str> {
        self.subsidiaries.first().map(String::as_str)
    }

    /// The positions of a subsidiary, in config order.
    pub fn positions_of<'a>(
        &'a self,
        subsidiary: &'a str,
    ) -> impl Iterator<Item = &'a Position> + 'a {
        self.positions
            .iter()
            .filter(move |p| p.subsidiary == subsidiary)
    }

    /// The plus-tag of a VERP bounce address `bounce+<item>.<mac>@<jobs
    /// domain>` (or `bounce+<item>@…`, the format before MACs), unchecked:
    /// `crate::matcher::token::TokenKey::check_verp_tag` says what it proves.
    pub fn bounce_tag<'a>(&self, address: &'a str) -> Option<&'a str> {
        let (local, domain) = address.rsplit_once('@')?;
        let (base, tag) = local.split_once('+')?;
        let (item, mac) = tag.split_once('.').unwrap_or((tag, "a"));
        if !base.eq_ignore_ascii_case("bounce")
            || item.is_empty()
            || item.len() > 18
            || !item.bytes().all(|b| b.is_ascii_digit())
            || mac.is_empty()
            || mac.len() > 32
            || !mac.bytes().all(|b| b.is_ascii_alphanumeric())
            || !self
                .bounce_domains
                .iter()
                .any(|(d, _)| d.eq_ignore_ascii_case(domain))
        {
            return None;
        }
        Some(tag)
    }

    /// The target of a forward path as the client sent it, or `None` to refuse it.
    pub fn lookup(&self, forward_path: &str) -> Option<Target> {
        let address = Address::parse(forward_path).ok()?;
        if self.bounce_tag(forward_path).is_some() {
            let subsidiary = self
                .bounce_domains
                .iter()
                .find(|(d, _)| d == address.domain())
                .map(|(_, s)| s.clone())?;
            return Some(Target {
                subsidiary,
                position: None,
            });
        }
        if let Some(t) = self.exact.get(&address.key()) {
            return Some(t.clone());
        }
        let (base, tag) = address.plus_split();
        let tag = tag?;
        if tag.is_empty() {
            return None;
        }
        let key = format!("{}@{}", base.to_lowercase(), address.domain());
        self.plus_bases.get(&key).cloned()
    }
}

/// A one-subsidiary company for tests: `jobs@acme.example`, colleagues
/// in `acme-group.example`.
#[cfg(test)]
pub fn test_company() -> Company {
    let config = crate::config::parse(
        "[[subsidiary]]\nid = \"acme\"\njobs_address = \"jobs@acme.example\"\ndomains = [\"acme-group.example\"]\n",
        std::path::Path::new("t.toml"),
    )
    .expect("test config");
    Company::from_config(&config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn recipients() -> Company {
        let config = crate::config::parse(
            r#"
[[subsidiary]]
id = "acme"
jobs_address = "jobs@acme.example"
aliases = ["karriere@acme.example"]
[[category]]
id = "eng"
[[position]]
id = "backend"
title = "Backend"
subsidiary = "acme"
category = "eng"
alias = "jobs+backend@acme.example"
"#,
            Path::new("t.toml"),
        )
        .unwrap();
        Company::from_config(&config)
    }

    #[test]
    fn accepts_configured_addresses_in_any_case() {
        let r = recipients();
        for ok in [
            "jobs@acme.example",
            "JOBS@ACME.EXAMPLE",
            "karriere@Acme.Example",
            "jobs+anything@acme.example",
            "karriere+x.y-z@acme.example",
        ] {
            assert_eq!(r.lookup(ok).map(|t| t.position), Some(None), "{ok}");
        }
        assert_eq!(
            r.lookup("Jobs+Backend@acme.example")
                .and_then(|t| t.position),
            Some("backend".to_string())
        );
    }

    #[test]
    fn colleagues_and_plus_tags() {
        let r = recipients();
        assert!(r.is_colleague("lisa@ACME.example"));
        assert!(!r.is_colleague("erika@example.org"));
        assert_eq!(
            r.plus_tag("Jobs+12.abc@acme.example").map(|(t, _)| t),
            Some("12.abc")
        );
        assert_eq!(
            r.plus_tag("karriere+x@acme.example")
                .map(|(_, s)| s.subsidiary.as_str()),
            Some("acme")
        );
        assert_eq!(r.plus_tag("other+x@acme.example"), None);
        assert_eq!(r.positions_of("acme").count(), 1);
        assert_eq!(r.bounce_tag("bounce+42@acme.example"), Some("42"));
        assert_eq!(r.bounce_tag("BOUNCE+42@ACME.example"), Some("42"));
        assert_eq!(
            r.bounce_tag("bounce+42.abc7xyz@acme.example"),
            Some("42.abc7xyz")
        );
        assert_eq!(r.bounce_tag("bounce+42x@acme.example"), None);
        assert_eq!(r.bounce_tag("bounce+42.@acme.example"), None);
        assert_eq!(r.bounce_tag("bounce+42.a-b@acme.example"), None);
        assert_eq!(r.bounce_tag("bounce+42@elsewhere.example"), None);
        assert!(
            r.lookup("bounce+7@acme.example").is_some(),
            "bounces come back in"
        );
        assert!(r.lookup("bounce@acme.example").is_none());
    }

    #[test]
    fn refuses_everything_else() {
        let r = recipients();
        for bad in [
            "",
            "jobs",
            "someone@acme.example",
            "jobs@other.example",
            "jobs@acme.example.",
            "jobs%other.example@acme.example",
            "other.example!jobs@acme.example",
            "jobs@other.example@acme.example",
            "a@b@acme.example",
            "jobs+@acme.example",
            "jobs+x%y@acme.example",
            "jobsx@acme.example",
            "jobs@acme.example\r\nRCPT TO:<x@y>",
            "jobs@xn--acme.example",
        ] {
            assert_eq!(r.lookup(bad), None, "{bad:?}");
        }
        let long = format!("jobs+{}@acme.example", "a".repeat(200));
        assert_eq!(r.lookup(&long), None);
    }

    #[test]
    fn attachments_are_pre_classified_by_a_word_of_their_name_or_their_type() {
        let config = crate::config::parse(
            r#"
[[subsidiary]]
id = "acme"
jobs_address = "jobs@acme.example"
[documents]
default_category = "other"
[[document_category]]
id = "cv"
names = ["cv", "Lebenslauf", "resume", "curriculum"]
[[document_category]]
id = "cover-letter"
names = ["cover letter", "anschreiben"]
[[document_category]]
id = "photo"
types = ["image/jpeg"]
[[document_category]]
id = "other"
"#,
            Path::new("t.toml"),
        )
        .expect("config");
        let c = Company::from_config(&config);
        for (name, ctype, want) in [
            ("CV_Anna_Berger.pdf", "application/pdf", "cv"),
            ("lebenslauf-2026.docx", "application/octet-stream", "cv"),
            ("Anna Berger - Resume.PDF", "application/pdf", "cv"),
            ("Curriculum Vitae.pdf", "application/pdf", "cv"),
            ("recv.txt", "text/plain", "other"),
            ("My Cover Letter.pdf", "application/pdf", "cover-letter"),
            ("Anschreiben.pdf", "application/pdf", "cover-letter"),
            ("me.jpg", "image/jpeg; name=me.jpg", "photo"),
            ("Zeugnis.pdf", "application/pdf", "other"),
            (
                "Bewerbungsanschreiben.pdf",
                "application/pdf",
                "cover-letter",
            ),
            ("MeinLebenslauf.pdf", "application/pdf", "cv"),
        ] {
            assert_eq!(c.classify(name, ctype), want, "{name}");
        }
        // Without rules, everything is unsorted.
        assert_eq!(
            test_company().classify("CV.pdf", "application/pdf"),
            "unsorted"
        );
    }
}
