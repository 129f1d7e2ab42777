//! The winmail.dat reader on hostile and hand-made TNEF streams: nothing
//! may panic, allocate beyond the input, run unbounded, or lose
//! winmail.dat.

use cfb::CompoundFile as Cfb;
use std::io::{Cursor as IoCursor, Write};

use super::*;

const PDF: &[u8] = b"%PDF-1.4\n%%EOF\n";

use super::super::tests::tnef_attr as attr;

fn padded(v: &[u8]) -> Vec<u8> {
    let mut out = v.to_vec();
    out.resize(v.len().div_ceil(4) * 4, 0);
    out
}

fn p_long(id: u16, v: u32) -> Vec<u8> {
    let mut out = PT_LONG.to_le_bytes().to_vec();
    out.extend(id.to_le_bytes());
    out.extend(v.to_le_bytes());
    out
}

/// A variable-length property whose length field says `len` (normally the
/// value's length) and whose value bytes are `value`.
fn p_var_len(ptype: u16, id: u16, value: &[u8], len: u32) -> Vec<u8> {
    let mut out = ptype.to_le_bytes().to_vec();
    out.extend(id.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    out.extend(len.to_le_bytes());
    out.extend(padded(value));
    out
}

fn p_var(ptype: u16, id: u16, value: &[u8]) -> Vec<u8> {
    p_var_len(ptype, id, value, value.len() as u32)
}

fn props(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = (entries.len() as u32).to_le_bytes().to_vec();
    for e in entries {
        out.extend(e);
    }
    out
}

fn stream(msg_props: Option<&[u8]>, attachments: &[Vec<u8>]) -> Vec<u8> {
    stream_of("IPM.Note", msg_props, attachments)
}

fn stream_of(class: &str, msg_props: Option<&[u8]>, attachments: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0x78, 0x9f, 0x3e, 0x22, 0x01, 0x00];
    out.extend(attr(1, 0x0008_9006, &[0, 0, 1, 0]));
    let mut cp = 1252u32.to_le_bytes().to_vec();
    cp.extend([0, 0, 0, 0]);
    out.extend(attr(1, 0x0006_9007, &cp));
    let mut c = class.as_bytes().to_vec();
    c.push(0);
    out.extend(attr(1, ATT_MESSAGE_CLASS, &c));
    if let Some(p) = msg_props {
        out.extend(attr(1, ATT_MAPI_PROPS, p));
    }
    for a in attachments {
        out.extend(a);
    }
    out
}

fn attachment(title: &str, data: Option<&[u8]>, mapi: &[u8]) -> Vec<u8> {
    let mut out = attr(
        2,
        ATT_ATTACH_REND_DATA,
        &[1, 0, 0xff, 0xff, 0xff, 0xff, 0, 0],
    );
    let mut t = title.as_bytes().to_vec();
    t.push(0);
    out.extend(attr(2, ATT_ATTACH_TITLE, &t));
    if let Some(d) = data {
        out.extend(attr(2, ATT_ATTACH_DATA, d));
    }
    out.extend(attr(2, ATT_ATTACHMENT, mapi));
    out
}

fn file(name: &str) -> Vec<u8> {
    attachment(name, Some(PDF), &props(&[p_long(PR_ATTACH_METHOD, 1)]))
}

fn embedded(title: &str, nested: &[u8]) -> Vec<u8> {
    let mut object = IID_IMESSAGE.to_vec();
    object.extend(nested);
    attachment(
        title,
        None,
        &props(&[
            p_long(PR_ATTACH_METHOD, ATTACH_EMBEDDED_MSG),
            p_var(PT_OBJECT, PR_ATTACH_DATA, &object),
        ]),
    )
}

fn ole(object: &[u8]) -> Vec<u8> {
    attachment(
        "Paket",
        None,
        &props(&[
            p_long(PR_ATTACH_METHOD, ATTACH_OLE),
            p_var(PT_OBJECT, PR_ATTACH_DATA, object),
        ]),
    )
}

fn parts(docs: &[TnefDoc]) -> Vec<(&str, &str)> {
    docs.iter()
        .map(|d| (d.part.as_str(), d.name.as_str()))
        .collect()
}

#[test]
fn tnef_truncated_embedded_object_keeps_winmail_dat() {
    let inner = stream(None, &[file("Lebenslauf.pdf")]);
    let whole = stream(None, &[embedded("Fwd", &inner), file("Zeugnis.pdf")]);
    let (docs, complete) = unpack_tnef(&whole, true);
    assert_eq!(
        parts(&docs),
        vec![
            ("tnef:1/tnef:1", "Lebenslauf.pdf"),
            ("tnef:2", "Zeugnis.pdf")
        ]
    );
    assert!(!complete);
    for cut in 0..inner.len() {
        // The object itself cut short, its property well-formed.
        let tnef = stream(None, &[embedded("Fwd", &inner[..cut]), file("Zeugnis.pdf")]);
        let (docs, complete) = unpack_tnef(&tnef, true);
        assert!(!complete, "{cut}");
        assert!(docs.iter().any(|d| d.name == "Zeugnis.pdf"), "{cut}");
        // The property claims the whole object, the data stops early.
        let mut object = IID_IMESSAGE.to_vec();
        object.extend(&inner[..cut]);
        let mapi = props(&[
            p_long(PR_ATTACH_METHOD, ATTACH_EMBEDDED_MSG),
            p_var_len(PT_OBJECT, PR_ATTACH_DATA, &object, u32::MAX),
        ]);
        let tnef = stream(None, &[attachment("Fwd", None, &mapi)]);
        let (docs, complete) = unpack_tnef(&tnef, true);
        assert!(docs.is_empty() && !complete, "{cut}");
    }
    // And the whole stream cut anywhere: never a panic, never complete.
    for cut in 0..whole.len() {
        let (_, complete) = unpack_tnef(&whole[..cut], true);
        assert!(!complete, "{cut}");
    }
}

#[test]
fn tnef_embedded_items_are_opened_to_a_depth() {
    // Fifty items, each inside the one before, each with a PDF.
    let mut tnef = stream(None, &[file("deepest.pdf")]);
    for _ in 0..50 {
        tnef = stream(None, &[embedded("Fwd", &tnef), file("level.pdf")]);
    }
    let (docs, complete) = unpack_tnef(&tnef, true);
    assert!(!complete);
    // The top level's file, and those of MAX_TNEF_DEPTH items below it.
    assert_eq!(docs.len(), MAX_TNEF_DEPTH + 1);
    let deepest = docs.iter().map(|d| d.part.matches("tnef:").count()).max();
    assert_eq!(deepest, Some(MAX_TNEF_DEPTH + 1));
    // An item that holds a copy of the very stream it is in (as near to
    // referring to itself as bytes can come), many times over.
    let mut tnef = stream(None, &[file("a.pdf")]);
    for _ in 0..MAX_TNEF_DEPTH {
        let copy = tnef.clone();
        tnef = stream(None, &[embedded("Self", &copy), embedded("Self", &copy)]);
    }
    let (docs, complete) = unpack_tnef(&tnef, true);
    assert!(!complete);
    assert_eq!(docs.len(), 1 << MAX_TNEF_DEPTH);
}

/// A compound file with one stream, made with the `cfb` crate.
fn cfb_with(name: &str, data: &[u8]) -> Vec<u8> {
    let mut file = Cfb::create(IoCursor::new(Vec::new())).expect("create");
    let mut s = file.create_stream(name).expect("stream");
    s.write_all(data).expect("write");
    drop(s);
    file.flush().expect("flush");
    file.into_inner().into_inner()
}

fn native(label: &str, data: &[u8], declared: Option<u32>) -> Vec<u8> {
    let mut body = 2u16.to_le_bytes().to_vec();
    body.extend(label.as_bytes());
    body.push(0);
    body.extend(b"C:\\x\\");
    body.extend(label.as_bytes());
    body.push(0);
    body.extend([0, 0, 3, 0]);
    body.extend(4u32.to_le_bytes());
    body.extend(b"tmp\0");
    body.extend(declared.unwrap_or(data.len() as u32).to_le_bytes());
    body.extend(data);
    let mut out = (body.len() as u32).to_le_bytes().to_vec();
    out.extend(body);
    out
}

#[test]
fn tnef_ole_objects() {
    let mut object = vec![0x0b, 0, 0, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46];
    object.extend(cfb_with("/\u{1}Ole10Native", &native("cv.pdf", PDF, None)));
    let (docs, complete) = unpack_tnef(&stream(None, &[ole(&object)]), true);
    assert!(complete);
    assert_eq!(parts(&docs), vec![("tnef:1", "cv.pdf")]);
    assert_eq!(docs[0].data, PDF);
    assert_eq!(docs[0].mime, "application/pdf");
    // A CONTENTS stream: typed by its bytes, named after the title.
    let (docs, complete) = unpack_tnef(&stream(None, &[ole(&cfb_with("/CONTENTS", PDF))]), true);
    assert!(complete);
    assert_eq!(parts(&docs), vec![("tnef:1", "Paket.pdf")]);
    // A storage that is none of these: not unpacked, winmail.dat kept.
    let (docs, complete) = unpack_tnef(&stream(None, &[ole(&cfb_with("/Other", PDF))]), true);
    assert!(docs.is_empty() && !complete);
    // Not a compound file at all.
    let (docs, complete) = unpack_tnef(&stream(None, &[ole(b"garbage")]), true);
    assert!(docs.is_empty() && !complete);
}

#[test]
fn tnef_ole_hostile_sizes() {
    // The Ole10Native file size far beyond the stream.
    let cfb = cfb_with("/\u{1}Ole10Native", &native("cv.pdf", PDF, Some(u32::MAX)));
    assert!(unpack_ole(&cfb).is_none());
    // The directory entry of the stream claims a huge size (its size field
    // is the last 8 bytes of the 128-byte entry).
    let name: Vec<u8> = "\u{1}Ole10Native"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let big = cfb_with("/\u{1}Ole10Native", &native("cv.pdf", &[7; 5000], None));
    let at = memchr::memmem::find(&big, &name).expect("entry");
    for size in [u64::MAX, 1 << 40, 5_000_000, 4097] {
        let mut hostile = big.clone();
        hostile[at + 120..at + 128].copy_from_slice(&size.to_le_bytes());
        // Read or refused, never more than the file.
        if let Some(f) = unpack_ole(&hostile) {
            assert!(f.data.len() <= hostile.len());
        }
    }
    // Every truncation of a valid one, and every byte flipped in its header
    // and directory.
    let cfb = cfb_with("/\u{1}Ole10Native", &native("cv.pdf", PDF, None));
    for cut in 0..cfb.len() {
        let _ = unpack_ole(&cfb[..cut]);
    }
    for i in 0..cfb.len().min(2048) {
        let mut flipped = cfb.clone();
        flipped[i] ^= 0xFF;
        if let Some(f) = unpack_ole(&flipped) {
            assert!(f.data.len() <= flipped.len());
        }
    }
    for cut in 0..40 {
        assert!(ole10_native(&native("cv.pdf", PDF, None)[..cut]).is_none());
    }
}

#[test]
fn tnef_rtf_body_hostile() {
    let rtf = compressed_rtf::compress_rtf("{\\rtf1 Lebenslauf anbei}").expect("rtf");
    let tnef = stream(
        Some(&props(&[p_var(PT_BINARY, PR_RTF_COMPRESSED, &rtf)])),
        &[file("cv.pdf")],
    );
    let (docs, complete) = unpack_tnef(&tnef, false);
    assert!(complete);
    assert_eq!(
        parts(&docs),
        vec![("tnef:body", "body.rtf"), ("tnef:1", "cv.pdf")]
    );
    assert_eq!(docs[0].data, b"{\\rtf1 Lebenslauf anbei}");
    // A huge declared raw size: not decompressed, winmail.dat kept, the
    // file still there.
    let mut huge = rtf.clone();
    huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let tnef = stream(
        Some(&props(&[p_var(PT_BINARY, PR_RTF_COMPRESSED, &huge)])),
        &[file("cv.pdf")],
    );
    let (docs, complete) = unpack_tnef(&tnef, false);
    assert!(!complete);
    assert_eq!(parts(&docs), vec![("tnef:1", "cv.pdf")]);
    // Beside a body of the mail's own, the RTF is not needed.
    let (docs, complete) = unpack_tnef(&tnef, true);
    assert!(complete);
    assert_eq!(parts(&docs), vec![("tnef:1", "cv.pdf")]);
}

/// A file embedded in the RTF body (`\objdata`, an object pasted into an
/// Outlook mail) is not unpacked: winmail.dat is kept for it, whether or
/// not the mail has a text body of its own.
#[test]
fn tnef_rtf_body_with_an_embedded_object_keeps_winmail_dat() {
    let rtf = compressed_rtf::compress_rtf(
        "{\\rtf1 Anbei {\\object\\objemb{\\*\\objclass Package}{\\*\\objdata 01050000020000000800000050616b6574}}}",
    )
    .expect("rtf");
    let tnef = stream(
        Some(&props(&[p_var(PT_BINARY, PR_RTF_COMPRESSED, &rtf)])),
        &[file("cv.pdf")],
    );
    for has_body in [true, false] {
        let (docs, complete) = unpack_tnef(&tnef, has_body);
        assert!(!complete, "has_body {has_body}: winmail.dat must be kept");
        assert!(parts(&docs).contains(&("tnef:1", "cv.pdf")));
    }
    // Without an object the RTF body beside a text body changes nothing.
    let plain = compressed_rtf::compress_rtf("{\\rtf1 Anbei mein Lebenslauf}").expect("rtf");
    let tnef = stream(
        Some(&props(&[p_var(PT_BINARY, PR_RTF_COMPRESSED, &plain)])),
        &[file("cv.pdf")],
    );
    assert!(unpack_tnef(&tnef, true).1);
}

#[test]
fn mapi_named_and_hostile_props() {
    // A named property with a string name, then one with an id.
    let mut named = (PT_SYSTIME).to_le_bytes().to_vec();
    named.extend(0x8001u16.to_le_bytes());
    named.extend(PSETID_APPOINTMENT);
    named.extend(1u32.to_le_bytes());
    named.extend(6u32.to_le_bytes());
    named.extend(padded(b"x\0y\0z\0"));
    named.extend(0u64.to_le_bytes());
    let mut start = (PT_SYSTIME).to_le_bytes().to_vec();
    start.extend(0x8002u16.to_le_bytes());
    start.extend(PSETID_APPOINTMENT);
    start.extend(0u32.to_le_bytes());
    start.extend(LID_START_WHOLE.to_le_bytes());
    start.extend(((1_773_394_200u64 + 11_644_473_600) * 10_000_000).to_le_bytes());
    let list = props(&[named, start]);
    assert_eq!(mapi_message_props(&list).start, Some(1_773_394_200));
    for cut in 0..list.len() {
        let _ = mapi_message_props(&list[..cut]);
        let _ = mapi_attach_props(&list[..cut]);
    }
    // Dates that are not dates.
    assert_eq!(dtr_seconds(&[0xff; 14]), None);
    assert_eq!(dtr_seconds(&[1, 2]), None);
}

fn p_text(id: u16, text: &str) -> Vec<u8> {
    let mut v: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    v.extend([0, 0]);
    p_var(PT_UNICODE, id, &v)
}

/// A named PT_UNICODE property of PSETID_Address.
fn p_address(lid: u32, text: &str) -> Vec<u8> {
    let mut out = PT_UNICODE.to_le_bytes().to_vec();
    out.extend(0x8000u16.to_le_bytes());
    out.extend(PSETID_ADDRESS);
    out.extend(0u32.to_le_bytes());
    out.extend(lid.to_le_bytes());
    let mut v: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    v.extend([0, 0]);
    out.extend(1u32.to_le_bytes());
    out.extend((v.len() as u32).to_le_bytes());
    out.extend(padded(&v));
    out
}

/// The one document of a winmail.dat holding `class` with these props.
fn item_doc(class: &str, entries: &[Vec<u8>]) -> Vec<TnefDoc> {
    let card = stream_of(class, Some(&props(entries)), &[]);
    unpack_tnef(&stream(None, &[embedded("Karte", &card)]), true).0
}

/// The logical lines of a vCard, each physical line checked: CRLF ends
/// every one, none longer than 75 octets, a folded one goes on after one
/// space.
fn unfolded(card: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(card).expect("UTF-8");
    assert!(text.ends_with("\r\n"));
    let mut lines: Vec<String> = Vec::new();
    for line in text[..text.len() - 2].split("\r\n") {
        assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        assert!(!line.contains(['\r', '\n', '\0']), "{line:?}");
        match (line.strip_prefix(' '), lines.last_mut()) {
            (Some(rest), Some(last)) => last.push_str(rest),
            _ => lines.push(line.to_string()),
        }
    }
    lines
}

#[test]
fn tnef_contact_hostile_values() {
    // A MAPI string ends at its NUL; the name is trimmed.
    let hostile = "Anna\r\nEND:VCARD\r\nBEGIN:VCARD\rFN:Mallory;x,y\\\n\0\u{7}";
    let huge = "ä".repeat(100_000);
    let docs = item_doc(
        "IPM.Contact",
        &[
            p_text(PR_DISPLAY_NAME, hostile),
            p_text(PR_GIVEN_NAME, "An;na"),
            p_text(PR_SURNAME, "Be,rg"),
            p_text(PR_COMPANY_NAME, &huge),
            p_text(PR_TITLE, "\r\n"),
            p_text(PR_MOBILE_TELEPHONE_NUMBER, "+49\n171"),
            p_address(LID_EMAIL_ADDRESS[0], "a@b.example\r\nX-EVIL:1"),
            // An Exchange address without an SMTP one: no EMAIL.
            p_address(LID_EMAIL_ADDRESS[1], "/o=Org/ou=Group/cn=Recipients/cn=x"),
            p_text(PR_BODY, &huge),
        ],
    );
    assert_eq!(parts(&docs), vec![("tnef:1", "Karte.vcf")]);
    assert_eq!(docs[0].mime, "text/vcard");
    let lines = unfolded(&docs[0].data);
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l.split([':', ';']).next().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        [
            "BEGIN", "VERSION", "PRODID", "N", "FN", "ORG", "TEL", "NOTE", "END"
        ]
    );
    assert_eq!(lines[3], "N:Be\\,rg;An\\;na;;;");
    assert_eq!(
        lines[4],
        "FN:Anna\\nEND:VCARD\\nBEGIN:VCARD\\nFN:Mallory\\;x\\,y\\\\"
    );
    assert_eq!(lines[5], format!("ORG:{huge}"));
    assert_eq!(lines[6], "TEL;TYPE=CELL:+49\\n171");
    assert_eq!(lines[7], format!("NOTE:{huge}"));
    // Within the document budget: about the input's size.
    assert!(docs[0].data.len() < 2 * 2 * huge.len() + 4096);
    // A contact form derived from IPM.Contact is a contact; a contact
    // with nothing that names the person, and no title, is its body.
    let docs = item_doc(
        "IPM.Contact.Bewerber",
        &[p_address(LID_EMAIL_ORIGINAL_NAME[2], "jan@example.org")],
    );
    assert_eq!(parts(&docs), vec![("tnef:1", "Karte.vcf")]);
    let lines = unfolded(&docs[0].data);
    assert!(lines.contains(&"EMAIL;TYPE=INTERNET,PREF:jan@example.org".to_string()));
    let card = stream_of(
        "IPM.Contact",
        Some(&props(&[p_text(PR_BODY, "Notiz")])),
        &[],
    );
    let mut object = IID_IMESSAGE.to_vec();
    object.extend(&card);
    let nameless = attachment(
        "",
        None,
        &props(&[
            p_long(PR_ATTACH_METHOD, ATTACH_EMBEDDED_MSG),
            p_var(PT_OBJECT, PR_ATTACH_DATA, &object),
        ]),
    );
    let (docs, _) = unpack_tnef(&stream(None, &[nameless]), true);
    assert_eq!(parts(&docs), vec![("tnef:1", "Outlook item.txt")]);
    // Not a contact: IPM.ContactX, IPM.DistList.
    for class in ["IPM.ContactX", "IPM.DistList"] {
        let docs = item_doc(class, &[p_text(PR_BODY, "Liste")]);
        assert_eq!(parts(&docs), vec![("tnef:1", "Karte.txt")], "{class}");
    }
    // Every truncation of a contact's properties: never a panic.
    let list = props(&[
        p_text(PR_DISPLAY_NAME, "Anna Berg"),
        p_address(LID_EMAIL_ADDRESS[0], "anna@example.org"),
        p_text(PR_BUSINESS_TELEPHONE_NUMBER, "0221 1"),
    ]);
    for cut in 0..list.len() {
        let _ = mapi_message_props(&list[..cut]);
    }
}

/// A compound file with these streams at its root, made with the `cfb`
/// crate, behind IID_IStorage as PR_ATTACH_DATA_OBJ holds it.
fn storage(streams: &[(&str, &[u8])]) -> (Vec<u8>, Vec<u8>) {
    let mut file = Cfb::create(IoCursor::new(Vec::new())).expect("create");
    for (name, data) in streams {
        let mut s = file.create_stream(name).expect("stream");
        s.write_all(data).expect("write");
    }
    file.flush().expect("flush");
    let cfb = file.into_inner().into_inner();
    let mut object = vec![0x0b, 0, 0, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46];
    object.extend(&cfb);
    (object, cfb)
}

#[test]
fn tnef_ole_package_stream_and_office_storages() {
    // A `Package` stream holding a PDF: the PDF, typed by its bytes and
    // named after the attachment's title.
    let (object, _) = storage(&[("/\u{1}CompObj", b"\x01\x00\xfe\xff"), ("/Package", PDF)]);
    let (docs, complete) = unpack_tnef(&stream(None, &[ole(&object)]), true);
    assert!(complete);
    assert_eq!(parts(&docs), vec![("tnef:1", "Paket.pdf")]);
    assert_eq!(
        (docs[0].mime.as_str(), &docs[0].data[..]),
        ("application/pdf", PDF)
    );
    // Office 97 storages: the compound file itself (without the interface
    // id before it), typed from the stream that makes it one.
    for (stream_name, mime, name) in [
        ("/WordDocument", "application/msword", "Paket.doc"),
        ("/Workbook", "application/vnd.ms-excel", "Paket.xls"),
        ("/Book", "application/vnd.ms-excel", "Paket.xls"),
        (
            "/PowerPoint Document",
            "application/vnd.ms-powerpoint",
            "Paket.ppt",
        ),
    ] {
        let (object, cfb) = storage(&[
            ("/\u{1}CompObj", b"\x01\x00\xfe\xff"),
            (stream_name, b"\xec\xa5\xc1\x00 some document"),
            ("/1Table", b"table"),
        ]);
        let (docs, complete) = unpack_tnef(&stream(None, &[ole(&object)]), true);
        assert!(complete, "{stream_name}");
        assert_eq!(parts(&docs), vec![("tnef:1", name)], "{stream_name}");
        assert_eq!(docs[0].mime, mime, "{stream_name}");
        assert_eq!(docs[0].data, cfb, "{stream_name}");
        assert!(docs[0].data.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]));
    }
    // Office's stream below the root (inside a sub-storage) does not make
    // the storage a document: not unpacked, winmail.dat kept.
    let mut file = Cfb::create(IoCursor::new(Vec::new())).expect("create");
    file.create_storage("/ObjectPool").expect("storage");
    let mut s = file
        .create_stream("/ObjectPool/WordDocument")
        .expect("stream");
    s.write_all(b"doc").expect("write");
    drop(s);
    file.flush().expect("flush");
    let nested = file.into_inner().into_inner();
    let (docs, complete) = unpack_tnef(&stream(None, &[ole(&nested)]), true);
    assert!(docs.is_empty() && !complete);
}

/// A zip of stored (uncompressed) entries, local headers only: the first
/// bytes of an Office Open XML file.
fn zip_of(names: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for name in names {
        out.extend(b"PK\x03\x04");
        out.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend([0u8; 12]); // crc, sizes: an empty entry
        out.extend((name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(name.as_bytes());
    }
    out
}

#[test]
fn tnef_ole_package_of_office_open_xml_is_that_document() {
    // Outlook embeds a .docx/.xlsx/.pptx as a `Package` stream holding the
    // file: a Word, Excel or PowerPoint document, not a `.zip`.
    for (entries, mime, name) in [
        (
            ["[Content_Types].xml", "_rels/.rels", "word/document.xml"],
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "Paket.docx",
        ),
        (
            ["[Content_Types].xml", "_rels/.rels", "xl/workbook.xml"],
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "Paket.xlsx",
        ),
        (
            ["[Content_Types].xml", "_rels/.rels", "ppt/presentation.xml"],
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "Paket.pptx",
        ),
        (
            ["readme.txt", "src/word/x.xml", "docs/xl/y.xml"],
            "application/zip",
            "Paket.zip",
        ),
    ] {
        let zip = zip_of(&entries);
        let (object, _) = storage(&[("/Package", &zip)]);
        let (docs, complete) = unpack_tnef(&stream(None, &[ole(&object)]), true);
        assert!(complete, "{name}");
        assert_eq!(parts(&docs), vec![("tnef:1", name)]);
        assert_eq!(docs[0].mime, mime);
        assert_eq!(docs[0].data, zip);
    }
    // Local headers cut anywhere, or claiming names past the end: typed
    // as a zip at most, never a panic.
    let zip = zip_of(&["[Content_Types].xml", "word/document.xml"]);
    for cut in 0..zip.len() {
        let _ = sniff(&zip[..cut]);
    }
    let mut lying = zip_of(&["word/document.xml"]);
    lying[26..28].copy_from_slice(&u16::MAX.to_le_bytes());
    assert_eq!(sniff(&lying), Some("application/zip"));
}
