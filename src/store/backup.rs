//! Backups of the database while the daemon runs, and the database side
//! of a restore.
//!
//! A backup is a consistent copy made by one read transaction (in WAL
//! mode a reader never blocks the writer), written under a temporary name
//! beside the target, checked with `PRAGMA integrity_check`, synced, and
//! only then renamed to the name asked for: a failed backup leaves no file
//! that looks complete ([`Staged`] removes its temporary file when dropped
//! unpublished).
//!
//! File I/O and SQL only: which files make a backup (the key beside it)
//! and in which order they are put in place is `app::backup`'s.

#[allow(unused_imports)]
use super::*;
use rusqlite::Connection;
use std::path::PathBuf;

/// How [`Store::backup`] copies the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// SQLite's online backup API, `pages` per step (`-1`: all in one).
    Api { pages: i32 },
    /// `VACUUM INTO`: a compacted copy.
    VacuumInto,
}

/// What a checked copy holds.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct BackupInfo {
    /// Size of the copy in bytes.
    pub bytes: u64,
    /// Its schema version (`PRAGMA user_version`).
    pub schema: i64,
    pub messages: i64,
    pub outbox_items: i64,
    /// Times the online backup started over because the database changed
    /// between two of its steps.
    pub restarts: u32,
    /// How long the copy took (the read transaction on the database), and
    /// the check of the copy after it.
    pub copy_ms: u64,
    pub check_ms: u64,
}

/// A checked copy under a temporary name: [`Staged::publish`] renames it
/// to its target; dropped unpublished, it is removed.
#[derive(Debug)]
pub struct Staged {
    temp: PathBuf,
    target: PathBuf,
    pub info: BackupInfo,
    published: bool,
}

impl Staged {
    /// Puts the copy in place under its target name (atomically, replacing
    /// an older backup of that name) and makes the rename durable.
    pub fn publish(mut self) -> Result<BackupInfo> {
        std::fs::rename(&self.temp, &self.target).map_err(|e| {
            StoreError(format!(
                "cannot rename {} to {}: {e}",
                self.temp.display(),
                self.target.display()
            ))
        })?;
        self.published = true;
        sync_dir(&self.target)?;
        Ok(self.info.clone())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.published {
            remove_with_sidecars(&self.temp);
        }
    }
}

/// `path` with `suffix` appended to its file name (`x.db` → `x.db-wal`).
pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Removes a database file and the journal, WAL and shared-memory files
/// SQLite may have left beside it; what does not exist is fine.
pub(super) fn remove_with_sidecars(path: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(path, suffix));
    }
}

/// Makes a rename or creation in `file`'s directory durable.
pub(super) fn sync_dir(file: &Path) -> Result<()> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError(format!("cannot sync {}: {e}", dir.display())))
}

/// The absolute form of a path that may not exist yet (its directory must).
fn absolute(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| StoreError(format!("{} is not a file name", path.display())))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir = dir
        .canonicalize()
        .map_err(|e| StoreError(format!("{}: {e}", dir.display())))?;
    Ok(dir.join(name))
}

/// Checks a copy: integrity, schema version, what it holds; leaves it an
/// ordinary single-file database (no WAL flag), synced.
pub(super) fn check_copy(path: &Path, restarts: u32) -> Result<BackupInfo> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))?;
    let problems: Vec<String> = {
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    if problems != ["ok"] {
        let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
        return Err(StoreError(format!(
            "{} fails its integrity check: {}",
            path.display(),
            shown.join("; ")
        )));
    }
    let schema: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let is_jobmail = conn
        .row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('messages', 'outbox')",
            [],
            |r| r.get::<_, i64>(0),
        )
        .is_ok_and(|n| n == 2);
    if schema < 1 || !is_jobmail {
        return Err(StoreError(format!(
            "{} is not a jobmail database (schema version {schema})",
            path.display()
        )));
    }
    let messages: i64 = conn.row("SELECT count(*) FROM messages", [], |r| r.get(0))?;
    let outbox_items: i64 = conn.row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
    // One file, whatever the source's journal mode: the copy can be moved,
    // opened and checked without a -wal beside it.
    let _: String = conn.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get(0))?;
    drop(conn);
    let file = std::fs::File::open(path)?;
    file.sync_all()?;
    let bytes = file.metadata()?.len();
    Ok(BackupInfo {
        bytes,
        schema,
        messages,
        outbox_items,
        restarts,
        copy_ms: 0,
        check_ms: 0,
    })
}

/// The schema version this jobmail writes: a backup of a higher one is
/// from a newer jobmail.
pub fn known_schema() -> i64 {
    schema::MIGRATIONS.len() as i64
}

/// Sets a database's schema version, as a newer jobmail would have.
#[cfg(test)]
pub fn set_schema_version_for_tests(path: &Path, version: i64) {
    let conn = Connection::open(path).expect("open");
    conn.pragma_update(None, "user_version", version)
        .expect("user_version");
}

/// A backup running on a database, seen across processes: a backup holds
/// a shared flock on `<database>.backup-lock` while its read transaction
/// pins the WAL, and the writer asks before it checkpoints in its own
/// commit (a RESTART checkpoint would wait for the backup's reader, up to
/// the busy timeout, on every commit, and could not shorten the WAL).
pub(super) struct BackupLock {
    file: std::fs::File,
}

impl BackupLock {
    /// Opens (creating, readable by all: a flock needs no write access)
    /// the lock file of `database`.
    pub(super) fn open(database: &Path) -> Result<BackupLock> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = with_suffix(database, ".backup-lock");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            .or_else(|_| std::fs::File::open(&path))
            .map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
        Ok(BackupLock { file })
    }

    fn flock(&self, operation: libc::c_int) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        if unsafe { libc::flock(self.file.as_raw_fd(), operation) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Marks a backup running until this lock is dropped.
    pub(super) fn hold(self) -> Result<BackupLock> {
        self.flock(libc::LOCK_SH)?;
        Ok(self)
    }

    /// Whether a backup is running now (a probe that never waits).
    pub(super) fn backup_running(&self) -> bool {
        match self.flock(libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => {
                let _ = self.flock(libc::LOCK_UN);
                false
            }
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        }
    }
}

/// Most times an online backup may start over before it gives up.
const MAX_RESTARTS: u32 = 1000;

impl Store {
    /// A consistent copy of the database for `target`, checked and synced
    /// under a temporary name in the same directory; nothing is at
    /// `target` until [`Staged::publish`]. The database itself, its WAL or
    /// its lock are refused as a target.
    pub fn backup(&self, target: &Path, method: Method) -> Result<Staged> {
        let target = absolute(target)?;
        if let Some(db) = self.conn.path().filter(|p| !p.is_empty()) {
            let db = Path::new(db).canonicalize()?;
            for suffix in ["", "-wal", "-shm", "-journal", ".serve-lock"] {
                if target == with_suffix(&db, suffix) {
                    return Err(StoreError(format!(
                        "{} is the database's own file; back up to another name",
                        target.display()
                    )));
                }
            }
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = target.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        remove_with_sidecars(&temp);
        let mut staged = Staged {
            temp,
            target,
            info: BackupInfo::default(),
            published: false,
        };
        // The writer does not wait for this backup's reader (BackupLock);
        // without the lock file (another user's) the backup runs all the same.
        let started = std::time::Instant::now();
        let running = BackupLock::open(Path::new(self.conn.path().unwrap_or_default()))
            .and_then(BackupLock::hold)
            .ok();
        let restarts = match method {
            Method::Api { pages } => self.copy_online(&staged.temp, pages)?,
            Method::VacuumInto => {
                let temp = staged
                    .temp
                    .to_str()
                    .ok_or_else(|| StoreError(format!("{} is not UTF-8", staged.temp.display())))?;
                self.conn.execute("VACUUM INTO ?1", [temp])?;
                0
            }
        };
        drop(running);
        let copy_ms = started.elapsed().as_millis() as u64;
        staged.info = check_copy(&staged.temp, restarts)?;
        staged.info.copy_ms = copy_ms;
        staged.info.check_ms = started.elapsed().as_millis() as u64 - copy_ms;
        Ok(staged)
    }

    /// The online backup API into `dest`: returns how often it restarted.
    fn copy_online(&self, dest: &Path, pages: i32) -> Result<u32> {
        use rusqlite::backup::{Backup, StepResult};
        let mut dst = Connection::open(dest)
            .map_err(|e| StoreError(format!("cannot create {}: {e}", dest.display())))?;
        let backup = Backup::new(&self.conn, &mut dst)?;
        let mut restarts = 0;
        let mut remaining = i32::MAX;
        loop {
            match backup.step(pages)? {
                StepResult::Done => return Ok(restarts),
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                _ => {}
            }
            let now = backup.progress().remaining;
            if now > remaining {
                restarts += 1;
                if restarts > MAX_RESTARTS {
                    return Err(StoreError(format!(
                        "the database changed under the backup {restarts} times; try again when it is quieter"
                    )));
                }
            }
            remaining = now;
        }
    }
}

// --- The database side of a restore (`app::backup::restore` says in
// which order, with the key): a backup staged beside the database, a
// marker as the commit point, then the staged file renamed in place.

/// The staged database of a restore.
fn staged(database: &Path) -> PathBuf {
    with_suffix(database, ".restore-new")
}

/// The restore marker: written once everything is staged, removed when
/// everything is in place. While it exists a restore is under way.
fn marker(database: &Path) -> PathBuf {
    with_suffix(database, ".restore")
}

/// Where a restore keeps the database it replaces.
pub fn kept_aside(database: &Path, stamp: &str) -> PathBuf {
    with_suffix(database, &format!(".before-restore-{stamp}"))
}

#[derive(Debug, Serialize, serde::Deserialize)]
struct Marker {
    stamp: String,
}

/// What a staged restore holds: the backup as checked, the schema
/// version it had, and the version it was brought up to.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StagedRestore {
    pub info: BackupInfo,
    pub migrated_to: i64,
}

/// Copies `backup` beside `database` (as `<database>.restore-new`),
/// checks the copy (integrity, a jobmail database, a schema this jobmail
/// knows: a backup from a newer jobmail is refused), brings its schema up
/// to date as every open does, and leaves it one synced file. Nothing of
/// the current database is touched; on any error the copy is removed.
pub fn stage_restore(backup: &Path, database: &Path) -> Result<StagedRestore> {
    if !backup.is_file() {
        return Err(StoreError(format!("no backup at {}", backup.display())));
    }
    if std::fs::metadata(with_suffix(backup, "-wal")).is_ok_and(|m| m.len() > 0) {
        return Err(StoreError(format!(
            "{} has a -wal file beside it: it is open, or was not closed; a jobmail backup is one file",
            backup.display()
        )));
    }
    if let Some(dir) = database.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let path = staged(database);
    let mut staging = Staged {
        temp: path.clone(),
        target: path.clone(),
        info: BackupInfo::default(),
        published: false,
    };
    remove_with_sidecars(&path);
    std::fs::copy(backup, &path).map_err(|e| {
        StoreError(format!(
            "cannot copy {} to {}: {e}",
            backup.display(),
            path.display()
        ))
    })?;
    let info = check_copy(&path, 0)?;
    let known = known_schema();
    if info.schema > known {
        return Err(StoreError(format!(
            "{} is from a newer jobmail (schema version {}, this jobmail knows {known}); restore it with that version",
            backup.display(),
            info.schema
        )));
    }
    {
        // As every open does: migrations, WAL mode. Then back to one file.
        let conn = open(&path)?;
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        let _: String =
            conn.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get(0))?;
    }
    std::fs::File::open(&path)?.sync_all()?;
    sync_dir(&path)?;
    // Kept: the marker and the install rename it from here.
    staging.published = true;
    Ok(StagedRestore {
        info,
        migrated_to: known,
    })
}

/// Removes what a restore staged before its commit point.
pub fn discard_staged(database: &Path) {
    remove_with_sidecars(&staged(database));
}

/// Folds the current database's WAL into its file, so that it is one file
/// to keep aside. `false` when it cannot be opened (a damaged database,
/// the reason for many a restore): its WAL is then kept aside beside it.
/// Only while no `serve` runs (the caller holds the instance lock).
pub fn fold_wal(database: &Path) -> bool {
    if !database.exists() {
        return true;
    }
    let busy = Connection::open(database).and_then(|conn| {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        })
    });
    matches!(busy, Ok(0))
}

/// The commit point of a restore: from here on it is finished, now or, after
/// a crash, by the next `serve` or `restore` ([`pending_restore`]).
pub fn mark_restore(database: &Path, stamp: &str) -> Result<()> {
    let path = marker(database);
    let text = serde_json::to_string(&Marker {
        stamp: stamp.to_string(),
    })
    .map_err(|e| StoreError(e.to_string()))?;
    let temp = with_suffix(&path, ".partial");
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, &path)?;
    sync_dir(&path)
}

/// The stamp of a restore that passed its commit point and is not
/// finished yet, if there is one.
pub fn pending_restore(database: &Path) -> Result<Option<String>> {
    let path = marker(database);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let marker: Marker = serde_json::from_str(&text)
                .map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
            Ok(Some(marker.stamp))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError(format!("{}: {e}", path.display()))),
    }
}

/// Puts the staged database in place: the current one keeps a second
/// name ([`kept_aside`], with its WAL if that could not be folded in), then
/// the staged file is renamed over it, so that at no moment is there no
/// database. Idempotent: after a crash it finishes what is left. Returns
/// where the old database is kept, if there was one.
pub fn install_staged(database: &Path, stamp: &str) -> Result<Option<PathBuf>> {
    let aside = kept_aside(database, stamp);
    let new = staged(database);
    if new.exists() {
        let wal = with_suffix(database, "-wal");
        match std::fs::metadata(&wal) {
            // Frames the old database could not take in: they stay with it.
            Ok(m) if m.len() > 0 => {
                let aside_wal = with_suffix(&aside, "-wal");
                if !aside_wal.exists() {
                    std::fs::rename(&wal, &aside_wal)?;
                } else {
                    std::fs::remove_file(&wal)?;
                }
            }
            Ok(_) => std::fs::remove_file(&wal)?,
            Err(_) => {}
        }
        let _ = std::fs::remove_file(with_suffix(database, "-shm"));
        if database.exists() && !aside.exists() {
            // A second name, so that the database never goes missing; where
            // the file system has no hard links, a rename (a crash before
            // the next rename is finished by the marker all the same).
            std::fs::hard_link(database, &aside)
                .or_else(|_| std::fs::rename(database, &aside))
                .map_err(|e| {
                    StoreError(format!(
                        "cannot keep {} as {}: {e}",
                        database.display(),
                        aside.display()
                    ))
                })?;
        }
        std::fs::rename(&new, database)?;
        sync_dir(database)?;
    }
    Ok(aside.exists().then_some(aside))
}

/// The end of a restore: the marker goes.
pub fn end_restore(database: &Path) -> Result<()> {
    let path = marker(database);
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(&path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_sees_a_backup_running_only_while_it_copies() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("j.db");
        let writer = BackupLock::open(&db).unwrap();
        assert!(!writer.backup_running());
        let backup = BackupLock::open(&db).unwrap().hold().unwrap();
        assert!(writer.backup_running());
        // Two backups at once share it.
        let second = BackupLock::open(&db).unwrap().hold().unwrap();
        drop(backup);
        assert!(writer.backup_running());
        drop(second);
        assert!(!writer.backup_running());
        // The probe takes nothing: a backup can start right after it.
        let third = BackupLock::open(&db).unwrap().hold().unwrap();
        assert!(writer.backup_running());
        drop(third);
    }
}
