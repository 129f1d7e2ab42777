//! jobmail's own secrets in its state directory: the key behind reply
//! tokens and subject tags (`reply-token.key`, 32 random bytes, mode 0600,
//! created at first start).
//!
//! Only file I/O on that directory; no SQL, no sockets. The key never
//! appears in logs or output.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::matcher::token::TokenKey;

pub const KEY_FILE: &str = "reply-token.key";

/// Reads the key from `dir`, creating it (and `dir`) on first use.
pub fn load_or_create_key(dir: &Path) -> std::io::Result<TokenKey> {
    let path = dir.join(KEY_FILE);
    match std::fs::File::open(&path) {
        Ok(mut file) => {
            let mode = file.metadata()?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "key file is readable by others; chmod 600 it");
            }
            let mut bytes = Vec::with_capacity(33);
            Read::by_ref(&mut file).take(33).read_to_end(&mut bytes)?;
            let key: [u8; 32] = bytes.try_into().map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} must hold exactly 32 bytes", path.display()),
                )
            })?;
            Ok(TokenKey::new(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(dir, &path),
        Err(e) => Err(e),
    }
}

fn create(dir: &Path, path: &PathBuf) -> std::io::Result<TokenKey> {
    std::fs::create_dir_all(dir)?;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(format!("no randomness: {e}")))?;
    // create_new: two starting processes cannot both write a key.
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return load_or_create_key(dir),
        Err(e) => return Err(e),
    };
    file.write_all(&key)?;
    file.sync_all()?;
    std::fs::File::open(dir)?.sync_all()?;
    tracing::info!(path = %path.display(), "created the reply-token key");
    Ok(TokenKey::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let a = load_or_create_key(&state).unwrap();
        let mode = std::fs::metadata(state.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = load_or_create_key(&state).unwrap();
        assert_eq!(a.reply_token(7), b.reply_token(7));
        std::fs::write(state.join(KEY_FILE), b"short").unwrap();
        assert!(load_or_create_key(&state).is_err());
    }
}
