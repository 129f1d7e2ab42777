//! MIME parameters (RFC 2045, RFC 2231 continuations and charsets,
//! RFC 2047 words inside quoted values), read from the raw header.
//!
//! Part of [`super`]: pure, bounded work, never panics on input.

#[allow(unused_imports)]
use super::*;

pub(super) struct Param {
    /// Lower case, without the `*N` / `*` suffixes.
    pub(super) name: String,
    pub(super) section: Option<u32>,
    /// Written as `name*` or `name*N*`: percent-encoded, maybe with charset.
    pub(super) extended: bool,
    pub(super) value: Vec<u8>,
}

impl Param {
    pub(super) fn new(name: &str, value: Vec<u8>) -> Param {
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
pub(super) fn parse_params(raw: &[u8]) -> Vec<Param> {
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
pub(super) fn param_value(raw: &[u8], key: &str) -> Option<String> {
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
pub(super) fn split_charset(value: &[u8]) -> (Option<&[u8]>, &[u8]) {
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

pub(super) fn percent_decode(value: &[u8]) -> Vec<u8> {
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

pub(super) fn decode_charset(bytes: &[u8], charset: Option<&[u8]>) -> String {
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
