//! Domain types shared by the ingress, the store and the CLI.
//!
//! Plain data only: no I/O, no SQL, no parsing. Everything that crosses a
//! module boundary is named here, by the recruiting domain's words.

use serde::{Deserialize, Serialize};

/// A mailbox as written in a header: an optional display name and an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

impl std::fmt::Display for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) if !name.is_empty() => write!(f, "{name} <{}>", self.address),
            _ => f.write_str(&self.address),
        }
    }
}

/// The SMTP envelope and connection facts of one received mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Envelope {
    /// Reverse path; empty for the null sender `<>` (bounces, auto-replies).
    pub sender: String,
    /// Forward paths accepted for this transaction, as the client wrote them.
    pub recipients: Vec<String>,
    pub client_addr: String,
    pub helo: String,
    pub session_id: String,
    /// Unix time in milliseconds when the final dot was received.
    pub received_at_ms: i64,
}

/// The header fields jobmail reads from a message, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ParsedHeaders {
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub subject: Option<String>,
    /// The `Date:` header as RFC 3339, when it parses.
    pub date: Option<String>,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub auto_submitted: Option<String>,
    pub list_id: Option<String>,
    pub precedence: Option<String>,
    /// `X-Original-From`: the author before a list or group rewrote `From`.
    pub x_original_from: Option<Mailbox>,
    /// `X-Microsoft-Original-Message-ID`: the id the sender's client chose,
    /// before Outlook's servers replaced the Message-ID (brackets removed).
    pub original_message_id: Option<String>,
    /// The primary language subtag of `Content-Language` (`de` for `de-DE`), lowercase.
    pub content_language: Option<String>,
    /// Written by a program: auto-reply, bulk, bounce, null sender,
    /// MAILER-DAEMON/postmaster (RFC 3834 and common practice).
    pub robot: bool,
    /// Passed on by a mailing list or group (List-*, `Precedence: list`, `-request`/`owner-` senders).
    pub list: bool,
    /// `robot || list`: never creates a candidate, never gets an auto-reply.
    pub automatic: bool,
    /// Must not be answered automatically: automatic mail, or the sender
    /// asked (`X-Auto-Response-Suppress`, `X-Loop`). Never drops a mail.
    pub no_auto_reply: bool,
    /// `X-Auto-Response-Suppress` asks for no automatic answer (All, AutoReply, OOF).
    pub auto_response_suppress: bool,
    /// The `X-Loop` values (mail systems mark mail they sent with them; ours too).
    pub x_loop: Vec<String>,
    /// A delivery status notification (`multipart/report; report-type=delivery-status`).
    pub delivery_report: bool,
}

/// An attachment as a mail client would show it, with its decoded bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentPart {
    /// Sanitised: no path, no control or bidi characters, bounded length, never empty.
    pub filename: String,
    pub content_type: String,
    /// Where it came from in the MIME tree, e.g. `2`, `3.1` (inside an attached mail),
    /// `4/tnef:1` (the first file of a winmail.dat).
    pub part: String,
    pub bytes: Vec<u8>,
}

/// Everything jobmail knows of one inbound message once parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedMessage {
    pub headers: ParsedHeaders,
    pub documents: Vec<DocumentPart>,
    /// The displayed text body (HTML turned into text when there is no
    /// plain part), at most [`crate::parse::MAX_TEXT_BYTES`]; for finding
    /// inline forwarded blocks.
    pub text: String,
    /// `From` of each mail attached directly (`message/rfc822` at the top
    /// level), in MIME order: the authors of mails a colleague forwarded as attachments.
    pub attached_authors: Vec<Mailbox>,
    /// Not every document could be listed: the mail has more than
    /// [`crate::parse::MAX_DOCUMENTS`] of them, or nests attached mails so
    /// deep or so often that the rest was left unopened (the raw mail and
    /// the outer `.eml` documents still hold them).
    pub documents_truncated: bool,
}
