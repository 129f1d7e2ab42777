//! A parsed mail through the matcher's pure functions and the tokens.
//! Input: the envelope sender, the recipients (one a line) and the mail,
//! separated by a NUL byte each.
#![no_main]

use std::sync::OnceLock;

use jobmail::config::company::Company;
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/hostile/checks.rs"]
mod checks;

/// parse_message catches panics of the parsing crates on purpose
/// (`guarded`); libfuzzer-sys aborts on any panic. Panics raised inside a
/// dependency are left to unwind to that catch; ours still abort.
fn let_guarded_panics_unwind() {
    let abort = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_dependency = info
            .location()
            .is_some_and(|l| l.file().contains("/.cargo/registry/"));
        if !in_dependency {
            abort(info);
        }
    }));
}

static COMPANY: OnceLock<Company> = OnceLock::new();

fuzz_target!(init: let_guarded_panics_unwind(), |data: &[u8]| {
    let company = COMPANY.get_or_init(checks::company);
    let mut parts = data.splitn(3, |&b| b == 0);
    let sender = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let recipients: Vec<String> = String::from_utf8_lossy(parts.next().unwrap_or_default())
        .lines()
        .map(str::to_string)
        .collect();
    let raw = parts.next().unwrap_or_default();
    checks::matcher(raw, &sender, &recipients, company);
});
