//! MIME parsing and documents: no panic, documents bounded by the input,
//! file names safe.
#![no_main]

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

fuzz_target!(init: let_guarded_panics_unwind(), |data: &[u8]| {
    checks::parse(data);
});
