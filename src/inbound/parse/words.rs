//! RFC 2047 encoded words: decoding them where mail-parser does not
//! (inside quoted parameter values) and writing raw 8-bit words anew as
//! clean UTF-8 words.
//!
//! Part of [`super`]: pure, bounded work, never panics on input.

#[allow(unused_imports)]
use super::*;

/// The encoded word at the start of `s`: its charset (an RFC 2231 language
/// cut off), `Q` or `B`, the encoded text, and the word's length in bytes.
pub(super) fn encoded_word(s: &str) -> Option<(&str, u8, &str, usize)> {
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
pub(super) fn decode_word(charset: &str, enc: u8, text: &str) -> String {
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
pub(super) fn decode_words(text: &str) -> String {
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
pub(super) fn reencode_8bit_words(text: &str) -> Option<String> {
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
