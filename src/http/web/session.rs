//! The web page's sessions: a user who signed in with their token gets a
//! random session id in an `HttpOnly`, `SameSite=Strict` cookie (`Secure`
//! unless the API listens on loopback), and a CSRF token that every form
//! carries back. Sessions live in memory: they expire after [`IDLE`]
//! without a request or [`LIFETIME`] in all, and a restart signs everyone
//! out. Only the SHA-256 of a session id is kept, never the id itself.
//!
//! It knows cookies and tokens, nothing of pages or of what a user may do.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use sha2::Digest;

/// The session cookie's name.
pub const COOKIE: &str = "jobmail_session";
/// The sign-in form's CSRF cookie (before there is a session).
pub const SIGN_IN_COOKIE: &str = "jobmail_sign_in";
/// A session ends after this long without a request …
pub const IDLE: Duration = Duration::from_secs(8 * 3600);
/// … and after this long in any case.
pub const LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// One signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    /// Carried back by every form (`csrf` field).
    pub csrf: String,
    started: Instant,
    seen: Instant,
}

/// The sessions of this process.
#[derive(Default)]
pub struct Sessions {
    by_hash: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes as hex; `None` if the system has no randomness to give.
pub fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

fn hash(id: &str) -> String {
    hex::encode(sha2::Sha256::digest(id.as_bytes()))
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, the whole site,
/// `Secure` when asked; `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

impl Sessions {
    /// Starts a session for `user`; returns its id (for the cookie) and
    /// the session. `None` without randomness.
    pub fn start(&self, user: &str, now: Instant) -> Option<(String, Session)> {
        let id = random_token()?;
        let session = Session {
            user: user.to_string(),
            csrf: random_token()?,
            started: now,
            seen: now,
        };
        let mut all = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|_, s| alive(s, now));
        all.insert(hash(&id), session.clone());
        Some((id, session))
    }

    /// The live session the request's cookie names, marked as seen now.
    pub fn find(&self, headers: &HeaderMap, now: Instant) -> Option<Session> {
        let id = cookie(headers, COOKIE)?;
        let mut all = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        let key = hash(id);
        let session = all.get_mut(&key)?;
        if !alive(session, now) {
            all.remove(&key);
            return None;
        }
        session.seen = now;
        Some(session.clone())
    }

    /// Ends the session the request's cookie names.
    pub fn end(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE) {
            let mut all = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
            all.remove(&hash(id));
        }
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    now.duration_since(s.seen) < IDLE && now.duration_since(s.started) < LIFETIME
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn a_session_is_found_by_its_cookie_until_it_idles_out_or_ends() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        let (id, s) = sessions.start("anna", t0).unwrap();
        assert_eq!(s.user, "anna");
        assert_ne!(s.csrf, id);
        let headers = with_cookie(&format!("lang=de; {COOKIE}={id}"));
        assert_eq!(sessions.find(&headers, t0).unwrap().user, "anna");
        assert!(
            sessions
                .find(&with_cookie(&format!("{COOKIE}=x{id}")), t0)
                .is_none()
        );
        assert!(sessions.find(&headers, t0 + IDLE).is_none(), "idled out");
        let (id, _) = sessions.start("anna", t0).unwrap();
        let headers = with_cookie(&format!("{COOKIE}={id}"));
        // Seen every few hours: still ends after its lifetime.
        let mut t = t0;
        while t < t0 + LIFETIME - Duration::from_secs(3600) {
            t += Duration::from_secs(3 * 3600);
            assert!(sessions.find(&headers, t).is_some() || t >= t0 + LIFETIME);
        }
        assert!(sessions.find(&headers, t0 + LIFETIME).is_none());
        let (id, _) = sessions.start("olaf", t0).unwrap();
        let headers = with_cookie(&format!("{COOKIE}={id}"));
        sessions.end(&headers);
        assert!(sessions.find(&headers, t0).is_none());
    }

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let c = set_cookie(COOKIE, "abc", IDLE, true);
        assert_eq!(
            c,
            "jobmail_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=28800; Secure"
        );
        assert!(!set_cookie(COOKIE, "abc", IDLE, false).contains("Secure"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
