//! Who really sent a mail: SPF, DKIM, DMARC and ARC verdicts on receipt,
//! with `mail-auth` and its resolver (the system's, or one DNS server from
//! `[authentication] resolver`).
//!
//! Runs in the session after the final dot, before the mail goes to the
//! store, bounded by `[authentication] timeout` for all lookups together;
//! a lookup that fails or times out is a `temperror`, never a lost or
//! delayed-forever mail. The verdicts are stored with the mail
//! (`crate::mail::parsed::Authentication`) and read by the matcher and the
//! acknowledgement rules; nothing here decides what a verdict changes.
//! This is the only DNS client in jobmail; it sends no mail and holds no SQL.

use std::net::IpAddr;
use std::time::Duration;

use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::{
    AuthenticatedMessage, DkimResult, DmarcResult, MessageAuthenticator, SpfResult, dmarc::Policy,
    dmarc::verify::DmarcParameters, spf::verify::SpfParameters,
};

use crate::config::{AuthenticationConfig, Resolver};
use crate::mail::parsed::{Authentication, DkimVerdict};

/// Checks mail against DNS.
pub struct Verifier {
    authenticator: MessageAuthenticator,
    /// Our own host name, for the SPF `%{r}` macro.
    hostname: String,
    timeout: Duration,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hostname", &self.hostname)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Verifier {
    /// `None` when verification is off in the config.
    pub fn from_config(
        config: &AuthenticationConfig,
        hostname: &str,
    ) -> Result<Option<Verifier>, String> {
        if !config.verify {
            return Ok(None);
        }
        let authenticator = match config.resolver {
            Resolver::System => MessageAuthenticator::new_system_conf()
                .map_err(|e| format!("cannot read the system's resolver configuration: {e}"))?,
            Resolver::Server(addr) => {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                server.connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                    .into_iter()
                    .map(|mut c| {
                        c.port = addr.port();
                        c
                    })
                    .collect();
                let mut options = ResolverOpts::default();
                options.timeout = config.timeout;
                options.attempts = 1;
                MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![server]), options)
                    .map_err(|e| format!("cannot set up the resolver {addr}: {e}"))?
            }
        };
        Ok(Some(Verifier {
            authenticator,
            hostname: hostname.to_string(),
            timeout: config.timeout,
        }))
    }

    /// The verdicts for one mail: `content` as the client sent it, from
    /// `ip` that said `helo`, with envelope sender `mail_from` (empty for
    /// the null sender, when SPF checks the HELO name).
    pub async fn verify(
        &self,
        content: &[u8],
        ip: IpAddr,
        helo: &str,
        mail_from: &str,
    ) -> Authentication {
        match tokio::time::timeout(self.timeout, self.checks(content, ip, helo, mail_from)).await {
            Ok(verdicts) => verdicts,
            Err(_) => Authentication {
                spf: "temperror".into(),
                spf_domain: mail_from
                    .rsplit_once('@')
                    .map_or(helo, |(_, d)| d)
                    .to_ascii_lowercase(),
                dmarc: "temperror".into(),
                arc: "temperror".into(),
                from_domain: from_domain(content).unwrap_or_default(),
                detail: format!("the checks took longer than {:?}", self.timeout),
                ..Authentication::default()
            },
        }
    }

    async fn checks(
        &self,
        content: &[u8],
        ip: IpAddr,
        helo: &str,
        mail_from: &str,
    ) -> Authentication {
        let helo = if helo.is_empty() { "unknown" } else { helo };
        let spf_params = if mail_from.is_empty() {
            SpfParameters::verify_ehlo(ip, helo, &self.hostname)
        } else {
            SpfParameters::verify_mail_from(ip, helo, &self.hostname, mail_from)
        };
        let spf = self.authenticator.verify_spf(spf_params).await;
        let spf_domain = if mail_from.is_empty() {
            helo.to_ascii_lowercase()
        } else {
            mail_from
                .rsplit_once('@')
                .map(|(_, d)| d.to_ascii_lowercase())
                .unwrap_or_default()
        };
        let mut out = Authentication {
            spf: spf_word(spf.result()).into(),
            spf_domain: spf_domain.clone(),
            ..Authentication::default()
        };
        // mail-auth needs a From and a parsable header block; a mail it
        // cannot read has no DKIM, ARC or DMARC verdict.
        let Some(message) = AuthenticatedMessage::parse(content) else {
            out.dmarc = "none".into();
            out.arc = "none".into();
            out.detail = "no From header mail-auth could read".into();
            return out;
        };
        let dkim = self.authenticator.verify_dkim(&message).await;
        out.dkim = dkim
            .iter()
            .map(|d| DkimVerdict {
                domain: d
                    .signature()
                    .map(|s| s.d.to_ascii_lowercase())
                    .unwrap_or_default(),
                result: dkim_word(d.result()).into(),
            })
            .collect();
        let arc = self.authenticator.verify_arc(&message).await;
        out.arc = dkim_word(arc.result()).into();
        if out.arc == "pass"
            && let Some(seal) = message.as_headers.iter().max_by_key(|h| h.header.i)
        {
            out.arc_sealer = seal.header.d.to_ascii_lowercase();
            if let Some(results) = message
                .aar_headers
                .iter()
                .find(|h| h.header.i == seal.header.i)
            {
                out.arc_results = String::from_utf8_lossy(results.value)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .take(2048)
                    .collect();
            }
        }
        let dmarc = self
            .authenticator
            .verify_dmarc(DmarcParameters::new(&message, &dkim, &spf_domain, &spf))
            .await;
        out.from_domain = dmarc.domain().to_ascii_lowercase();
        out.dmarc = match (dmarc.spf_result(), dmarc.dkim_result()) {
            (DmarcResult::Pass, _) | (_, DmarcResult::Pass) => "pass",
            (DmarcResult::TempError(_), _) | (_, DmarcResult::TempError(_)) => "temperror",
            (DmarcResult::PermError(_), _) | (_, DmarcResult::PermError(_)) => "permerror",
            // No aligned identifier passed: a failure where the domain
            // publishes a policy, else nothing to fail.
            _ if dmarc.dmarc_record().is_some() => "fail",
            _ => "none",
        }
        .into();
        out.dmarc_policy = match dmarc.dmarc_record() {
            None => String::new(),
            Some(_) => match dmarc.policy() {
                Policy::Reject => "reject",
                Policy::Quarantine => "quarantine",
                Policy::None => "none",
                Policy::Unspecified => "",
            }
            .into(),
        };
        out
    }
}

/// The domain of the first `From:` address, read leniently (for a timeout,
/// when mail-auth did not get to say).
fn from_domain(content: &[u8]) -> Option<String> {
    let head_end = memchr::memmem::find(content, b"\r\n\r\n").unwrap_or(content.len());
    let head = String::from_utf8_lossy(&content[..head_end.min(64 * 1024)]);
    let line = head
        .split("\r\n")
        .find(|l| l.len() > 5 && l[..5].eq_ignore_ascii_case("from:"))?;
    let at = line.rfind('@')?;
    let domain: String = line[at + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .collect();
    (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

fn spf_word(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

fn dkim_word(r: &DkimResult) -> &'static str {
    match r {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_from_domain_is_read_leniently() {
        assert_eq!(
            from_domain(b"Subject: x\r\nFROM: Erika <Erika@Example.ORG>\r\n\r\nbody"),
            Some("example.org".into())
        );
        assert_eq!(from_domain(b"Subject: x\r\n\r\nFrom: a@b.example"), None);
    }
}
