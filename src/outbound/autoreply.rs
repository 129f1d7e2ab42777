//! Automatic acknowledgements of applications (RFC 3834, and only to an
//! author SPF, DKIM or DMARC proves): whether one goes
//! out, every "no" a rule with a name.
//!
//! The decision is taken where the application is made, in the same
//! transaction (the listener's writer for e-mail applications, `application
//! add` for the form), and recorded on the application as `pending` or
//! `suppressed` with its rule; suppression never touches the inbound mail.
//! The worker of [`super::acknowledgements`] turns `pending` into a mail.
//! Pure: no I/O, no clock; every count the rates need is passed in.

use serde::Serialize;

use crate::config::AutoReply;
use crate::config::company::Company;
use crate::mail::parsed::{Authentication, ParsedHeaders};
use crate::store::filing::AcknowledgementCounts;

/// Why no acknowledgement went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// The category does not acknowledge applications from this source.
    Disabled,
    /// A general application: no position, so no category.
    NoCategory,
    NullSender,
    DeliveryReport,
    AutoSubmitted,
    Precedence,
    ListHeader,
    AutoResponseSuppress,
    /// MAILER-DAEMON, postmaster, owner-*, *-request, noreply and the like.
    RobotSender,
    /// A colleague, or one of our own addresses.
    CompanySender,
    /// The mail carries our loop marker (`X-Loop: <a jobs address>`).
    LoopMarker,
    /// This candidate got an acknowledgement for this category within the period.
    AlreadyAcknowledged,
    /// Too many automatic replies to this address in the last hour.
    RateLimit,
    /// The author's address is not proven: no DMARC pass for its domain,
    /// no aligned DKIM signature or SPF pass (and no colleague or company
    /// group, itself proven, vouching for a forwarded author). Anyone
    /// could have written it, so an answer would go to a stranger's victim.
    Unauthenticated,
    /// Too many acknowledgements in the last hour, all addresses together
    /// (`[acknowledgements] max_per_hour`).
    HourlyLimit,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Disabled => "disabled",
            Rule::NoCategory => "no-category",
            Rule::NullSender => "null-sender",
            Rule::DeliveryReport => "delivery-report",
            Rule::AutoSubmitted => "auto-submitted",
            Rule::Precedence => "precedence",
            Rule::ListHeader => "list-header",
            Rule::AutoResponseSuppress => "auto-response-suppress",
            Rule::RobotSender => "robot-sender",
            Rule::CompanySender => "company-sender",
            Rule::LoopMarker => "loop-marker",
            Rule::AlreadyAcknowledged => "already-acknowledged",
            Rule::RateLimit => "rate-limit",
            Rule::Unauthenticated => "unauthenticated",
            Rule::HourlyLimit => "hourly-limit",
        }
    }
}

/// Local parts that are programs, not people.
fn robot_local(local: &str) -> bool {
    let l = local.to_ascii_lowercase();
    let squashed: String = l.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    l == "mailer-daemon"
        || l == "postmaster"
        || l.starts_with("owner-")
        || l.ends_with("-request")
        || l.starts_with("bounce")
        || [
            "noreply",
            "donotreply",
            "noresponse",
            "autoreply",
            "autoresponder",
            "daemon",
        ]
        .iter()
        .any(|r| squashed.starts_with(r))
}

/// The RFC 3834, loop and authentication rules for a mail that made an
/// application; `None` when an acknowledgement may go out. `author` is the
/// candidate's address; `authentication` the verdicts on receipt (`None`:
/// not checked, `[authentication] verify = false`).
pub fn check_mail(
    envelope_sender: &str,
    h: &ParsedHeaders,
    author: &str,
    dir: &Company,
    authentication: Option<&Authentication>,
) -> Option<(Rule, String)> {
    if envelope_sender.is_empty() {
        return Some((
            Rule::NullSender,
            "the null sender <> never gets an automatic reply".into(),
        ));
    }
    if h.delivery_report {
        return Some((Rule::DeliveryReport, "a delivery status report".into()));
    }
    if let Some(value) = h.auto_submitted.as_deref()
        && !value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("no")
    {
        return Some((Rule::AutoSubmitted, format!("Auto-Submitted: {value}")));
    }
    if let Some(value) = h.precedence.as_deref() {
        let token = value
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if ["bulk", "junk", "list"].contains(&token.as_str()) {
            return Some((Rule::Precedence, format!("Precedence: {value}")));
        }
    }
    if h.list || h.list_id.is_some() {
        return Some((
            Rule::ListHeader,
            "a mailing list's mail (List-* headers)".into(),
        ));
    }
    if h.auto_response_suppress {
        return Some((
            Rule::AutoResponseSuppress,
            "X-Auto-Response-Suppress asks for none".into(),
        ));
    }
    // The author, whom the acknowledgement would go to; never the envelope
    // sender, which a redirecting company server rewrites to its own (SRS).
    let local = author.rsplit_once('@').map(|(l, _)| l).unwrap_or(author);
    if robot_local(local) {
        return Some((
            Rule::RobotSender,
            format!("{author} is a program's address"),
        ));
    }
    if dir.is_colleague(author) || dir.lookup(author).is_some() {
        return Some((
            Rule::CompanySender,
            format!("{author} is the company's own"),
        ));
    }
    if let Some(marker) = h.x_loop.iter().find(|v| {
        v.split_whitespace()
            .map(|w| w.trim_matches(|c| c == '<' || c == '>'))
            .any(|w| dir.lookup(w).is_some() || dir.is_colleague(w))
    }) {
        return Some((Rule::LoopMarker, format!("X-Loop: {marker}")));
    }
    if let Some(a) = authentication {
        // A forward or a group rewrite: the colleague or the company's
        // group vouches for the author it names, if it is itself proven.
        let voucher = h
            .from
            .as_ref()
            .map(|f| f.address.as_str())
            .filter(|f| !f.eq_ignore_ascii_case(author) && dir.is_colleague(f));
        let proven = |who: &str| crate::matcher::author_proven(a, who, dir);
        if !proven(author) && !voucher.is_some_and(proven) {
            return Some((
                Rule::Unauthenticated,
                format!("{author} is not authenticated: {}", a.summary()),
            ));
        }
    }
    None
}

/// Everything the acknowledgement of one application is decided on.
#[derive(Debug, Clone)]
pub struct Application<'a> {
    /// `form` or `email`.
    pub source: &'a str,
    /// `None`: a general application, without a position.
    pub position: Option<&'a str>,
    /// The position's category and its acknowledgement settings.
    pub category: Option<&'a str>,
    pub settings: Option<&'a AutoReply>,
    /// What [`check_mail`] said of the mail that made the application.
    pub mail_rule: Option<(Rule, String)>,
    /// The candidate's address the acknowledgement would go to.
    pub address: &'a str,
    /// Acknowledgements already decided to go out (see
    /// [`AcknowledgementCounts`]), counted over `settings.period`.
    pub counts: AcknowledgementCounts,
    /// `[acknowledgements] max_per_hour`, all addresses together.
    pub hourly_limit: u32,
}

/// Whether an application gets an acknowledgement: `None` when one goes
/// out, else the rule that says no and why. The category rules come first
/// (no category, disabled for this source), then the mail's own
/// ([`check_mail`]), then the rates: one per candidate and category in the
/// period, the hourly limit over everyone, the hourly limit per address.
/// Pure.
pub fn decide(a: &Application<'_>) -> Option<(Rule, String)> {
    let on = a
        .settings
        .is_some_and(|s| if a.source == "form" { s.form } else { s.email });
    if a.position.is_none() {
        return Some((
            Rule::NoCategory,
            "a general application has no category".into(),
        ));
    }
    let settings = match a.settings {
        Some(s) if on => s,
        _ => {
            return Some((
                Rule::Disabled,
                format!(
                    "category {} does not acknowledge {} applications",
                    a.category.unwrap_or("?"),
                    a.source
                ),
            ));
        }
    };
    if let Some(rule) = &a.mail_rule {
        return Some(rule.clone());
    }
    if a.counts.in_period > 0 {
        Some((
            Rule::AlreadyAcknowledged,
            format!(
                "acknowledged within the last {}",
                humantime::format_duration(settings.period)
            ),
        ))
    } else if a.counts.last_hour >= i64::from(a.hourly_limit) {
        Some((
            Rule::HourlyLimit,
            format!(
                "already {} acknowledgements in the last hour, the limit of [acknowledgements] max_per_hour",
                a.counts.last_hour
            ),
        ))
    } else if a.counts.to_address_last_hour >= i64::from(settings.max_per_hour) {
        Some((
            Rule::RateLimit,
            format!(
                "already {} automatic replies to {} in the last hour",
                a.counts.to_address_last_hour, a.address
            ),
        ))
    } else {
        None
    }
}

/// A candidate's name as automatic mail may write it. It came from a
/// display name that anyone can write, so only a name that looks like one
/// is kept: letters of any script, spaces, `-`, `'`, `.`, at most 4 words
/// and 40 characters; anything else becomes empty (the template's neutral
/// greeting), never raw display text.
pub fn name_for_automatic_mail(name: &str) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    let joined = words.join(" ");
    let looks_like_a_name = joined
        .chars()
        .all(|c| c.is_alphabetic() || matches!(c, ' ' | '-' | '\'' | '’' | '.'))
        && joined.chars().any(char::is_alphabetic);
    if looks_like_a_name && words.len() <= 4 && joined.chars().count() <= 40 {
        joined
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::company::test_company as directory;

    #[test]
    fn every_rule_of_the_mail() {
        let dir = directory();
        let clean = ParsedHeaders::default();
        let person = "erika@example.org";
        let srs = "SRS0=ab12=XY=example.org=erika@acme.example";
        assert_eq!(
            check_mail(srs, &clean, person, &dir, None),
            None,
            "a redirect's rewritten envelope is no reason"
        );
        let with = |f: &dyn Fn(&mut ParsedHeaders)| {
            let mut h = ParsedHeaders::default();
            f(&mut h);
            h
        };
        let cases: Vec<(&str, ParsedHeaders, &str, Rule)> = vec![
            ("", clean.clone(), person, Rule::NullSender),
            (
                person,
                with(&|h| h.delivery_report = true),
                person,
                Rule::DeliveryReport,
            ),
            (
                person,
                with(&|h| h.auto_submitted = Some("auto-replied".into())),
                person,
                Rule::AutoSubmitted,
            ),
            (
                person,
                with(&|h| h.precedence = Some("bulk".into())),
                person,
                Rule::Precedence,
            ),
            (
                person,
                with(&|h| h.precedence = Some("junk".into())),
                person,
                Rule::Precedence,
            ),
            (
                person,
                with(&|h| h.list_id = Some("<jobs.lists.example>".into())),
                person,
                Rule::ListHeader,
            ),
            (person, with(&|h| h.list = true), person, Rule::ListHeader),
            (
                person,
                with(&|h| h.auto_response_suppress = true),
                person,
                Rule::AutoResponseSuppress,
            ),
            (
                person,
                clean.clone(),
                "noreply@shop.example",
                Rule::RobotSender,
            ),
            (
                person,
                clean.clone(),
                "MAILER-DAEMON@mx.example",
                Rule::RobotSender,
            ),
            (
                person,
                clean.clone(),
                "jobs-request@lists.example",
                Rule::RobotSender,
            ),
            (
                person,
                clean.clone(),
                "lisa@acme-group.example",
                Rule::CompanySender,
            ),
            (
                person,
                clean.clone(),
                "jobs+x@acme.example",
                Rule::CompanySender,
            ),
            (
                person,
                with(&|h| h.x_loop = vec!["jobs@acme.example".into()]),
                person,
                Rule::LoopMarker,
            ),
        ];
        for (envelope, h, author, rule) in cases {
            let got = check_mail(envelope, &h, author, &dir, None).map(|(r, _)| r);
            assert_eq!(got, Some(rule), "{envelope:?} {author:?} {h:?}");
        }
        let no = with(&|h| h.auto_submitted = Some("no".into()));
        assert_eq!(
            check_mail(person, &no, person, &dir, None),
            None,
            "Auto-Submitted: no is a person"
        );
        let foreign_loop = with(&|h| h.x_loop = vec!["list@elsewhere.example".into()]);
        assert_eq!(check_mail(person, &foreign_loop, person, &dir, None), None);
    }

    fn verdicts(
        spf: (&str, &str),
        dkim: &[(&str, &str)],
        dmarc: &str,
        from: &str,
    ) -> Authentication {
        Authentication {
            spf: spf.0.into(),
            spf_domain: spf.1.into(),
            dkim: dkim
                .iter()
                .map(|(d, r)| crate::mail::parsed::DkimVerdict {
                    domain: d.to_string(),
                    result: r.to_string(),
                })
                .collect(),
            dmarc: dmarc.into(),
            from_domain: from.into(),
            ..Authentication::default()
        }
    }

    #[test]
    fn an_acknowledgement_goes_only_to_a_proven_author() {
        let dir = directory();
        let person = "erika@example.org";
        let from = |address: &str| ParsedHeaders {
            from: Some(crate::mail::parsed::Mailbox {
                name: None,
                address: address.into(),
            }),
            ..ParsedHeaders::default()
        };
        let h = from(person);
        let rule = |a: &Authentication, h: &ParsedHeaders, author: &str| {
            check_mail("x@y.example", h, author, &dir, Some(a)).map(|(r, _)| r)
        };
        for (what, a, proven) in [
            (
                "DMARC pass",
                verdicts(("fail", "x.example"), &[], "pass", "example.org"),
                true,
            ),
            (
                "aligned DKIM",
                verdicts(
                    ("none", ""),
                    &[("example.org", "pass")],
                    "none",
                    "example.org",
                ),
                true,
            ),
            (
                "DKIM of a subdomain",
                verdicts(
                    ("none", ""),
                    &[("mail.example.org", "pass")],
                    "none",
                    "example.org",
                ),
                true,
            ),
            (
                "aligned SPF",
                verdicts(("pass", "example.org"), &[], "none", "example.org"),
                true,
            ),
            (
                "SPF of another domain",
                verdicts(("pass", "srs.example"), &[], "none", "example.org"),
                false,
            ),
            (
                "DKIM of another domain",
                verdicts(
                    ("none", ""),
                    &[("evil.example", "pass")],
                    "none",
                    "example.org",
                ),
                false,
            ),
            (
                "failing DKIM",
                verdicts(
                    ("fail", "example.org"),
                    &[("example.org", "fail")],
                    "fail",
                    "example.org",
                ),
                false,
            ),
            (
                "nothing at all",
                verdicts(("none", "example.org"), &[], "none", "example.org"),
                false,
            ),
            (
                "DNS down",
                verdicts(
                    ("temperror", "example.org"),
                    &[],
                    "temperror",
                    "example.org",
                ),
                false,
            ),
        ] {
            let want = if proven {
                None
            } else {
                Some(Rule::Unauthenticated)
            };
            assert_eq!(rule(&a, &h, person), want, "{what}");
        }
        // A colleague's proven forward vouches for the author it names.
        let forward = from("petra@acme.example");
        let a = verdicts(
            ("pass", "acme.example"),
            &[("acme.example", "pass")],
            "pass",
            "acme.example",
        );
        assert_eq!(rule(&a, &forward, person), None);
        let unproven = verdicts(("fail", "acme.example"), &[], "fail", "acme.example");
        assert_eq!(
            rule(&unproven, &forward, person),
            Some(Rule::Unauthenticated)
        );
    }

    #[test]
    fn automatic_mail_writes_only_names_that_look_like_names() {
        for (name, kept) in [
            ("Erika", "Erika"),
            ("Anne-Marie  O'Neill", "Anne-Marie O'Neill"),
            ("J. R.", "J. R."),
            ("Jürgen", "Jürgen"),
            ("履歴", "履歴"),
            ("Дмитрий", "Дмитрий"),
            ("", ""),
            ("Visit http://evil.example now", ""),
            ("Win $1000", ""),
            ("a b c d e", ""),
            ("Bob <script>", ""),
            ("call +49 30 1234", ""),
        ] {
            assert_eq!(name_for_automatic_mail(name), kept, "{name:?}");
        }
        assert_eq!(name_for_automatic_mail(&"a".repeat(500)), "");
    }

    #[test]
    fn robots_are_known_by_their_names() {
        for robot in [
            "MAILER-DAEMON",
            "postmaster",
            "owner-jobs",
            "jobs-request",
            "noreply",
            "no-reply",
            "do-not-reply",
            "donotreply",
            "bounces+123",
            "no_reply",
        ] {
            assert!(robot_local(robot), "{robot}");
        }
        for person in ["erika.mustermann", "nora", "norbert", "anna-maria"] {
            assert!(!robot_local(person), "{person}");
        }
    }
}
