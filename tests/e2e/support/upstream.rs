//! A real SMTP server on 127.0.0.1 for the relay to deliver to: it records
//! every delivery (envelope and bytes, dot-unstuffed) and, when told,
//! fails on purpose at the final dot: 4xx, 5xx, a disconnect, or a stall.
//! It may ask for AUTH PLAIN or LOGIN, accept or refuse it, and echo what
//! it was sent in its refusal (as a careless server might).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the server does at the end of a mail's DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtDot {
    Accept,
    /// 451 4.3.0
    Temporary,
    /// 554 5.7.1
    Permanent,
    /// Close the connection without a reply.
    Disconnect,
    /// Answer 250, but only after this long.
    Stall(Duration),
    /// Answer 250, then close the connection without a word (as an upstream
    /// does that drops idle clients).
    AcceptThenClose,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
    /// What the server answered (Accept: it took the mail).
    pub answer: AtDot,
    /// The mail came over TLS (after STARTTLS).
    pub tls: bool,
}

/// Anything the session can talk over: the TCP stream, or TLS on top of it.
trait Stream: std::io::Read + Write + Send {}
impl<T: std::io::Read + Write + Send> Stream for T {}

enum Next {
    Done,
    StartTls,
}

#[derive(Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    pub deliveries: Arc<Mutex<Vec<Delivery>>>,
    /// Answers for the next mails, in order; then `Accept`.
    pub script: Arc<Mutex<VecDeque<AtDot>>>,
    /// `Some(accept)`: AUTH is offered, and the answer is 235 or 535.
    pub auth: Arc<Mutex<Option<bool>>>,
    /// The one AUTH mechanism offered: `PLAIN` (unless set) or `LOGIN`.
    pub mechanism: Arc<Mutex<&'static str>>,
    /// A refused AUTH quotes what the client sent in its 535 reply.
    pub echo_credentials: Arc<Mutex<bool>>,
    /// Refuse every envelope sender with 553 (a relay that does not let
    /// us send from our addresses).
    pub refuse_senders: Arc<Mutex<bool>>,
    /// What AUTH carried: (user, password).
    pub credentials_seen: Arc<Mutex<Vec<(String, String)>>>,
    /// Offer STARTTLS with this server configuration…
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// …or speak TLS from the first byte (port 465 style).
    pub implicit_tls: bool,
    /// Every EHLO argument seen, one per EHLO, in order.
    pub ehlo: Arc<Mutex<Vec<String>>>,
    /// TCP connections accepted.
    pub connections: Arc<Mutex<usize>>,
}

impl Upstream {
    pub fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind test upstream");
        let addr = listener.local_addr().unwrap();
        let up = Upstream {
            addr,
            deliveries: Arc::new(Mutex::new(Vec::new())),
            script: Arc::new(Mutex::new(VecDeque::new())),
            auth: Arc::new(Mutex::new(None)),
            mechanism: Arc::new(Mutex::new("PLAIN")),
            echo_credentials: Arc::new(Mutex::new(false)),
            refuse_senders: Arc::new(Mutex::new(false)),
            credentials_seen: Arc::new(Mutex::new(Vec::new())),
            tls: None,
            implicit_tls: false,
            ehlo: Arc::new(Mutex::new(Vec::new())),
            connections: Arc::new(Mutex::new(0)),
        };
        up.serve(listener);
        up
    }

    /// An upstream that speaks TLS from the first byte.
    pub fn start_implicit_tls(config: rustls::ServerConfig) -> Upstream {
        let mut up = Upstream::start_tls_inner(config, true);
        up.implicit_tls = true;
        up
    }

    /// An upstream that offers STARTTLS with this configuration.
    pub fn start_tls(config: rustls::ServerConfig) -> Upstream {
        Upstream::start_tls_inner(config, false)
    }

    fn start_tls_inner(config: rustls::ServerConfig, implicit: bool) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind test upstream");
        let up = Upstream {
            addr: listener.local_addr().unwrap(),
            deliveries: Arc::new(Mutex::new(Vec::new())),
            script: Arc::new(Mutex::new(VecDeque::new())),
            auth: Arc::new(Mutex::new(None)),
            mechanism: Arc::new(Mutex::new("PLAIN")),
            echo_credentials: Arc::new(Mutex::new(false)),
            refuse_senders: Arc::new(Mutex::new(false)),
            credentials_seen: Arc::new(Mutex::new(Vec::new())),
            tls: Some(Arc::new(config)),
            implicit_tls: implicit,
            ehlo: Arc::new(Mutex::new(Vec::new())),
            connections: Arc::new(Mutex::new(0)),
        };
        up.serve(listener);
        up
    }

    fn serve(&self, listener: TcpListener) {
        let server = self.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                *server.connections.lock().unwrap() += 1;
                let server = server.clone();
                std::thread::spawn(move || {
                    let _ = server.session(stream);
                });
            }
        });
    }

    pub fn then(&self, answers: &[AtDot]) {
        self.script.lock().unwrap().extend(answers.iter().copied());
    }

    /// Deliveries the server accepted.
    pub fn accepted(&self) -> Vec<Delivery> {
        self.deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|d| {
                matches!(
                    d.answer,
                    AtDot::Accept | AtDot::Stall(_) | AtDot::AcceptThenClose
                )
            })
            .cloned()
            .collect()
    }

    /// Waits until `n` mails were accepted (or panics after `secs`).
    pub fn wait_for(&self, n: usize, secs: u64) -> Vec<Delivery> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.accepted();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} mails arrived upstream",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn session(&self, stream: TcpStream) -> std::io::Result<()> {
        if self.implicit_tls {
            let config = self
                .tls
                .clone()
                .expect("implicit TLS needs a configuration");
            let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
            let mut tls: Box<dyn Stream> = Box::new(rustls::StreamOwned::new(conn, stream));
            tls.write_all(b"220 upstream.test ESMTP\r\n")?;
            self.commands(BufReader::new(tls), true)?;
            return Ok(());
        }
        let mut plain: Box<dyn Stream> = Box::new(stream.try_clone()?);
        plain.write_all(b"220 upstream.test ESMTP\r\n")?;
        if let Next::StartTls = self.commands(BufReader::new(plain), false)? {
            // Whatever the client sent before STARTTLS went with the plaintext
            // reader: the TLS session starts clean.
            let config = self.tls.clone().expect("STARTTLS only when offered");
            let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
            let tls: Box<dyn Stream> = Box::new(rustls::StreamOwned::new(conn, stream));
            self.commands(BufReader::new(tls), true)?;
        }
        Ok(())
    }

    fn commands(&self, mut input: BufReader<Box<dyn Stream>>, tls: bool) -> std::io::Result<Next> {
        let (mut from, mut to) = (String::new(), Vec::new());
        loop {
            let mut line = String::new();
            if input.read_line(&mut line)? == 0 {
                return Ok(Next::Done);
            }
            let out = input.get_mut();
            let upper = line.to_ascii_uppercase();
            if upper.starts_with("EHLO ") {
                self.ehlo.lock().unwrap().push(line[5..].trim().to_string());
            }
            if upper.starts_with("STARTTLS") && self.tls.is_some() && !tls {
                out.write_all(b"220 2.0.0 Ready to start TLS\r\n")?;
                return Ok(Next::StartTls);
            } else if upper.starts_with("EHLO") && self.tls.is_some() && !tls {
                out.write_all(b"250-upstream.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n")?;
            } else if upper.starts_with("EHLO") {
                if self.auth.lock().unwrap().is_some() {
                    let mechanism = *self.mechanism.lock().unwrap();
                    out.write_all(
                        format!("250-upstream.test\r\n250-AUTH {mechanism}\r\n250 8BITMIME\r\n")
                            .as_bytes(),
                    )?;
                } else {
                    out.write_all(b"250-upstream.test\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n")?;
                }
            } else if upper.starts_with("AUTH PLAIN") || upper.starts_with("AUTH LOGIN") {
                let sent = line[10..].trim().to_string();
                let (user, password, wire) = if upper.starts_with("AUTH PLAIN") {
                    let sent = if sent.is_empty() {
                        out.write_all(b"334 \r\n")?;
                        read_line(&mut input)?
                    } else {
                        sent
                    };
                    let decoded = base64_decode(&sent);
                    let mut parts = decoded.split(|&b| b == 0).skip(1);
                    let user =
                        String::from_utf8_lossy(parts.next().unwrap_or_default()).to_string();
                    let password =
                        String::from_utf8_lossy(parts.next().unwrap_or_default()).to_string();
                    (user, password, sent)
                } else {
                    // RFC 4616's LOGIN: the user (perhaps sent with the
                    // command), then the password, each base64.
                    let user = if sent.is_empty() {
                        input.get_mut().write_all(b"334 VXNlcm5hbWU6\r\n")?;
                        read_line(&mut input)?
                    } else {
                        sent
                    };
                    input.get_mut().write_all(b"334 UGFzc3dvcmQ6\r\n")?;
                    let password = read_line(&mut input)?;
                    let wire = format!("{user} {password}");
                    (
                        String::from_utf8_lossy(&base64_decode(&user)).to_string(),
                        String::from_utf8_lossy(&base64_decode(&password)).to_string(),
                        wire,
                    )
                };
                self.credentials_seen.lock().unwrap().push((user, password));
                let out = input.get_mut();
                if *self.auth.lock().unwrap() == Some(true) {
                    out.write_all(b"235 2.7.0 Authentication successful\r\n")?;
                } else if *self.echo_credentials.lock().unwrap() {
                    out.write_all(
                        format!("535 5.7.8 Authentication credentials invalid: {wire}\r\n")
                            .as_bytes(),
                    )?;
                } else {
                    out.write_all(b"535 5.7.8 Authentication credentials invalid\r\n")?;
                }
            } else if upper.starts_with("HELO") {
                out.write_all(b"250 upstream.test\r\n")?;
            } else if upper.starts_with("MAIL FROM:") && *self.refuse_senders.lock().unwrap() {
                out.write_all(b"553 5.7.1 Sender address rejected: not owned by user\r\n")?;
            } else if upper.starts_with("MAIL FROM:") {
                from = line[10..]
                    .trim()
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap_or("")
                    .to_string();
                to.clear();
                out.write_all(b"250 2.1.0 Ok\r\n")?;
            } else if upper.starts_with("RCPT TO:") {
                to.push(
                    line[8..]
                        .trim()
                        .trim_start_matches('<')
                        .split('>')
                        .next()
                        .unwrap_or("")
                        .to_string(),
                );
                out.write_all(b"250 2.1.5 Ok\r\n")?;
            } else if upper.starts_with("DATA") {
                out.write_all(b"354 go ahead\r\n")?;
                let mut data = Vec::new();
                loop {
                    let mut l = Vec::new();
                    if input.read_until(b'\n', &mut l)? == 0 {
                        return Ok(Next::Done);
                    }
                    if l == b".\r\n" {
                        break;
                    }
                    let l = if l.starts_with(b"..") {
                        &l[1..]
                    } else {
                        &l[..]
                    };
                    data.extend_from_slice(l);
                }
                let answer = self
                    .script
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or(AtDot::Accept);
                self.deliveries.lock().unwrap().push(Delivery {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                    answer,
                    tls,
                });
                let out = input.get_mut();
                match answer {
                    AtDot::Accept => out.write_all(b"250 2.0.0 Ok: queued as TEST\r\n")?,
                    AtDot::Temporary => out.write_all(b"451 4.3.0 Try again later\r\n")?,
                    AtDot::Permanent => out.write_all(b"554 5.7.1 Rejected by policy\r\n")?,
                    AtDot::Disconnect => return Ok(Next::Done),
                    AtDot::AcceptThenClose => {
                        out.write_all(b"250 2.0.0 Ok: queued as TEST\r\n")?;
                        return Ok(Next::Done);
                    }
                    AtDot::Stall(t) => {
                        std::thread::sleep(t);
                        out.write_all(b"250 2.0.0 Ok: queued late\r\n")?;
                    }
                }
            } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
                out.write_all(b"250 2.0.0 Ok\r\n")?;
            } else if upper.starts_with("QUIT") {
                out.write_all(b"221 2.0.0 Bye\r\n")?;
                return Ok(Next::Done);
            } else {
                out.write_all(b"502 5.5.2 Not implemented\r\n")?;
            }
        }
    }
}

/// One line of the client's, without its line end.
fn read_line(input: &mut BufReader<Box<dyn Stream>>) -> std::io::Result<String> {
    let mut line = String::new();
    input.read_line(&mut line)?;
    Ok(line.trim_end().to_string())
}

/// Standard base64, for AUTH PLAIN and LOGIN.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The example company relaying through `up`, retrying within a second.
pub fn relayed_directory(up: &Upstream) -> String {
    crate::support::harness::example_directory()
        .replace("port = 2600", &format!("port = {}", up.addr.port()))
        .replace(
            "retry_initial = \"5m\"",
            "retry_initial = \"100ms\"\npoll_interval = \"20ms\"",
        )
        .replace("retry_max = \"1h\"", "retry_max = \"200ms\"")
}
