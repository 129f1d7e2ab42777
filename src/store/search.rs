//! What a search looks for, in the form the trigram indexes hold it: text
//! lowercased and its Latin accents taken off (`Jörg` → `jorg`, `ß` →
//! `ss`), by one table of letters that both the query (here, in Rust) and
//! the stored columns (a SQL expression the schema writes from the same
//! table) use. Plain SQL only, so that any SQLite since 3.34 (Debian 12's
//! `sqlite3` among them) can read and write the store. Also the pass that
//! moves filed mails from `search_backlog` into `message_search` (the
//! writer runs it, migration 19 says why). Must not build a listing:
//! `messages` and `candidates` build theirs with it.

/// Letters and what they become. Append only: a store keeps the
/// expression its migration wrote, so a letter added later is folded in
/// new queries but not in the columns of an existing store.
const FOLDS: &[(&str, &str)] = &[
    ("àáâãäåāąă", "a"),
    ("ÀÁÂÃÄÅĀĄĂ", "a"),
    ("æ", "ae"),
    ("Æ", "ae"),
    ("çćčĉċ", "c"),
    ("ÇĆČĈĊ", "c"),
    ("ďđ", "d"),
    ("ĎĐ", "d"),
    ("ð", "d"),
    ("èéêëēėęě", "e"),
    ("ÈÉÊËĒĖĘĚ", "e"),
    ("ğģ", "g"),
    ("ĞĢ", "g"),
    ("ìíîïīįı", "i"),
    ("ÌÍÎÏĪĮİ", "i"),
    ("łľĺļ", "l"),
    ("ŁĽĹĻ", "l"),
    ("ñńňņ", "n"),
    ("ÑŃŇŅ", "n"),
    ("òóôõöøōő", "o"),
    ("ÒÓÔÕÖØŌŐ", "o"),
    ("œ", "oe"),
    ("Œ", "oe"),
    ("řŕ", "r"),
    ("ŘŔ", "r"),
    ("śšşș", "s"),
    ("ŚŠŞȘ", "s"),
    ("ß", "ss"),
    ("ẞ", "ss"),
    ("ťţț", "t"),
    ("ŤŢȚ", "t"),
    ("þ", "th"),
    ("Þ", "th"),
    ("ùúûüūůűų", "u"),
    ("ÙÚÛÜŪŮŰŲ", "u"),
    ("ýÿ", "y"),
    ("ÝŸ", "y"),
    ("źżž", "z"),
    ("ŹŻŽ", "z"),
];

use rusqlite::Connection;

/// `text` as the indexes hold it: lowercased, accents off.
pub(super) fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match FOLDS.iter().find(|(from, _)| from.contains(c)) {
            Some((_, to)) => out.push_str(to),
            None => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// Letters one generated column folds: the parser of SQLite before 3.46
/// overflows at about 30 nested calls (3.40 measured: 28 parse, 32 do
/// not), so a fold is a chain of columns, each well below that.
const PER_COLUMN: usize = 16;

/// The `replace` calls of a fold, `PER_COLUMN` at a time, around `inner`.
fn replaces(inner: &str, letters: &[(char, &str)]) -> String {
    let mut sql = "replace(".repeat(letters.len());
    sql.push_str(inner);
    for (c, to) in letters {
        sql.push_str(&format!(", '{c}', '{to}')"));
    }
    sql
}

/// `FOLD COLUMN table.column AS (expr);` in a migration becomes the
/// generated columns that hold `fold(expr)`: `column_fold1`, … each
/// folding some letters of the one before, and `column` the last.
pub(super) fn expand_fold(sql: &str) -> String {
    const MARK: &str = "FOLD COLUMN ";
    let letters: Vec<(char, &str)> = FOLDS
        .iter()
        .flat_map(|(from, to)| from.chars().map(move |c| (c, *to)))
        .collect();
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let after = &rest[at + MARK.len()..];
        let (target, expr_and_rest) = after.split_once(" AS (").unwrap_or((after, ""));
        let (table, column) = target.trim().split_once('.').unwrap_or(("", target));
        // The matching parenthesis (a migration's own text: no quotes with
        // parentheses in them).
        let mut depth = 1usize;
        let end = expr_and_rest
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .unwrap_or(expr_and_rest.len());
        let mut inner = format!("lower({})", &expr_and_rest[..end]);
        let chunks: Vec<&[(char, &str)]> = letters.chunks(PER_COLUMN).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let name = if i + 1 == chunks.len() {
                column.to_string()
            } else {
                format!("{column}_fold{}", i + 1)
            };
            out.push_str(&format!(
                "ALTER TABLE {table} ADD COLUMN {name} TEXT GENERATED ALWAYS AS ({}) VIRTUAL;\n    ",
                replaces(&inner, chunk)
            ));
            inner = name;
        }
        // Past the `)` and the `;` after it.
        let tail = expr_and_rest.get(end + 1..).unwrap_or("");
        rest = tail.strip_prefix(';').unwrap_or(tail);
    }
    out.push_str(rest);
    out
}

/// `UNFOLD COLUMN table.column;` in a migration becomes the `DROP COLUMN`
/// of every generated column `FOLD COLUMN` made for it on this store
/// (`column`, then `column_foldN` … `column_fold1`: each needs the one
/// before), however many letters the table had when it ran.
pub(super) fn expand_unfold(conn: &Connection, sql: &str) -> rusqlite::Result<String> {
    const MARK: &str = "UNFOLD COLUMN ";
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let after = &rest[at + MARK.len()..];
        let (target, tail) = after.split_once(';').unwrap_or((after, ""));
        let (table, column) = target.trim().split_once('.').unwrap_or(("", target.trim()));
        let mut stmt = conn.prepare(
            "SELECT name FROM pragma_table_xinfo(?1)
             WHERE name = ?2 OR substr(name, 1, length(?2) + 5) = ?2 || '_fold'
             ORDER BY cid DESC",
        )?;
        let names = stmt
            .query_map([table, column], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for name in names {
            out.push_str(&format!("ALTER TABLE {table} DROP COLUMN {name};\n    "));
        }
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// A mail's text as the search index holds it, in SQL over `messages m`:
/// its subject, sender name and address and envelope sender, folded by
/// [`fold`] (`jobmail_fold`) when the writer indexes it (migration 19).
pub(super) const MAIL_TEXT: &str =
    "jobmail_fold(coalesce(m.subject, '') || ' ' || coalesce(m.from_name, '')
        || ' ' || coalesce(m.from_addr, '') || ' ' || m.envelope_sender)";

/// What a search asks the trigram indexes (`message_search`,
/// `candidate_search`): three characters or more are one FTS5 phrase, any
/// substring in any case; shorter text is looked for row by row.
pub(super) enum SearchText {
    /// An FTS5 phrase, quoted, its quotes doubled: never query syntax.
    Trigram(String),
    /// Folded, for `instr` on the folded columns.
    Short(String),
}

impl SearchText {
    /// `None` for no text or only spaces.
    pub(super) fn given(text: Option<&str>) -> Option<Self> {
        text.map(str::trim).filter(|t| !t.is_empty()).map(Self::new)
    }

    fn new(text: &str) -> Self {
        let folded = fold(text);
        if folded.chars().count() >= 3 {
            SearchText::Trigram(format!("\"{}\"", folded.replace('"', "\"\"")))
        } else {
            SearchText::Short(folded)
        }
    }

    pub(super) fn param(&self) -> &str {
        match self {
            SearchText::Trigram(s) | SearchText::Short(s) => s,
        }
    }

    /// The folded text itself, for `instr` on the backlog's mails.
    pub(super) fn folded(&self) -> String {
        match self {
            SearchText::Trigram(s) => s[1..s.len() - 1].replace("\"\"", "\""),
            SearchText::Short(s) => s.clone(),
        }
    }
}

/// `jobmail_fold(text)`, SQL's name for [`fold`], on every connection: the
/// writer folds a mail's text with it when it indexes the mail, and a
/// search reads the backlog's mails with it. Queries only, never the
/// schema, which stays plain SQL (an operator's `sqlite3` can still read
/// and write the store; only jobmail indexes mail).
pub(super) fn add_fold_function(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "jobmail_fold",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let text: Option<String> = ctx.get(0)?;
            Ok(text.map(|t| fold(&t)))
        },
    )
}

/// Most mails one pass of [`index_backlog`] indexes: more than a second of
/// the fastest ingest measured, in one transaction of a few milliseconds
/// per hundred mails.
pub(super) const BACKLOG_PASS: i64 = 5000;

/// Indexes up to `limit` mails of the backlog, oldest first, with their
/// candidate as it is now, in one transaction; returns how many. A mail
/// moved or renamed while it waited is indexed as it is now; one already
/// indexed is never in the backlog (only filing puts it there, once).
pub(super) fn index_backlog(conn: &mut Connection, limit: i64) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        &format!(
            "INSERT INTO message_search (rowid, mail, candidate)
             SELECT m.id, {MAIL_TEXT}, coalesce(c.search_name, '')
             FROM (SELECT message_id FROM search_backlog ORDER BY message_id LIMIT ?1) b
             JOIN messages m ON m.id = b.message_id LEFT JOIN candidates c ON c.id = m.candidate_id"
        ),
        [limit],
    )?;
    let done = tx.execute(
        "DELETE FROM search_backlog WHERE message_id IN
             (SELECT message_id FROM search_backlog ORDER BY message_id LIMIT ?1)",
        [limit],
    )?;
    tx.commit()?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_and_the_stored_columns_fold_every_letter_alike() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(&expand_fold(
            "CREATE TABLE t (a TEXT, b TEXT);
             FOLD COLUMN t.folded AS (a || ' ' || (b));
             SELECT 1;",
        ))
        .unwrap();
        let all: String = FOLDS.iter().map(|(from, _)| *from).collect();
        // (Letters outside the table, such as Greek, are lowercased by the
        // query only; the trigram index folds their case on both sides.)
        let sample = format!("Jörg WEISS-Weiß Łukasz José Ærø {all}");
        conn.execute("INSERT INTO t VALUES (?1, 'ÖZİL')", [&sample])
            .unwrap();
        let stored: String = conn
            .query_row("SELECT folded FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, fold(&format!("{sample} ÖZİL")));
        assert!(fold("Jörg Weiß").starts_with("jorg weiss"));
        assert_eq!(fold("ŁUKASZ"), "lukasz");
        // Each column nests few enough calls for an old SQLite's parser.
        let sql = expand_fold("FOLD COLUMN t.x AS (a);");
        for line in sql.lines().filter(|l| l.contains("ALTER TABLE")) {
            assert!(line.matches("replace(").count() <= PER_COLUMN, "{line}");
        }
        assert!(sql.contains("ADD COLUMN x TEXT") && sql.contains("ADD COLUMN x_fold1 TEXT"));
    }

    #[test]
    fn search_text_is_a_phrase_never_syntax() {
        assert!(SearchText::given(Some("  ")).is_none());
        match SearchText::given(Some("a\" OR \"b")) {
            Some(SearchText::Trigram(t)) => assert_eq!(t, "\"a\"\" or \"\"b\""),
            _ => panic!("a phrase"),
        }
        match SearchText::given(Some("Xü")) {
            Some(SearchText::Short(t)) => assert_eq!(t, "xu"),
            _ => panic!("short"),
        }
    }
}
