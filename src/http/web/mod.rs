//! The recruiters' web page, served by jobmail itself on the API listener:
//! sign-in with a user's token, the inbox (unassigned mail with its
//! suggestions and assign in one action), a candidate with applications
//! (status changeable), documents by category each opening in a new tab,
//! and the thread in both directions. Server-rendered HTML (minijinja,
//! templates and assets built into the binary, so it works with no
//! internet), escaped by the templates' `.html` names, under a CSP without
//! `unsafe-inline`; a CSRF token on every form.
//!
//! This module holds the routes, the frame every page renders in (its
//! words, session, CSRF token and time zone), the templates and sign-in;
//! the pages are `pages`, `compose`, `documents` and `queue`. Like the API
//! it only maps requests to one `app` call each and renders the answer;
//! who may see what is `app::access`'s. It holds no SQL.

mod body;
mod compose;
mod documents;
mod pages;
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
        .route("/inbox", get(pages::inbox))
        .route("/candidates", get(pages::candidates))
        .route("/candidates/{id}", get(pages::candidate))
        .route("/compose", get(compose::bulk_page).post(compose::bulk_send))
        .route("/compose/preview", get(compose::bulk_preview))
        .route(
            "/candidates/{id}/compose",
            get(compose::page).post(compose::send),
        )
        .route("/candidates/{id}/compose/preview", get(compose::preview))
        .route("/messages/{id}", get(pages::message))
        .route("/messages/{id}/body", get(pages::message_body))
        .route("/messages/{id}/assign", post(pages::assign))
        .route("/applications/{id}/status", post(pages::application_status))
        .route("/documents/{id}", get(pages::document))
        .route("/documents/{id}/category", post(documents::categorise))
        .route("/candidates/{id}/documents", post(documents::upload))
        .route("/settings", get(pages::settings))
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

/// The start of every form posted to `/…/{id}/…`: the signed-in user, the
/// form's CSRF token checked, then the id of the path.
fn posted_to(
    shared: &Shared,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    raw: &str,
) -> Result<(Arc<App>, Caller, Frame, i64), Early> {
    let (app, caller, frame) = signed_in(shared, headers, None)?;
    checked_form(&frame, form)?;
    let id = path_id(&frame, raw)?;
    Ok((app, caller, frame, id))
}

fn path_id(frame: &Frame, raw: &str) -> Result<i64, Early> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Box::new(frame.error(Error::NotFound(format!("{raw:?}")))))
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
