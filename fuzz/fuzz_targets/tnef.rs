//! winmail.dat (TNEF) reading: the input is a TNEF stream, sent as the
//! winmail.dat of a mail with a text body and of a mail without one (so
//! the RTF body is read too); no panic, documents bounded by the input,
//! file names safe.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/hostile/checks.rs"]
mod checks;

/// As in `parse.rs`: panics inside a dependency (caught by the parser's
/// `guarded`) unwind; ours abort.
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

fn base64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len() / 3 * 4 + 8);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

fuzz_target!(init: let_guarded_panics_unwind(), |data: &[u8]| {
    let b64 = base64(data);
    let with_body = format!(
        "From: a@b.c\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/ms-tnef; name=winmail.dat\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n"
    );
    checks::parse(with_body.as_bytes());
    let alone = format!(
        "From: a@b.c\r\nContent-Type: application/ms-tnef; name=winmail.dat\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
    );
    checks::parse(alone.as_bytes());
});
