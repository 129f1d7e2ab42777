//! `[[webhook]]`: the endpoints that get signed event deliveries, each with
//! its URL, the events it wants, its secret (read here from `secret_file`,
//! kept only in memory and never printed: its `Debug` says `<secret>`),
//! and how long deliveries are retried. It reads the config text and the
//! secret files; it sends nothing.

#[allow(unused_imports)]
use super::*;

/// Every event a webhook endpoint may subscribe to.
pub const EVENTS: &[&str] = &[
    "message.received",
    "message.unassigned",
    "outbox.sent",
    "outbox.failed",
    "outbox.bounced",
    "application.created",
    "auto_reply.suppressed",
];

/// Shortest secret a `secret_file` may hold (characters, after trimming).
const MIN_SECRET_CHARS: usize = 24;

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    /// `https://…`, or `http://` to a loopback address or with
    /// `allow_plain_http`.
    pub url: String,
    pub secret: WebhookSecret,
    /// The event types it gets, each one of [`EVENTS`].
    pub events: Vec<String>,
    /// The first retry waits this long; each next one twice as long, at
    /// most an hour.
    pub retry_after: Duration,
    /// A delivery still failing this long after its event is given up
    /// (`failed`, shown by `jobmail webhooks events`).
    pub give_up_after: Duration,
    /// The most a delivery attempt may take, connect to response.
    pub timeout: Duration,
    /// PEM certificates trusted for this endpoint beside the system's
    /// roots (an ATS behind the company's own CA).
    pub ca_file: Option<PathBuf>,
}

/// A webhook's signing secret. Never shown: `{:?}` prints `<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    pub fn new(bytes: Vec<u8>) -> Self {
        WebhookSecret(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// Every `[[webhook]]`, with its index and span.
pub(super) fn read_webhooks(
    ctx: &mut Ctx,
    root: &mut Section,
    base_dir: &Path,
) -> Vec<(usize, Range<usize>, Webhook)> {
    let mut out = Vec::new();
    let mut ids = Vec::new();
    for (i, table, span) in tables(ctx, root, "webhook") {
        let key = format!("webhook[{i}]");
        let mut s = Section::new(key.clone(), table, Some(span.clone()));
        let id_span = s.span_of("id");
        let id = s.required_string(ctx, "id");
        if let (Some(id), Some(id_span)) = (&id, &id_span) {
            check_id(ctx, id, id_span, &format!("{key}.id"));
            ids.push((i, span.clone(), id.clone()));
        }
        let plain_http = s.boolean(ctx, "allow_plain_http", false);
        let url_span = s.span_of("url");
        let url = s
            .required_string(ctx, "url")
            .and_then(|u| match check_url(&u, plain_http) {
                Ok(()) => Some(u),
                Err(e) => {
                    ctx.error(url_span.as_ref(), &format!("{key}.url"), e);
                    None
                }
            });
        let secret_span = s.span_of("secret_file");
        let secret = s.required_string(ctx, "secret_file").and_then(|f| {
            let path = base_dir.join(f);
            match read_secret(&path) {
                Ok(secret) => Some(secret),
                Err(e) => {
                    ctx.error(secret_span.as_ref(), &format!("{key}.secret_file"), e);
                    None
                }
            }
        });
        let listed = s.strings(ctx, "events");
        let given = listed.len();
        let events: Vec<String> = listed
            .into_iter()
            .filter_map(|(e, span)| {
                if EVENTS.contains(&e.as_str()) {
                    Some(e)
                } else {
                    ctx.error(
                        Some(&span),
                        &format!("{key}.events"),
                        format!("{e:?} is not an event (known: {})", EVENTS.join(", ")),
                    );
                    None
                }
            })
            .collect();
        if given == 0 {
            ctx.error(
                Some(&span),
                &format!("{key}.events"),
                format!(
                    "a webhook needs the events it wants ({})",
                    EVENTS.join(", ")
                ),
            );
        }
        let secs = Duration::from_secs;
        let retry_after = s.duration(
            ctx,
            "retry_after",
            secs(10),
            Duration::from_millis(100)..secs(3601),
        );
        let give_up_after = s.duration(
            ctx,
            "give_up_after",
            secs(3 * 86_400),
            secs(60)..secs(30 * 86_400 + 1),
        );
        let timeout = s.duration(ctx, "timeout", secs(10), secs(1)..secs(301));
        let ca_span = s.span_of("ca_file");
        let ca_file = s.string(ctx, "ca_file").map(|f| base_dir.join(f));
        if let Some(path) = &ca_file
            && let Err(e) = read_certificates(path)
        {
            ctx.error(ca_span.as_ref(), &format!("{key}.ca_file"), e);
        }
        s.finish(ctx);
        if let (Some(id), Some(url), Some(secret)) = (id, url, secret) {
            out.push((
                i,
                span,
                Webhook {
                    id,
                    url,
                    secret,
                    events,
                    retry_after,
                    give_up_after,
                    timeout,
                    ca_file,
                },
            ));
        }
    }
    duplicates(ctx, "webhook", ids.iter().map(|(i, s, id)| (*i, s, id)));
    out
}

/// An absolute `http(s)://host[:port]/path` URL. Plain HTTP carries the
/// candidates' names and subjects in clear, so it is refused unless the
/// host is a loopback address or `allow_plain_http` says the network is
/// private.
fn check_url(url: &str, plain_http: bool) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|_| {
        format!("{url:?} is not a URL such as \"https://ats.example/hooks/jobmail\"")
    })?;
    let Some(host) = uri.host() else {
        return Err(format!("{url:?} has no host"));
    };
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(format!(
            "{url:?} has credentials in it: the signature is what authenticates jobmail"
        ));
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if plain_http || is_loopback(host) => Ok(()),
        Some("http") => Err(format!(
            "{url:?}: plain HTTP sends candidates' data in clear; use https:// (or allow_plain_http = true on a private network)"
        )),
        _ => Err(format!("{url:?}: only http:// and https:// URLs")),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The certificates of a PEM file: at least one, each well-formed.
pub fn read_certificates(
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certificates = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certificates)
}

fn read_secret(path: &Path) -> Result<WebhookSecret, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let secret = text.trim();
    if secret.chars().count() < MIN_SECRET_CHARS {
        return Err(format!(
            "{}: a secret needs at least {MIN_SECRET_CHARS} characters (e.g. `openssl rand -hex 32`)",
            path.display()
        ));
    }
    Ok(WebhookSecret(secret.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_must_be_https_unless_loopback_or_allowed() {
        assert!(check_url("https://ats.example/hooks", false).is_ok());
        assert!(check_url("http://127.0.0.1:9000/hooks", false).is_ok());
        assert!(check_url("http://[::1]:9000/hooks", false).is_ok());
        assert!(check_url("http://localhost/hooks", false).is_ok());
        assert!(check_url("http://ats.internal/hooks", false).is_err());
        assert!(check_url("http://ats.internal/hooks", true).is_ok());
        assert!(check_url("ftp://ats.example/", true).is_err());
        assert!(check_url("/hooks", true).is_err());
        assert!(check_url("https://user:pw@ats.example/", false).is_err());
        assert!(check_url("not a url", false).is_err());
    }

    #[test]
    fn a_secret_is_never_printed() {
        let secret = WebhookSecret(b"0123456789abcdef0123456789abcdef".to_vec());
        assert_eq!(format!("{secret:?}"), "<secret>");
    }
}
