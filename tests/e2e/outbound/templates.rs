//! `jobmail template …`: the shipped templates check clean, broken ones list
//! every problem, and a preview is the exact mail: sender, signature,
//! threading, tag, signed Reply-To (a reply to it comes home), attachments.

use jobmail::matcher::token::TokenKey;

use crate::support::harness::*;

const KEY: [u8; 32] = [0x42; 32];

/// The example config's company and templates, on a test daemon.
fn daemon() -> Daemon {
    Daemon::start_world("", &example_directory(), Some(KEY))
}

#[test]
fn the_shipped_templates_check_clean() {
    let d = daemon();
    let out = d.cli(&["template", "check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 template(s) ok"));
    let out = d.cli(&["template", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = v["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec!["acknowledgement", "interview-invitation", "rejection"]
    );
    for t in v["templates"].as_array().unwrap() {
        assert_eq!(t["languages"], serde_json::json!(["de", "en", "fr"]), "{t}");
    }
}

#[test]
fn broken_templates_list_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ack.toml"),
        "default_language = \"de\"\nautomatic = true\nattachments = [\"missing.pdf\"]\n\
         [de]\nsubject = \"Hallo {{ frist_name }}\"\ntext = \"{{ g('Lieber', 'Liebe') }} {% if %}\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("junk.toml"), "colour = 1\n").unwrap();
    let config = dir.path().join("jobmail.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndatabase = \"j.db\"\n[templates]\ndir = {:?}\n[[subsidiary]]\nid = \"a\"\njobs_address = \"jobs@acme.example\"\nlanguage = \"fr\"\n",
            dir.path().display().to_string()
        ),
    )
    .unwrap();
    let out = cli(&config, &["template", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "junk:",
        "ack [de]: subject: unknown placeholder {{ frist_name }}",
        "ack [de]: text: syntax error",
        "ack: no \"fr\" variant",
        "ack: attachment",
        "missing.pdf",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    // The neutral-form lint runs on a variant that renders.
    std::fs::write(
        dir.path().join("ack.toml"),
        "default_language = \"fr\"\nautomatic = true\n[fr]\nsubject = \"Merci\"\ntext = \"{{ g('Cher', 'Chère') }} {{ last_name }}\"\n",
    )
    .unwrap();
    let out = cli(&config, &["template", "check", "ack"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("automatic template needs a neutral form")
    );
}

#[test]
fn preview_is_the_exact_mail_and_a_reply_to_it_comes_home() {
    let d = daemon();
    let application =
        b"From: \"Weber, Lena\" <lena.weber@example.org>\r\nTo: jobs+backend@acme.example\r\n\
Subject: Bewerbung\r\nMessage-ID: <lena-1@example.org>\r\nContent-Language: en\r\n\r\nHello\r\n";
    let (code, _) = d.connect().send_mail(
        "lena.weber@example.org",
        "jobs+backend@acme.example",
        application,
    );
    assert_eq!(code, 250);

    let out = d.cli(&[
        "template",
        "preview",
        "interview-invitation",
        "--candidate",
        "1",
        "--sender",
        "anna",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("Anna Berger <anna.berger@acme.example>") && note.contains("nothing queued"),
        "{note}"
    );
    let mail = out.stdout;
    let p = jobmail::inbound::parse::parse_message(&mail, false);
    let h = &p.headers;
    assert_eq!(h.from.as_ref().unwrap().address, "anna.berger@acme.example");
    assert_eq!(h.to[0].address, "lena.weber@example.org");
    assert_eq!(h.in_reply_to, vec!["lena-1@example.org"]);
    let own = h.message_id.clone().unwrap();
    assert_eq!(
        h.references,
        vec!["lena-1@example.org".to_string(), own.clone()]
    );
    let key = TokenKey::new(KEY);
    let subject = h.subject.clone().unwrap();
    assert!(
        subject.starts_with("Invitation to an interview"),
        "English, the candidate's language: {subject}"
    );
    assert_eq!(key.find_subject_tags(&subject), vec![1]);
    let reply_to = h.reply_to[0].address.clone();
    let tag = reply_to
        .strip_prefix("jobs+")
        .unwrap()
        .split('@')
        .next()
        .unwrap();
    assert_eq!(key.check_reply_token(tag), Some(1));
    assert!(
        p.text.contains("Dear Lena Weber") || p.text.contains("Lena"),
        "{}",
        p.text
    );
    assert!(
        p.text.contains("-- \nAnna Berger") || p.text.contains("-- \r\nAnna Berger"),
        "signature: {}",
        p.text
    );
    let directions = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/templates/files/Anfahrt-ACME-Muenchen.pdf"
    ))
    .unwrap();
    assert!(
        p.documents
            .iter()
            .any(|doc| doc.filename == "Anfahrt-ACME-Muenchen.pdf" && doc.bytes == directions),
        "the directions, byte-exact"
    );

    // The candidate answers from another address, to the Reply-To: filed by token.
    let reply = format!(
        "From: Lena <lena@other.example>\r\nTo: {reply_to}\r\nSubject: Re: {subject}\r\nMessage-ID: <lena-2@other.example>\r\n\r\nThursday works.\r\n"
    );
    let (code, text) = d
        .connect()
        .send_mail("lena@other.example", &reply_to, reply.as_bytes());
    assert_eq!(code, 250, "{text}");
    let id = text.trim().rsplit(' ').next().unwrap().to_string();
    let out = d.cli(&["message", "show", &id, "--json"]);
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (m["reason"].as_str(), m["candidate"]["id"].as_i64()),
        (Some("reply-token"), Some(1))
    );

    // French variant on request, with its own attachment; a sender of no subsidiary refused.
    let out = d.cli(&[
        "template",
        "preview",
        "interview-invitation",
        "--candidate",
        "1",
        "--lang",
        "fr",
    ]);
    let p = jobmail::inbound::parse::parse_message(&out.stdout, false);
    assert!(
        p.documents
            .iter()
            .any(|doc| doc.filename == "Acces-ACME-Paris.pdf")
    );
    assert_eq!(
        p.headers.from.as_ref().unwrap().address,
        "jobs@acme.example",
        "default sender"
    );
    let out = d.cli(&[
        "template",
        "preview",
        "rejection",
        "--candidate",
        "1",
        "--sender",
        "nobody",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("may not send for acme-de"));
    let out = d.cli(&["template", "preview", "rejection", "--candidate", "99"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no candidate 99"));
}

#[test]
fn every_shipped_template_signs_once_for_every_sender_and_language() {
    let d = daemon();
    let out = d.cli(&[
        "application",
        "add",
        "--email",
        "erika@example.org",
        "--name",
        "Erika Mustermann",
        "--position",
        "backend-rust",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for template in ["acknowledgement", "interview-invitation", "rejection"] {
        for sender in ["default", "anna"] {
            for lang in ["de", "en", "fr"] {
                let out = d.cli(&[
                    "template",
                    "preview",
                    template,
                    "--candidate",
                    "1",
                    "--sender",
                    sender,
                    "--lang",
                    lang,
                ]);
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let p = jobmail::inbound::parse::parse_message(&out.stdout, false);
                let text = p.text.replace("\r\n", "\n");
                let closing: Vec<&str> = text
                    .split("\n-- \n")
                    .next()
                    .unwrap()
                    .trim_end()
                    .lines()
                    .rev()
                    .take(3)
                    .collect();
                assert!(
                    closing.windows(2).all(|w| w[0] != w[1]),
                    "{template} ({sender}, {lang}) signs with a line twice: {closing:?}\n{text}"
                );
                assert!(
                    text.contains("\n-- \n"),
                    "{template}: the signature follows"
                );
            }
        }
    }
}
