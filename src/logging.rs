//! The daemon's log lines: one line per event, `LEVEL text key=value …`,
//! so that `grep 'message=12'`, `grep 'item=45'` or `grep 'session=…'`
//! finds every line about one mail (README, "The log").
//!
//! tracing's own formatter prints a field named `message` without its key
//! (it is the event's text there), so a mail's id would read as bare `12`.
//! Here the text is the format string only; an integer `message` field is
//! the id and printed `message=12`. Values with spaces, quotes or control
//! characters are quoted and escaped, so an upstream's reply or a client's
//! HELO can never start a line of its own. Under systemd (`JOURNAL_STREAM`)
//! the time stamp is left to journald and each line starts with its
//! syslog priority (`<4>`), so `journalctl -p warning` works.
//!
//! It formats what it is given; what may be logged at all (never a
//! password, token, key or message body) is each call site's rule, checked
//! end to end by `daemon::log::no_secret_reaches_a_log_line`.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter (see the module comment).
#[derive(Debug, Clone, Copy, Default)]
pub struct Lines {
    /// Writing to journald: no time stamp, a syslog priority prefix.
    pub journal: bool,
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = Line::default();
        event.record(&mut line);
        let level = *event.metadata().level();
        let head = if self.journal {
            format!("{}{level}", priority(level))
        } else {
            format!(
                "{} {level:>5}",
                crate::clock::rfc3339_ms(crate::clock::now_ms())
            )
        };
        writeln!(writer, "{}", line.render(&head))
    }
}

/// The syslog priority journald reads from a line's start (sd-daemon(3)).
fn priority(level: Level) -> &'static str {
    match level {
        Level::ERROR => "<3>",
        Level::WARN => "<4>",
        Level::INFO => "<6>",
        Level::DEBUG | Level::TRACE => "<7>",
    }
}

/// One event's text and its fields, in the order given.
#[derive(Debug, Default)]
pub struct Line {
    text: String,
    fields: String,
}

impl Line {
    /// `head text key=value …` on one line.
    pub fn render(&self, head: &str) -> String {
        let mut out = String::with_capacity(head.len() + self.text.len() + self.fields.len() + 2);
        out.push_str(head);
        if !self.text.is_empty() {
            out.push(' ');
            out.push_str(&self.text);
        }
        out.push_str(&self.fields);
        out
    }

    fn field(&mut self, name: &str, value: &str) {
        // tracing-log's bookkeeping of a `log` record (rustls logs that way):
        // its target says where it came from, the rest is noise.
        let name = match name {
            "log.target" => "target",
            n if n.starts_with("log.") => return,
            n => n,
        };
        let _ = write!(self.fields, " {name}={}", quoted(value));
    }
}

impl Visit for Line {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field.name(), &value.to_string());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field.name(), &value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field.name(), if value { "true" } else { "false" });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text = one_line(value);
        } else {
            self.field(field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.text = one_line(&text);
        } else {
            self.field(field.name(), &text);
        }
    }
}

/// The text with every control character escaped: it stays one line.
fn one_line(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A value as it goes after `key=`: bare when it is one word of printable
/// characters, else in double quotes with `"`, `\` and control characters
/// escaped. A value `{:?}` already quoted (a string's Debug) stays as it is.
pub fn quoted(value: &str) -> String {
    let debug_quoted = value.len() >= 2
        && value.starts_with('"')
        && value.ends_with('"')
        && !value.chars().any(char::is_control);
    if debug_quoted {
        return value.to_string();
    }
    let bare = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\');
    if bare {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&c.escape_default().to_string()),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// The lines a closure logs, formatted by [`Lines`].
    fn logged(journal: bool, f: impl FnOnce()) -> String {
        #[derive(Clone)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer(Arc::new(Mutex::new(Vec::new())));
        let out = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::DEBUG)
            .with_writer(move || out.clone())
            .event_format(Lines { journal })
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_mail_id_named_message_is_printed_with_its_key() {
        let message = 12_i64;
        let text = logged(true, || {
            tracing::info!(message, session = "19A", size = 812_u64, "stored");
        });
        assert_eq!(text, "<6>INFO stored message=12 session=19A size=812\n");
    }

    #[test]
    fn values_with_spaces_quotes_or_line_breaks_are_quoted_and_stay_on_one_line() {
        let reply = "250 2.0.0 Ok: \"queued\"\r\nINFO forged line";
        let text = logged(true, || {
            tracing::warn!(item = 45, reply = %reply, helo = ?"a b", empty = "", "delivery\nattempt");
        });
        assert_eq!(
            text,
            "<4>WARN delivery\\nattempt item=45 reply=\"250 2.0.0 Ok: \\\"queued\\\"\\r\\nINFO forged line\" helo=\"a b\" empty=\"\"\n"
        );
        assert_eq!(text.lines().count(), 1);
    }

    #[test]
    fn outside_journald_a_line_starts_with_its_time_and_level() {
        let text = logged(false, || tracing::error!(code = 451, "store failed"));
        let (time, rest) = text.split_once(' ').unwrap();
        assert!(time.ends_with('Z') && time.contains('T'), "{text}");
        assert_eq!(rest, "ERROR store failed code=451\n");
    }
}
