//! Forged authors end to end: the real binary checks SPF, DKIM and DMARC
//! against a DNS server on loopback that the test controls, stores the
//! verdicts with each mail, acknowledges only proven authors, and never
//! files a mail that fails DMARC on the known candidate its From claims.

use std::time::{Duration, Instant};

use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;

use crate::outbound::acknowledgements::decision;
use crate::support::dns::Dns;
use crate::support::harness::*;
use crate::support::upstream::Upstream;

const KEY: [u8; 32] = [0x42; 32];

fn application(from: &str, name: &str, id: &str, extra: &str) -> String {
    format!(
        "From: {name} <{from}>\r\nTo: jobs+backend@acme.example\r\nSubject: Bewerbung als Backend Engineer\r\n\
Message-ID: <{id}>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0100\r\nContent-Language: de\r\n{extra}\r\n\
Guten Tag,\r\nanbei meine Bewerbung.\r\n"
    )
}

/// The example company with acknowledgements on, its upstream `up`, SPF,
/// DKIM and DMARC checked against `dns`; `extra` goes before the company.
fn daemon_with_dns(dns: &Dns, up: &Upstream, extra: &str) -> Daemon {
    let directory = with_acknowledgements(&example_directory())
        .replace("port = 2600", &format!("port = {}", up.addr.port()))
        .replace(
            "retry_initial = \"5m\"",
            "retry_initial = \"5m\"\npoll_interval = \"20ms\"",
        );
    let directory = format!(
        "[authentication]\nresolver = \"{}\"\ntimeout = \"3s\"\n{extra}\n{directory}",
        dns.addr
    );
    Daemon::start_world("", &directory, Some(KEY))
}

/// Sends a mail; returns `message show --json` of it.
fn deliver(d: &Daemon, envelope_from: &str, to: &str, mail: &[u8]) -> serde_json::Value {
    let (code, text) = d.connect().send_mail(envelope_from, to, mail);
    assert_eq!(code, 250, "{text}");
    let id = text.trim().rsplit(' ').next().unwrap().to_string();
    json(d.cli(&["message", "show", &id, "--json"]))
}

#[test]
fn forged_authors_get_no_acknowledgement_and_no_known_candidate() {
    // A DKIM key for signed.example, as its mail provider would publish it.
    let pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
    let public = Ed25519Key::from_pkcs8_der(&pkcs8).unwrap().public_key();
    let dkim_record = format!(
        "v=DKIM1; k=ed25519; p={}",
        data_encoding::BASE64.encode(&public)
    );
    let dns = Dns::start(&[
        // Mail from 127.0.0.1 is theirs; DMARC asks to reject the rest.
        ("honest.example", "v=spf1 ip4:127.0.0.1 -all"),
        ("_dmarc.honest.example", "v=DMARC1; p=reject"),
        // Nothing may send for it.
        ("spf-fail.example", "v=spf1 -all"),
        // Signs with DKIM; its SPF does not cover the company's redirect.
        ("signed.example", "v=spf1 ip4:192.0.2.1 -all"),
        ("sel._domainkey.signed.example", &dkim_record),
        ("_dmarc.signed.example", "v=DMARC1; p=reject"),
        // Publishes a strict policy and nothing else.
        ("reject.example", "v=spf1 ip4:192.0.2.1 -all"),
        ("_dmarc.reject.example", "v=DMARC1; p=reject"),
    ]);
    let up = Upstream::start();
    let d = daemon_with_dns(&dns, &up, "[acknowledgements]\nmax_per_hour = 3");

    // 1. An honest application: SPF and DMARC pass, acknowledged.
    let m = deliver(
        &d,
        "anna@honest.example",
        "jobs+backend@acme.example",
        application(
            "anna@honest.example",
            "Anna Ehrlich",
            "a1@honest.example",
            "",
        )
        .as_bytes(),
    );
    let auth = &m["authentication"];
    assert_eq!(
        (auth["spf"].as_str(), auth["dmarc"].as_str()),
        (Some("pass"), Some("pass")),
        "{m}"
    );
    let anna = m["candidate"]["id"].as_i64().unwrap();
    assert_eq!(
        (m["reason"].as_str(), m["confidence"].as_str()),
        (Some("new-application"), Some("new"))
    );
    assert_eq!(decision(&d, anna)["decision"], "queued");
    let shown = String::from_utf8_lossy(&d.cli(&["message", "show", "1"]).stdout).to_string();
    assert!(
        shown.contains("spf=pass (honest.example)") && shown.contains("dmarc=pass (p=reject)"),
        "{shown}"
    );

    // 2. SPF fail, no DKIM, no DMARC: a new application, no acknowledgement.
    let m = deliver(
        &d,
        "eve@spf-fail.example",
        "jobs+backend@acme.example",
        application("eve@spf-fail.example", "Eve", "e1@spf-fail.example", "").as_bytes(),
    );
    assert_eq!(m["authentication"]["spf"], "fail", "{m}");
    let eve = m["candidate"]["id"].as_i64().unwrap();
    let ack = decision(&d, eve);
    assert_eq!(
        (ack["decision"].as_str(), ack["rule"].as_str()),
        (Some("suppressed"), Some("unauthenticated")),
        "{ack}"
    );

    // 3. No record at all: nothing proves the author.
    let m = deliver(
        &d,
        "nobody@nodns.example",
        "jobs+backend@acme.example",
        application("nobody@nodns.example", "No Body", "n1@nodns.example", "").as_bytes(),
    );
    assert_eq!(
        (
            m["authentication"]["spf"].as_str(),
            m["authentication"]["dmarc"].as_str()
        ),
        (Some("none"), Some("none")),
        "{m}"
    );
    let nobody = m["candidate"]["id"].as_i64().unwrap();
    assert_eq!(decision(&d, nobody)["rule"], "unauthenticated");

    // 4. DKIM passes through the company's redirect (SRS envelope, its own
    // IP, headers intact): DMARC passes by DKIM, acknowledged.
    let original = application(
        "carla@signed.example",
        "Carla Signiert",
        "c1@signed.example",
        "",
    );
    let signature = DkimSigner::from_key(Ed25519Key::from_pkcs8_der(&pkcs8).unwrap())
        .domain("signed.example")
        .selector("sel")
        .headers(["From", "To", "Subject", "Message-ID", "Date"])
        .sign(original.as_bytes())
        .unwrap();
    let redirected = format!(
        "Resent-From: jobs@acme.example\r\n{}{original}",
        signature.to_header()
    );
    let m = deliver(
        &d,
        "SRS0=ab12=XY=signed.example=carla@acme.example",
        "jobs+backend@acme.example",
        redirected.as_bytes(),
    );
    let auth = &m["authentication"];
    assert_eq!(auth["spf"], "none", "the SRS domain has no SPF here: {m}");
    assert_eq!(auth["dkim"][0]["domain"], "signed.example", "{m}");
    assert_eq!(auth["dkim"][0]["result"], "pass", "{m}");
    assert_eq!(auth["dmarc"], "pass", "{m}");
    let carla = m["candidate"]["id"].as_i64().unwrap();
    assert_eq!(decision(&d, carla)["decision"], "queued");

    // 5. The same mail with its body changed on the way: DKIM fails,
    // DMARC fails, no acknowledgement.
    let tampered = redirected
        .replace("c1@signed.example", "c2@signed.example")
        .replace("carla@", "carl@");
    let m = deliver(
        &d,
        "SRS0=ab12=XY=signed.example=carl@acme.example",
        "jobs+backend@acme.example",
        tampered.as_bytes(),
    );
    assert_eq!(m["authentication"]["dkim"][0]["result"], "fail", "{m}");
    assert_eq!(m["authentication"]["dmarc"], "fail", "{m}");
    let carl = m["candidate"]["id"].as_i64().unwrap();
    assert_eq!(decision(&d, carl)["rule"], "unauthenticated");

    // 6. DMARC reject: a forged From of a domain with a strict policy.
    let m = deliver(
        &d,
        "bounce@mass-mailer.example",
        "jobs+backend@acme.example",
        application("ceo@reject.example", "CEO", "r1@reject.example", "").as_bytes(),
    );
    assert_eq!(
        (
            m["authentication"]["dmarc"].as_str(),
            m["authentication"]["dmarc_policy"].as_str()
        ),
        (Some("fail"), Some("reject")),
        "{m}"
    );
    let ceo = m["candidate"]["id"].as_i64().unwrap();
    assert_eq!(decision(&d, ceo)["rule"], "unauthenticated");

    // 7. A forged From of a known candidate (Anna) from a stranger's
    // server: it fails DMARC for honest.example, so it is not filed on
    // Anna; it waits, with her as the suggestion.
    let forged = "From: Anna Ehrlich <anna@honest.example>\r\nTo: jobs@acme.example\r\n\
Subject: Ich ziehe meine Bewerbung zurueck\r\nMessage-ID: <f1@evil.example>\r\n\r\nBitte loeschen.\r\n";
    let m = deliver(
        &d,
        "attacker@evil.example",
        "jobs@acme.example",
        forged.as_bytes(),
    );
    assert_eq!(
        (
            m["reason"].as_str(),
            m["confidence"].as_str(),
            m["assignment"].as_str()
        ),
        (
            Some("unauthenticated-sender"),
            Some("none"),
            Some("unassigned")
        ),
        "{m}"
    );
    assert_eq!(m["suggestions"][0]["id"], anna, "{m}");
    // Anna's own next mail still files on her, with high confidence.
    let own = "From: Anna Ehrlich <anna@honest.example>\r\nTo: jobs@acme.example\r\n\
Subject: Nachtrag\r\nMessage-ID: <a2@honest.example>\r\n\r\nAnbei mein Zeugnis.\r\n";
    let m = deliver(
        &d,
        "anna@honest.example",
        "jobs@acme.example",
        own.as_bytes(),
    );
    assert_eq!(
        (m["reason"].as_str(), m["confidence"].as_str()),
        (Some("sender"), Some("high")),
        "{m}"
    );

    // 8. X-Original-From on a stranger's mail names nobody: the author is
    // the stranger, and the victim gets nothing.
    let m = deliver(
        &d,
        "mallory@honest.example",
        "jobs+backend@acme.example",
        application(
            "mallory@honest.example",
            "Mallory",
            "m1@honest.example",
            "X-Original-From: Victim <victim@third.example>\r\n",
        )
        .as_bytes(),
    );
    let mallory = m["candidate"]["id"].as_i64().unwrap();
    let c = json(d.cli(&["candidate", "show", &mallory.to_string(), "--json"]));
    assert_eq!(c["addresses"][0], "mallory@honest.example", "{c}");

    // 9. A hostile display name is never written into automatic mail.
    let hostile = format!("Gewinn unter http://evil.example/{}", "x".repeat(450));
    let m = deliver(
        &d,
        "zoe@honest.example",
        "jobs+backend@acme.example",
        application(
            "zoe@honest.example",
            &format!("\"{hostile}\""),
            "z1@honest.example",
            "",
        )
        .as_bytes(),
    );
    let zoe = m["candidate"]["id"].as_i64().unwrap();
    // Mallory's acknowledgement was the third of the hour.
    assert_eq!(decision(&d, mallory)["decision"], "queued");
    let ack = decision(&d, zoe);
    assert_eq!(
        (ack["decision"].as_str(), ack["rule"].as_str()),
        (Some("suppressed"), Some("hourly-limit")),
        "the fourth in an hour: {ack}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while up.accepted().len() < 3 {
        assert!(Instant::now() < deadline, "{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    for mail in up.accepted() {
        let text = String::from_utf8_lossy(&mail.data);
        assert!(!text.contains("evil.example"), "{text}");
    }
    assert!(
        dns.asked().iter().any(|n| n == "_dmarc.honest.example"),
        "{:?}",
        dns.asked()
    );
}

#[test]
fn a_hostile_display_name_is_greeted_neutrally() {
    let dns = Dns::start(&[("honest.example", "v=spf1 ip4:127.0.0.1 -all")]);
    let up = Upstream::start();
    let d = daemon_with_dns(&dns, &up, "");
    let hostile = format!("Gewinn unter http://evil.example/{}", "x".repeat(450));
    let m = deliver(
        &d,
        "zoe@honest.example",
        "jobs+backend@acme.example",
        application(
            "zoe@honest.example",
            &format!("\"{hostile}\""),
            "z1@honest.example",
            "",
        )
        .as_bytes(),
    );
    let zoe = m["candidate"]["id"].as_i64().unwrap();
    assert_eq!(decision(&d, zoe)["decision"], "queued");
    let got = up.wait_for(1, 20);
    let parsed = jobmail::inbound::parse::parse_message(&got[0].data, false);
    assert!(parsed.text.contains("Guten Tag,"), "{}", parsed.text);
    let raw = String::from_utf8_lossy(&got[0].data);
    assert!(!raw.contains("evil.example"), "{raw}");
    assert!(!raw.contains("Gewinn"), "{raw}");
}

#[test]
fn a_redirect_that_changes_the_mail_is_vouched_for_by_the_companys_arc_seal() {
    use mail_auth::arc::ArcSealer;
    use mail_auth::hickory_resolver::config::{
        ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
    };
    use mail_auth::{AuthenticatedMessage, AuthenticationResults, MessageAuthenticator};

    let author_key = Ed25519Key::generate_pkcs8().unwrap();
    let company_key = Ed25519Key::generate_pkcs8().unwrap();
    let record = |pkcs8: &[u8]| {
        format!(
            "v=DKIM1; k=ed25519; p={}",
            data_encoding::BASE64.encode(&Ed25519Key::from_pkcs8_der(pkcs8).unwrap().public_key())
        )
    };
    let (author_record, company_record) = (record(&author_key), record(&company_key));
    let dns = Dns::start(&[
        ("signed.example", "v=spf1 ip4:192.0.2.1 -all"),
        ("sel._domainkey.signed.example", &author_record),
        ("_dmarc.signed.example", "v=DMARC1; p=reject"),
        // The company's server seals what it checked before redirecting;
        // so can anyone else with a domain and a key.
        ("arc._domainkey.acme.example", &company_record),
        ("arc._domainkey.elsewhere.example", &company_record),
    ]);

    // The company's server checks it (DKIM passes), then tags the subject,
    // which breaks that signature, seals the chain and redirects.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let seal = |sealer: &str, author: &str| {
        runtime.block_on(async {
            let mut server = NameServerConfig::udp_and_tcp(dns.addr.ip());
            server.connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                .into_iter()
                .map(|mut c| {
                    c.port = dns.addr.port();
                    c
                })
                .collect();
            let company = MessageAuthenticator::new(
                ResolverConfig::from_name_servers(vec![server]),
                ResolverOpts::default(),
            )
            .unwrap();
            // The author's mail, signed by their provider.
            let original = application(author, "Dora Daten", &format!("{sealer}.{author}"), "");
            let signature = DkimSigner::from_key(Ed25519Key::from_pkcs8_der(&author_key).unwrap())
                .domain("signed.example")
                .selector("sel")
                .headers(["From", "To", "Subject", "Message-ID", "Date"])
                .sign(original.as_bytes())
                .unwrap();
            let signed = format!("{}{original}", signature.to_header());
            let message = AuthenticatedMessage::parse(signed.as_bytes()).unwrap();
            let dkim = company.verify_dkim(&message).await;
            assert!(
                dkim.iter()
                    .all(|d| d.result() == &mail_auth::DkimResult::Pass)
            );
            let tagged = signed.replace("Subject: Bewerbung", "Subject: [EXTERN] Bewerbung");
            let message = AuthenticatedMessage::parse(tagged.as_bytes()).unwrap();
            let arc = company.verify_arc(&message).await;
            let results =
                AuthenticationResults::new("mx.acme.example").with_dkim_results(&dkim, author);
            let set = ArcSealer::from_key(Ed25519Key::from_pkcs8_der(&company_key).unwrap())
                .domain(sealer)
                .selector("arc")
                .headers(["From", "To", "Subject", "Message-ID", "Date"])
                .seal(&message, &results, &arc)
                .unwrap();
            format!("{}{tagged}", set.to_header())
        })
    };

    let up = Upstream::start();
    let d = daemon_with_dns(&dns, &up, "");
    let m = deliver(
        &d,
        "SRS0=cd34=XY=signed.example=dora@acme.example",
        "jobs+backend@acme.example",
        seal("acme.example", "dora@signed.example").as_bytes(),
    );
    let auth = &m["authentication"];
    assert_eq!(
        (
            auth["dkim"][0]["result"].as_str(),
            auth["dmarc"].as_str(),
            auth["arc"].as_str(),
            auth["arc_sealer"].as_str()
        ),
        (
            Some("fail"),
            Some("fail"),
            Some("pass"),
            Some("acme.example")
        ),
        "the author's DKIM broke on the way, the company's seal holds: {m}"
    );
    let dora = m["candidate"]["id"].as_i64().unwrap();
    assert_eq!(
        decision(&d, dora)["decision"],
        "queued",
        "vouched for by the company's seal"
    );

    // A valid seal from a domain that is not the company's vouches for nothing.
    let m = deliver(
        &d,
        "SRS0=cd34=XY=signed.example=dora2@acme.example",
        "jobs+backend@acme.example",
        seal("elsewhere.example", "dora2@signed.example").as_bytes(),
    );
    let auth = &m["authentication"];
    assert_eq!(
        (auth["arc"].as_str(), auth["arc_sealer"].as_str()),
        (Some("pass"), Some("elsewhere.example")),
        "{m}"
    );
    let dora2 = m["candidate"]["id"].as_i64().unwrap();
    assert_eq!(decision(&d, dora2)["rule"], "unauthenticated");
}
