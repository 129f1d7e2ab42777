//! An Outlook item inside a winmail.dat as a file a recruiter can open, as
//! mail clients and TNEF tools show one: an appointment or meeting request
//! as an iCalendar event (`.ics`), a contact as a vCard (`.vcf`), any
//! other item (a forwarded message, a task, a note) as its body (`.rtf`,
//! else `.txt`, else `.html`). Also the message's own body when the mail
//! shows no other.
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
    let named = label.or_else(|| subject.clone());
    let title = named.clone().unwrap_or_else(|| "Outlook item".to_string());
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
    if is_class(&class, "IPM.Contact") {
        let note = props
            .body
            .as_deref()
            .or(message.body.as_deref())
            .unwrap_or_default();
        if let Some(card) = vcard(&props.contact, note, named.as_deref()) {
            return Some(ItemDoc {
                name: with_extension(&card.name, "text/vcard"),
                mime: "text/vcard".to_string(),
                data: card.data,
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

/// `class` is `base` or a form derived from it (`IPM.Contact.Custom`),
/// in any case.
fn is_class(class: &str, base: &str) -> bool {
    class
        .get(..base.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(base))
        && matches!(class.as_bytes().get(base.len()), None | Some(b'.'))
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

/// A TEXT value (RFC 5545 3.3.11, RFC 6350 3.4; vCard 3.0 the same):
/// backslash, `;`, `,` and line breaks escaped, other control characters
/// left out, so no value can end its line or break the structure of one.
fn text_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.replace("\r\n", "\n").replace('\r', "\n").chars() {
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

/// One content line, folded at 75 octets (RFC 5545 3.1, RFC 6350 3.2),
/// never inside a character.
fn content_line(out: &mut String, line: &str) {
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
    lines.push(format!("SUMMARY:{}", text_value(summary)));
    if let Some(l) = location.filter(|l| !l.trim().is_empty()) {
        lines.push(format!("LOCATION:{}", text_value(l)));
    }
    if !description.trim().is_empty() {
        lines.push(format!(
            "DESCRIPTION:{}",
            text_value(description.trim_end())
        ));
    }
    lines.push("END:VEVENT".to_string());
    lines.push("END:VCALENDAR".to_string());
    let mut out = String::new();
    for line in &lines {
        content_line(&mut out, line);
    }
    Some(out.into_bytes())
}

pub(crate) struct Card {
    /// The file's name, without the extension.
    pub(crate) name: String,
    pub(crate) data: Vec<u8>,
}

/// An e-mail address as a contact holds it, when it is one: an Exchange
/// address (`/o=…/cn=…`) or a display name is not.
fn smtp_address(v: Option<&str>) -> Option<&str> {
    let v = v?.trim();
    (v.contains('@') && !v.starts_with('/') && !v.chars().any(char::is_whitespace)).then_some(v)
}

/// A contact as a vCard 3.0 (RFC 2426, escaped and folded as RFC 6350
/// says; 3.0 is what every address book imports, Outlook's too): FN and N
/// from the display name and its parts, ORG, TITLE, EMAIL, TEL, NOTE from
/// the plain body. `label` is the attachment's title, the name when the
/// contact has no other. `None` when nothing names the person.
pub(crate) fn vcard(c: &ContactProps, note: &str, label: Option<&str>) -> Option<Card> {
    let clean = |v: &Option<String>| -> Option<String> {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let emails = (0..3).filter_map(|i| {
        smtp_address(c.email[i].as_deref()).or_else(|| smtp_address(c.email_original[i].as_deref()))
    });
    let mut addresses: Vec<&str> = Vec::new();
    for e in emails {
        if !addresses.iter().any(|a| a.eq_ignore_ascii_case(e)) {
            addresses.push(e);
        }
    }
    let phones: Vec<(&str, String)> = [
        ("WORK,VOICE", &c.business_phone),
        ("HOME,VOICE", &c.home_phone),
        ("CELL", &c.mobile_phone),
    ]
    .into_iter()
    .filter_map(|(kind, v)| Some((kind, clean(v)?)))
    .collect();
    let n = [&c.surname, &c.given, &c.middle, &c.prefix, &c.suffix].map(clean);
    let composed = [&n[3], &n[1], &n[2], &n[0], &n[4]]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    let label = label.map(str::trim).filter(|l| !l.is_empty());
    let full_name = clean(&c.display_name)
        .or_else(|| (!composed.is_empty()).then_some(composed))
        .or_else(|| label.map(str::to_string))
        .or_else(|| clean(&c.company))
        .or_else(|| addresses.first().map(|a| a.to_string()))?;
    let mut lines = vec![
        "BEGIN:VCARD".to_string(),
        "VERSION:3.0".to_string(),
        "PRODID:-//jobmail//winmail.dat//EN".to_string(),
    ];
    let structured = |values: &[Option<String>]| -> String {
        values
            .iter()
            .map(|v| text_value(v.as_deref().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(";")
    };
    // N is required in 3.0: surname; given; middle; prefix; suffix.
    lines.push(format!("N:{}", structured(&n)));
    lines.push(format!("FN:{}", text_value(&full_name)));
    let org = [clean(&c.company), clean(&c.department)];
    if org[0].is_some() || org[1].is_some() {
        let org = if org[1].is_some() {
            &org[..]
        } else {
            &org[..1]
        };
        lines.push(format!("ORG:{}", structured(org)));
    }
    if let Some(title) = clean(&c.title) {
        lines.push(format!("TITLE:{}", text_value(&title)));
    }
    for (i, address) in addresses.iter().enumerate() {
        let pref = if i == 0 { ",PREF" } else { "" };
        lines.push(format!("EMAIL;TYPE=INTERNET{pref}:{}", text_value(address)));
    }
    for (kind, number) in &phones {
        lines.push(format!("TEL;TYPE={kind}:{}", text_value(number)));
    }
    if !note.trim().is_empty() {
        lines.push(format!("NOTE:{}", text_value(note.trim_end())));
    }
    lines.push("END:VCARD".to_string());
    let mut out = String::new();
    for line in &lines {
        content_line(&mut out, line);
    }
    Some(Card {
        name: label.map(str::to_string).unwrap_or(full_name),
        data: out.into_bytes(),
    })
}
