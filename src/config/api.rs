//! `[api]`: the HTTP API's own listen address (off without it), the most
//! a request body may hold, and how many requests a token may make.

#[allow(unused_imports)]
use super::*;

/// The HTTP API, when configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// The largest request body (an upload with its form fields).
    pub max_body_bytes: u64,
    /// Requests per minute per token, on average (0: no limit).
    pub requests_per_minute: u64,
    /// Requests a token may make at once above the average.
    pub burst: u64,
}

/// `[api]`; `None` without the section: no HTTP listener.
pub(super) fn read_api(
    ctx: &mut Ctx,
    root: &mut Section,
    smtp: &[SocketAddr],
) -> Option<ApiConfig> {
    let mut s = table_section(ctx, root, "api")?;
    let span = s.span_of("listen");
    let listen = match s.required_string(ctx, "listen") {
        Some(text) => match text.parse::<SocketAddr>() {
            Ok(a) if smtp.contains(&a) => {
                ctx.error(
                    span.as_ref(),
                    "api.listen",
                    format!("{a} is also in server.listen"),
                );
                None
            }
            Ok(a) => Some(a),
            Err(_) => {
                ctx.error(
                    span.as_ref(),
                    "api.listen",
                    format!("{text:?} is not an IP:port (e.g. \"127.0.0.1:8025\")"),
                );
                None
            }
        },
        None => None,
    };
    // An upload of the 10 MB a mail may have, with its form around it.
    let max_body_bytes = s.integer(
        ctx,
        "max_body_bytes",
        DEFAULT_MAX_MESSAGE_SIZE + 64 * 1024,
        1024..(1 << 30) + 1,
    );
    let requests_per_minute = s.integer(ctx, "requests_per_minute", 600, 0..1_000_001);
    let burst = s.integer(ctx, "burst", 100, 1..1_000_001);
    s.finish(ctx);
    Some(ApiConfig {
        listen: listen?,
        max_body_bytes,
        requests_per_minute,
        burst,
    })
}
