//! OLE objects in a winmail.dat (PR_ATTACH_METHOD 6, ATTACH_OLE): the
//! compound file (CFB) in PR_ATTACH_DATA_OBJ, opened with the `cfb` crate,
//! and the file a sender packed into it: the `\x01Ole10Native` stream of
//! an OLE Package (a file dragged into an RTF mail), a `CONTENTS` or
//! `Package` stream (an embedded PDF or other document; a `.docx`,
//! `.xlsx` or `.pptx` is told from other zips by its parts), or the
//! storage itself when it is an Office 97 document (Word, Excel,
//! PowerPoint).
//!
//! Part of [`super`]: pure, bounded work (no stream is read past the size
//! of the object it sits in), never panics on input (the crate is called
//! under `catch_unwind`). What cannot be read is `None`, and winmail.dat is
//! kept.

use cfb::CompoundFile as Cfb;
use std::io::{Cursor as IoCursor, Read};

#[allow(unused_imports)]
use super::*;

/// The CFB signature.
const CFB_SIGNATURE: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// The file inside an OLE object.
pub(crate) struct OleFile {
    /// Its name, when the object says (a Package's label or path).
    pub(crate) name: Option<String>,
    /// Its type when the name does not tell (an Office storage).
    pub(crate) mime: Option<&'static str>,
    pub(crate) data: Vec<u8>,
}

/// The file in an OLE object's bytes (PR_ATTACH_DATA_OBJ: a 16-byte
/// interface id, IID_IStorage, then the compound file).
pub(crate) fn unpack_ole(object: &[u8]) -> Option<OleFile> {
    let start = [0, 16]
        .into_iter()
        .find(|&i| object.get(i..i + 8) == Some(&CFB_SIGNATURE[..]))?;
    let cfb = object.get(start..)?;
    guarded(|| read_cfb(cfb)).flatten()
}

fn read_cfb(bytes: &[u8]) -> Option<OleFile> {
    let mut file = Cfb::open(IoCursor::new(bytes)).ok()?;
    // A stream is never longer than the file it is in; one that claims
    // more is damaged, and is not read further.
    let limit = bytes.len();
    let mut read = |name: &str| -> Option<Vec<u8>> {
        if !file.is_stream(name) {
            return None;
        }
        let stream = file.open_stream(name).ok()?;
        let mut out = Vec::new();
        stream.take(limit as u64 + 1).read_to_end(&mut out).ok()?;
        (out.len() <= limit).then_some(out)
    };
    if let Some(native) = read("/\u{1}Ole10Native") {
        return ole10_native(&native);
    }
    for name in ["/CONTENTS", "/Package"] {
        if let Some(data) = read(name) {
            return Some(OleFile {
                name: None,
                mime: sniff(&data),
                data,
            });
        }
    }
    // The storage is an Office 97 document itself.
    let office = [
        ("/WordDocument", "application/msword"),
        ("/Workbook", "application/vnd.ms-excel"),
        ("/Book", "application/vnd.ms-excel"),
        ("/PowerPoint Document", "application/vnd.ms-powerpoint"),
    ];
    let (_, mime) = office.iter().find(|(s, _)| file.is_stream(s))?;
    Some(OleFile {
        name: None,
        mime: Some(mime),
        data: bytes.to_vec(),
    })
}

/// An OLE Package's `\x01Ole10Native` stream: the size of what follows
/// (u32), a flag (u16), the label, the original path and (after 4 bytes
/// and its length, u32) the temporary path, each NUL-terminated ANSI; then
/// the file's size (u32) and its bytes. (Unicode copies of the names may
/// follow; they are not needed.)
pub(crate) fn ole10_native(stream: &[u8]) -> Option<OleFile> {
    let mut c = Cursor {
        bytes: stream,
        pos: 0,
    };
    let total = c.u32()? as usize;
    if total > stream.len() - 4 {
        return None;
    }
    c.u16()?;
    let label = c_string(&mut c)?;
    let path = c_string(&mut c)?;
    c.take(4)?;
    let temp_len = c.u32()? as usize;
    let temp = c.take(temp_len)?;
    let size = c.u32()? as usize;
    let data = c.take(size)?.to_vec();
    let base = |p: &[u8]| -> Option<String> {
        let name = tnef_string(p);
        let name = name
            .rsplit(['\\', '/'])
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        (!name.is_empty()).then_some(name)
    };
    let name = base(label).or_else(|| base(path)).or_else(|| base(temp));
    Some(OleFile {
        mime: None,
        name,
        data,
    })
}

/// A NUL-terminated string, and the cursor past its NUL.
fn c_string<'a>(c: &mut Cursor<'a>) -> Option<&'a [u8]> {
    let rest = c.bytes.get(c.pos..)?;
    let n = rest.iter().position(|&b| b == 0)?;
    let s = c.take(n)?;
    c.take(1)?;
    Some(s)
}

/// The type of a file without a name, by its first bytes.
pub(crate) fn sniff(data: &[u8]) -> Option<&'static str> {
    let magic: [(&[u8], &str); 5] = [
        (b"%PDF-", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xFF\xD8\xFF", "image/jpeg"),
        (b"GIF8", "image/gif"),
        (b"PK\x03\x04", "application/zip"),
    ];
    let found = magic
        .iter()
        .find(|(m, _)| data.starts_with(m))
        .map(|(_, t)| *t)?;
    Some(if found == "application/zip" {
        office_open_xml(data).unwrap_or(found)
    } else {
        found
    })
}

/// A zip that is an Office Open XML document (ECMA-376 Part 2): it has a
/// `[Content_Types].xml` part, and its main part is below `word/`, `xl/`
/// or `ppt/`. Read from the names in the local file headers (each a
/// signature, 26 bytes, the name's length at 26, the name at 30), looked
/// for anywhere in the data, so that entries whose sizes are only in a
/// data descriptor are found too; one pass over the data.
fn office_open_xml(data: &[u8]) -> Option<&'static str> {
    let kinds = [
        (
            &b"word/"[..],
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (
            b"xl/",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (
            b"ppt/",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ),
    ];
    let mut content_types = false;
    let mut kind = None;
    for at in memchr::memmem::find_iter(data, b"PK\x03\x04") {
        let Some(len) = data.get(at + 26..at + 28) else {
            continue;
        };
        let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
        let Some(name) = data.get(at + 30..at + 30 + len) else {
            continue;
        };
        if name == b"[Content_Types].xml" {
            content_types = true;
        } else if kind.is_none() {
            kind = kinds.iter().find(|(p, _)| name.starts_with(p)).map(|k| k.1);
        }
        if content_types && kind.is_some() {
            return kind;
        }
    }
    None
}
