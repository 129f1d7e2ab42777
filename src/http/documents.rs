//! The document routes: a candidate's documents by the caller's rights,
//! one document's bytes with headers a browser cannot be tricked by,
//! uploads (multipart), a new category, and delete.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiResult, Shared, blocking, caller, id, json_by_id};

/// The types a browser shows without running anything: only these are
/// served `inline` (a new tab opens them); everything else (HTML, SVG, XML,
/// unknown) is a download.
pub(super) const INLINE: [&str; 5] = [
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "text/plain",
];

/// `Content-Disposition` for a file name from outside: an ASCII fallback
/// without quotes, backslashes, controls or separators, and the name as it
/// is in RFC 5987 form.
pub fn disposition(inline: bool, filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | ';' | '%') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!(
        "{}; filename=\"{}\"; filename*=UTF-8''{encoded}",
        if inline { "inline" } else { "attachment" },
        ascii.trim()
    )
}

pub async fn of_candidate(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let app = shared.app();
    json_by_id(&app, &headers, &raw, |app, who, candidate| {
        Ok(json!({ "documents": app.candidate_documents(who, candidate)? }))
    })
    .await
}

pub async fn download(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let app = shared.app();
    let who = caller(&app, &headers)?;
    let document = id(&raw)?;
    let (placed, bytes) = blocking(&app, move |app| app.document(&who, document)).await?;
    Ok(document_response(&placed, bytes))
}

/// A document's bytes as a browser gets them: `inline` only for the types
/// a browser shows safely, never sniffed, in a sandbox of its own.
pub(super) fn document_response(
    placed: &crate::store::documents::PlacedDocument,
    bytes: Vec<u8>,
) -> Response {
    let mime = placed
        .document
        .content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let inline = INLINE.contains(&mime.as_str());
    let content_type = match mime.as_str() {
        "text/plain" => HeaderValue::from_static("text/plain; charset=utf-8"),
        m => HeaderValue::from_str(m)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    };
    let disposition = HeaderValue::from_str(&disposition(inline, &placed.document.filename))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; sandbox"),
            ),
        ],
        bytes,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct NewCategory {
    category: String,
}

pub async fn categorise(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let app = shared.app();
    let who = caller(&app, &headers)?;
    let document = id(&raw)?;
    let NewCategory { category } = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad(
            "category",
            format!("expected {{\"category\": \"...\"}}: {e}"),
        )
    })?;
    let done = category.clone();
    blocking(&app, move |app| {
        app.set_document_category(&who, document, &category)
    })
    .await?;
    Ok(axum::Json(json!({ "id": document, "category": done })).into_response())
}

/// `POST /api/v1/candidates/{id}/documents`: a multipart form of files
/// (and `category`, else the rules decide).
pub async fn upload(
    State(shared): State<Shared>,
    Path(raw): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let app = shared.app();
    let who = caller(&app, request.headers())?;
    let candidate = id(&raw)?;
    if !super::forms::is_multipart(&request) {
        return Err(ApiError::bad(
            "body",
            "send the files as multipart/form-data",
        ));
    }
    let form = super::forms::read_form(request).await?;
    let docs = blocking(&app, move |app| {
        app.upload_documents(&who, candidate, form.files)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "documents": docs })),
    )
        .into_response())
}

pub async fn delete(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let app = shared.app();
    let who = caller(&app, &headers)?;
    let document = id(&raw)?;
    blocking(&app, move |app| app.delete_document(&who, document)).await?;
    Ok(axum::Json(json!({ "id": document, "deleted": true })).into_response())
}

#[cfg(test)]
mod tests {
    use super::disposition;

    #[test]
    fn hostile_file_names_come_back_safe_in_content_disposition() {
        assert_eq!(
            disposition(true, "Lebenslauf Jörg.pdf"),
            "inline; filename=\"Lebenslauf J_rg.pdf\"; filename*=UTF-8''Lebenslauf%20J%C3%B6rg.pdf"
        );
        for hostile in [
            "a\"; filename=evil.html",
            "x\r\nSet-Cookie: a=b",
            "..\\..\\boot.ini",
            "\u{202E}fdp.exe",
            &"A".repeat(1000),
        ] {
            let d = disposition(false, hostile);
            assert!(d.starts_with("attachment; filename=\""), "{d}");
            let ascii =
                &d["attachment; filename=\"".len()..d.find("\"; filename*=").expect("two parts")];
            assert!(!ascii.contains(['"', '\\', '\r', '\n', ';']), "{d}");
            assert!(d.is_ascii() && !d.contains(['\r', '\n']), "{d}");
            assert!(axum::http::HeaderValue::from_str(&d).is_ok(), "{d}");
        }
    }
}
