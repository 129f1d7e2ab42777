//! TNEF (`winmail.dat`): the files an Outlook sender packed into it, from
//! attAttachData and from the MAPI attachment properties.
//!
//! Part of [`super`]: pure, bounded work, never panics on input.

#[allow(unused_imports)]
use super::*;

pub(super) struct TnefFile {
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

/// The files in a TNEF stream, and whether that is all of them. The `tnef`
/// crate reads the stream first (it checks the checksums); it refuses whole
/// streams over attributes it does not know and skips files it finds
/// incomplete, so a lenient scan of the attribute records (ignoring unknown
/// ones) counts the files and takes over when the crate fails or misses some.
pub(super) fn unpack_tnef(data: &[u8]) -> (Vec<TnefFile>, bool) {
    let scan = tnef_scan(data);
    if let Some(Ok(list)) = guarded(|| ::tnef::read_attachments(data))
        && !list.is_empty()
        && list.len() == scan.groups
    {
        let files: Vec<TnefFile> = list
            .iter()
            .take(MAX_DOCUMENTS)
            .filter_map(|a| {
                tnef_file(
                    Some(a.title.clone()),
                    a.transport_filename.clone(),
                    Some(a.props),
                    Some(a.data),
                )
            })
            .collect();
        let complete = files.len() == list.len();
        return (files, complete);
    }
    let complete = scan.clean_end && scan.groups > 0 && scan.files.len() == scan.groups;
    (scan.files, complete)
}

#[derive(Default)]
pub(super) struct TnefScan {
    pub(super) files: Vec<TnefFile>,
    /// Attachments begun (attAttachRendData records seen).
    pub(super) groups: usize,
    /// The records ran exactly to the end of the data.
    pub(super) clean_end: bool,
}

#[derive(Default)]
pub(super) struct RawTnefAttachment<'a> {
    pub(super) data: Option<&'a [u8]>,
    pub(super) title: Option<&'a [u8]>,
    pub(super) transport_filename: Option<&'a [u8]>,
    pub(super) props: Option<&'a [u8]>,
}

pub(super) fn tnef_scan(data: &[u8]) -> TnefScan {
    let mut scan = TnefScan::default();
    if data.get(..4) != Some(&TNEF_SIGNATURE[..]) {
        return scan;
    }
    let finish = |scan: &mut TnefScan, att: RawTnefAttachment<'_>| {
        if let Some(file) = tnef_file(
            att.title.map(tnef_string),
            att.transport_filename.map(tnef_string),
            att.props,
            att.data,
        ) {
            scan.files.push(file);
        }
    };
    let mut pos: usize = 6; // signature, legacy key
    let mut current: Option<RawTnefAttachment<'_>> = None;
    while scan.files.len() < MAX_DOCUMENTS {
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
        if level != 2 {
            continue;
        }
        match id {
            ATT_ATTACH_REND_DATA => {
                if let Some(att) = current.take() {
                    finish(&mut scan, att);
                }
                scan.groups += 1;
                current = Some(RawTnefAttachment::default());
            }
            ATT_ATTACH_DATA => current.get_or_insert_with(Default::default).data = Some(value),
            ATT_ATTACH_TITLE => current.get_or_insert_with(Default::default).title = Some(value),
            ATT_ATTACH_TRANSPORT_FILENAME => {
                current
                    .get_or_insert_with(Default::default)
                    .transport_filename = Some(value)
            }
            ATT_ATTACHMENT => current.get_or_insert_with(Default::default).props = Some(value),
            _ => {}
        }
    }
    if let Some(att) = current.take() {
        finish(&mut scan, att);
    }
    scan
}

/// A NUL-terminated 8-bit TNEF string.
pub(super) fn tnef_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    decode_8bit(&bytes[..end])
}

/// The file of one TNEF attachment, `None` when it holds none that can be
/// unpacked: an embedded Outlook item (a message, task, appointment) or an
/// OLE object (`PR_ATTACH_METHOD` 5 or 6, or an object in
/// `PR_ATTACH_DATA_OBJ`), whose attAttachData, if any, is only a
/// placeholder. The file's bytes are attAttachData, else the MAPI property
/// `PR_ATTACH_DATA_BIN` (some writers keep them only there).
pub(super) fn tnef_file(
    title: Option<String>,
    transport_filename: Option<String>,
    props: Option<&[u8]>,
    data: Option<&[u8]>,
) -> Option<TnefFile> {
    let mapi = props.map(mapi_attach_props).unwrap_or_default();
    if mapi.object || matches!(mapi.method, Some(ATTACH_EMBEDDED_MSG | ATTACH_OLE)) {
        return None;
    }
    let data = data
        .filter(|d| !d.is_empty() || mapi.data.is_none())
        .map(<[u8]>::to_vec)
        .or(mapi.data)?;
    // The title is often an 8.3 name; the MAPI long file name is the real one.
    let raw_name = [mapi.long_name, transport_filename, mapi.short_name, title]
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

#[derive(Default)]
pub(super) struct MapiAttachProps {
    pub(super) long_name: Option<String>,
    pub(super) short_name: Option<String>,
    pub(super) mime_tag: Option<String>,
    /// PR_ATTACH_METHOD.
    pub(super) method: Option<u32>,
    /// PR_ATTACH_DATA_BIN: the file's bytes.
    pub(super) data: Option<Vec<u8>>,
    /// PR_ATTACH_DATA_OBJ: an embedded message or OLE storage.
    pub(super) object: bool,
}

pub(super) const PR_ATTACH_DATA: u16 = 0x3701;
pub(super) const PR_ATTACH_METHOD: u16 = 0x3705;
pub(super) const ATTACH_EMBEDDED_MSG: u32 = 5;
pub(super) const ATTACH_OLE: u32 = 6;

pub(super) const PR_ATTACH_FILENAME: u16 = 0x3704;
pub(super) const PR_ATTACH_LONG_FILENAME: u16 = 0x3707;
pub(super) const PR_ATTACH_MIME_TAG: u16 = 0x370E;

/// Reads the MAPI properties of a TNEF attachment (attAttachment, MS-OXTNEF
/// 2.1.3.5) for its long file name and MIME type. Stops quietly at anything
/// it does not understand.
pub(super) fn mapi_attach_props(props: &[u8]) -> MapiAttachProps {
    let mut out = MapiAttachProps::default();
    let _ = read_mapi_props(props, &mut out);
    out
}

pub(super) struct Cursor<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }
    pub(super) fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(super) fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// `n` bytes and the padding to a multiple of 4 after them.
    pub(super) fn take_padded(&mut self, n: usize) -> Option<&'a [u8]> {
        let value = self.take(n)?;
        self.take((4 - n % 4) % 4)?;
        Some(value)
    }
}

pub(super) fn read_mapi_props(props: &[u8], out: &mut MapiAttachProps) -> Option<()> {
    let mut c = Cursor {
        bytes: props,
        pos: 0,
    };
    let count = c.u32()?;
    for _ in 0..count {
        let ptype = c.u16()?;
        let pid = c.u16()?;
        if pid >= 0x8000 {
            // Named property: GUID, kind, then an id or a name.
            c.take(16)?;
            if c.u32()? == 0 {
                c.take(4)?;
            } else {
                let n = c.u32()? as usize;
                c.take_padded(n)?;
            }
        }
        let multi = ptype & 0x1000 != 0;
        let base = ptype & 0x0FFF;
        let variable = matches!(base, 0x001E | 0x001F | 0x0102 | 0x000D);
        let values = if multi || variable { c.u32()? } else { 1 };
        for index in 0..values {
            if variable {
                let n = c.u32()? as usize;
                let value = c.take_padded(n)?;
                if index == 0 && pid < 0x8000 {
                    let text = match base {
                        0x001F => Some(utf16le(value)),
                        0x001E => Some(tnef_string(value)),
                        _ => None,
                    };
                    match (pid, text) {
                        (PR_ATTACH_LONG_FILENAME, Some(t)) => out.long_name = Some(t),
                        (PR_ATTACH_FILENAME, Some(t)) => out.short_name = Some(t),
                        (PR_ATTACH_MIME_TAG, Some(t)) => out.mime_tag = Some(t),
                        (PR_ATTACH_DATA, None) if base == 0x0102 => {
                            out.data = Some(value.to_vec());
                        }
                        (PR_ATTACH_DATA, None) if base == 0x000D => out.object = true,
                        _ => {}
                    }
                }
            } else {
                let size = match base {
                    0x0001..=0x0004 | 0x000A | 0x000B => 4,
                    0x0005..=0x0007 | 0x0014 | 0x0040 => 8,
                    0x0048 => 16,
                    _ => return None,
                };
                let value = c.take(size)?;
                if pid == PR_ATTACH_METHOD
                    && base == 0x0003
                    && let Some(v) = value.get(..4)
                {
                    out.method = Some(u32::from_le_bytes([v[0], v[1], v[2], v[3]]));
                }
            }
        }
    }
    Some(())
}

pub(super) fn utf16le(bytes: &[u8]) -> String {
    let units = bytes
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .take_while(|&u| u != 0);
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}
