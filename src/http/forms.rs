//! Request bodies of the routes that take files: `multipart/form-data`
//! (text fields and files, each file an [`Upload`]) or JSON. Bounded by
//! the router's body limit (`[api] max_body_bytes`); over it is 413.
//!
//! Parses only: the size of each document, its type and category are
//! checked by the application layer, the same for the CLI.

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};

use super::{ApiError, ApiResult};
use crate::app::documents::Upload;

/// A form as sent: its text fields in order, and its files.
#[derive(Debug, Default)]
pub struct Form {
    pub fields: Vec<(String, String)>,
    pub files: Vec<Upload>,
}

impl Form {
    /// The last value of a text field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The body is a multipart form (else JSON, or nothing).
pub fn is_multipart(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the request is larger than [api] max_body_bytes",
        )
    } else {
        ApiError::bad("body", format!("the multipart form cannot be read: {e}"))
    }
}

/// Reads a multipart form: parts with a file name (or named `file` or
/// `document`) are files, of the category the form's `category` field
/// names (the last one given); the others are text fields.
pub async fn read_form(request: Request) -> ApiResult<Form> {
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::bad("body", format!("not a multipart form: {e}")))?;
    let mut form = Form::default();
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_string();
        let filename = field.file_name().map(str::to_string);
        let content_type = field.content_type().map(str::to_string);
        if filename.is_some() || name == "file" || name == "document" {
            let bytes = field.bytes().await.map_err(multipart_error)?;
            form.files.push(Upload {
                filename: filename.unwrap_or_default(),
                content_type,
                bytes: bytes.to_vec(),
                category: None,
            });
        } else {
            let text = field.text().await.map_err(multipart_error)?;
            form.fields.push((name, text));
        }
    }
    if let Some(category) = form.field("category").map(str::to_string) {
        for f in &mut form.files {
            f.category = Some(category.clone());
        }
    }
    Ok(form)
}

/// The body as bytes (a JSON body), over the limit 413.
pub async fn read_bytes(request: Request) -> ApiResult<axum::body::Bytes> {
    axum::body::Bytes::from_request(request, &())
        .await
        .map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "the request is larger than [api] max_body_bytes",
                )
            } else {
                ApiError::bad("body", format!("the body cannot be read: {e}"))
            }
        })
}
