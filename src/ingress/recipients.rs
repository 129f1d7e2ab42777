//! Which forward paths the listener accepts: the configured jobs addresses,
//! their aliases, position aliases and plus-forms (`jobs+anything@…`).
//!
//! Everything else is refused, whatever the trick: addresses are parsed by
//! [`crate::address::Address`], which refuses quoted local parts holding `@`,
//! `%` and `!` relay hacks, trailing dots and overlong parts. Lookups ignore
//! case. No I/O: built once from the config.

use std::collections::HashMap;

use crate::address::Address;
use crate::config::Config;

/// Where an accepted recipient leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub subsidiary: String,
    pub position: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Recipients {
    /// Exact addresses (jobs addresses, aliases, position aliases), by lowercased key.
    exact: HashMap<String, Target>,
    /// Mailboxes whose plus-forms are accepted: jobs addresses and subsidiary aliases.
    plus_bases: HashMap<String, Target>,
}

impl Recipients {
    pub fn from_config(config: &Config) -> Recipients {
        let mut r = Recipients::default();
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

    /// The target of a forward path as the client sent it, or `None` to refuse it.
    pub fn lookup(&self, forward_path: &str) -> Option<Target> {
        let address = Address::parse(forward_path).ok()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn recipients() -> Recipients {
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
        Recipients::from_config(&config)
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
}
