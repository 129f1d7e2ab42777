//! The SMTP session over an in-memory stream with a real store: a byte
//! stream cut at points the fuzzer picks; no panic, no hang, every reply
//! well-formed. Input: a byte n, then n cut lengths (one byte each), then
//! the stream.
#![no_main]

use std::sync::OnceLock;

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

struct Harness {
    runtime: tokio::runtime::Runtime,
    world: checks::World,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

fuzz_target!(init: let_guarded_panics_unwind(), |data: &[u8]| {
    let h = HARNESS.get_or_init(|| Harness {
        runtime: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime"),
        world: checks::world(),
    });
    let Some((&n, rest)) = data.split_first() else { return };
    let n = (n as usize % 16).min(rest.len());
    let cuts: Vec<usize> = rest[..n].iter().map(|&c| c as usize + 1).collect();
    let stream = &rest[n..];
    // EHLO first and its reply awaited (pipelining it is refused), then the stream.
    let steps: [(&[u8], usize); 2] = [(b"EHLO fuzz.example\r\n", 1), (stream, 0)];
    let out = h.runtime.block_on(checks::converse_steps(&h.world, &steps, &cuts));
    if let Err(e) = checks::replies_well_formed(&out) {
        panic!("{e}\n--- sent:\n{}\n--- replies:\n{}", String::from_utf8_lossy(stream), String::from_utf8_lossy(&out));
    }
});
