//! `/api/v1` with curl, as the two users of the example config: Anna, a
//! recruiter of ACME Deutschland who may not see contracts, and Olaf, an
//! operator. Every answer is checked for its status, its JSON or bytes and
//! the headers a browser relies on.

use std::process::Command;

use super::client::*;
use crate::support::harness::*;

const PDF_CV: &[u8] = b"%PDF-1.4 the CV of Erika";
const PDF_CONTRACT: &[u8] = b"%PDF-1.4 a signed contract";

#[test]
fn documents_over_http_are_what_each_role_may_see_and_nothing_else() {
    let (d, base) = api_daemon();
    let mut c = d.connect();
    c.ehlo();
    let mail = mail_with_pdfs(
        "Erika Muster <erika@example.org>",
        "jobs@acme.example",
        &[
            ("Lebenslauf Erika.pdf", PDF_CV),
            ("Arbeitsvertrag.pdf", PDF_CONTRACT),
        ],
    );
    assert_eq!(
        c.transaction("erika@example.org", "jobs@acme.example", &stuff(&mail))
            .0,
        250
    );
    let french = mail_with_pdfs(
        "Jean <jean@example.fr>",
        "jobs@acme.example.fr",
        &[("CV Jean.pdf", b"%PDF jean")],
    );
    assert_eq!(
        c.transaction("jean@example.fr", "jobs@acme.example.fr", &stuff(&french))
            .0,
        250
    );
    let get = |path: &str, user: Option<&str>| curl(&base, "GET", path, user, None);

    // No token, or a wrong one: 401 with a JSON error and a challenge.
    let a = get("/api/v1/candidates", None);
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["error"]["code"], "unauthorized");
    assert_eq!(a.header("www-authenticate").as_deref(), Some("Bearer"));
    let wrong = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Authorization: Bearer not-a-token",
        ])
        .arg(format!("{base}/api/v1/candidates"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&wrong.stdout), "401");

    // Candidates: Anna sees ACME Deutschland's only.
    let names = |user| -> Vec<i64> {
        get("/api/v1/candidates", Some(user)).json()["candidates"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| c["id"].as_i64().expect("id"))
            .collect()
    };
    assert_eq!(names("anna"), [1]);
    let mut all = names("olaf");
    all.sort();
    assert_eq!(all, [1, 2]);
    assert_eq!(get("/api/v1/candidates/2", Some("anna")).status, 404);
    let erika = get("/api/v1/candidates/1", Some("anna")).json();
    let shown: Vec<&str> = erika["thread"][0]["attachments"]
        .as_array()
        .expect("attachments")
        .iter()
        .map(|d| d["filename"].as_str().expect("name"))
        .collect();
    assert_eq!(
        shown,
        ["Lebenslauf Erika.pdf"],
        "the contract is not even named"
    );

    // Documents.
    let docs = get("/api/v1/candidates/1/documents", Some("olaf")).json();
    let id_of = |name: &str| {
        docs["documents"]
            .as_array()
            .expect("documents")
            .iter()
            .find(|d| d["filename"] == name)
            .and_then(|d| d["id"].as_i64())
            .expect(name)
    };
    let (cv, contract) = (id_of("Lebenslauf Erika.pdf"), id_of("Arbeitsvertrag.pdf"));
    assert_eq!(
        get("/api/v1/candidates/1/documents", Some("anna")).json()["documents"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let a = get(&format!("/api/v1/documents/{cv}"), Some("anna"));
    assert_eq!(a.status, 200);
    assert_eq!(a.body, PDF_CV, "byte-exact");
    assert_eq!(a.header("content-type").as_deref(), Some("application/pdf"));
    assert!(
        a.header("content-disposition")
            .is_some_and(|d| d.starts_with("inline; filename=\"Lebenslauf Erika.pdf\""))
    );
    assert_eq!(
        a.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert!(
        a.header("content-security-policy")
            .is_some_and(|c| c.contains("sandbox"))
    );
    // Hidden is missing: the same 404 body as a document that does not exist.
    let hidden = get(&format!("/api/v1/documents/{contract}"), Some("anna"));
    let missing = get("/api/v1/documents/999", Some("anna"));
    assert_eq!((hidden.status, missing.status), (404, 404));
    assert_eq!(
        String::from_utf8_lossy(&hidden.body).replace(&contract.to_string(), "N"),
        String::from_utf8_lossy(&missing.body).replace("999", "N")
    );
    assert_eq!(
        get(&format!("/api/v1/documents/{contract}"), Some("olaf")).body,
        PDF_CONTRACT
    );
    // The raw mail holds the contract.
    assert_eq!(get("/api/v1/messages/1/raw", Some("anna")).status, 403);
    let raw = get("/api/v1/messages/1/raw", Some("olaf"));
    assert_eq!(raw.status, 200);
    assert!(String::from_utf8_lossy(&raw.body).contains("Arbeitsvertrag.pdf"));
    // The parsed message lists only what Anna may see.
    let m = get("/api/v1/messages/1", Some("anna")).json();
    assert_eq!(m["attachments"].as_array().map(Vec::len), Some(1));
    // Re-categorise: within her edit rights only.
    let patch = |id: i64, body: &str, user| {
        curl(
            &base,
            "PATCH",
            &format!("/api/v1/documents/{id}"),
            Some(user),
            Some(body),
        )
    };
    assert_eq!(patch(cv, r#"{"category": "contract"}"#, "anna").status, 403);
    assert_eq!(patch(cv, r#"{"category": "nonsense"}"#, "anna").status, 400);
    let bad = patch(cv, r#"{"kategorie": "cv"}"#, "anna");
    assert_eq!(
        (bad.status, bad.json()["error"]["field"].as_str()),
        (400, Some("category"))
    );
    assert_eq!(
        patch(cv, r#"{"category": "certificate"}"#, "anna").json()["category"],
        "certificate"
    );

    // Bad input is a 400 with the field; an unknown route a JSON 404.
    let a = get("/api/v1/documents/abc", Some("anna"));
    assert_eq!(
        (a.status, a.json()["error"]["field"].as_str()),
        (400, Some("id"))
    );
    assert_eq!(get("/api/v1/candidates?limit=0", Some("anna")).status, 400);
    let a = get("/api/v1/nothing", Some("anna"));
    assert_eq!(
        (a.status, a.json()["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // Every access through the API is in the audit, with who.
    let audit = json(d.cli(&["audit", "--json", "--actor", "anna"]));
    let entries = audit["audit"].as_array().expect("audit");
    assert!(
        entries
            .iter()
            .any(|a| a["action"] == "document.download" && a["allowed"] == false)
    );
    assert!(
        entries
            .iter()
            .any(|a| a["action"] == "message.raw" && a["allowed"] == false)
    );
    assert!(
        entries
            .iter()
            .any(|a| a["action"] == "document.categorise" && a["allowed"] == true)
    );
}

#[test]
fn recruiters_compose_and_operators_run_the_queue_by_their_rights() {
    let (d, base) = api_daemon();
    let mut c = d.connect();
    c.ehlo();
    let mail = mail_with_pdfs(
        "Erika Muster <erika@example.org>",
        "jobs+backend@acme.example",
        &[("CV.pdf", PDF_CV)],
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
    let french = mail_with_pdfs("Jean <jean@example.fr>", "jobs@acme.example.fr", &[]);
    assert_eq!(
        c.transaction("jean@example.fr", "jobs@acme.example.fr", &stuff(&french))
            .0,
        250
    );
    let get = |path: &str, user: &str| curl(&base, "GET", path, Some(user), None);
    let post =
        |path: &str, user: &str, body: &str| curl(&base, "POST", path, Some(user), Some(body));

    // The inbox as Anna: her subsidiary's mail only.
    let inbox = get("/api/v1/inbox", "anna").json();
    let ids: Vec<i64> = inbox["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, [1]);
    assert_eq!(get("/api/v1/inbox?limit=5000", "anna").status, 400);

    // The exact mail, then the send: the same library function as the CLI.
    let p = get(
        "/api/v1/templates/interview-invitation/preview?candidate=1",
        "anna",
    );
    assert_eq!(p.status, 200, "{}", String::from_utf8_lossy(&p.body));
    let p = p.json();
    assert_eq!(p["to"], "erika@example.org");
    assert!(
        p["mail"]
            .as_str()
            .is_some_and(|m| m.contains("Message-ID:"))
    );
    assert_eq!(
        get(
            "/api/v1/templates/interview-invitation/preview?candidate=2",
            "anna"
        )
        .status,
        404
    );
    let sent = post(
        "/api/v1/send",
        "anna",
        r#"{"template": "interview-invitation", "candidates": [1], "at": "2099-01-01 09:00"}"#,
    );
    assert_eq!(sent.status, 200, "{}", String::from_utf8_lossy(&sent.body));
    let sent = sent.json();
    assert_eq!(sent["state"], "scheduled");
    let item = sent["queued"][0]["item"].as_i64().expect("item");
    // Not to another subsidiary's candidate, not with an unknown field.
    assert_eq!(
        post(
            "/api/v1/send",
            "anna",
            r#"{"template": "interview-invitation", "candidates": [2]}"#
        )
        .status,
        404
    );
    assert_eq!(
        post(
            "/api/v1/send",
            "anna",
            r#"{"template": "interview-invitation", "candidate": 1}"#
        )
        .status,
        400
    );

    // The queue is the operator's.
    let q = get("/api/v1/queue", "anna");
    assert_eq!(
        (q.status, q.json()["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    assert_eq!(
        post(&format!("/api/v1/queue/{item}/cancel"), "anna", "").status,
        403
    );
    let q = get("/api/v1/queue?state=scheduled", "olaf").json();
    assert_eq!(q["items"][0]["id"].as_i64(), Some(item));
    assert_eq!(
        get(&format!("/api/v1/queue/{item}"), "olaf").json()["item"]["state"],
        "scheduled"
    );
    assert_eq!(
        post(&format!("/api/v1/queue/{item}/hold"), "olaf", "").json()["changed"],
        1
    );
    assert_eq!(
        post(&format!("/api/v1/queue/{item}/cancel"), "olaf", "").status,
        200
    );
    assert_eq!(
        post(&format!("/api/v1/queue/{item}/explode"), "olaf", "").status,
        400
    );
    assert_eq!(
        get(&format!("/api/v1/queue/{item}"), "olaf").json()["item"]["state"],
        "cancelled"
    );
    // The CLI sees what the API did.
    let cli = json(d.cli(&["queue", "list", "--json", "--state", "cancelled"]));
    assert_eq!(cli["items"][0]["id"].as_i64(), Some(item));

    // Assign needs the right and a candidate the caller sees.
    assert_eq!(
        post("/api/v1/messages/1/assign", "anna", r#"{"candidate": 2}"#).status,
        404
    );
    let a = post("/api/v1/messages/1/assign", "anna", r#"{"candidate": 1}"#);
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
}

#[test]
fn every_route_the_openapi_document_lists_is_served() {
    let (d, base) = api_daemon();
    // Served without a token, and it is OpenAPI 3.
    let doc = curl(&base, "GET", "/api/v1/openapi.json", None, None);
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 12, "{}", paths.len());
    // Each documented operation reaches a handler: never the fallback's
    // "no such route", whatever the handler then answers.
    for (path, ops) in paths {
        for method in ops.as_object().expect("operations").keys() {
            let concrete = path.replace("{id}", "1").replace("{action}", "hold");
            let a = curl(
                &base,
                &method.to_uppercase(),
                &concrete,
                Some("olaf"),
                Some("{}"),
            );
            let routed =
                !(a.status == 404 && String::from_utf8_lossy(&a.body).contains("no such route"));
            assert!(routed, "{method} {path} is documented but not served");
            // Errors always have the documented shape.
            if a.status >= 400 {
                assert!(
                    a.json()["error"]["code"].is_string(),
                    "{method} {path}: {}",
                    String::from_utf8_lossy(&a.body)
                );
            }
        }
    }
    drop(d);
}

/// A mail filed on nobody (a colleague's, waiting in the inbox) is every
/// user's to read and assign: its attachments too, not only its summary.
#[test]
fn the_documents_of_a_mail_filed_on_nobody_are_open_to_a_restricted_recruiter() {
    let (d, base) = api_daemon();
    let mut c = d.connect();
    c.ehlo();
    let mail = mail_with_pdfs(
        "Kai Kollege <kai@acme-group.example>",
        "jobs@acme.example",
        &[("Notizen.pdf", b"%PDF notes")],
    );
    assert_eq!(
        c.transaction("kai@acme-group.example", "jobs@acme.example", &stuff(&mail))
            .0,
        250
    );
    let m = curl(&base, "GET", "/api/v1/messages/1", Some("anna"), None).json();
    assert!(m["candidate"].is_null(), "filed on nobody: {m}");
    let doc = m["attachments"][0]["id"]
        .as_i64()
        .expect("the attachment is listed");
    let a = curl(
        &base,
        "GET",
        &format!("/api/v1/documents/{doc}"),
        Some("anna"),
        None,
    );
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.body, b"%PDF notes");
    assert_eq!(
        curl(&base, "GET", "/api/v1/messages/1/raw", Some("anna"), None).status,
        200
    );
}

/// A mail as `mail_with_pdfs` builds it, with its own subject.
fn mail_with_subject(from: &str, to: &str, subject: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mail = String::from_utf8(mail_with_pdfs(from, to, files)).expect("ascii");
    mail.replacen(
        "Subject: Bewerbung\r\n",
        &format!("Subject: {subject}\r\n"),
        1,
    )
    .into_bytes()
}

#[test]
fn the_inbox_filters_and_search_find_mail_by_text_application_and_document() {
    let (d, base) = api_daemon();
    let mut c = d.connect();
    c.ehlo();
    for (from, to, subject, files) in [
        (
            "Erika Muster <erika@example.org>",
            "jobs+backend@acme.example",
            "Bewerbung als Rust-Entwicklerin",
            &[("Lebenslauf.pdf", PDF_CV)][..],
        ),
        (
            "=?utf-8?q?J=C3=B6rg_Wei=C3=9F?= <joerg@example.org>",
            "jobs@acme.example",
            "Initiativbewerbung",
            &[][..],
        ),
        (
            "Jean Dupont <jean@example.fr>",
            "jobs@acme.example.fr",
            "Candidature spontanée",
            &[][..],
        ),
    ] {
        let mail = mail_with_subject(from, to, subject, files);
        let sender = from
            .rsplit('<')
            .next()
            .and_then(|s| s.strip_suffix('>'))
            .expect("address");
        assert_eq!(c.transaction(sender, to, &stuff(&mail)).0, 250);
    }
    let get = |path: &str, user: &str| curl(&base, "GET", path, Some(user), None);
    let subjects = |path: &str, user: &str| -> Vec<String> {
        let a = get(path, user);
        assert_eq!(
            a.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&a.body)
        );
        a.json()["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["subject"].as_str().unwrap_or("").to_string())
            .collect()
    };
    // Any part of a word, any case, with or without accents: in the
    // sender's name, the candidate's name or the subject.
    assert_eq!(
        subjects("/api/v1/inbox?search=jorg", "anna"),
        ["Initiativbewerbung"]
    );
    assert_eq!(
        subjects("/api/v1/inbox?search=WEISS", "anna"),
        ["Initiativbewerbung"],
        "ß is ss, in any case"
    );
    assert_eq!(
        subjects("/api/v1/inbox?search=J%C3%96RG%20WEI%C3%9F", "anna"),
        ["Initiativbewerbung"],
        "and the accented spelling finds it too"
    );
    assert_eq!(
        subjects("/api/v1/inbox?search=entwickler", "anna"),
        ["Bewerbung als Rust-Entwicklerin"]
    );
    let short = get("/api/v1/inbox?search=ik", "anna");
    assert_eq!(short.status, 400, "two letters would read every mail");
    assert!(
        short.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("3 characters"))
    );
    // Query syntax is text: quotes, stars and operators find nothing, fail nothing.
    for hostile in [
        "%22%22%22",
        "a%22%20OR%20%22b",
        "NEAR(x",
        "***",
        "%25%25%25",
    ] {
        assert_eq!(
            subjects(&format!("/api/v1/inbox?search={hostile}"), "anna"),
            Vec::<String>::new(),
            "{hostile}"
        );
    }
    // Another subsidiary's mail is not found by Anna, and is by Olaf.
    assert!(subjects("/api/v1/inbox?search=dupont", "anna").is_empty());
    assert_eq!(
        subjects("/api/v1/inbox?search=dupont", "olaf"),
        ["Candidature spontanée"]
    );
    // By the application: subsidiary, position, status.
    assert_eq!(
        subjects("/api/v1/inbox?subsidiary=acme-fr", "olaf"),
        ["Candidature spontanée"]
    );
    assert!(subjects("/api/v1/inbox?subsidiary=acme-fr", "anna").is_empty());
    assert_eq!(
        subjects("/api/v1/inbox?position=backend-rust", "anna"),
        ["Bewerbung als Rust-Entwicklerin"]
    );
    assert_eq!(subjects("/api/v1/inbox?status=new", "olaf").len(), 3);
    assert!(subjects("/api/v1/inbox?status=hired", "olaf").is_empty());
    // By a document's category, only one the role may see.
    assert_eq!(
        subjects("/api/v1/inbox?category=cv&subsidiary=acme-de", "anna"),
        ["Bewerbung als Rust-Entwicklerin"]
    );
    let hidden = get("/api/v1/inbox?category=contract", "anna");
    assert_eq!(hidden.status, 403);
    assert_eq!(get("/api/v1/inbox?category=contract", "olaf").status, 200);
    // A typo is an error that says what exists, not an empty list.
    let typo = get("/api/v1/inbox?subsidiary=acme-dee", "olaf");
    assert_eq!(typo.status, 400);
    assert!(
        typo.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("acme-de")),
        "{}",
        String::from_utf8_lossy(&typo.body)
    );
    // A renamed candidate is found by the new name at once.
    let joerg = get("/api/v1/inbox?search=jorg", "olaf").json()["messages"][0]["candidate"]["id"]
        .as_i64()
        .expect("Jörg's candidate");
    let renamed = curl(
        &base,
        "PATCH",
        &format!("/api/v1/candidates/{joerg}"),
        Some("olaf"),
        Some(r#"{"first_name": "Georg"}"#),
    );
    assert_eq!(
        renamed.status,
        200,
        "{}",
        String::from_utf8_lossy(&renamed.body)
    );
    assert_eq!(
        subjects("/api/v1/inbox?search=georg", "anna"),
        ["Initiativbewerbung"]
    );
    // The CLI has the same filters.
    let cli = json(d.cli(&["inbox", "--json", "--search", "Rust", "--category", "cv"]));
    assert_eq!(
        cli["messages"][0]["subject"], "Bewerbung als Rust-Entwicklerin",
        "{cli}"
    );
    // Candidates are searched by the same index: part of a name or an address.
    let found = get("/api/v1/candidates?search=xample.f", "olaf").json();
    assert_eq!(
        found["candidates"].as_array().map(Vec::len),
        Some(1),
        "{found}"
    );
    // The searches above ran moments after the 250s, mostly on mails still
    // in the search backlog; the daemon indexes it within seconds, and the
    // same searches find the same mails in the index.
    d.wait_search_indexed();
    let human = String::from_utf8_lossy(&d.cli(&["status"]).stdout).to_string();
    assert!(
        human.contains(", 0 mail(s) waiting for the search index"),
        "{human}"
    );
    assert_eq!(
        subjects("/api/v1/inbox?search=georg", "anna"),
        ["Initiativbewerbung"]
    );
    assert_eq!(
        subjects("/api/v1/inbox?search=entwickler", "anna"),
        ["Bewerbung als Rust-Entwicklerin"]
    );
    assert_eq!(
        subjects("/api/v1/inbox?search=dupont", "olaf"),
        ["Candidature spontanée"]
    );
    assert!(subjects("/api/v1/inbox?search=dupont", "anna").is_empty());
}
