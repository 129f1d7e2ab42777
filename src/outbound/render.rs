//! Rendering: a template variant and a candidate's context become the
//! subject and bodies of one mail; and the checks a template must pass.
//!
//! minijinja with strict undefined behaviour, so an unknown placeholder is an
//! error, never an empty gap; `g(masculine, feminine, neutral)` picks the
//! gender form; HTML bodies escape the candidate's data. Pure: no files, no
//! store, no clock (the application date comes in the context).

use std::collections::BTreeSet;

use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior, context};

use crate::outbound::template::{Template, TemplateError};

/// The placeholders a template may use (plus `g`).
pub const PLACEHOLDERS: [&str; 9] = [
    "first_name",
    "last_name",
    "full_name",
    "email",
    "position",
    "subsidiary",
    "sender_name",
    "application_date",
    "gender",
];

/// What a template is rendered with. Text fields may hold anything a
/// candidate typed; they are made single-line before rendering.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    /// `female`, `male`, `diverse` or `unknown`.
    pub gender: String,
    /// The candidate's language, if known.
    pub language: Option<String>,
    /// The position's title; `None` for a general application.
    pub position: Option<String>,
    pub subsidiary: String,
    pub subsidiary_language: Option<String>,
    pub sender_name: String,
    /// Unix milliseconds.
    pub application_date_ms: Option<i64>,
}

/// One mail's words, before signature and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub language: String,
    /// One line, no control characters.
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// File names (relative to the templates directory) to attach.
    pub attachments: Vec<String>,
}

/// Why a template could not be rendered for a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError(pub String);

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RenderError {}

/// Text from outside made safe for a placeholder: control characters
/// (CR, LF, NUL, …) become spaces, runs of spaces one space, at most 500
/// characters. Candidate data can therefore never add a line to a header.
pub fn single_line(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(500)
        .collect()
}

/// The variant for a candidate: their language, else the subsidiary's, else
/// the template's default.
pub fn choose_language<'t>(
    template: &'t Template,
    candidate: Option<&str>,
    subsidiary: Option<&str>,
) -> &'t str {
    [candidate, subsidiary]
        .into_iter()
        .flatten()
        .find_map(|l| template.variants.get_key_value(l).map(|(k, _)| k.as_str()))
        .unwrap_or(&template.default_language)
}

fn gender_form(
    state: &State,
    masculine: String,
    feminine: String,
    neutral: Option<String>,
) -> Result<String, Error> {
    let gender = state
        .lookup("gender")
        .and_then(|g| g.as_str().map(str::to_string))
        .unwrap_or_default();
    match gender.as_str() {
        "male" => Ok(masculine),
        "female" => Ok(feminine),
        _ => neutral.ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("g({masculine:?}, {feminine:?}) has no neutral form for a candidate of {gender} gender"),
            )
        }),
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_function("g", gender_form);
    env
}

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// A date as the language writes it: `25.11.2026`, `25 November 2026`,
/// `25 novembre 2026`; ISO 8601 for other languages.
pub fn format_date(ms: i64, language: &str) -> String {
    let Some(d) = crate::clock::date(ms) else {
        return String::new();
    };
    let month = (d.month() - 1) as usize;
    match language {
        "de" => format!("{:02}.{:02}.{}", d.day(), d.month(), d.year()),
        "en" => format!("{} {} {}", d.day(), MONTHS_EN[month], d.year()),
        "fr" => format!("{} {} {}", d.day(), MONTHS_FR[month], d.year()),
        _ => format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
    }
}

/// Renders a template for a candidate; `language` overrides the choice.
pub fn render(
    template: &Template,
    ctx: &Context,
    language: Option<&str>,
) -> Result<Rendered, RenderError> {
    let language = match language {
        Some(l) => {
            if !template.variants.contains_key(l) {
                return Err(RenderError(format!(
                    "template {} has no {l:?} variant",
                    template.id
                )));
            }
            l
        }
        None => choose_language(
            template,
            ctx.language.as_deref(),
            ctx.subsidiary_language.as_deref(),
        ),
    };
    let variant = template.variants.get(language).ok_or_else(|| {
        RenderError(format!(
            "template {} has no {language:?} variant",
            template.id
        ))
    })?;
    let first = single_line(&ctx.first_name);
    let last = single_line(&ctx.last_name);
    let full = single_line(&format!("{first} {last}"));
    let values = context! {
        first_name => first,
        last_name => last,
        full_name => full,
        email => single_line(&ctx.email),
        position => ctx.position.as_deref().map(single_line).unwrap_or_default(),
        subsidiary => single_line(&ctx.subsidiary),
        sender_name => single_line(&ctx.sender_name),
        application_date => ctx.application_date_ms.map(|ms| format_date(ms, language)).unwrap_or_default(),
        // Without a last name, "Sehr geehrter Herr ," cannot be written:
        // the neutral form is used.
        gender => match ctx.gender.as_str() {
            "male" | "female" if ctx.last_name.trim().is_empty() => "unknown".to_string(),
            "male" | "female" | "diverse" => ctx.gender.clone(),
            _ => "unknown".to_string(),
        },
    };
    let env = environment();
    let run = |name: &str, source: &str| -> Result<String, RenderError> {
        env.template_from_named_str(name, source)
            .and_then(|t| t.render(&values))
            .map_err(|e| {
                RenderError(format!(
                    "template {} [{language}] {name}: {}",
                    template.id,
                    describe(&e)
                ))
            })
    };
    let subject = single_line(&run("subject.txt", &variant.subject)?);
    let text = run("text.txt", &variant.text)?;
    let html = variant
        .html
        .as_deref()
        .map(|h| run("body.html", h))
        .transpose()?;
    Ok(Rendered {
        language: language.to_string(),
        subject,
        text,
        html,
        attachments: template.attachments_of(language).to_vec(),
    })
}

fn describe(e: &Error) -> String {
    let mut text = e.to_string();
    if let Some(detail) = e.detail()
        && !text.contains(detail)
    {
        text.push_str(": ");
        text.push_str(detail);
    }
    text
}

/// Everything wrong with a template that can be seen without its files:
/// syntax, unknown placeholders, the default variant and the subsidiaries'
/// languages, and, for automatic templates, a gender form without a neutral
/// wording. Every problem at once.
pub fn check(template: &Template, subsidiary_languages: &[String]) -> Vec<TemplateError> {
    let mut errors = Vec::new();
    let mut error = |language: Option<&str>, message: String| {
        errors.push(TemplateError {
            template: template.id.clone(),
            language: language.map(str::to_string),
            message,
        })
    };
    if !template.variants.contains_key(&template.default_language) {
        error(
            None,
            format!(
                "no variant for its default language {:?}",
                template.default_language
            ),
        );
    }
    for l in subsidiary_languages {
        if !template.variants.contains_key(l) {
            error(
                None,
                format!("no {l:?} variant, the language of a subsidiary"),
            );
        }
    }
    let env = environment();
    let known: BTreeSet<&str> = PLACEHOLDERS.iter().copied().collect();
    for (language, variant) in &template.variants {
        let parts = [
            ("subject", Some(&variant.subject)),
            ("text", Some(&variant.text)),
            ("html", variant.html.as_ref()),
        ];
        for (part, source) in parts {
            let Some(source) = source else { continue };
            let name = if part == "html" {
                "body.html".to_string()
            } else {
                format!("{part}.txt")
            };
            match env.template_from_named_str(&name, source) {
                Err(e) => error(Some(language), format!("{part}: {}", describe(&e))),
                Ok(t) => {
                    let mut unknown: Vec<String> = t
                        .undeclared_variables(false)
                        .into_iter()
                        .filter(|v| !known.contains(v.as_str()) && v != "g")
                        .collect();
                    unknown.sort();
                    for v in unknown {
                        error(
                            Some(language),
                            format!("{part}: unknown placeholder {{{{ {v} }}}}"),
                        );
                    }
                }
            }
        }
        // An automatic template needs the neutral form in every g(…),
        // including branches a sample rendering does not take…
        let mut without_neutral = false;
        if template.automatic {
            for (part, source) in [
                ("subject", Some(&variant.subject)),
                ("text", Some(&variant.text)),
                ("html", variant.html.as_ref()),
            ] {
                let Some(source) = source else { continue };
                for call in gender_calls_without_neutral(source) {
                    without_neutral = true;
                    error(
                        Some(language),
                        format!(
                            "{part}: automatic template needs a neutral form in every g(…): {call}"
                        ),
                    );
                }
            }
        }
        // …and must render for a candidate of unknown gender.
        if template.automatic && !without_neutral {
            let ctx = sample_context("unknown");
            if let Err(e) = render(template, &ctx, Some(language))
                && e.0.contains("no neutral form")
            {
                error(
                    Some(language),
                    format!(
                        "automatic template needs a neutral form in every g(…): {}",
                        e.0
                    ),
                );
            }
        }
    }
    errors
}

/// The `g(…)` calls in a template source that give fewer than three forms.
/// A small scanner: it counts top-level arguments, minding quotes and
/// parentheses, inside `{{ … }}` and `{% … %}`.
pub fn gender_calls_without_neutral(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(open) = source[i..]
        .find("{{")
        .or_else(|| source[i..].find("{%"))
        .map(|p| p + i)
    {
        let close_pat = if &source[open..open + 2] == "{{" {
            "}}"
        } else {
            "%}"
        };
        let Some(close) = source[open + 2..].find(close_pat).map(|p| p + open + 2) else {
            break;
        };
        let expr = &source[open + 2..close];
        let eb = expr.as_bytes();
        let mut j = 0;
        while j + 1 < eb.len() {
            let starts_call = eb[j] == b'g'
                && (j == 0
                    || !(eb[j - 1].is_ascii_alphanumeric()
                        || eb[j - 1] == b'_'
                        || eb[j - 1] == b'.'));
            let mut k = j + 1;
            while starts_call && k < eb.len() && eb[k] == b' ' {
                k += 1;
            }
            if starts_call && k < eb.len() && eb[k] == b'(' {
                // Count top-level commas up to the matching parenthesis.
                let (mut depth, mut args, mut quote, mut empty) = (0i32, 1, None::<u8>, true);
                let mut m = k;
                while m < eb.len() {
                    let c = eb[m];
                    match quote {
                        Some(q) if c == q => quote = None,
                        Some(_) => {}
                        None => match c {
                            b'\'' | b'"' => {
                                quote = Some(c);
                                empty = false;
                            }
                            b'(' | b'[' => depth += 1,
                            b')' | b']' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            b',' if depth == 1 => args += 1,
                            c if !c.is_ascii_whitespace() => empty = false,
                            _ => {}
                        },
                    }
                    m += 1;
                }
                if empty || args < 3 {
                    found.push(expr[j..(m + 1).min(expr.len())].to_string());
                }
                j = m;
            }
            j += 1;
        }
        i = close + 2;
    }
    found
}

/// A context with every placeholder filled, for checks and examples.
pub fn sample_context(gender: &str) -> Context {
    Context {
        first_name: "Erika".into(),
        last_name: "Mustermann".into(),
        email: "erika@example.org".into(),
        gender: gender.into(),
        language: None,
        position: Some("Backend Engineer".into()),
        subsidiary: "ACME".into(),
        subsidiary_language: None,
        sender_name: "ACME Recruiting".into(),
        application_date_ms: Some(1_764_000_000_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::template::Variant;
    use std::collections::BTreeMap;

    fn template(automatic: bool, variants: &[(&str, &str, &str)]) -> Template {
        Template {
            id: "t".into(),
            path: "t.toml".into(),
            description: String::new(),
            default_language: "de".into(),
            automatic,
            attachments: vec!["files/x.pdf".into()],
            variants: variants
                .iter()
                .map(|(l, s, t)| {
                    (
                        l.to_string(),
                        Variant {
                            subject: s.to_string(),
                            text: t.to_string(),
                            html: Some(format!("<p>{t}</p>")),
                            attachments: None,
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn gender_forms_for_every_gender() {
        let t = template(
            false,
            &[(
                "de",
                "Hallo",
                "{{ g(\"Lieber Herr\", \"Liebe Frau\", \"Guten Tag\") }} {{ last_name }}",
            )],
        );
        for (gender, expected) in [
            ("male", "Lieber Herr Mustermann"),
            ("female", "Liebe Frau Mustermann"),
            ("diverse", "Guten Tag Mustermann"),
            ("unknown", "Guten Tag Mustermann"),
            ("", "Guten Tag Mustermann"),
        ] {
            let r = render(&t, &sample_context(gender), None).unwrap();
            assert_eq!(r.text, expected, "{gender}");
        }
        let mut nameless = sample_context("male");
        nameless.last_name = String::new();
        assert_eq!(
            render(&t, &nameless, None).unwrap().text,
            "Guten Tag ",
            "no \"Herr\" without a name"
        );
        let two = template(false, &[("de", "Hallo", "{{ g(\"Lieber\", \"Liebe\") }}")]);
        assert_eq!(
            render(&two, &sample_context("female"), None).unwrap().text,
            "Liebe"
        );
        let e = render(&two, &sample_context("unknown"), None).unwrap_err();
        assert!(e.0.contains("no neutral form"), "{e}");
    }

    #[test]
    fn every_placeholder_and_the_language_chain() {
        let text = "{{ first_name }}|{{ last_name }}|{{ full_name }}|{{ email }}|{{ position }}|{{ subsidiary }}|{{ sender_name }}|{{ application_date }}";
        let t = template(
            false,
            &[("de", "DE", text), ("en", "EN", text), ("fr", "FR", text)],
        );
        let mut ctx = sample_context("female");
        ctx.application_date_ms = Some(1_795_600_000_000); // 25 Nov 2026
        ctx.language = Some("fr".into());
        ctx.subsidiary_language = Some("de".into());
        let r = render(&t, &ctx, None).unwrap();
        assert_eq!(r.language, "fr");
        assert_eq!(r.subject, "FR");
        assert_eq!(
            r.text,
            "Erika|Mustermann|Erika Mustermann|erika@example.org|Backend Engineer|ACME|ACME Recruiting|25 novembre 2026"
        );
        ctx.language = Some("it".into());
        assert_eq!(
            render(&t, &ctx, None).unwrap().text.rsplit('|').next(),
            Some("25.11.2026")
        );
        ctx.subsidiary_language = Some("es".into());
        assert_eq!(
            render(&t, &ctx, None).unwrap().language,
            "de",
            "the template's default"
        );
        assert_eq!(
            render(&t, &ctx, Some("en"))
                .unwrap()
                .text
                .rsplit('|')
                .next(),
            Some("25 November 2026")
        );
        assert!(render(&t, &ctx, Some("nl")).is_err());
        ctx.position = None;
        assert!(
            render(&t, &ctx, Some("en"))
                .unwrap()
                .text
                .contains("erika@example.org||ACME")
        );
    }

    #[test]
    fn candidate_data_cannot_break_out() {
        let t = template(
            false,
            &[("de", "Bewerbung {{ full_name }}", "Hallo {{ full_name }}")],
        );
        let mut ctx = sample_context("unknown");
        ctx.first_name = "Eve\r\nBcc: victim@example.org\r\n.\r\n".into();
        ctx.last_name = "<script>alert(1)</script>".into();
        let r = render(&t, &ctx, None).unwrap();
        assert!(
            !r.subject.contains('\r') && !r.subject.contains('\n'),
            "{:?}",
            r.subject
        );
        assert_eq!(
            r.subject,
            "Bewerbung Eve Bcc: victim@example.org . <script>alert(1)</script>"
        );
        let html = r.html.unwrap();
        assert!(
            !html.contains("<script>"),
            "HTML escapes candidate data: {html}"
        );
    }

    #[test]
    fn every_gender_call_is_seen_even_in_untaken_branches() {
        let source = "{% if position %}{{ g('Lieber', 'Liebe') }}{% else %}{{ g(\"a, b\", 'c', 'd') }}{% endif %} {{ flag(1) }} {{ g(last_name, first_name) | upper }}";
        let calls = gender_calls_without_neutral(source);
        assert_eq!(
            calls,
            vec!["g('Lieber', 'Liebe')", "g(last_name, first_name)"]
        );
        let t = template(
            true,
            &[(
                "de",
                "Hallo",
                "{% if false %}{{ g('Lieber', 'Liebe') }}{% endif %}Guten Tag",
            )],
        );
        let errors = check(&t, &[]);
        let parts: Vec<&str> = errors
            .iter()
            .map(|e| e.message.split(':').next().unwrap())
            .collect();
        assert_eq!(parts, vec!["text", "html"], "{errors:?}");
        assert!(errors[0].message.contains("g('Lieber', 'Liebe')"));
    }

    #[test]
    fn check_lists_every_problem() {
        let mut t = template(
            true,
            &[
                (
                    "de",
                    "Hallo {{ frist_name }}",
                    "{{ g(\"Lieber\", \"Liebe\") }} {% if %}",
                ),
                (
                    "en",
                    "Hi",
                    "{{ g(\"Dear Mr\", \"Dear Ms\") }} {{ last_name }}",
                ),
            ],
        );
        t.default_language = "es".into();
        let errors = check(&t, &["fr".to_string()]);
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        let has = |needle: &str| text.iter().any(|e| e.contains(needle));
        assert!(has("default language \"es\""), "{text:?}");
        assert!(has("no \"fr\" variant"), "{text:?}");
        assert!(
            has("[de]: subject: unknown placeholder {{ frist_name }}"),
            "{text:?}"
        );
        assert!(has("[de]: text: syntax error"), "{text:?}");
        assert!(
            has("[en]: text: automatic template needs a neutral form"),
            "{text:?}"
        );
        let fine = template(true, &[("de", "Hallo", "{{ g(\"a\", \"b\", \"c\") }}")]);
        assert!(check(&fine, &["de".to_string()]).is_empty());
    }
}
