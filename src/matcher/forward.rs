//! Recovers the original author of a mail that a colleague forwarded inline.
//!
//! When a mail is forwarded inline (not as an attached `message/rfc822`), the
//! mail client writes a header block of the original mail into the body:
//! Gmail's `---------- Forwarded message ---------`, Outlook's
//! `-----Original Message-----` or line of underscores, Apple Mail's
//! `Begin forwarded message:`, Thunderbird's `-------- Forwarded Message
//! --------`, in English, German and French. This module finds the first
//! (outermost) such block in a plain-text body and reads its `From:` / `Von:`
//! / `De :` line; it also tells whether a subject says "forwarded".
//!
//! Pure: no I/O, no allocation beyond small strings, never panics (no slicing
//! at unchecked indices, no unwrap on input-derived data), and does bounded
//! work on any input: only the first 256 KiB of the text are read, lines
//! longer than 1,000 bytes are skipped, and every look-ahead is capped, so the
//! cost is linear in the inspected prefix.

use crate::mail::parsed::Mailbox;

/// Only this much of a body is inspected.
const MAX_TEXT: usize = 256 * 1024;
/// Longer lines are not headers a client wrote; they are skipped.
const MAX_LINE: usize = 1000;
/// The `From` line must be among this many non-empty lines after the separator.
const WINDOW: usize = 12;
/// Hard cap on the lines (blank or not) read after a separator.
const RAW_WINDOW: usize = 100;
/// Longest header name that is looked up (`Weitergeleitet`, `Gesendet`, …).
const MAX_KEY: usize = 24;
/// Subjects are read this far at most.
const MAX_SUBJECT: usize = 1024;

/// What the forwarded block says about the original author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarded {
    /// The block names the author with an address.
    Author(Mailbox),
    /// There is a forwarded block, but its From line has no usable address
    /// (Outlook with an Exchange contact writes only "Von: Max Mustermann").
    AuthorUnknown,
}

/// Finds the first (outermost) inline forwarded block in a plain-text body and returns its author; `None` when the text holds no forwarded block.
///
/// A block starts with a separator or intro line (Gmail, Outlook, Apple Mail,
/// Thunderbird; English, German, French; `> ` quote prefixes allowed), or
/// with an Outlook header block without separator (`From:` followed by
/// `Sent:`/`To:`/`Subject:` lines, as Outlook's HTML-to-text rendering
/// writes it). A line of underscores counts only when a header line follows
/// it (otherwise it is a signature rule). The author is the first
/// `From:`/`Von:`/`De :` line within the next 12 non-empty lines; without one,
/// or without a plausible address on it, the result is
/// [`Forwarded::AuthorUnknown`].
pub fn inline_forward(text: &str) -> Option<Forwarded> {
    find_block(text).map(|(_, author)| author)
}

/// Where the first (outermost) inline forwarded block starts: the byte
/// offset in `text` of its separator, intro or first header line, as
/// [`inline_forward`] finds it; `None` when the text holds no such block.
/// Everything from there on was written by someone else.
pub fn inline_forward_start(text: &str) -> Option<usize> {
    find_block(text).map(|(start, _)| start)
}

fn find_block(text: &str) -> Option<(usize, Forwarded)> {
    let text = head(text, MAX_TEXT);
    let base = text.as_ptr() as usize;
    let mut lines = text.lines();
    while let Some(raw) = lines.next() {
        let Line::Text(line) = classify(raw) else {
            continue;
        };
        // `raw` is a subslice of `text`: its offset is in bounds.
        let start = raw.as_ptr() as usize - base;
        if is_separator(line) || (is_rule(line) && next_is_header(lines.clone())) {
            return Some((start, author_in_window(lines)));
        }
        if let Some((Key::From, value)) = header(line)
            && headers_follow(lines.clone())
        {
            return Some((start, author_from(value, lines)));
        }
    }
    None
}

/// True for a subject that says "forwarded": Fwd:, Fw:, FW:, WG: (German), TR: (French), Wtrlt:, Doorst:, RV: … possibly after Re:/AW: prefixes and `[tags]`.
pub fn is_forward_subject(subject: &str) -> bool {
    let mut s = head(subject, MAX_SUBJECT);
    // Each round consumes at least one character, so this also bounds the work.
    for _ in 0..32 {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('[') {
            // A list or ticket tag: `[Jobs]`, `[EXTERN]`, `[#1K7]`.
            let Some(close) = rest.find(']') else {
                return false;
            };
            s = rest.get(close + 1..).unwrap_or("");
            continue;
        }
        let end = s
            .char_indices()
            .find(|&(_, c)| !c.is_alphabetic())
            .map_or(s.len(), |(i, _)| i);
        if end == 0 || end > 10 {
            return false;
        }
        let Some((word, rest)) = s.split_at_checked(end) else {
            return false;
        };
        let rest = skip_counter(rest).trim_start();
        let Some(rest) = rest.strip_prefix([':', '：']) else {
            return false;
        };
        let word = word.to_lowercase();
        if FORWARD_PREFIXES.contains(&word.as_str()) {
            return true;
        }
        if !REPLY_PREFIXES.contains(&word.as_str()) {
            return false;
        }
        s = rest;
    }
    false
}

/// Subject prefixes meaning "forwarded", lowercase: English, German, French,
/// Dutch (`Doorst`, `Wtrlt`), Spanish (`RV`), Portuguese (`Enc`), Swedish
/// (`VB`), Finnish (`VL`), Polish (`PD`).
const FORWARD_PREFIXES: &[&str] = &[
    "fwd", "fw", "wg", "tr", "trans", "wtrlt", "doorst", "rv", "enc", "vb", "vl", "pd",
];

/// Subject prefixes meaning "reply", lowercase; skipped before a forward prefix.
const REPLY_PREFIXES: &[&str] = &[
    "re", "aw", "antw", "antwort", "sv", "vs", "r", "rif", "res", "ref", "odp", "rép", "rep",
];

/// Skips a reply counter right after a prefix: `Re[2]:`, `AW(3):`.
fn skip_counter(s: &str) -> &str {
    for (open, close) in [('[', ']'), ('(', ')')] {
        if let Some(rest) = s.strip_prefix(open) {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if (1..=4).contains(&digits)
                && let Some(after) = rest.get(digits..).and_then(|r| r.strip_prefix(close))
            {
                return after;
            }
        }
    }
    s
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn head(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// One body line, seen through its quote prefixes.
enum Line<'a> {
    Blank,
    TooLong,
    Text(&'a str),
}

fn classify(raw: &str) -> Line<'_> {
    if raw.len() > MAX_LINE {
        return Line::TooLong;
    }
    let line = unquote(raw);
    if line.is_empty() {
        Line::Blank
    } else {
        Line::Text(line)
    }
}

/// Removes `>` quote prefixes (`> `, `>> `, `> > `) and surrounding whitespace.
fn unquote(raw: &str) -> &str {
    let mut s = raw.trim();
    while let Some(rest) = s.strip_prefix('>') {
        s = rest.trim_start();
    }
    s
}

/// Separator lines whose phrase is framed by dashes, normalised (lowercase,
/// single spaces, straight apostrophe).
const DASHED_PHRASES: &[&str] = &[
    // Gmail, Thunderbird, Yahoo (English).
    "forwarded message",
    "forwarded e-mail",
    // Gmail, Thunderbird (German); GMX, Web.de, T-Online.
    "weitergeleitete nachricht",
    "original-nachricht",
    // Gmail, Thunderbird (French).
    "message transféré",
    "message transfere",
    // Outlook plain text (English, German, French).
    "original message",
    "ursprüngliche nachricht",
    "message d'origine",
    // Outlook (Dutch, Spanish, Italian).
    "doorgestuurd bericht",
    "oorspronkelijk bericht",
    "mensaje reenviado",
    "mensaje original",
    "messaggio inoltrato",
    "messaggio originale",
];

/// Intro lines (Apple Mail), normalised, without the trailing colon.
const INTRO_PHRASES: &[&str] = &[
    "begin forwarded message",
    "anfang der weitergeleiteten nachricht",
    "début du message réexpédié",
    "debut du message reexpedie",
    "début du message transféré",
];

/// True for a separator or intro line that opens a forwarded block.
fn is_separator(line: &str) -> bool {
    let is_frame = |c: char| matches!(c, '-' | '=' | '–' | '—') || c.is_whitespace();
    let framed = line.starts_with("--") || line.starts_with("==");
    let core = line.trim_matches(is_frame);
    let core = core.strip_suffix(':').unwrap_or(core).trim_end();
    if core.is_empty() || core.len() > 64 {
        return false;
    }
    let norm = normalise(core);
    (framed && DASHED_PHRASES.contains(&norm.as_str())) || INTRO_PHRASES.contains(&norm.as_str())
}

/// Lowercase, whitespace runs as one space, typographic apostrophe as `'`.
fn normalise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        if c == '’' {
            out.push('\'');
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// A line of underscores, as Outlook writes above a forwarded header block
/// (and as many people write above a signature).
fn is_rule(line: &str) -> bool {
    line.len() >= 8 && line.bytes().all(|b| b == b'_')
}

/// Header names of a forwarded block: the author, or any other field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    From,
    Other,
}

fn key_of(word: &str) -> Option<Key> {
    match word.to_lowercase().as_str() {
        "from" | "von" | "de" | "van" => Some(Key::From),
        "sent" | "date" | "datum" | "gesendet" | "envoyé" | "envoye" | "verzonden" | "to"
        | "an" | "à" | "aan" | "cc" | "kopie" | "subject" | "betreff" | "objet" | "onderwerp"
        | "reply-to" => Some(Key::Other),
        _ => None,
    }
}

/// Reads `Key: value` at the start of a line. Allows the French space before
/// the colon (also U+00A0 / U+202F), a tab after it (Thunderbird), and bold
/// markers from HTML-to-text conversion (`*From:*`, `**Von**:`).
fn header(line: &str) -> Option<(Key, &str)> {
    let s = line.trim_start_matches('*');
    let end = s
        .char_indices()
        .find(|&(_, c)| !(c.is_alphabetic() || c == '-'))
        .map_or(s.len(), |(i, _)| i);
    if end == 0 || end > MAX_KEY {
        return None;
    }
    let (word, rest) = s.split_at_checked(end)?;
    let rest = rest.trim_start_matches('*').trim_start();
    let value = rest.strip_prefix(':')?;
    let key = key_of(word)?;
    Some((key, value.trim_start_matches('*').trim()))
}

/// The next non-empty line is a header line (checked after a line of underscores).
fn next_is_header<'a>(lines: impl Iterator<Item = &'a str>) -> bool {
    for raw in lines.take(RAW_WINDOW) {
        match classify(raw) {
            Line::Blank => continue,
            Line::TooLong => return false,
            Line::Text(line) => return header(line).is_some(),
        }
    }
    false
}

/// After a `From:` line without separator: at least two of the next three
/// non-empty lines are header lines (`Sent:`, `To:`, `Subject:` …), so this
/// is a header block and not a sentence that starts with "From:".
fn headers_follow<'a>(lines: impl Iterator<Item = &'a str>) -> bool {
    let mut seen = 0;
    let mut headers = 0;
    for raw in lines.take(RAW_WINDOW) {
        match classify(raw) {
            Line::Blank => continue,
            Line::TooLong => return false,
            Line::Text(line) => {
                seen += 1;
                if matches!(header(line), Some((Key::Other, _))) {
                    headers += 1;
                }
            }
        }
        if headers >= 2 {
            return true;
        }
        if seen >= 3 {
            break;
        }
    }
    false
}

/// Looks for the author line in the window after a separator.
fn author_in_window<'a>(mut lines: impl Iterator<Item = &'a str> + Clone) -> Forwarded {
    let mut seen = 0;
    for _ in 0..RAW_WINDOW {
        let Some(raw) = lines.next() else {
            break;
        };
        let line = match classify(raw) {
            Line::Blank => continue,
            Line::TooLong => {
                seen += 1;
                if seen >= WINDOW {
                    break;
                }
                continue;
            }
            Line::Text(line) => line,
        };
        seen += 1;
        if seen > WINDOW || is_separator(line) || is_rule(line) {
            // A nested block starts before the outer one named its author.
            break;
        }
        if let Some((Key::From, value)) = header(line) {
            return author_from(value, lines);
        }
    }
    Forwarded::AuthorUnknown
}

/// The author from a `From` value; when the value has a name but no address,
/// an address alone on the next line (`<a@b>`, `[mailto:a@b]`) completes it.
fn author_from<'a>(value: &str, lines: impl Iterator<Item = &'a str>) -> Forwarded {
    if let Some(mailbox) = parse_mailbox(value) {
        return Forwarded::Author(mailbox);
    }
    for raw in lines.take(4) {
        match classify(raw) {
            Line::Blank => continue,
            Line::TooLong => break,
            Line::Text(line) => {
                let standalone = line.starts_with(['<', '['])
                    || line
                        .get(..7)
                        .is_some_and(|p| p.eq_ignore_ascii_case("mailto:"));
                if standalone
                    && header(line).is_none()
                    && let Some(found) = parse_mailbox(line)
                {
                    return Forwarded::Author(Mailbox {
                        name: found.name.or_else(|| clean_name(value)),
                        address: found.address,
                    });
                }
                break;
            }
        }
    }
    Forwarded::AuthorUnknown
}

/// Parses the value of a `From` line: `Name <a@b>`, `Name [mailto:a@b]`,
/// `Name <mailto:a@b>`, `Name <a@b> <mailto:a@b>`, `Name <a@b<mailto:a@b>>`,
/// `a@b`, `a@b (Name)`. `None` without a plausible address.
fn parse_mailbox(value: &str) -> Option<Mailbox> {
    // An address in angle or square brackets; the name is what precedes it.
    for (open, _) in value.match_indices(['<', '[']) {
        let Some(after) = value.get(open + 1..) else {
            continue;
        };
        let inner = after.split(['<', '>', '[', ']']).next().unwrap_or("");
        if let Some(address) = plausible_address(strip_mailto(inner.trim())) {
            let name = value.get(..open).and_then(clean_name);
            return Some(Mailbox { name, address });
        }
    }
    // A bare address outside any bracket; the name precedes it or follows
    // in parentheses.
    let mut offset = 0;
    let mut depth = 0usize;
    for token in value.split_inclusive(char::is_whitespace) {
        let start = offset;
        offset += token.len();
        let inside = depth > 0;
        for c in token.chars() {
            match c {
                '<' | '[' => depth = depth.saturating_add(1),
                '>' | ']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if inside || !token.contains('@') {
            continue;
        }
        let word = token
            .trim()
            .trim_start_matches(['<', '[', '(', '"', '\'', '„', '“', '‘', '«', '*'])
            .trim_end_matches([
                '>', ']', ')', '"', '\'', '“', '”', '’', '»', '*', '.', ',', ';', ':',
            ]);
        let Some(address) = plausible_address(strip_mailto(word)) else {
            continue;
        };
        let name = value.get(..start).and_then(clean_name).or_else(|| {
            let rest = value.get(offset..)?.trim_start().strip_prefix('(')?;
            clean_name(rest.split(')').next().unwrap_or(""))
        });
        return Some(Mailbox { name, address });
    }
    None
}

/// Removes a `mailto:` scheme and any `?query` after the address.
fn strip_mailto(s: &str) -> &str {
    match s.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("mailto:") => {
            let rest = s.get(7..).unwrap_or("");
            rest.split('?').next().unwrap_or(rest)
        }
        _ => s,
    }
}

/// A syntactically plausible `local@domain` (one `@`, no spaces or specials,
/// a dotted domain of letters, digits and hyphens), with the domain lowercased.
fn plausible_address(s: &str) -> Option<String> {
    if s.len() > 254 {
        return None;
    }
    let (local, domain) = s.split_once('@')?;
    if local.is_empty() || local.len() > 64 || domain.is_empty() || domain.len() > 253 {
        return None;
    }
    let special = |c: char| {
        c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c) || c == '\u{feff}'
    };
    if local.chars().any(special) {
        return None;
    }
    let mut labels = 0;
    let mut last = "";
    for label in domain.split('.') {
        if label.is_empty()
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(|c| c.is_alphanumeric() || c == '-')
        {
            return None;
        }
        labels += 1;
        last = label;
    }
    if labels < 2 || last.chars().count() < 2 || last.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(format!("{local}@{}", domain.to_lowercase()))
}

/// Quote characters and other wrapping trimmed off a display name.
fn is_name_wrapping(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '„' | '“' | '”' | '‘' | '’' | '‚' | '«' | '»' | '*'
        )
}

/// A display name trimmed of quotes, whitespace collapsed, `Last, First`
/// kept as written; `None` when empty or when it is just an address.
fn clean_name(raw: &str) -> Option<String> {
    let trimmed = raw.trim_matches(is_name_wrapping);
    if trimmed.is_empty() {
        return None;
    }
    let name = trimmed.split_whitespace().collect::<Vec<_>>().join(" ");
    if plausible_address(strip_mailto(&name)).is_some() {
        return None;
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn author(name: Option<&str>, address: &str) -> Option<Forwarded> {
        Some(Forwarded::Author(Mailbox {
            name: name.map(str::to_string),
            address: address.to_string(),
        }))
    }

    fn erika() -> Option<Forwarded> {
        author(Some("Erika Mustermann"), "erika@example.org")
    }

    const GMAIL_EN: &str = "Hi team,\n\
        \n\
        please have a look at this application for the backend position.\n\
        \n\
        Best,\n\
        Tom\n\
        \n\
        ---------- Forwarded message ---------\n\
        From: Erika Mustermann <erika@example.org>\n\
        Date: Mon, 3 Jun 2024 at 09:12\n\
        Subject: Application as Backend Developer\n\
        To: <tom@company.example>\n\
        \n\
        \n\
        Dear Sir or Madam,\n\
        \n\
        I am writing to apply for the position of Backend Developer.\n\
        \n\
        Kind regards,\n\
        Erika Mustermann\n";

    const GMAIL_DE: &str = "Hallo zusammen,\n\
        \n\
        anbei eine Bewerbung, die direkt bei mir gelandet ist.\n\
        \n\
        Viele Grüße\n\
        Tom\n\
        \n\
        ---------- Weitergeleitete Nachricht ---------\n\
        Von: Erika Mustermann <erika@example.org>\n\
        Date: Mo., 3. Juni 2024 um 09:12 Uhr\n\
        Subject: Bewerbung als Backend-Entwicklerin\n\
        To: Tom Weber <tom@firma.example>\n\
        \n\
        \n\
        Sehr geehrte Damen und Herren,\n\
        \n\
        hiermit bewerbe ich mich …\n";

    const GMAIL_DE_LOCALISED: &str = "FYI\n\
        \n\
        ---------- Weitergeleitete Nachricht ---------\n\
        Von: Erika Mustermann <erika@example.org>\n\
        Datum: Mo., 3. Juni 2024 um 09:12 Uhr\n\
        Betreff: Bewerbung als Backend-Entwicklerin\n\
        An: Tom Weber <tom@firma.example>\n\
        \n\
        Sehr geehrte Damen und Herren,\n";

    // French typography: U+00A0 before the colon.
    const GMAIL_FR: &str = "Bonjour,\n\
        \n\
        voici une candidature reçue hier.\n\
        \n\
        ---------- Forwarded message ---------\n\
        De\u{a0}: Erika Dupont <Erika.Dupont@Example.FR>\n\
        Date: lun. 3 juin 2024 à 09:12\n\
        Subject: Candidature spontanée\n\
        To: <tom@societe.example>\n\
        \n\
        Madame, Monsieur,\n";

    // U+202F (narrow no-break space) before the colon.
    const GMAIL_FR_LOCALISED: &str = "Pour info.\n\
        \n\
        ---------- Message transféré ---------\n\
        De\u{202f}: Erika Dupont <erika.dupont@example.fr>\n\
        Date\u{202f}: lun. 3 juin 2024 à 09:12\n\
        Subject\u{202f}: Candidature spontanée\n\
        To\u{202f}: <tom@societe.example>\n\
        \n\
        Madame, Monsieur,\n";

    const OUTLOOK_EN_ORIGINAL: &str = "Please see below.\r\n\
        \r\n\
        Tom\r\n\
        \r\n\
        -----Original Message-----\r\n\
        From: Erika Mustermann [mailto:erika@example.org] \r\n\
        Sent: Monday, June 3, 2024 9:12 AM\r\n\
        To: Tom Weber <tom@company.example>\r\n\
        Subject: Application as Backend Developer\r\n\
        \r\n\
        Dear Mr Weber,\r\n";

    const OUTLOOK_EN_RULE: &str = "Could you take a look?\r\n\
        \r\n\
        ________________________________\r\n\
        From: Erika Mustermann <erika@example.org>\r\n\
        Sent: Monday, June 3, 2024 9:12 AM\r\n\
        To: Jobs <jobs@company.example>\r\n\
        Subject: Application\r\n\
        \r\n\
        Hello,\r\n";

    const OUTLOOK_EN_BARE: &str = "FYI\r\n\
        \r\n\
        ________________________________\r\n\
        From: erika@example.org\r\n\
        Sent: Monday, June 3, 2024 9:12 AM\r\n\
        To: Jobs\r\n\
        Subject: Application\r\n\
        \r\n\
        Hello,\r\n";

    const OUTLOOK_DE: &str = "Hallo Jobs-Team,\r\n\
        \r\n\
        bitte übernehmen.\r\n\
        \r\n\
        ________________________________\r\n\
        Von: Mustermann, Erika <erika@example.org>\r\n\
        Gesendet: Montag, 3. Juni 2024 09:12\r\n\
        An: Weber, Tom <tom@firma.example>\r\n\
        Betreff: Bewerbung\r\n\
        \r\n\
        Sehr geehrter Herr Weber,\r\n";

    const OUTLOOK_DE_EXCHANGE: &str = "Zur Info\r\n\
        \r\n\
        -----Ursprüngliche Nachricht-----\r\n\
        Von: Mustermann, Erika \r\n\
        Gesendet: Montag, 3. Juni 2024 09:12\r\n\
        An: Weber, Tom\r\n\
        Betreff: Bewerbung\r\n\
        \r\n\
        Sehr geehrter Herr Weber,\r\n";

    // Outlook's HTML-to-text: no separator line at all, blank lines between.
    const OUTLOOK_DE_NO_SEPARATOR: &str = "Bitte anschauen.\r\n\
        \r\n\
        Von: Mustermann, Erika <erika@example.org>\r\n\
        \r\n\
        Gesendet: Montag, 3. Juni 2024 09:12\r\n\
        \r\n\
        An: Weber, Tom <tom@firma.example>\r\n\
        \r\n\
        Betreff: Bewerbung\r\n\
        \r\n\
        Sehr geehrter Herr Weber,\r\n";

    const OUTLOOK_FR: &str = "Bonjour,\r\n\
        \r\n\
        ________________________________\r\n\
        De : Erika Mustermann <erika@example.org>\r\n\
        Envoyé : lundi 3 juin 2024 09:12\r\n\
        À : Tom Weber <tom@societe.example>\r\n\
        Objet : Candidature\r\n\
        \r\n\
        Madame, Monsieur,\r\n";

    const OUTLOOK_FR_ORIGINAL: &str = "Pour suite à donner.\r\n\
        \r\n\
        -----Message d'origine-----\r\n\
        De\u{a0}: Erika Mustermann <erika@example.org>\r\n\
        Envoyé\u{a0}: lundi 3 juin 2024 09:12\r\n\
        À\u{a0}: Tom Weber\r\n\
        Objet\u{a0}: Candidature\r\n";

    const APPLE_EN: &str = "See below.\n\
        \n\
        Begin forwarded message:\n\
        \n\
        From: Erika Mustermann <erika@example.org>\n\
        Subject: Application as Backend Developer\n\
        Date: 3 June 2024 at 09:12:00 CEST\n\
        To: tom@company.example\n\
        \n\
        Dear Sir or Madam,\n";

    const APPLE_DE: &str = "Von meinem iPhone gesendet\n\
        \n\
        Anfang der weitergeleiteten Nachricht:\n\
        \n\
        Von: „Erika Mustermann“ <erika@example.org>\n\
        Datum: 3. Juni 2024 um 09:12:00 MESZ\n\
        An: tom@firma.example\n\
        Betreff: Bewerbung\n\
        \n\
        Sehr geehrte Damen und Herren,\n";

    const APPLE_FR: &str = "Envoyé de mon iPhone\n\
        \n\
        Début du message réexpédié\u{a0}:\n\
        \n\
        De: Erika Mustermann <erika@example.org>\n\
        Date: 3 juin 2024 à 09:12:00 UTC+2\n\
        À: tom@societe.example\n\
        Objet: Candidature\n\
        \n\
        Madame, Monsieur,\n";

    const THUNDERBIRD_EN: &str = "Forwarding this one to you.\n\
        \n\
        \n\
        -------- Forwarded Message --------\n\
        Subject: \tApplication as Backend Developer\n\
        Date: \tMon, 3 Jun 2024 09:12:00 +0200\n\
        From: \tErika Mustermann <erika@example.org>\n\
        To: \ttom@company.example\n\
        \n\
        \n\
        \n\
        Dear Sir or Madam,\n";

    const THUNDERBIRD_DE: &str = "Hallo,\n\
        \n\
        -------- Weitergeleitete Nachricht --------\n\
        Betreff: \tBewerbung als Backend-Entwicklerin\n\
        Datum: \tMon, 3 Jun 2024 09:12:00 +0200\n\
        Von: \tErika Mustermann <erika@example.org>\n\
        An: \ttom@firma.example\n\
        \n\
        Sehr geehrte Damen und Herren,\n";

    fn samples() -> Vec<&'static str> {
        vec![
            GMAIL_EN,
            GMAIL_DE,
            GMAIL_DE_LOCALISED,
            GMAIL_FR,
            GMAIL_FR_LOCALISED,
            OUTLOOK_EN_ORIGINAL,
            OUTLOOK_EN_RULE,
            OUTLOOK_EN_BARE,
            OUTLOOK_DE,
            OUTLOOK_DE_EXCHANGE,
            OUTLOOK_DE_NO_SEPARATOR,
            OUTLOOK_FR,
            OUTLOOK_FR_ORIGINAL,
            APPLE_EN,
            APPLE_DE,
            APPLE_FR,
            THUNDERBIRD_EN,
            THUNDERBIRD_DE,
        ]
    }

    /// A Gmail-style block with the given From value.
    fn gmail_with_from(from: &str) -> String {
        format!(
            "FYI\n\n---------- Forwarded message ---------\nFrom: {from}\n\
             Date: Mon, 3 Jun 2024 at 09:12\nSubject: Application\nTo: <tom@company.example>\n\nHello,\n"
        )
    }

    #[test]
    fn the_block_starts_at_its_separator_or_first_header() {
        for sample in samples() {
            let start = inline_forward_start(sample).expect("a block");
            let from_there = sample.get(start..).expect("on a char boundary");
            assert_eq!(
                inline_forward(from_there),
                inline_forward(sample),
                "{sample}"
            );
            // Nothing before the start is part of it.
            assert!(
                inline_forward(sample.get(..start).unwrap_or("")).is_none(),
                "{sample}"
            );
        }
        assert_eq!(inline_forward_start("Hello,\nno forward here.\n"), None);
        assert_eq!(
            inline_forward_start("Note.\n\n-----Original Message-----\nFrom: a@b.example\n"),
            Some(7)
        );
    }

    #[test]
    fn gmail_english() {
        assert_eq!(inline_forward(GMAIL_EN), erika());
    }

    #[test]
    fn gmail_german() {
        assert_eq!(inline_forward(GMAIL_DE), erika());
        assert_eq!(inline_forward(GMAIL_DE_LOCALISED), erika());
    }

    #[test]
    fn gmail_french_with_no_break_spaces() {
        assert_eq!(
            inline_forward(GMAIL_FR),
            author(Some("Erika Dupont"), "Erika.Dupont@example.fr")
        );
        assert_eq!(
            inline_forward(GMAIL_FR_LOCALISED),
            author(Some("Erika Dupont"), "erika.dupont@example.fr")
        );
    }

    #[test]
    fn outlook_english_original_message_with_mailto_brackets() {
        assert_eq!(inline_forward(OUTLOOK_EN_ORIGINAL), erika());
    }

    #[test]
    fn outlook_english_underscore_rule() {
        assert_eq!(inline_forward(OUTLOOK_EN_RULE), erika());
    }

    #[test]
    fn outlook_english_address_only() {
        assert_eq!(
            inline_forward(OUTLOOK_EN_BARE),
            author(None, "erika@example.org")
        );
    }

    #[test]
    fn outlook_german_last_first() {
        assert_eq!(
            inline_forward(OUTLOOK_DE),
            author(Some("Mustermann, Erika"), "erika@example.org")
        );
    }

    #[test]
    fn outlook_german_exchange_contact_is_unknown() {
        assert_eq!(
            inline_forward(OUTLOOK_DE_EXCHANGE),
            Some(Forwarded::AuthorUnknown)
        );
    }

    #[test]
    fn outlook_german_header_block_without_separator() {
        assert_eq!(
            inline_forward(OUTLOOK_DE_NO_SEPARATOR),
            author(Some("Mustermann, Erika"), "erika@example.org")
        );
    }

    #[test]
    fn outlook_french() {
        assert_eq!(inline_forward(OUTLOOK_FR), erika());
        assert_eq!(inline_forward(OUTLOOK_FR_ORIGINAL), erika());
    }

    #[test]
    fn apple_mail_english() {
        assert_eq!(inline_forward(APPLE_EN), erika());
    }

    #[test]
    fn apple_mail_german_typographic_quotes() {
        assert_eq!(inline_forward(APPLE_DE), erika());
    }

    #[test]
    fn apple_mail_french() {
        assert_eq!(inline_forward(APPLE_FR), erika());
    }

    #[test]
    fn thunderbird_english_from_not_first() {
        assert_eq!(inline_forward(THUNDERBIRD_EN), erika());
    }

    #[test]
    fn thunderbird_german_from_not_first() {
        assert_eq!(inline_forward(THUNDERBIRD_DE), erika());
    }

    #[test]
    fn quoted_reply_style_forward() {
        let body = "Tom, see below.\n\
            \n\
            On Tue, 4 Jun 2024 at 10:00, Anna <anna@company.example> wrote:\n\
            > FYI\n\
            >\n\
            > ---------- Forwarded message ---------\n\
            > From: Erika Mustermann <erika@example.org>\n\
            > Date: Mon, 3 Jun 2024 at 09:12\n\
            > Subject: Application\n\
            > To: <anna@company.example>\n\
            >\n\
            > Dear Sir or Madam,\n";
        assert_eq!(inline_forward(body), erika());
        let deeper = "Siehe unten\n\
            >> -------- Weitergeleitete Nachricht --------\n\
            >> Betreff: \tBewerbung\n\
            > > Von: \t\"Mustermann, Erika\" <erika@example.org>\n";
        assert_eq!(
            inline_forward(deeper),
            author(Some("Mustermann, Erika"), "erika@example.org")
        );
    }

    #[test]
    fn quoted_names() {
        for from in [
            "\"Erika Mustermann\" <erika@example.org>",
            "'Erika Mustermann' <erika@example.org>",
            "„Erika Mustermann“ <erika@example.org>",
            "“Erika  Mustermann” <erika@example.org>",
        ] {
            assert_eq!(inline_forward(&gmail_with_from(from)), erika(), "{from}");
        }
    }

    #[test]
    fn last_first_name_kept_as_written() {
        assert_eq!(
            inline_forward(&gmail_with_from(
                "\"Mustermann, Erika\" <erika@example.org>"
            )),
            author(Some("Mustermann, Erika"), "erika@example.org")
        );
    }

    #[test]
    fn encoded_looking_name_is_kept_as_written() {
        assert_eq!(
            inline_forward(&gmail_with_from(
                "=?UTF-8?Q?Erika_M=C3=BCller?= <erika@example.org>"
            )),
            author(Some("=?UTF-8?Q?Erika_M=C3=BCller?="), "erika@example.org")
        );
    }

    #[test]
    fn mailto_links_from_html_to_text() {
        for from in [
            "Erika Mustermann <mailto:erika@example.org>",
            "Erika Mustermann <MAILTO:erika@example.org?subject=Hallo>",
            "Erika Mustermann <erika@example.org> <mailto:erika@example.org>",
            "Erika Mustermann <erika@example.org<mailto:erika@example.org>>",
            "Erika Mustermann [mailto:erika@Example.ORG]",
            "*Erika Mustermann* <erika@example.org>",
        ] {
            assert_eq!(inline_forward(&gmail_with_from(from)), erika(), "{from}");
        }
    }

    #[test]
    fn address_alone() {
        for from in [
            "erika@example.org",
            "<erika@example.org>",
            "\"erika@example.org\" <erika@example.org>",
            "erika@example.org<mailto:erika@example.org>",
        ] {
            assert_eq!(
                inline_forward(&gmail_with_from(from)),
                author(None, "erika@example.org"),
                "{from}"
            );
        }
        assert_eq!(
            inline_forward(&gmail_with_from("erika@example.org (Erika Mustermann)")),
            erika()
        );
    }

    #[test]
    fn domain_lowercased_local_part_kept() {
        assert_eq!(
            inline_forward(&gmail_with_from("Erika <Erika.M@Example.ORG>")),
            author(Some("Erika"), "Erika.M@example.org")
        );
    }

    #[test]
    fn implausible_address_is_unknown() {
        for from in [
            "Erika Mustermann",
            "Erika <erika@localhost>",
            "Erika <erika@@example.org>",
            "Erika <er ika@example.org>",
            "Erika <@example.org>",
        ] {
            assert_eq!(
                inline_forward(&gmail_with_from(from)),
                Some(Forwarded::AuthorUnknown),
                "{from}"
            );
        }
    }

    #[test]
    fn address_on_the_line_after_the_name() {
        let body = "FYI\n\n-----Original Message-----\nFrom: Erika Mustermann\n\
                    [mailto:erika@example.org]\nSent: Monday\nTo: Jobs\nSubject: Application\n";
        assert_eq!(inline_forward(body), erika());
    }

    #[test]
    fn separator_without_from_line_is_unknown() {
        let body = "---------- Forwarded message ---------\nDate: Mon, 3 Jun 2024\n\
                    Subject: Application\n\nHello,\nthis is the body.\n";
        assert_eq!(inline_forward(body), Some(Forwarded::AuthorUnknown));
        // The From line is too far below the separator.
        let far = format!(
            "-------- Forwarded Message --------\n{}From: Erika <erika@example.org>\n",
            "some line\n".repeat(WINDOW)
        );
        assert_eq!(inline_forward(&far), Some(Forwarded::AuthorUnknown));
    }

    #[test]
    fn running_prose_is_not_a_forward() {
        let body = "Dear Sir or Madam,\n\
            \n\
            I am applying for the position of Backend Developer. I learned about\n\
            the opening from a former colleague.\n\
            From: my previous employer, Example GmbH, I received an excellent\n\
            reference, which is attached. From: 2019 to 2024 I worked there as a\n\
            developer; Date: of availability is 1 July.\n\
            I forwarded message queues between services and wrote the original\n\
            message broker integration.\n\
            \n\
            Kind regards,\n\
            ______________________\n\
            Erika Mustermann\n\
            erika@example.org\n";
        assert_eq!(inline_forward(body), None);
        assert_eq!(inline_forward(""), None);
    }

    #[test]
    fn nested_forward_outermost_block_wins() {
        let body = "Hallo Jobs,\n\
            \n\
            ---------- Forwarded message ---------\n\
            From: Anna Schmidt <anna.schmidt@company.example>\n\
            Date: Tue, 4 Jun 2024 at 10:00\n\
            Subject: WG: Bewerbung\n\
            To: <tom@company.example>\n\
            \n\
            \n\
            ________________________________\n\
            Von: Mustermann, Erika <erika@example.org>\n\
            Gesendet: Montag, 3. Juni 2024 09:12\n\
            An: Schmidt, Anna <anna.schmidt@company.example>\n\
            Betreff: Bewerbung\n";
        assert_eq!(
            inline_forward(body),
            author(Some("Anna Schmidt"), "anna.schmidt@company.example")
        );
    }

    #[test]
    fn nested_separator_before_outer_from_stops_the_window() {
        let body = "-------- Forwarded Message --------\nSubject: Fwd: x\n\n\
                    -------- Forwarded Message --------\nFrom: Erika <erika@example.org>\n";
        assert_eq!(inline_forward(body), Some(Forwarded::AuthorUnknown));
    }

    #[test]
    fn only_the_first_256_kib_are_read() {
        let mut body = "x".repeat(MAX_TEXT);
        body.push('\n');
        body.push_str(GMAIL_EN);
        assert_eq!(inline_forward(&body), None);
        // A multibyte character across the limit does not panic.
        let mut body = "a".repeat(MAX_TEXT - 1);
        body.push('ä');
        body.push_str(GMAIL_EN);
        assert_eq!(inline_forward(&body), None);
    }

    #[test]
    fn overlong_lines_are_skipped() {
        let from = format!("Erika {} <erika@example.org>", "x".repeat(MAX_LINE));
        assert_eq!(
            inline_forward(&gmail_with_from(&from)),
            Some(Forwarded::AuthorUnknown)
        );
        let sep = format!("{}---------- Forwarded message ---------", " ".repeat(2000));
        let body = format!("{sep}\nFrom: Erika <erika@example.org>\n");
        assert_eq!(inline_forward(&body), None);
    }

    #[test]
    fn hostile_inputs_finish_quickly() {
        let many_separators = "---------- Forwarded message ---------\n".repeat(20_000);
        assert_eq!(
            inline_forward(&many_separators),
            Some(Forwarded::AuthorUnknown)
        );
        let many_froms = "From: x\n\n\n".repeat(50_000);
        assert_eq!(inline_forward(&many_froms), None);
        let brackets = format!("{}\n", "<[<[@".repeat(190));
        let body = gmail_with_from(&brackets).repeat(200);
        assert_eq!(inline_forward(&body), Some(Forwarded::AuthorUnknown));
        let rules = "________________________________\n".repeat(10_000);
        assert_eq!(inline_forward(&rules), None);
    }

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.next() % n as u64) as usize
            }
        }
    }

    #[test]
    fn mutations_never_panic() {
        const PIECES: &[&str] = &[
            "<",
            ">",
            "[",
            "]",
            "@",
            ":",
            "\u{a0}",
            "\u{202f}",
            "\n",
            "\r",
            "\r\n",
            "-",
            "_",
            "\"",
            "„",
            "“",
            "ä",
            "€",
            "😀",
            "\u{feff}",
            "\u{301}",
            "mailto:",
            "From:",
            "Von:",
            "De :",
            "> ",
            "-----Original Message-----\n",
            "________________________________\n",
            ".",
            "..",
            "(",
            ")",
            "*",
            "\t",
            "\0",
            "Fwd: ",
            "[#",
            "AW(",
            "Re[2]:",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut checked = 0usize;
        for sample in samples() {
            for _ in 0..300 {
                let mut chars: Vec<char> = sample.chars().collect();
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(chars.len() + 1);
                    match rng.below(5) {
                        0 => {
                            let piece = PIECES[rng.below(PIECES.len())];
                            chars.splice(at..at, piece.chars());
                        }
                        1 => {
                            let end = (at + 1 + rng.below(12)).min(chars.len());
                            if at < end {
                                chars.drain(at..end);
                            }
                        }
                        2 => chars.truncate(at),
                        3 => {
                            let end = (at + rng.below(40)).min(chars.len());
                            let copy: Vec<char> = chars[at..end].to_vec();
                            chars.splice(at..at, copy);
                        }
                        _ => {
                            if let Some(c) = chars.get_mut(at) {
                                *c = char::from_u32(rng.below(0x3000) as u32).unwrap_or('?');
                            }
                        }
                    }
                }
                let text: String = chars.into_iter().collect();
                let _ = inline_forward(&text);
                for line in text.lines() {
                    let _ = is_forward_subject(line);
                    let _ = parse_mailbox(line);
                }
                checked += 1;
            }
        }
        assert_eq!(checked, samples().len() * 300);
    }

    #[test]
    fn every_sample_has_a_block() {
        for sample in samples() {
            assert!(inline_forward(sample).is_some(), "{sample}");
        }
    }

    #[test]
    fn forward_subjects() {
        let table: &[(&str, bool)] = &[
            ("Fwd: Bewerbung", true),
            ("WG: Bewerbung", true),
            ("TR: Candidature", true),
            ("AW: WG: x", true),
            ("Re: Bewerbung", false),
            ("Forwarding address", false),
            ("Fw: Application", true),
            ("FW: Application", true),
            ("FWD:Application", true),
            ("Wtrlt: Sollicitatie", true),
            ("Doorst: Sollicitatie", true),
            ("RV: Candidatura", true),
            ("TR : Candidature", true),
            ("Tr\u{a0}: Candidature", true),
            ("Re: AW: Fwd: x", true),
            ("RE[2]: WG: x", true),
            ("AW(3): TR: x", true),
            ("[Jobs] Fwd: Bewerbung", true),
            ("[EXTERN] AW: WG: Bewerbung", true),
            ("  [Jobs][#1K7AB] Re: Fwd: x", true),
            ("Re: Re: Bewerbung", false),
            ("AW: Bewerbung [WG: alt]", false),
            ("Bewerbung (WG: Berlin)", false),
            ("Bewerbung: Fwd: x", false),
            ("Wg Bewerbung", false),
            ("[Jobs Fwd: x", false),
            ("", false),
            ("Fwd", false),
            ("Fwd:", true),
        ];
        for &(subject, expected) in table {
            assert_eq!(is_forward_subject(subject), expected, "{subject:?}");
        }
    }
}
