//! Template rendering with hostile placeholder values: a render never adds
//! a header. Input: six values and the gender, separated by NUL bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/hostile/checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let mut values = [""; 6];
    for v in values.iter_mut() {
        *v = parts.next().unwrap_or("");
    }
    let gender = parts.next().unwrap_or("female");
    checks::render_hostile(values, gender);
});
