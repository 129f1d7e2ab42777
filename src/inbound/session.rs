//! One SMTP session: the command loop, its limits and timeouts, and the
//! hand-over of a complete mail to the store.
//!
//! Generic over the stream, so it runs over TCP and in tests alike. Requests
//! are parsed by smtp-proto one complete line at a time; DATA is read by
//! [`DotReader`]. A mail is answered 250 only after the store writer reports
//! its transaction committed. Replies to pipelined commands are batched and
//! flushed before the session waits for input, so a client that never reads
//! cannot make our buffers grow. This module never renders or sends mail.
//!
//! STARTTLS hands the same session over to a TLS stream ([`MaybeTls`]):
//! whatever the client pipelined after the command (already in our input
//! buffer) is discarded, never read inside TLS (CVE-2011-0411), and all
//! the client said before is forgotten (RFC 3207 4.2: a new EHLO, no
//! transaction). Inside TLS, STARTTLS is refused.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::{Error as ProtoError, MAIL_BODY_BINARYMIME, MAIL_SMTPUTF8, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::data::DotReader;
use super::tls::{MaybeTls, ServerTls};
use crate::config::company::Company;
use crate::config::{BareLineEndings, ServerConfig};
use crate::mail::parsed::{Envelope, TlsInfo};
use crate::store::{IncomingMessage, StoreError, Stored, Writer};

/// What a session needs, shared by all sessions: the `[server]` settings,
/// the directory that says which recipients are ours, the verifier of
/// SPF, DKIM and DMARC (`None` when `[authentication] verify = false`), and
/// TLS (`None` without `[tls]`: STARTTLS is then not offered).
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerConfig,
    pub directory: Company,
    pub verifier: Option<Arc<super::auth::Verifier>>,
    /// The mail bytes all sessions may hold, in KiB permits (`memory_budget`).
    pub memory: Arc<tokio::sync::Semaphore>,
    pub tls: Option<Arc<ServerTls>>,
}

/// The permits of the memory budget for `bytes`.
fn kib(bytes: u64) -> u32 {
    bytes.div_ceil(1024).min(u64::from(u32::MAX)) as u32
}

/// What a DATA reserves before 354: the declared SIZE and a margin (sizes
/// are often estimated), or the size limit when none was declared.
fn reservation(declared: u64, max: u64) -> u64 {
    if declared == 0 {
        max
    } else {
        (declared + declared / 4 + 64 * 1024).min(max)
    }
}

/// Longest a DATA waits for room in the memory budget before 452.
const BUDGET_WAIT: Duration = Duration::from_secs(60);
/// Mails at least this big give their memory back to the system after
/// they are stored (glibc keeps freed memory otherwise).
const TRIM_AFTER: usize = 1024 * 1024;

/// Why reading stopped.
enum Stop {
    /// The client closed or the connection broke: nothing more to say.
    Closed,
    /// Say this (a 421) and close.
    Say(String),
}

/// Read side chunk size; also the most a session reads ahead.
const READ_CHUNK: usize = 64 * 1024;

struct Transaction {
    sender: String,
    declared_size: u64,
    recipients: Vec<String>,
    /// RCPT was tried at least once (refused or not).
    rcpt_attempted: bool,
    smtputf8: bool,
}

pub struct Session<S> {
    stream: MaybeTls<S>,
    /// The TLS handshake comes first (an implicit-TLS listener).
    implicit_tls: bool,
    /// What the TLS handshake negotiated; `None` in the clear.
    tls: Option<TlsInfo>,
    peer: SocketAddr,
    settings: Arc<Settings>,
    writer: Writer,
    shutdown: watch::Receiver<bool>,
    id: String,
    input: Vec<u8>,
    output: Vec<u8>,
    helo: Option<String>,
    esmtp: bool,
    transaction: Option<Transaction>,
    errors: usize,
    deadline: Instant,
    started: Instant,
    messages: usize,
    /// How the session ended, when it was not the reply that says it
    /// (a failed TLS handshake); see [`Session::result`].
    ended: Option<&'static str>,
}

/// A reply line was too long; the rest of it up to LF was thrown away.
struct LineTooLong;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub fn new(
        stream: S,
        peer: SocketAddr,
        settings: Arc<Settings>,
        writer: Writer,
        shutdown: watch::Receiver<bool>,
        id: String,
    ) -> Self {
        let deadline = Instant::now() + settings.server.session_timeout;
        Session {
            stream: MaybeTls::Plain(stream),
            implicit_tls: false,
            tls: None,
            peer,
            settings,
            writer,
            shutdown,
            id,
            input: Vec::with_capacity(4096),
            output: Vec::with_capacity(1024),
            helo: None,
            esmtp: false,
            transaction: None,
            errors: 0,
            deadline,
            started: Instant::now(),
            messages: 0,
            ended: None,
        }
    }

    /// A session of an implicit-TLS listener: the handshake before the
    /// greeting (needs `settings.tls`; without it the session just closes).
    pub fn with_implicit_tls(mut self) -> Self {
        self.implicit_tls = true;
        self
    }

    /// Runs the session to its end. Never panics on client input.
    pub async fn run(mut self) {
        SESSIONS_STARTED.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let outcome = self.serve().await;
        let result = self.result(&outcome);
        crate::metrics::session_ended(match &outcome {
            Ok(()) => crate::metrics::SessionEnd::Quit,
            Err(Stop::Closed) => crate::metrics::SessionEnd::Closed,
            Err(Stop::Say(reply)) => crate::metrics::SessionEnd::of_reply(reply),
        });
        if let Err(Stop::Say(reply)) = outcome {
            self.reply(&reply);
        }
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
        // The one line per session (README, "The log"): never a recipient
        // (a reply token is a capability), never a byte of the mail.
        tracing::info!(
            session = %self.id,
            client = %self.peer.ip(),
            helo = self.helo.as_deref().unwrap_or(""),
            tls = self.tls.as_ref().map_or("none", |t| t.version.as_str()),
            mails = self.messages,
            errors = self.errors,
            result,
            duration_ms = self.started.elapsed().as_millis() as u64,
            "session end"
        );
        trim_when_idle();
    }

    /// How a session ended, for its log line: `quit`, `closed` (the client
    /// went away without QUIT), `timeout` (idle, too long, too slow),
    /// `refused` (talked out of turn: before the greeting, pipelined
    /// improperly, content before 354, BDAT), `error` (too many errors, a
    /// failed TLS handshake) or `shutdown`.
    fn result(&self, outcome: &Result<(), Stop>) -> &'static str {
        if let Some(ended) = self.ended {
            return ended;
        }
        match outcome {
            Ok(()) => "quit",
            Err(Stop::Closed) => "closed",
            Err(Stop::Say(reply)) if reply.starts_with("421 4.4.2") => "timeout",
            Err(Stop::Say(reply)) if reply.starts_with("421 4.3.2") => "shutdown",
            Err(Stop::Say(reply))
                if reply.starts_with("554 5.5.0") || reply.starts_with("503 ") =>
            {
                "refused"
            }
            Err(Stop::Say(_)) => "error",
        }
    }

    fn reply(&mut self, line: &str) {
        crate::metrics::reply_sent(line);
        self.output.extend_from_slice(line.as_bytes());
        self.output.extend_from_slice(b"\r\n");
    }

    /// A 4xx/5xx reply to the client's mistake; too many of them end the session.
    fn error_reply(&mut self, line: &str) -> Result<(), Stop> {
        self.reply(line);
        self.errors += 1;
        if self.errors >= self.settings.server.max_errors {
            return Err(Stop::Say(format!(
                "421 4.7.0 {} Error: too many errors",
                self.settings.server.hostname
            )));
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Stop> {
        if self.output.is_empty() {
            return Ok(());
        }
        let write = self.stream.write_all(&self.output);
        match tokio::time::timeout(self.settings.server.command_timeout, write).await {
            Ok(Ok(())) => {
                self.output.clear();
                Ok(())
            }
            // A client that does not read its replies is dropped, not buffered for.
            _ => {
                self.output.clear();
                Err(Stop::Closed)
            }
        }
    }

    fn timeout_reply(&self) -> Stop {
        Stop::Say(format!(
            "421 4.4.2 {} Error: timeout exceeded",
            self.settings.server.hostname
        ))
    }

    /// Reads more input, waiting at most `timeout` (and never past the session
    /// deadline). Flushes pending replies first. A shutdown interrupts the wait
    /// only between transactions.
    async fn fill(&mut self, timeout: Duration) -> Result<(), Stop> {
        self.flush().await?;
        let until = (Instant::now() + timeout).min(self.deadline);
        let in_transaction = self.transaction.is_some();
        self.input.reserve(READ_CHUNK);
        loop {
            tokio::select! {
                read = self.stream.read_buf(&mut self.input) => {
                    return match read {
                        Ok(0) | Err(_) => Err(Stop::Closed),
                        Ok(_) => Ok(()),
                    };
                }
                _ = tokio::time::sleep_until(until) => return Err(self.timeout_reply()),
                changed = self.shutdown.changed(), if !in_transaction => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        return Err(Stop::Say(format!(
                            "421 4.3.2 {} Service shutting down, try again later",
                            self.settings.server.hostname
                        )));
                    }
                }
            }
        }
    }

    /// The next command line, LF included. Lines longer than the limit are
    /// read to their end without being kept and reported as too long.
    async fn next_line(&mut self) -> Result<Result<Vec<u8>, LineTooLong>, Stop> {
        let mut discarding = false;
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.input) {
                let line: Vec<u8> = self.input.drain(..=pos).collect();
                if discarding || line.len() > self.settings.server.max_line_length {
                    return Ok(Err(LineTooLong));
                }
                return Ok(Ok(line));
            }
            if self.input.len() > self.settings.server.max_line_length {
                discarding = true;
                self.input.clear();
            }
            self.fill(self.settings.server.command_timeout).await?;
        }
    }

    async fn serve(&mut self) -> Result<(), Stop> {
        if self.implicit_tls {
            let Some(tls) = self.settings.tls.clone() else {
                return Err(Stop::Closed);
            };
            self.handshake(&tls).await?;
        }
        if !self.settings.server.greeting_delay.is_zero() {
            // A client that talks before our greeting is not waiting for it: a bot.
            let early = tokio::time::timeout(self.settings.server.greeting_delay, async {
                let mut byte = [0u8; 1];
                self.stream.read(&mut byte).await
            })
            .await;
            match early {
                Err(_) => {}
                Ok(Ok(0)) | Ok(Err(_)) => return Err(Stop::Closed),
                Ok(Ok(_)) => {
                    return Err(Stop::Say(format!(
                        "554 5.5.0 {} Error: talked before the greeting",
                        self.settings.server.hostname
                    )));
                }
            }
        }
        let greeting = format!("220 {} ESMTP jobmail", self.settings.server.hostname);
        self.reply(&greeting);
        loop {
            let line = match self.next_line().await? {
                Ok(line) => line,
                Err(LineTooLong) => {
                    self.error_reply("500 5.5.2 Error: line too long")?;
                    continue;
                }
            };
            if !self.command(&line).await? {
                return Ok(());
            }
        }
    }

    /// Handles one command line. `Ok(false)` ends the session after the reply.
    async fn command(&mut self, line: &[u8]) -> Result<bool, Stop> {
        let request = Request::parse(&mut line.iter());
        match request {
            Ok(Request::Ehlo { host }) => self.hello(host, true),
            Ok(Request::Helo { host }) => self.hello(host, false),
            Ok(Request::Mail { from }) => {
                if self.helo.is_none() {
                    self.error_reply("503 5.5.1 Error: send HELO/EHLO first")?;
                } else if self.tls.is_none()
                    && self
                        .settings
                        .tls
                        .as_ref()
                        .is_some_and(|tls| tls.required_for(self.peer.ip()))
                {
                    self.error_reply("530 5.7.0 Must issue a STARTTLS command first")?;
                } else if self.transaction.is_some() {
                    self.error_reply("503 5.5.1 Error: nested MAIL command")?;
                } else if from.flags & MAIL_BODY_BINARYMIME != 0 {
                    self.error_reply(
                        "555 5.5.4 Error: BODY=BINARYMIME requires CHUNKING, which is not offered",
                    )?;
                } else if from.flags & MAIL_SMTPUTF8 != 0 && !self.esmtp {
                    self.error_reply("555 5.5.4 Error: SMTPUTF8 needs EHLO")?;
                } else if from.size as u64 > self.settings.server.max_message_size {
                    self.error_reply(
                        "552 5.3.4 Error: message size exceeds fixed maximum message size",
                    )?;
                } else if let Some(refusal) = sender_refusal(&from.address) {
                    self.error_reply(refusal)?;
                } else {
                    self.transaction = Some(Transaction {
                        sender: from.address.to_string(),
                        declared_size: from.size as u64,
                        recipients: Vec::new(),
                        rcpt_attempted: false,
                        smtputf8: from.flags & MAIL_SMTPUTF8 != 0,
                    });
                    self.reply("250 2.1.0 Ok");
                }
                Ok(true)
            }
            Ok(Request::Rcpt { to }) => {
                self.recipient(&to.address)?;
                Ok(true)
            }
            Ok(Request::Data) => {
                self.data().await?;
                Ok(true)
            }
            Ok(Request::Rset) => {
                self.transaction = None;
                self.reply("250 2.0.0 Ok");
                Ok(true)
            }
            Ok(Request::Noop { .. }) => {
                self.reply("250 2.0.0 Ok");
                Ok(true)
            }
            Ok(Request::Quit) => {
                self.reply("221 2.0.0 Bye");
                Ok(false)
            }
            Ok(Request::Help { .. }) => {
                self.reply(
                    "214 2.0.0 See RFC 5321; jobmail accepts mail for its jobs addresses only",
                );
                Ok(true)
            }
            Ok(Request::Vrfy { .. }) | Ok(Request::Expn { .. }) => {
                self.error_reply("502 5.5.1 Error: command disabled")?;
                Ok(true)
            }
            Ok(Request::Bdat { .. }) => {
                // The chunk that follows would be read as commands: refuse and close.
                Err(Stop::Say(
                    "503 5.5.1 Error: BDAT (CHUNKING) is not offered".into(),
                ))
            }
            Ok(Request::StartTls) => {
                self.start_tls(line).await?;
                Ok(true)
            }
            Ok(Request::Auth { .. }) => {
                self.error_reply("502 5.5.1 Error: AUTH is not offered")?;
                Ok(true)
            }
            Ok(_) => {
                self.error_reply("502 5.5.1 Error: command not implemented")?;
                Ok(true)
            }
            Err(e) => {
                let reply = match e {
                    ProtoError::UnknownCommand => {
                        "500 5.5.2 Error: command not recognized".to_string()
                    }
                    // smtp-proto does not read address literals; a sender
                    // at one is a policy matter, not a syntax error.
                    ProtoError::InvalidSenderAddress
                        if memchr::memmem::find(line, b"@[").is_some() =>
                    {
                        "553 5.7.1 Error: a sender at an IP address literal is not accepted here"
                            .to_string()
                    }
                    ProtoError::InvalidSenderAddress => {
                        "501 5.1.7 Error: bad sender address syntax".to_string()
                    }
                    ProtoError::InvalidRecipientAddress => {
                        "501 5.1.3 Error: bad recipient address syntax".to_string()
                    }
                    ProtoError::SyntaxError { syntax } => format!("501 5.5.4 Syntax: {syntax}"),
                    ProtoError::InvalidParameter { param } => {
                        format!("501 5.5.4 Error: invalid parameter {param}")
                    }
                    ProtoError::UnsupportedParameter { .. } => {
                        "555 5.5.4 Error: unsupported parameter".to_string()
                    }
                    _ => "500 5.5.2 Error: bad syntax".to_string(),
                };
                self.error_reply(&reply)?;
                Ok(true)
            }
        }
    }

    /// STARTTLS (RFC 3207): refused when not offered (502), inside TLS
    /// (503), with a parameter (501) or inside a transaction (503);
    /// otherwise 220, and the handshake over the same connection.
    async fn start_tls(&mut self, line: &[u8]) -> Result<(), Stop> {
        let Some(tls) = self.settings.tls.clone() else {
            return self.error_reply("502 5.5.1 Error: STARTTLS is not offered");
        };
        if self.stream.is_tls() {
            return self.error_reply("503 5.5.1 Error: TLS is already active");
        }
        if !line.trim_ascii().eq_ignore_ascii_case(b"STARTTLS") {
            return self.error_reply("501 5.5.4 Syntax: STARTTLS (no parameters)");
        }
        if self.transaction.is_some() {
            return self.error_reply("503 5.5.1 Error: MAIL transaction in progress, RSET first");
        }
        // CVE-2011-0411: what came with STARTTLS in the same read was sent
        // before the client could know TLS would start; read inside TLS it
        // would pass as the client's (a man in the middle's injection).
        if !self.input.is_empty() {
            tracing::info!(session = %self.id, client = %self.peer.ip(), bytes = self.input.len(), "discarded input pipelined after STARTTLS");
            self.input.clear();
        }
        self.reply("220 2.0.0 Ready to start TLS");
        self.flush().await?;
        self.handshake(&tls).await
    }

    /// The TLS handshake over the plain stream, then a clean state: no
    /// HELO/EHLO, no transaction, no input (RFC 3207 4.2). A failed
    /// handshake is one log line and the end of the session.
    async fn handshake(&mut self, tls: &ServerTls) -> Result<(), Stop> {
        let Some(plain) = self.stream.take_plain() else {
            return Err(Stop::Closed);
        };
        let left = self.deadline.saturating_duration_since(Instant::now());
        match super::tls::accept(plain, tls, tls.handshake_timeout.min(left)).await {
            Ok((stream, info)) => {
                tracing::debug!(session = %self.id, version = %info.version, cipher = %info.cipher, "TLS started");
                self.stream = MaybeTls::Tls(Box::new(stream));
                self.tls = Some(info);
                self.helo = None;
                self.esmtp = false;
                self.transaction = None;
                self.input.clear();
                Ok(())
            }
            Err(error) => {
                tracing::info!(session = %self.id, client = %self.peer.ip(), %error, "TLS handshake failed; closing");
                self.ended = Some("error");
                Err(Stop::Closed)
            }
        }
    }

    fn hello(&mut self, host: Cow<'_, str>, esmtp: bool) -> Result<bool, Stop> {
        // RFC 2920: EHLO ends a command group; more input before our reply is
        // improper pipelining (spam bots, smuggling attempts).
        if !self.input.is_empty() {
            return Err(Stop::Say(
                "554 5.5.0 Error: improper command pipelining after HELO/EHLO".into(),
            ));
        }
        self.transaction = None;
        self.helo = Some(clean_helo(&host));
        self.esmtp = esmtp;
        let name = &self.settings.server.hostname;
        if esmtp {
            let size = self.settings.server.max_message_size;
            // STARTTLS only where it is configured, and not once in TLS.
            let starttls = if self.settings.tls.is_some() && !self.stream.is_tls() {
                "250-STARTTLS\r\n"
            } else {
                ""
            };
            let reply = format!(
                "250-{name}\r\n250-PIPELINING\r\n250-SIZE {size}\r\n{starttls}250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8"
            );
            self.reply(&reply);
        } else {
            let reply = format!("250 {name}");
            self.reply(&reply);
        }
        Ok(true)
    }

    fn recipient(&mut self, address: &str) -> Result<(), Stop> {
        let Some(transaction) = &mut self.transaction else {
            return self.error_reply("503 5.5.1 Error: need MAIL command");
        };
        transaction.rcpt_attempted = true;
        if transaction.recipients.len() >= self.settings.server.max_recipients {
            return self.error_reply("452 4.5.3 Error: too many recipients");
        }
        // Bad syntax (no domain, a domain no DNS name can be) is 501;
        // addresses that are well formed but not ours get 550 below.
        let syntax_ok = address.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !local.chars().any(char::is_control)
                && crate::mail::address::valid_domain(domain)
        });
        if !syntax_ok {
            return self.error_reply("501 5.1.3 Error: bad recipient address syntax");
        }
        if self.settings.directory.lookup(address).is_none() {
            let shown: String = address
                .chars()
                .filter(|c| !c.is_control())
                .take(256)
                .collect();
            return self.error_reply(&format!(
                "550 5.1.1 <{shown}>: Recipient address rejected: not a jobs address here"
            ));
        }
        if !transaction
            .recipients
            .iter()
            .any(|r| r.eq_ignore_ascii_case(address))
        {
            transaction.recipients.push(address.to_string());
        }
        self.reply("250 2.1.5 Ok");
        Ok(())
    }

    async fn data(&mut self) -> Result<(), Stop> {
        let Some(transaction) = &self.transaction else {
            return self.error_reply("503 5.5.1 Error: need MAIL command");
        };
        if transaction.recipients.is_empty() {
            return self.error_reply(if transaction.rcpt_attempted {
                // RFC 2920: pipelined DATA after every recipient was refused.
                "554 5.5.1 Error: no valid recipients"
            } else {
                "503 5.5.1 Error: need RCPT command"
            });
        }
        // RFC 2920: DATA ends a pipelined group; the message waits for our
        // 354. Content that is already here was sent blind (a spam tool, or
        // a smuggling attempt): refused, as Postfix's
        // smtpd_forbid_unauth_pipelining does.
        if !self.input.is_empty() {
            tracing::info!(session = %self.id, client = %self.peer.ip(), "refused: message content sent before the 354 reply");
            self.transaction = None;
            return Err(Stop::Say(format!(
                "554 5.5.0 {} Error: SMTP protocol synchronization: content sent before 354",
                self.settings.server.hostname
            )));
        }
        // Room in the memory budget first, before any byte is held: a
        // session that waits holds nothing, so waiting cannot deadlock.
        let max = self.settings.server.max_message_size;
        let declared = transaction.declared_size;
        let mut reserved = reservation(declared, max);
        self.flush().await?;
        let mut budget = match tokio::time::timeout(
            BUDGET_WAIT,
            self.settings
                .memory
                .clone()
                .acquire_many_owned(kib(reserved)),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            _ => {
                tracing::warn!(session = %self.id, client = %self.peer.ip(), "memory budget for mail exhausted; answering 452");
                return self
                    .error_reply("452 4.3.1 Error: too much mail in progress, try again later");
            }
        };
        let mut over_budget = false;
        let mut reader = DotReader::new(max, declared);
        self.reply("354 End data with <CR><LF>.<CR><LF>");
        let started = Instant::now();
        let min_rate = self.settings.server.min_data_rate;
        let mut received_bytes: u64 = 0;
        loop {
            if let Some(n) = reader.feed(&self.input) {
                self.input.drain(..n);
                break;
            }
            received_bytes += self.input.len() as u64;
            self.input.clear();
            // More than reserved (a SIZE too small, or none kept to): more
            // room if there is some now, never by waiting while holding.
            if !over_budget && reader.size() > reserved && reader.size() <= max {
                let more = (reader.size() - reserved)
                    .max(1024 * 1024)
                    .min(max - reserved.min(max));
                match self
                    .settings
                    .memory
                    .clone()
                    .try_acquire_many_owned(kib(more))
                {
                    Ok(permit) => {
                        budget.merge(permit);
                        reserved += more;
                    }
                    Err(_) => {
                        over_budget = true;
                        reader.stop_keeping();
                    }
                }
            }
            // A minimum rate after the grace: the next bytes are due by the
            // time the rate says, never later than data_timeout.
            let mut wait = self.settings.server.data_timeout;
            if min_rate > 0 {
                let grace = crate::config::DATA_RATE_GRACE.min(self.settings.server.data_timeout);
                let allowed =
                    grace + Duration::from_secs_f64(received_bytes as f64 / min_rate as f64);
                let elapsed = started.elapsed();
                if elapsed > allowed {
                    tracing::info!(session = %self.id, client = %self.peer.ip(), bytes = received_bytes, seconds = elapsed.as_secs(), "refused: DATA slower than min_data_rate");
                    return Err(Stop::Say(format!(
                        "421 4.4.2 {} Error: data rate too low, closing",
                        self.settings.server.hostname
                    )));
                }
                wait = wait.min(allowed - elapsed + Duration::from_millis(1));
            }
            match self.fill(wait).await {
                Ok(()) => {}
                Err(Stop::Say(_)) if min_rate > 0 && wait < self.settings.server.data_timeout => {
                    tracing::info!(session = %self.id, client = %self.peer.ip(), bytes = received_bytes, "refused: DATA slower than min_data_rate");
                    return Err(Stop::Say(format!(
                        "421 4.4.2 {} Error: data rate too low, closing",
                        self.settings.server.hostname
                    )));
                }
                Err(stop) => return Err(stop),
            }
        }
        let mut received = reader.finish();
        if over_budget {
            self.transaction = None;
            tracing::warn!(session = %self.id, client = %self.peer.ip(), size = received.size, "memory budget for mail exhausted during DATA; answering 452");
            return self.error_reply("452 4.3.1 Error: too much mail in progress, try again later");
        }
        if received.bare_line_ending
            && self.settings.server.bare_line_endings == BareLineEndings::Normalize
        {
            received.content = normalize_bare_lf(&received.content);
        }
        let Some(transaction) = self.transaction.take() else {
            return Ok(());
        };
        if received.too_big {
            tracing::info!(session = %self.id, size = received.size, "refused: over the size limit");
            return self
                .error_reply("552 5.3.4 Error: message size exceeds fixed maximum message size");
        }
        if received.bare_line_ending
            && self.settings.server.bare_line_endings == BareLineEndings::Reject
        {
            tracing::info!(session = %self.id, "refused: bare CR or LF line endings");
            return self.error_reply(
                "554 5.5.2 Error: bare CR or LF line endings are not allowed; use CRLF",
            );
        }
        let big = received.content.len() >= TRIM_AFTER;
        let bytes = received.content.len() as u64;
        let stored = self.store(transaction, received.content).await;
        drop(budget);
        if big {
            give_memory_back();
        }
        match stored {
            Ok(stored) => {
                self.messages += 1;
                crate::metrics::MAILS_ACCEPTED.inc();
                crate::metrics::BYTES_ACCEPTED.add(bytes);
                let reply = match stored {
                    Stored::New(id) => format!("250 2.0.0 Ok: stored as {id}"),
                    Stored::Duplicate(id) => format!("250 2.0.0 Ok: already stored as {id}"),
                };
                self.reply(&reply);
                Ok(())
            }
            Err(e) => {
                tracing::error!(session = %self.id, error = %e, "store failed; answering 451");
                self.reply("451 4.3.0 Error: temporary failure, please try again later");
                Ok(())
            }
        }
    }

    async fn store(
        &mut self,
        transaction: Transaction,
        content: Vec<u8>,
    ) -> Result<Stored, StoreError> {
        let received_at = crate::clock::now_ms();
        let helo = self.helo.clone().unwrap_or_default();
        let envelope = Envelope {
            sender: transaction.sender,
            recipients: transaction.recipients,
            client_addr: self.peer.ip().to_string(),
            helo,
            session_id: self.id.clone(),
            received_at_ms: received_at,
            authentication: None,
            tls: self.tls.clone(),
        };
        let protocol = protocol_name(self.esmtp, transaction.smtputf8, self.tls.is_some());
        let trace = trace_headers(
            &envelope,
            &self.settings.server.hostname,
            protocol,
            received_at,
        );
        let null_sender = envelope.sender.is_empty();
        // Parsing is CPU work on untrusted input: off the async workers, and a
        // parser panic costs the parsed fields, never the mail.
        let (content, sha256, parsed) = tokio::task::spawn_blocking(move || {
            let sha256 = crate::store::sha256_hex(&content);
            let parsed = std::panic::catch_unwind(|| {
                crate::inbound::parse::parse_message(&content, null_sender)
            })
            .ok();
            (content, sha256, parsed)
        })
        .await
        .map_err(|e| StoreError(format!("parser task failed: {e}")))?;
        if parsed.is_none() {
            tracing::warn!(session = %self.id, "parser failed; storing the raw mail only");
        }
        let mut envelope = envelope;
        if let Some(verifier) = &self.settings.verifier {
            let verdicts = verifier
                .verify(&content, self.peer.ip(), &envelope.helo, &envelope.sender)
                .await;
            tracing::debug!(session = %self.id, authentication = %verdicts.summary(), "checked");
            envelope.authentication = Some(verdicts);
        }
        self.writer
            .store(IncomingMessage {
                envelope,
                trace,
                content,
                sha256,
                parsed,
            })
            .await
    }
}

/// Returns freed heap memory to the system, at most once a second, after a
/// big mail: without it glibc keeps the peak of a burst of big mails
/// (measured: 1.6 GB idle after 100 concurrent 9.9 MB mails). The daemon
/// also limits glibc to four arenas (see `daemon::serve`).
fn give_memory_back() {
    use std::sync::atomic::{AtomicBool, Ordering};
    // One trim waiting at a time, half a second after the big mail that
    // asked for it: a burst costs a few trims, and the last mail of a
    // burst is always followed by one.
    static SCHEDULED: AtomicBool = AtomicBool::new(false);
    if SCHEDULED.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        SCHEDULED.store(false, Ordering::Release);
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        let _ = tokio::task::spawn_blocking(|| {
            // SAFETY: malloc_trim only walks glibc's own free lists.
            let released = unsafe { libc::malloc_trim(0) };
            tracing::debug!(released, "freed memory given back to the system");
        })
        .await;
    });
}

/// Sessions started since the process began: an idle trim is skipped when
/// one started while it waited.
static SESSIONS_STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How long no session may start before the daemon counts as idle.
const IDLE_TRIM_AFTER: Duration = Duration::from_secs(5);

/// After a session ends: when no session has started for
/// [`IDLE_TRIM_AFTER`], the daemon is idle and gives the free memory of
/// the traffic before back to the system, once per quiet spell. glibc
/// keeps it otherwise: the soak (50 sessions, 11 MB and 300 KB mails)
/// stayed at its 115-127 MiB peak with 3-4 MB in use; a trim at idle
/// brought it back to 20 MiB. Under steady traffic nothing is trimmed.
fn trim_when_idle() {
    use std::sync::atomic::{AtomicU64, Ordering};
    // The SESSIONS_STARTED value of the last quiet spell trimmed.
    static TRIMMED_AT: AtomicU64 = AtomicU64::new(u64::MAX);
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let seen = SESSIONS_STARTED.load(Ordering::Acquire);
    runtime.spawn(async move {
        tokio::time::sleep(IDLE_TRIM_AFTER).await;
        if SESSIONS_STARTED.load(Ordering::Acquire) != seen
            || TRIMMED_AT.swap(seen, Ordering::AcqRel) == seen
        {
            return;
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        let _ = tokio::task::spawn_blocking(|| {
            // SAFETY: malloc_trim only walks glibc's own free lists.
            let released = unsafe { libc::malloc_trim(0) };
            tracing::debug!(released, "idle: freed memory given back to the system");
        })
        .await;
    });
}

/// Why a reverse path is refused, if it is: bad syntax (501), or an IP
/// literal instead of a domain (553: policy, no mail for jobs comes from a
/// bare IP address). The null sender is fine.
fn sender_refusal(sender: &str) -> Option<&'static str> {
    if sender.is_empty() {
        return None;
    }
    let Some((local, domain)) = sender.rsplit_once('@') else {
        return Some("501 5.1.7 Error: bad sender address syntax");
    };
    if domain.starts_with('[') {
        return Some("553 5.7.1 Error: a sender at an IP address literal is not accepted here");
    }
    // smtp-proto hands a quoted local part over unquoted: a space may be
    // in it, a control character may not.
    if local.is_empty()
        || local.chars().any(char::is_control)
        || !crate::mail::address::valid_domain(domain)
    {
        return Some("501 5.1.7 Error: bad sender address syntax");
    }
    None
}

/// Every LF not preceded by CR becomes CRLF (`bare_line_endings = "normalize"`).
fn normalize_bare_lf(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + content.len() / 64);
    let mut previous = 0u8;
    for &b in content {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    out
}

/// The client's HELO name, made safe for a header: printable ASCII, bounded.
fn clean_helo(host: &str) -> String {
    host.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect()
}

/// The `with` of our `Received:` line: RFC 3848's `ESMTPS` for ESMTP in
/// TLS, RFC 6531's `UTF8SMTP`/`UTF8SMTPS` for SMTPUTF8. No `A` forms: the
/// listener offers no AUTH. HELO has no TLS form; the TLS comment says it.
fn protocol_name(esmtp: bool, smtputf8: bool, tls: bool) -> &'static str {
    match (esmtp, smtputf8, tls) {
        (true, true, true) => "UTF8SMTPS",
        (true, true, false) => "UTF8SMTP",
        (true, false, true) => "ESMTPS",
        (true, false, false) => "ESMTP",
        (false, _, _) => "SMTP",
    }
}

/// `Return-Path:` and `Received:` for the top of the stored mail; a TLS
/// session's version and cipher follow the id as a comment, as Sendmail
/// writes them.
pub fn trace_headers(envelope: &Envelope, hostname: &str, protocol: &str, at_ms: i64) -> Vec<u8> {
    let date = crate::clock::rfc5322(at_ms);
    let helo = if envelope.helo.is_empty() {
        "unknown"
    } else {
        &envelope.helo
    };
    let mut out = format!(
        "Return-Path: <{}>\r\nReceived: from {} ([{}])\r\n\tby {} (jobmail) with {} id {}",
        envelope.sender, helo, envelope.client_addr, hostname, protocol, envelope.session_id
    );
    if let Some(tls) = &envelope.tls {
        out.push_str(&format!(
            "\r\n\t(version={} cipher={})",
            tls.version, tls.cipher
        ));
    }
    if let [only] = envelope.recipients.as_slice() {
        out.push_str(&format!("\r\n\tfor <{only}>"));
    }
    out.push_str(&format!("; {date}\r\n"));
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::tls::testing::{self, pki};
    use tokio::io::DuplexStream;

    struct Nowhere;

    impl crate::store::OnStored for Nowhere {
        fn on_stored(
            &self,
            _: &crate::store::Tx<'_>,
            _: i64,
            _: Option<&crate::mail::parsed::ParsedMessage>,
            _: &Envelope,
        ) -> crate::store::Result<()> {
            Ok(())
        }
    }

    /// One reply, read a byte at a time (nothing past it is taken, so the
    /// stream can go on into a TLS handshake).
    async fn reply<S: AsyncRead + Unpin>(stream: &mut S) -> String {
        let mut text = Vec::new();
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\n") {
                let mut byte = [0u8; 1];
                assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "closed: {line:?}");
                line.push(byte[0]);
            }
            text.extend_from_slice(&line);
            if line.get(3) == Some(&b' ') {
                return String::from_utf8(text).unwrap();
            }
        }
    }

    async fn cmd<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, line: &str) -> String {
        stream
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        reply(stream).await
    }

    /// A session with `[tls]` over one end of an in-memory pipe; the
    /// other end and the CA to trust.
    fn session(dir: &std::path::Path) -> (DuplexStream, String, tokio::task::JoinHandle<()>) {
        let pki = pki(dir, false);
        let text = "[server]\nhostname = \"mx.test.example\"\n[[subsidiary]]\nid = \"acme\"\njobs_address = \"jobs@acme.example\"\n";
        let config = crate::config::parse(text, &dir.join("jobmail.toml")).unwrap();
        let (tls, _) = ServerTls::new(&testing::config(&pki)).unwrap();
        let settings = Arc::new(Settings {
            server: config.server.clone(),
            directory: Company::from_config(&config),
            verifier: None,
            memory: Arc::new(tokio::sync::Semaphore::new(1 << 20)),
            tls: Some(Arc::new(tls)),
        });
        let (writer, _thread) = Writer::start(&dir.join("jobmail.db"), Arc::new(Nowhere)).unwrap();
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (_stop, shutdown) = watch::channel(false);
        let peer = SocketAddr::from(([192, 0, 2, 1], 40000));
        let session = Session::new(server, peer, settings, writer, shutdown, "T1".into());
        let task = tokio::spawn(async move {
            let _stop = _stop;
            session.run().await
        });
        (client, pki.ca_pem, task)
    }

    async fn handshake(
        client: DuplexStream,
        ca_pem: &str,
    ) -> tokio_rustls::client::TlsStream<DuplexStream> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("mx.test.example").unwrap();
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, client)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn commands_pipelined_after_starttls_are_discarded_and_the_state_is_reset() {
        let dir = tempfile::tempdir().unwrap();
        let (mut client, ca_pem, task) = session(dir.path());
        assert!(reply(&mut client).await.starts_with("220 "));
        let ehlo = cmd(&mut client, "EHLO client.example").await;
        assert!(ehlo.contains("250-STARTTLS\r\n"), "{ehlo}");
        // One write: STARTTLS and a transaction behind it, before our 220.
        client
            .write_all(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example.org>\r\n")
            .await
            .unwrap();
        assert!(reply(&mut client).await.starts_with("220 2.0.0"));
        let mut tls = handshake(client, &ca_pem).await;
        // No RSET reply, no MAIL: nothing pipelined was read inside TLS,
        // and the EHLO from before is forgotten.
        assert!(
            cmd(&mut tls, "RCPT TO:<jobs@acme.example>")
                .await
                .starts_with("503 5.5.1 Error: need MAIL")
        );
        assert!(
            cmd(&mut tls, "MAIL FROM:<erika@example.org>")
                .await
                .starts_with("503 5.5.1 Error: send HELO/EHLO first")
        );
        let ehlo = cmd(&mut tls, "EHLO client.example").await;
        assert!(
            ehlo.starts_with("250-mx.test.example") && !ehlo.contains("STARTTLS"),
            "{ehlo}"
        );
        assert!(cmd(&mut tls, "STARTTLS").await.starts_with("503 5.5.1"));
        assert!(
            cmd(&mut tls, "MAIL FROM:<erika@example.org>")
                .await
                .starts_with("250")
        );
        assert!(cmd(&mut tls, "QUIT").await.starts_with("221"));
        task.await.unwrap();
    }

    #[tokio::test]
    async fn starttls_with_a_parameter_or_in_a_transaction_is_refused_and_a_bad_handshake_closes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut client, _, task) = session(dir.path());
        reply(&mut client).await;
        cmd(&mut client, "EHLO client.example").await;
        assert!(
            cmd(&mut client, "STARTTLS now")
                .await
                .starts_with("501 5.5.4")
        );
        assert!(
            cmd(&mut client, "MAIL FROM:<a@example.org>")
                .await
                .starts_with("250")
        );
        assert!(
            cmd(&mut client, "STARTTLS")
                .await
                .starts_with("503 5.5.1 Error: MAIL transaction")
        );
        assert!(cmd(&mut client, "RSET").await.starts_with("250"));
        assert!(cmd(&mut client, "starttls ").await.starts_with("220 2.0.0"));
        // Not a ClientHello: the session ends, without a panic.
        client.write_all(b"EHLO in the clear\r\n").await.unwrap();
        task.await.unwrap();
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest).await;
        assert!(!String::from_utf8_lossy(&rest).contains("250"), "{rest:?}");
    }

    #[test]
    fn the_received_line_names_esmtps_with_the_version_and_cipher() {
        let envelope = Envelope {
            sender: "erika@example.org".into(),
            recipients: vec!["jobs@acme.example".into()],
            client_addr: "192.0.2.1".into(),
            helo: "mail.example.org".into(),
            session_id: "ABC".into(),
            received_at_ms: 1_796_115_600_000,
            authentication: None,
            tls: Some(TlsInfo {
                version: "TLS1.3".into(),
                cipher: "TLS13_AES_256_GCM_SHA384".into(),
            }),
        };
        let trace = trace_headers(
            &envelope,
            "mx.test.example",
            protocol_name(true, false, true),
            envelope.received_at_ms,
        );
        assert_eq!(
            String::from_utf8(trace).unwrap(),
            "Return-Path: <erika@example.org>\r\nReceived: from mail.example.org ([192.0.2.1])\r\n\tby mx.test.example (jobmail) with ESMTPS id ABC\r\n\t(version=TLS1.3 cipher=TLS13_AES_256_GCM_SHA384)\r\n\tfor <jobs@acme.example>; Tue, 01 Dec 2026 09:00:00 +0000\r\n"
        );
        assert_eq!(protocol_name(true, true, true), "UTF8SMTPS");
        assert_eq!(protocol_name(false, false, true), "SMTP");
    }
}
