//! Delivery status notifications (RFC 3464): what a bounce reports, read
//! from a parsed mail: the action, the status code, the diagnostic, the
//! recipient, and the Message-ID of the mail that bounced.
//!
//! Pure; works on the documents the parser already extracted (the
//! `message/delivery-status` part and the returned message or headers).

use serde::Serialize;

use crate::mail::parsed::ParsedMessage;

/// What a delivery report says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// `failed`, `delayed`, `delivered`, `relayed`, `expanded`.
    pub action: String,
    /// The enhanced status code, e.g. `5.1.1`.
    pub status: Option<String>,
    /// The remote server's words, e.g. `550 5.1.1 <x@y>: Recipient address rejected`.
    pub diagnostic: Option<String>,
    /// The recipient it is about (Final-Recipient, else Original-Recipient).
    pub recipient: Option<String>,
    /// Message-ID of the mail that bounced, from the returned message or headers.
    pub original_message_id: Option<String>,
}

/// How a report counts for the mail it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Permanent failure (5.x.x): the address goes on the suppression list.
    Hard,
    /// Failed for a temporary reason (4.x.x) in the end: bounced, not suppressed.
    Soft,
    /// Delayed, relayed, delivered: not a failure.
    Notice,
}

impl Report {
    pub fn kind(&self) -> Kind {
        if !self.action.eq_ignore_ascii_case("failed") {
            return Kind::Notice;
        }
        match self.status.as_deref().and_then(|s| s.chars().next()) {
            Some('5') => Kind::Hard,
            _ => Kind::Soft,
        }
    }

    /// One line for the queue and the thread.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} {}",
            self.action,
            self.status.as_deref().unwrap_or("(no status)")
        );
        if let Some(r) = &self.recipient {
            s.push_str(&format!(" for {r}"));
        }
        if let Some(d) = &self.diagnostic {
            s.push_str(&format!(": {d}"));
        }
        s
    }
}

/// Header-style fields of one block: (name lowercased, value), folded lines joined.
fn fields(block: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    out
}

/// `rfc822; x@y` → `x@y`; `smtp; 550 …` → `550 …`.
fn after_type(value: &str) -> String {
    value
        .split_once(';')
        .map(|(_, v)| v)
        .unwrap_or(value)
        .trim()
        .to_string()
}

fn message_id_in(headers: &str) -> Option<String> {
    let head = headers.split("\r\n\r\n").next().unwrap_or(headers);
    let head = head.split("\n\n").next().unwrap_or(head);
    fields(head)
        .into_iter()
        .find(|(n, _)| n == "message-id")
        .and_then(|(_, v)| {
            let v = v.trim();
            let inner = v
                .strip_prefix('<')
                .and_then(|x| x.split('>').next())
                .unwrap_or(v);
            crate::mail::message_id::valid_message_id(inner).map(str::to_string)
        })
}

/// The report of a delivery status notification, if the mail is one.
pub fn read(parsed: &ParsedMessage) -> Option<Report> {
    if !parsed.headers.delivery_report {
        return None;
    }
    let status_part = parsed.documents.iter().find(|d| {
        matches!(
            d.content_type.as_str(),
            "message/delivery-status" | "message/global-delivery-status"
        )
    })?;
    let text = String::from_utf8_lossy(&status_part.bytes).replace("\r\n", "\n");
    let mut report = Report::default();
    // The first block is about the message; the next ones about recipients.
    for block in text.split("\n\n").skip(1) {
        let f = fields(block);
        let get = |name: &str| f.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        if let Some(action) = get("action") {
            report.action = action.trim().to_ascii_lowercase();
            report.status =
                get("status").map(|s| s.split_whitespace().next().unwrap_or("").to_string());
            report.diagnostic = get("diagnostic-code").map(|d| after_type(&d));
            report.recipient = get("final-recipient")
                .or_else(|| get("original-recipient"))
                .map(|r| after_type(&r));
            break;
        }
    }
    if report.action.is_empty() {
        return None;
    }
    report.original_message_id = parsed
        .documents
        .iter()
        .filter(|d| {
            matches!(
                d.content_type.as_str(),
                "message/rfc822"
                    | "text/rfc822-headers"
                    | "message/global"
                    | "message/global-headers"
            )
        })
        .find_map(|d| message_id_in(&String::from_utf8_lossy(&d.bytes)));
    Some(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_postfix_bounce() {
        let raw = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/dsn-bounce.eml"
        ));
        let parsed = crate::inbound::parse::parse_message(raw, true);
        let r = read(&parsed).expect("a report");
        assert_eq!(r.action, "failed");
        assert_eq!(r.kind(), Kind::Hard);
        assert!(r.status.as_deref().unwrap_or("").starts_with('5'), "{r:?}");
        assert!(r.recipient.as_deref().unwrap_or("").contains('@'), "{r:?}");
        assert!(r.original_message_id.is_some(), "{r:?}");
    }

    #[test]
    fn delays_are_no_failures() {
        let r = Report {
            action: "delayed".into(),
            status: Some("4.4.7".into()),
            ..Default::default()
        };
        assert_eq!(r.kind(), Kind::Notice);
        let r = Report {
            action: "failed".into(),
            status: Some("4.4.7".into()),
            ..Default::default()
        };
        assert_eq!(r.kind(), Kind::Soft);
        let plain = crate::inbound::parse::parse_message(
            b"From: a@b.example\r\nSubject: x\r\n\r\nx\r\n",
            false,
        );
        assert_eq!(read(&plain), None);
    }
}
