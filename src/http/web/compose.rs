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

use axum::extract::{Path, Query, RawQuery, Request, State};
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
    javascript(include_str!("assets/compose.js"))
}

/// The drop zone of file inputs (compose and the candidate's upload).
pub async fn drop_script() -> Response {
    javascript(include_str!("assets/drop.js"))
}

fn javascript(source: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        source,
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

/// Whom a compose page writes to: one candidate (its own page, with the
/// documents of the thread to send again) or several from a list.
#[derive(Debug, Clone)]
pub enum Target {
    One(i64),
    Many(Vec<i64>),
}

impl Target {
    fn ids(&self) -> Vec<i64> {
        match self {
            Target::One(id) => vec![*id],
            Target::Many(ids) => ids.clone(),
        }
    }

    /// The query that names the candidates of a bulk (`candidate=1&...`).
    fn query(&self) -> String {
        self.ids()
            .iter()
            .map(|id| format!("candidate={id}"))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// What the compose page shows for `target` and the user's choice; the
/// preview is the first candidate's.
fn page_values(
    app: &App,
    caller: &Caller,
    target: &Target,
    choice: &Choice,
) -> crate::app::Result<Value> {
    caller.require(crate::config::Right::Compose)?;
    let ids = target.ids();
    let Some(&first) = ids.first() else {
        return Err(Error::Invalid("choose at least one candidate".into()));
    };
    let mut names = Vec::new();
    let mut subsidiaries: Vec<String> = Vec::new();
    for (s, of) in app.candidate_summaries_as(caller, &ids)? {
        names.push(context! { id => s.id, name => format!("{} {}", s.first_name, s.last_name).trim().to_string() });
        subsidiaries.extend(of);
    }
    let documents = match target {
        Target::One(id) => app.candidate_documents(caller, *id)?,
        Target::Many(_) => Vec::new(),
    };
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
    // The senders of the candidates' subsidiaries (a candidate of another
    // subsidiary than the sender's is skipped, and the summary says so).
    // First the jobs address (no sender chosen: what the preview and the
    // send then use), then the named senders.
    let subsidiaries: Vec<_> = app
        .config
        .subsidiaries
        .iter()
        .filter(|s| subsidiaries.contains(&s.id))
        .collect();
    let jobs_addresses: Vec<Value> = subsidiaries
        .iter()
        .map(|s| {
            let d = s.default_sender();
            context! { name => d.name, address => d.address.to_string() }
        })
        .collect();
    let senders: Vec<Value> = subsidiaries
        .iter()
        .flat_map(|s| &s.senders)
        .map(|s| context! { id => s.id.clone(), name => s.name.clone(), address => s.address.to_string() })
        .collect();
    let input = PreviewInput {
        template: template.clone(),
        candidate: first,
        sender: nonempty(&choice.sender),
        language: nonempty(&choice.language),
    };
    let (preview, preview_error) = preview_values(app, caller, &input);
    let (action, preview_url) = match target {
        Target::One(id) => (
            format!("/candidates/{id}/compose"),
            format!("/candidates/{id}/compose/preview"),
        ),
        Target::Many(_) => (
            "/compose".to_string(),
            format!("/compose/preview?{}", target.query()),
        ),
    };
    Ok(context! {
        page => "compose",
        candidate => first,
        bulk => matches!(target, Target::Many(_)),
        ids => ids,
        names => names,
        action => action,
        preview_url => preview_url,
        templates => Value::from(minijinja::value::Serde(&templates)),
        languages => languages,
        senders => senders,
        jobs_addresses => jobs_addresses,
        documents => Value::from(minijinja::value::Serde(
            &documents.iter().map(|d| &d.document).collect::<Vec<_>>()
        )),
        chosen => context! { template => template, language => nonempty(&choice.language), sender => nonempty(&choice.sender) },
        time_zone => app.config.server.time_zone.iana_name().unwrap_or("UTC"),
        preview => preview,
        preview_error => preview_error,
    })
}

/// The candidates a bulk's query names (`candidate=1&candidate=2`), and
/// its other choices.
fn bulk_query(raw: Option<&str>) -> (Target, Choice) {
    let pairs: Vec<(String, String)> = raw
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let ids = pairs
        .iter()
        .filter(|(k, _)| k == "candidate")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    (
        Target::Many(ids),
        Choice {
            lang: get("lang"),
            template: get("template"),
            language: get("language"),
            sender: get("sender"),
        },
    )
}

/// Writing to several candidates, chosen on the candidates page.
pub async fn bulk_page(
    State(shared): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (target, choice) = bulk_query(raw.as_deref());
    render_page(&shared, &headers, target, choice, "compose.html").await
}

pub async fn bulk_preview(
    State(shared): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (target, choice) = bulk_query(raw.as_deref());
    render_page(&shared, &headers, target, choice, "preview.html").await
}

async fn render_page(
    shared: &Shared,
    headers: &HeaderMap,
    target: Target,
    choice: Choice,
    template: &'static str,
) -> Response {
    let (app, caller, frame) = match signed_in(shared, headers, choice.lang.as_deref()) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match call(&app, &frame, move |app| {
        page_values(app, &caller, &target, &choice)
    })
    .await
    {
        Ok(values) => frame.render(StatusCode::OK, template, values),
        Err(r) => *r,
    }
}

pub async fn page(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(choice): Query<Choice>,
) -> Response {
    match raw.parse::<i64>() {
        Ok(id) if id > 0 => {
            render_page(&shared, &headers, Target::One(id), choice, "compose.html").await
        }
        _ => not_found(&shared, &headers),
    }
}

/// The preview pane alone, for the page's script.
pub async fn preview(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(choice): Query<Choice>,
) -> Response {
    match raw.parse::<i64>() {
        Ok(id) if id > 0 => {
            render_page(&shared, &headers, Target::One(id), choice, "preview.html").await
        }
        _ => not_found(&shared, &headers),
    }
}

fn not_found(shared: &Shared, headers: &HeaderMap) -> Response {
    match signed_in(shared, headers, None) {
        Ok((_, _, frame)) => frame.error(Error::NotFound("no such candidate".into())),
        Err(r) => *r,
    }
}

/// The send to one candidate: the form's choices, files and documents.
pub async fn send(
    State(shared): State<Shared>,
    Path(raw): Path<String>,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let (app, caller, frame) = match signed_in(&shared, &headers, None) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let id = match path_id(&frame, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    send_to(app, caller, frame, Some(id), request).await
}

/// The send to the candidates the bulk form lists.
pub async fn bulk_send(State(shared): State<Shared>, request: Request) -> Response {
    let headers = request.headers().clone();
    let (app, caller, frame) = match signed_in(&shared, &headers, None) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    send_to(app, caller, frame, None, request).await
}

/// One `app::send_as` with the form's choices; `one`: the candidate of
/// its page, else the form's `candidate` fields.
async fn send_to(
    app: std::sync::Arc<App>,
    caller: Caller,
    frame: Frame,
    one: Option<i64>,
    request: Request,
) -> Response {
    let form = match crate::http::forms::read_form(request).await {
        Ok(f) => f,
        Err(e) => return frame.error(Error::Invalid(e.message)),
    };
    let fields: std::collections::HashMap<String, String> = form.fields.iter().cloned().collect();
    if let Err(r) = checked_form(&frame, &fields) {
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
    let candidates: Vec<i64> = match one {
        Some(id) => vec![id],
        None => form
            .fields
            .iter()
            .filter(|(n, _)| n == "candidate")
            .filter_map(|(_, v)| v.parse().ok())
            .collect(),
    };
    if candidates.is_empty() {
        return frame.error(Error::Invalid("choose at least one candidate".into()));
    }
    let back = candidates[0];
    let input = SendInput {
        template: field("template").unwrap_or_default(),
        audience: Audience {
            candidates,
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
            context! { page => "sent", summary => Value::from(minijinja::value::Serde(&summary)), back => back },
        ),
        Err(r) => *r,
    }
}
