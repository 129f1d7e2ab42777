//! The DATA reader: any byte stream cut anywhere ends only at CRLF.CRLF
//! with exact unstuffing; any message a client dot-stuffs reads back exact.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/hostile/checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    // First byte: how many cut lengths follow (0..15), one byte each.
    let Some((&n, rest)) = data.split_first() else { return };
    let n = (n as usize % 16).min(rest.len());
    let cuts: Vec<usize> = rest[..n].iter().map(|&c| c as usize + 1).collect();
    let body = &rest[n..];
    checks::data_any_stream(body, &cuts);
    checks::data_roundtrip(body, &cuts);
});
