//! The routes of the work around the documents: the inbox, assigning a
//! mail, a preview of the exact mail, sending to an audience, and the
//! queue. Each names the right it needs in `app::operations`; this module
//! only parses and answers.

use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{
    ApiError, ApiResult, Query, Shared, blocking, caller, id, json_by_id, json_change_by_id,
};
use crate::app::outbox::{PreviewInput, SendInput};
use crate::app::templates::TemplateView;
use crate::outbound::audience::Audience;
use crate::store::InboxFilter;
use crate::store::outbox::QueueFilter;

/// A JSON body of type `T`, or a 400 naming what is wrong.
pub(super) fn body<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> ApiResult<T> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad(what, format!("{what}: {e}")))
}

/// A bounded count from the query.
pub(super) fn limit(text: Option<&str>, default: usize, max: usize) -> ApiResult<usize> {
    match text {
        None => Ok(default),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::bad("limit", format!("limit is 1 to {max}"))),
    }
}

#[derive(Debug, Deserialize)]
pub struct InboxQuery {
    unassigned: Option<bool>,
    candidate: Option<i64>,
    before: Option<i64>,
    limit: Option<String>,
    search: Option<String>,
    subsidiary: Option<String>,
    position: Option<String>,
    status: Option<String>,
    category: Option<String>,
}

pub async fn inbox(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<InboxQuery>,
) -> ApiResult<Response> {
    let app = shared.app();
    let who = caller(&app, &headers)?;
    let filter = InboxFilter {
        limit: limit(q.limit.as_deref(), 50, 1000)?,
        before: q.before,
        unassigned: q.unassigned.unwrap_or(false),
        candidate: q.candidate,
        search: q.search,
        subsidiary: q.subsidiary,
        position: q.position,
        status: q.status,
        category: q.category,
        visible: None,
    };
    let entries = blocking(&app, move |app| app.inbox_as(&who, &filter)).await?;
    // The next page starts below the last id listed.
    let next = entries.last().map(|e| e.id);
    Ok(axum::Json(json!({ "messages": entries, "next_before": next })).into_response())
}

#[derive(Debug, Deserialize)]
struct AssignBody {
    candidate: i64,
}

pub async fn assign(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult<Response> {
    let app = shared.app();
    json_change_by_id(
        &app,
        &headers,
        &raw,
        &bytes,
        "candidate",
        |app, who, message, b: AssignBody| {
            let done = app.assign_as(who, message, b.candidate)?;
            Ok(json!({
                "message": done.message,
                "candidate": done.candidate,
                "learned_address": done.author.map(|a| a.address),
            }))
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct PreviewQuery {
    candidate: Option<i64>,
    language: Option<String>,
    sender: Option<String>,
}

pub async fn preview(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(template): Path<String>,
    Query(q): Query<PreviewQuery>,
) -> ApiResult<Response> {
    let app = shared.app();
    let who = caller(&app, &headers)?;
    let candidate = q
        .candidate
        .ok_or_else(|| ApiError::bad("candidate", "name the candidate: ?candidate=ID"))?;
    let input = PreviewInput {
        template,
        candidate,
        sender: q.sender,
        language: q.language,
    };
    let p = blocking(&app, move |app| app.preview_as(&who, &input)).await?;
    Ok(axum::Json(json!({
        "candidate": p.mail.candidate,
        "subsidiary": p.mail.subsidiary,
        "from": {"name": p.mail.sender.name, "address": p.mail.sender.address.to_string(), "sender": p.mail.sender.id},
        "to": p.mail.to,
        "language": p.mail.language,
        "subject": p.mail.subject,
        "size": p.mail.bytes.len(),
        "suppressed": p.suppressed,
        "mail": String::from_utf8_lossy(&p.mail.bytes),
    }))
    .into_response())
}

/// A send as JSON: the template, the audience (candidates, or a position,
/// category and status), and the CLI's other choices.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    template: String,
    #[serde(default)]
    candidates: Vec<i64>,
    position: Option<String>,
    category: Option<String>,
    status: Option<String>,
    sender: Option<String>,
    language: Option<String>,
    #[serde(default)]
    reuse_documents: Vec<i64>,
    /// RFC 3339, or a local time in `server.time_zone`.
    at: Option<String>,
}

/// `POST /api/v1/send`: the send as JSON; or a multipart form with the
/// JSON in its `send` field and the new attachments as files.
pub async fn send(State(shared): State<Shared>, request: Request) -> ApiResult<Response> {
    let app = shared.app();
    let who = caller(&app, request.headers())?;
    let (b, files): (SendBody, Vec<crate::app::documents::Upload>) =
        if super::forms::is_multipart(&request) {
            let form = super::forms::read_form(request).await?;
            let text = form
                .field("send")
                .ok_or_else(|| ApiError::bad("send", "the form needs its send field (JSON)"))?;
            (body(text.as_bytes(), "send")?, form.files)
        } else {
            (
                body(&super::forms::read_bytes(request).await?, "send")?,
                Vec::new(),
            )
        };
    let attachments = files.into_iter().map(|f| f.into_attachment()).collect();
    let input = SendInput {
        template: b.template,
        audience: Audience {
            candidates: b.candidates,
            position: b.position,
            category: b.category,
            status: b.status,
        },
        sender: b.sender,
        language: b.language,
        attachments,
        reuse_documents: b.reuse_documents,
        at: b.at,
    };
    let summary = blocking(&app, move |app| app.send_as(&who, &input)).await?;
    Ok(axum::Json(summary).into_response())
}

#[derive(Debug, Deserialize)]
pub struct QueueQuery {
    state: Option<String>,
    subsidiary: Option<String>,
    batch: Option<String>,
    before: Option<i64>,
    limit: Option<String>,
}

pub async fn queue(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<QueueQuery>,
) -> ApiResult<Response> {
    let app = shared.app();
    let who = caller(&app, &headers)?;
    let filter = QueueFilter {
        states: q
            .state
            .map(|s| s.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        subsidiary: q.subsidiary,
        batch: q.batch,
        item: None,
        before: q.before,
        limit: limit(q.limit.as_deref(), 100, 10_000)?,
    };
    let view = blocking(&app, move |app| app.queue_as(&who, &filter)).await?;
    let counts: serde_json::Map<String, serde_json::Value> = view
        .summary
        .iter()
        .map(|(s, n, _)| (s.clone(), json!(n)))
        .collect();
    Ok(axum::Json(json!({
        "items": view.items,
        "summary": counts,
        "paused_upstreams": view.paused_upstreams,
        "next_before": view.items.last().map(|i| i.id),
    }))
    .into_response())
}

pub async fn queue_item(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let app = shared.app();
    json_by_id(&app, &headers, &raw, |app, who, item| {
        let v = app.queue_item_as(who, item)?;
        Ok(json!({
            "item": v.item,
            "events": v.events,
            "message": String::from_utf8_lossy(&v.raw),
        }))
    })
    .await
}

pub async fn queue_action(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((raw, action)): Path<(String, String)>,
) -> ApiResult<Response> {
    let app = shared.app();
    let who = caller(&app, &headers)?;
    let item = id(&raw)?;
    let done = blocking(&app, move |app| {
        app.queue_action_named_as(&who, item, &action)
    })
    .await?;
    Ok(axum::Json(json!({ "item": item, "changed": done })).into_response())
}

pub async fn templates(State(shared): State<Shared>, headers: HeaderMap) -> ApiResult<Response> {
    let app = shared.app();
    caller(&app, &headers)?;
    let list = blocking(&app, |app| Ok(app.template_summaries())).await?;
    Ok(axum::Json(json!({ "templates": list })).into_response())
}

pub async fn template(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(template): Path<String>,
) -> ApiResult<Response> {
    let app = shared.app();
    caller(&app, &headers)?;
    let view = blocking(&app, move |app| {
        app.template(&template).map(|t| TemplateView::of(&t))
    })
    .await?;
    Ok(axum::Json(view).into_response())
}

pub async fn suppressions(State(shared): State<Shared>, headers: HeaderMap) -> ApiResult<Response> {
    let app = shared.app();
    let who = caller(&app, &headers)?;
    let list = blocking(&app, move |app| app.suppressions_as(&who)).await?;
    Ok(axum::Json(json!({ "suppressions": list })).into_response())
}

pub async fn unsuppress(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(address): Path<String>,
) -> ApiResult<Response> {
    let app = shared.app();
    let who = caller(&app, &headers)?;
    let done = address.clone();
    blocking(&app, move |app| app.unsuppress_as(&who, &address)).await?;
    Ok(axum::Json(json!({ "address": done, "suppressed": false })).into_response())
}
