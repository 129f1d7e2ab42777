//! Pure pieces of mail both directions share: addresses, the parsed form
//! of a message. No I/O, no SQL, no policy.

pub mod address;
pub mod filename;
pub mod message_id;
pub mod mime;
pub mod parsed;
