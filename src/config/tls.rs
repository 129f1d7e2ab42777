//! `[tls]`: STARTTLS on the listener, an optional implicit-TLS listener,
//! and the client networks that must use TLS before MAIL FROM.
//!
//! Only the syntax is read here: paths resolved against the config file's
//! directory, addresses, networks, the handshake timeout. The certificate
//! and key files are not opened here (that is `crate::inbound::tls::load`,
//! run by `config check` and `serve` alike, and by a reload later), so that
//! reading a config stays a pure function of its text.

#[allow(unused_imports)]
use super::*;

use std::net::IpAddr;

/// A client network such as `10.0.0.0/8` or `2001:db8::/32`; a bare address
/// is one host (`/32`, `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Network {
    /// Reads `addr/prefix` or a bare address. The host bits must be zero
    /// (`10.1.2.3/8` is refused: it is usually a typo for one host).
    pub fn parse(text: &str) -> Result<Network, String> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| {
            format!("{text:?} is not a network such as \"10.0.0.0/8\" or \"2001:db8::/32\"")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{text:?}: the prefix length must be 0 to {max}")),
            },
        };
        let network = Network { addr, prefix };
        if network.masked(addr) != addr {
            let base = network.masked(addr);
            return Err(format!(
                "{text:?} has host bits set; the network is \"{base}/{prefix}\" (or write the one host as \"{addr}\")"
            ));
        }
        Ok(network)
    }

    /// `ip` with every bit past the prefix cleared (same family as `ip`).
    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((bits & mask).into())
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((bits & mask).into())
            }
        }
    }

    /// Whether `ip` is in this network. An IPv4 client seen on an IPv6
    /// socket (`::ffff:10.1.2.3`) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        ip.is_ipv4() == self.addr.is_ipv4() && self.masked(ip) == self.addr
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `[tls]`: the listener's certificate and where TLS is offered or required.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// PEM file: the server certificate first, then its intermediates
    /// (certbot's `fullchain.pem`). Resolved against the config's directory.
    pub certificate: PathBuf,
    /// PEM file: the certificate's private key (PKCS#8, PKCS#1 RSA or SEC1 EC;
    /// certbot's `privkey.pem`).
    pub key: PathBuf,
    /// Addresses for implicit TLS (the TLS handshake first, port 465 style),
    /// besides `[server] listen`, where STARTTLS is offered.
    pub implicit_listen: Vec<SocketAddr>,
    /// Clients from these networks must be in TLS before MAIL FROM
    /// (`530 5.7.0 Must issue a STARTTLS command first`).
    pub require_from: Vec<Network>,
    /// Longest a TLS handshake may take; then the connection is closed.
    pub handshake_timeout: Duration,
}

/// `[tls]`, if there is one: TLS is offered only when it is configured.
pub(super) fn read_tls(
    ctx: &mut Ctx,
    root: &mut Section,
    base_dir: &Path,
    listen: &[SocketAddr],
) -> Option<TlsConfig> {
    let mut s = table_section(ctx, root, "tls")?;
    let path = |ctx: &mut Ctx, s: &mut Section, key: &str| {
        s.required_string(ctx, key).map(|p| {
            let p = PathBuf::from(p);
            if p.is_relative() { base_dir.join(p) } else { p }
        })
    };
    let certificate = path(ctx, &mut s, "certificate");
    let key = path(ctx, &mut s, "key");
    let mut implicit_listen = Vec::new();
    for (j, (text, span)) in s.strings(ctx, "implicit_listen").into_iter().enumerate() {
        let key = format!("tls.implicit_listen[{j}]");
        match text.parse::<SocketAddr>() {
            Ok(a) if listen.contains(&a) || implicit_listen.contains(&a) => ctx.error(
                Some(&span),
                &key,
                format!(
                    "{a} is already listened on (server.listen or here): one address, one mode"
                ),
            ),
            Ok(a) => implicit_listen.push(a),
            Err(_) => ctx.error(
                Some(&span),
                &key,
                format!("{text:?} is not an address:port such as \"0.0.0.0:465\" or \"[::]:465\""),
            ),
        }
    }
    let mut require_from = Vec::new();
    for (j, (text, span)) in s.strings(ctx, "require_from").into_iter().enumerate() {
        match Network::parse(&text) {
            Ok(n) => require_from.push(n),
            Err(e) => ctx.error(Some(&span), &format!("tls.require_from[{j}]"), e),
        }
    }
    let secs = Duration::from_secs;
    let handshake_timeout = s.duration(ctx, "handshake_timeout", secs(30), secs(1)..secs(301));
    s.finish(ctx);
    Some(TlsConfig {
        certificate: certificate?,
        key: key?,
        implicit_listen,
        require_from,
        handshake_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Network {
        Network::parse(text).unwrap()
    }

    #[test]
    fn networks_contain_their_hosts_and_nothing_else() {
        let ten = net("10.0.0.0/8");
        assert!(ten.contains("10.200.3.4".parse().unwrap()));
        assert!(!ten.contains("11.0.0.1".parse().unwrap()));
        // An IPv4 client on a dual-stack socket.
        assert!(ten.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!ten.contains("2001:db8::1".parse().unwrap()));
        let host = net("127.0.0.1");
        assert_eq!(host.prefix, 32);
        assert!(host.contains("127.0.0.1".parse().unwrap()));
        assert!(!host.contains("127.0.0.2".parse().unwrap()));
        let v6 = net("2001:db8::/32");
        assert!(v6.contains("2001:db8:1::25".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        let all = net("0.0.0.0/0");
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        assert_eq!(net("::/0").to_string(), "::/0");
    }

    #[test]
    fn a_network_with_host_bits_or_a_bad_prefix_is_refused() {
        let e = Network::parse("10.1.2.3/8").unwrap_err();
        assert!(e.contains("\"10.0.0.0/8\""), "{e}");
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("mail.acme.example").is_err());
        assert!(Network::parse("2001:db8::1/129").is_err());
    }
}
