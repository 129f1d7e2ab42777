//! TLS on the listener: the server certificate and key read from their PEM
//! files and checked, the rustls configuration built from them (the `ring`
//! provider, TLS 1.2 and 1.3), the handle sessions read it through so that
//! a reload can swap it, the handshake with its timeout, and the stream a
//! session runs over before and after STARTTLS.
//!
//! [`load`] is the one place the files are read and judged, for `config
//! check`, for `serve` at start and for a reload: what it refuses (a file
//! that cannot be read, no certificate, an expired one, a key that does not
//! match) never reaches a client. It must not speak SMTP (the session
//! decides when to hand its stream over, and what to discard first), read
//! the config file, or log key material.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::server::TlsStream;

use crate::config::{Network, TlsConfig};
use crate::mail::parsed::TlsInfo;

/// A checked certificate, ready to serve.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub server: Arc<ServerConfig>,
    /// When the server certificate (the chain's first) expires, Unix ms.
    pub not_after_ms: i64,
    /// Its subject's common name (`CN=mx.acme.example`), if it has one.
    pub subject: Option<String>,
}

/// The TLS side of the listener, shared by all its sessions: the current
/// rustls configuration (read once per handshake, so a reload that swaps it
/// takes effect from the next STARTTLS on, without a restart), the networks
/// that must use TLS, and the handshake timeout.
#[derive(Debug)]
pub struct ServerTls {
    current: RwLock<Arc<ServerConfig>>,
    require_from: Vec<Network>,
    pub handshake_timeout: Duration,
}

impl ServerTls {
    /// Reads and checks the files of `config` ([`load`]).
    pub fn new(config: &TlsConfig) -> Result<(ServerTls, Loaded), Vec<String>> {
        let loaded = load(config, crate::clock::now_ms())?;
        let tls = ServerTls {
            current: RwLock::new(loaded.server.clone()),
            require_from: config.require_from.clone(),
            handshake_timeout: config.handshake_timeout,
        };
        Ok((tls, loaded))
    }

    /// The configuration the next handshake uses.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Swaps in a new configuration; sessions already in TLS keep theirs.
    pub fn replace(&self, server: Arc<ServerConfig>) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = server;
    }

    /// Reads the certificate and key again and swaps them in; on any
    /// problem the current ones stay and the problems are returned (what a
    /// SIGHUP handler will call).
    pub fn reload(&self, config: &TlsConfig) -> Result<Loaded, Vec<String>> {
        let loaded = load(config, crate::clock::now_ms())?;
        self.replace(loaded.server.clone());
        Ok(loaded)
    }

    /// Whether a client at `ip` must be in TLS before MAIL FROM.
    pub fn required_for(&self, ip: IpAddr) -> bool {
        self.require_from.iter().any(|n| n.contains(ip))
    }
}

/// Reads the certificate chain and the key of `config` and checks them as
/// of `now_ms`: each file readable, a certificate in the first, a key in
/// the second, no certificate of the chain expired or not yet valid, the
/// key the one of the (first) certificate. Every problem is one line that
/// names its key and file.
pub fn load(config: &TlsConfig, now_ms: i64) -> Result<Loaded, Vec<String>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut problems = Vec::new();
    let cert_path = config.certificate.display();
    let key_path = config.key.display();
    let chain = match std::fs::read(&config.certificate) {
        Err(e) => {
            problems.push(format!("tls.certificate: cannot read {cert_path}: {e}"));
            None
        }
        Ok(bytes) => match certificates(&bytes) {
            Err(e) => {
                problems.push(format!("tls.certificate: {cert_path}: {e}"));
                None
            }
            Ok(chain) => Some(chain),
        },
    };
    let mut not_after_ms = 0;
    let subject = chain
        .as_ref()
        .and_then(|c| c.first())
        .and_then(|c| common_name(c))
        .map(|cn| format!("CN={cn}"));
    if let Some(chain) = &chain {
        for (i, cert) in chain.iter().enumerate() {
            let which = if i == 0 {
                "the certificate".to_string()
            } else {
                format!("certificate {} of the chain", i + 1)
            };
            let Some((not_before, not_after)) = validity(cert) else {
                problems.push(format!(
                    "tls.certificate: {cert_path}: {which} is not an X.509 certificate"
                ));
                continue;
            };
            if i == 0 {
                not_after_ms = not_after;
            }
            let shown = |ms| crate::clock::rfc3339(ms).unwrap_or_else(|| ms.to_string());
            if not_after < now_ms {
                problems.push(format!(
                    "tls.certificate: {cert_path}: {which} expired on {}",
                    shown(not_after)
                ));
            } else if not_before > now_ms {
                problems.push(format!(
                    "tls.certificate: {cert_path}: {which} is not valid before {}",
                    shown(not_before)
                ));
            }
        }
    }
    let key = match std::fs::read(&config.key) {
        Err(e) => {
            problems.push(format!("tls.key: cannot read {key_path}: {e}"));
            None
        }
        Ok(bytes) => match PrivateKeyDer::from_pem_slice(&bytes) {
            Err(pem::Error::NoItemsFound) => {
                problems.push(format!(
                    "tls.key: {key_path} holds no PEM private key (-----BEGIN PRIVATE KEY-----, RSA or EC)"
                ));
                None
            }
            Err(e) => {
                problems.push(format!("tls.key: {key_path}: not a PEM private key: {e}"));
                None
            }
            Ok(key) => match provider.key_provider.load_private_key(key.clone_key()) {
                Err(e) => {
                    problems.push(format!("tls.key: {key_path}: not a usable key: {e}"));
                    None
                }
                Ok(signing) => Some((key, signing)),
            },
        },
    };
    let (Some(chain), Some((key, signing))) = (chain, key) else {
        return Err(problems);
    };
    match CertifiedKey::new(chain.clone(), signing).keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => problems
            .push(format!(
                "tls.key: {key_path} does not match the certificate in {cert_path} (a key of another certificate?)"
            )),
        Err(e) => problems.push(format!("tls.certificate: {cert_path}: {e}")),
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    match server_config(provider, chain, key) {
        Ok(server) => Ok(Loaded {
            server: Arc::new(server),
            not_after_ms,
            subject,
        }),
        Err(e) => Err(vec![format!(
            "tls: {cert_path} with {key_path} cannot be used: {e}"
        )]),
    }
}

/// Every certificate in a PEM file, in order; none is an error.
fn certificates(pem_bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_slice_iter(pem_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM: {e}"))?;
    if chain.is_empty() {
        return Err(
            "holds no certificate (no -----BEGIN CERTIFICATE----- block; certificate and key swapped?)"
                .into(),
        );
    }
    Ok(chain)
}

fn server_config(
    provider: Arc<CryptoProvider>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    // SMTP has no ALPN; the client's preference order is ignored for ours.
    config.ignore_client_order = true;
    Ok(config)
}

/// One DER element: its tag, its content and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;

/// The fields of an X.509 certificate's tbsCertificate from its validity
/// on (RFC 5280 4.1: `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE {
/// [0] version OPTIONAL, serialNumber, signature, issuer, validity,
/// subject, … } … }`).
fn from_validity(der: &[u8]) -> Option<&[u8]> {
    let (SEQUENCE, certificate, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(certificate)? else {
        return None;
    };
    let mut rest = tbs;
    if let Some((0xa0, _, after)) = element(rest) {
        rest = after;
    }
    for expected in [0x02, SEQUENCE, SEQUENCE] {
        let (tag, _, after) = element(rest)?;
        if tag != expected {
            return None;
        }
        rest = after;
    }
    Some(rest)
}

/// The subject's common name (OID 2.5.4.3) of an X.509 certificate, if it
/// has one as a string.
fn common_name(der: &[u8]) -> Option<String> {
    let (SEQUENCE, _, rest) = element(from_validity(der)?)? else {
        return None;
    };
    let (SEQUENCE, mut names, _) = element(rest)? else {
        return None;
    };
    // Name ::= SEQUENCE OF SET OF SEQUENCE { type OID, value ANY }
    while let Some((0x31, set, after)) = element(names) {
        names = after;
        let Some((SEQUENCE, pair, _)) = element(set) else {
            continue;
        };
        let Some((0x06, oid, value)) = element(pair) else {
            continue;
        };
        if oid == [0x55, 0x04, 0x03]
            && let Some((0x0c | 0x13 | 0x14 | 0x16, text, _)) = element(value)
        {
            return std::str::from_utf8(text).ok().map(str::to_string);
        }
    }
    None
}

/// notBefore and notAfter of an X.509 certificate, Unix ms.
fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (SEQUENCE, validity, _) = element(from_validity(der)?)? else {
        return None;
    };
    let (tag, not_before, after) = element(validity)?;
    let not_before = asn1_time(tag, not_before)?;
    let (tag, not_after, _) = element(after)?;
    Some((not_before, asn1_time(tag, not_after)?))
}

/// UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`), as RFC 5280 4.1.2.5 allows them, in Unix ms.
fn asn1_time(tag: u8, bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i16 = text.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let digits = rest.strip_suffix('Z')?;
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let two = |i: usize| digits[i..i + 2].parse::<i8>().ok();
    let date = jiff::civil::Date::new(year, two(0)?, two(2)?).ok()?;
    let time = jiff::civil::Time::new(two(4)?, two(6)?, two(8)?, 0).ok()?;
    let at = jiff::tz::Offset::UTC
        .to_timestamp(date.to_datetime(time))
        .ok()?;
    Some(at.as_millisecond())
}

/// The TLS handshake on `stream` with the current configuration, bounded
/// by the handshake timeout. Whatever the client sent before is not seen
/// here: the caller discarded it.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    tls: &ServerTls,
    timeout: Duration,
) -> Result<(TlsStream<S>, TlsInfo), String> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
    let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Err(_) => return Err(format!("no TLS handshake within {timeout:?}")),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(stream)) => stream,
    };
    let info = info(stream.get_ref().1);
    Ok((stream, info))
}

/// What was negotiated, as the `Received:` line and the store write it.
pub fn info(conn: &rustls::ServerConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS1.2".to_string(),
        Some(other) => other.as_str().unwrap_or("unknown").to_string(),
        None => "unknown".to_string(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| {
            let suite = s.suite();
            suite
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{:#06x}", u16::from(suite)))
        })
        .unwrap_or_else(|| "unknown".to_string());
    TlsInfo { version, cipher }
}

/// The stream a session runs over: the connection as accepted, or the TLS
/// stream over it once STARTTLS (or the implicit-TLS handshake) is done.
pub enum MaybeTls<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
    /// Only while a handshake holds the plain stream; a failed one leaves
    /// this behind, and the session ends.
    Gone,
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection was handed to TLS",
    )
}

impl<S: AsyncRead + AsyncWrite + Unpin> MaybeTls<S> {
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Tls(_))
    }

    /// The plain stream, for the handshake; `None` if already in TLS.
    pub fn take_plain(&mut self) -> Option<S> {
        match std::mem::replace(self, MaybeTls::Gone) {
            MaybeTls::Plain(s) => Some(s),
            other => {
                *self = other;
                None
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            MaybeTls::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            MaybeTls::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            MaybeTls::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            MaybeTls::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// A test CA and a server certificate for `localhost` and
/// `mx.test.example` signed by it, as PEM files in a directory.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::{Path, PathBuf};

    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

    pub struct Pki {
        pub ca_pem: String,
        pub certificate: PathBuf,
        pub key: PathBuf,
    }

    /// `expired`: the server certificate ran out in 2020.
    pub fn pki(dir: &Path, expired: bool) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Names of their own: with rcgen's one default name for both, OpenSSL
        // takes the server certificate for a self-signed one.
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "jobmail test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".into(), "mx.test.example".into()]).unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        let cert = params.signed_by(&key, &ca).unwrap();
        let certificate = dir.join("fullchain.pem");
        std::fs::write(&certificate, format!("{}{}", cert.pem(), ca.pem())).unwrap();
        let key_path = dir.join("privkey.pem");
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        Pki {
            ca_pem: ca.pem(),
            certificate,
            key: key_path,
        }
    }

    pub fn config(pki: &Pki) -> crate::config::TlsConfig {
        crate::config::TlsConfig {
            certificate: pki.certificate.clone(),
            key: pki.key.clone(),
            implicit_listen: Vec::new(),
            require_from: Vec::new(),
            handshake_timeout: std::time::Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn a_good_certificate_loads_with_its_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki(dir.path(), false);
        assert!(pki.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let loaded = load(&config(&pki), crate::clock::now_ms()).unwrap();
        assert_eq!(loaded.subject.as_deref(), Some("CN=rcgen self signed cert"));
        // rcgen's default: valid until 4096.
        assert!(
            crate::clock::rfc3339(loaded.not_after_ms)
                .unwrap()
                .starts_with("4096-01-01"),
            "{:?}",
            crate::clock::rfc3339(loaded.not_after_ms)
        );
    }

    #[test]
    fn every_problem_with_the_files_is_named_with_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let expired = pki(dir.path(), true);
        let now = crate::clock::now_ms();
        let problems = load(&config(&expired), now).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with(&format!(
                "tls.certificate: {}: the certificate expired on 2020-01-01T00:00:00+00:00",
                expired.certificate.display()
            )),
            "{problems:?}"
        );
        // Valid in 2019: the same files then load.
        assert!(load(&config(&expired), 1_560_000_000_000).is_ok());
        assert!(
            load(&config(&expired), 1_500_000_000_000).unwrap_err()[0]
                .contains("is not valid before 2019-01-01")
        );

        // The key of another certificate.
        let other = tempfile::tempdir().unwrap();
        let other = pki(other.path(), false);
        let mut mismatched = config(&other);
        mismatched.key = expired.key.clone();
        let problems = load(&mismatched, now).unwrap_err();
        assert_eq!(
            problems,
            [format!(
                "tls.key: {} does not match the certificate in {} (a key of another certificate?)",
                expired.key.display(),
                other.certificate.display()
            )]
        );

        // Certificate and key swapped; files that are not there.
        let mut swapped = config(&other);
        std::mem::swap(&mut swapped.certificate, &mut swapped.key);
        let problems = load(&swapped, now).unwrap_err();
        assert!(
            problems.iter().any(|p| p.starts_with(&format!(
                "tls.certificate: {}: holds no certificate",
                other.key.display()
            ))),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with(&format!(
                "tls.key: {} holds no PEM private key",
                other.certificate.display()
            ))),
            "{problems:?}"
        );
        let mut missing = config(&other);
        missing.certificate = dir.path().join("nope.pem");
        missing.key = dir.path().join("nokey.pem");
        let problems = load(&missing, now).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with(&format!(
                "tls.certificate: cannot read {}/nope.pem:",
                dir.path().display()
            )),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with(&format!(
                "tls.key: cannot read {}/nokey.pem:",
                dir.path().display()
            )),
            "{problems:?}"
        );
    }

    #[test]
    fn a_reload_swaps_the_certificate_for_new_handshakes_and_keeps_it_on_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let first = pki(dir.path(), false);
        let (tls, _) = ServerTls::new(&config(&first)).unwrap();
        let before = tls.current();
        let fresh = tempfile::tempdir().unwrap();
        let second = pki(fresh.path(), false);
        tls.reload(&config(&second)).unwrap();
        assert!(!Arc::ptr_eq(&before, &tls.current()), "swapped");
        let now = tls.current();
        let expired = tempfile::tempdir().unwrap();
        let expired = pki(expired.path(), true);
        assert!(tls.reload(&config(&expired)).is_err());
        assert!(
            Arc::ptr_eq(&now, &tls.current()),
            "a bad certificate is not swapped in"
        );
    }

    #[test]
    fn asn1_times_are_read_as_rfc_5280_writes_them() {
        // 2049 and 1950 are the edges of UTCTime's two-digit years.
        assert_eq!(
            asn1_time(0x17, b"491231235959Z").and_then(crate::clock::rfc3339),
            Some("2049-12-31T23:59:59+00:00".into())
        );
        assert_eq!(
            asn1_time(0x17, b"500101000000Z").and_then(crate::clock::rfc3339),
            Some("1950-01-01T00:00:00+00:00".into())
        );
        assert_eq!(
            asn1_time(0x18, b"20500101000000Z").and_then(crate::clock::rfc3339),
            Some("2050-01-01T00:00:00+00:00".into())
        );
        for bad in [
            &b"491231235959"[..],
            b"4912312359Z",
            b"491331235959Z",
            b"49123123595aZ",
            b"",
        ] {
            assert_eq!(asn1_time(0x17, bad), None, "{bad:?}");
        }
        assert_eq!(asn1_time(0x04, b"491231235959Z"), None);
    }

    #[test]
    fn truncated_or_foreign_der_is_no_certificate() {
        assert_eq!(validity(b""), None);
        assert_eq!(common_name(b""), None);
        assert_eq!(common_name(&[0x30, 0x03, 0x02, 0x01, 0x00]), None);
        assert_eq!(validity(&[0x30, 0x82, 0xff]), None);
        assert_eq!(validity(&[0x30, 0x03, 0x02, 0x01, 0x00]), None);
        assert!(certificates(b"no pem here").is_err());
    }
}
