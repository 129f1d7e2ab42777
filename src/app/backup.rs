//! Backup and restore of a jobmail instance: the database and the
//! reply-token key beside it (README, "Backup and restore").
//!
//! A backup is `FILE` (an ordinary SQLite file, checked) and `FILE.key`
//! (the key, mode 0600). The key is put in place first and the database
//! last, so a `FILE` that exists is a complete backup.
//!
//! A restore, with no `serve` running (it holds the instance lock
//! throughout):
//! 1. stages the backup beside the database (`<database>.restore-new`:
//!    copied, integrity checked, refused if from a newer jobmail, migrated)
//!    and its key beside the current one (`reply-token.key.restore-new`);
//! 2. folds the current database's WAL into its file;
//! 3. writes the marker `<database>.restore`: the commit point. Before it,
//!    a crash leaves the old store untouched (the staged files are removed
//!    at the next restore); after it, the restore is finished by whoever
//!    comes next (this command again, or `serve` at its start);
//! 4. gives the current key and database a second name
//!    (`….before-restore-STAMP`) and renames the staged ones over them:
//!    at no moment is there no database or no key;
//! 5. removes the marker.
//!
//! No SQL and no file I/O here: the store does the database's part, the
//! `secrets` module the key's.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{App, Error, Result};
use crate::config::Config;
use crate::store::StoreError;
use crate::store::backup::{self as store_backup, BackupInfo, Method};

/// A backup made.
#[derive(Debug, Clone, Serialize)]
pub struct BackupDone {
    pub file: PathBuf,
    pub key_file: PathBuf,
    #[serde(flatten)]
    pub info: BackupInfo,
    pub took_ms: i64,
}

/// A restore done.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub backup: Option<PathBuf>,
    pub database: PathBuf,
    /// The schema version of the backup, and the one it was migrated to.
    pub schema_from: Option<i64>,
    pub schema_to: Option<i64>,
    pub messages: Option<i64>,
    /// Where the replaced database and key are kept (none on a new machine).
    pub previous_database: Option<PathBuf>,
    pub previous_key: Option<PathBuf>,
}

fn io(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Store(StoreError(format!("{what}: {e}")))
}

/// A time stamp for file names: `20261202T004938Z`.
fn stamp(now_ms: i64) -> String {
    crate::clock::rfc3339(now_ms)
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

impl App {
    /// `jobmail backup FILE`: a consistent copy of the running store and
    /// its key (see the module comment).
    pub fn backup(&self, file: &Path, method: Method) -> Result<BackupDone> {
        let started = crate::clock::now_ms();
        let store = self.store()?;
        let staged = store.backup(file, method)?;
        let key_file = crate::secrets::key_beside(file);
        crate::secrets::copy_key(&self.config.server.state_dir, &key_file)
            .map_err(io("cannot copy the reply-token key"))?;
        let info = staged.publish()?;
        Ok(BackupDone {
            file: file.to_path_buf(),
            key_file,
            info,
            took_ms: crate::clock::now_ms() - started,
        })
    }

    /// `jobmail restore FILE`: puts a backup and its key in place of the
    /// current store, which is kept aside (see the module comment).
    /// Refused while a `serve` runs on this store.
    pub fn restore(&self, file: &Path) -> Result<Restored> {
        let config = &self.config;
        let database = &config.server.database;
        let _lock = crate::secrets::lock_instance(database).map_err(|e| {
            Error::Invalid(format!(
                "{e}; stop it first (systemctl stop jobmail), then restore"
            ))
        })?;
        // A restore interrupted after its commit point is finished first;
        // one interrupted before it left only staged files.
        finish_pending(config)?;
        store_backup::discard_staged(database);
        crate::secrets::discard_staged_key(&config.server.state_dir);

        let key_file = crate::secrets::key_beside(file);
        let staged = store_backup::stage_restore(file, database)?;
        let staged_key = crate::secrets::stage_key(&key_file, &config.server.state_dir).map_err(
            io("cannot read the backup's key (a backup is FILE and FILE.key)"),
        );
        if let Err(e) = staged_key {
            store_backup::discard_staged(database);
            return Err(e);
        }
        // No serve runs: the old database becomes one file to keep aside
        // (if it cannot be opened, its WAL is kept aside with it).
        store_backup::fold_wal(database);
        let stamp = stamp(crate::clock::now_ms());
        store_backup::mark_restore(database, &stamp)?;
        let (previous_database, previous_key) = finish(config, &stamp)?;
        Ok(Restored {
            backup: Some(file.to_path_buf()),
            database: database.clone(),
            schema_from: Some(staged.info.schema),
            schema_to: Some(staged.migrated_to),
            messages: Some(staged.info.messages),
            previous_database,
            previous_key,
        })
    }
}

/// Finishes a restore that passed its commit point, if there is one; for
/// `serve` at its start, which holds the instance lock.
pub fn finish_pending(config: &Config) -> Result<Option<Restored>> {
    let database = &config.server.database;
    let Some(stamp) = store_backup::pending_restore(database)? else {
        return Ok(None);
    };
    let (previous_database, previous_key) = finish(config, &stamp)?;
    Ok(Some(Restored {
        backup: None,
        database: database.clone(),
        schema_from: None,
        schema_to: None,
        messages: None,
        previous_database,
        previous_key,
    }))
}

/// Steps 4 and 5: idempotent, so that a crash anywhere is finished by
/// running them again.
fn finish(config: &Config, stamp: &str) -> Result<(Option<PathBuf>, Option<PathBuf>)> {
    let database = &config.server.database;
    let previous_key = crate::secrets::install_staged_key(&config.server.state_dir, stamp)
        .map_err(io("cannot put the backup's key in place"))?;
    let previous_database = store_backup::install_staged(database, stamp)?;
    store_backup::end_restore(database)?;
    Ok((previous_database, previous_key))
}
