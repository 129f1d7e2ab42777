//! Repairs of the shapes mail-parser misreads (folded boundary parameters,
//! unencoded nested `message/rfc822`, unterminated inner multiparts,
//! header blocks without a blank line): mended in a copy of the header
//! blocks, never in a leaf's body, and parsed again.
//!
//! Part of [`super`]: pure, bounded work, never panics on input.

#[allow(unused_imports)]
use super::*;

/// Passes of repair and re-parse at most (each can reveal parts that a
/// misread had hidden, which may need repairs of their own).
pub(super) const MAX_REPAIR_PASSES: usize = 8;
/// Edits made in one pass at most.
pub(super) const MAX_EDITS: usize = 4096;
/// What an unencoded attached message's type becomes in the repaired copy:
/// `application/x-jobmail-message-rfc822` is read back as `message/rfc822`.
pub(super) const MESSAGE_MARKER: &str = "application/x-jobmail-message-";

/// Replace `start..end` of the bytes with `with`.
pub(super) struct Edit {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) with: Vec<u8>,
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
pub(super) fn parse_mime<'a>(
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
pub(super) fn parse_work(raw_len: usize) -> usize {
    raw_len.saturating_mul(8).saturating_add(4 << 20)
}

pub(super) fn apply_edits(bytes: &[u8], mut edits: Vec<Edit>) -> Vec<u8> {
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
pub(super) fn find_edits(message: &Message<'_>, buf: &[u8]) -> Vec<Edit> {
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
pub(super) fn parents(message: &Message<'_>) -> Vec<Option<usize>> {
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
pub(super) fn swallows(
    message: &Message<'_>,
    parent: &[Option<usize>],
    i: usize,
    buf: &[u8],
) -> bool {
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
pub(super) fn unclosed_multiparts(
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
pub(super) fn type_edit(
    part: &MessagePart<'_>,
    buf: &[u8],
    with: &'static [u8],
    edits: &mut Vec<Edit>,
) {
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
pub(super) fn unfold_after_equals(part: &MessagePart<'_>, buf: &[u8], edits: &mut Vec<Edit>) {
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
pub(super) fn missing_separators(
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

pub(super) fn separators_in_gap(
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
pub(super) fn next_line(region: &[u8], pos: usize) -> Option<(usize, usize)> {
    let lf = memchr::memchr(b'\n', region.get(pos..)?)?;
    let ls = pos + lf + 1;
    if ls >= region.len() {
        return None;
    }
    let le = memchr::memchr(b'\n', &region[ls..]).map_or(region.len(), |p| ls + p);
    Some((ls, le))
}

/// `Name: value`: a field name of printable ASCII, then a colon.
pub(super) fn is_header_line(line: &[u8]) -> bool {
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
pub(super) fn dismantle(message: Message<'_>) {
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
