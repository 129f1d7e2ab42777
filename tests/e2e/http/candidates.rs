//! Candidates, applications and documents changed over `/api/v1` as an
//! ATS or the web page would: an application from the online form with
//! its CV in the same request, uploads up to the size limit, delete,
//! names, gender and language, merge, the cursor, compose with a new
//! attachment, conflicts and the per-token rate limit.

use std::path::Path;

use super::client::*;
use crate::support::harness::*;
use crate::support::upstream::{Upstream, relayed_directory};

/// `-F` arguments of a form, each `name=value` or `name=@file;...`.
fn form<'a>(fields: &'a [&'a str]) -> Vec<&'a str> {
    fields.iter().flat_map(|f| ["-F", *f]).collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write file");
    path.display().to_string()
}

fn body(a: &Answer) -> String {
    String::from_utf8_lossy(&a.body).into_owned()
}

#[test]
fn an_ats_creates_a_candidate_with_a_cv_and_the_candidate_gets_the_acknowledgement() {
    let up = Upstream::start();
    let (d, base) = api_daemon_with("", &with_acknowledgements(&relayed_directory(&up)));
    let files = tempfile::tempdir().expect("temp dir");
    let cv = b"%PDF-1.4 Lebenslauf von Erika, uploaded by the form";
    let cv_path = write(files.path(), "Lebenslauf Erika.pdf", cv);
    let document = format!("document=@{cv_path};type=application/pdf");
    let created = curl_with(
        &base,
        "POST",
        "/api/v1/candidates",
        Some("anna"),
        &form(&[
            "name=Erika Muster",
            "email=erika@example.org",
            "position=backend-rust",
            "language=en",
            &document,
        ]),
    );
    assert_eq!(created.status, 201, "{}", body(&created));
    let created = created.json();
    assert_eq!(created["candidate_created"], true);
    assert_eq!(
        created["acknowledgement"]["decision"], "pending",
        "{created}"
    );
    let candidate = created["candidate"].as_i64().expect("candidate");
    let doc = created["documents"][0].as_i64().expect("a document");

    // The CV is the candidate's, filed as a CV by the rules, and comes
    // back byte for byte.
    let docs = curl(
        &base,
        "GET",
        &format!("/api/v1/candidates/{candidate}/documents"),
        Some("anna"),
        None,
    )
    .json();
    let listed = &docs["documents"][0];
    assert_eq!(listed["id"], doc);
    assert_eq!(listed["category"], "cv");
    assert_eq!(listed["direction"], "upload");
    assert_eq!(listed["added_by"], "anna");
    assert_eq!(listed["filename"], "Lebenslauf Erika.pdf");
    let got = curl(
        &base,
        "GET",
        &format!("/api/v1/documents/{doc}"),
        Some("anna"),
        None,
    );
    assert_eq!(got.status, 200);
    assert_eq!(got.body, cv);

    // Its acknowledgement reaches the upstream, in the form's language.
    let sent = up.wait_for(1, 30);
    assert_eq!(sent[0].to, ["erika@example.org"]);
    let mail = String::from_utf8_lossy(&sent[0].data);
    assert!(mail.contains("Confirmation_of_receipt"), "{mail}");

    // The same person again, as JSON: the known candidate, a second application.
    let again = curl(
        &base,
        "POST",
        "/api/v1/candidates",
        Some("anna"),
        Some(r#"{"name": "Erika Muster", "email": "erika@example.org", "subsidiary": "acme-de"}"#),
    );
    assert_eq!(again.status, 201, "{}", body(&again));
    assert_eq!(again.json()["candidate"], candidate);
    assert_eq!(again.json()["candidate_created"], false);

    // Bad input: the field is named; another subsidiary is refused; no token, no entry.
    for (json, status, field) in [
        (
            r#"{"name": "X", "email": "x@example.org", "position": "astronaut"}"#,
            400,
            None,
        ),
        (
            r#"{"name": "X", "email": "not an address", "subsidiary": "acme-de"}"#,
            400,
            None,
        ),
        (
            r#"{"name": "X", "email": "x@example.org", "subsidiary": "acme-de", "salary": 1}"#,
            400,
            Some("body"),
        ),
        (
            r#"{"name": "X", "email": "x@example.org", "subsidiary": "acme-fr"}"#,
            403,
            None,
        ),
        (r#"["not", "an", "object"]"#, 400, Some("body")),
        ("{", 400, Some("body")),
    ] {
        let a = curl(
            &base,
            "POST",
            "/api/v1/candidates",
            Some("anna"),
            Some(json),
        );
        assert_eq!(a.status, status, "{json}: {}", body(&a));
        if let Some(f) = field {
            assert_eq!(a.json()["error"]["field"], f, "{json}");
        }
    }
    let anonymous = curl(
        &base,
        "POST",
        "/api/v1/candidates",
        None,
        Some(r#"{"name": "X", "email": "x@example.org", "subsidiary": "acme-de"}"#),
    );
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("www-authenticate").as_deref(),
        Some("Bearer")
    );
    drop(d);
}

#[test]
fn uploads_are_byte_exact_up_to_the_size_limit_and_deleting_is_by_right() {
    let (d, base) = api_daemon();
    let created = curl(
        &base,
        "POST",
        "/api/v1/candidates",
        Some("olaf"),
        Some(
            r#"{"name": "Jonas Weber", "email": "jonas@example.org", "position": "backend-rust"}"#,
        ),
    );
    assert_eq!(created.status, 201, "{}", body(&created));
    let candidate = created.json()["candidate"].as_i64().expect("candidate");
    let upload = format!("/api/v1/candidates/{candidate}/documents");
    let files = tempfile::tempdir().expect("temp dir");

    // Exactly the 10 MB a mail may have: accepted and byte-exact.
    let limit = 10 * 1024 * 1024;
    let big: Vec<u8> = (0..limit).map(|i| (i * 7 % 251) as u8).collect();
    let path = write(files.path(), "portfolio.pdf", &big);
    let a = curl_with(
        &base,
        "POST",
        &upload,
        Some("anna"),
        &form(&[&format!("file=@{path}")]),
    );
    assert_eq!(a.status, 201, "{}", body(&a));
    let big_id = a.json()["documents"][0]["id"].as_i64().expect("id");
    let got = curl(
        &base,
        "GET",
        &format!("/api/v1/documents/{big_id}"),
        Some("anna"),
        None,
    );
    assert_eq!(got.body.len(), limit);
    assert!(got.body == big, "the download differs from the upload");
    // One byte more: 413, and nothing kept.
    let mut over = big.clone();
    over.push(b'!');
    let path = write(files.path(), "portfolio2.pdf", &over);
    let a = curl_with(
        &base,
        "POST",
        &upload,
        Some("anna"),
        &form(&[&format!("file=@{path}")]),
    );
    assert_eq!(a.status, 413, "{}", body(&a));
    assert_eq!(a.json()["error"]["code"], "too_large");
    // A body over [api] max_body_bytes: 413 before anything is read.
    let huge = vec![b'x'; limit + 200 * 1024];
    let path = write(files.path(), "huge.bin", &huge);
    let a = curl_with(
        &base,
        "POST",
        &upload,
        Some("anna"),
        &form(&[&format!("file=@{path}")]),
    );
    assert_eq!(a.status, 413, "{}", body(&a));
    let listed = curl(&base, "GET", &upload, Some("olaf"), None).json();
    assert_eq!(
        listed["documents"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );

    // Hostile names are made safe; HTML and SVG are never served inline.
    let html = write(files.path(), "page.html", b"<script>alert(1)</script>");
    let svg = write(files.path(), "logo.svg", b"<svg onload=alert(1)/>");
    let a = curl_with(
        &base,
        "POST",
        &upload,
        Some("anna"),
        &form(&[
            &format!("file=@{html};type=text/html;filename=../../etc/\u{202E}lmth.pdf"),
            &format!("file=@{svg};type=image/svg+xml"),
        ]),
    );
    assert_eq!(a.status, 201, "{}", body(&a));
    let docs = a.json()["documents"]
        .as_array()
        .cloned()
        .expect("documents");
    assert_eq!(docs[0]["filename"], "lmth.pdf", "{docs:?}");
    for d in &docs {
        let id = d["id"].as_i64().expect("id");
        let got = curl(
            &base,
            "GET",
            &format!("/api/v1/documents/{id}"),
            Some("anna"),
            None,
        );
        let disposition = got.header("content-disposition").unwrap_or_default();
        assert!(disposition.starts_with("attachment;"), "{disposition}");
        assert_eq!(
            got.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
    }

    // Anna may not file anything under contracts; Olaf may.
    let contract = write(files.path(), "Arbeitsvertrag.pdf", b"%PDF-1.4 contract");
    let anna_contract = curl_with(
        &base,
        "POST",
        &upload,
        Some("anna"),
        &form(&[&format!("file=@{contract}")]),
    );
    assert_eq!(anna_contract.status, 403, "{}", body(&anna_contract));
    let olaf_contract = curl_with(
        &base,
        "POST",
        &upload,
        Some("olaf"),
        &form(&[&format!("file=@{contract}"), "category=contract"]),
    );
    assert_eq!(olaf_contract.status, 201, "{}", body(&olaf_contract));
    let contract_id = olaf_contract.json()["documents"][0]["id"]
        .as_i64()
        .expect("id");
    // Anna does not see it: not listed, and deleting it is 404, not 403.
    let anna_sees = curl(&base, "GET", &upload, Some("anna"), None).json();
    assert!(
        !anna_sees.to_string().contains("Arbeitsvertrag"),
        "{anna_sees}"
    );
    let a = curl(
        &base,
        "DELETE",
        &format!("/api/v1/documents/{contract_id}"),
        Some("anna"),
        None,
    );
    assert_eq!(a.status, 404);

    // Anna deletes the portfolio: gone from every list and from the API.
    let a = curl(
        &base,
        "DELETE",
        &format!("/api/v1/documents/{big_id}"),
        Some("anna"),
        None,
    );
    assert_eq!(a.status, 200, "{}", body(&a));
    let a = curl(
        &base,
        "DELETE",
        &format!("/api/v1/documents/{big_id}"),
        Some("anna"),
        None,
    );
    assert_eq!(a.status, 404);
    let got = curl(
        &base,
        "GET",
        &format!("/api/v1/documents/{big_id}"),
        Some("olaf"),
        None,
    );
    assert_eq!(got.status, 404);
    let listed = curl(&base, "GET", &upload, Some("olaf"), None).json();
    assert!(!listed.to_string().contains("portfolio"), "{listed}");

    // The audit has each upload, the refusal and the delete.
    let audit = json(d.cli(&["audit", "--json"]));
    let lines: Vec<(String, String, bool)> = audit["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .map(|l| {
            (
                l["actor"].as_str().unwrap_or("").to_string(),
                l["action"].as_str().unwrap_or("").to_string(),
                l["allowed"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    for expected in [
        ("anna", "document.upload", true),
        ("anna", "document.upload", false),
        ("olaf", "document.upload", true),
        ("anna", "document.delete", true),
        ("anna", "document.delete", false),
    ] {
        let expected = (expected.0.to_string(), expected.1.to_string(), expected.2);
        assert!(lines.contains(&expected), "{expected:?} not in {lines:?}");
    }
    drop(d);
}

#[test]
fn candidates_are_changed_merged_and_paged_with_a_cursor() {
    let (d, base) = api_daemon();
    let mut ids = Vec::new();
    for (name, email, position) in [
        ("Erika Muster", "erika@example.org", "backend-rust"),
        ("Jonas Weber", "jonas@example.org", "backend-rust"),
        ("J. Weber", "j.weber@example.org", "backend-rust"),
        ("Lena Fischer", "lena@example.org", "backend-rust"),
        ("Jean Dupont", "jean@example.fr", "account-exec-paris"),
    ] {
        let a = curl(
            &base,
            "POST",
            "/api/v1/candidates",
            Some("olaf"),
            Some(&format!(
                r#"{{"name": "{name}", "email": "{email}", "position": "{position}"}}"#
            )),
        );
        assert_eq!(a.status, 201, "{}", body(&a));
        ids.push(a.json()["candidate"].as_i64().expect("id"));
    }
    let jean = ids[4];

    // Names, gender, language; a language set by hand says so.
    let path = format!("/api/v1/candidates/{}", ids[0]);
    let a = curl(
        &base,
        "PATCH",
        &path,
        Some("anna"),
        Some(
            r#"{"first_name": "Erika", "last_name": "Mustermann", "gender": "female", "language": "en"}"#,
        ),
    );
    assert_eq!(a.status, 200, "{}", body(&a));
    let c = a.json();
    assert_eq!(c["last_name"], "Mustermann");
    assert_eq!(c["gender"], "female");
    assert_eq!(c["language"], "en");
    assert_eq!(c["language_source"], "manual");
    let cleared = curl(
        &base,
        "PATCH",
        &path,
        Some("anna"),
        Some(r#"{"language": null}"#),
    )
    .json();
    assert_eq!(cleared["language"], serde_json::Value::Null);
    for bad in [
        r#"{"gender": "robot"}"#,
        r#"{"language": "tlh"}"#,
        r#"{"language": 7}"#,
        r#"{"nickname": "E"}"#,
    ] {
        assert_eq!(
            curl(&base, "PATCH", &path, Some("anna"), Some(bad)).status,
            400,
            "{bad}"
        );
    }
    // Another subsidiary's candidate is hidden from Anna: 404.
    let a = curl(
        &base,
        "PATCH",
        &format!("/api/v1/candidates/{jean}"),
        Some("anna"),
        Some(r#"{"gender": "male"}"#),
    );
    assert_eq!(a.status, 404);

    // Two records of one person become one; the merged id leads to the survivor.
    let merge = format!("/api/v1/candidates/{}/merge", ids[1]);
    let body_from = format!(r#"{{"from": {}}}"#, ids[2]);
    let a = curl(&base, "POST", &merge, Some("anna"), Some(&body_from));
    assert_eq!(a.status, 200, "{}", body(&a));
    let addresses = a.json()["addresses"].to_string();
    assert!(addresses.contains("j.weber@example.org"), "{addresses}");
    assert_eq!(
        curl(&base, "POST", &merge, Some("anna"), Some(&body_from)).status,
        409
    );
    let itself = format!(r#"{{"from": {}}}"#, ids[1]);
    assert_eq!(
        curl(&base, "POST", &merge, Some("anna"), Some(&itself)).status,
        409
    );
    let hidden = format!(r#"{{"from": {jean}}}"#);
    assert_eq!(
        curl(&base, "POST", &merge, Some("anna"), Some(&hidden)).status,
        404
    );
    let survivor = curl(
        &base,
        "GET",
        &format!("/api/v1/candidates/{}", ids[2]),
        Some("anna"),
        None,
    );
    assert_eq!(survivor.json()["id"], ids[1]);

    // The cursor: pages of two, newest first, each candidate once, Anna's only.
    let mut seen = Vec::new();
    let mut next = String::new();
    loop {
        let page = curl(
            &base,
            "GET",
            &format!("/api/v1/candidates?limit=2&cursor={next}"),
            Some("anna"),
            None,
        )
        .json();
        for c in page["candidates"].as_array().expect("candidates") {
            seen.push(c["id"].as_i64().expect("id"));
        }
        match page["next_cursor"].as_str() {
            Some(c) => next = c.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, [ids[3], ids[1], ids[0]]);
    let olaf_all = curl(
        &base,
        "GET",
        "/api/v1/candidates?limit=100",
        Some("olaf"),
        None,
    )
    .json();
    assert_eq!(olaf_all["candidates"].as_array().map(Vec::len), Some(4));
    assert_eq!(olaf_all["next_cursor"], serde_json::Value::Null);
    let fr = curl(
        &base,
        "GET",
        "/api/v1/candidates?subsidiary=acme-fr",
        Some("olaf"),
        None,
    )
    .json();
    assert_eq!(fr["candidates"][0]["id"], jean);
    let fr_anna = curl(
        &base,
        "GET",
        "/api/v1/candidates?subsidiary=acme-fr",
        Some("anna"),
        None,
    )
    .json();
    assert_eq!(fr_anna["candidates"].as_array().map(Vec::len), Some(0));
    let search = curl(
        &base,
        "GET",
        "/api/v1/candidates?search=fischer",
        Some("anna"),
        None,
    )
    .json();
    assert_eq!(search["candidates"][0]["id"], ids[3]);
    assert_eq!(
        curl(
            &base,
            "GET",
            "/api/v1/candidates?cursor=abc",
            Some("anna"),
            None
        )
        .status,
        400
    );

    // An application's status.
    let shown = curl(
        &base,
        "GET",
        &format!("/api/v1/candidates/{}", ids[3]),
        Some("anna"),
        None,
    )
    .json();
    let application = shown["applications"][0]["id"]
        .as_i64()
        .expect("application");
    let status_path = format!("/api/v1/applications/{application}");
    let a = curl(
        &base,
        "PATCH",
        &status_path,
        Some("anna"),
        Some(r#"{"status": "interview"}"#),
    );
    assert_eq!(a.status, 200, "{}", body(&a));
    let interviewing = curl(
        &base,
        "GET",
        "/api/v1/candidates?status=interview",
        Some("anna"),
        None,
    )
    .json();
    assert_eq!(interviewing["candidates"][0]["id"], ids[3]);
    assert_eq!(
        curl(
            &base,
            "PATCH",
            &status_path,
            Some("anna"),
            Some(r#"{"status": "maybe"}"#)
        )
        .status,
        400
    );
    drop(d);
}

#[test]
fn compose_with_a_new_attachment_and_a_reused_document_reaches_the_upstream() {
    let up = Upstream::start();
    let (d, base) = api_daemon_with("", &relayed_directory(&up));
    let mut c = d.connect();
    c.ehlo();
    let mail = mail_with_pdfs(
        "Erika Muster <erika@example.org>",
        "jobs+backend@acme.example",
        &[("CV.pdf", b"%PDF-1.4 the CV of Erika")],
    );
    assert_eq!(
        c.transaction(
            "erika@example.org",
            "jobs+backend@acme.example",
            &stuff(&mail)
        )
        .0,
        250
    );
    let files = tempfile::tempdir().expect("temp dir");
    let directions = write(
        files.path(),
        "Anfahrt.txt",
        b"Take the S-Bahn to Hauptbahnhof.\n",
    );
    let send =
        r#"send={"template": "interview-invitation", "candidates": [1], "reuse_documents": [1]}"#;
    let a = curl_with(
        &base,
        "POST",
        "/api/v1/send",
        Some("anna"),
        &form(&[send, &format!("file=@{directions}")]),
    );
    assert_eq!(a.status, 200, "{}", body(&a));
    let summary = a.json();
    assert_eq!(
        summary["queued"].as_array().map(Vec::len),
        Some(1),
        "{summary}"
    );
    let item = summary["queued"][0]["item"].as_i64().expect("item");
    let sent = up.wait_for(1, 30);
    let delivered = String::from_utf8_lossy(&sent[0].data).into_owned();
    assert!(delivered.contains("Anfahrt.txt"), "{delivered}");
    assert!(delivered.contains("CV.pdf"), "{delivered}");

    // A sent mail cannot be cancelled: 409, and the item is unchanged.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let v = curl(
            &base,
            "GET",
            &format!("/api/v1/queue/{item}"),
            Some("olaf"),
            None,
        )
        .json();
        if v["item"]["state"] == "sent" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let a = curl(
        &base,
        "POST",
        &format!("/api/v1/queue/{item}/cancel"),
        Some("olaf"),
        None,
    );
    assert_eq!(a.status, 409, "{}", body(&a));
    assert_eq!(a.json()["error"]["code"], "conflict");
    assert_eq!(
        curl(
            &base,
            "POST",
            "/api/v1/queue/999/cancel",
            Some("olaf"),
            None
        )
        .status,
        404
    );
    drop(d);
}

#[test]
fn a_token_over_its_rate_gets_429_with_retry_after_and_others_go_on() {
    let (d, base) = api_daemon_with("requests_per_minute = 6\nburst = 3\n", &example_directory());
    for _ in 0..3 {
        assert_eq!(
            curl(&base, "GET", "/api/v1/candidates", Some("anna"), None).status,
            200
        );
    }
    let over = curl(&base, "GET", "/api/v1/candidates", Some("anna"), None);
    assert_eq!(over.status, 429, "{}", body(&over));
    assert_eq!(over.json()["error"]["code"], "rate_limited");
    let wait: u64 = over
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=11).contains(&wait), "{wait}");
    assert_eq!(
        curl(&base, "GET", "/api/v1/candidates", Some("olaf"), None).status,
        200
    );
    drop(d);
}

/// A mail that could be two people's waits unassigned with both suggested;
/// a recruiter who sees only one of them is shown only that one, in the
/// message and in the inbox, and assigns it in one call.
#[test]
fn suggestions_of_an_unassigned_mail_are_only_the_candidates_the_caller_sees() {
    let (d, base) = api_daemon();
    for (name, position) in [
        ("Kim Weber", "backend-rust"),
        ("Kim Lee", "account-exec-paris"),
    ] {
        let a = curl(
            &base,
            "POST",
            "/api/v1/candidates",
            Some("olaf"),
            Some(&format!(
                r#"{{"name": "{name}", "email": "kim@example.org", "position": "{position}"}}"#
            )),
        );
        assert_eq!(a.status, 201, "{}", body(&a));
        assert_eq!(a.json()["candidate_created"], true);
    }
    let mut c = d.connect();
    c.ehlo();
    let mail = mail_with_pdfs("Kim <kim@example.org>", "jobs@acme.example", &[]);
    let (code, text) = c.transaction("kim@example.org", "jobs@acme.example", &stuff(&mail));
    assert_eq!(code, 250, "{text}");
    let message: i64 = text
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|t| t.parse().ok())
        .expect("id");

    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .expect("suggestions")
            .iter()
            .map(|s| s["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let olaf = curl(
        &base,
        "GET",
        &format!("/api/v1/messages/{message}"),
        Some("olaf"),
        None,
    )
    .json();
    assert_eq!(olaf["assignment"], "unassigned", "{olaf}");
    assert_eq!(names(&olaf["suggestions"]), ["Kim Weber", "Kim Lee"]);
    let anna = curl(
        &base,
        "GET",
        &format!("/api/v1/messages/{message}"),
        Some("anna"),
        None,
    )
    .json();
    assert_eq!(names(&anna["suggestions"]), ["Kim Weber"], "{anna}");
    let inbox = curl(
        &base,
        "GET",
        "/api/v1/inbox?unassigned=true",
        Some("anna"),
        None,
    )
    .json();
    let entry = &inbox["messages"][0];
    assert_eq!(entry["id"], message);
    assert_eq!(names(&entry["suggestions"]), ["Kim Weber"], "{inbox}");
    let weber = entry["suggestions"][0]["id"].as_i64().expect("id");
    let a = curl(
        &base,
        "POST",
        &format!("/api/v1/messages/{message}/assign"),
        Some("anna"),
        Some(&format!(r#"{{"candidate": {weber}}}"#)),
    );
    assert_eq!(a.status, 200, "{}", body(&a));
    drop(d);
}
