//! The outgoing message: RFC 5322 bytes built with mail-builder from a
//! rendered template, the sender and its signature, the candidate, the
//! thread headers and the files to attach.
//!
//! Pure: everything comes in as values. Nothing from outside reaches a
//! header unchecked: names are single-line, Message-IDs taken from inbound
//! mail are validated, bodies get CRLF line endings (no bare CR or LF can
//! reach the SMTP transaction), and a message over the size limit is refused
//! here, before anything is queued.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;

use crate::mail::message_id::valid_message_id;
use crate::outbound::render::single_line;
use crate::outbound::template::FileAttachment;

/// A mailbox for a header: display name (may be empty) and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub name: String,
    pub address: String,
}

/// Everything one outgoing mail is made of.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub from: Party,
    pub to: Party,
    /// The candidate's signed reply address.
    pub reply_to: String,
    /// Without angle brackets.
    pub message_id: String,
    /// The candidate's mail this answers (validated, brackets removed).
    pub in_reply_to: Option<String>,
    /// The thread's ids; our own Message-ID is appended by `build`.
    pub references: Vec<String>,
    pub subject: String,
    /// Unix seconds.
    pub date: i64,
    pub text: String,
    pub html: Option<String>,
    pub attachments: Vec<FileAttachment>,
    /// `Auto-Submitted:` value for automatic mail (RFC 3834), if any.
    pub auto_submitted: Option<&'static str>,
    /// `X-Loop:` value: our mark on automatic mail, so that it is never answered automatically.
    pub loop_marker: Option<String>,
}

/// Why a mail could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError(pub String);

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}

/// Most thread ids carried in References (the root and the newest).
const MAX_REFERENCES: usize = 20;

/// Text with CRLF line endings only.
pub fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n")
}

/// The text body with the signature after the usual `-- ` line.
pub fn sign_text(text: &str, signature: Option<&str>) -> String {
    let body = text.trim_end_matches(['\r', '\n']);
    match signature.map(str::trim).filter(|s| !s.is_empty()) {
        Some(sig) => format!("{body}\n\n-- \n{sig}\n"),
        None => format!("{body}\n"),
    }
}

/// The HTML body with the signature appended (inside `</body>` if there is one).
pub fn sign_html(html: &str, signature_html: Option<&str>, signature_text: Option<&str>) -> String {
    let block = match (signature_html, signature_text) {
        (Some(h), _) if !h.trim().is_empty() => h.to_string(),
        (_, Some(t)) if !t.trim().is_empty() => format!(
            "<p>-- <br>{}</p>",
            escape_html(t.trim()).replace('\n', "<br>\n")
        ),
        _ => return html.to_string(),
    };
    let signature = format!("<div class=\"signature\">{block}</div>");
    match html.rfind("</body>") {
        Some(pos) => format!("{}{signature}\n{}", &html[..pos], &html[pos..]),
        None => format!("{html}\n{signature}\n"),
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn address(p: &Party) -> Address<'static> {
    let name = single_line(&p.name);
    if name.is_empty() {
        Address::new_address(None::<String>, p.address.clone())
    } else {
        Address::new_address(Some(name), p.address.clone())
    }
}

/// Builds the message; refuses one larger than `max_size` bytes.
pub fn build(mail: &OutgoingMail, max_size: u64) -> Result<Vec<u8>, BuildError> {
    for (what, a) in [
        ("From", &mail.from.address),
        ("To", &mail.to.address),
        ("Reply-To", &mail.reply_to),
    ] {
        if crate::mail::address::Address::parse(a).is_err() && !a.contains('@') {
            return Err(BuildError(format!("{what} address {a:?} is not valid")));
        }
        if a.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(BuildError(format!("{what} address {a:?} is not valid")));
        }
    }
    let own = valid_message_id(&mail.message_id)
        .ok_or_else(|| BuildError(format!("Message-ID {:?} is not valid", mail.message_id)))?
        .to_string();
    let mut references: Vec<String> = mail
        .references
        .iter()
        .filter_map(|r| valid_message_id(r).map(str::to_string))
        .collect();
    if references.len() > MAX_REFERENCES {
        let keep_from = references.len() - (MAX_REFERENCES - 1);
        let root = references[0].clone();
        references = std::iter::once(root)
            .chain(references.drain(keep_from..))
            .collect();
    }
    // Our own id in References, even on a first mail: a reply still matches
    // when the sender's provider rewrites our Message-ID on the way out.
    if !references.contains(&own) {
        references.push(own.clone());
    }
    let mut builder = MessageBuilder::new()
        .from(address(&mail.from))
        .to(address(&mail.to))
        .reply_to(Address::new_address(None::<String>, mail.reply_to.clone()))
        .message_id(own.clone())
        .references(MessageId::new_list(references.iter().map(|r| r.as_str())))
        .subject(single_line(&mail.subject))
        .date(mail.date)
        .text_body(crlf(&mail.text));
    if let Some(id) = mail.in_reply_to.as_deref().and_then(valid_message_id) {
        builder = builder.in_reply_to(id.to_string());
    }
    if let Some(html) = &mail.html {
        builder = builder.html_body(crlf(html));
    }
    if let Some(value) = mail.auto_submitted {
        builder = builder.header("Auto-Submitted", Raw::new(value));
    }
    if let Some(value) = mail
        .loop_marker
        .as_deref()
        .filter(|v| crate::mail::address::Address::parse(v).is_ok())
    {
        builder = builder.header("X-Loop", Raw::new(value.to_string()));
    }
    for a in &mail.attachments {
        builder = builder.attachment(
            a.content_type.clone(),
            crate::mail::filename::sanitize_filename(&a.filename, &a.content_type),
            a.bytes.clone(),
        );
    }
    let bytes = builder
        .write_to_vec()
        .map_err(|e| BuildError(format!("cannot build the message: {e}")))?;
    if bytes.len() as u64 > max_size {
        return Err(BuildError(format!(
            "the mail would be {} bytes, over the limit of {max_size} bytes (attachments: {})",
            bytes.len(),
            mail.attachments
                .iter()
                .map(|a| a.filename.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> OutgoingMail {
        OutgoingMail {
            from: Party {
                name: "ACME Recruiting".into(),
                address: "jobs@acme.example".into(),
            },
            to: Party {
                name: "Erika Mustermann".into(),
                address: "erika@example.org".into(),
            },
            reply_to: "jobs+1.abcdefghijklm@acme.example".into(),
            message_id: "jobmail.1@acme.example".into(),
            in_reply_to: Some("<cand-1@example.org>".into()),
            references: vec!["cand-0@example.org".into(), "cand-1@example.org".into()],
            subject: "Ihre Bewerbung [#1AB]".into(),
            date: 1_795_600_000,
            text: "Hallo,\n.\nzweite Zeile\r\nEnde".into(),
            html: Some("<p>Hallo</p>".into()),
            attachments: vec![FileAttachment {
                filename: "Anfahrt.pdf".into(),
                content_type: "application/pdf".into(),
                bytes: b"%PDF-1.4\n%\xe2\xe3\n".to_vec(),
            }],
            auto_submitted: None,
            loop_marker: None,
        }
    }

    #[test]
    fn builds_a_threaded_message_that_parses_back() {
        let bytes = build(&mail(), 10 << 20).unwrap();
        let p = crate::inbound::parse::parse_message(&bytes, false);
        let h = &p.headers;
        assert_eq!(h.message_id.as_deref(), Some("jobmail.1@acme.example"));
        assert_eq!(h.in_reply_to, vec!["cand-1@example.org"]);
        assert_eq!(
            h.references,
            vec![
                "cand-0@example.org",
                "cand-1@example.org",
                "jobmail.1@acme.example"
            ]
        );
        assert_eq!(h.subject.as_deref(), Some("Ihre Bewerbung [#1AB]"));
        assert_eq!(h.reply_to[0].address, "jobs+1.abcdefghijklm@acme.example");
        assert_eq!(
            p.documents
                .iter()
                .find(|d| d.filename == "Anfahrt.pdf")
                .map(|d| d.bytes.clone()),
            Some(b"%PDF-1.4\n%\xe2\xe3\n".to_vec())
        );
        // Only CRLF line endings: nothing for SMTP to misread.
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' {
                assert_eq!(bytes[i - 1], b'\r', "bare LF at {i}");
            }
            if b == b'\r' {
                assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR at {i}");
            }
        }
    }

    /// The names of a message's top-level headers, in order.
    fn header_names(bytes: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(bytes);
        let head = text.split("\r\n\r\n").next().unwrap_or("");
        head.split("\r\n")
            .filter(|l| !l.starts_with(' ') && !l.starts_with('\t'))
            .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_ascii_lowercase()))
            .collect()
    }

    #[test]
    fn hostile_data_cannot_inject_headers() {
        let mut m = mail();
        m.to.name = "Eve\r\nBcc: victim@example.org\r\n.\r\nRCPT TO:<x@y>".into();
        m.subject = format!("Hi\r\nX-Injected: yes {}", "ä".repeat(10_000));
        m.in_reply_to = Some("evil>\r\nBcc: x@y <".into());
        m.references = vec!["a b@c".into(), "ok@example.org".into()];
        m.text = "line\r\n.\r\nMAIL FROM:<x@y>\r\n\u{202e}RTL 😀".into();
        let bytes = build(&m, 10 << 20).unwrap();
        // The same headers as a harmless mail, one each (In-Reply-To dropped
        // as invalid): nothing added, nothing split.
        let mut expected = header_names(&build(&mail(), 10 << 20).unwrap());
        expected.retain(|h| h != "in-reply-to");
        assert_eq!(header_names(&bytes), expected);
        let p = crate::inbound::parse::parse_message(&bytes, false);
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("\r\nBcc:"), "{text}");
        assert!(!text.contains("\r\nX-Injected"), "{text}");
        assert!(p.headers.in_reply_to.is_empty());
        assert_eq!(
            p.headers.references,
            vec!["ok@example.org", "jobmail.1@acme.example"]
        );
        assert_eq!(p.headers.to[0].address, "erika@example.org");
        assert!(
            p.headers
                .subject
                .as_deref()
                .unwrap_or("")
                .starts_with("Hi X-Injected: yes ä")
        );
        // Sent as any SMTP client sends it (dot-stuffed, then CRLF.CRLF), the
        // DATA reader gets back exactly these bytes, and nothing ends early.
        let mut wire = Vec::new();
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                wire.push(b'.');
            }
            wire.extend_from_slice(line);
        }
        wire.extend_from_slice(b".\r\nQUIT\r\n");
        let mut reader = crate::inbound::data::DotReader::new(20 << 20, 0);
        let end = reader.feed(&wire).expect("the end of data");
        assert_eq!(&wire[end..], b"QUIT\r\n");
        let received = reader.finish();
        assert!(!received.bare_line_ending);
        assert_eq!(received.content, bytes);
    }

    #[test]
    fn too_big_is_refused_here() {
        let mut m = mail();
        m.attachments[0].bytes = vec![0u8; 2 << 20];
        let e = build(&m, 1 << 20).unwrap_err();
        assert!(e.0.contains("over the limit"), "{e}");
    }

    #[test]
    fn signatures_are_appended() {
        assert_eq!(
            sign_text("Hallo\n\n", Some("Anna\nACME")),
            "Hallo\n\n-- \nAnna\nACME\n"
        );
        assert_eq!(sign_text("Hallo", None), "Hallo\n");
        let html = sign_html(
            "<html><body><p>Hi</p></body></html>",
            None,
            Some("Anna <HR>"),
        );
        assert!(
            html.contains("Anna &lt;HR&gt;</p></div>\n</body>"),
            "{html}"
        );
        assert!(
            sign_html("<p>x</p>", Some("<b>A</b>"), None)
                .ends_with("<div class=\"signature\"><b>A</b></div>\n")
        );
    }
}
