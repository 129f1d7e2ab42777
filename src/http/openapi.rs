//! The OpenAPI 3 document of `/api/v1`, served at `/api/v1/openapi.json`:
//! every route with its parameters, the bearer scheme and the error shape.
//! Built from [`ROUTES`]; the tests check both ways: each documented route
//! is served (`http::api::every_route_the_openapi_document_lists_is_served`,
//! e2e) and each served route is documented (`tests` below).

use serde_json::{Value, json};

/// (method, path, summary, the right it needs or "").
pub const ROUTES: &[(&str, &str, &str, &str)] = &[
    (
        "get",
        "/api/v1/candidates",
        "Candidates of the caller's subsidiaries, newest first",
        "",
    ),
    (
        "post",
        "/api/v1/candidates",
        "An application from the online form: the candidate (new or known), the application and its documents (multipart), acknowledged as configured",
        "manage_candidates",
    ),
    (
        "get",
        "/api/v1/candidates/{id}",
        "One candidate with applications and the thread in both directions",
        "",
    ),
    (
        "patch",
        "/api/v1/candidates/{id}",
        "Change names, gender or language (null forgets the language)",
        "manage_candidates",
    ),
    (
        "post",
        "/api/v1/candidates/{id}/merge",
        "Merge candidate `from` into this one",
        "manage_candidates",
    ),
    (
        "post",
        "/api/v1/candidates/{id}/documents",
        "Upload documents (multipart; `category`, else the rules decide)",
        "",
    ),
    (
        "patch",
        "/api/v1/applications/{id}",
        "Set an application's status",
        "manage_candidates",
    ),
    (
        "get",
        "/api/v1/candidates/{id}/documents",
        "The candidate's documents the caller may see",
        "",
    ),
    (
        "get",
        "/api/v1/documents/{id}",
        "A document's bytes (inline only for PDF, PNG, JPEG, GIF, text)",
        "",
    ),
    (
        "patch",
        "/api/v1/documents/{id}",
        "File a document under another category",
        "",
    ),
    (
        "delete",
        "/api/v1/documents/{id}",
        "Delete a document (the raw mail it came in keeps its bytes)",
        "",
    ),
    ("get", "/api/v1/messages/{id}", "One message, parsed", ""),
    (
        "get",
        "/api/v1/messages/{id}/raw",
        "The stored bytes, for a caller who may see all its documents",
        "",
    ),
    (
        "post",
        "/api/v1/messages/{id}/assign",
        "File a mail under a candidate",
        "assign",
    ),
    ("get", "/api/v1/inbox", "The inbox, newest first", ""),
    ("get", "/api/v1/templates", "Every usable template", ""),
    (
        "get",
        "/api/v1/templates/{id}",
        "One template with its language variants",
        "",
    ),
    (
        "get",
        "/api/v1/templates/{id}/preview",
        "The exact mail a send would queue for a candidate",
        "compose",
    ),
    (
        "post",
        "/api/v1/send",
        "Send a template to candidates, now or scheduled",
        "compose",
    ),
    (
        "get",
        "/api/v1/queue",
        "The outbox with counts per state",
        "operate_queue",
    ),
    (
        "get",
        "/api/v1/queue/{id}",
        "One outbox item with its history",
        "operate_queue",
    ),
    (
        "post",
        "/api/v1/queue/{id}/{action}",
        "retry, hold, release, cancel or delete an item",
        "operate_queue",
    ),
    (
        "get",
        "/api/v1/suppressions",
        "Addresses not written to because they bounced",
        "operate_queue",
    ),
    (
        "delete",
        "/api/v1/suppressions/{address}",
        "Write to an address again",
        "operate_queue",
    ),
    ("get", "/api/v1/openapi.json", "This document", ""),
];

/// Query parameters per path.
fn query(path: &str) -> &'static [&'static str] {
    match path {
        "/api/v1/candidates" => &[
            "search",
            "position",
            "status",
            "subsidiary",
            "cursor",
            "limit",
        ],
        "/api/v1/inbox" => &["unassigned", "candidate", "before", "limit"],
        "/api/v1/templates/{id}/preview" => &["candidate", "language", "sender"],
        "/api/v1/queue" => &["state", "subsidiary", "batch", "before", "limit"],
        _ => &[],
    }
}

/// The document, as served.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, summary, right) in ROUTES {
        let mut parameters: Vec<Value> = path
            .split('/')
            .filter_map(|p| p.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
            .map(|name| {
                json!({"name": name, "in": "path", "required": true,
                       "schema": if name == "id" { json!({"type": "integer", "minimum": 1}) } else { json!({"type": "string"}) }})
            })
            .collect();
        parameters.extend(query(path).iter().map(
            |q| json!({"name": q, "in": "query", "required": false, "schema": {"type": "string"}}),
        ));
        let mut responses = serde_json::Map::new();
        responses.insert("200".into(), json!({"description": "done"}));
        for (code, what) in [
            ("400", "bad input (the error names the field)"),
            ("401", "no token, or an unknown one"),
            ("403", "the role lacks the right"),
            ("404", "unknown, or hidden from the caller"),
            ("503", "the store cannot answer now"),
        ] {
            if *path == "/api/v1/openapi.json" {
                break;
            }
            responses.insert(
                code.into(),
                json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
            );
        }
        let mut operation = json!({
            "summary": summary,
            "parameters": parameters,
            "responses": responses,
        });
        if !right.is_empty() {
            operation["description"] = json!(format!("Needs the right `{right}`."));
        }
        if *path == "/api/v1/openapi.json" {
            operation["security"] = json!([]);
        }
        if matches!(*method, "post" | "patch") && !path.contains("{action}") {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[method] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "jobmail", "version": env!("CARGO_PKG_VERSION"),
                 "description": "The recruiting mail gateway's HTTP API: candidates, their threads and documents by role, compose, the queue."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string", "enum": ["invalid", "unauthorized", "forbidden", "not_found", "unavailable"]},
                               "message": {"type": "string"},
                               "field": {"type": "string", "nullable": true}}}}}}
        },
        "paths": paths,
    })
}

#[cfg(test)]
mod tests {
    use super::ROUTES;

    /// Every path the router serves is in the document: read from the
    /// router's own source, so a new route without a line here fails.
    #[test]
    fn every_served_route_is_documented() {
        let source = include_str!("mod.rs");
        let mut served: Vec<&str> = source
            .split(".route(")
            .skip(1)
            .filter_map(|rest| rest.trim_start().strip_prefix('"'))
            .filter_map(|rest| rest.split('"').next())
            .collect();
        served.sort();
        served.dedup();
        let mut documented: Vec<&str> = ROUTES.iter().map(|(_, p, _, _)| *p).collect();
        documented.sort();
        documented.dedup();
        assert_eq!(served, documented);
    }
}
