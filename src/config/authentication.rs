//! `[authentication]`: whether and how SPF, DKIM, DMARC and ARC are
//! checked on receipt.

#[allow(unused_imports)]
use super::*;

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

/// `[authentication]`, or its defaults.
pub(super) fn read_authentication(ctx: &mut Ctx, root: &mut Section) -> AuthenticationConfig {
    let secs = Duration::from_secs;
    let mut authentication = AuthenticationConfig {
        verify: true,
        resolver: Resolver::System,
        timeout: secs(5),
    };
    if let Some(mut section) = table_section(ctx, root, "authentication") {
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
    authentication
}
