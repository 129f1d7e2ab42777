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

/// Query parameters of a GET: (name, type, required).
fn query(method: &str, path: &str) -> &'static [(&'static str, &'static str, bool)] {
    if method != "get" {
        return &[];
    }
    match path {
        "/api/v1/candidates" => &[
            ("search", "string", false),
            ("position", "string", false),
            ("status", "string", false),
            ("subsidiary", "string", false),
            ("cursor", "string", false),
            ("limit", "integer", false),
        ],
        "/api/v1/inbox" => &[
            ("unassigned", "boolean", false),
            ("candidate", "integer", false),
            ("search", "string", false),
            ("subsidiary", "string", false),
            ("position", "string", false),
            ("status", "string", false),
            ("category", "string", false),
            ("before", "integer", false),
            ("limit", "integer", false),
        ],
        "/api/v1/templates/{id}/preview" => &[
            ("candidate", "integer", true),
            ("language", "string", false),
            ("sender", "string", false),
        ],
        "/api/v1/queue" => &[
            ("state", "string", false),
            ("subsidiary", "string", false),
            ("batch", "string", false),
            ("before", "integer", false),
            ("limit", "integer", false),
        ],
        _ => &[],
    }
}

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn nullable(kind: &str) -> Value {
    json!({"type": kind, "nullable": true})
}

fn array_of(item: Value) -> Value {
    json!({"type": "array", "items": item})
}

/// An object with these properties, all of them required.
fn object(properties: &[(&str, Value)]) -> Value {
    let required: Vec<&str> = properties.iter().map(|(k, _)| *k).collect();
    let props: serde_json::Map<String, Value> = properties
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    json!({"type": "object", "required": required, "properties": props})
}

/// The JSON a request carries, where there is one (multipart where files go).
fn request_body(method: &str, path: &str) -> Option<Value> {
    let string = || json!({"type": "string"});
    let id = || json!({"type": "integer", "minimum": 1});
    let json_only = |schema: Value| json!({"required": true, "content": {"application/json": {"schema": schema}}});
    Some(match (method, path) {
        ("post", "/api/v1/candidates") => {
            let fields = json!({
                "candidate": id(), "email": string(), "name": string(),
                "position": string(), "subsidiary": string(), "language": string(),
            });
            let mut form = fields.clone();
            form["category"] = string();
            form["document"] = json!({"type": "string", "format": "binary"});
            json!({"required": true, "content": {
                "application/json": {"schema": {"type": "object", "properties": fields, "additionalProperties": false}},
                "multipart/form-data": {"schema": {"type": "object", "properties": form}}}})
        }
        ("patch", "/api/v1/candidates/{id}") => json_only(json!({
            "type": "object", "additionalProperties": false,
            "properties": {"first_name": string(), "last_name": string(),
                "gender": {"type": "string", "enum": crate::app::candidates::GENDERS},
                "language": nullable("string")}})),
        ("post", "/api/v1/candidates/{id}/merge") => json_only(json!({
            "type": "object", "additionalProperties": false, "required": ["from"],
            "properties": {"from": id()}})),
        ("post", "/api/v1/candidates/{id}/documents") => json!({"required": true, "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary"}, "category": string()}}}}}),
        ("patch", "/api/v1/applications/{id}") => json_only(json!({
            "type": "object", "additionalProperties": false, "required": ["status"],
            "properties": {"status": {"type": "string", "enum": crate::store::candidates::STATUSES}}})),
        ("patch", "/api/v1/documents/{id}") => json_only(json!({
            "type": "object", "required": ["category"], "properties": {"category": string()}})),
        ("post", "/api/v1/messages/{id}/assign") => json_only(json!({
            "type": "object", "required": ["candidate"], "properties": {"candidate": id()}})),
        ("post", "/api/v1/send") => {
            let send = json!({
                "type": "object", "additionalProperties": false, "required": ["template"],
                "properties": {"template": string(), "candidates": array_of(id()),
                    "position": string(), "category": string(), "status": string(),
                    "sender": string(), "language": string(),
                    "reuse_documents": array_of(id()), "at": string()}});
            json!({"required": true, "content": {
                "application/json": {"schema": send},
                "multipart/form-data": {"schema": {"type": "object", "required": ["send"], "properties": {
                    "send": string(), "file": {"type": "string", "format": "binary"}}}}}})
        }
        _ => return None,
    })
}

/// The success answer of a route: its status and content.
fn success(method: &str, path: &str) -> (&'static str, Value) {
    let json_of = |schema: Value| json!({"application/json": {"schema": schema}});
    let ok = |schema: Value| ("200", json_of(schema));
    match (method, path) {
        ("get", "/api/v1/candidates") => ok(object(&[
            ("candidates", array_of(schema("CandidateSummary"))),
            ("next_cursor", nullable("string")),
        ])),
        ("post", "/api/v1/candidates") => (
            "201",
            json_of(object(&[
                ("candidate", json!({"type": "integer"})),
                ("application", json!({"type": "integer"})),
                ("candidate_created", json!({"type": "boolean"})),
                ("acknowledgement", schema("AutoReply")),
                ("documents", array_of(json!({"type": "integer"}))),
            ])),
        ),
        ("get" | "patch", "/api/v1/candidates/{id}")
        | ("post", "/api/v1/candidates/{id}/merge") => ok(schema("Candidate")),
        ("get", "/api/v1/candidates/{id}/documents") => {
            ok(object(&[("documents", array_of(schema("PlacedDocument")))]))
        }
        ("post", "/api/v1/candidates/{id}/documents") => (
            "201",
            json_of(object(&[("documents", array_of(schema("PlacedDocument")))])),
        ),
        ("get", "/api/v1/documents/{id}") => (
            "200",
            json!({"*/*": {"schema": {"type": "string", "format": "binary"}}}),
        ),
        ("get", "/api/v1/messages/{id}/raw") => (
            "200",
            json!({"message/rfc822": {"schema": {"type": "string", "format": "binary"}}}),
        ),
        ("get", "/api/v1/openapi.json") => {
            ok(json!({"type": "object", "required": ["openapi", "paths"]}))
        }
        ("get", "/api/v1/templates") => ok(object(&[(
            "templates",
            array_of(schema("TemplateSummary")),
        )])),
        ("get", "/api/v1/templates/{id}") => ok(object(&[
            ("template", schema("TemplateSummary")),
            ("variants", json!({"type": "object"})),
        ])),
        ("get", "/api/v1/templates/{id}/preview") => ok(object(&[
            ("candidate", json!({"type": "integer"})),
            ("to", json!({"type": "string"})),
            ("subject", json!({"type": "string"})),
            ("mail", json!({"type": "string"})),
        ])),
        ("get", "/api/v1/inbox") => ok(object(&[
            (
                "messages",
                array_of(json!({"type": "object", "required": ["id", "received_at"]})),
            ),
            ("next_before", nullable("integer")),
        ])),
        ("get", "/api/v1/messages/{id}") => ok(json!({"type": "object", "required": ["id"]})),
        ("post", "/api/v1/send") => ok(object(&[
            ("batch", json!({"type": "string"})),
            (
                "queued",
                array_of(json!({"type": "object", "required": ["candidate", "item"]})),
            ),
            (
                "skipped",
                array_of(json!({"type": "object", "required": ["candidate", "reason"]})),
            ),
        ])),
        ("get", "/api/v1/queue") => ok(object(&[
            (
                "items",
                array_of(json!({"type": "object", "required": ["id", "state"]})),
            ),
            ("summary", json!({"type": "object"})),
            ("paused_upstreams", json!({"type": "array"})),
            ("next_before", nullable("integer")),
        ])),
        ("get", "/api/v1/queue/{id}") => ok(object(&[
            (
                "item",
                json!({"type": "object", "required": ["id", "state"]}),
            ),
            ("events", json!({"type": "array"})),
            ("message", json!({"type": "string"})),
        ])),
        ("get", "/api/v1/suppressions") => ok(object(&[(
            "suppressions",
            array_of(object(&[
                ("address", json!({"type": "string"})),
                ("reason", json!({"type": "string"})),
                ("item", nullable("integer")),
                ("since", json!({"type": "string"})),
                ("until", json!({"type": "string"})),
            ])),
        )])),
        _ => ok(json!({"type": "object"})),
    }
}

/// The shapes the answers share.
fn schemas() -> Value {
    let string = || json!({"type": "string"});
    let integer = || json!({"type": "integer"});
    let summary = [
        ("id", integer()),
        ("first_name", string()),
        ("last_name", string()),
        (
            "gender",
            json!({"type": "string", "enum": crate::app::candidates::GENDERS}),
        ),
        ("language", nullable("string")),
        ("language_source", nullable("string")),
        ("addresses", array_of(string())),
        ("application_count", integer()),
        ("message_count", integer()),
        ("created_at", string()),
    ];
    let document = [
        ("id", integer()),
        ("part", string()),
        ("filename", string()),
        ("content_type", string()),
        ("size", integer()),
        ("sha256", string()),
        ("category", string()),
    ];
    let mut candidate: Vec<(&str, Value)> = summary.to_vec();
    candidate.push(("applications", array_of(schema("Application"))));
    candidate.push(("thread", array_of(schema("ThreadEntry"))));
    let mut placed: Vec<(&str, Value)> = document.to_vec();
    placed.extend([
        ("message", nullable("integer")),
        ("candidate", nullable("integer")),
        (
            "direction",
            json!({"type": "string", "enum": ["inbound", "outbound", "upload"]}),
        ),
        ("received_at", string()),
        ("added_by", nullable("string")),
    ]);
    let mut auto_reply = object(&[
        ("decision", string()),
        ("rule", nullable("string")),
        ("detail", string()),
        ("item", nullable("integer")),
    ]);
    auto_reply["nullable"] = json!(true);
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message", "field"],
            "properties": {"code": {"type": "string", "enum": ERROR_CODES},
                           "message": string(),
                           "field": nullable("string")}}}},
        "CandidateSummary": object(&summary),
        "Candidate": object(&candidate),
        "Document": object(&document),
        "PlacedDocument": object(&placed),
        "AutoReply": auto_reply,
        "Application": object(&[
            ("id", integer()),
            ("subsidiary", string()),
            ("position", nullable("string")),
            ("source", string()),
            ("status", json!({"type": "string", "enum": crate::store::candidates::STATUSES})),
            ("received_at", string()),
            ("message_id", nullable("integer")),
            ("auto_reply", schema("AutoReply")),
        ]),
        "ThreadEntry": object(&[
            ("id", integer()),
            ("direction", string()),
            ("received_at", string()),
            ("from", {
                let mut m = object(&[("name", nullable("string")), ("address", string())]);
                m["nullable"] = json!(true);
                m
            }),
            ("subject", nullable("string")),
            ("reason", nullable("string")),
            ("confidence", nullable("string")),
            ("detail", nullable("string")),
            ("closed_thread", json!({"type": "boolean"})),
            ("outbox", {
                let mut o = object(&[
                    ("item", integer()),
                    ("state", string()),
                    ("attempts", integer()),
                    ("reply", nullable("string")),
                    ("not_before", nullable("string")),
                    ("next_attempt_at", nullable("string")),
                ]);
                o["nullable"] = json!(true);
                o
            }),
            ("attachments", array_of(schema("Document"))),
        ]),
        "TemplateSummary": object(&[
            ("id", string()),
            ("description", string()),
            ("default_language", string()),
            ("languages", array_of(string())),
            ("automatic", json!({"type": "boolean"})),
            ("attachments", array_of(string())),
        ]),
    })
}

/// Every `code` an error may have.
pub const ERROR_CODES: [&str; 9] = [
    "invalid",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "too_large",
    "unrenderable",
    "rate_limited",
    "unavailable",
];

/// The document, as served.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, summary, right) in ROUTES {
        let mut parameters: Vec<Value> = path
            .split('/')
            .filter_map(|p| p.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
            .map(|name| {
                let schema = match name {
                    "id" if !path.starts_with("/api/v1/templates/") => {
                        json!({"type": "integer", "minimum": 1})
                    }
                    "action" => {
                        json!({"type": "string", "enum": ["retry", "hold", "release", "cancel", "delete"]})
                    }
                    _ => json!({"type": "string"}),
                };
                json!({"name": name, "in": "path", "required": true, "schema": schema})
            })
            .collect();
        parameters.extend(query(method, path).iter().map(|(name, kind, required)| {
            let mut schema = json!({ "type": kind });
            if *name == "limit" {
                schema = json!({"type": "integer", "minimum": 1, "maximum": 1000});
            }
            json!({"name": name, "in": "query", "required": required, "schema": schema})
        }));
        let mut responses = serde_json::Map::new();
        let (code, content) = success(method, path);
        responses.insert(
            code.into(),
            json!({"description": "done", "content": content}),
        );
        let errors: &[(&str, &str)] = if *path == "/api/v1/openapi.json" {
            &[("429", "over the rate limit (Retry-After says when)")]
        } else {
            &[
                ("400", "bad input (the error names the field)"),
                ("401", "no token, or an unknown one"),
                ("403", "the role lacks the right"),
                ("404", "unknown, or hidden from the caller"),
                ("409", "in conflict with the state of the thing"),
                ("413", "over the size limit"),
                ("422", "the template does not render for this candidate"),
                ("429", "over the rate limit (Retry-After says when)"),
                ("503", "the store cannot answer now"),
            ]
        };
        for (code, what) in errors {
            responses.insert(
                code.to_string(),
                json!({"description": what, "content": {"application/json": {"schema": schema("Error")}}}),
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
        if let Some(body) = request_body(method, path) {
            operation["requestBody"] = body;
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
            "schemas": schemas(),
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
