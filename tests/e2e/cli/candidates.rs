//! Candidates by hand: ambiguity and conflicts wait in the unassigned inbox
//! until `message assign`; `candidate merge`; form applications.

use jobmail::matcher::token::TokenKey;

use crate::support::harness::*;

const KEY: [u8; 32] = [0x42; 32];

fn world() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/matching/world.toml"
    ))
    .expect("world.toml")
}

/// Ambiguity end to end: an address shared by two candidates, then a token
/// of one in reply to the other's thread; both unassigned, then resolved by
/// `message assign`, which teaches the sender's address.
#[test]
fn ambiguous_mail_waits_unassigned_until_assigned_by_hand() {
    let d = Daemon::start_world("", &world(), Some(KEY));
    let mut c = d.connect();
    c.ehlo();
    let first = b"From: Lena Weber <familie.weber@t-online.example>\r\nTo: jobs@acme.example\r\nSubject: Bewerbung\r\nMessage-ID: <lena-1@t-online.example>\r\n\r\nHallo\r\n";
    let (code, _) = c.transaction("familie.weber@t-online.example", "jobs@acme.example", first);
    assert_eq!(code, 250);
    let out = d.cli(&[
        "application",
        "add",
        "--email",
        "familie.weber@t-online.example",
        "--name",
        "Tom Weber",
        "--position",
        "account-executive",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["candidate"], 2, "a second person at the same address");
    assert_eq!(v["candidate_created"], true);

    let second = b"From: familie.weber@t-online.example\r\nTo: jobs@acme.example\r\nSubject: Frage\r\nMessage-ID: <weber-2@t-online.example>\r\n\r\nWer bin ich?\r\n";
    let (code, text) = c.transaction(
        "familie.weber@t-online.example",
        "jobs@acme.example",
        second,
    );
    assert_eq!(code, 250);
    let id = text.trim().rsplit(' ').next().unwrap().to_string();
    let out = d.cli(&["inbox", "--unassigned", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["messages"][0]["id"].as_i64().unwrap().to_string(), id);
    assert_eq!(v["messages"][0]["reason"], "ambiguous-sender");

    // Token of candidate 2 in reply to candidate 1's mail: a conflict.
    let token = TokenKey::new(KEY).reply_token(2);
    let third = format!(
        "From: Tom Weber <tom@weber.example>\r\nTo: jobs+{token}@acme.example\r\nSubject: Re: Bewerbung\r\nIn-Reply-To: <lena-1@t-online.example>\r\nMessage-ID: <weber-3@weber.example>\r\n\r\nx\r\n"
    );
    let (code, text) = c.transaction(
        "tom@weber.example",
        &format!("jobs+{token}@acme.example"),
        third.as_bytes(),
    );
    assert_eq!(code, 250);
    let conflict = text.trim().rsplit(' ').next().unwrap().to_string();
    let out = d.cli(&["message", "show", &conflict, "--json"]);
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["reason"], "conflict");
    assert_eq!(m["assignment"], "unassigned");
    let s: Vec<i64> = m["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect();
    assert_eq!(s, vec![1, 2]);

    // A human resolves both.
    for (msg, cand) in [(&id, "1"), (&conflict, "2")] {
        let out = d.cli(&["message", "assign", msg, "--candidate", cand]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = d.cli(&["inbox", "--unassigned", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["messages"].as_array().unwrap().is_empty(), "{v}");
    let out = d.cli(&["candidate", "show", "2", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let addresses: Vec<&str> = v["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(addresses.contains(&"tom@weber.example"), "{addresses:?}");
    assert_eq!(v["thread"][0]["reason"], "manual");
    // Tom's next mail from his own address now matches by sender.
    let fourth = b"From: Tom Weber <tom@weber.example>\r\nTo: jobs@acme.example\r\nSubject: Nachtrag\r\nMessage-ID: <weber-4@weber.example>\r\n\r\ny\r\n";
    let (_, text) = c.transaction("tom@weber.example", "jobs@acme.example", fourth);
    let id = text.trim().rsplit(' ').next().unwrap().to_string();
    let out = d.cli(&["message", "show", &id, "--json"]);
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (m["reason"].as_str(), m["candidate"]["id"].as_i64()),
        (Some("sender"), Some(2))
    );

    // Finding people and threads.
    let out = d.cli(&["candidate", "list", "--search", "WEBER.example", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["candidates"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["candidates"][0]["id"], 2);
    let out = d.cli(&["candidate", "list", "--search", "weber"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Lena Weber") && text.contains("Tom Weber"),
        "{text}"
    );
    let out = d.cli(&["inbox", "--candidate", "2", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let subjects: Vec<&str> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, vec!["Nachtrag", "Re: Bewerbung"]);
    let out = d.cli(&["candidate", "show", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Candidate #2 Tom Weber"), "{text}");
    assert!(
        text.contains("account-executive") && text.contains("form"),
        "{text}"
    );
    assert!(
        text.contains("Re: Bewerbung") && text.contains("manual"),
        "{text}"
    );

    // Merge: Tom's record into Lena's is refused for the same id, works otherwise.
    assert!(!d.cli(&["candidate", "merge", "2", "2"]).status.success());
    let out = d.cli(&["candidate", "merge", "1", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = d.cli(&["candidate", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["candidates"].as_array().unwrap().len(), 1);
    // The old id still leads to the merged record.
    let out = d.cli(&["candidate", "show", "2", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["id"], 1);
}

/// An operator's own SQLite tools (Debian 12's is 3.40, through Python's
/// `sqlite3` here) read and write the store as jobmail writes it, search
/// indexes, their triggers and the accent-folding columns included; and
/// jobmail finds what they changed.
#[test]
fn an_older_sqlite_reads_and_writes_the_store_and_its_search_index() {
    let d = Daemon::start();
    let (code, text) = d.connect().send_mail(
        "joerg@example.org",
        "jobs@acme.example",
        b"From: =?utf-8?q?J=C3=B6rg_Wei=C3=9F?= <joerg@example.org>\r\nSubject: Bewerbung\r\n\r\nHallo\r\n",
    );
    assert_eq!(code, 250, "{text}");
    // The daemon indexes a filed mail for search within a second.
    d.wait_search_indexed();
    let script = r#"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print("sqlite", sqlite3.sqlite_version)
assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
(n,) = db.execute("""SELECT count(*) FROM message_search WHERE message_search MATCH '"jorg weiss"'""").fetchone()
assert n == 1, n
db.execute("UPDATE candidates SET first_name = 'Jürgen' WHERE id = 1")
db.commit()
(n,) = db.execute("""SELECT count(*) FROM message_search WHERE message_search MATCH '"jurgen"'""").fetchone()
assert n == 1, n
print("ok")
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(d.db())
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = d.cli(&["inbox", "--json", "--search", "JURGEN"]);
    assert_eq!(json(found)["messages"].as_array().map(Vec::len), Some(1));
}
