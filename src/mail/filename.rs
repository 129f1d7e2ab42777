//! File names from outside (a candidate's attachment, a winmail.dat
//! entry) made safe to show and to save on common systems, and the name an
//! unnamed part gets from its type. Pure.

/// File names are cut to this many bytes, keeping the extension.
pub const MAX_FILENAME_BYTES: usize = 200;
/// An extension longer than this (without the dot) is not kept on truncation.
const MAX_EXTENSION_BYTES: usize = 16;

/// Makes a file name safe to show and to save on common systems: the last
/// path component only, no control, bidi or other invisible formatting
/// characters, no leading dots or surrounding whitespace, `:*?"<>|` replaced
/// by `_`, Windows device names defused, at most 200 bytes with the extension
/// kept. When nothing is left, a name is made from `content_type`
/// (`attachment.pdf`, `image.png`, `message.eml`, `attachment.bin`, ...).
pub fn sanitize_filename(name: &str, content_type: &str) -> String {
    let visible: String = name.chars().filter(|&c| !is_invisible(c)).collect();
    let component = visible
        .rsplit(['/', '\\'])
        .map(clean_component)
        .find(|c| !c.is_empty())
        .unwrap_or_default();
    let component = defuse_device_name(component);
    let capped = cap_filename(&component, MAX_FILENAME_BYTES);
    if capped.is_empty() {
        default_filename(content_type)
    } else {
        capped
    }
}

/// Characters that must not reach a file name: controls (C0, DEL, C1), bidi
/// embeddings, overrides, isolates and marks, BOM, line/paragraph separators.
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200E}'
                | '\u{200F}'
                | '\u{061C}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

fn clean_component(component: &str) -> String {
    let replaced: String = component
        .chars()
        .map(|c| {
            if matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    replaced
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace())
        .to_string()
}

/// `CON`, `NUL`, `COM1`, ... (with any extension) cannot be created on
/// Windows; such names get a leading `_`.
fn defuse_device_name(name: String) -> String {
    let stem = name.split('.').next().unwrap_or("").trim_end();
    let upper = stem.to_ascii_uppercase();
    let reserved = matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.len() == 4
            && upper.as_bytes()[3].is_ascii_digit()
            && upper.as_bytes()[3] != b'0');
    if reserved { format!("_{name}") } else { name }
}

fn floor_boundary(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn cap_filename(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let trim = |s: &str| {
        s.trim_end_matches(|c: char| c == '.' || c.is_whitespace())
            .to_string()
    };
    if let Some(dot) = name.rfind('.') {
        let ext = &name[dot..];
        if dot > 0
            && ext.len() > 1
            && ext.len() <= MAX_EXTENSION_BYTES + 1
            && !ext.chars().any(char::is_whitespace)
        {
            let stem = trim(floor_boundary(&name[..dot], max - ext.len()));
            if !stem.is_empty() {
                return format!("{stem}{ext}");
            }
        }
    }
    trim(floor_boundary(name, max))
}

/// The name of a part that has none, from its content type
/// (`attachment.pdf`, `image.png`, `message.eml`, `attachment.bin`, ...).
pub fn default_filename(content_type: &str) -> String {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let base = match mime.as_str() {
        "application/ms-tnef" | "application/vnd.ms-tnef" => return "winmail.dat".to_string(),
        "message/delivery-status" | "message/global-delivery-status" => "delivery-status",
        "message/disposition-notification" => "disposition-notification",
        "text/rfc822-headers" => "headers",
        "message/rfc822" | "message/global" => "message",
        m if m.starts_with("image/") => "image",
        _ => "attachment",
    };
    let ext = super::mime::extension_of(&mime).unwrap_or(if mime.starts_with("text/") {
        "txt"
    } else {
        "bin"
    });
    format!("{base}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_paths_and_characters() {
        let s = |n: &str| sanitize_filename(n, "application/pdf");
        assert_eq!(s("../../etc/passwd"), "passwd");
        assert_eq!(s("/etc/shadow"), "shadow");
        assert_eq!(s("C:\\Users\\x\\cv.pdf"), "cv.pdf");
        assert_eq!(s("dir/"), "dir");
        assert_eq!(s("..\\..\\"), "attachment.pdf");
        assert_eq!(s("evil\u{202E}fdp.exe"), "evilfdp.exe");
        assert_eq!(
            s("a\u{2066}b\u{2069}\u{200E}\u{200F}\u{061C}c.pdf"),
            "abc.pdf"
        );
        assert_eq!(s("a\0b\r\nc\td\u{7f}\u{85}.pdf"), "abcd.pdf");
        assert_eq!(s("   .bashrc  "), "bashrc");
        assert_eq!(s("report.pdf..."), "report.pdf");
        assert_eq!(s("a:b*c?d\"e<f>g|h.pdf"), "a_b_c_d_e_f_g_h.pdf");
        assert_eq!(s(""), "attachment.pdf");
        assert_eq!(s("...."), "attachment.pdf");
        assert_eq!(s("\u{202E}"), "attachment.pdf");
        assert_eq!(s("nul.txt"), "_nul.txt");
        assert_eq!(s("COM1"), "_COM1");
        assert_eq!(s("COM10.txt"), "COM10.txt");
        assert_eq!(s("Lebenslauf Jörg Weiß.pdf"), "Lebenslauf Jörg Weiß.pdf");
    }

    #[test]
    fn sanitize_length() {
        let long = format!("{}.pdf", "x".repeat(10_000));
        let out = sanitize_filename(&long, "application/pdf");
        assert_eq!(out.len(), 200);
        assert!(out.ends_with("x.pdf"));

        // Multi-byte characters are never split.
        let long = format!("{}.docx", "ü".repeat(5_000));
        let out = sanitize_filename(&long, "application/pdf");
        assert!(out.len() <= 200);
        assert!(out.ends_with("ü.docx"));

        // No usable extension: plain cut at a char boundary.
        let long = "€".repeat(1_000);
        let out = sanitize_filename(&long, "application/pdf");
        assert!(out.len() <= 200 && out.len() > 190);
        assert!(out.chars().all(|c| c == '€'));

        let long = format!("{}.{}", "a".repeat(300), "e".repeat(40));
        let out = sanitize_filename(&long, "application/pdf");
        assert_eq!(out.len(), 200);
    }

    #[test]
    fn sanitize_random_names() {
        const ALPHABET: &[char] = &[
            'a', 'Z', '0', '.', ' ', '/', '\\', ':', '*', '?', '"', '<', '>', '|', '\0', '\n',
            '\t', '\u{7f}', '\u{85}', '\u{202E}', '\u{2066}', '\u{200F}', '\u{FEFF}', '\u{2028}',
            'ü', '€', '𝄞', '\u{3000}', '-', '_', '~',
        ];
        let mut state: u64 = 0x0123_4567_89AB_CDEF;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5_000 {
            let len = (next() % 400) as usize;
            let name: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            let out = sanitize_filename(&name, "application/pdf");
            assert!(
                !out.is_empty() && out.len() <= MAX_FILENAME_BYTES,
                "{name:?} -> {out:?}"
            );
            assert!(!out.chars().any(is_invisible), "{name:?} -> {out:?}");
            assert!(
                !out.contains(['/', '\\', ':', '*', '?', '"', '<', '>', '|']),
                "{out:?}"
            );
            assert!(
                !out.starts_with(['.', ' ']) && !out.ends_with(['.', ' ']),
                "{out:?}"
            );
            assert_eq!(
                sanitize_filename(&out, "application/pdf"),
                out,
                "idempotent"
            );
        }
    }

    #[test]
    fn default_names() {
        assert_eq!(sanitize_filename("", "application/pdf"), "attachment.pdf");
        assert_eq!(sanitize_filename("", "image/png"), "image.png");
        assert_eq!(sanitize_filename("", "image/x-unknown"), "image.bin");
        assert_eq!(sanitize_filename("", "message/rfc822"), "message.eml");
        assert_eq!(
            sanitize_filename("", "application/octet-stream"),
            "attachment.bin"
        );
        assert_eq!(
            sanitize_filename("", "APPLICATION/PDF; name=x"),
            "attachment.pdf"
        );
        assert_eq!(sanitize_filename("", "text/x-whatever"), "attachment.txt");
        assert_eq!(sanitize_filename("", "application/ms-tnef"), "winmail.dat");
        assert_eq!(sanitize_filename("", ""), "attachment.bin");
    }
}
