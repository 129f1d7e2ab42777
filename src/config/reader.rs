//! The reader every section uses: a spanned TOML table walked key by key,
//! every error collected with its line and key path, unknown keys reported.

#[allow(unused_imports)]
use super::*;

/// One problem in the file: where, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

/// All problems found in one file.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    pub path: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        writeln!(
            f,
            "{}: {n} error{}",
            self.path.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            match e.line {
                Some(line) => write!(f, "{}:{line}: ", self.path.display())?,
                None => write!(f, "{}: ", self.path.display())?,
            }
            if e.key.is_empty() {
                writeln!(f, "{}", e.message)?;
            } else {
                writeln!(f, "{}: {}", e.key, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

pub(super) struct Ctx<'t> {
    pub(super) text: &'t str,
    pub(super) errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    pub(super) fn line_of(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub(super) fn error(
        &mut self,
        span: Option<&Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) {
        let line = span.map(|s| self.line_of(s));
        self.errors.push(ConfigError {
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }
}

pub(super) type Value<'i> = Spanned<DeValue<'i>>;

/// A table being read: keys are taken one by one; what is left is unknown.
pub(super) struct Section<'a, 'i> {
    pub(super) path: String,
    pub(super) span: Option<Range<usize>>,
    pub(super) entries: Vec<(&'a str, Range<usize>, &'a Value<'i>, bool)>,
}

impl<'a, 'i> Section<'a, 'i> {
    pub(super) fn new(
        path: impl Into<String>,
        table: &'a DeTable<'i>,
        span: Option<Range<usize>>,
    ) -> Self {
        Section {
            path: path.into(),
            span,
            entries: table
                .iter()
                .map(|(k, v)| (k.get_ref().as_ref(), k.span(), v, false))
                .collect(),
        }
    }

    pub(super) fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Where the value of `key` is, else where the table is.
    pub(super) fn span_of(&self, key: &str) -> Option<Range<usize>> {
        self.entries
            .iter()
            .find(|e| e.0 == key)
            .map(|e| e.2.span())
            .or_else(|| self.span.clone())
    }

    /// `key` as true or false, `default` when absent; an error otherwise.
    pub(super) fn boolean(&mut self, ctx: &mut Ctx, key: &str, default: bool) -> bool {
        let Some(v) = self.take(key) else {
            return default;
        };
        v.get_ref().as_bool().unwrap_or_else(|| {
            ctx.error(
                Some(&v.span()),
                &self.key_path(key),
                "expected true or false",
            );
            default
        })
    }

    pub(super) fn take(&mut self, key: &str) -> Option<&'a Value<'i>> {
        self.entries
            .iter_mut()
            .find(|(k, _, _, _)| *k == key)
            .map(|entry| {
                entry.3 = true;
                entry.2
            })
    }

    pub(super) fn string(&mut self, ctx: &mut Ctx, key: &str) -> Option<String> {
        let v = self.take(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                ctx.error(Some(&v.span()), &self.key_path(key), "expected a string");
                None
            }
        }
    }

    pub(super) fn required_string(&mut self, ctx: &mut Ctx, key: &str) -> Option<String> {
        let value = self.string(ctx, key);
        if value.is_none() && !self.entries.iter().any(|(k, _, _, _)| *k == key) {
            let path = self.key_path(key);
            ctx.error(self.span.as_ref(), &path, "missing (required)");
        }
        value.filter(|s| {
            if s.trim().is_empty() {
                let path = self.key_path(key);
                ctx.error(self.span.as_ref(), &path, "must not be empty");
                false
            } else {
                true
            }
        })
    }

    pub(super) fn strings(&mut self, ctx: &mut Ctx, key: &str) -> Vec<(String, Range<usize>)> {
        let Some(v) = self.take(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            ctx.error(
                Some(&v.span()),
                &self.key_path(key),
                "expected an array of strings",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::String(s) => out.push((s.to_string(), item.span())),
                _ => ctx.error(
                    Some(&item.span()),
                    &format!("{}[{i}]", self.key_path(key)),
                    "expected a string",
                ),
            }
        }
        out
    }

    pub(super) fn integer(
        &mut self,
        ctx: &mut Ctx,
        key: &str,
        default: u64,
        range: Range<u64>,
    ) -> u64 {
        let Some(v) = self.take(key) else {
            return default;
        };
        let parsed = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => None,
        };
        match parsed {
            Some(n) if n >= 0 && range.contains(&(n as u64)) => n as u64,
            Some(n) => {
                ctx.error(
                    Some(&v.span()),
                    &self.key_path(key),
                    format!(
                        "{n} is out of range ({}..={})",
                        range.start,
                        range.end.saturating_sub(1)
                    ),
                );
                default
            }
            None => {
                ctx.error(Some(&v.span()), &self.key_path(key), "expected an integer");
                default
            }
        }
    }

    pub(super) fn duration(
        &mut self,
        ctx: &mut Ctx,
        key: &str,
        default: Duration,
        range: Range<Duration>,
    ) -> Duration {
        let Some(v) = self.take(key) else {
            return default;
        };
        let parsed = match v.get_ref() {
            DeValue::String(s) => humantime::parse_duration(s).ok(),
            _ => None,
        };
        match parsed {
            Some(d) if range.contains(&d) => d,
            Some(_) => {
                ctx.error(
                    Some(&v.span()),
                    &self.key_path(key),
                    format!(
                        "out of range ({} to {})",
                        humantime::format_duration(range.start),
                        humantime::format_duration(range.end)
                    ),
                );
                default
            }
            None => {
                ctx.error(
                    Some(&v.span()),
                    &self.key_path(key),
                    "expected a duration such as \"30s\", \"5m\" or \"1h\"",
                );
                default
            }
        }
    }

    pub(super) fn address(&mut self, ctx: &mut Ctx, key: &str, required: bool) -> Option<Address> {
        let span = self.entries.iter().find(|e| e.0 == key).map(|e| e.2.span());
        let text = if required {
            self.required_string(ctx, key)?
        } else {
            self.string(ctx, key)?
        };
        parse_address(ctx, &text, span.as_ref(), &self.key_path(key))
    }

    /// Reports every key that nobody took.
    pub(super) fn finish(self, ctx: &mut Ctx) {
        for (key, span, _, taken) in &self.entries {
            if !taken {
                let path = self.key_path(key);
                ctx.error(Some(span), &path, "unknown key");
            }
        }
    }
}

pub(super) fn parse_address(
    ctx: &mut Ctx,
    text: &str,
    span: Option<&Range<usize>>,
    key: &str,
) -> Option<Address> {
    match Address::parse(text) {
        Ok(a) => Some(a),
        Err(e) => {
            ctx.error(span, key, format!("{text:?} is not a valid address: {e}"));
            None
        }
    }
}

/// An array of tables (`[[subsidiary]]`), each handed over with its index.
pub(super) fn tables<'a, 'i>(
    ctx: &mut Ctx,
    root: &mut Section<'a, 'i>,
    key: &str,
) -> Vec<(usize, &'a DeTable<'i>, Range<usize>)> {
    let path = root.key_path(key);
    let Some(v) = root.take(key) else {
        return Vec::new();
    };
    let DeValue::Array(items) = v.get_ref() else {
        ctx.error(
            Some(&v.span()),
            &path,
            format!("expected an array of tables ([[{path}]])"),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.get_ref() {
            DeValue::Table(t) => out.push((i, t, item.span())),
            _ => ctx.error(
                Some(&item.span()),
                &format!("{path}[{i}]"),
                "expected a table",
            ),
        }
    }
    out
}

/// The root's `[name]` table as a section; an error if it is something else.
pub(super) fn table_section<'a, 'i>(
    ctx: &mut Ctx,
    root: &mut Section<'a, 'i>,
    name: &str,
) -> Option<Section<'a, 'i>> {
    let v = root.take(name)?;
    match v.get_ref() {
        DeValue::Table(t) => Some(Section::new(name, t, Some(v.span()))),
        _ => {
            ctx.error(
                Some(&v.span()),
                name,
                format!("expected a table ([{name}])"),
            );
            None
        }
    }
}

pub(super) fn check_id(ctx: &mut Ctx, id: &str, span: &Range<usize>, key: &str) {
    let ok = id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        ctx.error(
            Some(span),
            key,
            format!("{id:?}: ids are at most 64 letters, digits, '-', '_' or '.'"),
        );
    }
}

pub(super) fn duplicates<'x>(
    ctx: &mut Ctx,
    kind: &str,
    items: impl Iterator<Item = (usize, &'x Range<usize>, &'x String)>,
) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, span, id) in items {
        if let Some(first) = seen.get(id.as_str()) {
            ctx.error(
                Some(span),
                &format!("{kind}[{i}].id"),
                format!("duplicate id {id:?} (first used by {kind}[{first}])"),
            );
        } else {
            seen.insert(id, i);
        }
    }
}
