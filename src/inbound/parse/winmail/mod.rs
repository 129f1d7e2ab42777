//! TNEF (`winmail.dat`): what an Outlook sender packed into it, as the
//! documents a recruiter can open: the files (from attAttachData or the
//! MAPI property PR_ATTACH_DATA_BIN), the files inside an embedded Outlook
//! item (a forwarded message, a task, an appointment: a TNEF stream of its
//! own inside PR_ATTACH_DATA_OBJ) and the item itself (`item`), the file
//! inside an OLE object (`ole`), and the RTF body (`rtf`) when the mail
//! shows no other.
//!
//! Part of [`super`]: pure, bounded work (embedded items are opened
//! [`MAX_TNEF_DEPTH`] deep, every document is a slice of the stream or at
//! most eight times one, within a byte budget), never panics on input.
//!
//! Documents are named relative to the winmail.dat: `tnef:1`, `tnef:2`, …
//! in stream order, counting the attachments that yield a document; the
//! files inside an embedded item at `tnef:N` are `tnef:N/tnef:1`, …; the
//! message's own body `tnef:body`. See `docs/documents.md`.

#[allow(unused_imports)]
use super::*;

mod item;
mod mapi;
mod ole;
mod rtf;
#[cfg(test)]
mod tests;

use item::*;
pub(super) use mapi::*;
use ole::*;

/// One document from a winmail.dat.
pub(super) struct TnefDoc {
    /// Its path below the winmail.dat's part (`tnef:1`, `tnef:2/tnef:1`).
    pub(super) part: String,
    pub(super) name: String,
    pub(super) mime: String,
    pub(super) data: Vec<u8>,
}

pub(super) const TNEF_SIGNATURE: [u8; 4] = [0x78, 0x9f, 0x3e, 0x22];
pub(super) const ATT_ATTACH_REND_DATA: u32 = 0x0006_9002;
pub(super) const ATT_ATTACH_DATA: u32 = 0x0006_800F;
pub(super) const ATT_ATTACH_TITLE: u32 = 0x0001_8010;
pub(super) const ATT_ATTACH_TRANSPORT_FILENAME: u32 = 0x0006_9001;
pub(super) const ATT_ATTACHMENT: u32 = 0x0006_9005;
pub(super) const ATT_MESSAGE_CLASS: u32 = 0x0007_8008;
pub(super) const ATT_SUBJECT: u32 = 0x0001_8004;
pub(super) const ATT_BODY: u32 = 0x0002_800C;
pub(super) const ATT_MAPI_PROPS: u32 = 0x0006_9003;
pub(super) const ATT_DATE_START: u32 = 0x0003_0006;
pub(super) const ATT_DATE_END: u32 = 0x0003_0007;

/// IID_IMessage {00020307-0000-0000-C000-000000000046}: the object is an
/// embedded message (a TNEF stream follows).
pub(super) const IID_IMESSAGE: [u8; 16] = [
    0x07, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
];

/// Embedded items inside embedded items are opened this deep; a deeper one
/// stays in winmail.dat.
pub(super) const MAX_TNEF_DEPTH: usize = 4;

/// The documents in a TNEF stream, and whether that is all of it (else
/// winmail.dat is to be kept). `has_body`: the mail around it shows a text
/// body of its own, so the RTF body is not needed as a document.
///
/// The `tnef` crate reads each stream first (it checks the checksums); it
/// refuses whole streams over attributes it does not know and skips files
/// it finds incomplete, so a lenient scan of the attribute records
/// (ignoring unknown ones) counts the attachments and takes over when the
/// crate fails or misses some.
pub(super) fn unpack_tnef(data: &[u8], has_body: bool) -> (Vec<TnefDoc>, bool) {
    let mut u = Unpacker {
        docs: Vec::new(),
        complete: true,
        budget: document_budget(data.len()),
    };
    let Some(stream) = read_stream(data) else {
        return (Vec::new(), false);
    };
    u.complete &= stream.complete;
    let body = message_body(&stream.message);
    // An object pasted into the RTF body (`\objdata`) is not unpacked:
    // winmail.dat keeps it (the RTF itself is a document only without a
    // text body).
    if let Body::Some(_, "application/rtf", rtf) = &body
        && rtf.windows(8).any(|w| w == b"\\objdata")
    {
        u.complete = false;
    }
    if !has_body {
        match body {
            Body::Some(name_ext, mime, bytes) => {
                let name = sanitize_filename(&format!("body.{name_ext}"), mime);
                u.push("tnef:body".to_string(), name, mime.to_string(), bytes);
            }
            Body::Unreadable => u.complete = false,
            Body::None => {}
        }
    }
    u.attachments(&stream, "", 0);
    // Nothing unpacked: winmail.dat is all there is.
    let complete = u.complete && !u.docs.is_empty();
    (u.docs, complete)
}

struct Unpacker {
    docs: Vec<TnefDoc>,
    /// Everything was unpacked.
    complete: bool,
    /// Bytes still allowed for documents.
    budget: usize,
}

impl Unpacker {
    fn push(&mut self, part: String, name: String, mime: String, data: Vec<u8>) -> bool {
        if self.docs.len() >= MAX_DOCUMENTS || data.len() > self.budget {
            self.complete = false;
            return false;
        }
        self.budget -= data.len();
        self.docs.push(TnefDoc {
            part,
            name,
            mime,
            data,
        });
        true
    }

    /// The attachments of one stream, numbered below `prefix`.
    fn attachments(&mut self, stream: &Stream<'_>, prefix: &str, depth: usize) {
        let mut number = 0;
        for att in &stream.attachments {
            if self.docs.len() >= MAX_DOCUMENTS {
                self.complete = false;
                return;
            }
            let path = format!("{prefix}tnef:{}", number + 1);
            let before = self.docs.len();
            if !self.attachment(att, &path, depth) {
                self.complete = false;
            }
            if self.docs.len() > before {
                number += 1;
            }
        }
    }

    /// One attachment's documents at `path`; false when it was not all
    /// unpacked.
    fn attachment(&mut self, att: &Attachment<'_>, path: &str, depth: usize) -> bool {
        let mapi = att.props.map(mapi_attach_props).unwrap_or_default();
        let iid = mapi.object.and_then(|o| o.get(..16));
        if mapi.method == Some(ATTACH_EMBEDDED_MSG) || iid == Some(&IID_IMESSAGE[..]) {
            if depth < MAX_TNEF_DEPTH
                && let Some(nested) = mapi.object.and_then(|o| o.get(16..))
            {
                self.embedded(nested, att, &mapi, path, depth + 1);
            }
            // An item is not a file: what it is (its sender, recipients,
            // dates) stays in winmail.dat.
            return false;
        }
        if mapi.object.is_some() || mapi.method == Some(ATTACH_OLE) {
            let Some(file) = mapi.object.and_then(unpack_ole) else {
                return false;
            };
            let label = [mapi.long_name.clone(), att.title.clone()]
                .into_iter()
                .flatten()
                .find(|n| !n.trim().is_empty());
            let raw_name = file.name.or(label);
            let mime = file
                .mime
                .map(str::to_string)
                .or_else(|| {
                    raw_name
                        .as_deref()
                        .and_then(mime::of_filename)
                        .map(str::to_string)
                })
                .or_else(|| sniff(&file.data).map(str::to_string))
                .unwrap_or_else(|| "application/octet-stream".to_string());
            let name = with_extension(raw_name.as_deref().unwrap_or(""), &mime);
            return self.push(path.to_string(), name, mime, file.data);
        }
        match tnef_file(att, mapi) {
            Some(file) => self.push(path.to_string(), file.name, file.mime, file.data),
            None => false,
        }
    }

    /// An embedded item at `path`: the item as a document (`item`), then
    /// the files inside it below it.
    fn embedded(
        &mut self,
        nested: &[u8],
        att: &Attachment<'_>,
        mapi: &MapiAttachProps<'_>,
        path: &str,
        depth: usize,
    ) {
        let Some(stream) = read_stream(nested) else {
            return;
        };
        let label = [att.title.clone(), mapi.display_name.clone()]
            .into_iter()
            .flatten()
            .find(|n| !n.trim().is_empty());
        if let Some(doc) = render_item(&stream.message, label) {
            self.push(path.to_string(), doc.name, doc.mime, doc.data);
        }
        self.attachments(&stream, &format!("{path}/"), depth);
    }
}

/// `name` made safe, with the extension of `mime` put on when it has
/// another one or none.
pub(super) fn with_extension(name: &str, mime: &str) -> String {
    let name = name.trim();
    let ext = mime::extension_of(mime);
    let named = if name.is_empty() {
        default_filename(mime)
    } else {
        match ext {
            Some(ext) if mime::of_filename(name) != Some(mime) => format!("{name}.{ext}"),
            _ => name.to_string(),
        }
    };
    sanitize_filename(&named.replace(['/', '\\'], "_"), mime)
}

/// One attachment as the stream holds it.
#[derive(Default)]
pub(super) struct Attachment<'a> {
    pub(super) title: Option<String>,
    pub(super) transport_filename: Option<String>,
    /// attAttachment: the MAPI properties.
    pub(super) props: Option<&'a [u8]>,
    /// attAttachData.
    pub(super) data: Option<&'a [u8]>,
}

/// The message-level attributes of a stream that say what it is.
#[derive(Default)]
pub(super) struct MessageAttrs<'a> {
    pub(super) class: Option<String>,
    pub(super) subject: Option<String>,
    pub(super) body: Option<String>,
    /// attMAPIProps.
    pub(super) props: Option<&'a [u8]>,
    pub(super) start: Option<&'a [u8]>,
    pub(super) end: Option<&'a [u8]>,
}

pub(super) struct Stream<'a> {
    pub(super) message: MessageAttrs<'a>,
    pub(super) attachments: Vec<Attachment<'a>>,
    /// Every record was read, to the end of the data.
    pub(super) complete: bool,
}

/// A TNEF stream's message attributes and attachments; `None` without the
/// TNEF signature.
pub(super) fn read_stream(data: &[u8]) -> Option<Stream<'_>> {
    let scan = tnef_scan(data)?;
    if let Some(Ok(list)) = guarded(|| ::tnef::read_attachments(data))
        && !list.is_empty()
        && list.len() == scan.attachments.len()
    {
        let attachments = list
            .iter()
            .map(|a| Attachment {
                title: Some(a.title.clone()),
                transport_filename: a.transport_filename.clone(),
                props: Some(a.props),
                data: Some(a.data),
            })
            .collect();
        return Some(Stream {
            message: scan.message,
            attachments,
            complete: true,
        });
    }
    Some(Stream {
        message: scan.message,
        attachments: scan.attachments,
        complete: scan.clean_end,
    })
}

pub(super) struct TnefScan<'a> {
    pub(super) message: MessageAttrs<'a>,
    pub(super) attachments: Vec<Attachment<'a>>,
    /// The records ran exactly to the end of the data.
    pub(super) clean_end: bool,
}

/// Reads the attribute records leniently: unknown ones are skipped, a
/// damaged one ends the scan (`clean_end` false).
pub(super) fn tnef_scan(data: &[u8]) -> Option<TnefScan<'_>> {
    if data.get(..4) != Some(&TNEF_SIGNATURE[..]) {
        return None;
    }
    let mut scan = TnefScan {
        message: MessageAttrs::default(),
        attachments: Vec::new(),
        clean_end: false,
    };
    let mut pos: usize = 6; // signature, legacy key
    loop {
        if pos == data.len() {
            scan.clean_end = true;
            break;
        }
        let Some(head) = data.get(pos..pos.saturating_add(9)) else {
            break;
        };
        let level = head[0];
        let id = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        let len = u32::from_le_bytes([head[5], head[6], head[7], head[8]]) as usize;
        let start = pos + 9;
        let Some(end) = start.checked_add(len) else {
            break;
        };
        let Some(value) = data.get(start..end) else {
            break;
        };
        if data.len() < end.saturating_add(2) {
            break; // no room for the checksum
        }
        pos = end + 2;
        let m = &mut scan.message;
        match (level, id) {
            (1, ATT_MESSAGE_CLASS) => m.class = Some(tnef_string(value)),
            (1, ATT_SUBJECT) => m.subject = Some(tnef_string(value)),
            (1, ATT_BODY) => m.body = Some(tnef_string(value)),
            (1, ATT_MAPI_PROPS) => m.props = Some(value),
            (1, ATT_DATE_START) => m.start = Some(value),
            (1, ATT_DATE_END) => m.end = Some(value),
            (2, ATT_ATTACH_REND_DATA) => {
                if scan.attachments.len() >= MAX_DOCUMENTS {
                    break; // not clean: the rest stays in winmail.dat
                }
                scan.attachments.push(Attachment::default());
            }
            (2, _) => {
                if scan.attachments.is_empty() {
                    scan.attachments.push(Attachment::default());
                }
                let Some(att) = scan.attachments.last_mut() else {
                    break;
                };
                match id {
                    ATT_ATTACH_DATA => att.data = Some(value),
                    ATT_ATTACH_TITLE => att.title = Some(tnef_string(value)),
                    ATT_ATTACH_TRANSPORT_FILENAME => {
                        att.transport_filename = Some(tnef_string(value))
                    }
                    ATT_ATTACHMENT => att.props = Some(value),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Some(scan)
}

/// A NUL-terminated 8-bit TNEF string.
pub(super) fn tnef_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    decode_8bit(&bytes[..end])
}

pub(super) struct TnefFile {
    pub(super) name: String,
    pub(super) mime: String,
    pub(super) data: Vec<u8>,
}

/// The file of one TNEF attachment that is a file (not an embedded item or
/// OLE object), `None` when it has no data. The file's bytes are
/// attAttachData, else the MAPI property `PR_ATTACH_DATA_BIN` (some writers
/// keep them only there).
pub(super) fn tnef_file(att: &Attachment<'_>, mapi: MapiAttachProps<'_>) -> Option<TnefFile> {
    let data = att
        .data
        .filter(|d| !d.is_empty() || mapi.data.is_none())
        .or(mapi.data)?
        .to_vec();
    // The title is often an 8.3 name; the MAPI long file name is the real one.
    let raw_name = [
        mapi.long_name,
        att.transport_filename.clone(),
        mapi.short_name,
        att.title.clone(),
    ]
    .into_iter()
    .flatten()
    .find(|n| !n.trim().is_empty());
    let mime = mapi
        .mime_tag
        .map(|m| m.trim().to_ascii_lowercase())
        .filter(|m| {
            m.split_once('/')
                .is_some_and(|(t, s)| is_mime_token(t) && is_mime_token(s))
        })
        .or_else(|| {
            raw_name
                .as_deref()
                .and_then(mime::of_filename)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "application/octet-stream".to_string());
    let name = sanitize_filename(raw_name.as_deref().unwrap_or(""), &mime);
    Some(TnefFile { name, mime, data })
}
