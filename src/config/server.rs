//! `[server]`: the listener, its limits, the store and the state directory.

#[allow(unused_imports)]
use super::*;

/// How long DATA may go slower than `min_data_rate` at its start (or
/// `data_timeout`, if that is shorter).
pub const DATA_RATE_GRACE: Duration = Duration::from_secs(30);

/// 10 MB, the size limit recruiting tools and helpdesks use.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 10 * 1024 * 1024;

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

pub(super) fn read_server(
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
