//! jobmail's own files beside its data: the key behind reply tokens,
//! subject tags and VERP addresses (`reply-token.key` in the state
//! directory, 32 random bytes, mode 0600, created at first start, written
//! atomically), its copies for backup and restore (`FILE.key` beside a
//! backup, staged and put in place by a restore, the old one kept aside),
//! and the instance lock that keeps a second `serve` off the same store
//! (`<database>.serve-lock`, an flock held while serving, with the daemon's
//! pid in it for `status` and `reload`).
//!
//! Only file I/O; no SQL, no sockets. The key never appears in logs or
//! output.

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
            Ok(TokenKey::new(read_key(&mut file, &path)?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(dir, &path),
        Err(e) => Err(e),
    }
}

/// The 32 bytes of a key file (exactly 32, or an error naming `path`).
fn read_key(file: &mut std::fs::File, path: &Path) -> std::io::Result<[u8; 32]> {
    let mut bytes = Vec::with_capacity(33);
    Read::by_ref(file).take(33).read_to_end(&mut bytes)?;
    bytes.try_into().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} must hold exactly 32 bytes", path.display()),
        )
    })
}

fn read_key_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    read_key(&mut file, path)
}

/// Writes `bytes` to `path` as the key files are written: whole, mode
/// 0600, under a temporary name in the same directory, synced, then
/// renamed over `path` and the directory synced.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        // An old temporary file keeps its mode through `create`.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    std::fs::File::open(dir)?.sync_all()
}

/// The key file a backup `file` has beside it: `FILE.key`.
pub fn key_beside(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// Copies the key in `dir` to `dest` (a backup's `FILE.key`), mode 0600,
/// complete or not at all.
pub fn copy_key(dir: &Path, dest: &Path) -> std::io::Result<()> {
    let key = read_key_file(&dir.join(KEY_FILE))?;
    write_private(dest, &key)
}

/// The key a restore puts in place, staged in `dir` until the restore's
/// commit point (`reply-token.key.restore-new`).
fn staged_key(dir: &Path) -> PathBuf {
    dir.join(format!("{KEY_FILE}.restore-new"))
}

/// Where a restore keeps the key it replaces.
pub fn key_kept_aside(dir: &Path, stamp: &str) -> PathBuf {
    dir.join(format!("{KEY_FILE}.before-restore-{stamp}"))
}

/// Reads a backup's key file (`backup_key`, 32 bytes) and stages it in
/// `dir` for [`install_staged_key`].
pub fn stage_key(backup_key: &Path, dir: &Path) -> std::io::Result<()> {
    let key = read_key_file(backup_key)?;
    write_private(&staged_key(dir), &key)
}

/// Removes a staged key a restore left before its commit point.
pub fn discard_staged_key(dir: &Path) {
    let _ = std::fs::remove_file(staged_key(dir));
}

/// Puts the staged key in place; the current one, if any, stays as
/// [`key_kept_aside`]. Idempotent: run again after a crash it finishes
/// what is left (nothing, once the staged key is gone). Returns where the
/// old key is kept, if there was one.
pub fn install_staged_key(dir: &Path, stamp: &str) -> std::io::Result<Option<PathBuf>> {
    let current = dir.join(KEY_FILE);
    let aside = key_kept_aside(dir, stamp);
    let staged = staged_key(dir);
    if staged.exists() {
        if current.exists() && !aside.exists() {
            // A second name for the old key: at no moment is there no key
            // (without hard links a rename; the marker finishes it).
            std::fs::hard_link(&current, &aside).or_else(|_| std::fs::rename(&current, &aside))?;
        }
        std::fs::rename(&staged, &current)?;
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(aside.exists().then_some(aside))
}

fn create(dir: &Path, path: &PathBuf) -> std::io::Result<TokenKey> {
    std::fs::create_dir_all(dir)?;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(format!("no randomness: {e}")))?;
    // Written whole to a file of its own, made durable, then linked in
    // place: a crash never leaves a half-written key behind, and of two
    // processes starting at once the first link wins, the other reads it.
    let temporary = dir.join(format!(".{KEY_FILE}.{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(&key)?;
    file.sync_all()?;
    drop(file);
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return load_or_create_key(dir),
        Err(e) => return Err(e),
    }
    std::fs::File::open(dir)?.sync_all()?;
    tracing::info!(path = %path.display(), "created the reply-token key");
    Ok(TokenKey::new(key))
}

/// Held while `serve` runs: no second `serve` on the same store, which
/// would claim and recover the first one's mail in flight.
#[derive(Debug)]
pub struct InstanceLock {
    _file: std::fs::File,
}

/// `<database>.serve-lock`.
fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".serve-lock");
    PathBuf::from(name)
}

/// How long `serve` tries for the lock before it says who holds it: a
/// `status` or `reload` looking whether a daemon runs holds it for an
/// instant (see [`instance_holder`]).
const LOCK_TRIES: u32 = 20;
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// Takes the instance lock of the store at `database`, or says who holds
/// it; the daemon's pid is written into the lock file.
pub fn lock_instance(database: &Path) -> std::io::Result<InstanceLock> {
    use std::os::fd::AsRawFd;
    let path = lock_path(database);
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)?;
    let mut tries = 0;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    while unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        tries += 1;
        if tries < LOCK_TRIES {
            std::thread::sleep(LOCK_RETRY);
            continue;
        }
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        return Err(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            format!(
                "another jobmail serve is running on this store ({} holds {})",
                match holder.trim() {
                    "" => "a process".to_string(),
                    pid => format!("pid {pid}"),
                },
                path.display()
            ),
        ));
    }
    file.set_len(0)?;
    writeln!(file, "{}", std::process::id())?;
    Ok(InstanceLock { _file: file })
}

/// The pid of the `serve` that holds the instance lock of the store at
/// `database`; `None` when none does (no daemon runs on this store). The
/// pid is only trusted while the lock is held: a daemon killed with -9
/// leaves its pid in the file, not its lock.
pub fn instance_holder(database: &Path) -> std::io::Result<Option<u32>> {
    use std::os::fd::AsRawFd;
    let path = lock_path(database);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // A shared lock conflicts only with the daemon's exclusive one. Got,
    // it is given back at once (closing the file does).
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        return Ok(None);
    }
    let error = std::io::Error::last_os_error();
    if error.kind() != std::io::ErrorKind::WouldBlock {
        return Err(error);
    }
    let text = std::fs::read_to_string(&path)?;
    match text.trim().parse::<u32>() {
        Ok(pid) => Ok(Some(pid)),
        // Taken, the pid not yet written: the daemon is starting.
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            format!(
                "a jobmail serve is starting on this store ({} holds no pid yet); try again",
                path.display()
            ),
        )),
    }
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
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&state)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from(KEY_FILE)]);
    }

    #[test]
    fn one_instance_lock_per_store() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("jobmail.db");
        let first = lock_instance(&db).unwrap();
        let second = lock_instance(&db).unwrap_err();
        assert!(
            second.to_string().contains("another jobmail serve")
                && second.to_string().contains(&std::process::id().to_string()),
            "{second}"
        );
        drop(first);
        assert!(
            lock_instance(&db).is_ok(),
            "free again once the first is gone"
        );
    }

    #[test]
    fn the_lock_holder_is_known_only_while_it_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("jobmail.db");
        assert_eq!(instance_holder(&db).unwrap(), None, "no lock file yet");
        let lock = lock_instance(&db).unwrap();
        assert_eq!(instance_holder(&db).unwrap(), Some(std::process::id()));
        // Looking does not take the lock away, nor keep a new serve out.
        assert_eq!(instance_holder(&db).unwrap(), Some(std::process::id()));
        drop(lock);
        // The pid is still in the file; nobody holds the lock.
        assert_eq!(instance_holder(&db).unwrap(), None);
        let probe = std::thread::spawn({
            let db = db.clone();
            move || {
                for _ in 0..50 {
                    let _ = instance_holder(&db);
                }
            }
        });
        assert!(lock_instance(&db).is_ok(), "taken beside a busy prober");
        probe.join().unwrap();
    }
}
