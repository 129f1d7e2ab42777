//! The HTTP API (`/api/v1`), the second front end over the application
//! layer: each route authenticates the bearer token to a [`Caller`], parses
//! its input, calls one `app` function on a blocking thread, and writes
//! JSON (or a document's bytes). Errors are JSON `{"error": {"code",
//! "message", "field"}}` with stable codes; hidden is 404, like missing.
//!
//! No SQL, no policy: who may see what is `app::access`'s; this module
//! only maps requests and answers.

// The API's listener is a socket of its own (clippy.toml bans sockets elsewhere).
#![allow(clippy::disallowed_types)]

mod candidates;
mod documents;
mod forms;
mod limits;
pub mod openapi;
mod operations;
pub mod web;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde_json::json;
use tokio::sync::watch;

use crate::app::access::Caller;
use crate::app::{App, Error};

/// An answer that is not a success.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    fn bad(field: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            field: Some(field),
            ..ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match e {
            Error::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            Error::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid", m),
            Error::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            Error::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            Error::TooLarge(m) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", m),
            Error::Unrenderable(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unrenderable", m)
            }
            Error::Store(e) => {
                // The details go to the log; the client may try again.
                tracing::error!(error = %e, "api: store error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the store cannot answer now; try again",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            axum::Json(
                json!({"error": {"code": self.code, "message": self.message, "field": self.field}}),
            ),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The caller a request's `Authorization: Bearer` token names.
fn caller(app: &App, headers: &HeaderMap) -> ApiResult<Caller> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "an Authorization: Bearer token is needed",
            )
        })?;
    app.caller_with_token(token)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unknown token"))
}

/// Every request: one from the caller's bucket (the caller its token
/// names; requests without a known token share one bucket, so guessing
/// tokens is as slow as one client), else 429 with `Retry-After`.
async fn rate_limit(
    State(shared): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let app = shared.app();
    let Some(api) = app.config.api.as_ref() else {
        return next.run(request).await;
    };
    let who = caller(&app, request.headers())
        .map(|c| c.id().to_string())
        .ok()
        .or_else(|| web::session_user(&shared, request.headers()))
        .map(|id| format!("user:{id}"))
        .unwrap_or_else(|| "unauthenticated".to_string());
    match shared.limits.take(
        &who,
        api.requests_per_minute,
        api.burst,
        std::time::Instant::now(),
    ) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let secs = wait.as_secs() + 1;
            let mut r = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("over [api] requests_per_minute; try again in {secs} s"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    }
}

/// The query string as `T`; one that does not parse is a JSON 400 like
/// every other bad input (axum's own rejection is plain text).
pub struct Query<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(q)) => Ok(Query(q)),
            Err(e) => Err(ApiError::bad("query", e.body_text())),
        }
    }
}

/// A numeric id from the path.
fn id(text: &str) -> ApiResult<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::bad("id", format!("{text:?} is not an id")))
}

/// Runs an application call on a blocking thread (they read SQLite).
async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&App) -> crate::app::Result<T> + Send + 'static,
) -> ApiResult<T> {
    let app = app.clone();
    match tokio::task::spawn_blocking(move || f(&app)).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => {
            tracing::error!(error = %e, "api: a request's task failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the request could not be carried out; try again",
            ))
        }
    }
}

/// The shape of most reads: authenticate, parse the path's id, call one
/// application function, answer its value as JSON.
async fn json_by_id<T: serde::Serialize + Send + 'static>(
    app: &Arc<App>,
    headers: &HeaderMap,
    raw: &str,
    f: impl FnOnce(&App, &Caller, i64) -> crate::app::Result<T> + Send + 'static,
) -> ApiResult<Response> {
    let who = caller(app, headers)?;
    let id = id(raw)?;
    let value = blocking(app, move |app| f(app, &who, id)).await?;
    Ok(axum::Json(value).into_response())
}

/// The shape of most changes: authenticate, parse the path's id and the
/// JSON body (`B`; a bad one is a 400 naming `what`), call one application
/// function, answer its value as JSON.
async fn json_change_by_id<B, T>(
    app: &Arc<App>,
    headers: &HeaderMap,
    raw: &str,
    bytes: &[u8],
    what: &'static str,
    f: impl FnOnce(&App, &Caller, i64, B) -> crate::app::Result<T> + Send + 'static,
) -> ApiResult<Response>
where
    B: serde::de::DeserializeOwned + Send + 'static,
    T: serde::Serialize + Send + 'static,
{
    let who = caller(app, headers)?;
    let id = id(raw)?;
    let input: B = operations::body(bytes, what)?;
    let value = blocking(app, move |app| f(app, &who, id, input)).await?;
    Ok(axum::Json(value).into_response())
}

/// The application the routes call: the one of the config in force, swapped
/// when a reload brings a new one (requests under way keep theirs).
#[derive(Clone)]
pub struct Shared {
    app: Arc<std::sync::RwLock<Arc<App>>>,
    limits: Arc<limits::RateLimits>,
    /// The web page's signed-in users.
    sessions: Arc<web::session::Sessions>,
}

impl Shared {
    pub fn new(app: App) -> Shared {
        Shared {
            app: Arc::new(std::sync::RwLock::new(Arc::new(app))),
            limits: Arc::new(limits::RateLimits::default()),
            sessions: Arc::new(web::session::Sessions::default()),
        }
    }

    fn app(&self) -> Arc<App> {
        match self.app.read() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, app: App) {
        match self.app.write() {
            Ok(mut a) => *a = Arc::new(app),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(app),
        }
    }
}

/// Every route of `/api/v1`.
pub fn router(shared: Shared) -> Router {
    let app = shared.app();
    let max_body = app
        .config
        .api
        .as_ref()
        .map(|a| a.max_body_bytes as usize)
        .unwrap_or(11 * 1024 * 1024);
    Router::new()
        .route(
            "/api/v1/candidates",
            get(candidates::list).post(candidates::create),
        )
        .route(
            "/api/v1/candidates/{id}",
            get(candidates::show).patch(candidates::update),
        )
        .route("/api/v1/candidates/{id}/merge", post(candidates::merge))
        .route(
            "/api/v1/candidates/{id}/documents",
            get(documents::of_candidate).post(documents::upload),
        )
        .route(
            "/api/v1/applications/{id}",
            patch(candidates::application_status),
        )
        .route(
            "/api/v1/documents/{id}",
            get(documents::download)
                .patch(documents::categorise)
                .delete(documents::delete),
        )
        .route("/api/v1/messages/{id}", get(message))
        .route("/api/v1/messages/{id}/raw", get(raw_message))
        .route("/api/v1/messages/{id}/assign", post(operations::assign))
        .route("/api/v1/inbox", get(operations::inbox))
        .route("/api/v1/templates", get(operations::templates))
        .route("/api/v1/templates/{id}", get(operations::template))
        .route("/api/v1/templates/{id}/preview", get(operations::preview))
        .route("/api/v1/suppressions", get(operations::suppressions))
        .route(
            "/api/v1/suppressions/{address}",
            axum::routing::delete(operations::unsuppress),
        )
        .route("/api/v1/send", post(operations::send))
        .route("/api/v1/queue", get(operations::queue))
        .route("/api/v1/queue/{id}", get(operations::queue_item))
        .route(
            "/api/v1/queue/{id}/{action}",
            post(operations::queue_action),
        )
        .route(
            "/api/v1/openapi.json",
            get(|| async { axum::Json(openapi::document()) }),
        )
        .merge(web::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            rate_limit,
        ))
        .with_state(shared)
}

/// Serves the API on `listener` until `shutdown`, with the config `configs`
/// holds (a reload sends a new one: users, roles and categories included).
pub async fn serve(
    listener: tokio::net::TcpListener,
    mut configs: watch::Receiver<Arc<crate::config::Config>>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let shared = Shared::new(App::new((**configs.borrow_and_update()).clone()));
    let follower = shared.clone();
    tokio::spawn(async move {
        while configs.changed().await.is_ok() {
            let config = (**configs.borrow_and_update()).clone();
            follower.replace(App::new(config));
        }
    });
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
}

/// Binds the API's address (`[api] listen`).
pub async fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

async fn message(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let app = shared.app();
    json_by_id(&app, &headers, &raw, |app, who, id| app.message_as(who, id)).await
}

async fn raw_message(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let app = shared.app();
    let who = caller(&app, &headers)?;
    let id = id(&raw)?;
    let bytes = blocking(&app, move |app| app.raw_message(&who, id)).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("message/rfc822"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"message.eml\""),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        bytes,
    )
        .into_response())
}
