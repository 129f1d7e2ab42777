//! The shipped systemd unit is valid and hardened (`systemd-analyze`),
//! as shipped and with its `LoadCredential=` lines turned on, and has the
//! reload and watchdog directives the daemon answers.

use std::process::Command;

use crate::support::harness::BIN;

/// `systemd-analyze verify` and the exposure `security` gives the unit.
fn analyze(unit: &str) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    // Point it at the binary under test, which exists here.
    let path = dir.path().join("jobmail.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/jobmail", BIN)).unwrap();

    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze must be installed (see .ci/run)");
    let complaints = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !complaints.contains(path.to_str().unwrap()),
        "{complaints}"
    );

    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.split("Overall exposure level for jobmail.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"))
}

#[test]
fn unit_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/jobmail.service"
    ))
    .unwrap();
    for directive in [
        "Type=notify\n",
        "ExecReload=/bin/kill -HUP $MAINPID\n",
        "WatchdogSec=60s\n",
        "# LoadCredential=upstream-acme-de:",
        "# LoadCredential=tls-key:",
    ] {
        assert!(unit.contains(directive), "no {directive:?} in the unit");
    }
    let exposure = analyze(&unit);
    eprintln!("systemd-analyze security: {exposure}");
    assert!(exposure <= 2.0, "exposure {exposure}");

    // As an operator turns the credentials on.
    let with_credentials = unit.replace("# LoadCredential=", "LoadCredential=");
    assert!(with_credentials.contains("\nLoadCredential=tls-key:"));
    let exposure = analyze(&with_credentials);
    assert!(exposure <= 2.0, "exposure with credentials {exposure}");
}
