//! Matching: which candidate an incoming mail belongs to, and why.
//!
//! Pure: a parsed message, the company [`Company`], the token key and a
//! read-only [`Lookups`] go in; a [`Decision`] with its [`Reason`] comes out.
//! The store applies the decision in the transaction that stores the mail.
//! Evidence is weighed in the order of `docs/matching.md`: reply token,
//! thread (In-Reply-To, References), subject tag, the author's address, and
//! only then a new application. Doubt never guesses: it goes to the
//! unassigned inbox with suggestions. No I/O here.

pub mod forward;
pub mod language;
pub mod token;

use serde::Serialize;

use crate::config::company::Company;
use crate::mail::parsed::{Mailbox, ParsedHeaders};
use forward::Forwarded;
use language::LanguageSource;
use token::TokenKey;

/// What matching needs besides the mail: the company and the token key.
#[derive(Debug, Clone)]
pub struct Matching {
    pub directory: Company,
    pub key: TokenKey,
}

/// What the matcher may ask the store. Read-only.
pub trait Lookups {
    /// Candidates (current ids) owning this address; compared case-insensitively.
    fn candidates_with_address(&self, address: &str) -> Vec<i64>;
    /// Candidates of stored messages whose Message-ID, or original
    /// (Outlook) Message-ID, is `message_id`.
    fn candidates_of_message_id(&self, message_id: &str) -> Vec<i64>;
    /// The current id of a candidate (following merges), if it exists.
    fn resolve_candidate(&self, id: i64) -> Option<i64>;
    /// The candidate has applications and all of them are closed.
    fn thread_closed(&self, id: i64) -> bool;
    /// An outbox item: who it went to, from which envelope sender, its state.
    fn outbox_item(&self, item: i64) -> Option<OutboxFacts>;
    /// The outbox item (and its candidate) whose mail had this Message-ID.
    fn outbox_item_of_message_id(&self, message_id: &str) -> Option<(i64, i64)>;
    /// The latest sent outbox item (and its candidate) to this address.
    fn outbox_item_to_address(&self, _address: &str) -> Option<(i64, i64)> {
        None
    }
}

/// The author `address` of a mail is proven: its own domain by SPF, DKIM
/// or DMARC, or by the results of a passing ARC chain that the company's
/// own server sealed (a redirect that changed the mail, e.g. a footer or
/// a subject tag, breaks the author's DKIM; the company had checked it
/// before). Pure.
pub fn author_proven(
    a: &crate::mail::parsed::Authentication,
    address: &str,
    dir: &Company,
) -> bool {
    a.proves(address)
        || (!a.arc_sealer.is_empty()
            && dir.is_colleague(&format!("postmaster@{}", a.arc_sealer))
            && a.arc_vouches_for(address))
}

/// What a delivery report is checked against: the outbox item it names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxFacts {
    pub candidate: i64,
    pub state: String,
    /// The VERP envelope sender the item was queued with.
    pub envelope_from: String,
    /// Its envelope recipients.
    pub recipients: Vec<String>,
    /// When it last changed state (unix ms): a report of the unsigned
    /// VERP form counts only while its item is recent.
    pub updated_at_ms: i64,
}

/// How long after its last change an item queued before VERP MACs may
/// still be bounced from its unsigned `bounce+<item>@` address: longer
/// than any queue lifetime (60 days at most) and than MTAs keep bounces.
pub const UNSIGNED_VERP_DAYS: i64 = 90;

/// What is known of one incoming mail.
#[derive(Debug, Clone, Copy)]
pub struct MatchInput<'a> {
    /// `MAIL FROM`, empty for the null sender.
    pub envelope_sender: &'a str,
    pub headers: &'a ParsedHeaders,
    /// The displayed text, for inline forwarded blocks.
    pub text: &'a str,
    pub attached_authors: &'a [Mailbox],
    /// Envelope recipients.
    pub recipients: &'a [String],
    /// What the mail reports, if it is a delivery status notification.
    pub report: Option<&'a crate::inbound::dsn::Report>,
    /// SPF, DKIM and DMARC on receipt, if they were checked.
    pub authentication: Option<&'a crate::mail::parsed::Authentication>,
    /// When the mail arrived (unix ms).
    pub received_at_ms: i64,
}

impl<'a> MatchInput<'a> {
    /// What a stored mail tells: its parsed form and its envelope, and the
    /// delivery report it carries, if any.
    pub fn of(
        parsed: &'a crate::mail::parsed::ParsedMessage,
        envelope: &'a crate::mail::parsed::Envelope,
        report: Option<&'a crate::inbound::dsn::Report>,
    ) -> MatchInput<'a> {
        MatchInput {
            envelope_sender: &envelope.sender,
            headers: &parsed.headers,
            text: &parsed.text,
            attached_authors: &parsed.attached_authors,
            recipients: &envelope.recipients,
            report,
            authentication: envelope.authentication.as_ref(),
            received_at_ms: envelope.received_at_ms,
        }
    }
}

/// Why a mail was filed where it was. Stored as its kebab-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    ReplyToken,
    InReplyTo,
    References,
    SubjectTag,
    Sender,
    OriginalSender,
    ForwardedAuthor,
    NewApplication,
    Conflict,
    AmbiguousSender,
    ForwardAuthorUnknown,
    Colleague,
    UnknownAuthor,
    Automatic,
    /// Assigned by an operator (`jobmail message assign`).
    Manual,
    /// A delivery report about one of our mails: null sender, to the signed
    /// VERP address of the item, about one of its recipients.
    Bounce,
    /// Something shaped like a delivery report about one of our mails that
    /// proves nothing (another envelope sender, the plain jobs address, a
    /// VERP address whose MAC does not check, a recipient the item never
    /// had): shown in the thread, changes nothing.
    UnverifiedReport,
    /// Only a subject tag of the first, short format: never evidence alone.
    LegacyTag,
    /// From names a known candidate, but the mail failed DMARC for that
    /// domain: anyone could have written it.
    UnauthenticatedSender,
}

impl Reason {
    pub const ALL: [Reason; 19] = [
        Reason::Bounce,
        Reason::UnauthenticatedSender,
        Reason::UnverifiedReport,
        Reason::LegacyTag,
        Reason::ReplyToken,
        Reason::InReplyTo,
        Reason::References,
        Reason::SubjectTag,
        Reason::Sender,
        Reason::OriginalSender,
        Reason::ForwardedAuthor,
        Reason::NewApplication,
        Reason::Conflict,
        Reason::AmbiguousSender,
        Reason::ForwardAuthorUnknown,
        Reason::Colleague,
        Reason::UnknownAuthor,
        Reason::Automatic,
        Reason::Manual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ReplyToken => "reply-token",
            Reason::InReplyTo => "in-reply-to",
            Reason::References => "references",
            Reason::SubjectTag => "subject-tag",
            Reason::Sender => "sender",
            Reason::OriginalSender => "original-sender",
            Reason::ForwardedAuthor => "forwarded-author",
            Reason::NewApplication => "new-application",
            Reason::Conflict => "conflict",
            Reason::AmbiguousSender => "ambiguous-sender",
            Reason::ForwardAuthorUnknown => "forward-author-unknown",
            Reason::Colleague => "colleague",
            Reason::UnknownAuthor => "unknown-author",
            Reason::Automatic => "automatic",
            Reason::Manual => "manual",
            Reason::Bounce => "bounce",
            Reason::UnverifiedReport => "unverified-report",
            Reason::LegacyTag => "legacy-subject-tag",
            Reason::UnauthenticatedSender => "unauthenticated-sender",
        }
    }

    pub fn parse(text: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// How sure the evidence is: `certain` (signed token, an operator, a
    /// verified report), `high` (the thread, a known sender), `medium` (a
    /// 30-bit subject tag, an author recovered from a rewrite or a forward),
    /// `low` (an unverified report), `new` (a new application), `none` (not
    /// filed under anyone).
    pub fn confidence(self) -> &'static str {
        match self {
            Reason::ReplyToken | Reason::Manual | Reason::Bounce => "certain",
            Reason::InReplyTo | Reason::References | Reason::Sender => "high",
            Reason::SubjectTag | Reason::OriginalSender | Reason::ForwardedAuthor => "medium",
            Reason::UnverifiedReport => "low",
            Reason::NewApplication => "new",
            Reason::LegacyTag
            | Reason::UnauthenticatedSender
            | Reason::Conflict
            | Reason::AmbiguousSender
            | Reason::ForwardAuthorUnknown
            | Reason::Colleague
            | Reason::UnknownAuthor
            | Reason::Automatic => "none",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person to create from a mail's author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewCandidate {
    pub first_name: String,
    pub last_name: String,
    /// Lowercased in the domain.
    pub email: String,
    pub language: Option<String>,
    /// Where `language` came from (`None` without a language).
    pub language_source: Option<LanguageSource>,
}

/// An application to create with a new candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewApplication {
    pub subsidiary: String,
    /// `None`: a general application to the subsidiary.
    pub position: Option<String>,
}

/// Where the mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    Candidate(i64),
    /// Create this candidate (and the application) and file the mail there.
    New(NewCandidate, NewApplication),
    /// For a human to decide; the candidates it could belong to.
    Unassigned(Vec<i64>),
    /// Automatic mail without evidence: kept, filed nowhere.
    Nowhere,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub assignment: Assignment,
    pub reason: Reason,
    /// In plain words, for `candidate show` and `message show`.
    pub detail: String,
    /// The candidate's applications are all closed (only with `Candidate`).
    pub closed_thread: bool,
    /// An address to record for the candidate: the author of a mail that
    /// carried the candidate's signed reply token from an address not yet
    /// known for anyone (a reply from a second address).
    pub learn_address: Option<String>,
    /// A delivery report about one of our outbox items.
    pub bounce: Option<Bounce>,
}

/// What a delivery report does to the outbox item it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    pub item: i64,
    pub kind: crate::inbound::dsn::Kind,
    pub summary: String,
    /// The address that bounced (for the suppression list).
    pub recipient: Option<String>,
}

/// Who wrote the mail, as far as its shape tells.
enum Author {
    Person(Mailbox, Reason),
    /// A list or group rewrote From and left only the author's name.
    RewrittenUnknown(String),
    /// A colleague forwarded a mail whose author cannot be found.
    ForwardUnknown(Mailbox),
    /// A colleague's own mail.
    Colleague(Mailbox),
    Missing,
}

fn author(input: &MatchInput, dir: &Company) -> Author {
    let h = input.headers;
    let Some(from) = &h.from else {
        return Author::Missing;
    };
    let from_colleague = dir.is_colleague(&from.address);
    // A list or group rewrote From ("'Erika' via Jobs <jobs-group@…>").
    // Only the company's own group or a mailing list rewrites From; on
    // anyone else's mail these headers are the sender's own words, and
    // would let a stranger name any author.
    let rewriter = from_colleague || h.list || h.list_id.is_some();
    if rewriter
        && let Some(original) = &h.x_original_from
        && !original.address.eq_ignore_ascii_case(&from.address)
        && !dir.is_colleague(&original.address)
    {
        return Author::Person(original.clone(), Reason::OriginalSender);
    }
    let via = from
        .name
        .as_deref()
        .is_some_and(|n| n.to_lowercase().contains(" via "));
    if via
        && rewriter
        && let Some(reply_to) = h.reply_to.iter().find(|r| {
            !r.address.eq_ignore_ascii_case(&from.address) && !dir.is_colleague(&r.address)
        })
    {
        return Author::Person(reply_to.clone(), Reason::OriginalSender);
    }
    if via && from_colleague {
        let name = from.name.as_deref().unwrap_or("");
        let author = name.split(" via ").next().unwrap_or(name);
        return Author::RewrittenUnknown(
            author
                .trim_matches(|c| c == '\'' || c == '"')
                .trim()
                .to_string(),
        );
    }
    if !from_colleague {
        return Author::Person(from.clone(), Reason::Sender);
    }
    // A colleague: a forward, or their own mail.
    if let Some(original) = input
        .attached_authors
        .iter()
        .find(|a| !dir.is_colleague(&a.address))
    {
        return Author::Person(original.clone(), Reason::ForwardedAuthor);
    }
    match forward::inline_forward(input.text) {
        Some(Forwarded::Author(original)) if !dir.is_colleague(&original.address) => {
            Author::Person(original, Reason::ForwardedAuthor)
        }
        Some(Forwarded::Author(_)) => Author::Colleague(from.clone()),
        Some(Forwarded::AuthorUnknown) => Author::ForwardUnknown(from.clone()),
        None if h
            .subject
            .as_deref()
            .is_some_and(forward::is_forward_subject) =>
        {
            Author::ForwardUnknown(from.clone())
        }
        None => Author::Colleague(from.clone()),
    }
}

/// The person who wrote the mail, as `decide` sees it (the original author of
/// a forward or list rewrite); `None` for a colleague's own mail or no From.
pub fn author_of(input: &MatchInput, dir: &Company) -> Option<Mailbox> {
    match author(input, dir) {
        Author::Person(m, _) => Some(m),
        _ => None,
    }
}

/// Every address a mail was sent to: envelope first, then To and Cc.
fn addressed_to<'a>(input: &'a MatchInput) -> impl Iterator<Item = &'a str> {
    input
        .recipients
        .iter()
        .map(String::as_str)
        .chain(input.headers.to.iter().map(|m| m.address.as_str()))
        .chain(input.headers.cc.iter().map(|m| m.address.as_str()))
}

fn push_unique(list: &mut Vec<i64>, id: i64) {
    if !list.contains(&id) {
        list.push(id);
    }
}

fn sorted(mut ids: Vec<i64>) -> Vec<i64> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Candidates of the threads the given Message-IDs belong to, with the first id that led there.
fn thread_candidates(ids: &[String], lookups: &dyn Lookups) -> (Vec<i64>, Option<String>) {
    let mut found = Vec::new();
    let mut first = None;
    for id in ids {
        for c in lookups.candidates_of_message_id(id) {
            if let Some(c) = lookups.resolve_candidate(c) {
                if first.is_none() {
                    first = Some(id.clone());
                }
                push_unique(&mut found, c);
            }
        }
    }
    (found, first)
}

/// Decides where an incoming mail goes. See the module comment and `docs/matching.md`.
pub fn decide(
    input: &MatchInput,
    dir: &Company,
    key: &TokenKey,
    lookups: &dyn Lookups,
) -> Decision {
    let h = input.headers;
    // 0. A delivery report about our own mail.
    if let Some(report) = input.report
        && let Some(d) = report_decision(input, report, dir, key, lookups)
    {
        return d;
    }
    let assigned = |id: i64, reason: Reason, detail: String| Decision {
        assignment: Assignment::Candidate(id),
        reason,
        detail,
        closed_thread: lookups.thread_closed(id),
        learn_address: None,
        bounce: None,
    };
    let unassigned = |ids: Vec<i64>, reason: Reason, detail: String| Decision {
        assignment: Assignment::Unassigned(sorted(ids)),
        reason,
        detail,
        closed_thread: false,
        learn_address: None,
        bounce: None,
    };

    // 1. Reply tokens in any recipient.
    let mut tokens = Vec::new();
    for address in addressed_to(input) {
        if let Some((tag, _)) = dir.plus_tag(address)
            && let Some(id) = key.check_reply_token(tag)
            && let Some(id) = lookups.resolve_candidate(id)
        {
            push_unique(&mut tokens, id);
        }
    }
    // 2. The thread: In-Reply-To first, References only without it.
    let (by_reply, reply_id) = thread_candidates(&h.in_reply_to, lookups);
    let (by_refs, refs_id) = thread_candidates(&h.references, lookups);
    let (thread, thread_reason, thread_id) = if !by_reply.is_empty() {
        (by_reply, Reason::InReplyTo, reply_id)
    } else {
        (by_refs, Reason::References, refs_id)
    };
    let thread_id = thread_id.unwrap_or_default();

    if !tokens.is_empty() {
        let mut all = tokens.clone();
        for &c in &thread {
            push_unique(&mut all, c);
        }
        return if all.len() == 1 {
            let mut d = assigned(
                all[0],
                Reason::ReplyToken,
                format!("signed reply token of candidate {}", all[0]),
            );
            // A reply from an address nobody has yet: now it is theirs.
            if let Author::Person(m, _) = author(input, dir)
                && lookups.candidates_with_address(&m.address).is_empty()
            {
                d.detail
                    .push_str(&format!("; {} is now known for them", m.address));
                d.learn_address = Some(m.address);
            }
            d
        } else {
            unassigned(
                all,
                Reason::Conflict,
                format!(
                    "reply token names candidate(s) {tokens:?}, the thread ({thread_id}) candidate(s) {thread:?}"
                ),
            )
        };
    }
    // The author, and the candidates their address belongs to.
    let author = author(input, dir);
    let sender_candidates: Vec<i64> = match &author {
        Author::Person(m, _) => {
            let mut ids = Vec::new();
            for c in lookups.candidates_with_address(&m.address) {
                if let Some(c) = lookups.resolve_candidate(c) {
                    push_unique(&mut ids, c);
                }
            }
            ids
        }
        _ => Vec::new(),
    };
    if thread.len() > 1 {
        return unassigned(
            thread.clone(),
            Reason::Conflict,
            format!("the referenced mails belong to candidates {thread:?}"),
        );
    }
    if let [c] = thread[..] {
        let header = if thread_reason == Reason::InReplyTo {
            "In-Reply-To"
        } else {
            "References"
        };
        // A known person writing into someone else's thread (B's mail with
        // a quoted A in it): the thread says A, the sender says B.
        if !sender_candidates.is_empty() && !sender_candidates.contains(&c) {
            let mut all = vec![c];
            for &s in &sender_candidates {
                push_unique(&mut all, s);
            }
            return unassigned(
                all,
                Reason::Conflict,
                format!(
                    "{header} <{thread_id}> is in the thread of candidate {c}, the sender is candidate(s) {sender_candidates:?}"
                ),
            );
        }
        return assigned(
            c,
            thread_reason,
            format!("{header} <{thread_id}> is in the thread of candidate {c}"),
        );
    }

    // 3. Subject tags, checked against a known sender. More than one
    // tag-shaped token (valid or not) is doubt: someone tried several.
    let tags = h
        .subject
        .as_deref()
        .map(|s| key.subject_tags(s))
        .unwrap_or_default();
    let resolved = |ids: &[i64]| -> Vec<i64> {
        ids.iter()
            .filter_map(|&id| lookups.resolve_candidate(id))
            .collect()
    };
    let (signed, legacy) = (resolved(&tags.signed), resolved(&tags.legacy));
    let named: Vec<i64> = signed.iter().chain(&legacy).copied().collect();
    let with_senders = |ids: &[i64]| {
        let mut all = ids.to_vec();
        for &c in &sender_candidates {
            push_unique(&mut all, c);
        }
        all
    };
    if tags.tokens > 1 {
        return unassigned(
            with_senders(&named),
            Reason::Conflict,
            format!(
                "the subject holds {} tag-shaped tokens; valid ones name candidate(s) {named:?}",
                tags.tokens
            ),
        );
    }
    let sender_disagrees = |ids: &[i64]| {
        !sender_candidates.is_empty() && !ids.iter().all(|t| sender_candidates.contains(t))
    };
    if !named.is_empty() && sender_disagrees(&named) {
        return unassigned(
            with_senders(&named),
            Reason::Conflict,
            format!(
                "subject tag names candidate(s) {named:?}, the sender is candidate(s) {sender_candidates:?}"
            ),
        );
    }
    if let [c] = signed[..] {
        return assigned(
            c,
            Reason::SubjectTag,
            format!("subject tag {}", key.subject_tag(c)),
        );
    }
    // A tag of the first format (10 bits) is never evidence alone: it
    // agrees with the known sender (who decides below), or it waits.
    if let [c] = legacy[..]
        && sender_candidates.is_empty()
    {
        return unassigned(
            vec![c],
            Reason::LegacyTag,
            format!(
                "only a subject tag of the first, short format names candidate {c}; from an unknown sender it proves nothing"
            ),
        );
    }

    // 4. The author's address; 5. a new application. A program never
    // becomes a candidate; list markers added by the company's own group
    // (Google Groups as the careers address) do not make the author one.
    let own_group = match &author {
        Author::Person(_, Reason::OriginalSender) => h
            .from
            .as_ref()
            .is_some_and(|f| dir.is_colleague(&f.address)),
        Author::RewrittenUnknown(_) => true,
        _ => false,
    };
    let automatic = if own_group { h.robot } else { h.automatic };
    match author {
        Author::Person(mailbox, Reason::Sender)
            if !sender_candidates.is_empty()
                && input.authentication.is_some_and(|a| {
                    a.dmarc_fails_for(&mailbox.address) && !author_proven(a, &mailbox.address, dir)
                }) =>
        {
            unassigned(
                sender_candidates.clone(),
                Reason::UnauthenticatedSender,
                format!(
                    "From {} is candidate(s) {sender_candidates:?}, but the mail failed DMARC for its domain",
                    mailbox.address
                ),
            )
        }
        Author::Person(mailbox, reason) => match sender_candidates[..] {
            [c] => {
                let how = match reason {
                    Reason::OriginalSender => "original author (list rewrite)",
                    Reason::ForwardedAuthor => "author of the forwarded mail",
                    _ => "sender",
                };
                assigned(
                    c,
                    reason,
                    format!("{how} {} is candidate {c}", mailbox.address),
                )
            }
            [] if automatic => nowhere(format!(
                "automatic mail from {}: no candidate created",
                mailbox.address
            )),
            [] => {
                let candidate = new_candidate(&mailbox, language_of(input, dir, reason));
                let application = application_for(input, dir);
                let detail = match reason {
                    Reason::ForwardedAuthor => format!(
                        "new e-mail application of {}, forwarded by {}",
                        mailbox.address,
                        h.from.as_ref().map(|f| f.address.as_str()).unwrap_or("")
                    ),
                    Reason::OriginalSender => format!(
                        "new e-mail application of {} (list rewrite)",
                        mailbox.address
                    ),
                    _ => format!("new e-mail application of {}", mailbox.address),
                };
                Decision {
                    assignment: Assignment::New(candidate, application),
                    reason: Reason::NewApplication,
                    detail,
                    closed_thread: false,
                    learn_address: None,
                    bounce: None,
                }
            }
            _ => unassigned(
                sender_candidates.clone(),
                Reason::AmbiguousSender,
                format!(
                    "{} belongs to candidates {sender_candidates:?}",
                    mailbox.address
                ),
            ),
        },
        _ if automatic => nowhere("automatic mail without evidence".to_string()),
        Author::ForwardUnknown(by) => unassigned(
            Vec::new(),
            Reason::ForwardAuthorUnknown,
            format!(
                "forwarded by {}; the original author cannot be found",
                by.address
            ),
        ),
        Author::Colleague(by) => unassigned(
            Vec::new(),
            Reason::Colleague,
            format!("written by colleague {}", by.address),
        ),
        Author::RewrittenUnknown(name) => unassigned(
            Vec::new(),
            Reason::UnknownAuthor,
            format!("a list rewrote From and left only the author's name ({name:?})"),
        ),
        Author::Missing => unassigned(
            Vec::new(),
            Reason::UnknownAuthor,
            "no From header".to_string(),
        ),
    }
}

/// Where a delivery report goes and what it may change. It changes an
/// outbox item only when it is proven: the null sender, to the item's
/// signed VERP address (or the unsigned one the item was queued with,
/// before MACs), about a recipient of that item. Anything else that names
/// one of our mails (by VERP, original Message-ID or recipient) is filed
/// in that candidate's thread as an unverified report, changing nothing.
/// `None`: it names none of our mails.
fn report_decision(
    input: &MatchInput,
    report: &crate::inbound::dsn::Report,
    dir: &Company,
    key: &TokenKey,
    lookups: &dyn Lookups,
) -> Option<Decision> {
    use token::Verp;
    let mut doubts = Vec::new();
    let by_verp = input.recipients.iter().find_map(|r| {
        let tag = dir.bounce_tag(r)?;
        let (item, signed) = match key.check_verp_tag(tag) {
            Verp::Signed(item) => (item, true),
            Verp::Unsigned(item) => (item, false),
            Verp::Forged => {
                doubts.push(format!("{r} is not a VERP address we signed"));
                return None;
            }
        };
        let facts = lookups.outbox_item(item)?;
        let recent =
            input.received_at_ms - facts.updated_at_ms < UNSIGNED_VERP_DAYS * 86_400_000;
        let proven = signed || (facts.envelope_from.eq_ignore_ascii_case(r) && recent);
        if !proven {
            doubts.push(format!(
                "{r} carries no MAC, and item {item} was not sent from it in the last {UNSIGNED_VERP_DAYS} days"
            ));
        }
        Some((item, facts, proven))
    });
    if let Some((item, facts, proven)) = &by_verp {
        if !input.envelope_sender.is_empty() {
            doubts.push(format!(
                "sent from <{}>, not the null sender",
                input.envelope_sender
            ));
        }
        let named = report.recipient.as_deref().is_some_and(|r| {
            facts
                .recipients
                .iter()
                .any(|x| x.eq_ignore_ascii_case(r.trim_matches(|c| c == '<' || c == '>')))
        });
        if !named {
            doubts.push(format!(
                "it names {}, not a recipient of item {item}",
                report.recipient.as_deref().unwrap_or("no recipient")
            ));
        }
        if *proven && doubts.is_empty() {
            let candidate = lookups
                .resolve_candidate(facts.candidate)
                .unwrap_or(facts.candidate);
            return Some(Decision {
                assignment: Assignment::Candidate(candidate),
                reason: Reason::Bounce,
                detail: format!(
                    "delivery report for outbox item {item}: {}",
                    report.summary()
                ),
                closed_thread: false,
                learn_address: None,
                bounce: Some(Bounce {
                    item: *item,
                    kind: report.kind(),
                    summary: report.summary(),
                    recipient: report.recipient.clone(),
                }),
            });
        }
    } else {
        doubts.push("not sent to a VERP address of ours".into());
    }
    let (item, candidate) = by_verp
        .map(|(item, facts, _)| (item, facts.candidate))
        .or_else(|| {
            report
                .original_message_id
                .as_deref()
                .and_then(|m| lookups.outbox_item_of_message_id(m))
        })
        .or_else(|| {
            report
                .recipient
                .as_deref()
                .and_then(|r| lookups.outbox_item_to_address(r))
        })?;
    let candidate = lookups.resolve_candidate(candidate).unwrap_or(candidate);
    Some(Decision {
        assignment: Assignment::Candidate(candidate),
        reason: Reason::UnverifiedReport,
        detail: format!(
            "unverified delivery report about outbox item {item} ({}); nothing changed: {}",
            report.summary(),
            doubts.join("; ")
        ),
        closed_thread: false,
        learn_address: None,
        bounce: None,
    })
}

fn nowhere(detail: String) -> Decision {
    Decision {
        assignment: Assignment::Nowhere,
        reason: Reason::Automatic,
        detail,
        closed_thread: false,
        learn_address: None,
        bounce: None,
    }
}

/// The person behind an author address, with their language and its source.
pub fn new_candidate(
    mailbox: &Mailbox,
    language: Option<(String, LanguageSource)>,
) -> NewCandidate {
    let (first_name, last_name) =
        split_name(mailbox.name.as_deref().unwrap_or(""), &mailbox.address);
    let (language, language_source) = language.unzip();
    NewCandidate {
        first_name,
        last_name,
        email: normalise_address(&mailbox.address),
        language,
        language_source,
    }
}

/// A new candidate's language: the mail's `Content-Language`, else the
/// language detected in the author's own text when it is confident and a
/// template has it (`language::detect`), else none (the subsidiary's
/// applies). A forward's own text is the colleague's, not the author's:
/// it is not detected.
pub fn language_of(
    input: &MatchInput,
    dir: &Company,
    reason: Reason,
) -> Option<(String, LanguageSource)> {
    if let Some(l) = input.headers.content_language.as_ref() {
        return Some((l.clone(), LanguageSource::ContentLanguage));
    }
    if reason == Reason::ForwardedAuthor {
        return None;
    }
    language::detect(input.text, dir.template_languages()).map(|l| (l, LanguageSource::Detected))
}

pub use crate::mail::address::normalise as normalise_address;

/// First and last name from a display name: `Last, First`; `First Middle
/// Last`; `DUPONT Marie` (family name in capitals first, as the French
/// write it); a single word is the first name. A name that is only the
/// address is no name.
pub fn split_name(name: &str, address: &str) -> (String, String) {
    let cleaned: String = name
        .trim()
        .trim_matches(|c: char| matches!(c, '"' | '\'' | '„' | '“' | '”' | '«' | '»'))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if cleaned.is_empty() || cleaned.eq_ignore_ascii_case(address) || cleaned.contains('@') {
        return (String::new(), String::new());
    }
    if let Some((last, first)) = cleaned.split_once(',') {
        return (first.trim().to_string(), last.trim().to_string());
    }
    let words: Vec<&str> = cleaned.split(' ').collect();
    // Family name in capitals first: every leading word in capitals.
    let shouting = |w: &&&str| {
        w.chars().filter(|c| c.is_alphabetic()).count() >= 2 && !w.chars().any(char::is_lowercase)
    };
    let caps = words.iter().take_while(shouting).count();
    if caps > 0 && caps < words.len() {
        let last: Vec<String> = words[..caps].iter().map(|w| title_case(w)).collect();
        return (words[caps..].join(" "), last.join(" "));
    }
    match words.as_slice() {
        [one] => (one.to_string(), String::new()),
        [init @ .., last] => (init.join(" "), last.to_string()),
        [] => (String::new(), String::new()),
    }
}

fn title_case(word: &str) -> String {
    let lower = word.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    let mut start = true;
    for c in lower.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c == '-' || c == '\'';
    }
    out
}

/// The application a new candidate's mail is for: the position of the
/// recipient alias, else one named in the subject, else a general
/// application of the recipient's subsidiary.
pub fn application_for(input: &MatchInput, dir: &Company) -> NewApplication {
    let targets: Vec<_> = addressed_to(input).filter_map(|a| dir.lookup(a)).collect();
    if let Some(t) = targets.iter().find(|t| t.position.is_some()) {
        return NewApplication {
            subsidiary: t.subsidiary.clone(),
            position: t.position.clone(),
        };
    }
    let subsidiary = targets
        .first()
        .map(|t| t.subsidiary.clone())
        .or_else(|| dir.first_subsidiary().map(str::to_string))
        .unwrap_or_default();
    let subject = input
        .headers
        .subject
        .as_deref()
        .unwrap_or("")
        .to_lowercase();
    let position = dir
        .positions_of(&subsidiary)
        .find(|p| {
            let title = p.title.to_lowercase();
            let short = title
                .split(" (")
                .next()
                .unwrap_or(&title)
                .trim()
                .to_string();
            contains_word(&subject, &p.id.to_lowercase())
                || contains_word(&subject, &title)
                || (short.len() >= 8 && contains_word(&subject, &short))
        })
        .map(|p| p.id.clone());
    NewApplication {
        subsidiary,
        position,
    }
}

/// `needle` occurs in `haystack` with no letter or digit right before or after it.
fn contains_word(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    haystack.match_indices(needle).any(|(i, _)| {
        let before = haystack[..i].chars().next_back();
        let after = haystack[i + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_split_as_people_write_them() {
        for (name, first, last) in [
            ("Erika Mustermann", "Erika", "Mustermann"),
            ("Mustermann, Erika", "Erika", "Mustermann"),
            ("\"Weiß, Jörg\"", "Jörg", "Weiß"),
            ("Anna Maria Schmidt", "Anna Maria", "Schmidt"),
            ("DUPONT Marie", "Marie", "Dupont"),
            ("LE GALL-MARTIN Anne", "Anne", "Le Gall-Martin"),
            ("J. R. Ewing", "J. R.", "Ewing"),
            ("Cher", "Cher", ""),
            ("erika@example.org", "", ""),
            ("", "", ""),
            ("  „Jonas   Becker“ ", "Jonas", "Becker"),
        ] {
            assert_eq!(
                split_name(name, "erika@example.org"),
                (first.to_string(), last.to_string()),
                "{name:?}"
            );
        }
    }

    #[test]
    fn words_not_fragments() {
        assert!(contains_word(
            "bewerbung als account executive",
            "account executive"
        ));
        assert!(!contains_word("wholesales team", "sales"));
        assert!(contains_word("ref backend-rust.", "backend-rust"));
    }

    /// The store's answers for a world where nobody is known yet.
    struct Nobody;
    impl Lookups for Nobody {
        fn candidates_with_address(&self, _: &str) -> Vec<i64> {
            Vec::new()
        }
        fn candidates_of_message_id(&self, _: &str) -> Vec<i64> {
            Vec::new()
        }
        fn resolve_candidate(&self, _: i64) -> Option<i64> {
            None
        }
        fn thread_closed(&self, _: i64) -> bool {
            false
        }
        fn outbox_item(&self, _: i64) -> Option<OutboxFacts> {
            None
        }
        fn outbox_item_of_message_id(&self, _: &str) -> Option<(i64, i64)> {
            None
        }
    }

    use crate::config::company::test_company as directory;

    #[test]
    fn a_group_rewrite_with_only_a_name_waits_for_a_human() {
        let headers = ParsedHeaders {
            from: Some(Mailbox {
                name: Some("'Erika Mustermann' via Bewerbungen".into()),
                address: "bewerbungen@acme-group.example".into(),
            }),
            list: true,
            automatic: true,
            ..ParsedHeaders::default()
        };
        let input = MatchInput {
            envelope_sender: "bewerbungen-bounces@acme-group.example",
            headers: &headers,
            text: "",
            attached_authors: &[],
            recipients: &["jobs@acme.example".to_string()],
            report: None,
            authentication: None,
            received_at_ms: 0,
        };
        let d = decide(&input, &directory(), &TokenKey::new([1; 32]), &Nobody);
        assert_eq!(d.assignment, Assignment::Unassigned(Vec::new()));
        assert_eq!(d.reason, Reason::UnknownAuthor);
        assert!(d.detail.contains("Erika Mustermann"), "{}", d.detail);
    }

    fn new_application(content_language: Option<&str>, text: &str) -> Decision {
        let headers = ParsedHeaders {
            from: Some(Mailbox {
                name: Some("Jane Doe".into()),
                address: "jane.doe@example.org".into(),
            }),
            content_language: content_language.map(str::to_string),
            ..ParsedHeaders::default()
        };
        let input = MatchInput {
            envelope_sender: "jane.doe@example.org",
            headers: &headers,
            text,
            attached_authors: &[],
            recipients: &["jobs@acme.example".to_string()],
            report: None,
            authentication: None,
            received_at_ms: 0,
        };
        let dir = directory().with_template_languages(&["de", "en", "fr"]);
        decide(&input, &dir, &TokenKey::new([1; 32]), &Nobody)
    }

    fn language(d: &Decision) -> (Option<&str>, Option<LanguageSource>) {
        match &d.assignment {
            Assignment::New(c, _) => (c.language.as_deref(), c.language_source),
            other => panic!("not a new candidate: {other:?}"),
        }
    }

    const ENGLISH: &str = "Dear hiring team,\n\nI would like to apply for the position of \
        backend developer. I have five years of experience with Rust, and I am looking \
        forward to hearing from you.\n\nBest regards,\nJane Doe\n";

    #[test]
    fn a_new_candidate_gets_the_language_of_their_own_words() {
        let d = new_application(None, ENGLISH);
        assert_eq!(language(&d), (Some("en"), Some(LanguageSource::Detected)));
        // Too little to tell: the subsidiary's language will apply.
        let d = new_application(None, "Hello,\nmy CV.\n");
        assert_eq!(language(&d), (None, None));
    }

    #[test]
    fn content_language_wins_over_detection() {
        let d = new_application(Some("de"), ENGLISH);
        assert_eq!(
            language(&d),
            (Some("de"), Some(LanguageSource::ContentLanguage))
        );
    }

    #[test]
    fn confidence_follows_the_evidence() {
        assert_eq!(Reason::ReplyToken.confidence(), "certain");
        assert_eq!(Reason::InReplyTo.confidence(), "high");
        assert_eq!(Reason::SubjectTag.confidence(), "medium");
        assert_eq!(Reason::NewApplication.confidence(), "new");
        assert_eq!(Reason::Conflict.confidence(), "none");
    }

    #[test]
    fn reasons_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
    }
}
