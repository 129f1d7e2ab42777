//! `[metrics]`: the address Prometheus scrapes `/metrics` on. Without the
//! section (the default) jobmail opens no such socket.

#[allow(unused_imports)]
use super::*;

/// Where the metrics are served (`[metrics]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// One address:port; plain HTTP, so loopback or a private network.
    pub listen: SocketAddr,
}

/// `[metrics]`, if there is one. `taken`: the SMTP addresses, which it
/// must not share.
pub(super) fn read_metrics(
    ctx: &mut Ctx,
    root: &mut Section,
    taken: &[SocketAddr],
) -> Option<MetricsConfig> {
    let mut s = table_section(ctx, root, "metrics")?;
    let span = s.span_of("listen");
    let listen =
        s.required_string(ctx, "listen")
            .and_then(|text| match text.parse::<SocketAddr>() {
                Ok(a) if taken.contains(&a) => {
                    ctx.error(
                        span.as_ref(),
                        "metrics.listen",
                        format!(
                            "{a} is an SMTP address already (server.listen or tls.implicit_listen)"
                        ),
                    );
                    None
                }
                Ok(a) => Some(a),
                Err(_) => {
                    ctx.error(
                        span.as_ref(),
                        "metrics.listen",
                        format!("{text:?} is not an address:port such as \"127.0.0.1:9125\""),
                    );
                    None
                }
            });
    s.finish(ctx);
    Some(MetricsConfig { listen: listen? })
}

#[cfg(test)]
mod tests {
    use super::super::*;

    const COMPANY: &str = "[[subsidiary]]\nid = \"acme\"\njobs_address = \"jobs@acme.example\"\n";

    #[test]
    fn metrics_are_off_unless_configured_and_never_on_an_smtp_address() {
        let path = Path::new("/etc/jobmail/jobmail.toml");
        assert_eq!(parse(COMPANY, path).unwrap().metrics, None);
        let on = format!("[metrics]\nlisten = \"127.0.0.1:9125\"\n{COMPANY}");
        assert_eq!(
            parse(&on, path).unwrap().metrics.unwrap().listen,
            "127.0.0.1:9125".parse().unwrap()
        );
        let clash = format!(
            "[server]\nlisten = [\"127.0.0.1:2525\"]\n[metrics]\nlisten = \"127.0.0.1:2525\"\n{COMPANY}"
        );
        let errors = parse(&clash, path).unwrap_err().errors;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].key, "metrics.listen");
        assert!(
            errors[0].message.contains("an SMTP address already"),
            "{errors:?}"
        );
    }
}
