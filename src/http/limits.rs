//! The per-token request limit of the API: a token bucket per caller
//! (`[api] requests_per_minute` on average, `burst` at once); over it is
//! 429 with `Retry-After`. A client that loops on an error cannot take
//! the store from the others.
//!
//! Counts only; kept in memory (a restart forgets), one bucket per user.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The buckets of every caller seen (they outlive a reload; the limits
/// are the config's of the moment).
#[derive(Debug, Default)]
pub struct RateLimits {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimits {
    /// Takes one request from `caller`'s bucket at `now`, `per_minute` on
    /// average and `burst` at once (0 per minute: no limit); `Err(wait)`
    /// when it is empty, with the time until one request is allowed again.
    pub fn take(
        &self,
        caller: &str,
        per_minute: u64,
        burst: u64,
        now: Instant,
    ) -> Result<(), Duration> {
        if per_minute == 0 {
            return Ok(());
        }
        let rate = per_minute as f64 / 60.0;
        let burst = burst.max(1) as f64;
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (tokens, at) = buckets.entry(caller.to_string()).or_insert((burst, now));
        let elapsed = now.saturating_duration_since(*at).as_secs_f64();
        *tokens = (*tokens + elapsed * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_the_average_and_each_caller_has_their_own() {
        let limits = RateLimits::default();
        let take = |who: &str, at: Instant| limits.take(who, 60, 3, at);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(take("anna", t0).is_ok());
        }
        let wait = take("anna", t0).expect_err("the burst is used up");
        assert!(wait <= Duration::from_secs(1) && wait > Duration::from_millis(900));
        assert!(take("olaf", t0).is_ok(), "another caller's bucket is full");
        // One a second comes back.
        assert!(take("anna", t0 + Duration::from_millis(1001)).is_ok());
        assert!(take("anna", t0 + Duration::from_millis(1002)).is_err());
        // Never more than the burst, however long the pause.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(take("anna", later).is_ok());
        }
        assert!(take("anna", later).is_err());
    }

    #[test]
    fn zero_is_no_limit() {
        let limits = RateLimits::default();
        let t0 = Instant::now();
        for _ in 0..10_000 {
            assert!(limits.take("anna", 0, 1, t0).is_ok());
        }
    }
}
