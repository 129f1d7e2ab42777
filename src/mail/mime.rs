//! MIME types and file extensions, one table for both directions: the
//! name an unnamed inbound part gets, the type a file without one is given
//! (winmail.dat contents), and the type of a file a template attaches.
//! Pure.

/// MIME type -> file extension: for naming unnamed parts, typing files
/// from winmail.dat and files a template attaches.
const EXTENSIONS: &[(&str, &str)] = &[
    ("application/pdf", "pdf"),
    ("application/msword", "doc"),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    ),
    ("application/vnd.ms-excel", "xls"),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
    ),
    ("application/vnd.ms-powerpoint", "ppt"),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "pptx",
    ),
    ("application/vnd.oasis.opendocument.text", "odt"),
    ("application/vnd.oasis.opendocument.spreadsheet", "ods"),
    ("application/vnd.oasis.opendocument.presentation", "odp"),
    ("application/rtf", "rtf"),
    ("text/rtf", "rtf"),
    ("application/zip", "zip"),
    ("application/x-zip-compressed", "zip"),
    ("application/x-7z-compressed", "7z"),
    ("application/vnd.rar", "rar"),
    ("application/x-rar-compressed", "rar"),
    ("application/gzip", "gz"),
    ("application/json", "json"),
    ("application/xml", "xml"),
    ("text/xml", "xml"),
    ("application/pkcs7-signature", "p7s"),
    ("application/x-pkcs7-signature", "p7s"),
    ("application/pkcs7-mime", "p7m"),
    ("application/x-pkcs7-mime", "p7m"),
    ("application/pgp-signature", "asc"),
    ("application/pgp-encrypted", "asc"),
    ("application/pgp-keys", "asc"),
    ("application/vnd.ms-outlook", "msg"),
    ("application/ms-tnef", "dat"),
    ("application/vnd.ms-tnef", "dat"),
    ("image/png", "png"),
    ("image/jpeg", "jpg"),
    ("image/jpg", "jpg"),
    ("image/pjpeg", "jpg"),
    ("image/gif", "gif"),
    ("image/webp", "webp"),
    ("image/tiff", "tif"),
    ("image/bmp", "bmp"),
    ("image/svg+xml", "svg"),
    ("image/heic", "heic"),
    ("image/x-icon", "ico"),
    ("text/plain", "txt"),
    ("text/html", "html"),
    ("text/csv", "csv"),
    ("text/calendar", "ics"),
    ("text/vcard", "vcf"),
    ("text/x-vcard", "vcf"),
    ("text/markdown", "md"),
    ("text/rfc822-headers", "txt"),
    ("message/rfc822", "eml"),
    ("message/global", "eml"),
    ("message/delivery-status", "txt"),
    ("message/global-delivery-status", "txt"),
    ("message/disposition-notification", "txt"),
    ("audio/mpeg", "mp3"),
    ("audio/wav", "wav"),
    ("video/mp4", "mp4"),
    ("video/quicktime", "mov"),
];

/// The usual extension of a MIME type (lowercase, without parameters).
pub fn extension_of(mime: &str) -> Option<&'static str> {
    EXTENSIONS.iter().find(|(m, _)| *m == mime).map(|(_, e)| *e)
}

/// The MIME type a file name's extension suggests, if it is a known one.
pub fn of_filename(name: &str) -> Option<&'static str> {
    let (_, ext) = name.rsplit_once('.')?;
    let ext = ext.trim().to_ascii_lowercase();
    match ext.as_str() {
        "jpeg" | "jpe" => return Some("image/jpeg"),
        "tiff" => return Some("image/tiff"),
        "htm" => return Some("text/html"),
        "dat" | "bin" => return None,
        _ => {}
    }
    EXTENSIONS.iter().find(|(_, e)| *e == ext).map(|(m, _)| *m)
}

/// The content type of a file to attach, by its extension;
/// `application/octet-stream` when the extension says nothing.
pub fn content_type_of(filename: &str) -> &'static str {
    of_filename(filename).unwrap_or("application/octet-stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_extensions_agree() {
        assert_eq!(content_type_of("Lebenslauf.PDF"), "application/pdf");
        assert_eq!(content_type_of("photo.jpeg"), "image/jpeg");
        assert_eq!(content_type_of("invite.ics"), "text/calendar");
        assert_eq!(content_type_of("winmail.dat"), "application/octet-stream");
        assert_eq!(content_type_of("no-extension"), "application/octet-stream");
        assert_eq!(extension_of("image/pjpeg"), Some("jpg"));
        // Every extension in the table types a file, but `.dat` (winmail.dat
        // or anything else) says nothing.
        for (m, e) in EXTENSIONS.iter().filter(|(_, e)| *e != "dat") {
            assert!(of_filename(&format!("x.{e}")).is_some(), "{m}");
        }
    }
}
