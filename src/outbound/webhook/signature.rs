//! Webhook signing: the `Jobmail-Signature` header of one delivery, HMAC-SHA256
//! over `"<unix seconds>.<body>"` with the endpoint's secret (as Stripe and
//! Standard Webhooks do), its check, and the names of the events a
//! `[[webhook]]` may ask for. Pure: the time is passed in; it opens no socket,
//! reads no file and never logs or returns a secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Jobmail-Signature";
/// The header that carries the event id (the receiver's deduplication key).
pub const EVENT_ID_HEADER: &str = "Jobmail-Event-Id";

pub use crate::config::EVENTS;

/// Whether `name` is an event a `[[webhook]]` may ask for.
pub fn is_event(name: &str) -> bool {
    EVENTS.contains(&name)
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length, so this never fails.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The value of the `Jobmail-Signature` header: `t=<unix seconds>,v1=<hex>`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Checks a `Jobmail-Signature` header value against the body, in constant
/// time; returns the signed timestamp if one `v1=` signature matches. A
/// malformed header is `None`, never a panic.
pub fn verify(secret: &[u8], header: &str, body: &[u8]) -> Option<i64> {
    let mut timestamp = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        match key {
            "t" => timestamp = Some(value.parse::<i64>().ok()?),
            "v1" => tags.push(hex::decode(value).ok()?),
            _ => {}
        }
    }
    let timestamp = timestamp?;
    tags.iter()
        .any(|tag| mac(secret, timestamp, body).verify_slice(tag).is_ok())
        .then_some(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_with_its_secret_only() {
        let body = br#"{"id":"evt_1","type":"outbox.sent"}"#;
        let header = signature(b"s3cret", 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(verify(b"s3cret", &header, body), Some(1_700_000_000));
        assert_eq!(verify(b"other", &header, body), None);
        assert_eq!(verify(b"s3cret", &header, b"{}"), None);
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // The same as Python's hmac.new(b"key", b"1.{}", hashlib.sha256).hexdigest().
        let header = signature(b"key", 1, b"{}");
        let tag = mac(b"key", 1, b"{}").finalize().into_bytes();
        assert_eq!(header, format!("t=1,v1={}", hex::encode(tag)));
        let mut plain = Hmac::<Sha256>::new_from_slice(b"key").expect("key");
        plain.update(b"1.{}");
        assert_eq!(plain.finalize().into_bytes(), tag);
        assert_eq!(
            header,
            "t=1,v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }

    #[test]
    fn a_malformed_header_is_refused_without_a_panic() {
        for header in [
            "",
            "t=",
            "v1=zz",
            "t=x,v1=00",
            "t=1",
            "garbage",
            "t=1,v1=00",
        ] {
            assert_eq!(verify(b"k", header, b"{}"), None, "{header}");
        }
    }

    #[test]
    fn the_event_names_are_the_issues() {
        assert!(is_event("message.received"));
        assert!(is_event("auto_reply.suppressed"));
        assert!(!is_event("message.deleted"));
    }
}
