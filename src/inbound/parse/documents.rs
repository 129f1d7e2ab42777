//! Documents: the walk over a message's MIME tree that lists each
//! attachment a mail client would show, with its decoded bytes, in a
//! bounded budget; nested mails and their authors.
//!
//! Part of [`super`]: pure, bounded work, never panics on input.

#[allow(unused_imports)]
use super::*;

/// Most bytes of body text kept for the matcher.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;

pub(super) fn truncate_text(text: &str) -> String {
    let mut end = text.len().min(MAX_TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// The `From` of an attached mail.
pub(super) fn author_of(nested: &Message<'_>) -> Option<Mailbox> {
    let root = nested.parts.first()?;
    read_headers(&root.headers, &nested.raw_message).from
}

pub(super) struct Walker {
    pub(super) docs: Vec<DocumentPart>,
    pub(super) attached_authors: Vec<Mailbox>,
    /// Bytes still allowed for documents (see [`document_budget`]).
    pub(super) budget: usize,
    /// Bytes mail-parser may still read (see [`parse_work`]).
    pub(super) work: usize,
    /// A document was left out (see `ParsedMessage::documents_truncated`).
    pub(super) truncated: bool,
}

/// Most bytes all documents of one mail may hold together: three times the
/// mail, plus a little. Decoding never makes a part bigger than its encoding,
/// so the top-level attachments always fit; what the budget stops is an
/// attached mail nested in an attached mail nested in …, each level a full
/// copy of the one below. Documents past the budget stay readable inside the
/// stored raw mail and the outer `.eml` document.
pub(super) fn document_budget(raw_len: usize) -> usize {
    raw_len.saturating_mul(3).saturating_add(64 * 1024)
}

pub(super) fn child_path(prefix: &str, n: usize) -> String {
    if prefix.is_empty() {
        n.to_string()
    } else {
        format!("{prefix}.{n}")
    }
}

impl Walker {
    pub(super) fn full(&self) -> bool {
        self.docs.len() >= MAX_DOCUMENTS
    }

    pub(super) fn push(
        &mut self,
        part: String,
        filename: String,
        content_type: String,
        bytes: Vec<u8>,
    ) {
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
    pub(super) fn walk_message(&mut self, message: &Message<'_>, prefix: &str, depth: usize) {
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

    pub(super) fn leaf(
        &mut self,
        message: &Message<'_>,
        part: &MessagePart<'_>,
        path: &str,
        depth: usize,
    ) {
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
            self.tnef_documents(path, bytes, filename, mime, shows_body(message));
            return;
        }
        let name = sanitize_filename(filename.as_deref().unwrap_or(""), &mime);
        self.push(path.to_string(), name, mime, bytes);
    }

    /// Files uuencoded into a text body (`begin 644 cv.pdf` ... `end`), as
    /// old clients and some scripts send them; mail clients show them as
    /// attachments. They are `P/uu:1`, `P/uu:2`, ... below the text's path.
    pub(super) fn uu_documents(&mut self, path: &str, text: &[u8]) {
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
    pub(super) fn message_document(
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
    pub(super) fn push_attached_mail(
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

    /// An Outlook winmail.dat: what it carries (see `winmail`); the
    /// winmail.dat itself when it cannot be unpacked or not everything in
    /// it could be. `has_body`: the mail shows a text body of its own.
    pub(super) fn tnef_documents(
        &mut self,
        path: &str,
        bytes: Vec<u8>,
        filename: Option<String>,
        mime: String,
        has_body: bool,
    ) {
        let (files, complete) = unpack_tnef(&bytes, has_body);
        if files.is_empty() || !complete {
            let name = sanitize_filename(filename.as_deref().unwrap_or(""), &mime);
            self.push(path.to_string(), name, mime, bytes);
        }
        for file in files {
            self.push(
                format!("{path}/{}", file.part),
                file.name,
                file.mime,
                file.data,
            );
        }
    }
}

/// The message shows a text body (plain, or HTML) that is not empty.
pub(super) fn shows_body(message: &Message<'_>) -> bool {
    guarded(|| {
        message.body_text(0).is_some_and(|t| !t.trim().is_empty())
            || message.body_html(0).is_some_and(|t| !t.trim().is_empty())
    })
    .unwrap_or(true)
}

pub(super) fn push_children(
    stack: &mut Vec<(u32, String, usize)>,
    kids: &[u32],
    prefix: &str,
    depth: usize,
) {
    // Reversed so that the first child is popped first.
    for (i, &kid) in kids.iter().enumerate().rev() {
        stack.push((kid, child_path(prefix, i + 1), depth));
    }
}

pub(super) fn is_message_mime(mime: &str) -> bool {
    mime == "message/rfc822" || mime == "message/global"
}

pub(super) fn is_tnef(mime: &str, filename: Option<&str>) -> bool {
    mime == "application/ms-tnef"
        || mime == "application/vnd.ms-tnef"
        || filename.is_some_and(|f| sanitize_filename(f, mime).eq_ignore_ascii_case("winmail.dat"))
}

pub(super) fn message_filename(filename: Option<&str>, nested: Option<&Message<'_>>) -> String {
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
pub(super) fn part_mime(part: &MessagePart<'_>) -> String {
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

pub(super) fn is_mime_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 127
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
}

pub(super) fn last_header<'a, 'x>(part: &'a MessagePart<'x>, name: &str) -> Option<&'a Header<'x>> {
    part.headers.iter().rev().find(|h| is_named(h, name))
}

/// The part's file name, decoded but not yet sanitised: Content-Disposition
/// `filename`, else Content-Type `name`; RFC 2231 and RFC 2047 decoded here,
/// with mail-parser's reading as a fallback.
pub(super) fn part_filename(part: &MessagePart<'_>, buf: &[u8]) -> Option<String> {
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
pub(super) fn part_bytes(part: &MessagePart<'_>, buf: &[u8]) -> Vec<u8> {
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
        PartType::Binary(b) | PartType::InlineBinary(b) => {
            unpadded_base64(part, buf, b).unwrap_or_else(|| b.to_vec())
        }
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

/// A base64 body whose last group has no `=` padding, decoded whole.
/// mail-parser (0.11) drops such a group when the boundary follows, so a
/// file lost its last one or two bytes; some scripts and gateways strip
/// the padding. Only when the body has no `=` at all (padding in the
/// middle, two encodings run together, is left to mail-parser), its
/// letters do not fill whole groups, and mail-parser's bytes are the start
/// of the whole: then nothing but the missing tail changes.
fn unpadded_base64(part: &MessagePart<'_>, buf: &[u8], decoded: &[u8]) -> Option<Vec<u8>> {
    let cte = part.content_transfer_encoding()?;
    if !cte.trim().eq_ignore_ascii_case("base64") {
        return None;
    }
    let raw = buf.get(part.offset_body as usize..part.offset_end as usize)?;
    let mut letters = 0usize;
    for &b in raw {
        match b {
            b'=' => return None,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => letters += 1,
            _ => {}
        }
    }
    if letters.is_multiple_of(4) {
        return None;
    }
    let whole = decode_base64_lenient(raw);
    (whole.len() > decoded.len() && whole.starts_with(decoded)).then_some(whole)
}

/// `Content-Transfer-Encoding: x-uuencode` (or `uuencode`, `x-uue`).
pub(super) fn is_uuencode(part: &MessagePart<'_>) -> bool {
    part.content_transfer_encoding().is_some_and(|cte| {
        let cte = cte.trim();
        ["x-uuencode", "uuencode", "x-uue", "uue"]
            .iter()
            .any(|u| cte.eq_ignore_ascii_case(u))
    })
}

/// Most uuencoded files read from one text.
pub(super) const MAX_UU_BLOCKS: usize = 100;

/// The uuencoded files in a text: `(name, bytes)` for each block from a
/// `begin <mode> <name>` line up to its `end` line. In a text body
/// (`strict`) a block counts only with its `end` line and data lines that
/// are all valid; in an `x-uuencode` part it runs to the end, leniently.
pub(super) fn uu_blocks(text: &[u8], strict: bool) -> Vec<(String, Vec<u8>)> {
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
pub(super) fn uu_begin(line: &[u8]) -> Option<String> {
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
pub(super) fn uu_line(line: &[u8], out: &mut Vec<u8>) -> bool {
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
pub(super) fn decode_base64_lenient(input: &[u8]) -> Vec<u8> {
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

pub(super) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Quoted-printable, keeping malformed escapes as they are.
pub(super) fn decode_qp_lenient(input: &[u8]) -> Vec<u8> {
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
