//! DATA reception: finds the end of a message, undoes dot-stuffing, notes
//! bare line endings and enforces the size limit while reading.
//!
//! Only `CR LF . CR LF` ends a message. A bare CR or bare LF never starts a
//! line, so no bare-line-ending dot sequence (`\n.\n`, `\r.\r`, `\n.\r\n`,
//! `\r\n.\n`, …) can end a message or smuggle a second one; such mails are
//! flagged so the session can refuse them. Past the size limit the bytes are
//! counted and dropped, so memory stays flat while a client streams on.
//! Pure: no I/O, no allocation beyond the kept message.

use memchr::memchr2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// After CR LF, or at the very start of the data.
    LineStart,
    /// Inside a line.
    Body,
    /// After a CR inside a line (already emitted).
    Cr,
    /// After a dot at the start of a line (dot dropped).
    Dot,
    /// After `.` CR at the start of a line (neither emitted yet).
    DotCr,
}

/// Reads one message's DATA bytes, chunk by chunk.
#[derive(Debug)]
pub struct DotReader {
    state: State,
    content: Vec<u8>,
    size: u64,
    max_size: u64,
    bare_line_ending: bool,
}

/// A complete message as the client meant it.
#[derive(Debug)]
pub struct Received {
    /// The unstuffed bytes; empty when the message was over the limit.
    pub content: Vec<u8>,
    /// Bytes the message had, kept or not.
    pub size: u64,
    pub too_big: bool,
    /// A CR not followed by LF, or an LF not preceded by CR, was seen.
    pub bare_line_ending: bool,
}

impl DotReader {
    /// `expected` is the client's SIZE= declaration (0 if none), used only to
    /// size the buffer once instead of growing it by doubling.
    pub fn new(max_size: u64, expected: u64) -> DotReader {
        let capacity = expected.min(max_size).min(64 * 1024 * 1024) as usize;
        DotReader {
            state: State::LineStart,
            content: Vec::with_capacity(capacity),
            size: 0,
            max_size,
            bare_line_ending: false,
        }
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        if self.size <= self.max_size {
            self.content.extend_from_slice(bytes);
        } else if self.content.capacity() > 0 {
            self.content = Vec::new();
        }
    }

    /// Consumes bytes of `input`. Returns `Some(n)` when the end of data was
    /// found after `n` bytes (the rest belongs to the next command), `None`
    /// when all of `input` was consumed and more is needed.
    pub fn feed(&mut self, input: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Body => {
                    // Fast path: copy up to the next CR or LF in one go.
                    let rest = &input[i..];
                    match memchr2(b'\r', b'\n', rest) {
                        None => {
                            self.emit(rest);
                            return None;
                        }
                        Some(pos) => {
                            self.emit(&rest[..pos]);
                            i += pos;
                            if rest[pos] == b'\r' {
                                self.emit(b"\r");
                                self.state = State::Cr;
                            } else {
                                self.bare_line_ending = true;
                                self.emit(b"\n");
                            }
                            i += 1;
                        }
                    }
                }
                State::LineStart => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'.' => self.state = State::Dot,
                        _ => self.plain_byte(b),
                    }
                }
                State::Cr => {
                    let b = input[i];
                    i += 1;
                    self.after_cr(b);
                }
                State::Dot => {
                    let b = input[i];
                    i += 1;
                    if b == b'\r' {
                        self.state = State::DotCr;
                    } else {
                        // RFC 5321 4.5.2: the leading dot is deleted.
                        self.plain_byte(b);
                    }
                }
                State::DotCr => {
                    let b = input[i];
                    i += 1;
                    if b == b'\n' {
                        self.state = State::LineStart;
                        return Some(i);
                    }
                    // ".\r" then something else: the CR was bare.
                    self.emit(b"\r");
                    self.after_cr(b);
                }
            }
        }
        None
    }

    /// A byte in the body that is not after a CR.
    fn plain_byte(&mut self, b: u8) {
        match b {
            b'\r' => {
                self.emit(b"\r");
                self.state = State::Cr;
            }
            b'\n' => {
                self.bare_line_ending = true;
                self.emit(b"\n");
                self.state = State::Body;
            }
            _ => {
                self.emit(&[b]);
                self.state = State::Body;
            }
        }
    }

    /// The byte after an emitted CR.
    fn after_cr(&mut self, b: u8) {
        if b == b'\n' {
            self.emit(b"\n");
            self.state = State::LineStart;
        } else {
            self.bare_line_ending = true;
            self.plain_byte(b);
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Keeps nothing more: the rest is read and counted only (the mail is
    /// refused at its end, as one over the limit would be).
    pub fn stop_keeping(&mut self) {
        self.max_size = 0;
        self.content = Vec::new();
    }

    pub fn finish(self) -> Received {
        let too_big = self.size > self.max_size;
        Received {
            content: if too_big { Vec::new() } else { self.content },
            size: self.size,
            too_big,
            bare_line_ending: self.bare_line_ending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in chunks of `chunk` bytes; returns (message, rest).
    fn read(input: &[u8], chunk: usize, max: u64) -> Option<(Received, Vec<u8>)> {
        let mut r = DotReader::new(max, 0);
        let mut offset = 0;
        while offset < input.len() {
            let end = (offset + chunk).min(input.len());
            if let Some(n) = r.feed(&input[offset..end]) {
                return Some((r.finish(), input[offset + n..].to_vec()));
            }
            offset = end;
        }
        None
    }

    fn check_all_chunkings(input: &[u8], content: &[u8], rest: &[u8], bare: bool) {
        for chunk in 1..=input.len().max(1) {
            let (m, r) =
                read(input, chunk, 1 << 20).unwrap_or_else(|| panic!("no end in {input:?}"));
            assert_eq!(m.content, content, "chunk {chunk} of {input:?}");
            assert_eq!(r, rest, "rest, chunk {chunk} of {input:?}");
            assert_eq!(m.bare_line_ending, bare, "bare, chunk {chunk} of {input:?}");
        }
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf_and_unstuffs() {
        check_all_chunkings(b".\r\n", b"", b"", false);
        check_all_chunkings(b"a\r\n.\r\nQUIT\r\n", b"a\r\n", b"QUIT\r\n", false);
        check_all_chunkings(b"..a\r\n..\r\n.\r\n", b".a\r\n.\r\n", b"", false);
        check_all_chunkings(b"a\r\n...\r\n.\r\n", b"a\r\n..\r\n", b"", false);
        check_all_chunkings(b"x.\r\n.\r\n", b"x.\r\n", b"", false);
    }

    #[test]
    fn bare_line_ending_dots_never_end_the_message() {
        let smuggled =
            b"MAIL FROM:<a@b.example>\r\nRCPT TO:<jobs@acme.example>\r\nDATA\r\nevil\r\n";
        for variant in [
            &b"a\n.\nb"[..],
            b"a\n.\r\nb",
            b"a\r.\rb",
            b"a\r.\r\nb",
            b"a\r\n.\nb",
            b"a\r\n.\rb",
            b"a\r\n\x00.\r\nb",
            b"a\n\r.\r\nb",
        ] {
            let mut input = variant.to_vec();
            input.extend_from_slice(smuggled);
            input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
            for chunk in [1, 2, 3, 7, input.len()] {
                let (m, rest) = read(&input, chunk, 1 << 20).unwrap();
                assert_eq!(
                    rest, b"QUIT\r\n",
                    "{variant:?}: only the final CRLF.CRLF ends"
                );
                let has_nul = variant.contains(&0);
                assert_eq!(m.bare_line_ending, !has_nul, "{variant:?}");
                assert!(m.content.windows(4).any(|w| w == b"evil"), "{variant:?}");
            }
        }
    }

    #[test]
    fn over_the_limit_counts_but_keeps_nothing() {
        let mut r = DotReader::new(10, 0);
        assert_eq!(r.feed(b"0123456789"), None);
        assert_eq!(r.feed(b"abcdef\r\n"), None);
        assert_eq!(r.feed(b".\r\nNEXT"), Some(3));
        let m = r.finish();
        assert!(m.too_big);
        assert_eq!(m.size, 18);
        assert!(m.content.is_empty());
        let mut r = DotReader::new(12, 0);
        r.feed(b"0123456789\r\n.\r\n");
        assert!(!r.finish().too_big, "exactly at the limit is accepted");
    }

    #[test]
    fn random_input_never_panics_and_roundtrips_stuffing() {
        // Deterministic xorshift; dot-stuff random CRLF text and read it back.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b".\r\na";
        for _ in 0..2000 {
            let len = (next() % 40) as usize;
            let mut lines: Vec<Vec<u8>> = Vec::new();
            let mut line = Vec::new();
            for _ in 0..len {
                let b = alphabet[(next() % 4) as usize];
                if b == b'\r' || b == b'\n' {
                    lines.push(std::mem::take(&mut line));
                } else {
                    line.push(b);
                }
            }
            lines.push(line);
            let mut original = Vec::new();
            let mut wire = Vec::new();
            for l in &lines {
                original.extend_from_slice(l);
                original.extend_from_slice(b"\r\n");
                if l.first() == Some(&b'.') {
                    wire.push(b'.');
                }
                wire.extend_from_slice(l);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b".\r\n");
            let chunk = 1 + (next() % 9) as usize;
            let (m, rest) = read(&wire, chunk, 1 << 20).unwrap();
            assert_eq!(m.content, original);
            assert!(rest.is_empty());
            assert!(!m.bare_line_ending);
            // Arbitrary bytes: must not panic.
            let junk: Vec<u8> = (0..len).map(|_| alphabet[(next() % 4) as usize]).collect();
            let _ = read(&junk, chunk, 16);
        }
    }
}
