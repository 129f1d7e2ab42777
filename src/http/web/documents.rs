//! A candidate's documents changed from the page: files uploaded (the
//! 10 MB limit, a category or the rules'), and a document put in another
//! category, where the user's role may edit, by the same `app` calls as the
//! API (`upload_documents`, `set_document_category`), which check the role
//! again. Both answer with the candidate's page.

use std::collections::HashMap;

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::{Shared, call, checked_form, path_id, posted_to, signed_in};
use crate::app::Error;

pub async fn upload(
    State(shared): State<Shared>,
    Path(raw): Path<String>,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let (app, caller, frame) = match signed_in(&shared, &headers, None) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let candidate = match path_id(&frame, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let form = match crate::http::forms::read_form(request).await {
        Ok(f) => f,
        Err(e) => return frame.error(Error::Invalid(e.message)),
    };
    let fields: HashMap<String, String> = form.fields.iter().cloned().collect();
    if let Err(r) = checked_form(&frame, &fields) {
        return *r;
    }
    let category = fields
        .get("category")
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    let files: Vec<_> = form
        .files
        .into_iter()
        .filter(|f| !(f.filename.is_empty() && f.bytes.is_empty()))
        .map(|mut f| {
            f.category = category.clone();
            f
        })
        .collect();
    match call(&app, &frame, move |app| {
        app.upload_documents(&caller, candidate, files)
    })
    .await
    {
        Ok(_) => Redirect::to(&format!("/candidates/{candidate}#documents")).into_response(),
        Err(r) => *r,
    }
}

pub async fn categorise(
    State(shared): State<Shared>,
    headers: axum::http::HeaderMap,
    Path(raw): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let (app, caller, frame, document) = match posted_to(&shared, &headers, &form, &raw) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let category = form.get("category").cloned().unwrap_or_default();
    let back = form.get("candidate").and_then(|c| c.parse::<i64>().ok());
    match call(&app, &frame, move |app| {
        app.set_document_category(&caller, document, &category)
    })
    .await
    {
        Ok(()) => match back {
            Some(c) => Redirect::to(&format!("/candidates/{c}#documents")).into_response(),
            None => Redirect::to("/inbox").into_response(),
        },
        Err(r) => *r,
    }
}
