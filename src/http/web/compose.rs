//! Writing to one candidate from the page: the template picker with a live
//! preview of the exact mail (`app::preview_as`, the same render as `jobmail
//! template preview`) showing the From address, the language and sender
//! choices, new files (a file field that takes drag and drop) and
//! documents of the thread to send again, a schedule in the configured
//! time zone, and the summary of what was queued or skipped
//! (`app::send_as`, the same send as `jobmail send` and the API's).
//!
//! It maps the form to one `app` call and renders the answer; it decides
//! nothing about the mail.

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Value, context};
use serde::Deserialize;

use super::{Frame, Shared, call, checked_form, path_id, signed_in};
use crate::app::access::Caller;
use crate::app::outbox::{PreviewInput, SendInput};
use crate::app::{App, Error};
use crate::outbound::audience::Audience;

pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("assets/compose.js"),
    )
        .into_response()
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct Choice {
    lang: Option<String>,
    template: Option<String>,
    language: Option<String>,
    sender: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The preview's values for the templates, or why there is none.
fn preview_values(
    app: &App,
    caller: &Caller,
    input: &PreviewInput,
) -> (Option<Value>, Option<String>) {
    match app.preview_as(caller, input) {
        Ok(p) => {
            let text = p.text;
            (
                Some(context! {
                    from_name => p.mail.sender.name,
                    from_address => p.mail.sender.address.to_string(),
                    to => p.mail.to,
                    language => p.mail.language,
                    subject => p.mail.subject,
                    suppressed => p.suppressed.is_some(),
                    text => text,
                }),
                None,
            )
        }
        Err(e) => (None, Some(e.to_string())),
    }
}

/// What the compose page shows for candidate `id` and the user's choice.
fn page_values(app: &App, caller: &Caller, id: i64, choice: &Choice) -> crate::app::Result<Value> {
    caller.require(crate::config::Right::Compose)?;
    let detail = app.candidate_as(caller, id)?;
    let documents = app.candidate_documents(caller, id)?;
    let templates: Vec<_> = app
        .template_summaries()
        .into_iter()
        .filter(|t| !t.automatic)
        .collect();
    let template = nonempty(&choice.template)
        .or_else(|| templates.first().map(|t| t.id.clone()))
        .ok_or_else(|| Error::NotFound("no template to write with".into()))?;
    let languages = templates
        .iter()
        .find(|t| t.id == template)
        .map(|t| t.languages.clone())
        .unwrap_or_default();
    // The senders of the candidate's subsidiaries.
    let subsidiaries: Vec<&str> = detail
        .applications
        .iter()
        .map(|a| a.subsidiary.as_str())
        .collect();
    let senders: Vec<Value> = app
        .config
        .subsidiaries
        .iter()
        .filter(|s| subsidiaries.contains(&s.id.as_str()))
        .flat_map(|s| &s.senders)
        .map(|s| context! { id => s.id.clone(), name => s.name.clone(), address => s.address.to_string() })
        .collect();
    let input = PreviewInput {
        template: template.clone(),
        candidate: id,
        sender: nonempty(&choice.sender),
        language: nonempty(&choice.language),
    };
    let (preview, preview_error) = preview_values(app, caller, &input);
    let s = &detail.summary;
    let name = format!("{} {}", s.first_name, s.last_name)
        .trim()
        .to_string();
    Ok(context! {
        page => "compose",
        candidate => id,
        name => name,
        templates => Value::from(minijinja::value::Serde(&templates)),
        languages => languages,
        senders => senders,
        documents => Value::from(minijinja::value::Serde(
            &documents.iter().map(|d| &d.document).collect::<Vec<_>>()
        )),
        chosen => context! { template => template, language => nonempty(&choice.language), sender => nonempty(&choice.sender) },
        time_zone => app.config.server.time_zone.iana_name().unwrap_or("UTC"),
        preview => preview,
        preview_error => preview_error,
    })
}

pub async fn page(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(choice): Query<Choice>,
) -> Response {
    let (app, caller, session) = match signed_in(&shared, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let frame = Frame::new(&headers, choice.lang.as_deref(), Some((&caller, &session)));
    let id = match path_id(&frame, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match call(&app, &frame, move |app| {
        page_values(app, &caller, id, &choice)
    })
    .await
    {
        Ok(values) => frame.render(StatusCode::OK, "compose.html", values),
        Err(r) => *r,
    }
}

/// The preview pane alone, for the page's script.
pub async fn preview(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(choice): Query<Choice>,
) -> Response {
    let (app, caller, session) = match signed_in(&shared, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let frame = Frame::new(&headers, choice.lang.as_deref(), Some((&caller, &session)));
    let id = match path_id(&frame, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match call(&app, &frame, move |app| {
        page_values(app, &caller, id, &choice)
    })
    .await
    {
        Ok(values) => frame.render(StatusCode::OK, "preview.html", values),
        Err(r) => *r,
    }
}

/// The send: the form's choices, files and documents, one `app::send_as`.
pub async fn send(
    State(shared): State<Shared>,
    Path(raw): Path<String>,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let (app, caller, session) = match signed_in(&shared, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let frame = Frame::new(&headers, None, Some((&caller, &session)));
    let id = match path_id(&frame, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let form = match crate::http::forms::read_form(request).await {
        Ok(f) => f,
        Err(e) => return frame.error(Error::Invalid(e.message)),
    };
    let fields: std::collections::HashMap<String, String> = form.fields.iter().cloned().collect();
    if let Err(r) = checked_form(&frame, &session, &fields) {
        return *r;
    }
    let field = |name: &str| nonempty(&fields.get(name).cloned());
    let reuse_documents: Vec<i64> = form
        .fields
        .iter()
        .filter(|(n, _)| n == "reuse")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let attachments = form
        .files
        .into_iter()
        // An empty file field still sends a part without a name or bytes.
        .filter(|f| !(f.filename.is_empty() && f.bytes.is_empty()))
        .map(|f| f.into_attachment())
        .collect();
    let input = SendInput {
        template: field("template").unwrap_or_default(),
        audience: Audience {
            candidates: vec![id],
            ..Audience::default()
        },
        sender: field("sender"),
        language: field("language"),
        attachments,
        reuse_documents,
        // `<input type=datetime-local>` says 2030-01-15T09:00: a local time.
        at: field("at").map(|a| a.replacen('T', " ", 1)),
    };
    match call(&app, &frame, move |app| app.send_as(&caller, &input)).await {
        Ok(summary) => frame.render(
            StatusCode::OK,
            "sent.html",
            context! { page => "sent", summary => Value::from(minijinja::value::Serde(&summary)), back => id },
        ),
        Err(r) => *r,
    }
}
