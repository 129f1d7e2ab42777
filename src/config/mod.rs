//! Typed configuration from one TOML file, with every error reported at once.
//!
//! The file is read into a spanned TOML tree and walked by hand, so that an
//! unknown key, a wrong type, a value out of range and a dangling reference
//! are all collected, each with its line and key path (`position[2].category`),
//! instead of stopping at the first. Only validated values leave this module.
//! It reads the config file and nothing else: no sockets, no database.

pub mod company;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::mail::address::Address;

/// Where `jobmail` looks when neither `--config` nor `$JOBMAIL_CONFIG` says.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/jobmail/jobmail.toml";
/// How long DATA may go slower than `min_data_rate` at its start (or
/// `data_timeout`, if that is shorter).
pub const DATA_RATE_GRACE: Duration = Duration::from_secs(30);
/// 10 MB, the size limit recruiting tools and helpdesks use.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 10 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from.
    pub path: PathBuf,
    pub server: ServerConfig,
    pub subsidiaries: Vec<Subsidiary>,
    pub categories: Vec<Category>,
    pub positions: Vec<Position>,
    /// Where the template files are (`[templates] dir`), resolved.
    pub templates_dir: PathBuf,
    /// The languages the templates in `templates_dir` have (every
    /// template's variants, lowercased, sorted), read by [`load`]; empty
    /// from [`parse`], which reads no other file.
    pub template_languages: Vec<String>,
    pub relay: RelayConfig,
    pub authentication: AuthenticationConfig,
    pub acknowledgements: AcknowledgementsConfig,
}

/// Where the DNS questions of SPF, DKIM and DMARC go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolver {
    /// The system's resolver (`/etc/resolv.conf`).
    System,
    /// One DNS server, asked over UDP (and TCP for long answers).
    Server(SocketAddr),
}

/// Checking who really sent a mail (`[authentication]`).
#[derive(Debug, Clone)]
pub struct AuthenticationConfig {
    /// SPF, DKIM, DMARC and ARC of every mail on receipt. Off: no verdicts,
    /// and the author of every mail counts as unchecked, not as proven.
    pub verify: bool,
    pub resolver: Resolver,
    /// The most one mail's checks may take, all lookups together.
    pub timeout: Duration,
}

/// Limits over every category's acknowledgements (`[acknowledgements]`).
#[derive(Debug, Clone)]
pub struct AcknowledgementsConfig {
    /// Acknowledgements decided in any rolling hour, all addresses together.
    pub max_per_hour: u32,
}

/// What to do with a mail whose lines end in a bare CR or bare LF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BareLineEndings {
    /// Refuse the mail with 554 5.5.2 after the final dot (the default, as
    /// hardened MTAs do against SMTP smuggling).
    Reject,
    /// Store the bytes as they came. They still never end the DATA phase.
    Keep,
    /// Store a bare LF as CRLF (Postfix 3.9's default, `normalize`); a bare
    /// CR is kept. They still never end the DATA phase.
    Normalize,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    pub hostname: String,
    /// Resolved against the config file's directory when relative.
    pub database: PathBuf,
    /// Where jobmail keeps its secrets (the reply-token key); default: the
    /// database's directory.
    pub state_dir: PathBuf,
    pub max_message_size: u64,
    pub max_connections: usize,
    /// Open sessions from one client address at once.
    pub max_connections_per_client: usize,
    /// … and from one network (/24 for IPv4, /64 for IPv6).
    pub max_connections_per_network: usize,
    /// Bytes of mail all sessions together may hold in memory (each DATA
    /// reserves its declared SIZE, or the size limit, before 354).
    pub memory_budget: u64,
    /// Slowest DATA accepted, in bytes per second, after a grace of
    /// [`DATA_RATE_GRACE`]; 0: no minimum.
    pub min_data_rate: u64,
    pub max_recipients: usize,
    pub max_errors: usize,
    pub max_line_length: usize,
    pub bare_line_endings: BareLineEndings,
    pub greeting_delay: Duration,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    pub session_timeout: Duration,
    pub shutdown_timeout: Duration,
    /// The IANA time zone local times (`send --at`) are read in.
    pub time_zone: jiff::tz::TimeZone,
}

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

/// Retry policy of the relay (`[relay]`).
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The first wait after a temporary failure; doubled each time …
    pub retry_initial: Duration,
    /// … up to this.
    pub retry_max: Duration,
    /// After this long in the queue, a mail that still fails temporarily has failed.
    pub queue_lifetime: Duration,
    /// How often the relay looks for due mail.
    pub poll_interval: Duration,
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

#[derive(Debug, Clone)]
pub struct Category {
    pub id: String,
    pub name: String,
    /// Automatic acknowledgements of applications in this category.
    pub auto_reply: Option<AutoReply>,
}

/// `[category.auto_reply]`: which applications are acknowledged, with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoReply {
    /// Applications by e-mail (a new e-mail application found by the matcher).
    pub email: bool,
    /// Applications from the online form (`application add`).
    pub form: bool,
    /// A template marked `automatic = true`.
    pub template: String,
    /// A sender id of the application's subsidiary (`default`: its jobs address).
    pub sender: String,
    /// One acknowledgement per candidate and category within this period.
    pub period: Duration,
    /// At most this many automatic replies to one address per hour (a circuit breaker).
    pub max_per_hour: u32,
}

#[derive(Debug, Clone)]
pub struct Position {
    pub id: String,
    pub title: String,
    pub subsidiary: String,
    pub category: String,
    pub alias: Option<Address>,
}

/// One problem in the file: where, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

/// All problems found in one file.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    pub path: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        writeln!(
            f,
            "{}: {n} error{}",
            self.path.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            match e.line {
                Some(line) => write!(f, "{}:{line}: ", self.path.display())?,
                None => write!(f, "{}: ", self.path.display())?,
            }
            if e.key.is_empty() {
                writeln!(f, "{}", e.message)?;
            } else {
                writeln!(f, "{}: {}", e.key, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The config path a command uses: `--config`, else `$JOBMAIL_CONFIG`, else the default.
pub fn resolve_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("JOBMAIL_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        path: path.to_path_buf(),
        errors: vec![ConfigError {
            line: None,
            key: String::new(),
            message: format!("cannot read: {e}"),
        }],
    })?;
    let mut config = parse(&text, path)?;
    config.template_languages = template_languages(&config.templates_dir);
    Ok(config)
}

/// The languages of every template in `dir` that loads (errors are
/// `config check`'s and `template lint`'s to report), lowercased and sorted.
pub fn template_languages(dir: &Path) -> Vec<String> {
    let (templates, _) = crate::outbound::template::Templates::load(dir);
    let mut languages: Vec<String> = templates
        .templates
        .values()
        .flat_map(|t| t.variants.keys().map(|l| l.to_lowercase()))
        .collect();
    languages.sort();
    languages.dedup();
    languages
}

/// Validates config text; `path` names the file in errors and anchors relative paths.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
    let mut ctx = Ctx {
        text,
        errors: Vec::new(),
    };
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    for e in syntax_errors {
        let line = e.span().map(|s| ctx.line_of(&s));
        ctx.errors.push(ConfigError {
            line,
            key: String::new(),
            message: format!("TOML syntax: {}", e.message().trim()),
        });
    }
    // `--config jobmail.toml` has the parent "": relative paths are then
    // relative to the working directory, written as ".".
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let config = read_root(&mut ctx, root.get_ref(), path, &base_dir);
    if ctx.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors {
            path: path.to_path_buf(),
            errors: ctx.errors,
        })
    }
}

struct Ctx<'t> {
    text: &'t str,
    errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    fn line_of(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn error(&mut self, span: Option<&Range<usize>>, key: &str, message: impl Into<String>) {
        let line = span.map(|s| self.line_of(s));
        self.errors.push(ConfigError {
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }
}

type Value<'i> = Spanned<DeValue<'i>>;

/// A table being read: keys are taken one by one; what is left is unknown.
struct Section<'a, 'i> {
    path: String,
    span: Option<Range<usize>>,
    entries: Vec<(&'a str, Range<usize>, &'a Value<'i>, bool)>,
}

impl<'a, 'i> Section<'a, 'i> {
    fn new(path: impl Into<String>, table: &'a DeTable<'i>, span: Option<Range<usize>>) -> Self {
        Section {
            path: path.into(),
            span,
            entries: table
                .iter()
                .map(|(k, v)| (k.get_ref().as_ref(), k.span(), v, false))
                .collect(),
        }
    }

    fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Where the value of `key` is, else where the table is.
    fn span_of(&self, key: &str) -> Option<Range<usize>> {
        self.entries
            .iter()
            .find(|e| e.0 == key)
            .map(|e| e.2.span())
            .or_else(|| self.span.clone())
    }

    /// `key` as true or false, `default` when absent; an error otherwise.
    fn boolean(&mut self, ctx: &mut Ctx, key: &str, default: bool) -> bool {
        let Some(v) = self.take(key) else {
            return default;
        };
        v.get_ref().as_bool().unwrap_or_else(|| {
            ctx.error(
                Some(&v.span()),
                &self.key_path(key),
                "expected true or false",
            );
            default
        })
    }

    fn take(&mut self, key: &str) -> Option<&'a Value<'i>> {
        self.entries
            .iter_mut()
            .find(|(k, _, _, _)| *k == key)
            .map(|entry| {
                entry.3 = true;
                entry.2
            })
    }

    fn string(&mut self, ctx: &mut Ctx, key: &str) -> Option<String> {
        let v = self.take(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                ctx.error(Some(&v.span()), &self.key_path(key), "expected a string");
                None
            }
        }
    }

    fn required_string(&mut self, ctx: &mut Ctx, key: &str) -> Option<String> {
        let value = self.string(ctx, key);
        if value.is_none() && !self.entries.iter().any(|(k, _, _, _)| *k == key) {
            let path = self.key_path(key);
            ctx.error(self.span.as_ref(), &path, "missing (required)");
        }
        value.filter(|s| {
            if s.trim().is_empty() {
                let path = self.key_path(key);
                ctx.error(self.span.as_ref(), &path, "must not be empty");
                false
            } else {
                true
            }
        })
    }

    fn strings(&mut self, ctx: &mut Ctx, key: &str) -> Vec<(String, Range<usize>)> {
        let Some(v) = self.take(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            ctx.error(
                Some(&v.span()),
                &self.key_path(key),
                "expected an array of strings",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::String(s) => out.push((s.to_string(), item.span())),
                _ => ctx.error(
                    Some(&item.span()),
                    &format!("{}[{i}]", self.key_path(key)),
                    "expected a string",
                ),
            }
        }
        out
    }

    fn integer(&mut self, ctx: &mut Ctx, key: &str, default: u64, range: Range<u64>) -> u64 {
        let Some(v) = self.take(key) else {
            return default;
        };
        let parsed = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => None,
        };
        match parsed {
            Some(n) if n >= 0 && range.contains(&(n as u64)) => n as u64,
            Some(n) => {
                ctx.error(
                    Some(&v.span()),
                    &self.key_path(key),
                    format!(
                        "{n} is out of range ({}..={})",
                        range.start,
                        range.end.saturating_sub(1)
                    ),
                );
                default
            }
            None => {
                ctx.error(Some(&v.span()), &self.key_path(key), "expected an integer");
                default
            }
        }
    }

    fn duration(
        &mut self,
        ctx: &mut Ctx,
        key: &str,
        default: Duration,
        range: Range<Duration>,
    ) -> Duration {
        let Some(v) = self.take(key) else {
            return default;
        };
        let parsed = match v.get_ref() {
            DeValue::String(s) => humantime::parse_duration(s).ok(),
            _ => None,
        };
        match parsed {
            Some(d) if range.contains(&d) => d,
            Some(_) => {
                ctx.error(
                    Some(&v.span()),
                    &self.key_path(key),
                    format!(
                        "out of range ({} to {})",
                        humantime::format_duration(range.start),
                        humantime::format_duration(range.end)
                    ),
                );
                default
            }
            None => {
                ctx.error(
                    Some(&v.span()),
                    &self.key_path(key),
                    "expected a duration such as \"30s\", \"5m\" or \"1h\"",
                );
                default
            }
        }
    }

    fn address(&mut self, ctx: &mut Ctx, key: &str, required: bool) -> Option<Address> {
        let span = self.entries.iter().find(|e| e.0 == key).map(|e| e.2.span());
        let text = if required {
            self.required_string(ctx, key)?
        } else {
            self.string(ctx, key)?
        };
        parse_address(ctx, &text, span.as_ref(), &self.key_path(key))
    }

    /// Reports every key that nobody took.
    fn finish(self, ctx: &mut Ctx) {
        for (key, span, _, taken) in &self.entries {
            if !taken {
                let path = self.key_path(key);
                ctx.error(Some(span), &path, "unknown key");
            }
        }
    }
}

fn parse_address(
    ctx: &mut Ctx,
    text: &str,
    span: Option<&Range<usize>>,
    key: &str,
) -> Option<Address> {
    match Address::parse(text) {
        Ok(a) => Some(a),
        Err(e) => {
            ctx.error(span, key, format!("{text:?} is not a valid address: {e}"));
            None
        }
    }
}

/// An array of tables (`[[subsidiary]]`), each handed over with its index.
fn tables<'a, 'i>(
    ctx: &mut Ctx,
    root: &mut Section<'a, 'i>,
    key: &str,
) -> Vec<(usize, &'a DeTable<'i>, Range<usize>)> {
    let path = root.key_path(key);
    let Some(v) = root.take(key) else {
        return Vec::new();
    };
    let DeValue::Array(items) = v.get_ref() else {
        ctx.error(
            Some(&v.span()),
            &path,
            format!("expected an array of tables ([[{path}]])"),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.get_ref() {
            DeValue::Table(t) => out.push((i, t, item.span())),
            _ => ctx.error(
                Some(&item.span()),
                &format!("{path}[{i}]"),
                "expected a table",
            ),
        }
    }
    out
}

/// The root's `[name]` table as a section; an error if it is something else.
fn table_section<'a, 'i>(
    ctx: &mut Ctx,
    root: &mut Section<'a, 'i>,
    name: &str,
) -> Option<Section<'a, 'i>> {
    let v = root.take(name)?;
    match v.get_ref() {
        DeValue::Table(t) => Some(Section::new(name, t, Some(v.span()))),
        _ => {
            ctx.error(
                Some(&v.span()),
                name,
                format!("expected a table ([{name}])"),
            );
            None
        }
    }
}

fn read_root(ctx: &mut Ctx, root_table: &DeTable, path: &Path, base_dir: &Path) -> Config {
    let mut root = Section::new("", root_table, None);

    let server = match root.take("server") {
        Some(v) => match v.get_ref() {
            DeValue::Table(t) => read_server(ctx, t, Some(v.span()), base_dir),
            _ => {
                ctx.error(Some(&v.span()), "server", "expected a table ([server])");
                read_server(ctx, &DeTable::new(), None, base_dir)
            }
        },
        None => read_server(ctx, &DeTable::new(), None, base_dir),
    };

    let mut templates_dir = base_dir.join("templates");
    if let Some(mut section) = table_section(ctx, &mut root, "templates") {
        if let Some(dir) = section.string(ctx, "dir") {
            templates_dir = base_dir.join(dir);
        }
        section.finish(ctx);
    }

    let secs = Duration::from_secs;
    let mut relay = RelayConfig {
        retry_initial: secs(300),
        retry_max: secs(3600),
        queue_lifetime: secs(5 * 86_400),
        poll_interval: secs(1),
    };
    if let Some(mut section) = table_section(ctx, &mut root, "relay") {
        relay.retry_initial = section.duration(
            ctx,
            "retry_initial",
            relay.retry_initial,
            Duration::from_millis(100)..secs(86_401),
        );
        relay.retry_max = section.duration(
            ctx,
            "retry_max",
            relay.retry_max,
            Duration::from_millis(100)..secs(7 * 86_400 + 1),
        );
        relay.queue_lifetime = section.duration(
            ctx,
            "queue_lifetime",
            relay.queue_lifetime,
            secs(1)..secs(60 * 86_400 + 1),
        );
        relay.poll_interval = section.duration(
            ctx,
            "poll_interval",
            relay.poll_interval,
            Duration::from_millis(10)..secs(61),
        );
        section.finish(ctx);
    }

    let mut authentication = AuthenticationConfig {
        verify: true,
        resolver: Resolver::System,
        timeout: secs(5),
    };
    if let Some(mut section) = table_section(ctx, &mut root, "authentication") {
        authentication.verify = section.boolean(ctx, "verify", authentication.verify);
        let span = section.span_of("resolver");
        if let Some(r) = section.string(ctx, "resolver") {
            if r == "system" {
                authentication.resolver = Resolver::System;
            } else {
                match r.parse::<SocketAddr>() {
                            Ok(a) => authentication.resolver = Resolver::Server(a),
                            Err(_) => ctx.error(
                                span.as_ref(),
                                "authentication.resolver",
                                format!(
                                    "{r:?} is neither \"system\" nor a DNS server's IP:port (e.g. \"127.0.0.1:53\")"
                                ),
                            ),
                        }
            }
        }
        authentication.timeout = section.duration(
            ctx,
            "timeout",
            authentication.timeout,
            Duration::from_millis(100)..secs(61),
        );
        section.finish(ctx);
    }
    let mut acknowledgements = AcknowledgementsConfig { max_per_hour: 100 };
    if let Some(mut section) = table_section(ctx, &mut root, "acknowledgements") {
        acknowledgements.max_per_hour =
            section.integer(ctx, "max_per_hour", 100, 1..1_000_001) as u32;
        section.finish(ctx);
    }

    let mut subsidiaries = Vec::new();
    for (i, table, span) in tables(ctx, &mut root, "subsidiary") {
        subsidiaries.push((
            i,
            span.clone(),
            read_subsidiary(ctx, i, table, span, base_dir),
        ));
    }
    let mut categories = Vec::new();
    for (i, table, span) in tables(ctx, &mut root, "category") {
        let mut s = Section::new(format!("category[{i}]"), table, Some(span.clone()));
        let id = s.required_string(ctx, "id");
        let name = s.string(ctx, "name");
        let auto_reply = match s.take("auto_reply") {
            None => None,
            Some(v) => match v.get_ref() {
                DeValue::Table(t) => {
                    let key = format!("category[{i}].auto_reply");
                    let mut a = Section::new(key.clone(), t, Some(v.span()));
                    let email = a.boolean(ctx, "email", false);
                    let form = a.boolean(ctx, "form", false);
                    let template = a.required_string(ctx, "template");
                    let sender = a
                        .string(ctx, "sender")
                        .unwrap_or_else(|| DEFAULT_SENDER.to_string());
                    let secs = Duration::from_secs;
                    let period = a.duration(
                        ctx,
                        "period",
                        secs(30 * 86_400),
                        secs(0)..secs(366 * 86_400),
                    );
                    let max_per_hour = a.integer(ctx, "max_per_hour", 10, 1..10_001) as u32;
                    a.finish(ctx);
                    template.map(|template| AutoReply {
                        email,
                        form,
                        template,
                        sender,
                        period,
                        max_per_hour,
                    })
                }
                _ => {
                    ctx.error(
                        Some(&v.span()),
                        &format!("category[{i}].auto_reply"),
                        "expected a table ([category.auto_reply])",
                    );
                    None
                }
            },
        };
        s.finish(ctx);
        if let Some(id) = id {
            check_id(ctx, &id, &span, &format!("category[{i}].id"));
            categories.push((
                i,
                span,
                Category {
                    name: name.unwrap_or_else(|| id.clone()),
                    id,
                    auto_reply,
                },
            ));
        }
    }
    let mut positions = Vec::new();
    for (i, table, span) in tables(ctx, &mut root, "position") {
        let mut s = Section::new(format!("position[{i}]"), table, Some(span.clone()));
        let id = s.required_string(ctx, "id");
        let title = s.required_string(ctx, "title");
        let subsidiary = s.required_string(ctx, "subsidiary");
        let category = s.required_string(ctx, "category");
        let alias = s.address(ctx, "alias", false);
        let spans = PositionSpans {
            subsidiary: s.span_of("subsidiary"),
            category: s.span_of("category"),
            alias: s.span_of("alias"),
        };
        s.finish(ctx);
        if let (Some(id), Some(title), Some(subsidiary), Some(category)) =
            (id, title, subsidiary, category)
        {
            check_id(ctx, &id, &span, &format!("position[{i}].id"));
            positions.push((
                i,
                span,
                spans,
                Position {
                    id,
                    title,
                    subsidiary,
                    category,
                    alias,
                },
            ));
        }
    }
    root.finish(ctx);

    if subsidiaries.is_empty() {
        ctx.error(
            None,
            "subsidiary",
            "at least one [[subsidiary]] with a jobs_address is required",
        );
    }
    duplicates(
        ctx,
        "subsidiary",
        subsidiaries.iter().map(|(i, s, x)| (*i, s, &x.id)),
    );
    duplicates(
        ctx,
        "category",
        categories.iter().map(|(i, s, x)| (*i, s, &x.id)),
    );
    duplicates(
        ctx,
        "position",
        positions.iter().map(|(i, s, _, x)| (*i, s, &x.id)),
    );

    let subsidiary_ids: HashSet<&str> =
        subsidiaries.iter().map(|(_, _, s)| s.id.as_str()).collect();
    let category_ids: HashSet<&str> = categories.iter().map(|(_, _, c)| c.id.as_str()).collect();
    for (i, _, spans, p) in &positions {
        if !subsidiary_ids.contains(p.subsidiary.as_str()) {
            ctx.error(
                spans.subsidiary.as_ref(),
                &format!("position[{i}].subsidiary"),
                format!("no [[subsidiary]] has id {:?}", p.subsidiary),
            );
        }
        if !category_ids.contains(p.category.as_str()) {
            ctx.error(
                spans.category.as_ref(),
                &format!("position[{i}].category"),
                format!("no [[category]] has id {:?}", p.category),
            );
        }
    }

    // An acknowledgement goes out from a sender with a signature, in every
    // subsidiary that has positions in the category.
    for (i, span, c) in &categories {
        let Some(auto) = &c.auto_reply else { continue };
        for (_, _, s) in &subsidiaries {
            if !positions
                .iter()
                .any(|(_, _, _, p)| p.category == c.id && p.subsidiary == s.id)
            {
                continue;
            }
            match s.sender(&auto.sender) {
                None => ctx.error(
                    Some(span),
                    &format!("category[{i}].auto_reply.sender"),
                    format!("subsidiary {:?} has no sender {:?}", s.id, auto.sender),
                ),
                Some(sender) if sender.signature.as_deref().is_none_or(|x| x.trim().is_empty()) => ctx.error(
                    Some(span),
                    &format!("category[{i}].auto_reply.sender"),
                    format!("sender {:?} of subsidiary {:?} has no signature: acknowledgements must be signed", auto.sender, s.id),
                ),
                Some(_) => {}
            }
        }
    }

    // Every inbound address must lead to one place only.
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    let mut claim = |ctx: &mut Ctx, addr: &Address, key: String, span: &Range<usize>| {
        if let Some(previous) = owners.get(&addr.key()) {
            ctx.error(
                Some(span),
                &key,
                format!("address {addr} is already used by {previous}"),
            );
        } else {
            owners.insert(addr.key(), key);
        }
    };
    for (i, span, s) in &subsidiaries {
        claim(
            ctx,
            &s.jobs_address,
            format!("subsidiary[{i}].jobs_address"),
            span,
        );
        for (j, alias) in s.aliases.iter().enumerate() {
            claim(ctx, alias, format!("subsidiary[{i}].aliases[{j}]"), span);
        }
    }
    for (i, span, spans, p) in &positions {
        if let Some(alias) = &p.alias {
            let span = spans.alias.as_ref().unwrap_or(span);
            claim(ctx, alias, format!("position[{i}].alias"), span);
            let owner = subsidiaries.iter().find(|(_, _, s)| s.id == p.subsidiary);
            if let Some((_, _, s)) = owner
                && !s.domains.iter().any(|d| d == alias.domain())
            {
                ctx.error(
                    Some(span),
                    &format!("position[{i}].alias"),
                    format!(
                        "{alias} is not in a domain of subsidiary {:?} ({})",
                        s.id,
                        s.domains.join(", ")
                    ),
                );
            }
        }
    }

    Config {
        path: path.to_path_buf(),
        server,
        subsidiaries: subsidiaries.into_iter().map(|(_, _, s)| s).collect(),
        categories: categories.into_iter().map(|(_, _, c)| c).collect(),
        positions: positions.into_iter().map(|(_, _, _, p)| p).collect(),
        templates_dir,
        template_languages: Vec::new(),
        relay,
        authentication,
        acknowledgements,
    }
}

/// Where a position's references are, for errors found after reading.
struct PositionSpans {
    subsidiary: Option<Range<usize>>,
    category: Option<Range<usize>>,
    alias: Option<Range<usize>>,
}

fn check_id(ctx: &mut Ctx, id: &str, span: &Range<usize>, key: &str) {
    let ok = id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        ctx.error(
            Some(span),
            key,
            format!("{id:?}: ids are at most 64 letters, digits, '-', '_' or '.'"),
        );
    }
}

fn duplicates<'x>(
    ctx: &mut Ctx,
    kind: &str,
    items: impl Iterator<Item = (usize, &'x Range<usize>, &'x String)>,
) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, span, id) in items {
        if let Some(first) = seen.get(id.as_str()) {
            ctx.error(
                Some(span),
                &format!("{kind}[{i}].id"),
                format!("duplicate id {id:?} (first used by {kind}[{first}])"),
            );
        } else {
            seen.insert(id, i);
        }
    }
}

fn read_upstream(
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

fn read_subsidiary(
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

fn read_server(
    ctx: &mut Ctx,
    table: &DeTable,
    span: Option<Range<usize>>,
    base_dir: &Path,
) -> ServerConfig {
    let mut s = Section::new("server", table, span.clone());
    let mut listen = Vec::new();
    let listen_given = s.entries.iter().any(|e| e.0 == "listen");
    for (j, (text, sp)) in s.strings(ctx, "listen").into_iter().enumerate() {
        match text.parse::<SocketAddr>() {
            Ok(a) => listen.push(a),
            Err(_) => ctx.error(
                Some(&sp),
                &format!("server.listen[{j}]"),
                format!(
                    "{text:?} is not an address:port such as \"127.0.0.1:2525\" or \"[::]:25\""
                ),
            ),
        }
    }
    if !listen_given {
        listen.push(SocketAddr::from(([127, 0, 0, 1], 2525)));
    } else if listen.is_empty()
        && ctx
            .errors
            .iter()
            .all(|e| !e.key.starts_with("server.listen"))
    {
        ctx.error(
            span.as_ref(),
            "server.listen",
            "must name at least one address",
        );
    }
    let hostname = s
        .string(ctx, "hostname")
        .unwrap_or_else(|| "localhost".to_string());
    if hostname.is_empty()
        || !hostname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
    {
        ctx.error(
            span.as_ref(),
            "server.hostname",
            format!("{hostname:?} is not a host name"),
        );
    }
    let database = s
        .string(ctx, "database")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/jobmail/jobmail.db"));
    let database = if database.is_relative() {
        base_dir.join(database)
    } else {
        database
    };
    let state_dir = match s.string(ctx, "state_dir") {
        Some(dir) if Path::new(&dir).is_relative() => base_dir.join(dir),
        Some(dir) => PathBuf::from(dir),
        None => database
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| base_dir.to_path_buf()),
    };
    let max_message_size = s.integer(
        ctx,
        "max_message_size",
        DEFAULT_MAX_MESSAGE_SIZE,
        1024..(1 << 30) + 1,
    );
    let max_connections = s.integer(ctx, "max_connections", 100, 1..100_001) as usize;
    let max_connections_per_client =
        s.integer(ctx, "max_connections_per_client", 20, 1..100_001) as usize;
    let max_connections_per_network =
        s.integer(ctx, "max_connections_per_network", 50, 1..100_001) as usize;
    let min_data_rate = s.integer(ctx, "min_data_rate", 500, 0..1_000_000_001);
    let budget_span = s.span_of("memory_budget");
    let memory_budget = s.integer(ctx, "memory_budget", 200 * 1024 * 1024, 1 << 20..(1 << 40));
    if memory_budget < max_message_size {
        ctx.error(
            budget_span.as_ref(),
            "server.memory_budget",
            format!("{memory_budget} is less than max_message_size ({max_message_size}): no mail of the largest size could ever be received"),
        );
    }
    let max_recipients = s.integer(ctx, "max_recipients", 100, 1..10_001) as usize;
    let max_errors = s.integer(ctx, "max_errors", 10, 1..1_001) as usize;
    let max_line_length = s.integer(ctx, "max_line_length", 4096, 512..65_537) as usize;
    let bare_line_endings = match s.string(ctx, "bare_line_endings").as_deref() {
        None | Some("reject") => BareLineEndings::Reject,
        Some("keep") => BareLineEndings::Keep,
        Some("normalize") => BareLineEndings::Normalize,
        Some(other) => {
            ctx.error(
                span.as_ref(),
                "server.bare_line_endings",
                format!("{other:?}: expected \"reject\", \"normalize\" or \"keep\""),
            );
            BareLineEndings::Reject
        }
    };
    let secs = Duration::from_secs;
    let greeting_delay = s.duration(ctx, "greeting_delay", secs(0), secs(0)..secs(31));
    let command_timeout = s.duration(ctx, "command_timeout", secs(300), secs(1)..secs(3601));
    let data_timeout = s.duration(ctx, "data_timeout", secs(600), secs(1)..secs(3601));
    let session_timeout = s.duration(ctx, "session_timeout", secs(1800), secs(1)..secs(86_401));
    let shutdown_timeout = s.duration(ctx, "shutdown_timeout", secs(30), secs(0)..secs(3601));
    let zone_span = s.span_of("time_zone");
    let time_zone = match s.string(ctx, "time_zone") {
        None => jiff::tz::TimeZone::UTC,
        Some(name) => jiff::tz::TimeZone::get(&name).unwrap_or_else(|_| {
            ctx.error(
                zone_span.as_ref(),
                "server.time_zone",
                format!("{name:?} is not an IANA time zone such as \"Europe/Berlin\""),
            );
            jiff::tz::TimeZone::UTC
        }),
    };
    s.finish(ctx);
    ServerConfig {
        listen,
        hostname,
        database,
        state_dir,
        max_message_size,
        max_connections,
        max_connections_per_client,
        max_connections_per_network,
        min_data_rate,
        memory_budget,
        max_recipients,
        max_errors,
        max_line_length,
        bare_line_endings,
        greeting_delay,
        command_timeout,
        data_timeout,
        session_timeout,
        shutdown_timeout,
        time_zone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
listen = ["127.0.0.1:2525"]
hostname = "jobs.acme.example"
database = "var/jobmail.db"

[[subsidiary]]
id = "acme-de"
name = "ACME GmbH"
jobs_address = "jobs@acme.example"
aliases = ["karriere@acme.example"]
domains = ["acme-group.example"]

[[category]]
id = "engineering"

[[position]]
id = "backend"
title = "Backend Engineer"
subsidiary = "acme-de"
category = "engineering"
alias = "jobs+backend@acme.example"
"#;

    #[test]
    fn good_config_reads_with_defaults() {
        let c = parse(GOOD, Path::new("/etc/jobmail/jobmail.toml")).unwrap();
        assert_eq!(
            c.server.database,
            PathBuf::from("/etc/jobmail/var/jobmail.db")
        );
        assert_eq!(c.server.max_message_size, 10_485_760);
        assert_eq!(c.server.bare_line_endings, BareLineEndings::Reject);
        assert_eq!(
            c.subsidiaries[0].domains,
            vec!["acme-group.example".to_string(), "acme.example".to_string()]
        );
        assert_eq!(
            c.positions[0].alias.as_ref().unwrap().to_string(),
            "jobs+backend@acme.example"
        );
    }

    #[test]
    fn a_config_named_without_a_directory_is_read_relative_to_the_working_directory() {
        let text = GOOD.replace("var/jobmail.db", "jobmail.db");
        let c = parse(&text, Path::new("jobmail.toml")).unwrap();
        assert_eq!(c.server.database, PathBuf::from("./jobmail.db"));
        // Not "": the key file must be creatable there.
        assert_eq!(c.server.state_dir, PathBuf::from("."));
    }

    #[test]
    fn every_error_at_once_with_key_and_line() {
        let bad = r#"
[server]
listn = ["127.0.0.1:2525"]
max_message_size = 0
command_timeout = "forever"

[[subsidiary]]
id = "acme"
jobs_address = "jobs%evil@acme.example"

[[subsidiary]]
id = "acme"
jobs_address = "jobs@other.example"

[[category]]
id = "eng"

[[position]]
id = "p1"
title = "X"
subsidiary = "nope"
category = "missing"
"#;
        let errs = parse(bad, Path::new("bad.toml")).unwrap_err();
        let keys: Vec<&str> = errs.errors.iter().map(|e| e.key.as_str()).collect();
        for expected in [
            "server.listn",
            "server.max_message_size",
            "server.command_timeout",
            "subsidiary[0].jobs_address",
            "subsidiary[1].id",
            "position[0].subsidiary",
            "position[0].category",
        ] {
            assert!(keys.contains(&expected), "missing {expected} in {keys:?}");
        }
        let unknown = errs
            .errors
            .iter()
            .find(|e| e.key == "server.listn")
            .unwrap();
        assert_eq!(unknown.line, Some(3));
        let text = errs.to_string();
        assert!(
            text.contains("bad.toml:3: server.listn: unknown key"),
            "{text}"
        );
    }

    #[test]
    fn syntax_error_is_reported_with_line() {
        let errs = parse("[server\nhostname = 1", Path::new("x.toml")).unwrap_err();
        assert!(
            errs.errors
                .iter()
                .any(|e| e.message.starts_with("TOML syntax"))
        );
    }

    #[test]
    fn an_address_may_lead_to_one_place_only() {
        let text = GOOD.replace("karriere@acme.example", "JOBS@acme.example");
        let errs = parse(&text, Path::new("x.toml")).unwrap_err();
        assert!(
            errs.errors
                .iter()
                .any(|e| e.key == "subsidiary[0].aliases[0]"),
            "{errs}"
        );
        let text = GOOD.replace(
            "jobs+backend@acme.example",
            "jobs+backend@elsewhere.example",
        );
        let errs = parse(&text, Path::new("x.toml")).unwrap_err();
        assert!(
            errs.errors.iter().any(|e| e.key == "position[0].alias"),
            "{errs}"
        );
    }
}
