//! The operator's files named on the command line, read whole: a file to
//! attach to a mail (`send --attach`) or to upload as a candidate's
//! document (`document upload`, `application add --document`).
//!
//! Reads only the paths it is given; no checks of size or type here (the
//! application layer makes them, the same for the CLI and the API).

use std::path::Path;

use crate::app::documents::Upload;
use crate::outbound::template::FileAttachment;

fn read(path: &Path) -> anyhow::Result<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let filename = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((filename, bytes))
}

/// A file to attach, its type by its extension.
pub fn read_attachment(path: &Path) -> anyhow::Result<FileAttachment> {
    let (filename, bytes) = read(path)?;
    Ok(FileAttachment {
        content_type: crate::mail::mime::content_type_of(&filename).to_string(),
        filename,
        bytes,
    })
}

/// A file to upload as a document, of `category` or as the rules decide.
pub fn read_upload(path: &Path, category: Option<String>) -> anyhow::Result<Upload> {
    let (filename, bytes) = read(path)?;
    Ok(Upload {
        filename,
        content_type: None,
        bytes,
        category,
    })
}
