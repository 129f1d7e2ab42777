//! MAPI property lists inside a TNEF stream (attAttachment, attMAPIProps;
//! MS-OXTNEF 2.1.3.4): the few properties jobmail reads from an
//! attachment (names, type, method, data, embedded object) and from a
//! message (class, subject, bodies, appointment times, a contact's names,
//! phones and e-mail addresses).
//!
//! Part of [`super`]: pure, bounded work, never panics on input. A list it
//! does not understand is read up to that point and no further.

#[allow(unused_imports)]
use super::*;

pub(crate) struct Cursor<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// `n` bytes and the padding to a multiple of 4 after them.
    pub(crate) fn take_padded(&mut self, n: usize) -> Option<&'a [u8]> {
        let value = self.take(n)?;
        self.take((4 - n % 4) % 4)?;
        Some(value)
    }
}

pub(crate) const PT_LONG: u16 = 0x0003;
pub(crate) const PT_OBJECT: u16 = 0x000D;
pub(crate) const PT_STRING8: u16 = 0x001E;
pub(crate) const PT_UNICODE: u16 = 0x001F;
pub(crate) const PT_SYSTIME: u16 = 0x0040;
pub(crate) const PT_BINARY: u16 = 0x0102;

/// One property's first value, as it stands in the list.
pub(crate) struct Prop<'a> {
    /// The property id (`0x3701`), or for a named property the id it was
    /// given in this stream (not meaningful: see `named`).
    pub(crate) id: u16,
    /// A named property: its property set GUID and numeric id (a named
    /// property with a string name has `None`).
    pub(crate) named: Option<(&'a [u8], u32)>,
    /// The base type (`PT_*`, without the multi-value flag).
    pub(crate) ptype: u16,
    /// The first value's bytes (strings with their NUL).
    pub(crate) value: &'a [u8],
}

/// Calls `f` with the first value of every property in a MAPI property
/// list. Stops quietly (`None`) at anything it does not understand or at
/// the end of the data, whatever the counts claim.
pub(crate) fn each_prop<'a>(props: &'a [u8], mut f: impl FnMut(Prop<'a>)) -> Option<()> {
    let mut c = Cursor {
        bytes: props,
        pos: 0,
    };
    let count = c.u32()?;
    for _ in 0..count {
        let ptype = c.u16()?;
        let id = c.u16()?;
        let mut named = None;
        if id >= 0x8000 {
            // Named property: GUID, kind, then an id or a name.
            let guid = c.take(16)?;
            if c.u32()? == 0 {
                named = Some((guid, c.u32()?));
            } else {
                let n = c.u32()? as usize;
                c.take_padded(n)?;
            }
        }
        let multi = ptype & 0x1000 != 0;
        let base = ptype & 0x0FFF;
        let variable = matches!(base, PT_STRING8 | PT_UNICODE | PT_BINARY | PT_OBJECT);
        let values = if multi || variable { c.u32()? } else { 1 };
        for index in 0..values {
            let value = if variable {
                let n = c.u32()? as usize;
                c.take_padded(n)?
            } else {
                let size = match base {
                    0x0001..=0x0004 | 0x000A | 0x000B => 4,
                    0x0005..=0x0007 | 0x0014 | PT_SYSTIME => 8,
                    0x0048 => 16,
                    _ => return None,
                };
                c.take(size)?
            };
            if index == 0 {
                f(Prop {
                    id,
                    named,
                    ptype: base,
                    value,
                });
            }
        }
    }
    Some(())
}

impl Prop<'_> {
    /// A string property as text.
    pub(crate) fn text(&self) -> Option<String> {
        match self.ptype {
            PT_UNICODE => Some(utf16le(self.value)),
            PT_STRING8 => Some(tnef_string(self.value)),
            _ => None,
        }
    }
    pub(crate) fn long(&self) -> Option<u32> {
        let v = self.value.get(..4)?;
        (self.ptype == PT_LONG).then(|| u32::from_le_bytes([v[0], v[1], v[2], v[3]]))
    }
    /// A PT_SYSTIME (FILETIME) as seconds since 1970.
    pub(crate) fn time(&self) -> Option<i64> {
        let v: [u8; 8] = self.value.get(..8)?.try_into().ok()?;
        (self.ptype == PT_SYSTIME).then(|| filetime_seconds(u64::from_le_bytes(v)))
    }
    /// Not a named property, and this id.
    pub(crate) fn is(&self, id: u16) -> bool {
        self.named.is_none() && self.id == id
    }
    /// A named property of this set with this numeric id.
    pub(crate) fn is_named(&self, set: &[u8; 16], lid: u32) -> bool {
        self.named == Some((&set[..], lid))
    }
}

/// FILETIME (100 ns since 1601) as seconds since 1970.
pub(crate) fn filetime_seconds(t: u64) -> i64 {
    (t / 10_000_000) as i64 - 11_644_473_600
}

#[derive(Default)]
pub(crate) struct MapiAttachProps<'a> {
    pub(crate) long_name: Option<String>,
    pub(crate) short_name: Option<String>,
    pub(crate) display_name: Option<String>,
    pub(crate) mime_tag: Option<String>,
    /// PR_ATTACH_METHOD.
    pub(crate) method: Option<u32>,
    /// PR_ATTACH_DATA_BIN: the file's bytes.
    pub(crate) data: Option<&'a [u8]>,
    /// PR_ATTACH_DATA_OBJ: an embedded message or OLE storage, with the
    /// 16-byte interface id it starts with.
    pub(crate) object: Option<&'a [u8]>,
}

pub(crate) const PR_ATTACH_DATA: u16 = 0x3701;
pub(crate) const PR_ATTACH_METHOD: u16 = 0x3705;
pub(crate) const ATTACH_EMBEDDED_MSG: u32 = 5;
pub(crate) const ATTACH_OLE: u32 = 6;

pub(crate) const PR_DISPLAY_NAME: u16 = 0x3001;
pub(crate) const PR_ATTACH_FILENAME: u16 = 0x3704;
pub(crate) const PR_ATTACH_LONG_FILENAME: u16 = 0x3707;
pub(crate) const PR_ATTACH_MIME_TAG: u16 = 0x370E;

/// Reads the MAPI properties of a TNEF attachment (attAttachment, MS-OXTNEF
/// 2.1.3.5) for its names, MIME type, method and data. Stops quietly at
/// anything it does not understand.
pub(crate) fn mapi_attach_props(props: &[u8]) -> MapiAttachProps<'_> {
    let mut out = MapiAttachProps::default();
    let _ = each_prop(props, |p| {
        if p.named.is_some() {
            return;
        }
        match (p.id, p.ptype) {
            (PR_ATTACH_LONG_FILENAME, _) => out.long_name = p.text(),
            (PR_ATTACH_FILENAME, _) => out.short_name = p.text(),
            (PR_DISPLAY_NAME, _) => out.display_name = p.text(),
            (PR_ATTACH_MIME_TAG, _) => out.mime_tag = p.text(),
            (PR_ATTACH_METHOD, _) => out.method = p.long(),
            (PR_ATTACH_DATA, PT_BINARY) => out.data = Some(p.value),
            (PR_ATTACH_DATA, PT_OBJECT) => out.object = Some(p.value),
            _ => {}
        }
    });
    out
}

pub(crate) const PR_MESSAGE_CLASS: u16 = 0x001A;
pub(crate) const PR_SUBJECT: u16 = 0x0037;
pub(crate) const PR_START_DATE: u16 = 0x0060;
pub(crate) const PR_END_DATE: u16 = 0x0061;
pub(crate) const PR_BODY: u16 = 0x1000;
pub(crate) const PR_RTF_COMPRESSED: u16 = 0x1009;
pub(crate) const PR_HTML: u16 = 0x1013;

/// PSETID_Appointment {00062002-0000-0000-C000-000000000046}.
pub(crate) const PSETID_APPOINTMENT: [u8; 16] = [
    0x02, 0x20, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
];
pub(crate) const LID_LOCATION: u32 = 0x8208;
pub(crate) const LID_START_WHOLE: u32 = 0x820D;
pub(crate) const LID_END_WHOLE: u32 = 0x820E;

/// PSETID_Address {00062004-0000-0000-C000-000000000046}: a contact's
/// e-mail addresses (MS-OXOCNTC 2.2.1.2).
pub(crate) const PSETID_ADDRESS: [u8; 16] = [
    0x04, 0x20, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
];
/// PidLidEmail1EmailAddress, PidLidEmail2EmailAddress, PidLidEmail3EmailAddress.
pub(crate) const LID_EMAIL_ADDRESS: [u32; 3] = [0x8083, 0x8093, 0x80A3];
/// PidLidEmail1OriginalDisplayName, …2…, …3…: the SMTP address when the
/// address itself is an Exchange one (`/o=…/cn=…`).
pub(crate) const LID_EMAIL_ORIGINAL_NAME: [u32; 3] = [0x8084, 0x8094, 0x80A4];

pub(crate) const PR_GENERATION: u16 = 0x3A05;
pub(crate) const PR_GIVEN_NAME: u16 = 0x3A06;
pub(crate) const PR_BUSINESS_TELEPHONE_NUMBER: u16 = 0x3A08;
pub(crate) const PR_HOME_TELEPHONE_NUMBER: u16 = 0x3A09;
pub(crate) const PR_SURNAME: u16 = 0x3A11;
pub(crate) const PR_COMPANY_NAME: u16 = 0x3A16;
pub(crate) const PR_TITLE: u16 = 0x3A17;
pub(crate) const PR_DEPARTMENT_NAME: u16 = 0x3A18;
pub(crate) const PR_MOBILE_TELEPHONE_NUMBER: u16 = 0x3A1C;
pub(crate) const PR_MIDDLE_NAME: u16 = 0x3A44;
pub(crate) const PR_DISPLAY_NAME_PREFIX: u16 = 0x3A45;

/// What a contact's (IPM.Contact) properties say of the person; each as
/// the property holds it, untrimmed.
#[derive(Default)]
pub(crate) struct ContactProps {
    pub(crate) display_name: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) given: Option<String>,
    pub(crate) middle: Option<String>,
    pub(crate) surname: Option<String>,
    pub(crate) suffix: Option<String>,
    pub(crate) company: Option<String>,
    pub(crate) department: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) business_phone: Option<String>,
    pub(crate) home_phone: Option<String>,
    pub(crate) mobile_phone: Option<String>,
    /// E-mail 1 to 3 (PidLidEmailNEmailAddress).
    pub(crate) email: [Option<String>; 3],
    /// Their original display names (PidLidEmailNOriginalDisplayName).
    pub(crate) email_original: [Option<String>; 3],
}

/// Where a contact's string property goes, if it is one jobmail reads.
fn contact_slot<'c>(c: &'c mut ContactProps, p: &Prop<'_>) -> Option<&'c mut Option<String>> {
    if let Some((set, lid)) = p.named {
        if set != PSETID_ADDRESS {
            return None;
        }
        if let Some(i) = LID_EMAIL_ADDRESS.iter().position(|&l| l == lid) {
            return c.email.get_mut(i);
        }
        let i = LID_EMAIL_ORIGINAL_NAME.iter().position(|&l| l == lid)?;
        return c.email_original.get_mut(i);
    }
    Some(match p.id {
        PR_DISPLAY_NAME => &mut c.display_name,
        PR_DISPLAY_NAME_PREFIX => &mut c.prefix,
        PR_GIVEN_NAME => &mut c.given,
        PR_MIDDLE_NAME => &mut c.middle,
        PR_SURNAME => &mut c.surname,
        PR_GENERATION => &mut c.suffix,
        PR_COMPANY_NAME => &mut c.company,
        PR_DEPARTMENT_NAME => &mut c.department,
        PR_TITLE => &mut c.title,
        PR_BUSINESS_TELEPHONE_NUMBER => &mut c.business_phone,
        PR_HOME_TELEPHONE_NUMBER => &mut c.home_phone,
        PR_MOBILE_TELEPHONE_NUMBER => &mut c.mobile_phone,
        _ => return None,
    })
}

/// What a message's attMAPIProps say of it.
#[derive(Default)]
pub(crate) struct MapiMessageProps<'a> {
    pub(crate) class: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) body: Option<String>,
    pub(crate) rtf_compressed: Option<&'a [u8]>,
    pub(crate) html: Option<&'a [u8]>,
    pub(crate) start: Option<i64>,
    pub(crate) end: Option<i64>,
    pub(crate) location: Option<String>,
    /// The person, when the message is a contact.
    pub(crate) contact: ContactProps,
}

pub(crate) fn mapi_message_props(props: &[u8]) -> MapiMessageProps<'_> {
    let mut out = MapiMessageProps::default();
    let _ = each_prop(props, |p| {
        if p.is_named(&PSETID_APPOINTMENT, LID_START_WHOLE) {
            out.start = p.time().or(out.start);
        } else if p.is_named(&PSETID_APPOINTMENT, LID_END_WHOLE) {
            out.end = p.time().or(out.end);
        } else if p.is_named(&PSETID_APPOINTMENT, LID_LOCATION) {
            out.location = p.text();
        } else if p.is(PR_MESSAGE_CLASS) {
            out.class = p.text();
        } else if p.is(PR_SUBJECT) {
            out.subject = p.text();
        } else if p.is(PR_BODY) {
            out.body = p.text();
        } else if p.is(PR_RTF_COMPRESSED) && p.ptype == PT_BINARY {
            out.rtf_compressed = Some(p.value);
        } else if p.is(PR_HTML) && matches!(p.ptype, PT_BINARY | PT_STRING8) {
            out.html = Some(p.value);
        } else if p.is(PR_START_DATE) {
            out.start = out.start.or(p.time());
        } else if p.is(PR_END_DATE) {
            out.end = out.end.or(p.time());
        } else if let Some(text) = p.text()
            && let Some(slot) = contact_slot(&mut out.contact, &p)
        {
            *slot = Some(text);
        }
    });
    out
}

pub(crate) fn utf16le(bytes: &[u8]) -> String {
    let units = bytes
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .take_while(|&u| u != 0);
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}
