//! Signed reply tokens (`jobs+<id>.<mac>@…`) and subject reference tags
//! (`[#<id><check>]`) that lead a reply back to its candidate.
//!
//! Both are keyed with HMAC-SHA256 under a secret of jobmail's own (see
//! `crate::state`), so they cannot be guessed or forged from a candidate id.
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
const TAG_CONTEXT: &str = "jobmail subject-tag v1:";
/// Base32 characters of MAC in a reply token: 65 bits.
const REPLY_MAC_CHARS: usize = 13;
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
        let mac = self.mac(REPLY_CONTEXT, id);
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
        if id.is_empty()
            || id.len() > 18
            || !id.bytes().all(|b| b.is_ascii_digit())
            || id.starts_with('0')
        {
            return None;
        }
        let id: i64 = id.parse().ok()?;
        let expected = self.reply_mac(id);
        constant_time_eq(mac.to_ascii_lowercase().as_bytes(), expected.as_bytes()).then_some(id)
    }

    fn tag_check(&self, id: i64) -> [u8; 2] {
        let mac = self.mac(TAG_CONTEXT, id);
        let top10 = (u16::from(mac[0]) << 2) | (u16::from(mac[1]) >> 6);
        [
            CROCKFORD[(top10 >> 5) as usize],
            CROCKFORD[(top10 & 31) as usize],
        ]
    }

    /// The subject tag of a candidate, brackets included: `[#1AX7]`.
    pub fn subject_tag(&self, candidate: i64) -> String {
        let check = self.tag_check(candidate);
        format!(
            "[#{}{}{}]",
            crockford(candidate),
            check[0] as char,
            check[1] as char
        )
    }

    /// Every candidate named by a valid tag in a subject, in order of appearance.
    pub fn find_subject_tags(&self, subject: &str) -> Vec<i64> {
        let mut found = Vec::new();
        let mut rest = subject;
        while let Some(start) = rest.find("[#") {
            let after = &rest[start + 2..];
            let Some(end) = after.find(']') else { break };
            let body = &after[..end];
            if let Some(id) = self.check_tag_body(body)
                && !found.contains(&id)
            {
                found.push(id);
            }
            rest = &after[end..];
        }
        found
    }

    fn check_tag_body(&self, body: &str) -> Option<i64> {
        if !(3..=15).contains(&body.len()) || !body.is_ascii() {
            return None;
        }
        let upper = body.to_ascii_uppercase();
        let (digits, check) = upper.split_at(upper.len() - 2);
        let id = from_crockford(digits)?;
        (self.tag_check(id) == check.as_bytes()).then_some(id)
    }
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
    fn subject_tags_round_trip_and_reject_typos() {
        let k = key();
        let (mut total, mut passing) = (0, 0);
        for id in [1, 31, 32, 1000, 99_999] {
            let tag = k.subject_tag(id);
            let subject = format!("Re: Ihre Bewerbung {tag} – Termin");
            assert_eq!(k.find_subject_tags(&subject), vec![id], "{subject}");
            assert_eq!(k.find_subject_tags(&subject.to_lowercase()), vec![id]);
            // A single-character typo never names this candidate, and only
            // rarely (1 in 1,024) happens to be another candidate's valid tag.
            let body = &tag[2..tag.len() - 1];
            for i in 0..body.len() {
                for &c in CROCKFORD.iter() {
                    let mut changed = body.as_bytes().to_vec();
                    if changed[i] == c {
                        continue;
                    }
                    changed[i] = c;
                    let changed = String::from_utf8(changed).unwrap();
                    total += 1;
                    if let Some(other) = k.check_tag_body(&changed) {
                        assert_ne!(other, id, "{changed}");
                        passing += 1;
                    }
                }
            }
        }
        assert!(passing * 200 < total, "{passing} of {total} typos passed");
        assert!(
            k.find_subject_tags("[#] [#ZZZZZZZZZZZZZZZZZZ] [#1] no tag [#")
                .is_empty()
        );
    }

    #[test]
    fn a_random_tag_rarely_passes() {
        let k = key();
        let passing = (1..=20_000i64)
            .filter(|&n| k.check_tag_body(&format!("{}00", crockford(n))).is_some())
            .count();
        // 10 check bits: about 1 in 1,024 guesses passes.
        assert!(passing < 60, "{passing} of 20,000 guessed tags passed");
    }
}
