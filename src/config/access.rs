//! Who may see what: `[documents]`, `[[document_category]]` (with the
//! rules that pre-classify an attachment by its file name or type),
//! `[[role]]` (view and edit per document category, operation rights) and
//! `[[user]]` (an API client or a recruiter: role, subsidiaries, and a
//! token kept only as its SHA-256).
//!
//! Reads the config text and a user's `token_file`; the token itself is
//! never kept, printed or logged, only its hash.

#[allow(unused_imports)]
use super::*;

/// The category of incoming attachments no rule classifies.
pub const UNSORTED: &str = "unsorted";
/// The category of the attachments of our own mail.
pub const SENT: &str = "sent";

/// A document category: an attachment received or sent, or an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentCategory {
    pub id: String,
    pub name: String,
    /// Seen only by roles that name it (offer, contract, internal): `"*"`
    /// in a role's `view` does not include it.
    pub sensitive: bool,
    /// Pre-classification: a file name holding one of these words (any case).
    pub names: Vec<String>,
    /// ... or a content type among these (`application/pdf`).
    pub types: Vec<String>,
}

/// `[documents]`: where attachments go when they arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentsConfig {
    /// Incoming attachments that no category's rule claims.
    pub default_category: String,
    /// The attachments of our own mail.
    pub sent_category: String,
}

/// What a role may do besides seeing and editing documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Right {
    /// Preview and send mail to candidates.
    Compose,
    /// File mail from the unassigned inbox under a candidate.
    Assign,
    /// The outbox: retry, hold, release, cancel, delete; suppressions.
    OperateQueue,
    /// Create, change and merge candidates; application statuses.
    ManageCandidates,
}

impl Right {
    pub const ALL: [Right; 4] = [
        Right::Compose,
        Right::Assign,
        Right::OperateQueue,
        Right::ManageCandidates,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Right::Compose => "compose",
            Right::Assign => "assign",
            Right::OperateQueue => "operate_queue",
            Right::ManageCandidates => "manage_candidates",
        }
    }
}

/// A recruiting role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: String,
    pub name: String,
    /// `view = ["*"]`: every category that is not sensitive.
    pub view_all: bool,
    /// Categories named in `view` (sensitive ones only this way).
    pub view: Vec<String>,
    /// `edit = ["*"]`: every category that is not sensitive.
    pub edit_all: bool,
    /// Categories named in `edit`; editing a category includes seeing it.
    pub edit: Vec<String>,
    pub rights: Vec<Right>,
}

/// A user of the API (or of the CLI with `--as`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub role: String,
    /// SHA-256 of the bearer token, lowercase hex.
    pub token_sha256: String,
    /// The subsidiaries whose candidates the user sees; empty: all.
    pub subsidiaries: Vec<String>,
}

/// Shortest token a `token_file` may hold (bytes).
const MIN_TOKEN_BYTES: usize = 32;

/// `[documents]`, or its defaults.
pub(super) fn read_documents(ctx: &mut Ctx, root: &mut Section) -> DocumentsConfig {
    let mut documents = DocumentsConfig {
        default_category: UNSORTED.into(),
        sent_category: SENT.into(),
    };
    if let Some(mut section) = table_section(ctx, root, "documents") {
        if let Some(c) = section.string(ctx, "default_category") {
            documents.default_category = c;
        }
        if let Some(c) = section.string(ctx, "sent_category") {
            documents.sent_category = c;
        }
        section.finish(ctx);
    }
    documents
}

/// Every `[[document_category]]`; `unsorted` and `sent` are there even when
/// the config does not list them.
pub(super) fn read_document_categories(
    ctx: &mut Ctx,
    root: &mut Section,
) -> Vec<(usize, Range<usize>, DocumentCategory)> {
    let mut out = Vec::new();
    for (i, table, span) in tables(ctx, root, "document_category") {
        let mut s = Section::new(format!("document_category[{i}]"), table, Some(span.clone()));
        let id = s.required_string(ctx, "id");
        let name = s.string(ctx, "name");
        let sensitive = s.boolean(ctx, "sensitive", false);
        let names = s
            .strings(ctx, "names")
            .into_iter()
            .map(|(n, _)| n.to_lowercase())
            .filter(|n| !n.trim().is_empty())
            .collect();
        let types = s
            .strings(ctx, "types")
            .into_iter()
            .map(|(t, _)| t.to_ascii_lowercase())
            .collect();
        s.finish(ctx);
        if let Some(id) = id {
            check_id(ctx, &id, &span, &format!("document_category[{i}].id"));
            out.push((
                i,
                span,
                DocumentCategory {
                    name: name.unwrap_or_else(|| id.clone()),
                    id,
                    sensitive,
                    names,
                    types,
                },
            ));
        }
    }
    for (id, name) in [(UNSORTED, "Unsorted"), (SENT, "Sent by us")] {
        if !out.iter().any(|(_, _, c)| c.id == id) {
            out.push((
                usize::MAX,
                0..0,
                DocumentCategory {
                    id: id.into(),
                    name: name.into(),
                    sensitive: false,
                    names: Vec::new(),
                    types: Vec::new(),
                },
            ));
        }
    }
    out
}

/// `["*"]` or a list of category ids.
fn categories(ctx: &mut Ctx, s: &mut Section, key: &str, known: &[String]) -> (bool, Vec<String>) {
    let path = s.key_path(key);
    let mut all = false;
    let mut out = Vec::new();
    for (j, (c, span)) in s.strings(ctx, key).into_iter().enumerate() {
        if c == "*" {
            all = true;
        } else if known.contains(&c) {
            out.push(c);
        } else {
            ctx.error(
                Some(&span),
                &format!("{path}[{j}]"),
                format!("no [[document_category]] has id {c:?}"),
            );
        }
    }
    (all, out)
}

/// Every `[[role]]`, with its index and span.
pub(super) fn read_roles(
    ctx: &mut Ctx,
    root: &mut Section,
    categories_known: &[String],
) -> Vec<(usize, Range<usize>, Role)> {
    let mut out = Vec::new();
    for (i, table, span) in tables(ctx, root, "role") {
        let mut s = Section::new(format!("role[{i}]"), table, Some(span.clone()));
        let id = s.required_string(ctx, "id");
        let name = s.string(ctx, "name");
        let (view_all, view) = categories(ctx, &mut s, "view", categories_known);
        let (edit_all, edit) = categories(ctx, &mut s, "edit", categories_known);
        let mut rights = Vec::new();
        let path = s.key_path("rights");
        for (j, (r, rspan)) in s.strings(ctx, "rights").into_iter().enumerate() {
            match Right::ALL.iter().find(|x| x.as_str() == r) {
                Some(right) => rights.push(*right),
                None => ctx.error(
                    Some(&rspan),
                    &format!("{path}[{j}]"),
                    format!(
                        "{r:?} is not a right (one of {})",
                        Right::ALL.map(Right::as_str).join(", ")
                    ),
                ),
            }
        }
        rights.sort();
        rights.dedup();
        s.finish(ctx);
        if let Some(id) = id {
            check_id(ctx, &id, &span, &format!("role[{i}].id"));
            out.push((
                i,
                span,
                Role {
                    name: name.unwrap_or_else(|| id.clone()),
                    id,
                    view_all,
                    view,
                    edit_all,
                    edit,
                    rights,
                },
            ));
        }
    }
    out
}

/// Every `[[user]]`, with its index and span; a `token_file` is read here
/// and only its hash kept.
pub(super) fn read_users(
    ctx: &mut Ctx,
    root: &mut Section,
    base_dir: &Path,
) -> Vec<(usize, Range<usize>, User)> {
    let mut out = Vec::new();
    for (i, table, span) in tables(ctx, root, "user") {
        let key = format!("user[{i}]");
        let mut s = Section::new(key.clone(), table, Some(span.clone()));
        let id = s.required_string(ctx, "id");
        let name = s.string(ctx, "name");
        let role = s.required_string(ctx, "role");
        let hash_span = s.span_of("token_sha256");
        let hash = s.string(ctx, "token_sha256");
        let file_span = s.span_of("token_file");
        let file = s.string(ctx, "token_file");
        let subsidiaries = s
            .strings(ctx, "subsidiaries")
            .into_iter()
            .map(|(x, _)| x)
            .collect();
        s.finish(ctx);
        let token_sha256 = match (hash, file) {
            (Some(h), None) => {
                let h = h.to_ascii_lowercase();
                if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Some(h)
                } else {
                    ctx.error(
                        hash_span.as_ref(),
                        &format!("{key}.token_sha256"),
                        "expected 64 hex digits (the SHA-256 of the token: `printf %s TOKEN | sha256sum`)",
                    );
                    None
                }
            }
            (None, Some(f)) => {
                let path = PathBuf::from(&f);
                let path = if path.is_relative() {
                    base_dir.join(path)
                } else {
                    path
                };
                match std::fs::read_to_string(&path) {
                    Ok(text) if text.trim().len() >= MIN_TOKEN_BYTES => {
                        use sha2::Digest;
                        Some(hex::encode(sha2::Sha256::digest(text.trim().as_bytes())))
                    }
                    Ok(_) => {
                        ctx.error(
                            file_span.as_ref(),
                            &format!("{key}.token_file"),
                            format!(
                                "{}: a token needs at least {MIN_TOKEN_BYTES} characters (e.g. `openssl rand -hex 32`)",
                                path.display()
                            ),
                        );
                        None
                    }
                    Err(e) => {
                        ctx.error(
                            file_span.as_ref(),
                            &format!("{key}.token_file"),
                            format!("{}: {e}", path.display()),
                        );
                        None
                    }
                }
            }
            (Some(_), Some(_)) => {
                ctx.error(Some(&span), &key, "token_sha256 or token_file, not both");
                None
            }
            (None, None) => {
                ctx.error(Some(&span), &key, "a user needs token_sha256 or token_file");
                None
            }
        };
        if let (Some(id), Some(role), Some(token_sha256)) = (id, role, token_sha256) {
            check_id(ctx, &id, &span, &format!("{key}.id"));
            out.push((
                i,
                span,
                User {
                    name: name.unwrap_or_else(|| id.clone()),
                    id,
                    role,
                    token_sha256,
                    subsidiaries,
                },
            ));
        }
    }
    out
}

/// The checks across these sections and the rest: the documents' default
/// and sent categories exist, ids are unique, users name existing roles
/// and subsidiaries and no two share a token.
pub(super) fn check_access(
    ctx: &mut Ctx,
    documents: &DocumentsConfig,
    categories: &[(usize, Range<usize>, DocumentCategory)],
    roles: &[(usize, Range<usize>, Role)],
    users: &[(usize, Range<usize>, User)],
    subsidiaries: &[(usize, Range<usize>, Subsidiary)],
) {
    for (key, id) in [
        ("documents.default_category", &documents.default_category),
        ("documents.sent_category", &documents.sent_category),
    ] {
        if !categories.iter().any(|(_, _, c)| &c.id == id) {
            ctx.error(None, key, format!("no [[document_category]] has id {id:?}"));
        }
    }
    duplicates(
        ctx,
        "document_category",
        categories
            .iter()
            .filter(|(i, _, _)| *i != usize::MAX)
            .map(|(i, s, x)| (*i, s, &x.id)),
    );
    duplicates(ctx, "role", roles.iter().map(|(i, s, x)| (*i, s, &x.id)));
    duplicates(ctx, "user", users.iter().map(|(i, s, x)| (*i, s, &x.id)));
    let mut tokens: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, span, u) in users {
        if !roles.iter().any(|(_, _, r)| r.id == u.role) {
            ctx.error(
                Some(span),
                &format!("user[{i}].role"),
                format!("no [[role]] has id {:?}", u.role),
            );
        }
        for s in &u.subsidiaries {
            if !subsidiaries.iter().any(|(_, _, x)| &x.id == s) {
                ctx.error(
                    Some(span),
                    &format!("user[{i}].subsidiaries"),
                    format!("no [[subsidiary]] has id {s:?}"),
                );
            }
        }
        if let Some(first) = tokens.insert(&u.token_sha256, *i) {
            ctx.error(
                Some(span),
                &format!("user[{i}]"),
                format!("the same token as user[{first}]: each user needs a token of their own"),
            );
        }
    }
}
