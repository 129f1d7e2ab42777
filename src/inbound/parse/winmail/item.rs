//! An Outlook item inside a winmail.dat as a file a recruiter can open, as
//! mail clients and TNEF tools show one: an appointment or meeting request
//! as an iCalendar event (`.ics`), any other item (a forwarded message, a
//! task, a contact, a note) as its body (`.rtf`, else `.txt`, else
//! `.html`). Also the message's own body when the mail shows no other.
//!
//! Part of [`super`]: pure, bounded work, never panics on input. What an
//! item is beyond that (its sender, recipients, every property) is not
//! rendered; winmail.dat keeps it.

use sha2::{Digest, Sha256};

#[allow(unused_imports)]
use super::*;

pub(crate) struct ItemDoc {
    pub(crate) name: String,
    pub(crate) mime: String,
    pub(crate) data: Vec<u8>,
}

/// A body as a file: (extension, type, bytes).
pub(crate) enum Body {
    Some(&'static str, &'static str, Vec<u8>),
    /// There is an RTF body, and it cannot be decompressed.
    Unreadable,
    None,
}

/// The body a client shows: the RTF (PR_RTF_COMPRESSED; what Outlook
/// shows, with its formatting), else the plain text (PR_BODY, attBody),
/// else the HTML (PR_HTML).
pub(crate) fn message_body(message: &MessageAttrs<'_>) -> Body {
    let props = message.props.map(mapi_message_props).unwrap_or_default();
    let plain = props
        .body
        .or_else(|| message.body.clone())
        .filter(|b| !b.trim().is_empty());
    if let Some(packed) = props.rtf_compressed {
        if let Some(rtf) = rtf::decompress(packed) {
            return Body::Some("rtf", "application/rtf", rtf);
        }
        if plain.is_none() {
            return Body::Unreadable;
        }
    }
    if let Some(text) = plain {
        return Body::Some("txt", "text/plain", text.into_bytes());
    }
    match props.html {
        Some(html) if !html.is_empty() => {
            let end = html.iter().position(|&b| b == 0).unwrap_or(html.len());
            Body::Some("html", "text/html", html[..end].to_vec())
        }
        _ => Body::None,
    }
}

/// An embedded item's own document; `label` is the attachment's title
/// (Outlook writes the item's subject there).
pub(crate) fn render_item(message: &MessageAttrs<'_>, label: Option<String>) -> Option<ItemDoc> {
    let props = message.props.map(mapi_message_props).unwrap_or_default();
    let subject = props
        .subject
        .clone()
        .or_else(|| message.subject.clone())
        .filter(|s| !s.trim().is_empty());
    let title = label
        .or_else(|| subject.clone())
        .unwrap_or_else(|| "Outlook item".to_string());
    let class = props
        .class
        .clone()
        .or_else(|| message.class.clone())
        .unwrap_or_default();
    let is_event = ["IPM.Appointment", "IPM.Schedule.Meeting"].iter().any(|c| {
        class
            .get(..c.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(c))
    });
    if is_event {
        let start = props.start.or_else(|| message.start.and_then(dtr_seconds));
        let end = props.end.or_else(|| message.end.and_then(dtr_seconds));
        let text = props
            .body
            .clone()
            .or_else(|| message.body.clone())
            .unwrap_or_default();
        let summary = subject.as_deref().unwrap_or(&title);
        if let Some(ics) =
            start.and_then(|s| ics_event(s, end, summary, props.location.as_deref(), &text))
        {
            return Some(ItemDoc {
                name: with_extension(&title, "text/calendar"),
                mime: "text/calendar".to_string(),
                data: ics,
            });
        }
    }
    match message_body(message) {
        Body::Some(_, mime, data) => Some(ItemDoc {
            name: with_extension(&title, mime),
            mime: mime.to_string(),
            data,
        }),
        Body::Unreadable | Body::None => None,
    }
}

/// A TNEF date (attDateStart: year, month, day, hour, minute, second,
/// weekday, each u16) as seconds since 1970, read as UTC.
pub(crate) fn dtr_seconds(v: &[u8]) -> Option<i64> {
    let f = |i: usize| -> Option<i8> {
        let b = v.get(2 * i..2 * i + 2)?;
        i8::try_from(u16::from_le_bytes([b[0], b[1]])).ok()
    };
    let year = v.get(..2).map(|b| u16::from_le_bytes([b[0], b[1]]))?;
    let dt = jiff::civil::DateTime::new(
        i16::try_from(year).ok()?,
        f(1)?,
        f(2)?,
        f(3)?,
        f(4)?,
        f(5)?,
        0,
    )
    .ok()?;
    Some(
        dt.to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_second(),
    )
}

fn ics_time(seconds: i64) -> Option<String> {
    let t = jiff::Timestamp::from_second(seconds).ok()?;
    Some(t.strftime("%Y%m%dT%H%M%SZ").to_string())
}

/// RFC 5545 TEXT: backslash, `;`, `,` and line breaks escaped.
fn ics_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.replace("\r\n", "\n").chars() {
        match c {
            '\\' | ';' | ',' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// One content line, folded at 75 octets (RFC 5545 3.1).
fn ics_line(out: &mut String, line: &str) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

/// A VCALENDAR with the one event.
fn ics_event(
    start: i64,
    end: Option<i64>,
    summary: &str,
    location: Option<&str>,
    description: &str,
) -> Option<Vec<u8>> {
    let dtstart = ics_time(start)?;
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".to_string(),
        "PRODID:-//jobmail//winmail.dat//EN".to_string(),
        "BEGIN:VEVENT".to_string(),
    ];
    let uid = Sha256::digest(format!("{start}\n{summary}\n{description}"));
    lines.push(format!("UID:{}@winmail.dat", hex::encode(&uid[..16])));
    lines.push(format!("DTSTAMP:{dtstart}"));
    lines.push(format!("DTSTART:{dtstart}"));
    if let Some(end) = end.filter(|&e| e >= start).and_then(ics_time) {
        lines.push(format!("DTEND:{end}"));
    }
    lines.push(format!("SUMMARY:{}", ics_text(summary)));
    if let Some(l) = location.filter(|l| !l.trim().is_empty()) {
        lines.push(format!("LOCATION:{}", ics_text(l)));
    }
    if !description.trim().is_empty() {
        lines.push(format!("DESCRIPTION:{}", ics_text(description.trim_end())));
    }
    lines.push("END:VEVENT".to_string());
    lines.push("END:VCALENDAR".to_string());
    let mut out = String::new();
    for line in &lines {
        ics_line(&mut out, line);
    }
    Some(out.into_bytes())
}
