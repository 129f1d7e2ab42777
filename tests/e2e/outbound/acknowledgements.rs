//! Automatic acknowledgements end to end: the real binary, the example
//! company with acknowledgements on, a real SMTP server as upstream. Exactly
//! one per application where the category says so; never to a robot, a
//! list, a loop; every decision recorded with its rule.

use std::time::{Duration, Instant};

use crate::support::harness::*;
use crate::support::upstream::Upstream;

const KEY: [u8; 32] = [0x42; 32];

fn daemon(up: &Upstream, directory: String) -> Daemon {
    let directory = directory
        .replace("port = 2600", &format!("port = {}", up.addr.port()))
        .replace(
            "retry_initial = \"5m\"",
            "retry_initial = \"5m\"\npoll_interval = \"20ms\"",
        );
    Daemon::start_world("", &directory, Some(KEY))
}

/// The acknowledgement decision of a candidate's latest application.
pub fn decision(d: &Daemon, candidate: i64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c = json(d.cli(&["candidate", "show", &candidate.to_string(), "--json"]));
        let ack = c["applications"].as_array().unwrap().last().unwrap()["auto_reply"].clone();
        if ack["decision"] != "pending" {
            return ack;
        }
        assert!(Instant::now() < deadline, "still pending: {ack}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mails_to(up: &Upstream, address: &str) -> Vec<Vec<u8>> {
    up.accepted()
        .into_iter()
        .filter(|d| d.to.iter().any(|t| t == address))
        .map(|d| d.data)
        .collect()
}

fn apply_by_mail(d: &Daemon, from: &str, to: &str, extra: &str, subject: &str) -> i64 {
    let mail = format!(
        "From: Test Person <{from}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <app-{}@{}>\r\n\
Content-Language: de\r\n{extra}\r\nGuten Tag,\r\nanbei meine Bewerbung.\r\n",
        from.replace('@', "."),
        from.rsplit('@').next().unwrap()
    );
    let (code, text) = d.connect().send_mail(from, to, mail.as_bytes());
    assert_eq!(code, 250, "{text}");
    let id = text.trim().rsplit(' ').next().unwrap().to_string();
    let m = json(d.cli(&["message", "show", &id, "--json"]));
    m["candidate"]["id"].as_i64().unwrap_or(0)
}

#[test]
fn an_email_and_a_form_application_get_exactly_one_acknowledgement_each() {
    let up = Upstream::start();
    let d = daemon(&up, with_acknowledgements(&example_directory()));
    // By e-mail, to the position's alias.
    let (code, _) = d.connect().send_mail(
        "anna.schmidt@posteo.de",
        "jobs+backend@acme.example",
        &fixture("application-pdf.eml"),
    );
    assert_eq!(code, 250);
    // From the online form.
    let v = json(d.cli(&[
        "application",
        "add",
        "--json",
        "--email",
        "tom.test@example.net",
        "--name",
        "Tom Test",
        "--position",
        "backend-rust",
    ]));
    assert_eq!(v["acknowledgement"]["decision"], "pending", "{v}");

    let got = up.wait_for(2, 20);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(up.accepted().len(), 2, "exactly one each");
    let ack = &mails_to(&up, "anna.schmidt@posteo.de")[0];
    let p = jobmail::inbound::parse::parse_message(ack, false);
    let h = &p.headers;
    assert_eq!(
        h.from.as_ref().unwrap().address,
        "jobs@acme.example",
        "the configured sender"
    );
    assert_eq!(h.auto_submitted.as_deref(), Some("auto-replied"));
    assert_eq!(h.x_loop, vec!["jobs@acme.example"], "our loop marker");
    let application_id =
        jobmail::inbound::parse::parse_message(&fixture("application-pdf.eml"), false)
            .headers
            .message_id
            .unwrap();
    assert_eq!(
        h.in_reply_to,
        vec![application_id.clone()],
        "threaded to the application"
    );
    assert!(h.references.contains(&application_id));
    assert!(
        p.text.contains("Guten Tag Anna Schmidt"),
        "neutral, German: {}",
        p.text
    );
    assert!(
        p.text.contains("ACME Deutschland GmbH · Recruiting"),
        "signed: {}",
        p.text
    );
    assert!(
        got.iter().all(|g| g.from.starts_with("bounce+")),
        "VERP envelope"
    );

    // Recorded on the applications.
    assert_eq!(decision(&d, 1)["decision"], "queued");
    assert!(decision(&d, 1)["item"].as_i64().is_some());
    assert_eq!(decision(&d, 2)["decision"], "queued");
    let text = String::from_utf8_lossy(&d.cli(&["candidate", "show", "2"]).stdout).to_string();
    assert!(text.contains("acknowledgement queued"), "{text}");

    // A second application within the period: no second acknowledgement.
    let v = json(d.cli(&[
        "application",
        "add",
        "--json",
        "--email",
        "tom.test@example.net",
        "--name",
        "Tom Test",
        "--position",
        "backend-rust",
    ]));
    assert_eq!(v["acknowledgement"]["rule"], "already-acknowledged", "{v}");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(mails_to(&up, "tom.test@example.net").len(), 1);
}

#[test]
fn a_category_acknowledges_only_the_sources_it_is_set_for() {
    let up = Upstream::start();
    // Engineering: e-mail only. Sales: form only.
    let directory = example_directory();
    let engineering = directory.find("id = \"engineering\"").unwrap();
    let sales = directory.find("id = \"sales\"").unwrap();
    let mut directory = directory.clone();
    directory.replace_range(
        engineering..sales,
        &directory[engineering..sales].replace("email = false", "email = true"),
    );
    let sales = directory.find("id = \"sales\"").unwrap();
    let tail = directory[sales..].replacen("form = false", "form = true", 1);
    directory.replace_range(sales.., &tail);
    let d = daemon(&up, directory);

    let mail_engineering = apply_by_mail(
        &d,
        "eva@example.org",
        "jobs+backend@acme.example",
        "",
        "Bewerbung",
    );
    let mail_sales = apply_by_mail(
        &d,
        "finn@example.org",
        "jobs@acme.example.fr",
        "",
        "Bewerbung als Account Executive",
    );
    let form_engineering = json(d.cli(&[
        "application",
        "add",
        "--json",
        "--email",
        "gil@example.org",
        "--name",
        "Gil G",
        "--position",
        "backend-rust",
    ]))["candidate"]
        .as_i64()
        .unwrap();
    let form_sales = json(d.cli(&[
        "application",
        "add",
        "--json",
        "--email",
        "hana@example.org",
        "--name",
        "Hana H",
        "--position",
        "account-exec-paris",
    ]))["candidate"]
        .as_i64()
        .unwrap();

    assert_eq!(decision(&d, mail_engineering)["decision"], "queued");
    assert_eq!(decision(&d, mail_sales)["rule"], "disabled");
    assert_eq!(decision(&d, form_engineering)["rule"], "disabled");
    assert_eq!(decision(&d, form_sales)["decision"], "queued");
    up.wait_for(2, 20);
    std::thread::sleep(Duration::from_millis(300));
    let to: Vec<String> = up.accepted().iter().flat_map(|x| x.to.clone()).collect();
    assert_eq!(to.len(), 2, "{to:?}");
    assert!(
        to.contains(&"eva@example.org".to_string()) && to.contains(&"hana@example.org".to_string()),
        "{to:?}"
    );
}

/// Each rule over real SMTP, with the recorded reason. Mail that is
/// automatic (null sender, DSN, Auto-Submitted, Precedence, List-*,
/// MAILER-DAEMON) makes no application at all, so it gets no acknowledgement
/// before any rule is asked: checked too.
#[test]
fn every_suppression_rule_over_smtp() {
    let up = Upstream::start();
    let directory = with_acknowledgements(&example_directory())
        .replacen("max_per_hour = 10", "max_per_hour = 1\nperiod = \"0s\"", 1)
        .replacen("period = \"30d\"\n", "", 1);
    let d = daemon(&up, directory);
    let cases: [(&str, &str, &str, &str); 5] = [
        (
            "outlook.user@example.org",
            "X-Auto-Response-Suppress: All\r\n",
            "Bewerbung",
            "auto-response-suppress",
        ),
        ("noreply@portal.example", "", "Bewerbung", "robot-sender"),
        (
            "looped@example.org",
            "X-Loop: jobs@acme.example\r\n",
            "Bewerbung",
            "loop-marker",
        ),
        (
            "general@example.org",
            "",
            "Initiativbewerbung",
            "no-category",
        ),
        ("rate@example.org", "", "Bewerbung", ""),
    ];
    for (from, extra, subject, rule) in cases {
        let to = if subject == "Initiativbewerbung" {
            "jobs@acme.example"
        } else {
            "jobs+backend@acme.example"
        };
        let candidate = apply_by_mail(&d, from, to, extra, subject);
        assert!(
            candidate > 0,
            "{from}: the mail is stored and filed all the same"
        );
        let ack = decision(&d, candidate);
        if rule.is_empty() {
            assert_eq!(ack["decision"], "queued", "{from}: {ack}");
        } else {
            assert_eq!(
                (ack["decision"].as_str(), ack["rule"].as_str()),
                (Some("suppressed"), Some(rule)),
                "{from}: {ack}"
            );
        }
    }
    // max_per_hour = 1: a second application from the same address within the hour.
    let v = json(d.cli(&[
        "application",
        "add",
        "--json",
        "--email",
        "rate@example.org",
        "--name",
        "Rate R",
        "--position",
        "backend-rust",
    ]));
    assert_eq!(v["acknowledgement"]["rule"], "rate-limit", "{v}");

    // Robots and lists: stored, no candidate, no acknowledgement.
    for (from, extra) in [
        ("bot@example.org", "Auto-Submitted: auto-replied\r\n"),
        ("news@example.org", "Precedence: bulk\r\n"),
        ("list@example.org", "List-Id: <jobs.lists.example.org>\r\n"),
        ("MAILER-DAEMON@mx.example.org", ""),
    ] {
        let candidate = apply_by_mail(
            &d,
            from,
            "jobs+backend@acme.example",
            extra,
            "Automatische Antwort",
        );
        assert_eq!(candidate, 0, "{from}: no candidate");
    }
    let (code, _) = d.connect().send_mail(
        "",
        "jobs+backend@acme.example",
        b"From: Bounce <nobody@example.org>\r\nSubject: x\r\n\r\nx\r\n",
    );
    assert_eq!(code, 250);
    std::thread::sleep(Duration::from_millis(400));
    let to: Vec<String> = up.accepted().iter().flat_map(|x| x.to.clone()).collect();
    assert_eq!(
        to,
        vec!["rate@example.org"],
        "only the one allowed acknowledgement went out"
    );
}

#[test]
fn two_auto_responders_stop_after_one_exchange() {
    // jobmail A acknowledges an "application" from B's jobs address; B is a
    // second jobmail whose upstream is A. B files A's acknowledgement
    // (Auto-Submitted, X-Loop) as automatic mail: no candidate, no answer.
    let up_a = Upstream::start();
    let a = daemon(&up_a, with_acknowledgements(&example_directory()));
    let b_world = with_acknowledgements(&example_directory())
        .replace("acme.example", "other.example")
        .replace("port = 2600", &format!("port = {}", a.addr.port()));
    let b = Daemon::start_world("", &b_world, Some(KEY));
    // A's upstream delivers into B.
    let forward = up_a.clone();
    let b_addr = b.addr;
    std::thread::spawn(move || {
        let mut done = 0;
        for _ in 0..1000 {
            let accepted = forward.accepted();
            for m in accepted.iter().skip(done) {
                let mut c = Conn::open(b_addr);
                c.expect(220);
                c.ehlo();
                let _ = c.transaction(&m.from, "jobs@other.example", &stuff(&m.data));
            }
            done = accepted.len();
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let candidate = apply_by_mail(
        &a,
        "jobs@other.example",
        "jobs+backend@acme.example",
        "",
        "Bewerbung",
    );
    assert_eq!(decision(&a, candidate)["decision"], "queued");
    up_a.wait_for(1, 20);
    std::thread::sleep(Duration::from_millis(1500));
    // B stored A's acknowledgement as automatic mail and answered nothing.
    let inbox = json(b.cli(&["inbox", "--json"]));
    let messages = inbox["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{inbox}");
    assert_eq!(messages[0]["automatic"], true);
    assert_eq!(messages[0]["reason"], "automatic");
    assert!(
        json(b.cli(&["queue", "list", "--json"]))["items"]
            .as_array()
            .unwrap()
            .is_empty(),
        "B sent nothing"
    );
    assert_eq!(
        up_a.accepted().len(),
        1,
        "A sent one acknowledgement, no more"
    );
}

#[test]
fn a_store_error_while_composing_leaves_the_acknowledgement_pending_not_failed() {
    let up = Upstream::start();
    let mut d = daemon(&up, with_acknowledgements(&example_directory()));
    d.kill9();
    d.env = vec![("JOBMAIL_FAULT".into(), "ack-transient".into())];
    d.spawn();
    let candidate = apply_by_mail(
        &d,
        "erika@example.net",
        "jobs+backend@acme.example",
        "",
        "Bewerbung als Backend Engineer",
    );
    let ack = decision(&d, candidate);
    assert_eq!(ack["decision"], "queued", "tried again, not failed: {ack}");
    assert!(
        d.log()
            .contains("acknowledgements: store error; trying again"),
        "{}",
        d.log()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while mails_to(&up, "erika@example.net").is_empty() {
        assert!(Instant::now() < deadline, "{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(mails_to(&up, "erika@example.net").len(), 1, "exactly one");
}

/// Sends an application (with `extra` header lines, e.g. none: without
/// Content-Language); returns its candidate.
fn apply_in_own_words(d: &Daemon, from: &str, extra: &str, subject: &str, body: &str) -> i64 {
    let mail = format!(
        "From: Test Person <{from}>\r\nTo: jobs+backend@acme.example\r\nSubject: {subject}\r\n{extra}\
Message-ID: <lang-{}@example.org>\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}",
        from.replace('@', "."),
        body.replace('\n', "\r\n")
    );
    let (code, text) = d
        .connect()
        .send_mail(from, "jobs+backend@acme.example", mail.as_bytes());
    assert_eq!(code, 250, "{text}");
    let id = text.trim().rsplit(' ').next().unwrap().to_string();
    let m = json(d.cli(&["message", "show", &id, "--json"]));
    m["candidate"]["id"].as_i64().expect("a new candidate")
}

#[test]
fn each_application_is_acknowledged_in_the_language_it_was_written_in() {
    let up = Upstream::start();
    let d = daemon(&up, with_acknowledgements(&example_directory()));
    // The backend position belongs to the German subsidiary (language de);
    // none of the mails says Content-Language.
    let english = apply_in_own_words(
        &d,
        "jane.doe@example.org",
        "",
        "Backend developer",
        "Dear hiring team,\n\nI would like to apply for the backend developer position. \
I have five years of experience with Rust and distributed systems, and I would be glad \
to tell you more in an interview.\n\nOn Mon, 30 Nov 2026, Jobs wrote:\n\
> Wir suchen eine Entwicklerin oder einen Entwickler für unser Team in Berlin.\n\
> Bewerbungen bitte mit Lebenslauf und Zeugnissen an diese Adresse.\n\n\
-- \nJane Doe\nMit freundlichen Grüßen aus dem schönen Hamburg an die ganze Abteilung\n",
    );
    let french = apply_in_own_words(
        &d,
        "marie.dupont@example.fr",
        "",
        "Candidature backend",
        "Madame, Monsieur,\n\nJe souhaite poser ma candidature pour le poste de développeuse \
backend. J'ai cinq ans d'expérience et je serais ravie de rejoindre votre équipe. Vous trouverez \
mon curriculum vitae en pièce jointe.\n\nBien cordialement,\nMarie Dupont\n",
    );
    let german = apply_in_own_words(
        &d,
        "max.muster@example.de",
        "",
        "Backend",
        "Sehr geehrte Damen und Herren,\n\nhiermit bewerbe ich mich auf die Stelle als \
Backend-Entwickler. Ich habe fünf Jahre Erfahrung und freue mich darauf, von Ihnen zu hören. \
Meine Unterlagen finden Sie im Anhang.\n\nMit freundlichen Grüßen\nMax Mustermann\n",
    );

    up.wait_for(3, 20);
    for (candidate, address, language, subject, words) in [
        (
            english,
            "jane.doe@example.org",
            "en",
            "Confirmation of receipt",
            "Thank you for your application",
        ),
        (
            french,
            "marie.dupont@example.fr",
            "fr",
            "Accusé de réception",
            "Nous avons bien reçu votre candidature",
        ),
        (
            german,
            "max.muster@example.de",
            "de",
            "Eingangsbestätigung",
            "vielen Dank für Ihre Bewerbung",
        ),
    ] {
        let c = json(d.cli(&["candidate", "show", &candidate.to_string(), "--json"]));
        assert_eq!(c["language"], language, "{c}");
        assert_eq!(c["language_source"], "detected", "{c}");
        let text =
            String::from_utf8_lossy(&d.cli(&["candidate", "show", &candidate.to_string()]).stdout)
                .to_string();
        assert!(
            text.contains(&format!("Language    {language} (detected)")),
            "{text}"
        );
        let mails = mails_to(&up, address);
        assert_eq!(mails.len(), 1, "one acknowledgement to {address}");
        let p = jobmail::inbound::parse::parse_message(&mails[0], false);
        let got = p.headers.subject.clone().unwrap_or_default();
        assert!(got.starts_with(subject), "{address}: {got}");
        assert!(p.text.contains(words), "{address}: {}", p.text);
    }
}

#[test]
fn content_language_wins_over_the_detected_language() {
    let up = Upstream::start();
    let d = daemon(&up, with_acknowledgements(&example_directory()));
    // Written in English, but the mail says it is German.
    let candidate = apply_in_own_words(
        &d,
        "sam.smith@example.org",
        "Content-Language: de\r\n",
        "Application",
        "Dear hiring team,\n\nI would like to apply for the backend developer position. \
I have five years of experience with Rust and distributed systems.\n",
    );
    let c = json(d.cli(&["candidate", "show", &candidate.to_string(), "--json"]));
    assert_eq!(c["language"], "de", "{c}");
    assert_eq!(c["language_source"], "content-language", "{c}");
    up.wait_for(1, 20);
    let ack = &mails_to(&up, "sam.smith@example.org")[0];
    let p = jobmail::inbound::parse::parse_message(ack, false);
    assert!(p.text.contains("vielen Dank"), "{}", p.text);
}

#[test]
fn the_forms_language_wins_and_a_later_mail_changes_nothing() {
    let up = Upstream::start();
    let d = daemon(&up, with_acknowledgements(&example_directory()));
    // From the form, in French, for the German subsidiary.
    let v = json(d.cli(&[
        "application",
        "add",
        "--json",
        "--email",
        "luc.martin@example.fr",
        "--name",
        "Luc Martin",
        "--position",
        "backend-rust",
        "--lang",
        "fr",
    ]));
    let candidate = v["candidate"].as_i64().unwrap();
    up.wait_for(1, 20);
    let ack = &mails_to(&up, "luc.martin@example.fr")[0];
    let p = jobmail::inbound::parse::parse_message(ack, false);
    assert!(p.text.contains("Nous avons bien reçu"), "{}", p.text);
    // Their next mail, in German: still French, from the form.
    apply_in_own_words(
        &d,
        "luc.martin@example.fr",
        "",
        "Nachtrag",
        "Sehr geehrte Damen und Herren,\n\nanbei sende ich Ihnen noch meine Zeugnisse. \
Ich freue mich darauf, von Ihnen zu hören, und stehe für Fragen gern zur Verfügung.\n",
    );
    let c = json(d.cli(&["candidate", "show", &candidate.to_string(), "--json"]));
    assert_eq!(c["language"], "fr", "{c}");
    assert_eq!(c["language_source"], "form", "{c}");

    // A candidate detected as German, corrected by a form application.
    let german = apply_in_own_words(
        &d,
        "ute.berg@example.de",
        "",
        "Bewerbung",
        "Sehr geehrte Damen und Herren,\n\nhiermit bewerbe ich mich auf die Stelle als \
Entwicklerin. Ich habe fünf Jahre Erfahrung und freue mich darauf, von Ihnen zu hören.\n",
    );
    let c = json(d.cli(&["candidate", "show", &german.to_string(), "--json"]));
    assert_eq!(c["language_source"], "detected", "{c}");
    let v = json(d.cli(&[
        "application",
        "add",
        "--json",
        "--candidate",
        &german.to_string(),
        "--subsidiary",
        "acme-de",
        "--lang",
        "EN",
    ]));
    assert_eq!(v["candidate"], german);
    let c = json(d.cli(&["candidate", "show", &german.to_string(), "--json"]));
    assert_eq!(c["language"], "en", "{c}");
    assert_eq!(c["language_source"], "form", "{c}");

    // A language no template has is refused.
    let out = d.cli(&[
        "application",
        "add",
        "--candidate",
        &german.to_string(),
        "--subsidiary",
        "acme-de",
        "--lang",
        "es",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no template has it"), "{err}");
}
