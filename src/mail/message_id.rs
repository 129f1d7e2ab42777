//! Message-IDs: checking one from outside before it goes into a header of
//! ours, and making new ones. Pure but for the clock and randomness of a
//! new UUIDv7.

/// A Message-ID from outside, if it is safe to put into a header: printable
/// ASCII without spaces or angle brackets, one `@`, at most 250 characters.
pub fn valid_message_id(id: &str) -> Option<&str> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let ok = !id.is_empty()
        && id.len() <= 250
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
        && id.matches('@').count() == 1;
    ok.then_some(id)
}

/// A new Message-ID of ours in the domain given.
pub fn new_message_id(domain: &str) -> String {
    format!("jobmail.{}@{domain}", uuid::Uuid::now_v7().simple())
}
