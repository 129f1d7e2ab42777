//! `[[subsidiary]]`: a legal entity with its jobs address, aliases,
//! senders and signatures, and its upstream SMTP server.

#[allow(unused_imports)]
use super::*;

#[derive(Debug, Clone)]
pub struct Subsidiary {
    pub id: String,
    pub name: String,
    pub jobs_address: Address,
    pub aliases: Vec<Address>,
    pub language: Option<String>,
    /// The company's own domains, lowercased; always includes the jobs address's domain.
    pub domains: Vec<String>,
    /// The default sender's signature (the jobs address's).
    pub signature: Option<String>,
    pub signature_html: Option<String>,
    /// Custom senders (`[[subsidiary.sender]]`); they may send for this subsidiary only.
    pub senders: Vec<Sender>,
    /// A mailbox of the subsidiary's own that gets a copy of every outgoing
    /// mail (envelope Bcc, never a header).
    pub archive_bcc: Option<Address>,
    /// The mail server outgoing mail of this subsidiary goes through.
    pub upstream: Option<Upstream>,
}

/// How the connection to an upstream is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// STARTTLS required: never falls back to plaintext.
    StartTls,
    /// Implicit TLS (port 465).
    Tls,
    /// No TLS: only to a loopback host, or with `allow_plaintext = true`.
    None,
}

/// A subsidiary's upstream SMTP server (`[subsidiary.upstream]`).
#[derive(Debug, Clone)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    /// Where the password is read from at start (never inline, never logged).
    pub password_file: Option<PathBuf>,
    /// A PEM file of certificate authorities to trust besides the system's
    /// (a company-internal relay with its own CA).
    pub ca_file: Option<PathBuf>,
    /// A rejected login (530/534/535/538): the mail fails (`false`, the
    /// default: someone must fix the credentials) or is deferred and retried.
    pub defer_on_auth_failure: bool,
    /// Establishing the TCP connection (a host that does not answer).
    pub connect_timeout: Duration,
    /// The whole send, the wait for the final reply after DATA included
    /// (RFC 5321: 10 minutes), so that a slow upstream is not sent the mail twice.
    pub send_timeout: Duration,
    pub max_connections: usize,
    /// Most messages per minute to this server; 0: no limit.
    pub rate_limit: u32,
    /// After this many consecutive connection or 4xx failures the upstream
    /// is paused (circuit breaker) …
    pub breaker_threshold: u32,
    /// … for this long, doubling on each new pause up to 30 minutes.
    pub breaker_pause: Duration,
}

/// An address outgoing mail can come from, with its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// `default` for a subsidiary's jobs address.
    pub id: String,
    pub subsidiary: String,
    pub address: Address,
    pub name: String,
    pub signature: Option<String>,
    pub signature_html: Option<String>,
}

/// The id of every subsidiary's default sender: its jobs address.
pub const DEFAULT_SENDER: &str = "default";

impl Subsidiary {
    /// The jobs address as a sender, with the subsidiary's name and signature.
    pub fn default_sender(&self) -> Sender {
        Sender {
            id: DEFAULT_SENDER.to_string(),
            subsidiary: self.id.clone(),
            address: self.jobs_address.clone(),
            name: self.name.clone(),
            signature: self.signature.clone(),
            signature_html: self.signature_html.clone(),
        }
    }

    /// A sender of this subsidiary by id (`default`: the jobs address).
    pub fn sender(&self, id: &str) -> Option<Sender> {
        if id == DEFAULT_SENDER {
            return Some(self.default_sender());
        }
        self.senders.iter().find(|s| s.id == id).cloned()
    }
}

pub(super) fn read_upstream(
    ctx: &mut Ctx,
    key: &str,
    table: &DeTable,
    span: Range<usize>,
    base_dir: &Path,
) -> Option<Upstream> {
    let mut s = Section::new(key, table, Some(span.clone()));
    let host = s.required_string(ctx, "host");
    let security_span = s.span_of("security");
    let security = match s.string(ctx, "security").as_deref() {
        None | Some("starttls") => Security::StartTls,
        Some("tls") => Security::Tls,
        Some("none") => Security::None,
        Some(other) => {
            ctx.error(
                security_span.as_ref(),
                &format!("{key}.security"),
                format!("{other:?}: expected \"starttls\", \"tls\" or \"none\""),
            );
            Security::StartTls
        }
    };
    let default_port = match security {
        Security::Tls => 465,
        _ => 587,
    };
    let port = s.integer(ctx, "port", default_port, 1..65_536) as u16;
    let allow_plaintext = s.boolean(ctx, "allow_plaintext", false);
    let username = s.string(ctx, "username");
    let password_span = s.span_of("password_file");
    let password_file = s.string(ctx, "password_file").map(|p| {
        let p = PathBuf::from(p);
        if p.is_relative() { base_dir.join(p) } else { p }
    });
    let ca_span = s.span_of("ca_file");
    let ca_file = s.string(ctx, "ca_file").map(|p| {
        let p = PathBuf::from(p);
        if p.is_relative() { base_dir.join(p) } else { p }
    });
    if let Some(path) = &ca_file
        && let Err(e) = std::fs::read(path)
    {
        ctx.error(
            ca_span.as_ref(),
            &format!("{key}.ca_file"),
            format!("cannot read {}: {e}", path.display()),
        );
    }
    let auth_span = s.span_of("auth_failure");
    let defer_on_auth_failure = match s.string(ctx, "auth_failure").as_deref() {
        Some("fail") => false,
        None | Some("defer") => true,
        Some(other) => {
            ctx.error(
                auth_span.as_ref(),
                &format!("{key}.auth_failure"),
                format!("{other:?}: expected \"fail\" or \"defer\""),
            );
            false
        }
    };
    let secs = Duration::from_secs;
    let connect_timeout = s.duration(ctx, "connect_timeout", secs(30), secs(1)..secs(601));
    let send_timeout = s.duration(ctx, "send_timeout", secs(600), secs(1)..secs(3601));
    let max_connections = s.integer(ctx, "max_connections", 10, 1..101) as usize;
    let rate_limit = s.integer(ctx, "rate_limit", 0, 0..100_001) as u32;
    let breaker_threshold = s.integer(ctx, "breaker_threshold", 5, 1..1001) as u32;
    let breaker_pause = s.duration(
        ctx,
        "breaker_pause",
        secs(60),
        Duration::from_millis(100)..secs(3601),
    );
    s.finish(ctx);
    let host = host?;
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if security == Security::None && !loopback && !allow_plaintext {
        ctx.error(
            security_span.as_ref(),
            &format!("{key}.security"),
            format!("\"none\" sends mail and passwords in plaintext to {host}: only for a loopback host, or set allow_plaintext = true"),
        );
    }
    match (&username, &password_file) {
        (Some(_), None) => ctx.error(
            Some(&span),
            &format!("{key}.password_file"),
            "a username needs a password_file (passwords are never inline)",
        ),
        (None, Some(_)) => ctx.error(
            Some(&span),
            &format!("{key}.username"),
            "a password_file needs a username",
        ),
        (Some(_), Some(path)) => {
            if let Err(e) = std::fs::File::open(path) {
                ctx.error(
                    password_span.as_ref(),
                    &format!("{key}.password_file"),
                    format!("cannot read {}: {e}", path.display()),
                );
            }
        }
        (None, None) => {}
    }
    Some(Upstream {
        host,
        port,
        security,
        username,
        password_file,
        ca_file,
        defer_on_auth_failure,
        connect_timeout,
        send_timeout,
        max_connections,
        rate_limit,
        breaker_threshold,
        breaker_pause,
    })
}

pub(super) fn read_subsidiary(
    ctx: &mut Ctx,
    i: usize,
    table: &DeTable,
    span: Range<usize>,
    base_dir: &Path,
) -> Subsidiary {
    let mut s = Section::new(format!("subsidiary[{i}]"), table, Some(span.clone()));
    let id = s.required_string(ctx, "id").unwrap_or_default();
    if !id.is_empty() {
        check_id(ctx, &id, &span, &format!("subsidiary[{i}].id"));
    }
    let name = s.string(ctx, "name").unwrap_or_else(|| id.clone());
    let jobs_address = s.address(ctx, "jobs_address", true);
    let aliases: Vec<Address> = s
        .strings(ctx, "aliases")
        .into_iter()
        .enumerate()
        .filter_map(|(j, (text, sp))| {
            parse_address(
                ctx,
                &text,
                Some(&sp),
                &format!("subsidiary[{i}].aliases[{j}]"),
            )
        })
        .collect();
    let language = s.string(ctx, "language");
    if let Some(lang) = &language
        && !(2..=8).contains(&lang.len())
    {
        ctx.error(
            Some(&span),
            &format!("subsidiary[{i}].language"),
            format!("{lang:?} is not a language tag such as \"de\" or \"en\""),
        );
    }
    let mut domains: Vec<String> = Vec::new();
    for (j, (d, sp)) in s.strings(ctx, "domains").into_iter().enumerate() {
        let d = d.to_lowercase();
        if Address::parse(&format!("x@{d}")).is_err() {
            ctx.error(
                Some(&sp),
                &format!("subsidiary[{i}].domains[{j}]"),
                format!("{d:?} is not a valid domain"),
            );
        } else if !domains.contains(&d) {
            domains.push(d);
        }
    }
    let signature = s.string(ctx, "signature");
    let signature_html = s.string(ctx, "signature_html");
    let archive_bcc = s.address(ctx, "archive_bcc", false);
    let upstream = match s.take("upstream") {
        None => None,
        Some(v) => match v.get_ref() {
            DeValue::Table(t) => read_upstream(
                ctx,
                &format!("subsidiary[{i}].upstream"),
                t,
                v.span(),
                base_dir,
            ),
            _ => {
                ctx.error(
                    Some(&v.span()),
                    &format!("subsidiary[{i}].upstream"),
                    "expected a table ([subsidiary.upstream])",
                );
                None
            }
        },
    };
    let mut senders = Vec::new();
    for (j, table, sp) in tables(ctx, &mut s, "sender") {
        let key = format!("subsidiary[{i}].sender[{j}]");
        let mut t = Section::new(key.clone(), table, Some(sp.clone()));
        let sender_id = t.required_string(ctx, "id");
        let address = t.address(ctx, "address", true);
        let sender_name = t.required_string(ctx, "name");
        let sig = t.string(ctx, "signature");
        let sig_html = t.string(ctx, "signature_html");
        t.finish(ctx);
        if let Some(n) = &sender_name
            && n.chars().any(char::is_control)
        {
            ctx.error(
                Some(&sp),
                &format!("{key}.name"),
                "must be one line without control characters",
            );
        }
        if let (Some(sender_id), Some(address), Some(sender_name)) =
            (sender_id, address, sender_name)
        {
            check_id(ctx, &sender_id, &sp, &format!("{key}.id"));
            if sender_id == DEFAULT_SENDER {
                ctx.error(
                    Some(&sp),
                    &format!("{key}.id"),
                    "\"default\" is the jobs address; choose another id",
                );
            }
            senders.push((
                j,
                sp,
                Sender {
                    id: sender_id,
                    subsidiary: id.clone(),
                    address,
                    name: sender_name,
                    signature: sig,
                    signature_html: sig_html,
                },
            ));
        }
    }
    duplicates(
        ctx,
        &format!("subsidiary[{i}].sender"),
        senders.iter().map(|(j, sp, x)| (*j, sp, &x.id)),
    );
    if name.chars().any(char::is_control) {
        ctx.error(
            Some(&span),
            &format!("subsidiary[{i}].name"),
            "must be one line without control characters",
        );
    }
    s.finish(ctx);
    let jobs_address =
        jobs_address.unwrap_or_else(|| Address::parse("invalid@invalid.invalid").expect("literal"));
    for a in std::iter::once(&jobs_address).chain(aliases.iter()) {
        if !domains.iter().any(|d| d == a.domain()) {
            domains.push(a.domain().to_string());
        }
    }
    for (j, sp, sender) in &senders {
        if !domains.iter().any(|d| d == sender.address.domain()) {
            ctx.error(
                Some(sp),
                &format!("subsidiary[{i}].sender[{j}].address"),
                format!(
                    "{} is not in a domain of this subsidiary ({}): it may send for its own subsidiary only",
                    sender.address,
                    domains.join(", ")
                ),
            );
        }
    }
    Subsidiary {
        id,
        name,
        jobs_address,
        aliases,
        language,
        domains,
        signature,
        signature_html,
        senders: senders.into_iter().map(|(_, _, x)| x).collect(),
        archive_bcc,
        upstream,
    }
}
