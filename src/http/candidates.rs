//! The candidate routes: list and search with a cursor, one candidate
//! with the thread in both directions, create (the online form's entry
//! point, documents in the same request), change names, gender and
//! language, merge, and an application's status.
//!
//! Parses and answers only; the rights are checked in `app`.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::forms::{is_multipart, read_bytes, read_form};
use super::{
    ApiError, ApiResult, Query, Shared, blocking, caller, id, json_by_id, json_change_by_id,
};
use crate::app::candidates::{CandidateUpdate, FormInput};
use crate::store::candidates::CandidateFilter;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    search: Option<String>,
    position: Option<String>,
    status: Option<String>,
    subsidiary: Option<String>,
    /// The `next_cursor` of the page before.
    cursor: Option<String>,
    limit: Option<String>,
}

pub async fn list(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let app = shared.app();
    let who = caller(&app, &headers)?;
    let limit = super::operations::limit(q.limit.as_deref(), 50, 1000)?;
    let before = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::bad("cursor", "not a cursor this API gave"))?,
        ),
    };
    let list = blocking(&app, move |app| {
        app.find_candidates_as(
            &who,
            &CandidateFilter {
                search: q.search.as_deref().filter(|s| !s.is_empty()),
                position: q.position.as_deref(),
                status: q.status.as_deref(),
                subsidiary: q.subsidiary.as_deref(),
                visible: None,
                before,
                limit,
            },
        )
    })
    .await?;
    // A full page may have a next one; it starts below the last id.
    let next = (list.len() == limit)
        .then(|| list.last().map(|c| c.id.to_string()))
        .flatten();
    Ok(axum::Json(json!({ "candidates": list, "next_cursor": next })).into_response())
}

pub async fn show(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let app = shared.app();
    json_by_id(&app, &headers, &raw, |app, who, id| {
        app.candidate_as(who, id)
    })
    .await
}

/// A JSON object's fields, none but the ones named.
fn object(bytes: &[u8], allowed: &[&'static str]) -> ApiResult<Map<String, Value>> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad("body", format!("not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::bad("body", "a JSON object is expected"));
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad(
            "body",
            format!("unknown field {unknown:?} (known: {})", allowed.join(", ")),
        ));
    }
    Ok(map)
}

/// A string field: absent, or a string (`null` is absent).
fn text(map: &Map<String, Value>, field: &'static str) -> ApiResult<Option<String>> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad(field, format!("{field} is a string"))),
    }
}

const FORM_FIELDS: [&str; 7] = [
    "candidate",
    "email",
    "name",
    "position",
    "subsidiary",
    "language",
    "category",
];

/// `POST /api/v1/candidates`: JSON, or a multipart form with the same
/// fields and the documents as files.
pub async fn create(State(shared): State<Shared>, request: Request) -> ApiResult<Response> {
    let app = shared.app();
    let who = caller(&app, request.headers())?;
    let mut input = FormInput::default();
    let candidate_text: Option<String>;
    if is_multipart(&request) {
        let form = read_form(request).await?;
        if let Some((unknown, _)) = form
            .fields
            .iter()
            .find(|(n, _)| !FORM_FIELDS.contains(&n.as_str()))
        {
            return Err(ApiError::bad(
                "body",
                format!(
                    "unknown field {unknown:?} (known: {})",
                    FORM_FIELDS.join(", ")
                ),
            ));
        }
        let get = |f: &str| form.field(f).filter(|v| !v.is_empty()).map(str::to_string);
        candidate_text = get("candidate");
        input.email = get("email");
        input.name = get("name");
        input.position = get("position");
        input.subsidiary = get("subsidiary");
        input.language = get("language");
        input.documents = form.files;
    } else {
        let bytes = read_bytes(request).await?;
        let map = object(&bytes, &FORM_FIELDS[..6])?;
        candidate_text = match map.get("candidate") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Err(ApiError::bad("candidate", "candidate is an id")),
        };
        input.email = text(&map, "email")?;
        input.name = text(&map, "name")?;
        input.position = text(&map, "position")?;
        input.subsidiary = text(&map, "subsidiary")?;
        input.language = text(&map, "language")?;
    }
    input.candidate = candidate_text
        .map(|t| {
            t.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::bad("candidate", "candidate is an id"))
        })
        .transpose()?;
    let outcome = blocking(&app, move |app| app.add_form_application_as(&who, &input)).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "candidate": outcome.candidate,
            "application": outcome.application,
            "candidate_created": outcome.created,
            "acknowledgement": outcome.acknowledgement,
            "documents": outcome.documents,
        })),
    )
        .into_response())
}

/// `PATCH /api/v1/candidates/{id}`: names, gender, language (`null`
/// forgets the language).
pub async fn update(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult<Response> {
    let app = shared.app();
    let who = caller(&app, &headers)?;
    let id = id(&raw)?;
    let map = object(&bytes, &["first_name", "last_name", "gender", "language"])?;
    let update = CandidateUpdate {
        first_name: text(&map, "first_name")?,
        last_name: text(&map, "last_name")?,
        gender: text(&map, "gender")?,
        language: match map.get("language") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => return Err(ApiError::bad("language", "language is a string or null")),
        },
    };
    let detail = blocking(&app, move |app| app.update_candidate_as(&who, id, &update)).await?;
    Ok(axum::Json(detail).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeBody {
    from: i64,
}

/// `POST /api/v1/candidates/{id}/merge`: `{"from": ID}` becomes part of
/// this one.
pub async fn merge(
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
        "from",
        |app, who, into, b: MergeBody| app.merge_as(who, into, b.from),
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
}

/// `PATCH /api/v1/applications/{id}`: `{"status": "interview"}`.
pub async fn application_status(
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
        "status",
        |app, who, application, b: StatusBody| {
            app.set_application_status_as(who, application, &b.status)?;
            Ok(json!({ "application": application, "status": b.status }))
        },
    )
    .await
}
