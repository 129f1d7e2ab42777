//! `jobmail backup FILE` and `jobmail restore FILE`: the store and its
//! reply-token key, copied while the daemon runs, put back while it is
//! stopped (README, "Backup and restore").

use std::path::PathBuf;

use clap::Args;

use super::output::print_json;
use crate::app::App;
use crate::store::backup::Method;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where the copy goes; the key goes beside it as FILE.key
    pub file: PathBuf,
    #[arg(long)]
    pub json: bool,
    /// How the copy is made: the online backup API in one step (the
    /// default, measured fastest and lightest on ingest), in steps of 256
    /// pages, or VACUUM INTO; the others only for `bench/backup`
    #[arg(long, hide = true, default_value = "api")]
    pub method: String,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A backup made by `jobmail backup` (FILE.key must be beside it)
    pub file: PathBuf,
    #[arg(long)]
    pub json: bool,
}

pub fn backup(app: &App, args: &BackupArgs) -> anyhow::Result<()> {
    let method = match args.method.as_str() {
        "api" => Method::Api { pages: -1 },
        "api-stepped" => Method::Api { pages: 256 },
        "vacuum" => Method::VacuumInto,
        other => anyhow::bail!("unknown method {other}"),
    };
    let done = app.backup(&args.file, method)?;
    if args.json {
        return print_json(&done);
    }
    println!(
        "{}: {} messages, {} outbox items, {} bytes, schema {}, integrity ok (copied in {} ms, checked in {} ms)",
        done.file.display(),
        done.info.messages,
        done.info.outbox_items,
        done.info.bytes,
        done.info.schema,
        done.info.copy_ms,
        done.info.check_ms,
    );
    println!("{}: the reply-token key", done.key_file.display());
    Ok(())
}

pub fn restore(app: &App, args: &RestoreArgs) -> anyhow::Result<()> {
    let done = app.restore(&args.file)?;
    if args.json {
        return print_json(&done);
    }
    println!(
        "restored {} into {}: {} messages, schema {} (now {})",
        args.file.display(),
        done.database.display(),
        done.messages.unwrap_or(0),
        done.schema_from.unwrap_or(0),
        done.schema_to.unwrap_or(0)
    );
    match (&done.previous_database, &done.previous_key) {
        (None, None) => println!("there was no store here before"),
        (db, key) => {
            if let Some(db) = db {
                println!("the previous database is kept as {}", db.display());
            }
            if let Some(key) = key {
                println!("the previous key is kept as {}", key.display());
            }
        }
    }
    println!("start jobmail again (systemctl start jobmail)");
    Ok(())
}
