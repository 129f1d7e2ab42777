//! The recruiters' web page, served by jobmail itself on the API listener:
//! sign-in with a user's token, the inbox (unassigned mail with its
//! suggestions and assign in one action), a candidate with applications
//! (status changeable), documents by category each opening in a new tab,
//! and the thread in both directions. Server-rendered HTML (minijinja,
//! templates and assets built into the binary, so it works with no
//! internet), escaped by the templates' `.html` names, under a CSP without
//! `unsafe-inline`; a CSRF token on every form.
//!
//! Like the API it only maps requests to one `app` call each and renders
//! the answer; who may see what is `app::access`'s. It holds no SQL.

mod body;
mod compose;
mod documents;
mod queue;
pub mod session;
mod text;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::{Environment, Value, context};
use serde::Deserialize;

use super::Shared;
use crate::app::access::Caller;
use crate::app::{App, Error};
use session::Session;
use text::Lang;

/// The page's Content-Security-Policy: only its own scripts, styles and
/// images; no inline code, no frames of it elsewhere, forms only to itself.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A mail's sanitised HTML, in its frame: no script at all, its own
/// stylesheet, images only inline (or remote when asked), a sandbox even
/// when opened on its own, framed only by jobmail's pages.
const MAIL_CSP: &str = "default-src 'none'; style-src 'self'; img-src data:; \
frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox allow-popups allow-popups-to-escape-sandbox";
const MAIL_CSP_IMAGES: &str = "default-src 'none'; style-src 'self'; img-src data: https: http:; \
frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox allow-popups allow-popups-to-escape-sandbox";

/// The templates, compiled once. minijinja escapes every value in a
/// template whose name ends in `.html` (a test proves it).
fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.add_filter("local", local_time);
        for (name, source) in [
            ("layout.html", include_str!("templates/layout.html")),
            ("sign_in.html", include_str!("templates/sign_in.html")),
            ("error.html", include_str!("templates/error.html")),
            ("inbox.html", include_str!("templates/inbox.html")),
            ("candidate.html", include_str!("templates/candidate.html")),
            ("message.html", include_str!("templates/message.html")),
            ("preview.html", include_str!("templates/preview.html")),
            ("compose.html", include_str!("templates/compose.html")),
            ("sent.html", include_str!("templates/sent.html")),
            ("queue.html", include_str!("templates/queue.html")),
            ("settings.html", include_str!("templates/settings.html")),
            ("candidates.html", include_str!("templates/candidates.html")),
        ] {
            if let Err(e) = env.add_template(name, source) {
                // A template of the binary itself: the unit tests render each.
                tracing::error!(template = name, error = %e, "web: a page template does not compile");
            }
        }
        env
    })
}

/// `{{ t | local(zone) }}`: an RFC 3339 time of the store as the wall
/// clock of `zone` reads it, with the zone's abbreviation ("2026-12-02
/// 18:05 CET"); what does not parse is shown as given.
fn local_time(value: String, zone: String) -> String {
    let Ok(at) = value.parse::<jiff::Timestamp>() else {
        return value;
    };
    let zone = jiff::tz::TimeZone::get(&zone).unwrap_or(jiff::tz::TimeZone::UTC);
    at.to_zoned_datetime(zone)
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// Every page's routes, with the API's state.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/inbox") }))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/inbox", get(inbox))
        .route("/candidates", get(candidates))
        .route("/candidates/{id}", get(candidate))
        .route("/compose", get(compose::bulk_page).post(compose::bulk_send))
        .route("/compose/preview", get(compose::bulk_preview))
        .route(
            "/candidates/{id}/compose",
            get(compose::page).post(compose::send),
        )
        .route("/candidates/{id}/compose/preview", get(compose::preview))
        .route("/messages/{id}", get(message))
        .route("/messages/{id}/body", get(message_body))
        .route("/messages/{id}/assign", post(assign))
        .route("/applications/{id}/status", post(application_status))
        .route("/documents/{id}", get(document))
        .route("/documents/{id}/category", post(documents::categorise))
        .route("/candidates/{id}/documents", post(documents::upload))
        .route("/settings", get(settings))
        .route("/queue", get(queue::page))
        .route("/queue/{id}/{action}", post(queue::action))
        .route("/assets/app.css", get(stylesheet))
        .route("/assets/mail.css", get(mail_stylesheet))
        .route("/assets/compose.js", get(compose::script))
        .route("/assets/drop.js", get(compose::drop_script))
        .layer(axum::middleware::map_response(page_headers))
}

/// The headers of every page: the CSP (a document keeps its own, stricter
/// one), no framing, no sniffing, no referrer, no caching.
async fn page_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    if !h.contains_key(header::X_FRAME_OPTIONS) {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("assets/app.css"),
    )
        .into_response()
}

async fn mail_stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("assets/mail.css"),
    )
        .into_response()
}

/// The query every page takes: the interface language.
#[derive(Debug, Deserialize, Default)]
struct LangQuery {
    lang: Option<String>,
}

/// A page's common frame: who, their CSRF token, the language.
struct Frame {
    lang: Lang,
    /// Id, name, and whether the queue is theirs to operate.
    user: Option<(String, String, bool)>,
    csrf: String,
    /// A new language asked by `?lang=`: remembered in a cookie.
    remember_lang: bool,
    /// The server's time zone: the page shows every time in it.
    zone: jiff::tz::TimeZone,
}

impl Frame {
    fn new(headers: &HeaderMap, asked: Option<&str>, who: Option<(&Caller, &Session)>) -> Frame {
        let lang = text::language(headers, asked);
        let user = who.and_then(|(c, _)| match c {
            Caller::User { user, .. } => Some((
                user.id.clone(),
                if user.name.is_empty() {
                    user.id.clone()
                } else {
                    user.name.clone()
                },
                c.has(crate::config::Right::OperateQueue),
            )),
            Caller::Operator => None,
        });
        Frame {
            lang,
            user,
            csrf: who.map(|(_, s)| s.csrf.clone()).unwrap_or_default(),
            remember_lang: asked.and_then(Lang::parse).is_some(),
            zone: jiff::tz::TimeZone::UTC,
        }
    }

    /// Renders `template` with `page` (its own values) in this frame.
    fn render(&self, status: StatusCode, template: &str, page: Value) -> Response {
        let user = self.user.as_ref().map(
            |(id, name, may_queue)| context! { id => id, name => name, may_queue => may_queue },
        );
        let ctx = context! {
            lang => self.lang.code(),
            t => text::words(self.lang),
            user => user,
            csrf => self.csrf.clone(),
            zone => self.zone.iana_name().unwrap_or("UTC"),
            ..page
        };
        let html = match templates()
            .get_template(template)
            .and_then(|t| t.render(ctx))
        {
            Ok(html) => html,
            Err(e) => {
                tracing::error!(template, error = %e, "web: a page does not render");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page does not render",
                )
                    .into_response();
            }
        };
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response();
        if self.remember_lang
            && let Ok(v) = HeaderValue::from_str(&format!(
                "jobmail_lang={}; Path=/; SameSite=Strict; Max-Age=31536000",
                self.lang.code()
            ))
        {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
        response
    }

    /// An error page for an application error.
    fn error(&self, e: Error) -> Response {
        let words = text::words(self.lang);
        let (status, message) = match &e {
            Error::NotFound(_) => (StatusCode::NOT_FOUND, words["not_found"].to_string()),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, words["forbidden"].to_string()),
            Error::Invalid(m)
            | Error::Conflict(m)
            | Error::TooLarge(m)
            | Error::Unrenderable(m) => (StatusCode::BAD_REQUEST, m.clone()),
            Error::Store(err) => {
                tracing::error!(error = %err, "web: store error");
                (StatusCode::SERVICE_UNAVAILABLE, words["error"].to_string())
            }
        };
        self.render(status, "error.html", context! { message => message })
    }
}

/// A page ended early: a redirect to sign in, or an error page.
type Early = Box<Response>;

/// The signed-in user of a request, or the way to the sign-in page.
/// The signed-in user's app, caller and page frame (in the language
/// `asked`, else theirs); not signed in: the way to the sign-in page.
fn signed_in(
    shared: &Shared,
    headers: &HeaderMap,
    asked: Option<&str>,
) -> Result<(Arc<App>, Caller, Frame), Early> {
    let app = shared.app();
    let session = shared
        .sessions
        .find(headers, Instant::now())
        .ok_or_else(|| Box::new(Redirect::to("/sign-in").into_response()))?;
    // A user taken out of the config by a reload is signed out.
    let caller = app
        .caller_named(&session.user)
        .map_err(|_| Box::new(Redirect::to("/sign-in").into_response()))?;
    let mut frame = Frame::new(headers, asked, Some((&caller, &session)));
    frame.zone = app.config.server.time_zone.clone();
    Ok((app, caller, frame))
}

/// Runs an application call on a blocking thread; an error is its page.
async fn call<T: Send + 'static>(
    app: &Arc<App>,
    frame: &Frame,
    f: impl FnOnce(&App) -> crate::app::Result<T> + Send + 'static,
) -> Result<T, Early> {
    let app = app.clone();
    match tokio::task::spawn_blocking(move || f(&app)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Box::new(frame.error(e))),
        Err(_) => Err(Box::new(frame.error(Error::Store(
            crate::store::StoreError("the request's task failed".into()),
        )))),
    }
}

/// A form's fields; a POST without the session's CSRF token is refused.
fn checked_form(frame: &Frame, form: &HashMap<String, String>) -> Result<(), Early> {
    match form.get("csrf") {
        Some(token) if !frame.csrf.is_empty() && session::same(token, &frame.csrf) => Ok(()),
        _ => Err(Box::new(frame.render(
            StatusCode::FORBIDDEN,
            "error.html",
            context! { message => text::words(frame.lang)["csrf"] },
        ))),
    }
}

fn secure_cookies(app: &App) -> bool {
    app.config
        .api
        .as_ref()
        .is_some_and(|a| !a.listen.ip().is_loopback())
}

async fn sign_in_page(headers: HeaderMap, Query(q): Query<LangQuery>) -> Response {
    sign_in_form(&headers, q.lang.as_deref(), false)
}

/// The sign-in form, with a fresh CSRF token in a cookie of its own.
fn sign_in_form(headers: &HeaderMap, lang: Option<&str>, failed: bool) -> Response {
    let mut frame = Frame::new(headers, lang, None);
    let Some(token) = session::random_token() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no randomness").into_response();
    };
    frame.csrf = token.clone();
    let status = if failed {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let mut r = frame.render(
        status,
        "sign_in.html",
        context! { failed => failed, page => "sign-in" },
    );
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(
        session::SIGN_IN_COOKIE,
        &token,
        std::time::Duration::from_secs(3600),
        false,
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn sign_in(
    State(shared): State<Shared>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let app = shared.app();
    let expected = session::cookie(&headers, session::SIGN_IN_COOKIE).unwrap_or("");
    let csrf_ok = form
        .get("csrf")
        .is_some_and(|t| !expected.is_empty() && session::same(t, expected));
    if !csrf_ok {
        let frame = Frame::new(&headers, None, None);
        return frame.render(
            StatusCode::FORBIDDEN,
            "error.html",
            context! { message => text::words(frame.lang)["csrf"] },
        );
    }
    let caller = form.get("token").and_then(|t| app.caller_with_token(t));
    let Some(Caller::User { user, .. }) = caller else {
        tracing::warn!("web: a sign-in with an unknown token");
        return sign_in_form(&headers, None, true);
    };
    let Some((id, _)) = shared.sessions.start(&user.id, Instant::now()) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no randomness").into_response();
    };
    tracing::info!(user = %user.id, "web: signed in");
    let mut r = Redirect::to("/inbox").into_response();
    let secure = secure_cookies(&app);
    for cookie in [
        session::set_cookie(session::COOKIE, &id, session::LIFETIME, secure),
        session::set_cookie(
            session::SIGN_IN_COOKIE,
            "",
            std::time::Duration::ZERO,
            false,
        ),
    ] {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

async fn sign_out(
    State(shared): State<Shared>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let (app, _, frame) = match signed_in(&shared, &headers, None) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if let Err(r) = checked_form(&frame, &form) {
        return *r;
    }
    shared.sessions.end(&headers);
    let mut r = Redirect::to("/sign-in").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(
        session::COOKIE,
        "",
        std::time::Duration::ZERO,
        secure_cookies(&app),
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[derive(Debug, Deserialize, Default)]
struct InboxQuery {
    lang: Option<String>,
    unassigned: Option<String>,
    before: Option<i64>,
    search: Option<String>,
    subsidiary: Option<String>,
    position: Option<String>,
    status: Option<String>,
    category: Option<String>,
}

/// Rows per inbox page.
const INBOX_PAGE: usize = 50;

/// A filter field as given: `None` when left empty.
fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The choices of the filter forms (inbox, candidates) from the config.
fn filter_choices(app: &crate::app::App) -> (Vec<Value>, Vec<Value>) {
    let positions = app
        .config
        .positions
        .iter()
        .map(|p| context! { id => p.id.clone(), title => p.title.clone() })
        .collect();
    let subsidiaries = app
        .config
        .subsidiaries
        .iter()
        .map(|s| context! { id => s.id.clone(), name => s.name.clone() })
        .collect();
    (positions, subsidiaries)
}

async fn inbox(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<InboxQuery>,
) -> Response {
    let (app, caller, frame) = match signed_in(&shared, &headers, q.lang.as_deref()) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let unassigned = q
        .unassigned
        .as_deref()
        .is_some_and(|v| v == "1" || v == "true");
    let filter = crate::store::InboxFilter {
        limit: INBOX_PAGE,
        before: q.before,
        unassigned,
        search: given(&q.search),
        subsidiary: given(&q.subsidiary),
        position: given(&q.position),
        status: given(&q.status),
        category: given(&q.category),
        ..Default::default()
    };
    // The same filters, for the link to the older page.
    let mut older: Vec<(&str, String)> = Vec::new();
    if unassigned {
        older.push(("unassigned", "1".into()));
    }
    for (name, value) in [
        ("search", &filter.search),
        ("subsidiary", &filter.subsidiary),
        ("position", &filter.position),
        ("status", &filter.status),
        ("category", &filter.category),
    ] {
        if let Some(v) = value {
            older.push((name, v.clone()));
        }
    }
    let shown = filter.clone();
    let who = caller.clone();
    let entries = match call(&app, &frame, move |app| app.inbox_as(&who, &filter)).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let older_href = (entries.len() == INBOX_PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten()
        .map(|before| {
            older.push(("before", before.to_string()));
            format!(
                "/inbox?{}",
                serde_urlencoded::to_string(&older).unwrap_or_default()
            )
        });
    let (positions, subsidiaries) = filter_choices(&app);
    let categories: Vec<Value> = app
        .config
        .document_categories
        .iter()
        .filter(|c| caller.may_view(&c.id, &app.config))
        .map(|c| context! { id => c.id.clone(), name => c.name.clone() })
        .collect();
    frame.render(
        StatusCode::OK,
        "inbox.html",
        context! {
            page => "inbox", unassigned => unassigned,
            entries => Value::from(minijinja::value::Serde(&entries)), older_href => older_href,
            search => shown.search, subsidiary => shown.subsidiary, position => shown.position,
            status => shown.status, category => shown.category,
            positions => positions, subsidiaries => subsidiaries, categories => categories,
            statuses => crate::store::candidates::STATUSES,
            filtered => older.iter().any(|(k, _)| *k != "unassigned" && *k != "before"),
        },
    )
}

fn path_id(frame: &Frame, raw: &str) -> Result<i64, Early> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Box::new(frame.error(Error::NotFound(format!("{raw:?}")))))
}

async fn candidate(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<LangQuery>,
) -> Response {
    let (app, caller, frame) = match signed_in(&shared, &headers, q.lang.as_deref()) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let id = match path_id(&frame, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let may_manage = caller.has(crate::config::Right::ManageCandidates);
    let may_compose = caller.has(crate::config::Right::Compose);
    // Which controls to show; the app checks the role again on each change.
    let editable: Vec<Value> = app
        .config
        .document_categories
        .iter()
        .filter(|c| c.id != crate::config::SENT && caller.may_edit(&c.id, &app.config))
        .map(|c| context! { id => c.id.clone(), name => c.name.clone() })
        .collect();
    let may_edit = |category: &str| caller.may_edit(category, &app.config);
    let who = caller.clone();
    let found = call(&app, &frame, move |app| {
        let detail = app.candidate_as(&who, id)?;
        let documents = app.candidate_documents(&who, id)?;
        Ok((detail, documents))
    })
    .await;
    let (detail, documents) = match found {
        Ok(x) => x,
        Err(r) => return *r,
    };
    // Documents by category, in the config's order of categories.
    let mut by_category: BTreeMap<usize, (String, Vec<Value>)> = BTreeMap::new();
    for d in &documents {
        let (order, name) = app
            .config
            .document_categories
            .iter()
            .enumerate()
            .find(|(_, c)| c.id == d.document.category)
            .map(|(i, c)| (i, c.name.clone()))
            .unwrap_or((usize::MAX, d.document.category.clone()));
        let mime = d
            .document
            .content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        by_category
            .entry(order)
            .or_insert_with(|| (name, Vec::new()))
            .1
            .push(context! {
                id => d.document.id,
                filename => d.document.filename.clone(),
                category => d.document.category.clone(),
                editable => may_edit(&d.document.category),
                inline => super::documents::INLINE.contains(&mime.as_str()),
                content_type => mime,
                size => d.document.size,
            });
    }
    let categories: Vec<Value> = by_category
        .into_values()
        .map(|(name, documents)| context! { name => name, documents => documents })
        .collect();
    let s = &detail.summary;
    let name = format!("{} {}", s.first_name, s.last_name)
        .trim()
        .to_string();
    let name = if name.is_empty() {
        text::words(frame.lang)["no_name"].to_string()
    } else {
        name
    };
    frame.render(
        StatusCode::OK,
        "candidate.html",
        context! {
            page => "candidate",
            name => name,
            c => Value::from(minijinja::value::Serde(&detail)),
            categories => categories,
            may_manage => may_manage,
            may_compose => may_compose,
            editable_categories => editable,
            statuses => crate::store::candidates::STATUSES,
        },
    )
}

#[derive(Debug, Deserialize, Default)]
struct MessageQuery {
    lang: Option<String>,
    images: Option<String>,
}

fn wants_images(q: &MessageQuery) -> bool {
    q.images.as_deref().is_some_and(|v| v == "1")
}

/// One mail: its envelope and headers, its attachments the user may see,
/// and its body: the text as text, or the HTML sanitised in a sandboxed
/// frame, remote images held back until asked for.
async fn message(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<MessageQuery>,
) -> Response {
    let (app, caller, frame) = match signed_in(&shared, &headers, q.lang.as_deref()) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let id = match path_id(&frame, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let (detail, bodies) = match call(&app, &frame, move |app| {
        app.message_with_bodies_as(&caller, id)
    })
    .await
    {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let blocked = bodies
        .html
        .as_deref()
        .map(|h| body::sanitise(h, false).1)
        .unwrap_or(0);
    frame.render(
        StatusCode::OK,
        "message.html",
        context! {
            page => "message",
            m => Value::from(minijinja::value::Serde(&detail)),
            html => bodies.html.is_some(),
            text => bodies.text,
            blocked => blocked,
            images => wants_images(&q),
        },
    )
}

/// The sanitised HTML of one mail, as its frame loads it.
async fn message_body(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<MessageQuery>,
) -> Response {
    let (app, caller, frame) = match signed_in(&shared, &headers, None) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let id = match path_id(&frame, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let (_, bodies) = match call(&app, &frame, move |app| {
        app.message_with_bodies_as(&caller, id)
    })
    .await
    {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let images = wants_images(&q);
    let (clean, _) = body::sanitise(bodies.html.as_deref().unwrap_or(""), images);
    let document = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
<link rel=\"stylesheet\" href=\"/assets/mail.css\"></head><body>{clean}</body></html>"
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                if images { MAIL_CSP_IMAGES } else { MAIL_CSP },
            ),
            (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
        ],
        document,
    )
        .into_response()
}

async fn assign(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let (app, caller, frame) = match signed_in(&shared, &headers, None) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if let Err(r) = checked_form(&frame, &form) {
        return *r;
    }
    let message = match path_id(&frame, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let Some(candidate) = form
        .get("candidate")
        .and_then(|c| c.trim().parse::<i64>().ok())
    else {
        return frame.error(Error::Invalid("choose a candidate".into()));
    };
    match call(&app, &frame, move |app| {
        app.assign_as(&caller, message, candidate)
    })
    .await
    {
        Ok(done) => Redirect::to(&format!("/candidates/{}", done.candidate)).into_response(),
        Err(r) => *r,
    }
}

async fn application_status(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let (app, caller, frame) = match signed_in(&shared, &headers, None) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if let Err(r) = checked_form(&frame, &form) {
        return *r;
    }
    let application = match path_id(&frame, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let status = form.get("status").cloned().unwrap_or_default();
    let back = form.get("candidate").and_then(|c| c.parse::<i64>().ok());
    match call(&app, &frame, move |app| {
        app.set_application_status_as(&caller, application, &status)
    })
    .await
    {
        Ok(()) => match back {
            Some(c) => Redirect::to(&format!("/candidates/{c}")).into_response(),
            None => Redirect::to("/inbox").into_response(),
        },
        Err(r) => *r,
    }
}

/// A document in its own tab: the API's download, with the session's user.
async fn document(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Response {
    let (app, caller, frame) = match signed_in(&shared, &headers, None) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let id = match path_id(&frame, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match call(&app, &frame, move |app| app.document(&caller, id)).await {
        Ok((placed, bytes)) => super::documents::document_response(&placed, bytes),
        Err(r) => *r,
    }
}

#[derive(Debug, Deserialize, Default)]
struct CandidatesQuery {
    lang: Option<String>,
    search: Option<String>,
    position: Option<String>,
    status: Option<String>,
    subsidiary: Option<String>,
}

/// Rows of the candidates page.
const CANDIDATES_PAGE: usize = 200;

/// Candidates with an application as filtered (search, position, status,
/// subsidiary), among the user's subsidiaries; the chosen ones go to
/// compose together.
async fn candidates(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<CandidatesQuery>,
) -> Response {
    let (app, caller, frame) = match signed_in(&shared, &headers, q.lang.as_deref()) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let (search, position, status, subsidiary) = (
        given(&q.search),
        given(&q.position),
        given(&q.status),
        given(&q.subsidiary),
    );
    let may_compose = caller.has(crate::config::Right::Compose);
    let (s2, p2, st2, sub2) = (
        search.clone(),
        position.clone(),
        status.clone(),
        subsidiary.clone(),
    );
    let list = match call(&app, &frame, move |app| {
        app.find_candidates_as(
            &caller,
            &crate::store::candidates::CandidateFilter {
                search: s2.as_deref(),
                position: p2.as_deref(),
                status: st2.as_deref(),
                subsidiary: sub2.as_deref(),
                limit: CANDIDATES_PAGE,
                ..Default::default()
            },
        )
    })
    .await
    {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let (positions, subsidiaries) = filter_choices(&app);
    frame.render(
        StatusCode::OK,
        "candidates.html",
        context! {
            page => "candidates",
            list => Value::from(minijinja::value::Serde(&list)),
            search => search, position => position, status => status, subsidiary => subsidiary,
            positions => positions, subsidiaries => subsidiaries,
            statuses => crate::store::candidates::STATUSES,
            may_compose => may_compose,
        },
    )
}

/// The settings, read-only: what the config in force says.
async fn settings(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let (app, _, frame) = match signed_in(&shared, &headers, q.lang.as_deref()) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match call(&app, &frame, |app| app.settings()).await {
        Ok(s) => frame.render(
            StatusCode::OK,
            "settings.html",
            context! { page => "settings", s => Value::from(minijinja::value::Serde(&s)) },
        ),
        Err(r) => *r,
    }
}

/// The user of a request's session, for the rate limit's buckets.
pub fn session_user(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    shared
        .sessions
        .find(headers, Instant::now())
        .map(|s| s.user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_escapes_what_it_is_given() {
        // Every template in the folder, so that a new one is covered too.
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/web/templates");
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert!(names.len() >= 12, "{names:?}");
        for name in &names {
            assert!(
                name.ends_with(".html"),
                "{name}: minijinja escapes only .html"
            );
            if let Err(e) = templates().get_template(name) {
                panic!("{name}: {e:#}");
            }
        }
        let hostile = "<script>alert(1)</script>\"' \u{202e}fdp.exe";
        let frame = Frame {
            lang: Lang::De,
            user: Some(("anna".into(), hostile.into(), false)),
            csrf: "x".into(),
            remember_lang: false,
            zone: jiff::tz::TimeZone::UTC,
        };
        let r = frame.render(
            StatusCode::OK,
            "error.html",
            context! { message => hostile },
        );
        let body = futures_body(r);
        assert!(!body.contains("<script>alert"), "{body}");
        assert!(
            body.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;&quot;&#x27;"),
            "{body}"
        );
        assert!(
            body.contains("<bdi>&lt;script&gt;"),
            "a name is isolated from the text around it"
        );
        assert!(body.contains("Abmelden"), "German words");
    }

    /// The thread says where each of our mails stands, in the server's
    /// time zone: scheduled for when, deferred with the upstream's reply
    /// and the next try, bounced with the report's diagnostic.
    #[test]
    fn the_thread_shows_each_delivery_with_its_reply_in_local_time() {
        let frame = Frame {
            lang: Lang::En,
            user: None,
            csrf: "x".into(),
            remember_lang: false,
            zone: jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
        };
        let entry = |item: i64, state: &str, reply: Option<&str>, at: Option<&str>| {
            serde_json::json!({
                "id": item, "direction": "outbound", "received_at": "2026-12-02T08:00:00Z",
                "subject": "Ihre Bewerbung", "attachments": [],
                "outbox": {"item": item, "state": state, "attempts": 2, "reply": reply,
                           "not_before": if state == "scheduled" { at } else { None },
                           "next_attempt_at": if state == "deferred" { at } else { None }},
            })
        };
        let c = serde_json::json!({
            "id": 1, "first_name": "Kim", "last_name": "Weber", "addresses": [], "applications": [],
            "thread": [
                entry(1, "scheduled", None, Some("2030-01-15T08:00:00Z")),
                entry(2, "deferred", Some("451 4.7.1 <b>greylisted</b>, try later"), Some("2026-12-02T09:30:00Z")),
                entry(3, "bounced", Some("5.1.1 user unknown"), None),
                entry(4, "sent", None, None),
            ],
        });
        let body = futures_body(frame.render(
            StatusCode::OK,
            "candidate.html",
            context! { c => Value::from(minijinja::value::Serde(&c)), documents => Vec::<Value>::new() },
        ));
        assert!(
            body.contains(
                "Scheduled for <time datetime=\"2030-01-15T08:00:00Z\">2030-01-15 09:00 CET</time>"
            ),
            "{body}"
        );
        assert!(
            body.contains("451 4.7.1 &lt;b&gt;greylisted&lt;&#x2f;b&gt;, try later"),
            "{body}"
        );
        assert!(
            body.contains(
                "next try <time datetime=\"2026-12-02T09:30:00Z\">2026-12-02 10:30 CET</time>"
            ),
            "{body}"
        );
        assert!(body.contains("Bounce report"), "{body}");
        assert!(body.contains("5.1.1 user unknown"), "{body}");
        assert!(
            body.contains("2026-12-02 09:00 CET"),
            "received, in Berlin time: {body}"
        );
        assert_eq!(
            body.matches("class=\"delivery").count(),
            3,
            "not for a plain sent mail: {body}"
        );
    }

    fn futures_body(r: Response) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
            String::from_utf8(bytes.to_vec()).unwrap()
        })
    }
}
