//! The forward-author finder on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/hostile/checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::forward(&String::from_utf8_lossy(data));
});
