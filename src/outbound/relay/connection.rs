//! Connections to one upstream SMTP server: opened, secured (STARTTLS or
//! implicit TLS), authenticated, kept idle for the next send and checked
//! with NOOP before reuse.
//!
//! Why not lettre's own pool: lettre 0.11.23 connects without TCP_NODELAY
//! and writes the message and the final CRLF "." CRLF as two writes, so
//! every message waits for the upstream's delayed ACK (about 40 ms on
//! Linux), which capped a connection at ~25 messages a second. Here the
//! TCP connection is ours, with Nagle off, and lettre speaks SMTP over it.
//! Implicit TLS (port 465) still goes through lettre's connect, as lettre
//! must wrap the stream before the greeting.
//!
//! This module only moves bytes; it never decides what a failure means
//! (that is [`super::classify`]) and never touches the store.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::Error;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;

/// An idle connection older than this is closed rather than reused
/// (Postfix's smtp_connection_cache_time_limit is 2 s; upstreams drop idle
/// clients after a few minutes).
const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// How the connection is secured.
pub enum Security {
    Plain,
    StartTls(TlsParameters),
    Implicit(TlsParameters),
}

pub struct Connector {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub hello: ClientId,
    pub credentials: Option<Credentials>,
    pub connect_timeout: Duration,
    /// Idle connections, newest last.
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    max_idle: usize,
}

/// A failed send: our own TCP connect failed or timed out (lettre's error
/// type has no public constructor for these), or lettre reported an error.
pub enum ConnectError {
    Timeout(Duration),
    Io(std::io::Error),
    Smtp(Error),
    /// The upstream refused our login or our envelope sender for good
    /// (5xx on AUTH or MAIL FROM): its problem or its configuration, the
    /// same for every mail, never this mail's.
    Refused(Error),
}

/// One mail over an open connection: MAIL, RCPT, DATA, as lettre's
/// `send` does it, but telling a refused envelope sender (the upstream's
/// matter) from a refused recipient or message (the mail's).
async fn transaction(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    data: &[u8],
) -> Result<Response, ConnectError> {
    use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
    use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
    let mut options = Vec::new();
    let ascii = |a: &lettre::Address| AsRef::<str>::as_ref(a).is_ascii();
    let non_ascii =
        envelope.from().is_some_and(|a| !ascii(a)) || envelope.to().iter().any(|a| !ascii(a));
    if non_ascii {
        options.push(MailParameter::SmtpUtfEight);
    }
    if !data.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    conn.command(Mail::new(envelope.from().cloned(), options))
        .await
        .map_err(|e| {
            if e.is_permanent() {
                ConnectError::Refused(e)
            } else {
                ConnectError::Smtp(e)
            }
        })?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), vec![])).await?;
    }
    conn.command(Data).await?;
    Ok(conn.message(data).await?)
}

impl From<Error> for ConnectError {
    fn from(e: Error) -> Self {
        ConnectError::Smtp(e)
    }
}

impl Connector {
    pub fn new(
        host: String,
        port: u16,
        security: Security,
        hello: ClientId,
        credentials: Option<Credentials>,
        connect_timeout: Duration,
        max_idle: usize,
    ) -> Connector {
        Connector {
            host,
            port,
            security,
            hello,
            credentials,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    /// Sends one message over an idle or a new connection. A connection that
    /// carried a successful send is kept; any failure closes it (lettre
    /// sends QUIT first when the session is still sane).
    pub async fn send(&self, envelope: &Envelope, data: &[u8]) -> Result<Response, ConnectError> {
        let mut conn = match self.reuse().await {
            Some(c) => c,
            None => self.open().await?,
        };
        let result = transaction(&mut conn, envelope, data).await;
        match &result {
            Ok(_) if !conn.has_broken() => self.park(conn).await,
            _ => conn.abort().await,
        }
        result
    }

    /// The newest idle connection that still answers NOOP, if any.
    async fn reuse(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut conn, since) = self.idle.lock().ok()?.pop()?;
            if since.elapsed() < IDLE_LIMIT && conn.test_connected().await {
                return Some(conn);
            }
            conn.abort().await;
        }
    }

    async fn park(&self, mut conn: AsyncSmtpConnection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max_idle
        {
            idle.push((conn, Instant::now()));
            return;
        }
        let _ = conn.quit().await;
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, ConnectError> {
        let mut conn = match &self.security {
            Security::Implicit(tls) => {
                let connecting = AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(self.connect_timeout),
                    &self.hello,
                    Some(tls.clone()),
                    None,
                );
                // lettre bounds only the TCP connect; the TLS handshake and
                // greeting get as long again.
                let limit = self.connect_timeout * 2;
                tokio::time::timeout(limit, connecting)
                    .await
                    .map_err(|_| ConnectError::Timeout(limit))??
            }
            Security::Plain | Security::StartTls(_) => {
                let connecting = async {
                    let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                        .await
                        .map_err(ConnectError::Io)?;
                    tcp.set_nodelay(true).map_err(ConnectError::Io)?;
                    Ok::<_, ConnectError>(
                        AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                            .await?,
                    )
                };
                let mut conn = tokio::time::timeout(self.connect_timeout, connecting)
                    .await
                    .map_err(|_| ConnectError::Timeout(self.connect_timeout))??;
                if let Security::StartTls(tls) = &self.security {
                    // Required, never opportunistic: an upstream that does not
                    // offer STARTTLS fails here (lettre's client error), and
                    // the mail is retried, never sent in plaintext.
                    conn.starttls(tls.clone(), &self.hello).await?;
                }
                conn
            }
        };
        if let Some(credentials) = &self.credentials
            && let Err(e) = conn.auth(DEFAULT_MECHANISMS, credentials).await
        {
            conn.abort().await;
            return Err(if e.is_permanent() {
                ConnectError::Refused(e)
            } else {
                e.into()
            });
        }
        Ok(conn)
    }

    /// Closes the idle connections (at shutdown).
    pub async fn close(&self) {
        let idle = match self.idle.lock() {
            Ok(mut idle) => std::mem::take(&mut *idle),
            Err(_) => return,
        };
        for (mut conn, _) in idle {
            let _ = conn.quit().await;
        }
    }
}
