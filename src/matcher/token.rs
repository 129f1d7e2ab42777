//! Signed reply tokens (`jobs+<id>.<mac>@…`), subject reference tags
//! (`[#<id>-<check>]`) that lead a reply back to its candidate, and signed
//! VERP bounce addresses (`bounce+<item>.<mac>@…`) that prove a delivery
//! report answers a mail we sent.
//!
//! All are keyed with HMAC-SHA256 under a secret of jobmail's own (see
//! `crate::secrets`), so they cannot be guessed or forged from an id: a reply
//! token and a VERP address carry 65 bits, a subject tag 30 (a tag must stay
//! short in a subject line, and it is never the only evidence that moves a
//! known person's mail). Tags of the first format (`[#<id><check>]`, 10
//! bits) are still recognised, but only together with other evidence.
//! The formats are spelled out in `docs/matching.md`. Pure: the key comes in
//! as bytes; nothing here reads files.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The secret behind tokens and tags.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(…)")
    }
}

const REPLY_CONTEXT: &str = "jobmail reply-token v1:";
const LEGACY_TAG_CONTEXT: &str = "jobmail subject-tag v1:";
/// A context of its own: a tag of the first format must reveal nothing of
/// today's check.
const TAG_CONTEXT: &str = "jobmail subject-tag v2:";
const VERP_CONTEXT: &str = "jobmail verp v1:";
/// Base32 characters of MAC in a reply token and a VERP address: 65 bits.
const REPLY_MAC_CHARS: usize = 13;
/// Crockford characters of check in a subject tag: 30 bits.
const TAG_CHECK_CHARS: usize = 6;
/// The longest tag-shaped token (`[#` … `]`) looked at in a subject.
const MAX_TAG_BODY: usize = 24;

/// What a VERP address (`bounce+<tag>@…`) proves about the item it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verp {
    /// `<item>.<mac>` with our MAC: we sent that item from this address.
    Signed(i64),
    /// `<item>` alone, the format before MACs: proves nothing by itself,
    /// only if the item was queued with exactly this address.
    Unsigned(i64),
    /// A MAC that does not check, or not our shape at all.
    Forged,
}

/// The tag-shaped tokens of a subject, read with the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectTags {
    /// Distinct tag-shaped tokens (`[#` + letters, digits, `-` + `]`),
    /// valid or not, compared case-insensitively.
    pub tokens: usize,
    /// Candidates named by a valid tag of today's format (30-bit check).
    pub signed: Vec<i64>,
    /// Candidates named by a valid tag of the first format (10-bit check):
    /// evidence only beside a known sender or the thread.
    pub legacy: Vec<i64>,
}
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl TokenKey {
    pub fn new(bytes: [u8; 32]) -> TokenKey {
        TokenKey(bytes)
    }

    fn mac(&self, context: &str, id: i64) -> [u8; 32] {
        // HMAC takes keys of any length; 32 bytes cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(context.as_bytes());
        mac.update(id.to_string().as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn reply_mac(&self, id: i64) -> String {
        self.short_mac(REPLY_CONTEXT, id)
    }

    fn short_mac(&self, context: &str, id: i64) -> String {
        let mac = self.mac(context, id);
        let mut text = data_encoding::BASE32_NOPAD
            .encode(&mac)
            .to_ascii_lowercase();
        text.truncate(REPLY_MAC_CHARS);
        text
    }

    /// The plus-tag for a candidate: `<id>.<mac>` (goes after `jobs+`).
    pub fn reply_token(&self, candidate: i64) -> String {
        format!("{candidate}.{}", self.reply_mac(candidate))
    }

    /// The candidate a plus-tag stands for, if it is a token we signed.
    /// Case-insensitive; anything else (aliases, junk, bad MACs) is `None`.
    pub fn check_reply_token(&self, tag: &str) -> Option<i64> {
        let (id, mac) = tag.split_once('.')?;
        let id = decimal_id(id)?;
        let expected = self.reply_mac(id);
        constant_time_eq(mac.to_ascii_lowercase().as_bytes(), expected.as_bytes()).then_some(id)
    }

    /// The plus-tag of an outbox item's VERP envelope sender: `<item>.<mac>`
    /// (goes after `bounce+`).
    pub fn verp_tag(&self, item: i64) -> String {
        format!("{item}.{}", self.short_mac(VERP_CONTEXT, item))
    }

    /// What the plus-tag of a `bounce+` address proves. Case-insensitive.
    pub fn check_verp_tag(&self, tag: &str) -> Verp {
        match tag.split_once('.') {
            None => decimal_id(tag).map_or(Verp::Forged, Verp::Unsigned),
            Some((id, mac)) => match decimal_id(id) {
                Some(id)
                    if constant_time_eq(
                        mac.to_ascii_lowercase().as_bytes(),
                        self.short_mac(VERP_CONTEXT, id).as_bytes(),
                    ) =>
                {
                    Verp::Signed(id)
                }
                _ => Verp::Forged,
            },
        }
    }

    fn tag_check(&self, id: i64) -> [u8; TAG_CHECK_CHARS] {
        let mac = self.mac(TAG_CONTEXT, id);
        let bits = u64::from_be_bytes([
            mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], mac[6], mac[7],
        ]);
        let mut check = [0u8; TAG_CHECK_CHARS];
        for (i, c) in check.iter_mut().enumerate() {
            *c = CROCKFORD[((bits >> (59 - 5 * i)) & 31) as usize];
        }
        check
    }

    fn legacy_tag_check(&self, id: i64) -> [u8; 2] {
        let mac = self.mac(LEGACY_TAG_CONTEXT, id);
        let top10 = (u16::from(mac[0]) << 2) | (u16::from(mac[1]) >> 6);
        [
            CROCKFORD[(top10 >> 5) as usize],
            CROCKFORD[(top10 & 31) as usize],
        ]
    }

    /// The subject tag of a candidate, brackets included: `[#1A-X7QR2M]`.
    pub fn subject_tag(&self, candidate: i64) -> String {
        let check = self.tag_check(candidate);
        format!(
            "[#{}-{}]",
            crockford(candidate),
            String::from_utf8_lossy(&check)
        )
    }

    /// The tag-shaped tokens of a subject and the candidates their valid
    /// ones name, in order of appearance.
    pub fn subject_tags(&self, subject: &str) -> SubjectTags {
        let mut seen: Vec<String> = Vec::new();
        let mut tags = SubjectTags::default();
        let mut rest = subject;
        while let Some(start) = rest.find("[#") {
            let after = &rest[start + 2..];
            let shape = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-')
                .count();
            if shape == 0 || shape > MAX_TAG_BODY || after.as_bytes().get(shape) != Some(&b']') {
                rest = after;
                continue;
            }
            let body = after[..shape].to_ascii_uppercase();
            rest = &after[shape..];
            if seen.contains(&body) {
                continue;
            }
            seen.push(body);
            let body = seen.last().map(String::as_str).unwrap_or_default();
            if let Some(id) = self.check_tag_body(body) {
                push_new(&mut tags.signed, id);
            } else if let Some(id) = self.check_legacy_tag_body(body) {
                push_new(&mut tags.legacy, id);
            }
        }
        tags.tokens = seen.len();
        tags
    }

    /// Every candidate named by a valid tag of today's format in a subject.
    pub fn find_subject_tags(&self, subject: &str) -> Vec<i64> {
        self.subject_tags(subject).signed
    }

    /// `<id>-<check>`, uppercase.
    fn check_tag_body(&self, body: &str) -> Option<i64> {
        let (digits, check) = body.split_once('-')?;
        let id = from_crockford(digits)?;
        constant_time_eq(&self.tag_check(id), check.as_bytes()).then_some(id)
    }

    /// `<id><check>` of the first format, uppercase.
    fn check_legacy_tag_body(&self, body: &str) -> Option<i64> {
        if !(3..=14).contains(&body.len()) || body.contains('-') {
            return None;
        }
        let (digits, check) = body.split_at(body.len() - 2);
        let id = from_crockford(digits)?;
        (self.legacy_tag_check(id) == check.as_bytes()).then_some(id)
    }
}

fn push_new(list: &mut Vec<i64>, id: i64) {
    if !list.contains(&id) {
        list.push(id);
    }
}

/// A positive decimal id as we write them: digits, no leading zero.
fn decimal_id(text: &str) -> Option<i64> {
    if text.is_empty()
        || text.len() > 18
        || !text.bytes().all(|b| b.is_ascii_digit())
        || text.starts_with('0')
    {
        return None;
    }
    text.parse().ok()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A non-negative id in Crockford base32, uppercase, no leading zeros.
fn crockford(mut n: i64) -> String {
    if n <= 0 {
        return "0".to_string();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(CROCKFORD[(n & 31) as usize]);
        n >>= 5;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn from_crockford(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 12 || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    let mut n: i64 = 0;
    for b in text.bytes() {
        let digit = CROCKFORD.iter().position(|&c| c == b)? as i64;
        n = n.checked_mul(32)?.checked_add(digit)?;
    }
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::new([0x42; 32])
    }

    #[test]
    fn reply_tokens_round_trip_and_resist_forgery() {
        let k = key();
        for id in [1, 2, 42, 123_456_789] {
            let token = k.reply_token(id);
            assert_eq!(k.check_reply_token(&token), Some(id));
            assert_eq!(k.check_reply_token(&token.to_ascii_uppercase()), Some(id));
            // Another id with this MAC, or this id with a changed MAC, fails.
            let (_, mac) = token.split_once('.').unwrap();
            assert_eq!(k.check_reply_token(&format!("{}.{mac}", id + 1)), None);
            let mut bad = token.clone().into_bytes();
            let last = bad.len() - 1;
            bad[last] = if bad[last] == b'a' { b'b' } else { b'a' };
            assert_eq!(
                k.check_reply_token(std::str::from_utf8(&bad).unwrap()),
                None
            );
            // A different key does not accept it.
            assert_eq!(TokenKey::new([7; 32]).check_reply_token(&token), None);
        }
        for junk in [
            "",
            "backend",
            "1.",
            ".abc",
            "01.aaaaaaaaaaaaa",
            "x.y",
            "1.aaaaaaaaaaaaa",
            "-1.aaaaaaaaaaaaa",
        ] {
            assert_eq!(k.check_reply_token(junk), None, "{junk}");
        }
    }

    #[test]
    fn verp_tags_round_trip_and_resist_forgery() {
        let k = key();
        for item in [1, 7, 1_000_000] {
            let tag = k.verp_tag(item);
            assert_eq!(k.check_verp_tag(&tag), Verp::Signed(item));
            assert_eq!(
                k.check_verp_tag(&tag.to_ascii_uppercase()),
                Verp::Signed(item)
            );
            let (_, mac) = tag.split_once('.').unwrap();
            assert_eq!(
                k.check_verp_tag(&format!("{}.{mac}", item + 1)),
                Verp::Forged
            );
            // Not the reply token of the same number.
            assert_eq!(k.check_verp_tag(&k.reply_token(item)), Verp::Forged);
            assert_eq!(TokenKey::new([7; 32]).check_verp_tag(&tag), Verp::Forged);
            assert_eq!(k.check_verp_tag(&item.to_string()), Verp::Unsigned(item));
        }
        for junk in ["", "x", "01", "1.", ".abc", "1.aaaaaaaaaaaaa", "-1"] {
            assert_eq!(k.check_verp_tag(junk), Verp::Forged, "{junk}");
        }
    }

    /// The tag as the first format wrote it: `[#<id><2 check chars>]`.
    fn legacy_tag(k: &TokenKey, id: i64) -> String {
        let c = k.legacy_tag_check(id);
        format!("[#{}{}{}]", crockford(id), c[0] as char, c[1] as char)
    }

    #[test]
    fn subject_tags_round_trip_and_reject_typos() {
        let k = key();
        let (mut total, mut passing) = (0, 0);
        for id in [1, 31, 32, 1000, 99_999] {
            let tag = k.subject_tag(id);
            let subject = format!("Re: Ihre Bewerbung {tag} – Termin");
            assert_eq!(k.find_subject_tags(&subject), vec![id], "{subject}");
            assert_eq!(k.find_subject_tags(&subject.to_lowercase()), vec![id]);
            let tags = k.subject_tags(&format!("AW: {subject} {tag}"));
            assert_eq!(
                (tags.tokens, tags.signed.clone()),
                (1, vec![id]),
                "the same tag twice is one token"
            );
            // A single-character typo never names this candidate, nor any other.
            let body = &tag[2..tag.len() - 1];
            for i in 0..body.len() {
                for &c in CROCKFORD.iter() {
                    let mut changed = body.as_bytes().to_vec();
                    if changed[i] == c || changed[i] == b'-' {
                        continue;
                    }
                    changed[i] = c;
                    let changed = String::from_utf8(changed).unwrap();
                    total += 1;
                    if k.check_tag_body(&changed).is_some() {
                        passing += 1;
                    }
                }
            }
            // The first format still reads, apart from today's.
            let old = k.subject_tags(&format!("Re: {}", legacy_tag(&k, id)));
            assert_eq!(
                (old.tokens, old.signed.is_empty(), old.legacy),
                (1, true, vec![id])
            );
        }
        assert_eq!(passing, 0, "{passing} of {total} typos passed");
        let junk = k.subject_tags("[#] [#ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ] [#1] no tag [#");
        assert_eq!(
            (junk.tokens, junk.signed.len(), junk.legacy.len()),
            (1, 0, 0),
            "only [#1] is tag-shaped"
        );
    }

    #[test]
    fn the_values_of_the_fixtures_tool() {
        // fixtures/matching/tools/tokens.py computes these independently.
        let k = key();
        assert_eq!(k.subject_tag(1), "[#1-YKV1KF]");
        assert_eq!(k.subject_tag(6), "[#6-JK413K]");
        assert_eq!(legacy_tag(&k, 6), "[#6JD]");
        assert_eq!(k.verp_tag(3), "3.zl7ygsl6cse7q");
    }

    #[test]
    fn every_check_value_in_one_subject_is_many_tokens() {
        // The attack of the first format: all 1,024 check values for one id.
        let k = key();
        let subject: String = (0..1024)
            .map(|n| {
                format!(
                    "[#5{}{}]",
                    CROCKFORD[n >> 5] as char,
                    CROCKFORD[n & 31] as char
                )
            })
            .collect();
        let tags = k.subject_tags(&subject);
        assert_eq!(tags.tokens, 1024);
        assert!(tags.signed.is_empty());
        assert_eq!(tags.legacy, vec![5]);
    }

    #[test]
    fn a_random_tag_never_passes() {
        let k = key();
        let passing = (1..=20_000i64)
            .filter(|&n| {
                k.check_tag_body(&format!("{}-000000", crockford(n)))
                    .is_some()
            })
            .count();
        // 30 check bits: about 1 in a billion guesses passes.
        assert_eq!(passing, 0, "{passing} of 20,000 guessed tags passed");
        let legacy = (1..=20_000i64)
            .filter(|&n| {
                k.check_legacy_tag_body(&format!("{}00", crockford(n)))
                    .is_some()
            })
            .count();
        assert!(legacy < 60, "{legacy} of 20,000 guessed legacy tags passed");
    }
}
