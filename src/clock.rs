//! The one clock: now, in Unix milliseconds, and the forms jobmail writes
//! times in (RFC 3339 for records and JSON, RFC 5322 for trace headers,
//! civil dates for templates). Everything in UTC.
//!
//! The only module that reads the wall clock (`clippy.toml` bans the
//! others); monotonic `Instant`s for timeouts are read where they are used.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::Offset;

/// Now, in Unix milliseconds.
#[allow(clippy::disallowed_methods)]
pub fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

fn timestamp(ms: i64) -> Option<Timestamp> {
    Timestamp::from_millisecond(ms).ok()
}

/// `2026-12-01T09:00:00.000Z`: how records and JSON output write a time.
pub fn rfc3339_ms(ms: i64) -> String {
    timestamp(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// `2026-12-01T09:00:00+00:00` (fractions of a second only when there
/// are any): a time shown to an operator.
pub fn rfc3339(ms: i64) -> Option<String> {
    timestamp(ms).map(|t| t.display_with_offset(Offset::UTC).to_string())
}

/// `Tue, 01 Dec 2026 09:00:00 +0000`: the date of a trace header.
pub fn rfc5322(ms: i64) -> String {
    timestamp(ms)
        .map(|t| t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string())
        .unwrap_or_default()
}

/// The calendar date (UTC) of a time.
pub fn date(ms: i64) -> Option<Date> {
    timestamp(ms).map(|t| Offset::UTC.to_datetime(t).date())
}

/// A header's date and time with its offset, in RFC 3339 (`Z` for UTC),
/// if it is a real date; `None` for 31 February and the like.
pub fn rfc3339_of(
    year: i16,
    month: i8,
    day: i8,
    hms: (i8, i8, i8),
    offset_seconds: i32,
) -> Option<String> {
    let date = Date::new(year, month, day).ok()?;
    let time = jiff::civil::Time::new(hms.0, hms.1, hms.2, 0).ok()?;
    let offset = Offset::from_seconds(offset_seconds).ok()?;
    let at = offset.to_timestamp(date.to_datetime(time)).ok()?;
    Some(if offset_seconds == 0 {
        at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        at.display_with_offset(offset).to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_before() {
        // 2026-12-01T09:00:00.123Z
        let ms = 1_796_115_600_123;
        assert_eq!(rfc3339_ms(ms), "2026-12-01T09:00:00.123Z");
        assert_eq!(rfc3339_ms(ms - 123), "2026-12-01T09:00:00.000Z");
        assert_eq!(
            rfc3339(ms - 123).as_deref(),
            Some("2026-12-01T09:00:00+00:00")
        );
        assert_eq!(
            rfc3339(ms).as_deref(),
            Some("2026-12-01T09:00:00.123+00:00")
        );
        assert_eq!(rfc5322(ms), "Tue, 01 Dec 2026 09:00:00 +0000");
        assert_eq!(
            rfc3339_of(2026, 12, 1, (10, 0, 0), 3600).as_deref(),
            Some("2026-12-01T10:00:00+01:00")
        );
        assert_eq!(
            rfc3339_of(2026, 12, 1, (9, 0, 0), 0).as_deref(),
            Some("2026-12-01T09:00:00Z")
        );
        assert_eq!(rfc3339_of(2026, 2, 31, (9, 0, 0), 0), None);
        assert_eq!(
            date(ms).map(|d| (d.year(), d.month(), d.day())),
            Some((2026, 12, 1))
        );
    }
}
