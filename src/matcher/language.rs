//! The language a new candidate wrote their application in, so that the
//! acknowledgement answers in it rather than in the subsidiary's language.
//!
//! Only the candidate's own words count: quoted lines (`>`), the intro
//! line of a quoted reply (`On … wrote:`), an inline forwarded block (found
//! by [`super::forward::inline_forward_start`]) and everything after a
//! signature separator (`-- `) are cut before detection. The text is
//! detected with `whatlang`; a language is returned only when there are at
//! least [`MIN_LETTERS`] letters, whatlang calls the result reliable, and
//! one of the languages the templates have (given as data) is it.
//!
//! Pure: no I/O, never panics on input, bounded work (only the first
//! [`MAX_TEXT`] bytes of a body and [`MAX_OWN`] characters of own text are
//! read). It must not decide anything but the language, and must not
//! guess: doubt is `None`, and the subsidiary's language applies.

use serde::Serialize;

/// Only this much of a body is inspected.
pub const MAX_TEXT: usize = 64 * 1024;
/// Own text beyond this many characters adds nothing to the detection
/// (a cover letter's first paragraphs tell its language).
pub const MAX_OWN: usize = 2000;
/// Fewer letters than this (a greeting, "see attached") are not enough
/// to tell a language: trigram statistics on two or three words are noise.
pub const MIN_LETTERS: usize = 40;

/// Where a candidate's language came from. Stored as its kebab-case name
/// in `candidates.language_source`. The order of precedence, strongest
/// first: the online form (`application add --lang`, by hand), the mail's
/// `Content-Language`, detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LanguageSource {
    /// Given with a form application (`application add --lang`).
    Form,
    /// The application mail's `Content-Language` header.
    ContentLanguage,
    /// Detected in the text of the application mail.
    Detected,
}

impl LanguageSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LanguageSource::Form => "form",
            LanguageSource::ContentLanguage => "content-language",
            LanguageSource::Detected => "detected",
        }
    }
}

/// The candidate's own text of a mail body: without quoted lines, the
/// intro line of a quote, an inline forwarded block and the signature.
pub fn own_text(text: &str) -> String {
    let text = head(text, MAX_TEXT);
    let text = match super::forward::inline_forward_start(text) {
        Some(start) => text.get(..start).unwrap_or(text),
        None => text,
    };
    let lines: Vec<&str> = text.lines().collect();
    let quoted = |l: &str| l.trim_start().starts_with('>');
    let mut out = String::new();
    let mut chars = 0;
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_end();
        // RFC 3676 4.3: "-- " starts the signature (some clients trim it).
        if trimmed == "--" {
            break;
        }
        if quoted(line) {
            continue;
        }
        // "On Mon, … Erika wrote:" / "Am … schrieb …:" / "Le … a écrit :"
        // right before a quote is the quote's, not the candidate's.
        if trimmed.ends_with(':')
            && lines
                .get(i + 1..)
                .unwrap_or(&[])
                .iter()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| quoted(l))
        {
            continue;
        }
        for word in trimmed.split_whitespace() {
            // Addresses and links are no language.
            if word.contains('@') || word.contains("://") || word.starts_with("www.") {
                continue;
            }
            out.push_str(word);
            out.push(' ');
            chars += word.chars().count() + 1;
        }
        out.push('\n');
        if chars >= MAX_OWN {
            break;
        }
    }
    out
}

/// The language of the candidate's own text in `text`, as the template
/// language code it matches in `available` (ISO 639-1, e.g. `de`, `en`,
/// `fr`, compared case-insensitively), when the detection is confident;
/// else `None`.
pub fn detect(text: &str, available: &[String]) -> Option<String> {
    let own = own_text(text);
    if own.chars().filter(|c| c.is_alphabetic()).count() < MIN_LETTERS {
        return None;
    }
    let info = whatlang::detect(&own)?;
    if !info.is_reliable() || !sentences_agree(&own, info.lang()) {
        return None;
    }
    let code = iso_639_1(info.lang().code())?;
    available
        .iter()
        .find(|a| a.eq_ignore_ascii_case(code))
        .cloned()
}

/// Whether the sentences of `own` (split at `.`, `!`, `?`, `;`, `,` and
/// line ends; those of at least [`MIN_SENTENCE`] letters) are mostly in
/// `lang`: at least [`AGREEMENT`] of their letters. whatlang calls a text
/// that mixes languages reliable when one of them has a few more
/// trigrams; a candidate writing one language writes most sentences in it.
fn sentences_agree(own: &str, lang: whatlang::Lang) -> bool {
    let (mut agree, mut all) = (0usize, 0usize);
    let sentences = own
        .split(['.', '!', '?', ';', ',', '\n'])
        .map(|s| (s, s.chars().filter(|c| c.is_alphabetic()).count()))
        .filter(|(_, letters)| *letters >= MIN_SENTENCE)
        .take(MAX_SENTENCES);
    for (sentence, letters) in sentences {
        all += letters;
        if whatlang::detect_lang(sentence) == Some(lang) {
            agree += letters;
        }
    }
    all > 0 && agree as f64 >= AGREEMENT * all as f64
}

/// Shorter sentences ("Best regards", a name) tell no language apart.
const MIN_SENTENCE: usize = 12;
/// Only the first sentences are checked: each costs a detection of its
/// own (about 50 µs in a release build).
const MAX_SENTENCES: usize = 16;
/// The share of the sentences' letters that must be in the text's language.
const AGREEMENT: f64 = 0.6;

/// The two-letter code of a whatlang (ISO 639-3) language, where it has one.
fn iso_639_1(code: &str) -> Option<&'static str> {
    Some(match code {
        "afr" => "af",
        "aka" => "ak",
        "amh" => "am",
        "ara" => "ar",
        "aze" => "az",
        "bel" => "be",
        "ben" => "bn",
        "bul" => "bg",
        "cat" => "ca",
        "ces" => "cs",
        "cmn" => "zh",
        "cym" => "cy",
        "dan" => "da",
        "deu" => "de",
        "ell" => "el",
        "eng" => "en",
        "epo" => "eo",
        "est" => "et",
        "fin" => "fi",
        "fra" => "fr",
        "guj" => "gu",
        "heb" => "he",
        "hin" => "hi",
        "hrv" => "hr",
        "hun" => "hu",
        "hye" => "hy",
        "ind" => "id",
        "ita" => "it",
        "jav" => "jv",
        "jpn" => "ja",
        "kan" => "kn",
        "kat" => "ka",
        "khm" => "km",
        "kor" => "ko",
        "lat" => "la",
        "lav" => "lv",
        "lit" => "lt",
        "mal" => "ml",
        "mar" => "mr",
        "mkd" => "mk",
        "mya" => "my",
        "nep" => "ne",
        "nld" => "nl",
        "nob" => "nb",
        "ori" => "or",
        "pan" => "pa",
        "pes" => "fa",
        "pol" => "pl",
        "por" => "pt",
        "ron" => "ro",
        "rus" => "ru",
        "sin" => "si",
        "slk" => "sk",
        "slv" => "sl",
        "sna" => "sn",
        "spa" => "es",
        "srp" => "sr",
        "swe" => "sv",
        "tam" => "ta",
        "tel" => "te",
        "tgl" => "tl",
        "tha" => "th",
        "tuk" => "tk",
        "tur" => "tr",
        "ukr" => "uk",
        "urd" => "ur",
        "uzb" => "uz",
        "vie" => "vi",
        "yid" => "yi",
        "zul" => "zu",
        _ => return None,
    })
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn head(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> Vec<String> {
        vec!["de".into(), "en".into(), "fr".into()]
    }

    const EN: &str = "Dear hiring team,\n\nI would like to apply for the position of backend developer. \
        I have five years of experience with Rust and distributed systems, and I am looking forward \
        to hearing from you.\n\nBest regards,\nJane Doe\n";
    const FR: &str = "Madame, Monsieur,\n\nJe souhaite poser ma candidature pour le poste de développeur. \
        J'ai cinq ans d'expérience et je serais ravie de rejoindre votre équipe. Vous trouverez \
        mon curriculum vitae en pièce jointe.\n\nBien cordialement,\nMarie Dupont\n";
    const DE: &str = "Sehr geehrte Damen und Herren,\n\nhiermit bewerbe ich mich auf die Stelle als \
        Entwickler. Ich habe fünf Jahre Erfahrung und freue mich darauf, von Ihnen zu hören. \
        Meine Unterlagen finden Sie im Anhang.\n\nMit freundlichen Grüßen\nMax Mustermann\n";

    #[test]
    fn english_french_and_german_are_detected() {
        assert_eq!(detect(EN, &templates()).as_deref(), Some("en"));
        assert_eq!(detect(FR, &templates()).as_deref(), Some("fr"));
        assert_eq!(detect(DE, &templates()).as_deref(), Some("de"));
    }

    #[test]
    fn the_template_spelling_of_the_code_is_returned() {
        assert_eq!(detect(EN, &["EN".to_string()]).as_deref(), Some("EN"));
    }

    #[test]
    fn a_short_text_is_not_enough() {
        assert_eq!(
            detect("Hello,\nplease see attached.\nJane", &templates()),
            None
        );
        assert_eq!(detect("", &templates()), None);
        assert_eq!(detect("CV.pdf\n\n\n", &templates()), None);
    }

    #[test]
    fn a_mixed_text_is_not_guessed() {
        let mixed = "Hello, anbei meine Bewerbung, merci beaucoup and thank you, \
            vielen Dank, je suis disponible, available from May, ab Mai verfügbar.";
        assert_eq!(detect(mixed, &templates()), None);
    }

    #[test]
    fn a_language_no_template_has_is_not_set() {
        let es = "Estimados señores,\n\nme gustaría presentar mi candidatura para el puesto de \
            desarrollador. Tengo cinco años de experiencia y estaría encantada de formar parte \
            de su equipo.\n\nUn saludo cordial,\nLucía García\n";
        assert_eq!(detect(es, &templates()), None);
        assert_eq!(detect(es, &["es".to_string()]).as_deref(), Some("es"));
        assert_eq!(detect(EN, &["de".to_string(), "fr".to_string()]), None);
        assert_eq!(detect(EN, &[]), None);
    }

    #[test]
    fn quoted_lines_and_the_signature_are_not_the_candidates() {
        // A short English note above a long German quote and signature.
        let reply = format!(
            "Hi, here is my CV.\n\nOn Mon, 1 Dec 2026, Jobs wrote:\n{}\n-- \n{}",
            DE.lines()
                .map(|l| format!("> {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
            DE
        );
        let own = own_text(&reply);
        assert!(own.contains("here is my CV"), "{own}");
        assert!(!own.contains("wrote"), "{own}");
        assert!(!own.contains("bewerbe"), "{own}");
        assert_eq!(detect(&reply, &templates()), None, "too short once cut");
        // English own text above a German quote: English.
        let reply = format!(
            "{EN}\nAm 1. Dezember 2026 schrieb Jobs:\n{}",
            DE.lines()
                .map(|l| format!("> {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert_eq!(detect(&reply, &templates()).as_deref(), Some("en"));
        // English own text with a long German signature: English.
        let signed = format!("{EN}-- \n{DE}{DE}");
        assert_eq!(detect(&signed, &templates()).as_deref(), Some("en"));
    }

    #[test]
    fn an_inline_forwarded_block_is_not_the_candidates() {
        let forward = format!(
            "Short note.\n\n---------- Forwarded message ---------\nFrom: Max <max@example.org>\n\
             Date: Mon, 1 Dec 2026\nSubject: Bewerbung\nTo: <jobs@acme.example>\n\n{DE}"
        );
        assert!(!own_text(&forward).contains("bewerbe"));
        assert_eq!(detect(&forward, &templates()), None);
        let forward = format!(
            "{FR}\n-----Original Message-----\nFrom: Max <max@example.org>\nSent: Monday\n\n{DE}{DE}"
        );
        assert_eq!(detect(&forward, &templates()).as_deref(), Some("fr"));
    }

    #[test]
    fn any_input_is_safe() {
        let long = "ä".repeat(MAX_TEXT);
        assert_eq!(detect(&long, &templates()), None);
        let _ = own_text(">\n:\n>\n-- ");
        let _ = detect(&"word ".repeat(100_000), &templates());
    }
}
