//! Compressed RTF (PR_RTF_COMPRESSED, MS-OXRTFCP "LZFu"): the RTF body an
//! Outlook sender in RTF mode puts into a winmail.dat, decompressed.
//!
//! Written here rather than taken from the `compressed-rtf` crate (1.0.1):
//! that one slices its input unchecked (a short property panics), reserves
//! the declared raw size up front (a hostile 4 GiB is an allocation
//! failure, which aborts rather than panics) and returns a `String` cut at
//! the first NUL. The tests check this decoder against that crate's
//! compressor and the specification's examples.
//!
//! Part of [`super`]: pure, bounded work (the output is at most eight
//! times the input, and never more than the declared raw size; the
//! declared size is not allocated up front), never panics on input.

/// "LZFu": compressed.
const COMPRESSED: u32 = 0x7546_5A4C;
/// "MELA": stored as it is.
const UNCOMPRESSED: u32 = 0x414C_454D;

/// The dictionary's initial contents (MS-OXRTFCP 2.1.2.1).
const PREBUF: &[u8] = b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx";

const DICTIONARY: usize = 4096;

/// The RTF in a PR_RTF_COMPRESSED value; `None` when it is not one
/// (wrong sizes, unknown type, a CRC that does not match, a stream that
/// ends before the declared raw size came).
pub(crate) fn decompress(data: &[u8]) -> Option<Vec<u8>> {
    let word = |i: usize| -> Option<u32> {
        let b = data.get(i..i + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let comp_size = word(0)? as usize;
    let raw_size = word(4)? as usize;
    let comp_type = word(8)?;
    let crc = word(12)?;
    // COMPSIZE counts the bytes after itself; some writers pad the property.
    let body = data.get(16..comp_size.checked_add(4)?)?;
    match comp_type {
        UNCOMPRESSED => body.get(..raw_size).map(<[u8]>::to_vec),
        COMPRESSED if crc32(body) == crc => lzfu(body, raw_size),
        _ => None,
    }
}

fn lzfu(body: &[u8], raw_size: usize) -> Option<Vec<u8>> {
    let mut dict = [0u8; DICTIONARY];
    dict[..PREBUF.len()].copy_from_slice(PREBUF);
    let mut write = PREBUF.len();
    // Grown as bytes come: the declared size is not trusted for the
    // allocation. The output is bounded by the input all the same: a
    // control byte and eight 2-byte references make at most 136 bytes.
    let mut out = Vec::with_capacity(raw_size.min(body.len().saturating_mul(2)));
    let done = |out: Vec<u8>| (out.len() == raw_size).then_some(out);
    let mut pos = 0;
    loop {
        let Some(&control) = body.get(pos) else {
            return done(out);
        };
        pos += 1;
        for bit in 0..8 {
            if out.len() == raw_size {
                // Everything declared came (a writer may pad after it).
                return Some(out);
            }
            if control & (1 << bit) == 0 {
                let Some(&b) = body.get(pos) else {
                    return done(out);
                };
                pos += 1;
                out.push(b);
                dict[write] = b;
                write = (write + 1) % DICTIONARY;
                continue;
            }
            let (Some(&hi), Some(&lo)) = (body.get(pos), body.get(pos + 1)) else {
                return done(out);
            };
            pos += 2;
            let token = u16::from_be_bytes([hi, lo]);
            let mut read = usize::from(token >> 4);
            let len = usize::from(token & 0x0F) + 2;
            if read == write {
                // The end marker.
                return done(out);
            }
            for _ in 0..len {
                if out.len() == raw_size {
                    return Some(out);
                }
                let b = dict[read];
                out.push(b);
                dict[write] = b;
                read = (read + 1) % DICTIONARY;
                write = (write + 1) % DICTIONARY;
            }
        }
    }
}

/// The CRC of MS-OXRTFCP 2.1.3.2 (the CRC-32 polynomial, starting at 0,
/// without the final inversion).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MS-OXRTFCP 3.1.1, "Example 1: Simple Compressed RTF".
    const SIMPLE: &[u8] = &[
        0x2d, 0x00, 0x00, 0x00, 0x2b, 0x00, 0x00, 0x00, 0x4c, 0x5a, 0x46, 0x75, 0xf1, 0xc5, 0xc7,
        0xa7, 0x03, 0x00, 0x0a, 0x00, 0x72, 0x63, 0x70, 0x67, 0x31, 0x32, 0x35, 0x42, 0x32, 0x0a,
        0xf3, 0x20, 0x68, 0x65, 0x6c, 0x09, 0x00, 0x20, 0x62, 0x77, 0x05, 0xb0, 0x6c, 0x64, 0x7d,
        0x0a, 0x80, 0x0f, 0xa0,
    ];
    /// MS-OXRTFCP 3.1.2, "Example 2: Reading a Token from the Dictionary
    /// that Crosses WritePosition".
    const CROSSING: &[u8] = &[
        0x1a, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x4c, 0x5a, 0x46, 0x75, 0xe2, 0xd4, 0x4b,
        0x51, 0x41, 0x00, 0x04, 0x20, 0x57, 0x58, 0x59, 0x5a, 0x0d, 0x6e, 0x7d, 0x01, 0x0e, 0xb0,
    ];

    #[test]
    fn rtf_spec_examples() {
        assert_eq!(
            decompress(SIMPLE).as_deref(),
            Some(&b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n"[..])
        );
        assert_eq!(
            decompress(CROSSING).as_deref(),
            Some(&b"{\\rtf1 WXYZWXYZWXYZWXYZWXYZ}"[..])
        );
    }

    #[test]
    fn rtf_against_the_compressed_rtf_crate() {
        let texts = [
            String::from("{\\rtf1\\ansi\\ansicpg1252 Bewerbung: anbei mein Lebenslauf.\\par}"),
            "{\\rtf1 ".to_string() + &"abcabcabc x ".repeat(700) + "}",
            "{\\rtf1\\ansi\\deff0 ".to_string() + &"\\pard\\plain ".repeat(50) + "}",
        ];
        for text in &texts {
            let packed = compressed_rtf::compress_rtf(text).expect("compress");
            assert_eq!(decompress(&packed).as_deref(), Some(text.as_bytes()));
            let stored = compressed_rtf::encode_rtf(text).expect("encode");
            assert_eq!(decompress(&stored).as_deref(), Some(text.as_bytes()));
        }
    }

    #[test]
    fn rtf_hostile_is_refused_without_panic() {
        // A huge declared raw size: no allocation of it, and refused since
        // the stream ends first.
        let mut huge = SIMPLE.to_vec();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decompress(&huge), None);
        // Huge sizes in a stored (MELA) stream.
        let mut stored = compressed_rtf::encode_rtf("{\\rtf1 x}").expect("encode");
        stored[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decompress(&stored), None);
        stored[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decompress(&stored), None);
        // A wrong CRC, every truncation, short input.
        let mut bad = SIMPLE.to_vec();
        bad[12] ^= 1;
        assert_eq!(decompress(&bad), None);
        for n in 0..SIMPLE.len() {
            assert_eq!(decompress(&SIMPLE[..n]), None, "{n}");
        }
        // References only, never the end marker, declared 16 MiB: stops at
        // eight times the input.
        let mut body = Vec::new();
        for _ in 0..64 {
            body.push(0xFF);
            body.extend([0x00, 0x0F].repeat(8));
        }
        let mut data = ((body.len() + 12) as u32).to_le_bytes().to_vec();
        data.extend((16u32 << 20).to_le_bytes());
        data.extend(COMPRESSED.to_le_bytes());
        data.extend(crc32(&body).to_le_bytes());
        data.extend(&body);
        assert_eq!(decompress(&data), None);
    }
}
