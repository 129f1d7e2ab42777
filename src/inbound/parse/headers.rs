//! Header fields: From, To, Cc, Reply-To, Subject, Message-ID and the
//! thread ids, read from mail-parser's values with the charset fallbacks
//! old clients need (windows-1252, raw ISO-2022-JP, the CJK charset of the
//! text).
//!
//! Part of [`super`]: pure, bounded work, never panics on input.

#[allow(unused_imports)]
use super::*;

#[derive(Clone, Copy)]
pub(super) enum Form {
    Address,
    Text,
}

pub(super) fn is_named(header: &Header<'_>, name: &str) -> bool {
    header.name.as_str().eq_ignore_ascii_case(name)
}

/// The raw bytes of a header's value (after the colon, folding included).
pub(super) fn header_raw<'a>(header: &Header<'_>, buf: &'a [u8]) -> &'a [u8] {
    buf.get(header.offset_start as usize..header.offset_end as usize)
        .unwrap_or_default()
}

/// A header's raw value as one trimmed line: unfolded, control characters
/// gone, runs of whitespace collapsed.
pub(super) fn raw_text(header: &Header<'_>, buf: &[u8]) -> String {
    clean_text(&decode_8bit(header_raw(header, buf)))
}

/// Hands `f` the parsed value of a header. mail-parser decodes header bytes
/// that are not UTF-8 lossily; such a header is re-read as windows-1252 and
/// parsed again.
pub(super) fn with_value<R>(
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

pub(super) fn read_headers(headers: &[Header<'_>], buf: &[u8]) -> ParsedHeaders {
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
pub(super) fn address_from_raw(header: &Header<'_>, buf: &[u8]) -> Option<Mailbox> {
    let mut text = decode_8bit(header_raw(header, buf));
    text.push('\n');
    let value = guarded(|| MessageStream::new(text.as_bytes()).parse_address())?;
    let mut one = Vec::new();
    push_mailboxes(&value, &mut one, 1, has_comment(header_raw(header, buf)));
    one.pop()
}

/// `de-DE, en` → `de`: the primary subtag of the first language, if it looks like one.
pub(super) fn primary_language(value: &str) -> Option<String> {
    let first = value.split(',').next()?.trim();
    let primary = first.split(['-', '_']).next()?.trim().to_ascii_lowercase();
    ((2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase()))
        .then_some(primary)
}

/// An unstructured header (Subject), decoded and cleaned.
pub(super) fn read_text(header: &Header<'_>, buf: &[u8]) -> Option<String> {
    with_value(header, buf, Form::Text, |v| v.as_text().map(clean_text)).filter(|s| !s.is_empty())
}

/// The first Subject of a header block.
pub(super) fn read_subject(headers: &[Header<'_>], buf: &[u8]) -> Option<String> {
    headers
        .iter()
        .find(|h| is_named(h, "subject"))
        .and_then(|h| read_text(h, buf))
}

/// Keeps the first entry (the thread root) and the last `max - 1` (the
/// closest ancestors) of an over-long References list.
pub(super) fn cap_keep_ends(ids: &mut Vec<String>, max: usize) {
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
pub(super) fn push_mailboxes(
    value: &HeaderValue<'_>,
    out: &mut Vec<Mailbox>,
    max: usize,
    comments: bool,
) {
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
pub(super) fn to_mailboxes(addr: &Addr<'_>, comments: bool) -> Vec<Mailbox> {
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
pub(super) fn with_missing_commas(raw: &[u8]) -> Option<String> {
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
pub(super) fn has_comment(raw: &[u8]) -> bool {
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
pub(super) fn without_comments(name: &str) -> String {
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
pub(super) fn for_each_id(text: &str, mut f: impl FnMut(String)) {
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
pub(super) fn push_ids(header: &Header<'_>, buf: &[u8], ids: &mut Vec<String>, max: usize) {
    for_each_id(&decode_8bit(header_raw(header, buf)), |id| {
        if ids.len() < max {
            ids.push(id);
        }
    });
}

pub(super) fn rfc3339(dt: &mail_parser::DateTime) -> Option<String> {
    if !(1900..=9999).contains(&dt.year) {
        return None;
    }
    let offset = (i32::from(dt.tz_hour) * 3600 + i32::from(dt.tz_minute) * 60)
        * if dt.tz_before_gmt { -1 } else { 1 };
    let small = |v: u8| i8::try_from(v).ok();
    crate::clock::rfc3339_of(
        i16::try_from(dt.year).ok()?,
        small(dt.month)?,
        small(dt.day)?,
        (small(dt.hour)?, small(dt.minute)?, small(dt.second)?),
        offset,
    )
}

/// Multi-byte East Asian charsets whose raw 8-bit header bytes cannot be
/// told from windows-1252 by looking at them.
pub(super) const CJK_CHARSETS: &[&str] = &[
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
    pub(super) static CJK_FALLBACK: std::cell::Cell<Option<&'static str>> =
        const { std::cell::Cell::new(None) };
}

/// The charset of the mail's first text part, when it is a multi-byte CJK
/// one: an old East Asian client writes raw 8-bit file names and subjects
/// in the charset of its text, as a mail client reading it assumes.
pub(super) fn cjk_text_charset(message: &Message<'_>) -> Option<&'static str> {
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
pub(super) fn decode_8bit(bytes: &[u8]) -> String {
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
pub(super) fn is_iso_2022_jp(bytes: &[u8]) -> bool {
    memchr::memmem::find_iter(bytes, b"\x1b").any(|i| {
        matches!(
            bytes.get(i + 1..i + 3),
            Some(b"$@" | b"$B" | b"$(" | b"(J" | b"(I")
        )
    })
}

/// One line of display text: control characters (CR, LF, NUL, ...) become
/// spaces, whitespace runs collapse to one space, ends trimmed.
pub(super) fn clean_text(s: &str) -> String {
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
