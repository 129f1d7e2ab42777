//! Inbound message parsing: the raw RFC 5322 bytes of one received mail become
//! the header fields jobmail reads, the robot/bounce flags, and the documents
//! (attachments) a mail client would show, each with its decoded bytes.
//!
//! What this module must not do: no I/O (no files, no network, no clock), no
//! SQL, never panic on input, and only bounded work on hostile input (deep
//! nesting, huge header blocks, garbage). It is a pure function of the bytes.
//!
//! MIME structure, transfer decoding, address, date and encoded-word parsing
//! come from `mail-parser` 0.11.9. Where that crate falls short it is worked
//! around here:
//! - RFC 2231 parameter continuations are merged by mail-parser, but each
//!   section is decoded on its own: the charset of section 0 is not applied to
//!   later sections and a UTF-8 sequence split across sections turns into
//!   U+FFFD. File names are therefore decoded here from the raw header.
//! - RFC 2047 encoded words inside a quoted parameter value are decoded
//!   here (`decode_words`): mail-parser puts a spurious space between
//!   adjacent words and between a word and the text beside it.
//! - Raw 8-bit characters inside an encoded word (a client that wrote the
//!   header in UTF-8 and did not encode them) are text already; mail-parser
//!   decodes them in the word's charset once more (`FrÃ¶sche`). They are
//!   kept as they are, and such a header's words are written anew as clean
//!   UTF-8 words before mail-parser reads it (`reencode_8bit_words`).
//! - Header bytes that are not UTF-8 (8-bit Latin-1 from old clients) are
//!   read as windows-1252 instead of being replaced by U+FFFD; raw
//!   ISO-2022-JP (7-bit, recognised by its escape sequences) as ISO-2022-JP.
//! - Raw 8-bit header bytes in a mail whose first text part declares a
//!   multi-byte CJK charset (Shift_JIS, EUC-KR, GBK, Big5, ...) are read in
//!   that charset when they are valid in it (old East Asian clients write
//!   raw file names and subjects in the charset of their text).
//! - Charsets beyond mail-parser's built-in ones (ISO-2022-JP, Shift_JIS,
//!   EUC-JP, EUC-KR, ks_c_5601-1987, GB2312, GBK, Big5, ...) come from its
//!   `full_encoding` feature (encoding_rs), for encoded words, RFC 2231
//!   values and text bodies alike.
//! - Text parts are stored by mail-parser as charset-decoded strings; a text
//!   attachment's original bytes are taken from the raw part instead. Parts
//!   whose transfer encoding mail-parser could not decode are decoded
//!   leniently here.
//! - Shapes mail-parser misreads are mended in a copy of the bytes, which is
//!   parsed again (`parse_mime`; at most 8 passes, and within a budget of
//!   bytes parsed per mail, `parse_work`). A repair only touches the header
//!   blocks of the message's own parts, never a document's body:
//!   - An unencoded attached `message/rfc822` is parsed by mail-parser in
//!     place, sharing the parent's boundary; a `message/rfc822` directly
//!     inside it, or a multipart inside it that never ends, runs past the
//!     parent's boundary and swallows the parent's later parts (they end up
//!     inside the attached mail, or decoded into its last part). When it
//!     runs over a delimiter line of its parent, its type is renamed in the
//!     copy (`application/x-jobmail-message-rfc822`, read back as
//!     `message/rfc822`), so it is a leaf that ends at the parent's
//!     boundary, and its bytes are parsed on their own. An attached mail
//!     that needs no repair is walked as mail-parser read it (one parse).
//!   - A boundary parameter folded right after its `=` (`boundary=` CRLF SP
//!     `"..."`) is not read by mail-parser (it takes the next line for a new
//!     parameter); the fold is removed.
//!   - A part whose headers are not followed by a blank line vanishes in
//!     mail-parser (its body is read as headers); a blank line is put in
//!     before the first line that is not a header field, or before the next
//!     boundary.
//!   - A multipart that never ends inside another: mail-parser looks only
//!     for the innermost boundary, so its last part runs over the enclosing
//!     delimiter lines and swallows the parts after them; the missing
//!     closing delimiters are put in before the first enclosing one.
//!   - `Content-Type: text` without a subtype is made `text/plain`
//!     (RFC 2045 5.2), so it is the displayed body, not an attachment.
//! - Attached mails that need a repair, or that mail-parser did not open
//!   (base64/quoted-printable ones deeper than 3 levels), are parsed here,
//!   each on its own (with the repairs), up to `MAX_MESSAGE_DEPTH` (10).
//! - mail-parser does not decode `Content-Transfer-Encoding: x-uuencode`;
//!   such a part is uudecoded here. Files uuencoded into a displayed
//!   text/plain body (`begin 644 cv.pdf` ... `end`, as old clients send
//!   them) are documents of their own, `P/uu:1`, `P/uu:2`, ...
//! - Addresses separated by whitespace only (`a@x b@y`, a missing comma)
//!   come from mail-parser as one address with spaces; they are split.
//!   Mailboxes in angle brackets without a comma between them (`<a@x>
//!   <b@y>`) come glued into one (`a@xb@y`); the raw header is read again
//!   with the missing commas put in.
//!   Comments mail-parser appends to a display name are taken off again.
//! - TNEF (`winmail`): files from attAttachData or, when a writer kept
//!   them only there, the MAPI property PR_ATTACH_DATA_BIN; an embedded
//!   Outlook item (PR_ATTACH_METHOD 5: a TNEF stream of its own in
//!   PR_ATTACH_DATA_OBJ) as a file (an appointment as `.ics`, anything
//!   else as its body, `.rtf`/`.txt`/`.html`) and its own files below it,
//!   4 items deep; the file inside an OLE object (PR_ATTACH_METHOD 6: a
//!   compound file read with the `cfb` crate); the message's compressed
//!   RTF body (MS-OXRTFCP, decompressed here) when the mail shows no text
//!   body of its own. An item's placeholder attAttachData is not a file.
//!   winmail.dat itself is kept as a document whenever not everything in
//!   it was unpacked (an embedded item always: its sender, recipients and
//!   dates are only there).
//! - Every call into mail-parser, tnef and cfb runs under `catch_unwind` (the
//!   first two have `unwrap`s, and mail-parser `debug_assert!`s that fire on malformed
//!   MIME in debug builds). A panic there degrades the result: a failed MIME
//!   parse falls back to the header block alone, a failed TNEF read keeps
//!   winmail.dat as it is. Code in this module itself is not wrapped; see
//!   [`parse_message`].
//! - Dropping mail-parser's tree of nested messages recurses once per level;
//!   it is taken apart iteratively instead (see `dismantle`).
//!
//! # Part paths
//!
//! `DocumentPart::part` names where a document sits, like IMAP body section
//! numbers: the children of a multipart are numbered from 1 and joined with
//! `.` (`2`, `2.1`, `3.2.1`); a message whose body is not multipart has its
//! single body at `1`. An attached `message/rfc822` at path `P` is itself a
//! document at `P`; its own parts continue below it (`P.1`, `P.2`, ... when
//! it is multipart, `P.1` when it is not). Files unpacked from an Outlook
//! `winmail.dat` at path `P` are `P/tnef:1`, `P/tnef:2`, ... in the order
//! they appear in the TNEF stream (attachments that yield nothing take no
//! number); the files of an embedded item at `P/tnef:N` are
//! `P/tnef:N/tnef:1`, ...; the message's RTF body `P/tnef:body`. Files
//! uuencoded into a text body at `P` are `P/uu:1`, `P/uu:2`, ...
//!
//! Which part counts as a document: every leaf part except the displayed
//! `text/plain` / `text/html` body: any such part that has no
//! `Content-Disposition: attachment` and no file name, which a mail client
//! shows inline as body (mail-parser's choice of body parts is not used:
//! it left a second inline text, the text of a multipart whose boundary
//! never came, or an empty body as attachments). See `docs/documents.md`.
//! That covers explicit attachments, inline images (with or without
//! `Content-ID`), named parts, non-text parts without a name, text parts that
//! are not the body (`text/calendar`, `text/rfc822-headers`, ...) and the
//! parts of a delivery report.
//!
//! For MIME headers of a part (`Content-Type`, `Content-Disposition`,
//! `Content-Transfer-Encoding`) the last occurrence wins, as in mail-parser, so
//! that names agree with how the body was decoded. For the message's own
//! single-valued headers (From, Subject, Date, Message-ID, ...) the first
//! occurrence wins; To, Cc, Reply-To, In-Reply-To and References are collected
//! from every occurrence.

use std::panic::{AssertUnwindSafe, catch_unwind};

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;
use mail_parser::{
    Addr, Encoding, Header, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

use crate::mail::filename::{default_filename, sanitize_filename};
use crate::mail::mime;
use crate::mail::parsed::{DocumentPart, Mailbox, ParsedHeaders, ParsedMessage};

/// Attached mails inside attached mails are unpacked this deep; a deeper one
/// is still kept as an `.eml` document, just not opened.
const MAX_MESSAGE_DEPTH: usize = 10;
/// Multipart levels followed within one message. Real mail stays far below;
/// parts nested deeper are not extracted (the raw mail keeps them).
const MAX_MIME_DEPTH: usize = 100;
/// Documents returned for one message, at most.
pub const MAX_DOCUMENTS: usize = 1000;
/// Addresses per field and message ids per field, at most.
const MAX_LIST_ENTRIES: usize = 1000;
/// Parameters read from one `Content-Type` / `Content-Disposition` header.
const MAX_PARAMS: usize = 2000;

/// Parses one inbound message. `null_sender` is true when the SMTP reverse
/// path was `<>`. Does not panic: on input nothing can be made of, the headers
/// are empty and there are no documents.
///
/// There is deliberately no `catch_unwind` around this function itself: the
/// ingress catches a panic and stores the raw mail with `parsed = 0`, so a bug
/// here stays visible (and the mail can be parsed again) instead of turning
/// into an empty parse.
pub fn parse_message(raw: &[u8], null_sender: bool) -> ParsedMessage {
    CJK_FALLBACK.set(None);
    let mut parsed = ParsedMessage::default();
    parsed.headers.automatic = null_sender;
    parsed.headers.robot = null_sender;
    parsed.headers.no_auto_reply = null_sender;
    let mut scratch = Vec::new();
    let mut work = parse_work(raw.len());
    let Some(message) = parse_mime(raw, &mut scratch, &mut work).or_else(|| {
        // The MIME walk gave up (mail-parser panicked); the header block
        // alone may still be readable.
        guarded(|| MessageParser::default().parse_headers(raw)).flatten()
    }) else {
        return parsed;
    };
    let Some(root) = message.parts.first() else {
        return parsed;
    };
    let buf: &[u8] = &message.raw_message;
    CJK_FALLBACK.set(cjk_text_charset(&message));
    let mut headers = read_headers(&root.headers, buf);
    headers.delivery_report = is_delivery_report(&message);
    let markers = robot_markers(&root.headers, buf);
    let (robot_sender, list_sender) = sender_kind(headers.from.as_ref());
    headers.robot = null_sender || headers.delivery_report || markers.robot || robot_sender;
    headers.list = markers.list || list_sender;
    headers.automatic = headers.robot || headers.list;
    headers.auto_response_suppress = markers.auto_response_suppress;
    headers.no_auto_reply = headers.automatic || markers.no_auto_reply;
    let mut walker = Walker {
        docs: Vec::new(),
        budget: document_budget(raw.len()),
        work,
        truncated: false,
        attached_authors: Vec::new(),
    };
    walker.walk_message(&message, "", 0);
    let text = guarded(|| message.body_text(0).map(|t| truncate_text(&t)))
        .flatten()
        .unwrap_or_default();
    dismantle(message);
    CJK_FALLBACK.set(None);
    ParsedMessage {
        headers,
        documents: walker.docs,
        text,
        attached_authors: walker.attached_authors,
        documents_truncated: walker.truncated,
    }
}

/// The HTML a reader is shown, at most (the mail itself may be 10 MB).
pub const MAX_HTML_BYTES: usize = 2 * 1024 * 1024;

/// A mail's bodies as a reader sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Bodies {
    /// The text body (HTML turned into text when there is no plain part),
    /// at most [`MAX_TEXT_BYTES`].
    pub text: Option<String>,
    /// The HTML part, when the mail has one, unsanitised: a front end
    /// shows it only as its sanitiser leaves it. At most [`MAX_HTML_BYTES`].
    pub html: Option<String>,
}

/// The bodies of one mail, read with the same repairs as [`parse_message`];
/// nothing on input nothing can be made of. Does not panic.
pub fn bodies(raw: &[u8]) -> Bodies {
    CJK_FALLBACK.set(None);
    let mut scratch = Vec::new();
    let mut work = parse_work(raw.len());
    let Some(message) = parse_mime(raw, &mut scratch, &mut work) else {
        return Bodies::default();
    };
    CJK_FALLBACK.set(cjk_text_charset(&message));
    let text = guarded(|| message.body_text(0).map(|t| truncate_text(&t))).flatten();
    let html = guarded(|| {
        let part = message
            .html_body
            .first()
            .and_then(|&i| message.parts.get(i as usize))?;
        match &part.body {
            PartType::Html(html) => {
                let mut cut = html.len().min(MAX_HTML_BYTES);
                while !html.is_char_boundary(cut) {
                    cut -= 1;
                }
                Some(html[..cut].to_string())
            }
            _ => None,
        }
    })
    .flatten();
    dismantle(message);
    CJK_FALLBACK.set(None);
    Bodies { text, html }
}

// ---------------------------------------------------------------------------
// Guarded calls into the parsing crates

fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

fn mp_parse(bytes: &[u8]) -> Option<Message<'_>> {
    guarded(|| MessageParser::default().parse(bytes)).flatten()
}

mod repair;
use repair::*;
mod headers;
use headers::*;
mod flags;
use flags::*;
mod documents;
use documents::*;
mod params;
use params::*;
mod words;
use words::*;
mod winmail;
use winmail::*;

#[cfg(test)]
mod tests;
