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
//! - TNEF: an embedded Outlook item or OLE object (PR_ATTACH_METHOD 5 or 6)
//!   is not a file; its placeholder data is not listed, and winmail.dat is
//!   kept as a document whenever not every attachment in it could be
//!   unpacked. Files kept only in the MAPI property PR_ATTACH_DATA_BIN
//!   (no attAttachData) are unpacked from there.
//! - Every call into mail-parser and tnef runs under `catch_unwind` (both
//!   have `unwrap`s, and mail-parser `debug_assert!`s that fire on malformed
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
//! they appear in the TNEF stream; files uuencoded into a text body at `P`
//! are `P/uu:1`, `P/uu:2`, ...
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

use chrono::{FixedOffset, SecondsFormat, TimeZone};
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

// ---------------------------------------------------------------------------
// Guarded calls into the parsing crates

fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

fn mp_parse(bytes: &[u8]) -> Option<Message<'_>> {
    guarded(|| MessageParser::default().parse(bytes)).flatten()
}

// ---------------------------------------------------------------------------
// Repairs: shapes mail-parser misreads, mended in a copy and parsed again

/// Passes of repair and re-parse at most (each can reveal parts that a
/// misread had hidden, which may need repairs of their own).
const MAX_REPAIR_PASSES: usize = 8;
/// Edits made in one pass at most.
const MAX_EDITS: usize = 4096;
/// What an unencoded attached message's type becomes in the repaired copy:
/// `application/x-jobmail-message-rfc822` is read back as `message/rfc822`.
const MESSAGE_MARKER: &str = "application/x-jobmail-message-";

/// Replace `start..end` of the bytes with `with`.
struct Edit {
    start: usize,
    end: usize,
    with: Vec<u8>,
}

/// mail-parser's tree of `bytes`, read as a mail client reads them. When
/// mail-parser misreads a shape it is known to get wrong (see the module
/// documentation), the shape is mended in a copy kept in `scratch`, and the
/// copy is parsed instead. A repair only ever touches header blocks of the
/// message's own parts (never a leaf's body), so every document's bytes are
/// the bytes as sent.
///
/// `work` is what is left of the bytes all parses of one mail may read
/// (see [`parse_work`]); each parse takes its length. When too little is
/// left, the repairs stop and the last copy is taken as it is.
fn parse_mime<'a>(
    bytes: &'a [u8],
    scratch: &'a mut Vec<u8>,
    work: &mut usize,
) -> Option<Message<'a>> {
    *work = work.saturating_sub(bytes.len());
    let first = mp_parse(bytes)?;
    let edits = find_edits(&first, bytes);
    if edits.is_empty() || *work < bytes.len().saturating_mul(2) {
        return Some(first);
    }
    dismantle(first);
    let mut copy = apply_edits(bytes, edits);
    for _ in 1..MAX_REPAIR_PASSES {
        if *work < copy.len().saturating_mul(2) {
            break;
        }
        *work -= copy.len();
        let Some(message) = mp_parse(&copy) else {
            break;
        };
        let edits = find_edits(&message, &copy);
        dismantle(message);
        if edits.is_empty() {
            break;
        }
        copy = apply_edits(&copy, edits);
    }
    *work = work.saturating_sub(copy.len());
    *scratch = copy;
    mp_parse(scratch)
}

/// Bytes all mail-parser parses of one mail may read together: eight times
/// the mail, plus 4 MiB. A real mail needs one parse, two or three when it
/// is repaired, and one more per attached mail; a hostile one (thousands
/// of attached mails nested with one boundary, each repair revealing the
/// next) stops being repaired and opened, instead of taking minutes.
fn parse_work(raw_len: usize) -> usize {
    raw_len.saturating_mul(8).saturating_add(4 << 20)
}

fn apply_edits(bytes: &[u8], mut edits: Vec<Edit>) -> Vec<u8> {
    edits.sort_by_key(|e| (e.start, e.end));
    let mut out = Vec::with_capacity(bytes.len() + edits.len() * 40);
    let mut pos = 0;
    for e in edits {
        if e.start < pos || e.end < e.start || e.end > bytes.len() {
            continue; // overlapping or out of range: left for the next pass
        }
        out.extend_from_slice(&bytes[pos..e.start]);
        out.extend_from_slice(&e.with);
        pos = e.end;
    }
    out.extend_from_slice(bytes.get(pos..).unwrap_or_default());
    out
}

/// The repairs this parse of `buf` needs, for the message's own parts
/// (attached messages are repaired when they are parsed on their own).
fn find_edits(message: &Message<'_>, buf: &[u8]) -> Vec<Edit> {
    let mut edits = Vec::new();
    let parent = parents(message);
    for (i, part) in message.parts.iter().enumerate() {
        if edits.len() >= MAX_EDITS {
            break;
        }
        let ct = part.content_type();
        let ctype = ct.map(|c| c.ctype().trim().to_ascii_lowercase());
        let subtype = ct
            .and_then(|c| c.subtype())
            .map(|s| s.trim().to_ascii_lowercase());
        let is_message = matches!(part.body, PartType::Message(_))
            || (ctype.as_deref() == Some("message")
                && matches!(subtype.as_deref(), Some("rfc822" | "global")));
        if is_message && part.encoding == Encoding::None && swallows(message, &parent, i, buf) {
            // An unencoded attached message is parsed by mail-parser in
            // place, sharing its parent's boundary; a message/rfc822 inside
            // it, or a multipart in it that never ends, then runs past the
            // parent's boundary and swallows the parent's later parts. As a
            // leaf it ends at the parent's boundary; it is parsed on its own.
            let marker: &'static [u8] = if subtype.as_deref() == Some("global") {
                b"application/x-jobmail-message-global"
            } else {
                b"application/x-jobmail-message-rfc822"
            };
            type_edit(part, buf, marker, &mut edits);
        } else if ctype.as_deref() == Some("text") && subtype.is_none() {
            // `Content-Type: text`: RFC 2045 reads it as text/plain.
            type_edit(part, buf, b"text/plain", &mut edits);
        } else if ctype.as_deref() == Some("multipart") {
            let boundary = ct.and_then(|c| c.attribute("boundary"));
            match boundary {
                None => unfold_after_equals(part, buf, &mut edits),
                Some(b) => missing_separators(message, part, buf, b.as_bytes(), &mut edits),
            }
        }
    }
    unclosed_multiparts(message, &parent, buf, &mut edits);
    edits
}

/// The multipart each part of the message sits in (its index), if any.
fn parents(message: &Message<'_>) -> Vec<Option<usize>> {
    let mut parent: Vec<Option<usize>> = vec![None; message.parts.len()];
    for (i, p) in message.parts.iter().enumerate() {
        if let PartType::Multipart(kids) = &p.body {
            for &k in kids {
                if let Some(slot) = parent.get_mut(k as usize)
                    && slot.is_none()
                    && k as usize > i
                {
                    *slot = Some(i);
                }
            }
        }
    }
    parent
}

/// Whether an attached message mail-parser opened in place runs over a
/// delimiter line of the multipart it sits in (and so holds parts that are
/// its parent's). One that does not (the usual case) is left as parsed.
fn swallows(message: &Message<'_>, parent: &[Option<usize>], i: usize, buf: &[u8]) -> bool {
    let Some(part) = message.parts.get(i) else {
        return false;
    };
    if !matches!(part.body, PartType::Message(_)) {
        return true; // not opened: take it apart as a leaf
    }
    let Some(boundary) = parent
        .get(i)
        .copied()
        .flatten()
        .and_then(|m| message.parts.get(m))
        .and_then(|m| m.content_type())
        .and_then(|c| c.attribute("boundary"))
        .filter(|b| !b.is_empty())
    else {
        return false;
    };
    let region = buf
        .get(part.offset_body as usize..part.offset_end as usize)
        .unwrap_or_default();
    let delimiter = [&b"--"[..], boundary.as_bytes()].concat();
    memchr::memmem::find_iter(region, &delimiter).any(|at| {
        (at == 0 || region.get(at - 1) == Some(&b'\n'))
            && matches!(
                region.get(at + delimiter.len()),
                None | Some(b' ' | b'\t' | b'\r' | b'\n' | b'-')
            )
    })
}

/// A multipart that never ends (no closing delimiter) inside another:
/// mail-parser only looks for the innermost boundary, so its last part runs
/// over the enclosing multipart's delimiter lines and swallows the parts
/// after them. A mail client ends a part at any enclosing boundary; the
/// missing closing delimiters are put in before the first such line.
fn unclosed_multiparts(
    message: &Message<'_>,
    parent: &[Option<usize>],
    buf: &[u8],
    edits: &mut Vec<Edit>,
) {
    let parts = &message.parts;
    let boundaries: Vec<Option<&[u8]>> = parts
        .iter()
        .map(|p| {
            p.content_type()
                .and_then(|c| c.attribute("boundary"))
                .map(str::as_bytes)
                .filter(|b| !b.is_empty())
        })
        .collect();
    let boundary_of = |i: usize| boundaries.get(i).copied().flatten();
    for (i, p) in parts.iter().enumerate() {
        if edits.len() >= MAX_EDITS {
            return;
        }
        if matches!(p.body, PartType::Multipart(_)) {
            continue;
        }
        // The multiparts around this leaf, its parent first.
        let mut chain = Vec::new();
        let mut cur = parent.get(i).copied().flatten();
        while let Some(m) = cur {
            if chain.len() >= MAX_MIME_DEPTH {
                break;
            }
            chain.push(m);
            cur = parent.get(m).copied().flatten();
        }
        if chain.len() < 2 {
            continue;
        }
        let start = p.offset_body as usize;
        let Some(body) = buf.get(start..p.offset_end as usize) else {
            continue;
        };
        // Enclosing boundaries above the parent: where each first sits in
        // the chain (the nearest wins), built when a `--` line shows up.
        let mut outer: Option<std::collections::HashMap<&[u8], usize>> = None;
        let mut from = 0;
        while let Some(found) = memchr::memmem::find(body.get(from..).unwrap_or_default(), b"--") {
            let at = from + found;
            from = at + 2;
            if at != 0 && body.get(at - 1) != Some(&b'\n') {
                continue;
            }
            let line_end = memchr::memchr(b'\n', &body[at..]).map_or(body.len(), |e| at + e);
            let line = body[at + 2..line_end].trim_ascii_end();
            let name = line.strip_suffix(b"--").unwrap_or(line);
            let outer = outer.get_or_insert_with(|| {
                let mut map = std::collections::HashMap::new();
                for (k, &m) in chain.iter().enumerate().skip(1) {
                    if let Some(b) = boundary_of(m) {
                        map.entry(b).or_insert(k);
                    }
                }
                map
            });
            let Some(&k) = outer.get(line).or_else(|| outer.get(name)) else {
                continue;
            };
            let mut with = Vec::new();
            for &m in chain.get(..k).unwrap_or_default() {
                if let Some(b) = boundary_of(m) {
                    with.extend_from_slice(b"--");
                    with.extend_from_slice(b);
                    with.extend_from_slice(b"--\r\n");
                }
            }
            edits.push(Edit {
                start: start + at,
                end: start + at,
                with,
            });
            break;
        }
    }
}

/// Replaces the type of a part's (last) `Content-Type` with `with`, or
/// gives the part one when it has none (a `multipart/digest` child).
fn type_edit(part: &MessagePart<'_>, buf: &[u8], with: &'static [u8], edits: &mut Vec<Edit>) {
    let Some(h) = last_header(part, "content-type") else {
        let at = part.offset_header as usize;
        edits.push(Edit {
            start: at,
            end: at,
            with: [&b"Content-Type: "[..], with, b"\r\n"].concat(),
        });
        return;
    };
    let (start, end) = (h.offset_start as usize, h.offset_end as usize);
    let Some(value) = buf.get(start..end) else {
        return;
    };
    let Some(ts) = value.iter().position(|b| !b.is_ascii_whitespace()) else {
        return;
    };
    let te = value[ts..]
        .iter()
        .position(|&b| b == b';' || b == b'(' || b.is_ascii_whitespace())
        .map_or(value.len(), |p| ts + p);
    edits.push(Edit {
        start: start + ts,
        end: start + te,
        with: with.to_vec(),
    });
}

/// A multipart without a boundary mail-parser could read: a parameter
/// value folded onto the next line right after its `=` (`boundary=` CRLF
/// SP `"..."`, as some clients write long boundaries) is joined to it.
fn unfold_after_equals(part: &MessagePart<'_>, buf: &[u8], edits: &mut Vec<Edit>) {
    let Some(h) = last_header(part, "content-type") else {
        return;
    };
    let (start, end) = (h.offset_start as usize, h.offset_end as usize);
    let Some(value) = buf.get(start..end) else {
        return;
    };
    for (i, _) in value.iter().enumerate().filter(|&(_, &b)| b == b'=') {
        let mut j = i + 1;
        while matches!(value.get(j), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            j += 1;
        }
        if j > i + 1 {
            edits.push(Edit {
                start: start + i + 1,
                end: start + j,
                with: Vec::new(),
            });
        }
    }
}

/// A part of a multipart whose header block is not ended by a blank line:
/// mail-parser reads its body as headers and loses the part. The blank line
/// is put in before the first line that is not a header (or before the next
/// boundary, for a part of headers only), as mail clients read it. Only the
/// gaps between the parts mail-parser found are searched for delimiter
/// lines, so the search stays linear however deep the multiparts nest.
fn missing_separators(
    message: &Message<'_>,
    part: &MessagePart<'_>,
    buf: &[u8],
    boundary: &[u8],
    edits: &mut Vec<Edit>,
) {
    let (start, end) = (part.offset_body as usize, part.offset_end as usize);
    let Some(region) = buf.get(start..end) else {
        return;
    };
    let PartType::Multipart(kids) = &part.body else {
        return;
    };
    if boundary.is_empty() {
        return;
    }
    let mut delimiter = b"--".to_vec();
    delimiter.extend_from_slice(boundary);
    let finder = memchr::memmem::Finder::new(&delimiter);
    let mut gaps = Vec::with_capacity(kids.len() + 1);
    let mut gap_start = 0;
    for kid in kids.iter().filter_map(|&id| message.parts.get(id as usize)) {
        let kid_start = (kid.offset_header as usize).saturating_sub(start);
        gaps.push((gap_start, kid_start.min(region.len())));
        gap_start = (kid.offset_end as usize)
            .saturating_sub(start)
            .min(region.len());
    }
    gaps.push((gap_start, region.len()));
    for (gap_start, gap_end) in gaps {
        if gap_start < gap_end {
            separators_in_gap(
                region, start, gap_start, gap_end, &delimiter, &finder, edits,
            );
        }
    }
}

fn separators_in_gap(
    region: &[u8],
    start: usize,
    gap_start: usize,
    gap_end: usize,
    delimiter: &[u8],
    finder: &memchr::memmem::Finder<'_>,
    edits: &mut Vec<Edit>,
) {
    let mut from = gap_start;
    while let Some(found) = region.get(from..gap_end).and_then(|gap| finder.find(gap)) {
        let at = from + found;
        from = at + delimiter.len();
        let line_start = at == 0 || region.get(at - 1) == Some(&b'\n');
        let ends = matches!(region.get(from), None | Some(b' ' | b'\t' | b'\r' | b'\n'));
        if !line_start || !ends {
            continue;
        }
        // The rest of the delimiter line, then the part's header lines.
        let mut line = next_line(region, from);
        while let Some((ls, le)) = line {
            let text = region[ls..le].trim_ascii_end();
            if text.is_empty() {
                break;
            }
            let continuation = matches!(region.get(ls), Some(b' ' | b'\t'));
            if text.starts_with(delimiter) || !continuation && !is_header_line(text) {
                if edits.len() < MAX_EDITS {
                    edits.push(Edit {
                        start: start + ls,
                        end: start + ls,
                        with: b"\r\n".to_vec(),
                    });
                }
                break;
            }
            line = next_line(region, le);
        }
    }
}

/// The line after position `pos` (from the byte after the next LF) as
/// `(start, end)`, `end` at its LF or the end; `None` at the end.
fn next_line(region: &[u8], pos: usize) -> Option<(usize, usize)> {
    let lf = memchr::memchr(b'\n', region.get(pos..)?)?;
    let ls = pos + lf + 1;
    if ls >= region.len() {
        return None;
    }
    let le = memchr::memchr(b'\n', &region[ls..]).map_or(region.len(), |p| ls + p);
    Some((ls, le))
}

/// `Name: value`: a field name of printable ASCII, then a colon.
fn is_header_line(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => line[..colon]
            .trim_ascii_end()
            .iter()
            .all(|&b| (33..=126).contains(&b)),
        _ => false,
    }
}

/// Drops a parsed message without recursion. mail-parser nests attached
/// messages by value and parses unencoded ones to any depth; the drop the
/// compiler writes for that tree recurses once per level, and a 20 MB mail of
/// 200,000 nested `message/rfc822` parts overflows a 2 MiB stack (an abort,
/// not a panic).
fn dismantle(message: Message<'_>) {
    let mut stack = vec![message];
    while let Some(mut m) = stack.pop() {
        for part in &mut m.parts {
            if matches!(part.body, PartType::Message(_))
                && let PartType::Message(inner) = std::mem::take(&mut part.body)
            {
                stack.push(inner);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Header fields

#[derive(Clone, Copy)]
enum Form {
    Address,
    Text,
}

fn is_named(header: &Header<'_>, name: &str) -> bool {
    header.name.as_str().eq_ignore_ascii_case(name)
}

/// The raw bytes of a header's value (after the colon, folding included).
fn header_raw<'a>(header: &Header<'_>, buf: &'a [u8]) -> &'a [u8] {
    buf.get(header.offset_start as usize..header.offset_end as usize)
        .unwrap_or_default()
}

/// A header's raw value as one trimmed line: unfolded, control characters
/// gone, runs of whitespace collapsed.
fn raw_text(header: &Header<'_>, buf: &[u8]) -> String {
    clean_text(&decode_8bit(header_raw(header, buf)))
}

/// Hands `f` the parsed value of a header. mail-parser decodes header bytes
/// that are not UTF-8 lossily; such a header is re-read as windows-1252 and
/// parsed again.
fn with_value<R>(
    header: &Header<'_>,
    buf: &[u8],
    form: Form,
    f: impl FnOnce(&HeaderValue<'_>) -> R,
) -> R {
    let raw = header_raw(header, buf);
    let eight_bit_word = !raw.is_ascii() && memchr::memmem::find(raw, b"=?").is_some();
    if std::str::from_utf8(raw).is_ok() && !is_iso_2022_jp(raw) && !eight_bit_word {
        return f(&header.value);
    }
    let mut text = decode_8bit(raw);
    if eight_bit_word && let Some(mended) = reencode_8bit_words(&text) {
        text = mended;
    }
    text.push('\n');
    let value = guarded(|| {
        let mut stream = MessageStream::new(text.as_bytes());
        match form {
            Form::Address => stream.parse_address(),
            Form::Text => stream.parse_unstructured(),
        }
    })
    .unwrap_or(HeaderValue::Empty);
    f(&value)
}

fn read_headers(headers: &[Header<'_>], buf: &[u8]) -> ParsedHeaders {
    let mut out = ParsedHeaders::default();
    for header in headers {
        let push_mailboxes = |v: &HeaderValue<'_>, out: &mut Vec<Mailbox>, max: usize| {
            let raw = header_raw(header, buf);
            // `<a@x> <b@y>`: mail-parser glues the two into one address;
            // with the missing commas put in, it reads them apart.
            if let Some(text) = with_missing_commas(raw)
                && let Some(fixed) = guarded(|| MessageStream::new(text.as_bytes()).parse_address())
            {
                push_mailboxes(&fixed, out, max, has_comment(raw));
            } else {
                push_mailboxes(v, out, max, has_comment(raw));
            }
        };
        if is_named(header, "from") {
            if out.from.is_none() {
                out.from = with_value(header, buf, Form::Address, |v| {
                    let mut one = Vec::new();
                    push_mailboxes(v, &mut one, 1);
                    one.pop()
                });
            }
        } else if is_named(header, "to") {
            with_value(header, buf, Form::Address, |v| {
                push_mailboxes(v, &mut out.to, MAX_LIST_ENTRIES)
            });
        } else if is_named(header, "cc") {
            with_value(header, buf, Form::Address, |v| {
                push_mailboxes(v, &mut out.cc, MAX_LIST_ENTRIES)
            });
        } else if is_named(header, "reply-to") {
            with_value(header, buf, Form::Address, |v| {
                push_mailboxes(v, &mut out.reply_to, MAX_LIST_ENTRIES)
            });
        } else if is_named(header, "subject") {
            if out.subject.is_none() {
                out.subject = read_text(header, buf);
            }
        } else if is_named(header, "date") {
            if out.date.is_none() {
                out.date = header.value.as_datetime().and_then(rfc3339);
            }
        } else if is_named(header, "message-id") {
            if out.message_id.is_none() {
                let mut ids = Vec::new();
                push_ids(header, buf, &mut ids, 1);
                out.message_id = ids.pop();
            }
        } else if is_named(header, "in-reply-to") {
            push_ids(header, buf, &mut out.in_reply_to, MAX_LIST_ENTRIES);
        } else if is_named(header, "references") {
            // Root and closest ancestors are kept: compacted as it grows.
            let refs = &mut out.references;
            for_each_id(&decode_8bit(header_raw(header, buf)), |id| {
                refs.push(id);
                if refs.len() >= 2 * MAX_LIST_ENTRIES {
                    cap_keep_ends(refs, MAX_LIST_ENTRIES);
                }
            });
        } else if is_named(header, "auto-submitted") {
            if out.auto_submitted.is_none() {
                out.auto_submitted = Some(raw_text(header, buf)).filter(|v| !v.is_empty());
            }
        } else if is_named(header, "list-id") {
            if out.list_id.is_none() {
                out.list_id = Some(raw_text(header, buf)).filter(|v| !v.is_empty());
            }
        } else if is_named(header, "x-original-from") {
            if out.x_original_from.is_none() {
                out.x_original_from = address_from_raw(header, buf);
            }
        } else if is_named(header, "x-microsoft-original-message-id") {
            if out.original_message_id.is_none() {
                let mut ids = Vec::new();
                for_each_id(&decode_8bit(header_raw(header, buf)), |id| ids.push(id));
                out.original_message_id = ids.into_iter().next();
            }
        } else if is_named(header, "x-loop") {
            if out.x_loop.len() < MAX_LIST_ENTRIES {
                out.x_loop.push(raw_text(header, buf));
            }
        } else if is_named(header, "content-language") {
            if out.content_language.is_none() {
                out.content_language = primary_language(&raw_text(header, buf));
            }
        } else if is_named(header, "precedence") && out.precedence.is_none() {
            out.precedence = Some(raw_text(header, buf)).filter(|v| !v.is_empty());
        }
    }
    cap_keep_ends(&mut out.references, MAX_LIST_ENTRIES);
    out
}

/// The first mailbox of a header mail-parser does not know as an address
/// header (`X-Original-From`), parsed from its raw bytes.
fn address_from_raw(header: &Header<'_>, buf: &[u8]) -> Option<Mailbox> {
    let mut text = decode_8bit(header_raw(header, buf));
    text.push('\n');
    let value = guarded(|| MessageStream::new(text.as_bytes()).parse_address())?;
    let mut one = Vec::new();
    push_mailboxes(&value, &mut one, 1, has_comment(header_raw(header, buf)));
    one.pop()
}

/// `de-DE, en` → `de`: the primary subtag of the first language, if it looks like one.
fn primary_language(value: &str) -> Option<String> {
    let first = value.split(',').next()?.trim();
    let primary = first.split(['-', '_']).next()?.trim().to_ascii_lowercase();
    ((2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase()))
        .then_some(primary)
}

/// An unstructured header (Subject), decoded and cleaned.
fn read_text(header: &Header<'_>, buf: &[u8]) -> Option<String> {
    with_value(header, buf, Form::Text, |v| v.as_text().map(clean_text)).filter(|s| !s.is_empty())
}

/// The first Subject of a header block.
fn read_subject(headers: &[Header<'_>], buf: &[u8]) -> Option<String> {
    headers
        .iter()
        .find(|h| is_named(h, "subject"))
        .and_then(|h| read_text(h, buf))
}

/// Keeps the first entry (the thread root) and the last `max - 1` (the
/// closest ancestors) of an over-long References list.
fn cap_keep_ends(ids: &mut Vec<String>, max: usize) {
    if ids.len() > max && max > 0 {
        let tail_start = ids.len() - (max - 1);
        let tail = ids.split_off(tail_start);
        ids.truncate(1);
        ids.extend(tail);
    }
}

/// `comments`: the raw header has a comment (a `(` outside quotes);
/// mail-parser appends comments to the display name, and they are taken
/// off again (`Jörg (privat) Weiß` is `Jörg Weiß`), unless the comment is
/// all the name there is (`jan@example.com (Jan Berg)`).
fn push_mailboxes(value: &HeaderValue<'_>, out: &mut Vec<Mailbox>, max: usize, comments: bool) {
    if let HeaderValue::Address(address) = value {
        // `iter` flattens group syntax.
        for addr in address.iter() {
            for mailbox in to_mailboxes(addr, comments) {
                if out.len() >= max {
                    return;
                }
                out.push(mailbox);
            }
        }
    }
}

/// One address as mail-parser read it; more than one when it is several
/// addr-specs separated by whitespace only (`a@x b@y`, a missing comma),
/// which mail-parser reads as one address with spaces in it.
fn to_mailboxes(addr: &Addr<'_>, comments: bool) -> Vec<Mailbox> {
    let Some(raw) = addr.address.as_deref() else {
        return Vec::new();
    };
    let name = addr
        .name
        .as_deref()
        .map(|n| {
            if comments {
                without_comments(n)
            } else {
                n.to_string()
            }
        })
        .map(|n| clean_text(&n))
        .filter(|n| !n.is_empty());
    let pieces: Vec<&str> = raw.split_whitespace().collect();
    let clean = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).collect() };
    if pieces.len() > 1 && pieces.iter().all(|p| p.contains('@')) {
        return pieces
            .into_iter()
            .take(MAX_LIST_ENTRIES)
            .enumerate()
            .map(|(i, p)| Mailbox {
                name: if i == 0 { name.clone() } else { None },
                address: clean(p),
            })
            .filter(|m| !m.address.is_empty())
            .collect();
    }
    let address: String = pieces
        .concat()
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if address.is_empty() {
        return Vec::new();
    }
    vec![Mailbox { name, address }]
}

/// An address list whose `<...>` mailboxes follow each other without a
/// comma (`<a@x> <b@y>`, `Anna <a@x> Bob <b@y>`), with the commas put in;
/// `None` when none is missing. Quotes and comments are respected, and a
/// comment right after a mailbox (`<a@x> (Anna)`) stays with it.
fn with_missing_commas(raw: &[u8]) -> Option<String> {
    let text = decode_8bit(raw);
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let (mut quoted, mut escaped, mut comment, mut angle) = (false, false, 0usize, false);
    let mut inserted = false;
    for (i, &c) in chars.iter().enumerate() {
        out.push(c);
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted || comment > 0 => escaped = true,
            '"' if comment == 0 => quoted = !quoted,
            '(' if !quoted => comment += 1,
            ')' if !quoted && comment > 0 => comment -= 1,
            '<' if !quoted && comment == 0 => angle = true,
            '>' if !quoted && comment == 0 && angle => {
                angle = false;
                let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
                if next.is_some_and(|n| !matches!(n, ',' | ';' | '(')) {
                    out.push(',');
                    inserted = true;
                }
            }
            _ => {}
        }
    }
    inserted.then(|| {
        out.push('\n');
        out
    })
}

/// Whether a raw address header holds a comment: a `(` outside a quoted string.
fn has_comment(raw: &[u8]) -> bool {
    let mut quoted = false;
    let mut escaped = false;
    for &b in raw {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => quoted = !quoted,
            b'(' if !quoted => return true,
            _ => {}
        }
    }
    false
}

/// A display name without its `(...)` comments, or the name with only the
/// parentheses taken out when the comments are all of it.
fn without_comments(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut level = 0usize;
    for c in name.chars() {
        match c {
            '(' => level += 1,
            ')' if level > 0 => level -= 1,
            _ if level == 0 => out.push(c),
            _ => {}
        }
    }
    if out.trim().is_empty() {
        name.chars().filter(|&c| c != '(' && c != ')').collect()
    } else {
        out
    }
}

/// Message ids without angle brackets, each handed to `f`. Ids in `<...>`
/// are taken when there are any; otherwise the value is split on whitespace
/// and commas.
fn for_each_id(text: &str, mut f: impl FnMut(String)) {
    let mut push = |s: &str| {
        let id: String = s
            .chars()
            .filter(|c| !c.is_whitespace() && !c.is_control())
            .collect();
        if !id.is_empty() {
            f(id);
        }
    };
    if text.contains('<') {
        let mut rest = text;
        while let Some(start) = rest.find('<') {
            let after = &rest[start + 1..];
            match after.find('>') {
                Some(end) => {
                    push(&after[..end]);
                    rest = &after[end + 1..];
                }
                None => {
                    push(after);
                    rest = "";
                }
            }
        }
    } else {
        text.split(|c: char| c.is_whitespace() || c == ',')
            .for_each(push);
    }
}

/// Appends the ids of a header to `ids`, keeping at most `max` (the first ones).
fn push_ids(header: &Header<'_>, buf: &[u8], ids: &mut Vec<String>, max: usize) {
    for_each_id(&decode_8bit(header_raw(header, buf)), |id| {
        if ids.len() < max {
            ids.push(id);
        }
    });
}

fn rfc3339(dt: &mail_parser::DateTime) -> Option<String> {
    if !(1900..=9999).contains(&dt.year) {
        return None;
    }
    let offset = (i32::from(dt.tz_hour) * 3600 + i32::from(dt.tz_minute) * 60)
        * if dt.tz_before_gmt { -1 } else { 1 };
    FixedOffset::east_opt(offset)?
        .with_ymd_and_hms(
            i32::from(dt.year),
            u32::from(dt.month),
            u32::from(dt.day),
            u32::from(dt.hour),
            u32::from(dt.minute),
            u32::from(dt.second),
        )
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Multi-byte East Asian charsets whose raw 8-bit header bytes cannot be
/// told from windows-1252 by looking at them.
const CJK_CHARSETS: &[&str] = &[
    "shift_jis",
    "shift-jis",
    "sjis",
    "x-sjis",
    "cp932",
    "windows-31j",
    "euc-jp",
    "euc-kr",
    "ks_c_5601-1987",
    "cp949",
    "gb2312",
    "gbk",
    "gb18030",
    "big5",
    "big5-hkscs",
];

thread_local! {
    /// The CJK charset of the mail being parsed (see [`cjk_text_charset`]),
    /// for its raw 8-bit header bytes; set and cleared by [`parse_message`].
    static CJK_FALLBACK: std::cell::Cell<Option<&'static str>> =
        const { std::cell::Cell::new(None) };
}

/// The charset of the mail's first text part, when it is a multi-byte CJK
/// one: an old East Asian client writes raw 8-bit file names and subjects
/// in the charset of its text, as a mail client reading it assumes.
fn cjk_text_charset(message: &Message<'_>) -> Option<&'static str> {
    let charset = message
        .parts
        .iter()
        .filter_map(|p| p.content_type())
        .filter(|c| c.ctype().trim().eq_ignore_ascii_case("text"))
        .find_map(|c| c.attribute("charset"))?;
    let charset = charset.trim();
    CJK_CHARSETS
        .iter()
        .copied()
        .find(|c| c.eq_ignore_ascii_case(charset))
}

/// Bytes as text: ISO-2022-JP when they carry its escape sequences (old
/// Japanese clients write it raw, unencoded, in headers and file names),
/// UTF-8 when they are; otherwise the mail's CJK text charset when it has
/// one and the bytes are valid in it, else windows-1252 (what 8-bit headers
/// from old European clients almost always are).
fn decode_8bit(bytes: &[u8]) -> String {
    if is_iso_2022_jp(bytes)
        && let Some(decode) = charset_decoder(b"iso-2022-jp")
        && let Some(text) = guarded(|| decode(bytes))
    {
        return text;
    }
    if std::str::from_utf8(bytes).is_err()
        && let Some(label) = CJK_FALLBACK.get()
        && let Some(decode) = charset_decoder(label.as_bytes())
        && let Some(text) = guarded(|| decode(bytes))
        && !text.contains(char::REPLACEMENT_CHARACTER)
    {
        return text;
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => match charset_decoder(b"cp1252") {
            Some(decode) => decode(bytes),
            None => bytes.iter().map(|&b| char::from(b)).collect(),
        },
    }
}

/// Whether the bytes hold an ISO-2022-JP escape to a double-byte set
/// (`ESC $ @`, `ESC $ B`, `ESC $ ( D`) or to JIS X 0201 (`ESC ( J`, `ESC ( I`).
fn is_iso_2022_jp(bytes: &[u8]) -> bool {
    memchr::memmem::find_iter(bytes, b"\x1b").any(|i| {
        matches!(
            bytes.get(i + 1..i + 3),
            Some(b"$@" | b"$B" | b"$(" | b"(J" | b"(I")
        )
    })
}

/// One line of display text: control characters (CR, LF, NUL, ...) become
/// spaces, whitespace runs collapse to one space, ends trimmed.
fn clean_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Flags

fn first_token(value: &str) -> &str {
    value
        .split(|c: char| c == ';' || c == '(' || c == ',' || c.is_whitespace())
        .find(|t| !t.is_empty())
        .unwrap_or("")
}

/// RFC 3834 and common practice: headers that only robots, lists and bulk
/// senders write.
/// What the header block says about the sender being a program.
#[derive(Default)]
struct Markers {
    /// An auto-responder, bulk sender or the like (RFC 3834, common practice).
    robot: bool,
    /// A mailing list or group passed it on.
    list: bool,
    /// The sender asks not to be answered automatically. This never makes a
    /// mail automatic: Outlook sets it on ordinary mail, too.
    no_auto_reply: bool,
    auto_response_suppress: bool,
}

fn robot_markers(headers: &[Header<'_>], buf: &[u8]) -> Markers {
    let mut m = Markers::default();
    for h in headers {
        if is_named(h, "auto-submitted") {
            m.robot |= !first_token(&raw_text(h, buf)).eq_ignore_ascii_case("no");
        } else if is_named(h, "precedence") {
            let value = raw_text(h, buf);
            let token = first_token(&value);
            let is = |p: &str| token.eq_ignore_ascii_case(p);
            m.robot |= is("bulk") || is("junk") || is("auto_reply") || is("auto-reply");
            m.list |= is("list");
        } else if is_named(h, "x-auto-response-suppress") {
            let asks = raw_text(h, buf)
                .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
                .any(|t| {
                    ["all", "autoreply", "oof"]
                        .iter()
                        .any(|p| t.eq_ignore_ascii_case(p))
                });
            m.no_auto_reply |= asks;
            m.auto_response_suppress |= asks;
        } else if ["list-id", "list-unsubscribe", "list-post"]
            .iter()
            .any(|n| is_named(h, n))
        {
            m.list = true;
        } else if ["x-autoreply", "x-autorespond"]
            .iter()
            .any(|n| is_named(h, n))
        {
            m.robot = true;
        } else if is_named(h, "x-loop") {
            m.no_auto_reply = true;
        }
    }
    m
}

/// Whether From is a program: (robot, list), by its local part: a mail
/// system (MAILER-DAEMON, postmaster) or a list's administrative address
/// (`*-request`, `owner-*`).
fn sender_kind(from: Option<&Mailbox>) -> (bool, bool) {
    let Some(from) = from else {
        return (false, false);
    };
    let local = from
        .address
        .rsplit_once('@')
        .map_or(from.address.as_str(), |(l, _)| l)
        .trim_matches('"')
        .to_ascii_lowercase();
    (
        local == "mailer-daemon" || local == "postmaster",
        local.ends_with("-request") || local.starts_with("owner-"),
    )
}

fn eq_mime(ct: &mail_parser::ContentType<'_>, ctype: &str, subtypes: &[&str]) -> bool {
    ct.ctype().trim().eq_ignore_ascii_case(ctype)
        && ct
            .subtype()
            .is_some_and(|s| subtypes.iter().any(|x| s.trim().eq_ignore_ascii_case(x)))
}

/// `multipart/report; report-type=delivery-status`, or a multipart/report
/// with a delivery-status part right below it.
fn is_delivery_report(message: &Message<'_>) -> bool {
    let Some(root) = message.parts.first() else {
        return false;
    };
    let Some(ct) = root.content_type() else {
        return false;
    };
    if !eq_mime(ct, "multipart", &["report"]) {
        return false;
    }
    let report_type = ct.attributes().into_iter().flatten().any(|a| {
        a.name.trim().eq_ignore_ascii_case("report-type")
            && a.value.trim().eq_ignore_ascii_case("delivery-status")
    });
    report_type
        || match &root.body {
            PartType::Multipart(children) => children.iter().any(|&id| {
                message
                    .parts
                    .get(id as usize)
                    .and_then(|p| p.content_type())
                    .is_some_and(|c| {
                        eq_mime(c, "message", &["delivery-status", "global-delivery-status"])
                    })
            }),
            _ => false,
        }
}

// ---------------------------------------------------------------------------
// Documents

/// Most bytes of body text kept for the matcher.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;

fn truncate_text(text: &str) -> String {
    let mut end = text.len().min(MAX_TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// The `From` of an attached mail.
fn author_of(nested: &Message<'_>) -> Option<Mailbox> {
    let root = nested.parts.first()?;
    read_headers(&root.headers, &nested.raw_message).from
}

struct Walker {
    docs: Vec<DocumentPart>,
    attached_authors: Vec<Mailbox>,
    /// Bytes still allowed for documents (see [`document_budget`]).
    budget: usize,
    /// Bytes mail-parser may still read (see [`parse_work`]).
    work: usize,
    /// A document was left out (see `ParsedMessage::documents_truncated`).
    truncated: bool,
}

/// Most bytes all documents of one mail may hold together: three times the
/// mail, plus a little. Decoding never makes a part bigger than its encoding,
/// so the top-level attachments always fit; what the budget stops is an
/// attached mail nested in an attached mail nested in …, each level a full
/// copy of the one below. Documents past the budget stay readable inside the
/// stored raw mail and the outer `.eml` document.
fn document_budget(raw_len: usize) -> usize {
    raw_len.saturating_mul(3).saturating_add(64 * 1024)
}

fn child_path(prefix: &str, n: usize) -> String {
    if prefix.is_empty() {
        n.to_string()
    } else {
        format!("{prefix}.{n}")
    }
}

impl Walker {
    fn full(&self) -> bool {
        self.docs.len() >= MAX_DOCUMENTS
    }

    fn push(&mut self, part: String, filename: String, content_type: String, bytes: Vec<u8>) {
        if !self.full() && bytes.len() <= self.budget {
            self.budget -= bytes.len();
            self.docs.push(DocumentPart {
                filename,
                content_type,
                part,
                bytes,
            });
        } else {
            self.truncated = true;
        }
    }

    /// Walks one message's MIME tree (without recursion: the tree can be
    /// thousands of levels deep). `prefix` is the path of the attached
    /// message, empty for the top level; `depth` counts attached messages.
    fn walk_message(&mut self, message: &Message<'_>, prefix: &str, depth: usize) {
        let Some(root) = message.parts.first() else {
            return;
        };
        let PartType::Multipart(children) = &root.body else {
            self.leaf(message, root, &child_path(prefix, 1), depth);
            return;
        };
        let mut visited = vec![false; message.parts.len()];
        if let Some(v) = visited.first_mut() {
            *v = true;
        }
        let mut stack: Vec<(u32, String, usize)> = Vec::new();
        push_children(&mut stack, children, prefix, 1);
        while let Some((id, path, mime_depth)) = stack.pop() {
            if self.full() {
                self.truncated = true;
                return;
            }
            match visited.get_mut(id as usize) {
                Some(seen) if !*seen => *seen = true,
                _ => continue,
            }
            let Some(part) = message.parts.get(id as usize) else {
                continue;
            };
            match &part.body {
                PartType::Multipart(kids) => {
                    if mime_depth < MAX_MIME_DEPTH {
                        push_children(&mut stack, kids, &path, mime_depth + 1);
                    } else {
                        self.truncated = true;
                    }
                }
                _ => self.leaf(message, part, &path, depth),
            }
        }
    }

    fn leaf(&mut self, message: &Message<'_>, part: &MessagePart<'_>, path: &str, depth: usize) {
        let buf: &[u8] = &message.raw_message;
        let mime = part_mime(part);
        let filename = part_filename(part, buf);
        let attachment = part
            .content_disposition()
            .is_some_and(|d| d.is_attachment());
        let is_message = matches!(part.body, PartType::Message(_)) || is_message_mime(&mime);
        // Every mail client shows an inline text/plain or text/html part
        // without a name as (part of) the body, whichever part mail-parser
        // picked as the body: a second inline text, the text of a multipart
        // whose boundary never came, an empty body.
        let displayed = mime == "text/plain" || mime == "text/html";
        if displayed && !is_message && !attachment && filename.is_none() {
            if mime == "text/plain" {
                self.uu_documents(path, &part_bytes(part, buf));
            }
            return;
        }
        if is_message {
            self.message_document(buf, part, path, depth, filename, mime);
            return;
        }
        let bytes = part_bytes(part, buf);
        if is_tnef(&mime, filename.as_deref()) {
            self.tnef_documents(path, bytes, filename, mime);
            return;
        }
        let name = sanitize_filename(filename.as_deref().unwrap_or(""), &mime);
        self.push(path.to_string(), name, mime, bytes);
    }

    /// Files uuencoded into a text body (`begin 644 cv.pdf` ... `end`), as
    /// old clients and some scripts send them; mail clients show them as
    /// attachments. They are `P/uu:1`, `P/uu:2`, ... below the text's path.
    fn uu_documents(&mut self, path: &str, text: &[u8]) {
        if memchr::memmem::find(text, b"begin ").is_none() {
            return;
        }
        for (k, (name, bytes)) in uu_blocks(text, true).into_iter().enumerate() {
            let mime = mime::of_filename(&name).unwrap_or("application/octet-stream");
            let filename = sanitize_filename(&name, mime);
            self.push(
                format!("{path}/uu:{}", k + 1),
                filename,
                mime.to_string(),
                bytes,
            );
        }
    }

    /// An attached mail: itself as an `.eml` document, then its own documents.
    fn message_document(
        &mut self,
        buf: &[u8],
        part: &MessagePart<'_>,
        path: &str,
        depth: usize,
        filename: Option<String>,
        mime: String,
    ) {
        let mime = if is_message_mime(&mime) {
            mime
        } else {
            "message/rfc822".to_string()
        };
        // Unencoded attached messages are leaves after the repairs; an
        // encoded one mail-parser decoded into its own buffer (and parsed,
        // up to 3 levels). Either way the bytes are parsed here on their
        // own, with the same repairs, up to `MAX_MESSAGE_DEPTH`.
        let bytes = match &part.body {
            PartType::Message(nested) if part.encoding != Encoding::None => {
                nested.raw_message.to_vec()
            }
            PartType::Message(_) => buf
                .get(part.offset_body as usize..part.offset_end as usize)
                .unwrap_or_default()
                .to_vec(),
            _ => part_bytes(part, buf),
        };
        if let PartType::Message(nested) = &part.body
            && depth < MAX_MESSAGE_DEPTH
            && find_edits(nested, &nested.raw_message).is_empty()
        {
            // mail-parser's own reading needs no repair: walked as it is.
            let name = message_filename(filename.as_deref(), Some(nested));
            self.push_attached_mail(path, name, mime, bytes, depth);
            if depth == 0
                && let Some(author) = author_of(nested)
            {
                self.attached_authors.push(author);
            }
            self.walk_message(nested, path, depth + 1);
            return;
        }
        let mut scratch = Vec::new();
        let may_open = depth < MAX_MESSAGE_DEPTH && self.work >= bytes.len();
        let nested = if may_open {
            parse_mime(&bytes, &mut scratch, &mut self.work)
        } else {
            None
        };
        let name = message_filename(filename.as_deref(), nested.as_ref());
        match nested {
            Some(nested) => {
                self.push_attached_mail(path, name, mime, bytes.clone(), depth);
                if depth == 0
                    && let Some(author) = author_of(&nested)
                {
                    self.attached_authors.push(author);
                }
                self.walk_message(&nested, path, depth + 1);
                dismantle(nested);
            }
            None => {
                // Not opened: too deep, out of parse work, or not a mail.
                self.truncated |= !may_open;
                self.push(path.to_string(), name, mime, bytes);
            }
        }
    }

    /// An attached mail as an `.eml` document: the first level only. A mail
    /// attached inside an attached mail is already in the outer `.eml`
    /// (a mail client opens it from there); storing each level again would
    /// store the innermost CV once per level, and the document budget would
    /// run out before the CV itself. Its own documents (the leaves) are
    /// kept at every level, so one mail takes about twice its size at most.
    fn push_attached_mail(
        &mut self,
        path: &str,
        name: String,
        mime: String,
        bytes: Vec<u8>,
        depth: usize,
    ) {
        if depth == 0 {
            self.push(path.to_string(), name, mime, bytes);
        }
    }

    /// An Outlook winmail.dat: the files it carries; the winmail.dat itself
    /// when it cannot be unpacked or not every file in it could be read.
    fn tnef_documents(
        &mut self,
        path: &str,
        bytes: Vec<u8>,
        filename: Option<String>,
        mime: String,
    ) {
        let (files, complete) = unpack_tnef(&bytes);
        if files.is_empty() || !complete {
            let name = sanitize_filename(filename.as_deref().unwrap_or(""), &mime);
            self.push(path.to_string(), name, mime, bytes);
        }
        for (k, file) in files.into_iter().enumerate() {
            self.push(
                format!("{path}/tnef:{}", k + 1),
                file.name,
                file.mime,
                file.data,
            );
        }
    }
}

fn push_children(stack: &mut Vec<(u32, String, usize)>, kids: &[u32], prefix: &str, depth: usize) {
    // Reversed so that the first child is popped first.
    for (i, &kid) in kids.iter().enumerate().rev() {
        stack.push((kid, child_path(prefix, i + 1), depth));
    }
}

fn is_message_mime(mime: &str) -> bool {
    mime == "message/rfc822" || mime == "message/global"
}

fn is_tnef(mime: &str, filename: Option<&str>) -> bool {
    mime == "application/ms-tnef"
        || mime == "application/vnd.ms-tnef"
        || filename.is_some_and(|f| sanitize_filename(f, mime).eq_ignore_ascii_case("winmail.dat"))
}

fn message_filename(filename: Option<&str>, nested: Option<&Message<'_>>) -> String {
    if let Some(name) = filename {
        return sanitize_filename(name, "message/rfc822");
    }
    let subject = nested.and_then(|m| {
        let root = m.parts.first()?;
        read_subject(&root.headers, &m.raw_message)
    });
    match subject {
        // A subject is not a path: its slashes must not cut the name short.
        Some(s) => sanitize_filename(
            &format!("{}.eml", s.replace(['/', '\\'], "_")),
            "message/rfc822",
        ),
        None => default_filename("message/rfc822"),
    }
}

/// `type/subtype` in lower case, without parameters.
fn part_mime(part: &MessagePart<'_>) -> String {
    let is_message = matches!(part.body, PartType::Message(_));
    let Some(ct) = part.content_type() else {
        return if is_message {
            "message/rfc822"
        } else {
            "text/plain"
        }
        .to_string();
    };
    let ctype = ct.ctype().trim().to_ascii_lowercase();
    let subtype = ct.subtype().unwrap_or("").trim().to_ascii_lowercase();
    if let Some(sub) = format!("{ctype}/{subtype}").strip_prefix(MESSAGE_MARKER) {
        // An attached message the repairs made a leaf.
        return format!("message/{sub}");
    }
    if is_message {
        if ctype == "message" && is_mime_token(&subtype) {
            return format!("message/{subtype}");
        }
        return "message/rfc822".to_string();
    }
    if ctype == "multipart" {
        // A multipart whose boundary never showed up; mail-parser keeps its
        // body as text.
        return "text/plain".to_string();
    }
    if is_mime_token(&ctype) && is_mime_token(&subtype) {
        format!("{ctype}/{subtype}")
    } else {
        "application/octet-stream".to_string()
    }
}

fn is_mime_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 127
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
}

fn last_header<'a, 'x>(part: &'a MessagePart<'x>, name: &str) -> Option<&'a Header<'x>> {
    part.headers.iter().rev().find(|h| is_named(h, name))
}

/// The part's file name, decoded but not yet sanitised: Content-Disposition
/// `filename`, else Content-Type `name`; RFC 2231 and RFC 2047 decoded here,
/// with mail-parser's reading as a fallback.
fn part_filename(part: &MessagePart<'_>, buf: &[u8]) -> Option<String> {
    last_header(part, "content-disposition")
        .and_then(|h| param_value(header_raw(h, buf), "filename"))
        .or_else(|| {
            part.content_disposition()
                .and_then(|d| d.attribute("filename"))
                .map(str::to_string)
        })
        .or_else(|| {
            last_header(part, "content-type").and_then(|h| param_value(header_raw(h, buf), "name"))
        })
        .or_else(|| {
            part.content_type()
                .and_then(|c| c.attribute("name"))
                .map(str::to_string)
        })
        .filter(|n| !n.trim().is_empty())
}

/// The decoded content of a leaf part.
fn part_bytes(part: &MessagePart<'_>, buf: &[u8]) -> Vec<u8> {
    if is_uuencode(part) {
        // mail-parser does not know uuencode; it keeps the encoded text.
        let raw = buf
            .get(part.offset_body as usize..part.offset_end as usize)
            .unwrap_or_default();
        return uu_blocks(raw, false)
            .into_iter()
            .next()
            .map(|(_, bytes)| bytes)
            .unwrap_or_else(|| raw.to_vec());
    }
    match &part.body {
        PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
        PartType::Multipart(_) => Vec::new(),
        // Text (charset-decoded by mail-parser), a body mail-parser could not
        // transfer-decode, or a message: back to the raw part.
        PartType::Text(_) | PartType::Html(_) | PartType::Message(_) => {
            let raw = buf
                .get(part.offset_body as usize..part.offset_end as usize)
                .unwrap_or_default();
            let cte = part
                .content_transfer_encoding()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            match cte.as_str() {
                "base64" => decode_base64_lenient(raw),
                "quoted-printable" => decode_qp_lenient(raw),
                _ => raw.to_vec(),
            }
        }
    }
}

/// `Content-Transfer-Encoding: x-uuencode` (or `uuencode`, `x-uue`).
fn is_uuencode(part: &MessagePart<'_>) -> bool {
    part.content_transfer_encoding().is_some_and(|cte| {
        let cte = cte.trim();
        ["x-uuencode", "uuencode", "x-uue", "uue"]
            .iter()
            .any(|u| cte.eq_ignore_ascii_case(u))
    })
}

/// Most uuencoded files read from one text.
const MAX_UU_BLOCKS: usize = 100;

/// The uuencoded files in a text: `(name, bytes)` for each block from a
/// `begin <mode> <name>` line up to its `end` line. In a text body
/// (`strict`) a block counts only with its `end` line and data lines that
/// are all valid; in an `x-uuencode` part it runs to the end, leniently.
fn uu_blocks(text: &[u8], strict: bool) -> Vec<(String, Vec<u8>)> {
    let mut blocks = Vec::new();
    let mut lines = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    while blocks.len() < MAX_UU_BLOCKS {
        let Some(line) = lines.next() else {
            break;
        };
        let Some(name) = uu_begin(line) else {
            continue;
        };
        let mut bytes = Vec::new();
        let mut valid = true;
        let mut ended = false;
        for line in lines.by_ref() {
            if line.trim_ascii_end() == b"end" {
                ended = true;
                break;
            }
            if !uu_line(line, &mut bytes) {
                valid = false;
                if strict {
                    break;
                }
            }
        }
        if !strict || (valid && ended) {
            blocks.push((name, bytes));
        }
    }
    blocks
}

/// The file name of a `begin <mode> <name>` line (mode: 3 or 4 octal digits).
fn uu_begin(line: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(b"begin ")?;
    let space = rest.iter().position(|&b| b == b' ')?;
    let mode = &rest[..space];
    if !(3..=4).contains(&mode.len()) || !mode.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return None;
    }
    let name = decode_8bit(rest[space + 1..].trim_ascii());
    (!name.is_empty()).then_some(name)
}

/// Decodes one uuencoded line into `out`; false if it is not one.
fn uu_line(line: &[u8], out: &mut Vec<u8>) -> bool {
    let Some((&first, data)) = line.split_first() else {
        return true; // an empty line: nothing
    };
    let value = |c: u8| c.wrapping_sub(b' ') & 0x3f;
    if !(b' '..=b'`').contains(&first) {
        return false;
    }
    let n = usize::from(value(first));
    let mut decoded = Vec::with_capacity(n + 2);
    for group in data.chunks(4) {
        if group.iter().any(|c| !(b' '..=b'`').contains(c)) {
            return false;
        }
        let v: Vec<u8> = (0..4)
            .map(|i| value(group.get(i).copied().unwrap_or(b'`')))
            .collect();
        decoded.push((v[0] << 2) | (v[1] >> 4));
        decoded.push((v[1] << 4) | (v[2] >> 2));
        decoded.push((v[2] << 6) | v[3]);
    }
    if decoded.len() < n {
        return false;
    }
    out.extend_from_slice(&decoded[..n]);
    true
}

/// Base64, skipping anything outside the alphabet (line breaks, stray
/// characters, padding).
fn decode_base64_lenient(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for &b in input {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Quoted-printable, keeping malformed escapes as they are.
fn decode_qp_lenient(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b != b'=' {
            out.push(b);
            i += 1;
            continue;
        }
        // Soft line break: '=' [spaces] (CR)LF, or '=' [spaces] at the end.
        let mut j = i + 1;
        while matches!(input.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        match (input.get(j), input.get(j + 1)) {
            (None, _) => break,
            (Some(b'\n'), _) => {
                i = j + 1;
                continue;
            }
            (Some(b'\r'), Some(b'\n')) => {
                i = j + 2;
                continue;
            }
            _ => {}
        }
        let hi = input.get(i + 1).copied().and_then(hex_value);
        let lo = input.get(i + 2).copied().and_then(hex_value);
        if let (Some(hi), Some(lo)) = (hi, lo) {
            out.push((hi << 4) | lo);
            i += 3;
        } else {
            out.push(b'=');
            i += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------
// MIME parameters (RFC 2045, RFC 2231, RFC 2047 inside values)

struct Param {
    /// Lower case, without the `*N` / `*` suffixes.
    name: String,
    section: Option<u32>,
    /// Written as `name*` or `name*N*`: percent-encoded, maybe with charset.
    extended: bool,
    value: Vec<u8>,
}

impl Param {
    fn new(name: &str, value: Vec<u8>) -> Param {
        let (base, extended) = match name.strip_suffix('*') {
            Some(base) => (base, true),
            None => (name, false),
        };
        let (base, section) = match base.rsplit_once('*') {
            Some((b, n))
                if !n.is_empty() && n.len() <= 9 && n.bytes().all(|c| c.is_ascii_digit()) =>
            {
                (b, n.parse::<u32>().ok())
            }
            _ => (base, None),
        };
        Param {
            name: base.to_string(),
            section,
            extended,
            value,
        }
    }
}

/// The parameters of a raw `Content-Type` / `Content-Disposition` value.
fn parse_params(raw: &[u8]) -> Vec<Param> {
    // Unfolding: a line break followed by whitespace is just the whitespace.
    let v: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    let next_semicolon = |from: usize| {
        v.get(from..)
            .and_then(|rest| rest.iter().position(|&b| b == b';'))
            .map_or(v.len(), |p| from + p)
    };
    let mut params = Vec::new();
    let mut i = next_semicolon(0);
    while i < v.len() && params.len() < MAX_PARAMS {
        i += 1; // the ';'
        let name_start = i;
        while i < v.len() && v[i] != b'=' && v[i] != b';' {
            i += 1;
        }
        let name = String::from_utf8_lossy(&v[name_start..i])
            .trim()
            .to_ascii_lowercase();
        if i >= v.len() || v[i] == b';' {
            continue;
        }
        i += 1; // the '='
        while i < v.len() && (v[i] == b' ' || v[i] == b'\t') {
            i += 1;
        }
        let mut value = Vec::new();
        if v.get(i) == Some(&b'"') {
            i += 1;
            while let Some(&b) = v.get(i) {
                match b {
                    b'\\' if i + 1 < v.len() => {
                        value.push(v[i + 1]);
                        i += 2;
                    }
                    b'"' => {
                        i += 1;
                        break;
                    }
                    _ => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
            i = next_semicolon(i);
        } else {
            let start = i;
            i = next_semicolon(i);
            value = v[start..i].trim_ascii().to_vec();
        }
        if !name.is_empty() {
            params.push(Param::new(&name, value));
        }
    }
    params
}

/// One parameter's value, fully decoded: RFC 2231 (`name*=`, `name*0*=`,
/// `name*1=`, ... with the charset of section 0 applied to the joined
/// bytes), else a plain value with RFC 2047 encoded words decoded.
fn param_value(raw: &[u8], key: &str) -> Option<String> {
    let params = parse_params(raw);
    if let Some(p) = params
        .iter()
        .find(|p| p.name == key && p.section.is_none() && p.extended)
    {
        let (charset, rest) = split_charset(&p.value);
        return Some(decode_charset(&percent_decode(rest), charset));
    }
    let mut sections: Vec<&Param> = params
        .iter()
        .filter(|p| p.name == key && p.section.is_some())
        .collect();
    if !sections.is_empty() {
        sections.sort_by_key(|p| p.section);
        sections.dedup_by_key(|p| p.section);
        let mut charset = None;
        let mut bytes = Vec::new();
        for p in &sections {
            if p.extended {
                let mut value: &[u8] = &p.value;
                if p.section == Some(0) {
                    let (cs, rest) = split_charset(value);
                    charset = cs;
                    value = rest;
                }
                bytes.extend(percent_decode(value));
            } else {
                bytes.extend_from_slice(&p.value);
            }
        }
        return Some(decode_charset(&bytes, charset));
    }
    let p = params
        .iter()
        .find(|p| p.name == key && p.section.is_none() && !p.extended)?;
    let text = decode_8bit(&p.value);
    if text.contains("=?") {
        Some(decode_words(&text))
    } else {
        Some(text)
    }
}

/// `charset'language'rest` -> (charset, rest); the value as is without two quotes.
fn split_charset(value: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let mut quotes = value.iter().enumerate().filter(|&(_, &b)| b == b'\'');
    match (quotes.next(), quotes.next()) {
        (Some((first, _)), Some((second, _))) => {
            let charset = &value[..first];
            (
                (!charset.is_empty()).then_some(charset),
                &value[second + 1..],
            )
        }
        _ => (None, value),
    }
}

fn percent_decode(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        if b == b'%' {
            let hi = value.get(i + 1).copied().and_then(hex_value);
            let lo = value.get(i + 2).copied().and_then(hex_value);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi << 4) | lo);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

fn decode_charset(bytes: &[u8], charset: Option<&[u8]>) -> String {
    let decoder = charset.and_then(|cs| {
        let cs = cs.trim_ascii();
        let utf8 = cs.eq_ignore_ascii_case(b"utf-8") || cs.eq_ignore_ascii_case(b"utf8");
        if utf8 { None } else { charset_decoder(cs) }
    });
    match decoder {
        Some(decode) => guarded(|| decode(bytes)).unwrap_or_else(|| decode_8bit(bytes)),
        None => decode_8bit(bytes),
    }
}

// ---------------------------------------------------------------------------
// RFC 2047 encoded words

/// The encoded word at the start of `s`: its charset (an RFC 2231 language
/// cut off), `Q` or `B`, the encoded text, and the word's length in bytes.
fn encoded_word(s: &str) -> Option<(&str, u8, &str, usize)> {
    let rest = s.strip_prefix("=?")?;
    let q1 = rest.find(|c: char| c == '?' || c.is_whitespace())?;
    if q1 == 0 || q1 > 75 || !rest[q1..].starts_with('?') {
        return None;
    }
    let charset = rest[..q1].split('*').next().unwrap_or_default();
    let after = &rest[q1 + 1..];
    let enc = after.as_bytes().first()?.to_ascii_uppercase();
    if !matches!(enc, b'Q' | b'B') || after.as_bytes().get(1) != Some(&b'?') {
        return None;
    }
    let body = &after[2..];
    // The text ends at the first `?`; a word never holds whitespace.
    let end = body.find(|c: char| c == '?' || c.is_whitespace())?;
    if !body[end..].starts_with("?=") || charset.is_empty() {
        return None;
    }
    Some((charset, enc, &body[..end], 2 + q1 + 3 + end + 2))
}

/// One encoded word's text. Raw 8-bit characters inside it (a client
/// that wrote the header in UTF-8 and did not encode them) are text
/// already: they are kept as they are, only the `=XX` escapes and plain
/// ASCII are read in the word's charset. mail-parser decodes those bytes
/// in the charset once more (`FrÃ¶sche`).
fn decode_word(charset: &str, enc: u8, text: &str) -> String {
    let cs = Some(charset.as_bytes());
    if enc == b'B' {
        return decode_charset(&decode_base64_lenient(text.as_bytes()), cs);
    }
    let mut out = String::new();
    let mut pending: Vec<u8> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'_' => {
                pending.push(b' ');
                i += 1;
            }
            b'=' => match (
                bytes.get(i + 1).copied().and_then(hex_value),
                bytes.get(i + 2).copied().and_then(hex_value),
            ) {
                (Some(hi), Some(lo)) => {
                    pending.push((hi << 4) | lo);
                    i += 3;
                }
                _ => {
                    pending.push(b'=');
                    i += 1;
                }
            },
            _ if b.is_ascii() => {
                pending.push(b);
                i += 1;
            }
            _ => {
                let c = text
                    .get(i..)
                    .and_then(|t| t.chars().next())
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                out.push_str(&decode_charset(&std::mem::take(&mut pending), cs));
                out.push(c);
                i += c.len_utf8().max(1);
            }
        }
    }
    out.push_str(&decode_charset(&pending, cs));
    out
}

/// RFC 2047 encoded words in a text (a parameter value): each word
/// decoded, whitespace between two adjacent words dropped, everything
/// else kept exactly. mail-parser's unstructured parser puts spaces
/// between a word and the text beside it (`Lebenslauf_ Jörg _Wei ß .pdf`).
fn decode_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = String::new();
    let mut after_word = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some((charset, enc, encoded, len)) = encoded_word(rest) {
            if !after_word {
                out.push_str(&space);
            }
            space.clear();
            out.push_str(&decode_word(charset, enc, encoded));
            after_word = true;
            rest = &rest[len..];
        } else if c.is_whitespace() {
            space.push(c);
            rest = &rest[c.len_utf8()..];
        } else {
            out.push_str(&space);
            space.clear();
            out.push(c);
            after_word = false;
            rest = &rest[c.len_utf8()..];
        }
    }
    out.push_str(&space);
    out
}

/// A header text with every encoded word that holds raw 8-bit characters
/// written anew as a clean UTF-8 word, for mail-parser to read; `None`
/// when there is no such word.
fn reencode_8bit_words(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        match encoded_word(rest) {
            Some((charset, enc, encoded, len)) => {
                if encoded.is_ascii() {
                    out.push_str(&rest[..len]);
                } else {
                    let decoded = decode_word(charset, enc, encoded);
                    out.push_str("=?UTF-8?B?");
                    out.push_str(&data_encoding::BASE64.encode(decoded.as_bytes()));
                    out.push_str("?=");
                    changed = true;
                }
                rest = &rest[len..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    changed.then_some(out)
}

// ---------------------------------------------------------------------------
// TNEF (winmail.dat)

struct TnefFile {
    name: String,
    mime: String,
    data: Vec<u8>,
}

const TNEF_SIGNATURE: [u8; 4] = [0x78, 0x9f, 0x3e, 0x22];
const ATT_ATTACH_REND_DATA: u32 = 0x0006_9002;
const ATT_ATTACH_DATA: u32 = 0x0006_800F;
const ATT_ATTACH_TITLE: u32 = 0x0001_8010;
const ATT_ATTACH_TRANSPORT_FILENAME: u32 = 0x0006_9001;
const ATT_ATTACHMENT: u32 = 0x0006_9005;

/// The files in a TNEF stream, and whether that is all of them. The `tnef`
/// crate reads the stream first (it checks the checksums); it refuses whole
/// streams over attributes it does not know and skips files it finds
/// incomplete, so a lenient scan of the attribute records (ignoring unknown
/// ones) counts the files and takes over when the crate fails or misses some.
fn unpack_tnef(data: &[u8]) -> (Vec<TnefFile>, bool) {
    let scan = tnef_scan(data);
    if let Some(Ok(list)) = guarded(|| tnef::read_attachments(data))
        && !list.is_empty()
        && list.len() == scan.groups
    {
        let files: Vec<TnefFile> = list
            .iter()
            .take(MAX_DOCUMENTS)
            .filter_map(|a| {
                tnef_file(
                    Some(a.title.clone()),
                    a.transport_filename.clone(),
                    Some(a.props),
                    Some(a.data),
                )
            })
            .collect();
        let complete = files.len() == list.len();
        return (files, complete);
    }
    let complete = scan.clean_end && scan.groups > 0 && scan.files.len() == scan.groups;
    (scan.files, complete)
}

#[derive(Default)]
struct TnefScan {
    files: Vec<TnefFile>,
    /// Attachments begun (attAttachRendData records seen).
    groups: usize,
    /// The records ran exactly to the end of the data.
    clean_end: bool,
}

#[derive(Default)]
struct RawTnefAttachment<'a> {
    data: Option<&'a [u8]>,
    title: Option<&'a [u8]>,
    transport_filename: Option<&'a [u8]>,
    props: Option<&'a [u8]>,
}

fn tnef_scan(data: &[u8]) -> TnefScan {
    let mut scan = TnefScan::default();
    if data.get(..4) != Some(&TNEF_SIGNATURE[..]) {
        return scan;
    }
    let finish = |scan: &mut TnefScan, att: RawTnefAttachment<'_>| {
        if let Some(file) = tnef_file(
            att.title.map(tnef_string),
            att.transport_filename.map(tnef_string),
            att.props,
            att.data,
        ) {
            scan.files.push(file);
        }
    };
    let mut pos: usize = 6; // signature, legacy key
    let mut current: Option<RawTnefAttachment<'_>> = None;
    while scan.files.len() < MAX_DOCUMENTS {
        if pos == data.len() {
            scan.clean_end = true;
            break;
        }
        let Some(head) = data.get(pos..pos.saturating_add(9)) else {
            break;
        };
        let level = head[0];
        let id = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        let len = u32::from_le_bytes([head[5], head[6], head[7], head[8]]) as usize;
        let start = pos + 9;
        let Some(end) = start.checked_add(len) else {
            break;
        };
        let Some(value) = data.get(start..end) else {
            break;
        };
        if data.len() < end.saturating_add(2) {
            break; // no room for the checksum
        }
        pos = end + 2;
        if level != 2 {
            continue;
        }
        match id {
            ATT_ATTACH_REND_DATA => {
                if let Some(att) = current.take() {
                    finish(&mut scan, att);
                }
                scan.groups += 1;
                current = Some(RawTnefAttachment::default());
            }
            ATT_ATTACH_DATA => current.get_or_insert_with(Default::default).data = Some(value),
            ATT_ATTACH_TITLE => current.get_or_insert_with(Default::default).title = Some(value),
            ATT_ATTACH_TRANSPORT_FILENAME => {
                current
                    .get_or_insert_with(Default::default)
                    .transport_filename = Some(value)
            }
            ATT_ATTACHMENT => current.get_or_insert_with(Default::default).props = Some(value),
            _ => {}
        }
    }
    if let Some(att) = current.take() {
        finish(&mut scan, att);
    }
    scan
}

/// A NUL-terminated 8-bit TNEF string.
fn tnef_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    decode_8bit(&bytes[..end])
}

/// The file of one TNEF attachment, `None` when it holds none that can be
/// unpacked: an embedded Outlook item (a message, task, appointment) or an
/// OLE object (`PR_ATTACH_METHOD` 5 or 6, or an object in
/// `PR_ATTACH_DATA_OBJ`), whose attAttachData, if any, is only a
/// placeholder. The file's bytes are attAttachData, else the MAPI property
/// `PR_ATTACH_DATA_BIN` (some writers keep them only there).
fn tnef_file(
    title: Option<String>,
    transport_filename: Option<String>,
    props: Option<&[u8]>,
    data: Option<&[u8]>,
) -> Option<TnefFile> {
    let mapi = props.map(mapi_attach_props).unwrap_or_default();
    if mapi.object || matches!(mapi.method, Some(ATTACH_EMBEDDED_MSG | ATTACH_OLE)) {
        return None;
    }
    let data = data
        .filter(|d| !d.is_empty() || mapi.data.is_none())
        .map(<[u8]>::to_vec)
        .or(mapi.data)?;
    // The title is often an 8.3 name; the MAPI long file name is the real one.
    let raw_name = [mapi.long_name, transport_filename, mapi.short_name, title]
        .into_iter()
        .flatten()
        .find(|n| !n.trim().is_empty());
    let mime = mapi
        .mime_tag
        .map(|m| m.trim().to_ascii_lowercase())
        .filter(|m| {
            m.split_once('/')
                .is_some_and(|(t, s)| is_mime_token(t) && is_mime_token(s))
        })
        .or_else(|| {
            raw_name
                .as_deref()
                .and_then(mime::of_filename)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "application/octet-stream".to_string());
    let name = sanitize_filename(raw_name.as_deref().unwrap_or(""), &mime);
    Some(TnefFile { name, mime, data })
}

#[derive(Default)]
struct MapiAttachProps {
    long_name: Option<String>,
    short_name: Option<String>,
    mime_tag: Option<String>,
    /// PR_ATTACH_METHOD.
    method: Option<u32>,
    /// PR_ATTACH_DATA_BIN: the file's bytes.
    data: Option<Vec<u8>>,
    /// PR_ATTACH_DATA_OBJ: an embedded message or OLE storage.
    object: bool,
}

const PR_ATTACH_DATA: u16 = 0x3701;
const PR_ATTACH_METHOD: u16 = 0x3705;
const ATTACH_EMBEDDED_MSG: u32 = 5;
const ATTACH_OLE: u32 = 6;

const PR_ATTACH_FILENAME: u16 = 0x3704;
const PR_ATTACH_LONG_FILENAME: u16 = 0x3707;
const PR_ATTACH_MIME_TAG: u16 = 0x370E;

/// Reads the MAPI properties of a TNEF attachment (attAttachment, MS-OXTNEF
/// 2.1.3.5) for its long file name and MIME type. Stops quietly at anything
/// it does not understand.
fn mapi_attach_props(props: &[u8]) -> MapiAttachProps {
    let mut out = MapiAttachProps::default();
    let _ = read_mapi_props(props, &mut out);
    out
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// `n` bytes and the padding to a multiple of 4 after them.
    fn take_padded(&mut self, n: usize) -> Option<&'a [u8]> {
        let value = self.take(n)?;
        self.take((4 - n % 4) % 4)?;
        Some(value)
    }
}

fn read_mapi_props(props: &[u8], out: &mut MapiAttachProps) -> Option<()> {
    let mut c = Cursor {
        bytes: props,
        pos: 0,
    };
    let count = c.u32()?;
    for _ in 0..count {
        let ptype = c.u16()?;
        let pid = c.u16()?;
        if pid >= 0x8000 {
            // Named property: GUID, kind, then an id or a name.
            c.take(16)?;
            if c.u32()? == 0 {
                c.take(4)?;
            } else {
                let n = c.u32()? as usize;
                c.take_padded(n)?;
            }
        }
        let multi = ptype & 0x1000 != 0;
        let base = ptype & 0x0FFF;
        let variable = matches!(base, 0x001E | 0x001F | 0x0102 | 0x000D);
        let values = if multi || variable { c.u32()? } else { 1 };
        for index in 0..values {
            if variable {
                let n = c.u32()? as usize;
                let value = c.take_padded(n)?;
                if index == 0 && pid < 0x8000 {
                    let text = match base {
                        0x001F => Some(utf16le(value)),
                        0x001E => Some(tnef_string(value)),
                        _ => None,
                    };
                    match (pid, text) {
                        (PR_ATTACH_LONG_FILENAME, Some(t)) => out.long_name = Some(t),
                        (PR_ATTACH_FILENAME, Some(t)) => out.short_name = Some(t),
                        (PR_ATTACH_MIME_TAG, Some(t)) => out.mime_tag = Some(t),
                        (PR_ATTACH_DATA, None) if base == 0x0102 => {
                            out.data = Some(value.to_vec());
                        }
                        (PR_ATTACH_DATA, None) if base == 0x000D => out.object = true,
                        _ => {}
                    }
                }
            } else {
                let size = match base {
                    0x0001..=0x0004 | 0x000A | 0x000B => 4,
                    0x0005..=0x0007 | 0x0014 | 0x0040 => 8,
                    0x0048 => 16,
                    _ => return None,
                };
                let value = c.take(size)?;
                if pid == PR_ATTACH_METHOD
                    && base == 0x0003
                    && let Some(v) = value.get(..4)
                {
                    out.method = Some(u32::from_le_bytes([v[0], v[1], v[2], v[3]]));
                }
            }
        }
    }
    Some(())
}

fn utf16le(bytes: &[u8]) -> String {
    let units = bytes
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .take_while(|&u| u != 0);
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::filename::{MAX_FILENAME_BYTES, is_invisible};
    use sha2::{Digest, Sha256};

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// (part, filename, content type, size, sha256) of each document.
    fn docs(parsed: &ParsedMessage) -> Vec<(String, String, String, usize, String)> {
        parsed
            .documents
            .iter()
            .map(|d| {
                (
                    d.part.clone(),
                    d.filename.clone(),
                    d.content_type.clone(),
                    d.bytes.len(),
                    sha(&d.bytes),
                )
            })
            .collect()
    }

    fn doc(
        part: &str,
        name: &str,
        ct: &str,
        size: usize,
        digest: &str,
    ) -> (String, String, String, usize, String) {
        (part.into(), name.into(), ct.into(), size, digest.into())
    }

    fn mb(name: Option<&str>, address: &str) -> Mailbox {
        Mailbox {
            name: name.map(str::to_string),
            address: address.to_string(),
        }
    }

    /// What every result must satisfy, whatever the input.
    fn check_invariants(parsed: &ParsedMessage) {
        let h = &parsed.headers;
        let mut texts: Vec<&str> = Vec::new();
        for m in h.from.iter().chain(&h.to).chain(&h.cc).chain(&h.reply_to) {
            texts.push(&m.address);
            assert!(!m.address.is_empty());
            if let Some(n) = &m.name {
                texts.push(n);
            }
        }
        texts.extend(h.subject.as_deref());
        texts.extend(h.message_id.as_deref());
        texts.extend(h.in_reply_to.iter().map(String::as_str));
        texts.extend(h.references.iter().map(String::as_str));
        texts.extend(h.auto_submitted.as_deref());
        texts.extend(h.list_id.as_deref());
        texts.extend(h.precedence.as_deref());
        for t in texts {
            assert!(!t.chars().any(char::is_control), "control char in {t:?}");
        }
        if h.delivery_report {
            assert!(h.automatic);
        }
        assert!(parsed.documents.len() <= MAX_DOCUMENTS);
        for d in &parsed.documents {
            assert!(!d.filename.is_empty());
            assert!(d.filename.len() <= MAX_FILENAME_BYTES, "{:?}", d.filename);
            assert!(!d.filename.chars().any(is_invisible), "{:?}", d.filename);
            assert!(
                !d.filename
                    .contains(['/', '\\', ':', '*', '?', '"', '<', '>', '|']),
                "{:?}",
                d.filename
            );
            assert!(!d.filename.starts_with('.'), "{:?}", d.filename);
            assert!(!d.part.is_empty());
            assert_eq!(d.content_type, d.content_type.to_ascii_lowercase());
            assert!(d.content_type.contains('/'), "{:?}", d.content_type);
        }
    }

    fn parse(raw: &[u8], null_sender: bool) -> ParsedMessage {
        let parsed = parse_message(raw, null_sender);
        check_invariants(&parsed);
        parsed
    }

    const APPLICATION_PDF: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/application-pdf.eml"
    ));
    const RFC2231: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/rfc2231-filename.eml"
    ));
    const ENCODED_WORD: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/encoded-word-filename.eml"
    ));
    const FORWARDED: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/forwarded-rfc822.eml"
    ));
    const INLINE_IMAGE: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/inline-image.eml"
    ));
    const WINMAIL: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/winmail-dat.eml"
    ));
    const DSN: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/dsn-bounce.eml"
    ));
    const AUTO_REPLY: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/auto-reply.eml"
    ));
    const HOSTILE: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/hostile-filenames.eml"
    ));
    const NO_MESSAGE_ID: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/no-message-id.eml"
    ));
    const PART_WITHOUT_NAME: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/part-without-name.eml"
    ));

    const RFC822_IN_RFC822: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/rfc822-in-rfc822.eml"
    ));
    const UNTERMINATED_IN_RFC822: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/unterminated-multipart-in-rfc822.eml"
    ));
    const FOLDED_BOUNDARY: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/folded-boundary.eml"
    ));
    const NO_BLANK_LINE: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/part-without-blank-line.eml"
    ));
    const TEXT_WITHOUT_SUBTYPE: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/text-without-subtype.eml"
    ));

    /// The small PDF and PNG of the fixtures written for issue 15.
    const PDF_69: &str = "cfa3181c1ee36e8bce5e39f84959f4558ea7ba32c0e4539a8ab3c8ce8c716ec6";
    const PNG_33: &str = "4ffd8bb30991e3a6f28d1d03f1aedcd02ccf8e0cc16bb9e969e7bc2bda1ddf03";

    const CJK: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/cjk-charsets.eml"
    ));
    const RAW_8BIT_WORD: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/raw-8bit-in-encoded-word.eml"
    ));
    const WORDS_IN_NAME: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/encoded-words-in-quoted-name.eml"
    ));

    const UUENCODE: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/uuencode.eml"
    ));
    const RAW_CJK: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/raw-8bit-cjk-names.eml"
    ));
    const UNCLOSED_INNER: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/unterminated-inner-multipart.eml"
    ));
    const WINMAIL_EMBEDDED: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/winmail-embedded-item.eml"
    ));
    const NO_COMMA: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/address-without-comma.eml"
    ));
    const BROKEN_MULTIPART: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/broken-multipart-body.eml"
    ));
    const HEADERS_ONLY: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/headers-only.eml"
    ));

    const ALL_FIXTURES: &[(&str, &[u8])] = &[
        ("uuencode", UUENCODE),
        ("raw-8bit-cjk-names", RAW_CJK),
        ("unterminated-inner-multipart", UNCLOSED_INNER),
        ("winmail-embedded-item", WINMAIL_EMBEDDED),
        ("address-without-comma", NO_COMMA),
        ("broken-multipart-body", BROKEN_MULTIPART),
        ("headers-only", HEADERS_ONLY),
        ("cjk-charsets", CJK),
        ("raw-8bit-in-encoded-word", RAW_8BIT_WORD),
        ("encoded-words-in-quoted-name", WORDS_IN_NAME),
        ("rfc822-in-rfc822", RFC822_IN_RFC822),
        ("unterminated-multipart-in-rfc822", UNTERMINATED_IN_RFC822),
        ("folded-boundary", FOLDED_BOUNDARY),
        ("part-without-blank-line", NO_BLANK_LINE),
        ("text-without-subtype", TEXT_WITHOUT_SUBTYPE),
        ("application-pdf", APPLICATION_PDF),
        ("rfc2231-filename", RFC2231),
        ("encoded-word-filename", ENCODED_WORD),
        ("forwarded-rfc822", FORWARDED),
        ("inline-image", INLINE_IMAGE),
        ("winmail-dat", WINMAIL),
        ("dsn-bounce", DSN),
        ("auto-reply", AUTO_REPLY),
        ("hostile-filenames", HOSTILE),
        ("no-message-id", NO_MESSAGE_ID),
        ("part-without-name", PART_WITHOUT_NAME),
    ];

    #[test]
    fn fixtures_use_crlf() {
        for (name, raw) in ALL_FIXTURES {
            for (i, &b) in raw.iter().enumerate() {
                if b == b'\n' {
                    assert!(i > 0 && raw[i - 1] == b'\r', "{name}: bare LF at {i}");
                }
            }
        }
    }

    #[test]
    fn application_pdf() {
        let p = parse(APPLICATION_PDF, false);
        let h = &p.headers;
        assert_eq!(
            h.from,
            Some(mb(Some("Anna Schmidt"), "anna.schmidt@posteo.de"))
        );
        assert_eq!(
            h.to,
            vec![mb(Some("Jobs Example GmbH"), "jobs@example-company.de")]
        );
        assert!(h.cc.is_empty() && h.reply_to.is_empty());
        assert_eq!(
            h.subject.as_deref(),
            Some("Bewerbung als Softwareentwicklerin (Ref. 2026-17)")
        );
        assert_eq!(h.date.as_deref(), Some("2026-03-02T09:14:37+01:00"));
        assert_eq!(
            h.message_id.as_deref(),
            Some("8f3c2a1e-5b7d-4e2a-9c1f-3d2e1a0b9c8d@posteo.de")
        );
        assert!(h.in_reply_to.is_empty() && h.references.is_empty());
        assert!(!h.automatic && !h.delivery_report);
        assert_eq!(
            docs(&p),
            vec![doc(
                "2",
                "Lebenslauf_Anna_Schmidt.pdf",
                "application/pdf",
                689,
                "732261b098863ba1aee96a49f47ce1b58ea47e8d4da4ab1cab0230400e792639"
            )]
        );
        assert!(p.documents[0].bytes.starts_with(b"%PDF-1.4"));
        assert!(p.documents[0].bytes.ends_with(b"%%EOF\n"));
        // The null sender alone makes a mail automatic.
        assert!(parse(APPLICATION_PDF, true).headers.automatic);
    }

    #[test]
    fn rfc2231_filename() {
        let p = parse(RFC2231, false);
        let h = &p.headers;
        assert_eq!(
            h.from,
            Some(mb(Some("Jürgen Müller"), "juergen.mueller@gmx.de"))
        );
        assert_eq!(
            h.cc,
            vec![
                mb(Some("Personalabteilung"), "hr@example-company.de"),
                mb(None, "recruiting@example-company.de"),
            ]
        );
        assert_eq!(
            h.reply_to,
            vec![mb(Some("Jürgen Müller"), "jm.privat@example.org")]
        );
        assert_eq!(
            h.subject.as_deref(),
            Some("Bewerbung – Softwareentwickler (m/w/d)")
        );
        assert!(!h.automatic);
        assert_eq!(
            docs(&p),
            vec![
                doc(
                    "2",
                    "Lebenslauf_Jürgen_Müller_Softwareentwicklung_März_2026.pdf",
                    "application/pdf",
                    658,
                    "f273ce692eab48a3a4b7fc3696b4f9c042b1acc55bbb8c4bc5f7fefa133997d3"
                ),
                doc(
                    "3",
                    "Zeugnisse_Jörg_Weiß.pdf",
                    "application/pdf",
                    643,
                    "0fa74402bc06d7544b52b23e500cabb9bd59959678de9b4e2d0fd430f8dbe93c"
                ),
            ]
        );
    }

    #[test]
    fn encoded_word_filename() {
        let p = parse(ENCODED_WORD, false);
        let h = &p.headers;
        assert_eq!(
            h.from,
            Some(mb(Some("Elif Özdemir"), "elif.oezdemir@gmail.com"))
        );
        assert_eq!(
            h.subject.as_deref(),
            Some("Bewerbung als Kauffrau für Büromanagement")
        );
        assert_eq!(h.date.as_deref(), Some("2026-03-04T07:50:48+01:00"));
        assert_eq!(
            h.message_id.as_deref(),
            Some("CAF3x9k+Jq2vB0dTn8Lw5yQh1rZ7sUoE4mPaXc6Gi9N_u2e=Vw@mail.gmail.com")
        );
        assert_eq!(
            docs(&p),
            vec![
                // Two adjacent encoded words: no space between them.
                doc(
                    "2",
                    "Bewerbungsunterlagen_Özdemir_Gül_2026.pdf",
                    "application/pdf",
                    642,
                    "fb907678f7868db866419a7fcdf0e5228812ad97638589b04c0bbe812ef6795e"
                ),
                // Q encoding: "_" is a space.
                doc(
                    "3",
                    "Arbeitszeugnis Müller GmbH.pdf",
                    "application/pdf",
                    638,
                    "6f2aee55d4f8e2833d01297739b33a7b55d74a06bb138c81007be3bc51db5601"
                ),
            ]
        );
    }

    #[test]
    fn forwarded_rfc822() {
        let p = parse(FORWARDED, false);
        assert_eq!(
            p.headers.subject.as_deref(),
            Some("Fwd: Bewerbung als Backend-Entwickler")
        );
        assert!(!p.headers.automatic);
        assert_eq!(
            docs(&p),
            vec![
                doc(
                    "2",
                    "Bewerbung als Backend-Entwickler.eml",
                    "message/rfc822",
                    1786,
                    "c0a10e012acf7a18852cd8096dab86b1aabcb06ac774819a2b0a290c9768f96a"
                ),
                doc(
                    "2.2",
                    "CV_Max_Mustermann.pdf",
                    "application/pdf",
                    670,
                    "2f96d3ffddfce7f435bd85d82130656cadad5c5ca74251c0e98b55e5790f62a6"
                ),
                // base64-encoded message/rfc822 (not allowed, but sent)
                doc(
                    "3",
                    "Nachreichung_ Zeugnisse.eml",
                    "message/rfc822",
                    1504,
                    "47b5e91ae6fbb0efc8c9584d85a35f074589ee6e47ff8974c40cb9f44004a88a"
                ),
                doc(
                    "3.2",
                    "Arbeitszeugnis.pdf",
                    "application/pdf",
                    646,
                    "c43d8a58cfa377400cbd1265cbec08a7b486d4b96e4ad3aac5d03c533d8d1d5a"
                ),
            ]
        );
        // The attached mail is a whole mail again.
        let inner = parse(&p.documents[0].bytes, false);
        assert_eq!(
            inner.headers.from,
            Some(mb(Some("Max Mustermann"), "max.mustermann@web.de"))
        );
        assert_eq!(inner.documents.len(), 1);
        assert_eq!(inner.documents[0].bytes, p.documents[1].bytes);
    }

    #[test]
    fn inline_image() {
        let p = parse(INLINE_IMAGE, false);
        assert_eq!(
            p.headers.message_id.as_deref(),
            Some("7A2B9C4D-1E3F-4A5B-9C8D-7E6F5A4B3C2D@icloud.com")
        );
        assert_eq!(
            docs(&p),
            vec![
                doc(
                    "1.2",
                    "logo.png",
                    "image/png",
                    93,
                    "f0c0c8ab080ea47658748d25487dc6373e1f8d8dee936cb8825b0936af37828a"
                ),
                // Content-ID only, no name.
                doc(
                    "1.3",
                    "image.png",
                    "image/png",
                    74,
                    "5b09c7e9bc10501645ed1cc1430a281e13dfd8c047ce8e40a327ca5be5fd8ab1"
                ),
                doc(
                    "2",
                    "Portfolio_Sophie_Keller.pdf",
                    "application/pdf",
                    654,
                    "3f13af3e10d438b5680eb9c83a88831ca04a8b5b44e0c33c2ea6cbfbd924d4cc"
                ),
            ]
        );
    }

    #[test]
    fn winmail_dat() {
        let p = parse(WINMAIL, false);
        assert_eq!(
            p.headers.from,
            Some(mb(Some("Jörg Weiß"), "joerg.weiss@weiss-logistik.de"))
        );
        assert_eq!(p.headers.date.as_deref(), Some("2026-03-06T10:40:01Z"));
        assert_eq!(
            docs(&p),
            vec![
                // Long name and MIME type from the MAPI properties; the TNEF
                // title is the 8.3 name LEBENS~1.PDF.
                doc(
                    "2/tnef:1",
                    "Lebenslauf Jörg Weiß.pdf",
                    "application/pdf",
                    657,
                    "0356916de6bf69e5bc2749c61b58cee33cff458b014a6699c8d3efccbf5b0f17"
                ),
                // Title only; type from the extension.
                doc(
                    "2/tnef:2",
                    "Anschreiben.txt",
                    "text/plain",
                    67,
                    "06c5c79195a0d8f56c5046724f01245e8b302c70462d400bcdf4118ecef08ec4"
                ),
            ]
        );
    }

    #[test]
    fn dsn_bounce() {
        for null_sender in [true, false] {
            let p = parse(DSN, null_sender);
            let h = &p.headers;
            assert!(h.delivery_report);
            assert!(h.automatic);
            assert_eq!(
                h.from,
                Some(mb(
                    Some("Mail Delivery System"),
                    "MAILER-DAEMON@mail.example-company.de"
                ))
            );
            assert_eq!(h.auto_submitted.as_deref(), Some("auto-replied"));
            assert_eq!(h.date.as_deref(), Some("2026-03-02T10:02:11+01:00"));
            assert_eq!(
                docs(&p),
                vec![
                    doc(
                        "2",
                        "delivery-status.txt",
                        "message/delivery-status",
                        462,
                        "b2bc78e8dba17bd825118a7345c2554cab2ef621ed0ed644d958f424f3740ea4"
                    ),
                    doc(
                        "3",
                        "Ihre Bewerbung ist eingegangen.eml",
                        "message/rfc822",
                        408,
                        "18414009d38a367018f59b3a5bdbbc564123825d7044f93401aaad1958c822df"
                    ),
                ]
            );
        }
    }

    #[test]
    fn auto_reply() {
        let p = parse(AUTO_REPLY, false);
        let h = &p.headers;
        assert!(h.automatic);
        assert!(!h.delivery_report);
        assert_eq!(h.auto_submitted.as_deref(), Some("auto-replied"));
        assert_eq!(
            h.subject.as_deref(),
            Some("Automatische Antwort: Ihre Nachricht an Herrn Becker")
        );
        assert_eq!(
            h.in_reply_to,
            vec!["interview-20260306-1514@example-company.de".to_string()]
        );
        assert_eq!(
            h.references,
            vec![
                "ack-20260301-1100@example-company.de".to_string(),
                "interview-20260306-1514@example-company.de".to_string()
            ]
        );
        assert_eq!(h.date.as_deref(), Some("2026-03-07T08:00:11Z"));
        assert!(p.documents.is_empty());
    }

    #[test]
    fn hostile_filenames() {
        let p = parse(HOSTILE, false);
        let h = &p.headers;
        // Encoded CR LF NUL in a display name and a subject stay harmless.
        assert_eq!(
            h.from,
            Some(mb(
                Some("Evil Bcc: victim@example.org"),
                "attacker@example.net"
            ))
        );
        assert_eq!(h.subject.as_deref(), Some("Bewerbung Bcc: x@example.org"));
        let payload = "fd52546bba00351567fb775260ac731aba7fc976dca851232f043dae973d0779";
        let long = format!("{}.pdf", "A".repeat(196));
        assert_eq!(
            docs(&p),
            vec![
                doc("2", "passwd", "application/octet-stream", 18, payload),
                doc("3", "root", "application/octet-stream", 18, payload),
                doc("4", "hosts", "application/x-msdownload", 18, payload),
                doc("5", "Rechnung_fdp.exe", "application/pdf", 18, payload),
                doc("6", "CV_final.pdf", "application/pdf", 18, payload),
                doc("7", &long, "application/pdf", 18, payload),
                doc(
                    "8",
                    "report_1___final____.pdf",
                    "application/pdf",
                    18,
                    payload
                ),
                doc("9", "hidden.pdf", "application/pdf", 18, payload),
                doc("10", "attachment.pdf", "application/pdf", 18, payload),
                doc("11", "_CON.txt", "text/plain", 18, payload),
            ]
        );
        assert_eq!(p.documents[5].filename.len(), 200);
    }

    #[test]
    fn no_message_id_latin1() {
        let p = parse(NO_MESSAGE_ID, false);
        let h = &p.headers;
        assert_eq!(h.message_id, None);
        assert_eq!(h.from, Some(mb(Some("Jürgen Weiß"), "jw@example.org")));
        assert_eq!(h.to, vec![mb(None, "jobs@example-company.de")]);
        assert_eq!(
            h.subject.as_deref(),
            Some("Bewerbung für die Stelle als Lagerist")
        );
        assert_eq!(h.date.as_deref(), Some("2026-03-02T11:00:00+01:00"));
        assert!(!h.automatic);
        assert!(p.documents.is_empty());
    }

    #[test]
    fn part_without_name() {
        let p = parse(PART_WITHOUT_NAME, false);
        assert_eq!(
            docs(&p),
            vec![
                doc(
                    "2",
                    "attachment.pdf",
                    "application/pdf",
                    642,
                    "b36e5da7fdaca51f6c0c11344fa135eb3cb9f55613d7d6befc335e60949ccd73"
                ),
                doc(
                    "3",
                    "attachment.bin",
                    "application/octet-stream",
                    1024,
                    "785b0751fc2c53dc14a4ce3d800e69ef9ce1009eb327ccf458afe09c242c26c9"
                ),
            ]
        );
    }

    // ---- headers and flags on small hand-made messages

    fn msg(headers: &str) -> ParsedMessage {
        let raw = format!("{headers}\r\n\r\nbody\r\n")
            .replace("\n", "\r\n")
            .replace("\r\r", "\r");
        parse(raw.as_bytes(), false)
    }

    #[test]
    fn automatic_flags() {
        let base = "From: a@example.org\nTo: b@example.org\nSubject: x";
        assert!(!msg(base).headers.automatic);
        for extra in [
            "Auto-Submitted: auto-generated",
            "Auto-Submitted: auto-replied (vacation)",
            "Precedence: bulk",
            "Precedence: JUNK",
            "Precedence: list",
            "Precedence: auto_reply",
            "List-Id: Jobs <jobs.lists.example.org>",
            "List-Unsubscribe: <mailto:leave@example.org>",
            "List-Post: <mailto:list@example.org>",
            "X-Autoreply: yes",
            "X-Autorespond: yes",
        ] {
            let h = msg(&format!("{base}\n{extra}")).headers;
            assert!(h.automatic && h.no_auto_reply, "{extra}");
            assert_eq!(
                h.list,
                extra.starts_with("List-") || extra.ends_with("list"),
                "{extra}"
            );
            assert_eq!(h.robot, !h.list, "{extra}");
        }
        // Requests not to be auto-answered: ordinary mail all the same.
        for extra in [
            "X-Auto-Response-Suppress: DR, OOF, AutoReply",
            "X-Auto-Response-Suppress: All",
            "X-Loop: jobs@example.org",
        ] {
            let h = msg(&format!("{base}\n{extra}")).headers;
            assert!(!h.automatic && h.no_auto_reply, "{extra}");
        }
        for extra in [
            "Auto-Submitted: no",
            "Auto-Submitted: No (really)",
            "Precedence: first-class",
            "X-Auto-Response-Suppress: DR, RN, NRN",
        ] {
            let h = msg(&format!("{base}\n{extra}")).headers;
            assert!(!h.automatic && !h.no_auto_reply, "{extra}");
        }
        for from in [
            "MAILER-DAEMON@example.org",
            "Postmaster <postmaster@example.org>",
            "jobs-request@lists.example.org",
            "owner-jobs@lists.example.org",
        ] {
            let p = msg(&format!("From: {from}\nSubject: x"));
            assert!(p.headers.automatic, "{from}");
        }
        let p = msg(&format!(
            "{base}\nList-Id: \"Jobs\"\n <jobs.lists.example.org>\nPrecedence:  bulk "
        ));
        assert_eq!(
            p.headers.list_id.as_deref(),
            Some("\"Jobs\" <jobs.lists.example.org>")
        );
        assert_eq!(p.headers.precedence.as_deref(), Some("bulk"));
    }

    #[test]
    fn address_lists_and_ids() {
        let p = msg(concat!(
            "From: \"Doe, Jane\" <jane@example.org>, second@example.org\n",
            "To: Recruiting: a@example.org, \"B\" <b@example.org>;, c@example.org\n",
            "To: d@example.org\n",
            "Cc: undisclosed-recipients:;\n",
            "Message-ID: <id-1@example.org> <id-2@example.org>\n",
            "In-Reply-To: <x@example.org>\n",
            "References: <r1@example.org>\n <r2@example.org>\n\t<r3@\n example.org>\n",
            "Date: Fri, 30 Feb 2026 10:00:00 +0000\n",
            "Subject: =?UTF-8?Q?a=00b=0Dc?=",
        ));
        let h = &p.headers;
        assert_eq!(h.from, Some(mb(Some("Doe, Jane"), "jane@example.org")));
        assert_eq!(
            h.to,
            vec![
                mb(None, "a@example.org"),
                mb(Some("B"), "b@example.org"),
                mb(None, "c@example.org"),
                mb(None, "d@example.org"),
            ]
        );
        assert!(h.cc.is_empty());
        assert_eq!(h.message_id.as_deref(), Some("id-1@example.org"));
        assert_eq!(h.in_reply_to, vec!["x@example.org".to_string()]);
        assert_eq!(
            h.references,
            vec!["r1@example.org", "r2@example.org", "r3@example.org"]
        );
        assert_eq!(h.date, None, "30 February does not parse");
        assert_eq!(h.subject.as_deref(), Some("a b c"));

        let p = msg("Message-ID: bare-id@example.org\nReferences: a@x, b@y c@z");
        assert_eq!(p.headers.message_id.as_deref(), Some("bare-id@example.org"));
        assert_eq!(p.headers.references, vec!["a@x", "b@y", "c@z"]);
    }

    #[test]
    fn references_are_capped_keeping_root_and_parents() {
        let mut refs = String::from("References:");
        for i in 0..3000 {
            refs.push_str(&format!("\n <r{i}@example.org>"));
        }
        let p = msg(&refs);
        let r = &p.headers.references;
        assert_eq!(r.len(), MAX_LIST_ENTRIES);
        assert_eq!(r[0], "r0@example.org");
        assert_eq!(r[1], "r2001@example.org");
        assert_eq!(r[r.len() - 1], "r2999@example.org");
    }

    #[test]
    fn garbage_and_empty_input() {
        for raw in [
            &b""[..],
            b"\r\n",
            b"no header here",
            b"\xff\xfe\x00\x01",
            b"From: a@b\r\n",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
            b"Content-Type: message/rfc822\r\n\r\n",
            b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!",
        ] {
            assert!(parse(raw, true).headers.automatic);
            let _ = parse(raw, false);
        }
    }

    #[test]
    fn broken_base64_is_decoded_leniently() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/pdf; name=cv.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBE\r\nRi0x*LjQK\r\n--b--\r\n";
        let p = parse(raw, false);
        assert_eq!(p.documents.len(), 1);
        assert_eq!(p.documents[0].filename, "cv.pdf");
        assert_eq!(p.documents[0].bytes, b"%PDF-1.4\n");
    }

    #[test]
    fn text_attachment_keeps_its_original_bytes() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Disposition: attachment; filename=notes.txt\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe=\r\n!\r\n--b\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\n--b--\r\n";
        let p = parse(raw, false);
        assert_eq!(docs(&p).len(), 2);
        assert_eq!(p.documents[0].filename, "notes.txt");
        assert_eq!(p.documents[0].content_type, "text/plain");
        assert_eq!(p.documents[0].bytes, b"Gr\xfc\xdfe!");
        assert_eq!(p.documents[1].filename, "attachment.ics");
        assert_eq!(p.documents[1].part, "3");
        assert_eq!(p.documents[1].bytes, b"BEGIN:VCALENDAR");
    }

    #[test]
    fn single_part_message_bodies() {
        // A message whose whole body is a PDF.
        let raw = b"From: a@b.c\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n";
        let p = parse(raw, false);
        assert_eq!(docs(&p)[0].0, "1");
        assert_eq!(p.documents[0].filename, "attachment.pdf");
        assert_eq!(p.documents[0].bytes, b"%PDF-1.4\n");
        // A plain text mail has no documents.
        assert!(
            parse(b"From: a@b.c\r\n\r\nhello\r\n", false)
                .documents
                .is_empty()
        );
    }

    // ---- TNEF edge cases

    fn tnef_attr(level: u8, id: u32, data: &[u8]) -> Vec<u8> {
        let mut out = vec![level];
        out.extend(id.to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(data);
        let sum = data.iter().fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
        out.extend(sum.to_le_bytes());
        out
    }

    fn tnef_stream(extra_message_attr: bool, files: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut out = vec![0x78, 0x9f, 0x3e, 0x22, 0x01, 0x00];
        out.extend(tnef_attr(1, 0x0008_9006, &[0, 0, 1, 0]));
        let mut cp = 1252u32.to_le_bytes().to_vec();
        cp.extend([0, 0, 0, 0]);
        out.extend(tnef_attr(1, 0x0006_9007, &cp));
        if extra_message_attr {
            // attParentID: valid TNEF, unknown to the tnef crate.
            out.extend(tnef_attr(1, 0x0001_800A, b"parent\0"));
        }
        let date = [0xEA, 0x07, 3, 0, 2, 0, 9, 0, 0, 0, 0, 0, 1, 0];
        let rend = [
            1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
        ];
        for (title, data) in files {
            out.extend(tnef_attr(2, 0x0006_9002, &rend));
            let mut t = title.as_bytes().to_vec();
            t.push(0);
            out.extend(tnef_attr(2, 0x0001_8010, &t));
            out.extend(tnef_attr(2, 0x0003_8012, &date));
            out.extend(tnef_attr(2, 0x0003_8013, &date));
            if let Some(data) = data {
                out.extend(tnef_attr(2, 0x0006_800F, data));
            }
            out.extend(tnef_attr(2, 0x0006_9005, &0u32.to_le_bytes()));
        }
        out
    }

    fn base64(data: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for chunk in data.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    s.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
                } else {
                    s.push('=');
                }
            }
        }
        s
    }

    fn mail_with_winmail(tnef: &[u8]) -> Vec<u8> {
        format!(
            "From: a@b.c\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/ms-tnef; name=winmail.dat\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
            base64(tnef)
        )
        .into_bytes()
    }

    #[test]
    fn tnef_lenient_fallback_and_nothing_lost() {
        // The crate reads this one.
        let tnef = tnef_stream(
            false,
            &[("a.pdf", Some(b"%PDF-A")), ("b.docx", Some(b"PK"))],
        );
        assert_eq!(tnef::read_attachments(&tnef).map(|v| v.len()).ok(), Some(2));
        let p = parse(&mail_with_winmail(&tnef), false);
        let names: Vec<_> = p
            .documents
            .iter()
            .map(|d| {
                (
                    d.part.as_str(),
                    d.filename.as_str(),
                    d.content_type.as_str(),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("2/tnef:1", "a.pdf", "application/pdf"),
                (
                    "2/tnef:2",
                    "b.docx",
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
                ),
            ]
        );

        // The crate refuses an attribute it does not know; the lenient scan
        // still finds the files.
        let tnef = tnef_stream(true, &[("a.pdf", Some(b"%PDF-A"))]);
        assert!(tnef::read_attachments(&tnef).is_err());
        let p = parse(&mail_with_winmail(&tnef), false);
        assert_eq!(p.documents.len(), 1);
        assert_eq!(p.documents[0].part, "2/tnef:1");
        assert_eq!(p.documents[0].bytes, b"%PDF-A");

        // One file without data: the other is extracted and winmail.dat kept.
        let tnef = tnef_stream(false, &[("a.pdf", Some(b"%PDF-A")), ("lost.bin", None)]);
        let p = parse(&mail_with_winmail(&tnef), false);
        let parts: Vec<_> = p
            .documents
            .iter()
            .map(|d| (d.part.as_str(), d.filename.as_str()))
            .collect();
        assert_eq!(parts, vec![("2", "winmail.dat"), ("2/tnef:1", "a.pdf")]);
        assert_eq!(p.documents[0].bytes, tnef);

        // Not TNEF at all: kept as it is.
        let p = parse(&mail_with_winmail(b"garbage, not tnef"), false);
        assert_eq!(docs(&p).len(), 1);
        assert_eq!(p.documents[0].filename, "winmail.dat");
        assert_eq!(p.documents[0].content_type, "application/ms-tnef");
        assert_eq!(p.documents[0].bytes, b"garbage, not tnef");

        // Truncated in the middle of the data.
        let tnef = tnef_stream(false, &[("a.pdf", Some(b"%PDF-A-long-enough"))]);
        let cut = &tnef[..tnef.len() - 30];
        let p = parse(&mail_with_winmail(cut), false);
        assert_eq!(p.documents[0].part, "2");
        assert_eq!(p.documents[0].bytes, cut);
    }

    #[test]
    fn mapi_props_are_bounded() {
        // Counts far beyond the data must not loop or allocate.
        let mut props = u32::MAX.to_le_bytes().to_vec();
        props.extend([0x1F, 0x10, 0x07, 0x37]); // multi-valued unicode
        props.extend(u32::MAX.to_le_bytes());
        props.extend(u32::MAX.to_le_bytes());
        let out = mapi_attach_props(&props);
        assert!(out.long_name.is_none());
        let _ = mapi_attach_props(&[]);
        let _ = mapi_attach_props(&[1, 0, 0, 0, 0x03, 0, 0x05, 0x37]);
    }

    // ---- hostile structure

    #[test]
    fn deeply_nested_multiparts_return() {
        let depth = 5_000;
        let mut raw = String::from("From: a@b.c\r\nSubject: deep\r\n");
        for i in 0..depth {
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
            ));
        }
        raw.push_str("Content-Type: application/pdf\r\n\r\n%PDF\r\n");
        for i in (0..depth).rev() {
            raw.push_str(&format!("--b{i}--\r\n"));
        }
        let p = parse(raw.as_bytes(), false);
        assert_eq!(p.headers.subject.as_deref(), Some("deep"));
        // Too deep to follow; nothing else breaks.
        assert!(p.documents.is_empty());

        // Unclosed, and the same boundary at every level.
        let mut raw = String::from("Subject: deep\r\n");
        for _ in 0..depth {
            raw.push_str("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n");
        }
        let _ = parse(raw.as_bytes(), false);
    }

    #[test]
    fn deeply_nested_messages_return() {
        let depth = 5_000;
        let mut raw = String::new();
        for i in 0..depth {
            raw.push_str(&format!(
                "Subject: level {i}\r\nContent-Type: multipart/mixed; boundary=\"m{i}x\"\r\n\r\n--m{i}x\r\nContent-Type: message/rfc822\r\n\r\n"
            ));
        }
        raw.push_str("Subject: bottom\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n");
        let p = parse(raw.as_bytes(), false);
        assert_eq!(p.headers.subject.as_deref(), Some("level 0"));
        // Attached mails are opened at most MAX_MESSAGE_DEPTH deep; here each
        // level is a near-complete copy of the mail, so the document budget
        // stops first, after three copies.
        let total: usize = p.documents.iter().map(|d| d.bytes.len()).sum();
        assert!(total <= document_budget(raw.len()));
        // The first attached mail is a document; the ones inside it are in
        // its bytes, not stored again; the one too deep to open is kept.
        assert!(total <= 2 * raw.len(), "{total} of {}", raw.len());
        let parts: Vec<_> = p
            .documents
            .iter()
            .map(|d| (d.part.as_str(), d.filename.as_str()))
            .collect();
        assert_eq!(
            parts,
            [
                ("1", "level 1.eml"),
                ("1.1.1.1.1.1.1.1.1.1.1", "message.eml")
            ]
        );
        assert!(p.documents_truncated);

        // base64-encoded attached mails, deeper than mail-parser unpacks them.
        let mut inner =
            b"Subject: bottom\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n".to_vec();
        for i in 0..6 {
            inner = format!(
                "Subject: level {i}\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--m--\r\n",
                base64(&inner)
            )
            .into_bytes();
        }
        let p = parse(&inner, false);
        let parts: Vec<_> = p.documents.iter().map(|d| d.part.as_str()).collect();
        // The first attached mail, and the PDF six mails down.
        assert_eq!(parts, vec!["1", "1.1.1.1.1.1.1"]);
        assert_eq!(p.documents[1].filename, "attachment.pdf");
        // A single-part body runs to the end of its message.
        assert_eq!(p.documents[1].bytes, b"%PDF\r\n");
    }

    #[test]
    fn very_deep_attached_mails_do_not_overflow_the_stack() {
        // Parsed in place to any depth by mail-parser; dropping that tree
        // recursively would overflow this thread's stack.
        let depth = 50_000;
        let level = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n";
        let raw = format!("Subject: top\r\n{}", level.repeat(depth));
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || parse_message(raw.as_bytes(), false))
            .expect("spawn");
        let p = handle.join().expect("no panic, no overflow");
        assert_eq!(p.headers.subject.as_deref(), Some("top"));
        // The same boundary at every level: the outermost multipart claims
        // every `--b` line (as a mail client reads it), so the levels are
        // read as siblings, each a small attached mail.
        assert!(!p.documents.is_empty() && p.documents.len() <= MAX_DOCUMENTS);

        // Distinct boundaries: nested, opened at most MAX_MESSAGE_DEPTH deep.
        let mut raw = String::from("Subject: top\r\n");
        for i in 0..depth {
            raw.push_str(&format!("Content-Type: multipart/mixed; boundary=b{i}x\r\n\r\n--b{i}x\r\nContent-Type: message/rfc822\r\n\r\n"));
        }
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || parse_message(raw.as_bytes(), false))
            .expect("spawn");
        let p = handle.join().expect("no panic, no overflow");
        assert!(!p.documents.is_empty() && p.documents.len() <= MAX_MESSAGE_DEPTH + 1);
    }

    #[test]
    fn nested_copies_stay_within_the_document_budget() {
        // A 200 KB file inside 8 levels of attached mails: every level is a
        // full copy of the one below, so without a budget the documents would
        // hold about 9 copies of the file.
        let file = "A".repeat(200 * 1024);
        let mut raw = format!("Subject: bottom\r\nContent-Type: application/pdf\r\n\r\n{file}\r\n");
        for i in 0..8 {
            raw = format!(
                "Subject: level {i}\r\nContent-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\nContent-Type: message/rfc822\r\n\r\n{raw}\r\n--b{i}--\r\n"
            );
        }
        let p = parse(raw.as_bytes(), false);
        let total: usize = p.documents.iter().map(|d| d.bytes.len()).sum();
        assert!(total <= document_budget(raw.len()), "{total} > budget");
        // The outermost attached mail, which holds everything, is kept.
        assert_eq!(p.documents[0].part, "1");
        assert!(p.documents[0].bytes.len() > file.len());
    }

    #[test]
    fn matcher_inputs_are_read() {
        let p = parse(
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/forwarded-rfc822.eml"
            )),
            false,
        );
        let authors: Vec<&str> = p
            .attached_authors
            .iter()
            .map(|m| m.address.as_str())
            .collect();
        assert_eq!(authors.first(), Some(&"max.mustermann@web.de"));
        assert!(!p.text.is_empty());

        let raw = b"From: 'Jonas Becker' via Bewerbungen <bewerbungen@acme-group.example>\r\n\
X-Original-From: Jonas Becker <jonas.becker@gmx.example>\r\n\
X-Microsoft-Original-Message-ID: <AM0PR01MB1234@outlook.example>\r\n\
Content-Language: de-DE\r\n\
Subject: Bewerbung\r\n\r\n<p>Hallo &amp; guten Tag</p>\r\n";
        let p = parse(raw, false);
        let h = &p.headers;
        assert_eq!(
            h.x_original_from.as_ref().map(|m| m.address.as_str()),
            Some("jonas.becker@gmx.example")
        );
        assert_eq!(
            h.x_original_from.as_ref().and_then(|m| m.name.as_deref()),
            Some("Jonas Becker")
        );
        assert_eq!(
            h.original_message_id.as_deref(),
            Some("AM0PR01MB1234@outlook.example")
        );
        assert_eq!(h.content_language.as_deref(), Some("de"));
        assert!(p.text.contains("Hallo"));
    }

    #[test]
    fn many_headers_return() {
        let mut raw = String::from("From: a@b.c\r\nSubject: many\r\n");
        for i in 0..100_000 {
            raw.push_str(&format!("X-Header-{i}: value {i}\r\n"));
        }
        for i in 0..5_000 {
            raw.push_str(&format!("To: r{i}@example.org\r\n"));
        }
        raw.push_str("\r\nbody\r\n");
        let p = parse(raw.as_bytes(), false);
        assert_eq!(p.headers.subject.as_deref(), Some("many"));
        assert_eq!(p.headers.to.len(), MAX_LIST_ENTRIES);
    }

    #[test]
    fn attachment_after_rfc822_in_rfc822_is_kept() {
        let p = parse(RFC822_IN_RFC822, false);
        assert_eq!(
            docs(&p),
            vec![
                doc(
                    "2",
                    "Fwd_ Bewerbung.eml",
                    "message/rfc822",
                    205,
                    "2d9d00cd923c42214f53dc30838e33e85a275306067c2071d0217f310514c840"
                ),
                doc("3", "Lebenslauf.pdf", "application/pdf", 69, PDF_69),
            ]
        );
        assert_eq!(
            p.attached_authors,
            vec![mb(Some("Max Muster"), "max@example.net")]
        );
    }

    #[test]
    fn unterminated_multipart_in_rfc822_keeps_the_parents_parts() {
        let p = parse(UNTERMINATED_IN_RFC822, false);
        assert_eq!(
            docs(&p),
            vec![
                doc(
                    "2",
                    "Bewerbung.eml",
                    "message/rfc822",
                    343,
                    "a5580f558022b57db916da8cc35515d41d361a69dcfd8ea175d2937439871c37"
                ),
                doc("2.2", "inner.png", "image/png", 33, PNG_33),
                doc("3", "foto.png", "image/png", 33, PNG_33),
                doc("4", "Lebenslauf.pdf", "application/pdf", 69, PDF_69),
            ]
        );
    }

    #[test]
    fn folded_boundary_parameter() {
        let p = parse(FOLDED_BOUNDARY, false);
        assert_eq!(
            docs(&p),
            vec![
                doc("1.2", "Lebenslauf.pdf", "application/pdf", 69, PDF_69),
                doc(
                    "2",
                    "smime.p7s",
                    "application/pkcs7-signature",
                    52,
                    "90c3d8d4f2c554779448932313090e7f6b954312214c011a3c05c1d864c587a9"
                ),
            ]
        );
        assert_eq!(p.text.trim_end(), "Anbei mein Lebenslauf.");
    }

    #[test]
    fn part_without_blank_line_after_its_headers() {
        let p = parse(NO_BLANK_LINE, false);
        assert_eq!(
            docs(&p),
            vec![doc("2", "Lebenslauf.pdf", "application/pdf", 69, PDF_69)]
        );
        // A part of headers only, right before the next boundary: empty, not
        // read as headers of the part after it.
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/octet-stream; name=a.bin\r\n--b\r\nContent-Type: application/pdf; name=cv.pdf\r\n\r\n%PDF\r\n--b--\r\n";
        let p = parse(raw, false);
        let names: Vec<_> = p
            .documents
            .iter()
            .map(|d| (d.filename.as_str(), d.bytes.len()))
            .collect();
        assert_eq!(names, vec![("a.bin", 0), ("cv.pdf", 4)]);
    }

    #[test]
    fn text_without_subtype_is_text_plain() {
        let p = parse(TEXT_WITHOUT_SUBTYPE, false);
        assert_eq!(
            docs(&p),
            vec![doc("2", "Lebenslauf.pdf", "application/pdf", 69, PDF_69)]
        );
        assert_eq!(
            p.text.trim_end(),
            "Sehr geehrte Damen und Herren, anbei mein Lebenslauf."
        );
        // As an attachment it is a text document.
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nbody\r\n--b\r\nContent-Type: text\r\nContent-Disposition: attachment; filename=notes\r\n\r\nnotes\r\n--b--\r\n";
        let p = parse(raw, false);
        assert_eq!(p.documents.len(), 1);
        assert_eq!(p.documents[0].content_type, "text/plain");
        assert_eq!(p.documents[0].bytes, b"notes");
    }

    #[test]
    fn cjk_charsets() {
        let p = parse(CJK, false);
        assert_eq!(
            p.headers.from,
            Some(mb(Some("山田 太郎"), "taro.yamada@example.jp"))
        );
        assert_eq!(p.headers.subject.as_deref(), Some("応募書類の送付"));
        assert_eq!(p.text.trim_end(), "よろしくお願いします。");
        let pdf = |part: &str, name: &str| doc(part, name, "application/pdf", 69, PDF_69);
        assert_eq!(
            docs(&p),
            vec![
                pdf("2", "履歴書.pdf"),
                pdf("3", "職務経歴書.pdf"),
                pdf("4", "成績証明書.pdf"),
                pdf("5", "이력서.pdf"),
                pdf("6", "자기소개서.pdf"),
                pdf("7", "简历.pdf"),
                pdf("8", "推荐信.pdf"),
                pdf("9", "履歷表.pdf"),
            ]
        );
        // A raw ISO-2022-JP subject, as old Japanese clients send it.
        let p = msg("Subject: \x1b$BMzNr=q\x1b(B\r\n");
        assert_eq!(p.headers.subject.as_deref(), Some("履歴書"));
    }

    #[test]
    fn raw_8bit_inside_an_encoded_word_is_decoded_once() {
        let p = parse(RAW_8BIT_WORD, false);
        assert_eq!(
            p.headers.from,
            Some(mb(Some("Jörg Frösche"), "joerg@example.de"))
        );
        assert_eq!(p.headers.subject.as_deref(), Some("Bewerbung Frösche"));
        assert_eq!(
            docs(&p),
            vec![
                doc("2", "Lebenslauf Jörg.pdf", "application/pdf", 69, PDF_69),
                doc("3", "Zeugnis Jörg.pdf", "application/pdf", 69, PDF_69),
            ]
        );
    }

    #[test]
    fn encoded_words_beside_text_in_a_quoted_name() {
        let p = parse(WORDS_IN_NAME, false);
        assert_eq!(
            docs(&p),
            vec![
                doc(
                    "2",
                    "Lebenslauf_Jörg_Weiß.pdf",
                    "application/pdf",
                    69,
                    PDF_69
                ),
                doc(
                    "3",
                    "because_ofpath3d-compress.gif",
                    "image/gif",
                    6,
                    "610f5ae4d76e332636a17bd357fd6ce99029316a99d320280d4d77a746bf29e8"
                ),
                doc("4", "Zeugnis 2024.pdf", "application/pdf", 69, PDF_69),
            ]
        );
    }

    #[test]
    fn uuencoded_parts_and_blocks_are_decoded() {
        let p = parse(UUENCODE, false);
        assert_eq!(
            docs(&p),
            vec![
                doc("1/uu:1", "Lebenslauf.pdf", "application/pdf", 69, PDF_69),
                doc("2", "greenball.png", "image/png", 33, PNG_33),
            ]
        );
        assert!(p.text.contains("anbei mein Lebenslauf."));
    }

    #[test]
    fn broken_multiparts_are_body_not_documents() {
        let p = parse(BROKEN_MULTIPART, false);
        assert_eq!(
            docs(&p),
            vec![doc("3", "Lebenslauf.pdf", "application/pdf", 69, PDF_69)]
        );
    }

    #[test]
    fn headers_only_mail_has_no_documents() {
        let p = parse(HEADERS_ONLY, false);
        assert_eq!(p.headers.subject.as_deref(), Some("Bewerbung"));
        assert!(p.documents.is_empty(), "{:?}", docs(&p));
        assert!(!p.documents_truncated);
    }

    #[test]
    fn addresses_without_comma_and_comments_in_names() {
        let p = parse(NO_COMMA, false);
        let h = &p.headers;
        assert_eq!(h.from, Some(mb(None, "jan@example.com")));
        assert_eq!(
            h.to,
            vec![
                mb(None, "jobs@example-company.de"),
                mb(None, "hr@example-company.de"),
                mb(Some("Berg, Jan (HR)"), "jan.hr@example.com"),
            ]
        );
        assert_eq!(
            h.cc,
            vec![
                mb(Some("Joerg Weiss"), "joerg@example.de"),
                mb(Some("Anna Berg"), "anna@example.org"),
            ]
        );
    }

    #[test]
    fn angle_addresses_without_a_comma_are_read_apart() {
        let p = parse(
            b"From: a@b.example\r\nTo: <a@x.example> <b@y.example>\r\n\
Cc: Anna <a@x.example> \"Berg, Bob\" <b@y.example> (privat), Carl <c@z.example>\r\n\
Reply-To: <r@x.example>\r\nSubject: s\r\n\r\nx\r\n",
            false,
        );
        let h = &p.headers;
        assert_eq!(h.to, vec![mb(None, "a@x.example"), mb(None, "b@y.example")]);
        assert_eq!(
            h.cc,
            vec![
                mb(Some("Anna"), "a@x.example"),
                mb(Some("Berg, Bob"), "b@y.example"),
                mb(Some("Carl"), "c@z.example"),
            ]
        );
        assert_eq!(h.reply_to, vec![mb(None, "r@x.example")]);
        assert_eq!(with_missing_commas(b" <a@x.example>, <b@y.example>"), None);
        assert_eq!(with_missing_commas(b" \"<a@x> <b@y>\" <c@z.example>"), None);
    }

    #[test]
    fn winmail_with_an_embedded_item_is_kept() {
        let p = parse(WINMAIL_EMBEDDED, false);
        assert_eq!(
            docs(&p),
            vec![
                doc(
                    "2",
                    "winmail.dat",
                    "application/ms-tnef",
                    802,
                    "3ce3e866358289bf74c627c78dd7758edb1ad2299c9e27af34a218e751b6b6dc"
                ),
                doc("2/tnef:1", "Lebenslauf.pdf", "application/pdf", 69, PDF_69),
                doc(
                    "2/tnef:2",
                    "Anschreiben.txt",
                    "text/plain",
                    57,
                    "ba4c94bec220d5dfc55ec8ae7660ea15d9da41942ffa3b89b72ace22e17862d7"
                ),
            ]
        );
    }

    #[test]
    fn unterminated_inner_multipart_keeps_the_parents_parts() {
        let p = parse(UNCLOSED_INNER, false);
        assert_eq!(
            docs(&p),
            vec![doc("2", "Lebenslauf.pdf", "application/pdf", 69, PDF_69)]
        );
        assert_eq!(p.text.trim_end(), "Anbei mein Lebenslauf.");
        // Three levels, the two inner ones unclosed; attached mails in them.
        let raw = b"Content-Type: multipart/mixed; boundary=\"1\"\r\n\r\n--1\r\nContent-Type: multipart/mixed; boundary=\"2\"\r\n\r\n--2\r\nContent-Type: multipart/mixed; boundary=\"3\"\r\n\r\n--3\r\nContent-Type: message/rfc822\r\n\r\nSubject: a\r\n\r\n1\r\n--1\r\nContent-Type: message/rfc822\r\n\r\nSubject: b\r\n\r\n22\r\n--1--\r\n";
        let p = parse(raw, false);
        let got: Vec<_> = p
            .documents
            .iter()
            .map(|d| (d.part.as_str(), d.filename.as_str(), d.bytes.len()))
            .collect();
        assert_eq!(got, vec![("1.1.1", "a.eml", 15), ("2", "b.eml", 16)]);
    }

    #[test]
    fn many_delimiter_like_lines_in_a_deep_leaf_return() {
        // 100 nested multiparts, then a leaf of 300,000 lines that look
        // like delimiters but are none of the enclosing boundaries.
        let mut raw = String::from("Subject: lines\r\n");
        for i in 0..100 {
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{i}x\"\r\n\r\n--b{i}x\r\n"
            ));
        }
        raw.push_str("Content-Type: application/octet-stream; name=a.bin\r\n\r\n");
        raw.push_str(&"--zz\r\n".repeat(300_000));
        let started = std::time::Instant::now();
        let p = parse(raw.as_bytes(), false);
        assert_eq!(p.headers.subject.as_deref(), Some("lines"));
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn raw_8bit_names_in_the_texts_cjk_charset() {
        let p = parse(RAW_CJK, false);
        assert_eq!(p.headers.subject.as_deref(), Some("입사 지원서"));
        assert_eq!(
            docs(&p),
            vec![doc("2", "이력서.pdf", "application/pdf", 69, PDF_69)]
        );
        // Raw Latin-1 in a mail without a CJK text stays windows-1252.
        assert_eq!(
            msg("Subject: Fr\u{f6}sche").headers.subject.as_deref(),
            Some("Frösche")
        );
        let raw =
            b"Subject: Fr\xf6sche\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nhi\r\n";
        assert_eq!(
            parse(raw, false).headers.subject.as_deref(),
            Some("Frösche")
        );
    }

    #[test]
    fn many_parts_are_capped() {
        let mut raw = String::from("Content-Type: multipart/mixed; boundary=b\r\n\r\n");
        for _ in 0..20_000 {
            raw.push_str("--b\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n");
        }
        raw.push_str("--b--\r\n");
        let p = parse(raw.as_bytes(), false);
        assert_eq!(p.documents.len(), MAX_DOCUMENTS);
        assert_eq!(p.documents[999].part, "1000");
        assert!(p.documents_truncated);
        for (name, raw) in ALL_FIXTURES {
            assert!(!parse(raw, false).documents_truncated, "{name}");
        }
    }

    /// Deterministic mutations of every fixture: no panic, invariants hold.
    #[test]
    fn mutated_fixtures_never_panic() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        const TOKENS: &[&[u8]] = &[
            b"\r\n",
            b"\r\n\r\n",
            b"--",
            b"\"",
            b";",
            b"=?UTF-8?B?",
            b"=?",
            b"?=",
            b"*0*=",
            b"*1=",
            b"%",
            b"\\",
            b"(",
            b")",
            b"<",
            b">",
            b"\0",
            b"\xc3",
            b"\xff",
            b"Content-Type: message/rfc822\r\n\r\n",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
            b"Content-Transfer-Encoding: base64\r\n",
            b"Content-Type: application/ms-tnef\r\n",
            b"\x78\x9f\x3e\x22",
        ];
        let mut runs = 0;
        for (_, fixture) in ALL_FIXTURES {
            for _ in 0..120 {
                let mut data = fixture.to_vec();
                for _ in 0..1 + next() % 8 {
                    let len = data.len().max(1) as u64;
                    let at = (next() % len) as usize;
                    match next() % 6 {
                        0 => {
                            if let Some(b) = data.get_mut(at) {
                                *b ^= 1 << (next() % 8);
                            }
                        }
                        1 => {
                            let token = TOKENS[(next() % TOKENS.len() as u64) as usize];
                            let at = at.min(data.len());
                            data.splice(at..at, token.iter().copied());
                        }
                        2 => {
                            let end = (at + (next() % 64) as usize).min(data.len());
                            if at < end {
                                data.drain(at..end);
                            }
                        }
                        3 => {
                            let end = (at + (next() % 256) as usize).min(data.len());
                            if at < end {
                                let copy = data[at..end].to_vec();
                                data.splice(at..at, copy);
                            }
                        }
                        4 => data.truncate(at),
                        _ => {
                            if let Some(b) = data.get_mut(at) {
                                *b = (next() & 0xff) as u8;
                            }
                        }
                    }
                }
                let _ = parse(&data, next() % 2 == 0);
                runs += 1;
            }
        }
        assert_eq!(runs, ALL_FIXTURES.len() * 120);
    }
}
