//! Flags: whether a mail is automatic (RFC 3834 Auto-Submitted, bulk
//! Precedence, list headers, robot senders) and may not be answered
//! automatically.
//!
//! Part of [`super`]: pure, bounded work, never panics on input.

#[allow(unused_imports)]
use super::*;

pub(super) fn first_token(value: &str) -> &str {
    value
        .split(|c: char| c == ';' || c == '(' || c == ',' || c.is_whitespace())
        .find(|t| !t.is_empty())
        .unwrap_or("")
}

/// RFC 3834 and common practice: headers that only robots, lists and bulk
/// senders write.
/// What the header block says about the sender being a program.
#[derive(Default)]
pub(super) struct Markers {
    /// An auto-responder, bulk sender or the like (RFC 3834, common practice).
    pub(super) robot: bool,
    /// A mailing list or group passed it on.
    pub(super) list: bool,
    /// The sender asks not to be answered automatically. This never makes a
    /// mail automatic: Outlook sets it on ordinary mail, too.
    pub(super) no_auto_reply: bool,
    pub(super) auto_response_suppress: bool,
}

pub(super) fn robot_markers(headers: &[Header<'_>], buf: &[u8]) -> Markers {
    let mut m = Markers::default();
    for h in headers {
        if is_named(h, "auto-submitted") {
            m.robot |= !first_token(&raw_text(h, buf)).eq_ignore_ascii_case("no");
        } else if is_named(h, "precedence") {
            let value = raw_text(h, buf);
            let token = first_token(&value);
            let is = |p: &str| token.eq_ignore_ascii_case(p);
            m.robot |= is("bulk") || is("junk") || is("auto_reply") || is("auto-reply");
            m.list |= is("list");
        } else if is_named(h, "x-auto-response-suppress") {
            let asks = raw_text(h, buf)
                .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
                .any(|t| {
                    ["all", "autoreply", "oof"]
                        .iter()
                        .any(|p| t.eq_ignore_ascii_case(p))
                });
            m.no_auto_reply |= asks;
            m.auto_response_suppress |= asks;
        } else if ["list-id", "list-unsubscribe", "list-post"]
            .iter()
            .any(|n| is_named(h, n))
        {
            m.list = true;
        } else if ["x-autoreply", "x-autorespond"]
            .iter()
            .any(|n| is_named(h, n))
        {
            m.robot = true;
        } else if is_named(h, "x-loop") {
            m.no_auto_reply = true;
        }
    }
    m
}

/// Whether From is a program: (robot, list), by its local part: a mail
/// system (MAILER-DAEMON, postmaster) or a list's administrative address
/// (`*-request`, `owner-*`).
pub(super) fn sender_kind(from: Option<&Mailbox>) -> (bool, bool) {
    let Some(from) = from else {
        return (false, false);
    };
    let local = from
        .address
        .rsplit_once('@')
        .map_or(from.address.as_str(), |(l, _)| l)
        .trim_matches('"')
        .to_ascii_lowercase();
    (
        local == "mailer-daemon" || local == "postmaster",
        local.ends_with("-request") || local.starts_with("owner-"),
    )
}

pub(super) fn eq_mime(ct: &mail_parser::ContentType<'_>, ctype: &str, subtypes: &[&str]) -> bool {
    ct.ctype().trim().eq_ignore_ascii_case(ctype)
        && ct
            .subtype()
            .is_some_and(|s| subtypes.iter().any(|x| s.trim().eq_ignore_ascii_case(x)))
}

/// `multipart/report; report-type=delivery-status`, or a multipart/report
/// with a delivery-status part right below it.
pub(super) fn is_delivery_report(message: &Message<'_>) -> bool {
    let Some(root) = message.parts.first() else {
        return false;
    };
    let Some(ct) = root.content_type() else {
        return false;
    };
    if !eq_mime(ct, "multipart", &["report"]) {
        return false;
    }
    let report_type = ct.attributes().into_iter().flatten().any(|a| {
        a.name.trim().eq_ignore_ascii_case("report-type")
            && a.value.trim().eq_ignore_ascii_case("delivery-status")
    });
    report_type
        || match &root.body {
            PartType::Multipart(children) => children.iter().any(|&id| {
                message
                    .parts
                    .get(id as usize)
                    .and_then(|p| p.content_type())
                    .is_some_and(|c| {
                        eq_mime(c, "message", &["delivery-status", "global-delivery-status"])
                    })
            }),
            _ => false,
        }
}
