//! Domain types shared by the ingress, the store and the CLI.
//!
//! Plain data only: no I/O, no SQL, no parsing. Everything that crosses a
//! module boundary is named here, by the recruiting domain's words.

use serde::{Deserialize, Serialize};

/// A mailbox as written in a header: an optional display name and an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

impl std::fmt::Display for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) if !name.is_empty() => write!(f, "{name} <{}>", self.address),
            _ => f.write_str(&self.address),
        }
    }
}

/// The SMTP envelope and connection facts of one received mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Envelope {
    /// Reverse path; empty for the null sender `<>` (bounces, auto-replies).
    pub sender: String,
    /// Forward paths accepted for this transaction, as the client wrote them.
    pub recipients: Vec<String>,
    pub client_addr: String,
    pub helo: String,
    pub session_id: String,
    /// Unix time in milliseconds when the final dot was received.
    pub received_at_ms: i64,
    /// SPF, DKIM, DMARC and ARC on receipt; `None` when not checked
    /// (`[authentication] verify = false`, our own outgoing mail).
    pub authentication: Option<Authentication>,
    /// The session's TLS (STARTTLS or implicit); `None`: in the clear, or
    /// our own outgoing mail.
    pub tls: Option<TlsInfo>,
}

/// How the session a mail came in was encrypted, as negotiated: what the
/// `Received:` line says (`with ESMTPS`, RFC 3848) and the store keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// `TLS1.2` or `TLS1.3`.
    pub version: String,
    /// The cipher suite's IANA name as rustls spells it, e.g.
    /// `TLS13_AES_256_GCM_SHA384`, `TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384`.
    pub cipher: String,
}

/// The header fields jobmail reads from a message, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ParsedHeaders {
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub subject: Option<String>,
    /// The `Date:` header as RFC 3339, when it parses.
    pub date: Option<String>,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub auto_submitted: Option<String>,
    pub list_id: Option<String>,
    pub precedence: Option<String>,
    /// `X-Original-From`: the author before a list or group rewrote `From`.
    pub x_original_from: Option<Mailbox>,
    /// `X-Microsoft-Original-Message-ID`: the id the sender's client chose,
    /// before Outlook's servers replaced the Message-ID (brackets removed).
    pub original_message_id: Option<String>,
    /// The primary language subtag of `Content-Language` (`de` for `de-DE`), lowercase.
    pub content_language: Option<String>,
    /// Written by a program: auto-reply, bulk, bounce, null sender,
    /// MAILER-DAEMON/postmaster (RFC 3834 and common practice).
    pub robot: bool,
    /// Passed on by a mailing list or group (List-*, `Precedence: list`, `-request`/`owner-` senders).
    pub list: bool,
    /// `robot || list`: never creates a candidate, never gets an auto-reply.
    pub automatic: bool,
    /// Must not be answered automatically: automatic mail, or the sender
    /// asked (`X-Auto-Response-Suppress`, `X-Loop`). Never drops a mail.
    pub no_auto_reply: bool,
    /// `X-Auto-Response-Suppress` asks for no automatic answer (All, AutoReply, OOF).
    pub auto_response_suppress: bool,
    /// The `X-Loop` values (mail systems mark mail they sent with them; ours too).
    pub x_loop: Vec<String>,
    /// A delivery status notification (`multipart/report; report-type=delivery-status`).
    pub delivery_report: bool,
}

/// An attachment as a mail client would show it, with its decoded bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentPart {
    /// Sanitised: no path, no control or bidi characters, bounded length, never empty.
    pub filename: String,
    pub content_type: String,
    /// Where it came from in the MIME tree, e.g. `2`, `3.1` (inside an attached mail),
    /// `4/tnef:1` (the first file of a winmail.dat).
    pub part: String,
    pub bytes: Vec<u8>,
}

/// Everything jobmail knows of one inbound message once parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedMessage {
    pub headers: ParsedHeaders,
    pub documents: Vec<DocumentPart>,
    /// The displayed text body (HTML turned into text when there is no
    /// plain part), at most [`crate::inbound::parse::MAX_TEXT_BYTES`]; for finding
    /// inline forwarded blocks.
    pub text: String,
    /// `From` of each mail attached directly (`message/rfc822` at the top
    /// level), in MIME order: the authors of mails a colleague forwarded as attachments.
    pub attached_authors: Vec<Mailbox>,
    /// Not every document could be listed: the mail has more than
    /// [`crate::inbound::parse::MAX_DOCUMENTS`] of them, or nests attached mails so
    /// deep or so often that the rest was left unopened (the raw mail and
    /// the outer `.eml` documents still hold them).
    pub documents_truncated: bool,
}

/// One DKIM signature's verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimVerdict {
    /// The signing domain (`d=`), lowercased.
    pub domain: String,
    /// `pass`, `fail`, `neutral`, `temperror`, `permerror`, `none`.
    pub result: String,
}

/// What SPF, DKIM, DMARC and ARC said of a mail on receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    /// `pass`, `fail`, `softfail`, `neutral`, `none`, `temperror`, `permerror`.
    pub spf: String,
    /// The domain SPF checked: the envelope sender's, or the HELO name for
    /// the null sender.
    pub spf_domain: String,
    pub dkim: Vec<DkimVerdict>,
    /// For the `From` domain: `pass`, `fail`, `none` (no DMARC record),
    /// `temperror`, `permerror`.
    pub dmarc: String,
    /// The domain's published policy (`reject`, `quarantine`, `none`), if any.
    pub dmarc_policy: String,
    /// The ARC chain a forwarder added: `pass`, `fail`, `none`, ….
    pub arc: String,
    /// The `From` domain the verdicts are about, lowercased.
    pub from_domain: String,
    /// With a passing ARC chain: the domain that sealed it last (`d=` of
    /// the newest ARC-Seal), lowercased …
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arc_sealer: String,
    /// … and what that sealer had found (its ARC-Authentication-Results,
    /// at most 2 KB), e.g. `dkim=pass header.d=example.org`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arc_results: String,
    /// Why a verdict is missing (a timeout, no readable From).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// `a` and `b` are the same domain or one is a subdomain of the other
/// (DMARC's relaxed alignment, without a public-suffix list).
fn aligned(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    !a.is_empty()
        && !b.is_empty()
        && (a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}")))
}

impl Authentication {
    /// Mail from `address` is proven to come from its domain: DMARC passed
    /// for it, or a DKIM signature of an aligned domain passed, or SPF
    /// passed for an aligned envelope sender.
    pub fn proves(&self, address: &str) -> bool {
        let Some((_, domain)) = address.rsplit_once('@') else {
            return false;
        };
        (self.dmarc == "pass" && self.from_domain.eq_ignore_ascii_case(domain))
            || self
                .dkim
                .iter()
                .any(|d| d.result == "pass" && aligned(&d.domain, domain))
            || (self.spf == "pass" && aligned(&self.spf_domain, domain))
    }

    /// The last ARC sealer's own results prove `address`'s domain: a
    /// `dmarc=pass header.from=<domain>` or a `dkim=pass` of an aligned
    /// domain, on a chain that passed. Whether the sealer is trusted (the
    /// company's own redirect) is the caller's to decide.
    pub fn arc_vouches_for(&self, address: &str) -> bool {
        let Some((_, domain)) = address.rsplit_once('@') else {
            return false;
        };
        self.arc == "pass"
            && self.arc_results.split(';').any(|clause| {
                let mut words = clause.split_whitespace();
                let method = words.next().unwrap_or("").to_ascii_lowercase();
                let props: Vec<(String, String)> = words
                    .filter_map(|w| w.split_once('='))
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.trim_matches('"').to_string()))
                    .collect();
                let prop = |k: &str| props.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
                match method.as_str() {
                    "dmarc=pass" => {
                        prop("header.from").is_some_and(|d| d.eq_ignore_ascii_case(domain))
                    }
                    "dkim=pass" => prop("header.d")
                        .or_else(|| {
                            prop("header.i").and_then(|i| i.rsplit_once('@').map(|(_, d)| d))
                        })
                        .is_some_and(|d| aligned(d, domain)),
                    _ => false,
                }
            })
    }

    /// The domain of `address` publishes DMARC and this mail failed it.
    pub fn dmarc_fails_for(&self, address: &str) -> bool {
        self.dmarc == "fail"
            && address
                .rsplit_once('@')
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&self.from_domain))
    }

    /// One line: `spf=pass (a.example) dkim=pass (a.example) dmarc=pass arc=none`.
    pub fn summary(&self) -> String {
        let dkim = if self.dkim.is_empty() {
            "dkim=none".to_string()
        } else {
            self.dkim
                .iter()
                .map(|d| format!("dkim={} ({})", d.result, d.domain))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let policy = if self.dmarc_policy.is_empty() {
            String::new()
        } else {
            format!(" (p={})", self.dmarc_policy)
        };
        format!(
            "spf={} ({}) {dkim} dmarc={}{policy} for {} arc={}",
            self.spf, self.spf_domain, self.dmarc, self.from_domain, self.arc
        )
    }
}
