//! Every route of `/api/v1` driven by schemathesis (PyPI; `.ci/run`
//! installs it) from the OpenAPI document the daemon serves, as both users
//! of the example config: no 500, every status documented, every answer of
//! the documented type and shape. A fixed seed and a small budget keep it
//! the same run each time and well under a minute.

use std::process::Command;

use super::client::*;
use crate::support::harness::*;

#[test]
fn every_route_holds_to_the_openapi_document_under_generated_requests() {
    let (d, base) = api_daemon_with("requests_per_minute = 0\n", &example_directory());
    // Something to find: a mail with a CV and a contract, a form application.
    let mut c = d.connect();
    c.ehlo();
    let mail = mail_with_pdfs(
        "Erika Muster <erika@example.org>",
        "jobs+backend@acme.example",
        &[
            ("Lebenslauf.pdf", b"%PDF-1.4 cv"),
            ("Arbeitsvertrag.pdf", b"%PDF-1.4 contract"),
        ],
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
    let created = curl(
        &base,
        "POST",
        "/api/v1/candidates",
        Some("olaf"),
        Some(
            r#"{"name": "Jean Dupont", "email": "jean@example.fr", "position": "account-exec-paris"}"#,
        ),
    );
    assert_eq!(created.status, 201);
    for user in ["anna", "olaf"] {
        let run = Command::new("schemathesis")
            .args(["run", &format!("{base}/api/v1/openapi.json")])
            .args(["-H", &format!("Authorization: Bearer {}", token(user))])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                "--max-examples",
                "15",
                "--seed",
                "20261202",
                "--no-color",
            ])
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .expect(
                "schemathesis runs (pip install schemathesis==4.32.5, as .ci/run does)",
            );
        let out = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "schemathesis as {user} found failures:\n{out}\n{}\n{}",
            String::from_utf8_lossy(&run.stderr),
            d.log()
        );
        assert!(out.contains("passed"), "{out}");
    }
    drop(d);
}
