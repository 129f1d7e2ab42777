//! Documents by category with role-checked access, through the real
//! daemon and the CLI as two users of the example config: Anna, a
//! recruiter of ACME Deutschland who may not see contracts, and Olaf, an
//! operator who may see everything.

use crate::support::harness::*;

const PDF_CV: &[u8] = b"%PDF-1.4 the CV of Erika";
const PDF_CONTRACT: &[u8] = b"%PDF-1.4 a signed contract";

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(out: &std::process::Output) -> String {
    assert!(
        !out.status.success(),
        "accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn documents(d: &Daemon, candidate: i64, as_user: Option<&str>) -> Vec<(i64, String, String)> {
    let c = candidate.to_string();
    let mut args = vec!["document", "list", "--candidate", &c, "--json"];
    if let Some(u) = as_user {
        args.extend(["--as", u]);
    }
    json(d.cli(&args))["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|x| {
            (
                x["id"].as_i64().expect("id"),
                x["filename"].as_str().expect("name").to_string(),
                x["category"].as_str().expect("category").to_string(),
            )
        })
        .collect()
}

#[test]
fn each_role_sees_and_changes_only_what_its_categories_allow_and_all_is_audited() {
    let d = Daemon::start_world("", &example_directory(), None);
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
    // A candidate of the French subsidiary, whom Anna (ACME Deutschland) never sees.
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

    // Pre-classified on arrival by the example's rules.
    let all = documents(&d, 1, None);
    let by_name = |n: &str| all.iter().find(|x| x.1 == n).cloned().expect(n);
    let (cv, _, cv_category) = by_name("Lebenslauf Erika.pdf");
    let (contract, _, contract_category) = by_name("Arbeitsvertrag.pdf");
    assert_eq!(
        (cv_category.as_str(), contract_category.as_str()),
        ("cv", "contract")
    );

    // Anna sees the CV only; Olaf both.
    assert_eq!(
        documents(&d, 1, Some("anna"))
            .iter()
            .map(|x| x.0)
            .collect::<Vec<_>>(),
        [cv]
    );
    assert_eq!(documents(&d, 1, Some("olaf")).len(), 2);
    // A hidden document is not there for her, exactly like one that does not exist.
    let hidden = refused(&d.cli(&["document", "get", &contract.to_string(), "--as", "anna"]));
    let missing = refused(&d.cli(&["document", "get", "999", "--as", "anna"]));
    assert_eq!(
        hidden.replace(&contract.to_string(), "N"),
        missing.replace("999", "N")
    );
    // Nor is another subsidiary's candidate.
    assert!(
        refused(&d.cli(&["document", "list", "--candidate", "2", "--as", "anna"]))
            .contains("no candidate 2")
    );
    // Downloads are byte-exact.
    let out = d.cli(&["document", "get", &cv.to_string(), "--as", "anna"]);
    ok(&out);
    assert_eq!(out.stdout, PDF_CV);
    let out = d.cli(&["document", "get", &contract.to_string(), "--as", "olaf"]);
    ok(&out);
    assert_eq!(out.stdout, PDF_CONTRACT);
    // The raw mail holds the contract: not for Anna, for Olaf and the operator.
    assert!(
        refused(&d.cli(&["message", "show", "1", "--raw", "--as", "anna"])).contains("contract")
    );
    assert!(
        ok(&d.cli(&["message", "show", "1", "--raw", "--as", "olaf"]))
            .contains("Arbeitsvertrag.pdf")
    );
    // Editing: Anna may not move her CV into contracts, nor touch the contract.
    assert!(
        refused(&d.cli(&[
            "document",
            "categorise",
            &cv.to_string(),
            "contract",
            "--as",
            "anna"
        ]))
        .contains("may not")
    );
    assert!(
        refused(&d.cli(&[
            "document",
            "categorise",
            &cv.to_string(),
            "nonsense",
            "--as",
            "anna"
        ]))
        .contains("no [[document_category]]")
    );
    ok(&d.cli(&[
        "document",
        "categorise",
        &cv.to_string(),
        "certificate",
        "--as",
        "anna",
    ]));
    assert_eq!(documents(&d, 1, Some("anna"))[0].2, "certificate");
    ok(&d.cli(&[
        "document",
        "categorise",
        &cv.to_string(),
        "contract",
        "--as",
        "olaf",
    ]));
    assert!(
        documents(&d, 1, Some("anna")).is_empty(),
        "now hidden from her"
    );
    // An unknown user is refused before anything is read.
    assert!(
        refused(&d.cli(&["document", "list", "--candidate", "1", "--as", "mallory"]))
            .contains("no [[user]]")
    );

    // The audit has every access and every refusal, who and what.
    let audit = json(d.cli(&["audit", "--json", "--limit", "100"]));
    let lines: Vec<(String, String, String, bool)> = audit["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .map(|a| {
            (
                a["actor"].as_str().unwrap_or("").to_string(),
                a["action"].as_str().unwrap_or("").to_string(),
                a["object"].as_str().unwrap_or("").to_string(),
                a["allowed"].as_bool().unwrap_or(true),
            )
        })
        .collect();
    let has = |actor: &str, action: &str, object: &str, allowed: bool| {
        lines.contains(&(actor.into(), action.into(), object.into(), allowed))
    };
    assert!(
        has(
            "anna",
            "document.download",
            &format!("document {contract}"),
            false
        ),
        "{lines:?}"
    );
    assert!(has(
        "anna",
        "document.download",
        &format!("document {cv}"),
        true
    ));
    assert!(has(
        "olaf",
        "document.download",
        &format!("document {contract}"),
        true
    ));
    assert!(has("anna", "message.raw", "message 1", false));
    assert!(has("anna", "document.list", "candidate 2", false));
    assert!(has(
        "anna",
        "document.categorise",
        &format!("document {cv}"),
        false
    ));
    assert!(has(
        "olaf",
        "document.categorise",
        &format!("document {cv}"),
        true
    ));
    assert!(has("cli", "document.list", "candidate 1", true));
    let only_anna = json(d.cli(&["audit", "--json", "--actor", "anna"]));
    assert!(
        only_anna["audit"]
            .as_array()
            .expect("audit")
            .iter()
            .all(|a| a["actor"] == "anna")
    );
}
