//! The queue page (the `operate_queue` right): items per state with their
//! counts, the upstreams paused by their breaker and why, and each item's
//! retry, hold, release and cancel, by the same `app` calls as `jobmail
//! queue` and the API. Scheduled mail can be cancelled until it goes.
//!
//! It maps requests to `app` calls and renders the answer; the states an
//! action may apply to are the store's (`RETRYABLE`, `WAITING`).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use serde::Deserialize;

use super::{Shared, call, posted_to, signed_in};
use crate::store::outbox::{QueueEntry, QueueFilter, RETRYABLE, WAITING};

/// Items on one page.
const PAGE: usize = 200;

#[derive(Debug, Deserialize, Default)]
pub struct QueueQuery {
    lang: Option<String>,
    state: Option<String>,
}

/// The buttons an item in its state gets.
fn actions(i: &QueueEntry) -> Vec<&'static str> {
    let mut out = Vec::new();
    if RETRYABLE.contains(&i.state.as_str()) && !i.held {
        out.push("retry");
    }
    if WAITING.contains(&i.state.as_str()) {
        out.push(if i.held { "release" } else { "hold" });
        out.push("cancel");
    }
    out
}

pub async fn page(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<QueueQuery>,
) -> Response {
    let (app, caller, frame) = match signed_in(&shared, &headers, q.lang.as_deref()) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let state = q.state.filter(|s| !s.is_empty());
    let filter = QueueFilter {
        states: state.iter().cloned().collect(),
        limit: PAGE,
        ..QueueFilter::default()
    };
    let view = match call(&app, &frame, move |app| app.queue_as(&caller, &filter)).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let now = crate::clock::now_ms();
    let rows: Vec<Value> = view
        .items
        .iter()
        .map(|i| context! { i => Value::from(minijinja::value::Serde(i)), actions => actions(i) })
        .collect();
    let summary: Vec<Value> = view
        .summary
        .iter()
        .map(|(s, n, _)| context! { state => s, items => n })
        .collect();
    let paused: Vec<Value> = view
        .paused_upstreams
        .iter()
        .filter(|u| u.paused_until.is_some_and(|t| t > now))
        .map(|u| {
            context! {
                subsidiary => u.subsidiary.clone(),
                until => u.paused_until.map(crate::clock::rfc3339_ms),
                failures => u.failures,
                last_error => u.last_error.clone(),
            }
        })
        .collect();
    frame.render(
        StatusCode::OK,
        "queue.html",
        context! { page => "queue", rows => rows, summary => summary, paused => paused, state => state },
    )
}

pub async fn action(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((raw, action)): Path<(String, String)>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let (app, caller, frame, item) = match posted_to(&shared, &headers, &form, &raw) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match call(&app, &frame, move |app| {
        app.queue_action_named_as(&caller, item, &action)
    })
    .await
    {
        Ok(_) => Redirect::to(&format!("/queue#item-{item}")).into_response(),
        Err(r) => *r,
    }
}
