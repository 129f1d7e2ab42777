//! Mail address syntax: strict parsing and normalisation of `local@domain`.
//!
//! Used for configured addresses and for the forward paths the listener is
//! asked to accept. Deliberately stricter than RFC 5321: no quoted local
//! parts, no `%` or `!` (old relay hacks), no source routes, no trailing dot,
//! bounded lengths. This module does no I/O and knows nothing of the config.

use std::fmt;

/// Longest local part RFC 5321 allows.
pub const MAX_LOCAL_LEN: usize = 64;
/// Longest domain RFC 5321 allows.
pub const MAX_DOMAIN_LEN: usize = 253;

/// A validated address. The domain is lowercased; the local part keeps its
/// case (compare with [`Address::same_mailbox`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    local: String,
    domain: String,
}

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressError {
    Empty,
    NoAt,
    SeveralAt,
    LocalPart,
    Domain,
    TooLong,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressError::Empty => "empty address",
            AddressError::NoAt => "no @ in address",
            AddressError::SeveralAt => "more than one @ in address",
            AddressError::LocalPart => "invalid local part (letters, digits and . _ - + = only)",
            AddressError::Domain => "invalid domain",
            AddressError::TooLong => "address too long",
        })
    }
}

impl Address {
    /// Parses `local@domain` strictly (see the module comment).
    pub fn parse(input: &str) -> Result<Address, AddressError> {
        if input.is_empty() {
            return Err(AddressError::Empty);
        }
        let mut parts = input.split('@');
        let (Some(local), Some(domain)) = (parts.next(), parts.next()) else {
            return Err(AddressError::NoAt);
        };
        if parts.next().is_some() {
            return Err(AddressError::SeveralAt);
        }
        if local.len() > MAX_LOCAL_LEN || domain.len() > MAX_DOMAIN_LEN {
            return Err(AddressError::TooLong);
        }
        if !valid_local(local) {
            return Err(AddressError::LocalPart);
        }
        if !valid_domain(domain) {
            return Err(AddressError::Domain);
        }
        Ok(Address {
            local: local.to_string(),
            domain: domain.to_lowercase(),
        })
    }

    pub fn local(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The local part split at the first `+`: `jobs+backend` → (`jobs`, Some(`backend`)).
    pub fn plus_split(&self) -> (&str, Option<&str>) {
        match self.local.split_once('+') {
            Some((base, tag)) => (base, Some(tag)),
            None => (&self.local, None),
        }
    }

    /// Case-insensitive comparison of the whole address, as mail providers do
    /// in practice (and as Postfix's lookups do).
    pub fn same_mailbox(&self, other: &Address) -> bool {
        self.domain == other.domain && self.local.eq_ignore_ascii_case(&other.local)
    }

    /// A lookup key: lowercased local part and domain.
    pub fn key(&self) -> String {
        format!("{}@{}", self.local.to_lowercase(), self.domain)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// Letters, digits and `. _ - + =`; no leading, trailing or double dot.
fn valid_local(local: &str) -> bool {
    !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'='))
}

/// Dot-separated labels of letters, digits and hyphens (non-ASCII letters
/// allowed for internationalised domains); at least two labels; no empty
/// label, so no trailing dot.
/// A domain as a mail address may carry it: two labels or more, each 1–63
/// letters, digits or `-`, never starting or ending with `-`.
pub fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

/// `Local@Domain.Example` → `Local@domain.example`.
pub fn normalise(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => address.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_plus_forms() {
        let a = Address::parse("Jobs+Backend@ACME.example").unwrap();
        assert_eq!(a.domain(), "acme.example");
        assert_eq!(a.plus_split(), ("Jobs", Some("Backend")));
        assert_eq!(a.key(), "jobs+backend@acme.example");
        assert!(a.same_mailbox(&Address::parse("jobs+backend@acme.EXAMPLE").unwrap()));
    }

    #[test]
    fn refuses_relay_tricks_and_junk() {
        for (input, expected) in [
            ("", AddressError::Empty),
            ("jobs", AddressError::NoAt),
            ("a@b@acme.example", AddressError::SeveralAt),
            ("jobs%other.example@acme.example", AddressError::LocalPart),
            ("other.example!jobs@acme.example", AddressError::LocalPart),
            ("\"a@b\"@acme.example", AddressError::SeveralAt),
            ("\"jobs\"@acme.example", AddressError::LocalPart),
            ("jobs@acme.example.", AddressError::Domain),
            ("jobs@acme", AddressError::Domain),
            ("jobs@-acme.example", AddressError::Domain),
            ("jobs@acme..example", AddressError::Domain),
            (".jobs@acme.example", AddressError::LocalPart),
            ("jo..bs@acme.example", AddressError::LocalPart),
            ("jobs @acme.example", AddressError::LocalPart),
            ("jobs@acme.example\r\n", AddressError::Domain),
            ("@relay.example:jobs@acme.example", AddressError::SeveralAt),
        ] {
            assert_eq!(Address::parse(input), Err(expected), "{input:?}");
        }
        let long_local = format!("{}@acme.example", "a".repeat(65));
        assert_eq!(Address::parse(&long_local), Err(AddressError::TooLong));
    }
}
