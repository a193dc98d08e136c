//! The device's SQLite database: schema, migrations and every read and write
//! of jobs and their history.
//!
//! Owns durability: each change of state is written with its event row in
//! one transaction, with `synchronous=FULL` so it survives power loss, not
//! only an app kill. Decides nothing about which changes are legal; it asks
//! `jobs::next_step` inside the transaction so the check and the write see
//! the same row.

mod handoff;
mod access;
mod jobs;
mod navigation;
mod outbox;
mod pod;
mod schema;

pub use handoff::{HandoffRow, HandoffPackageRow, HandoffStatus, StoredReceipt, UnsentReceiptRow};
pub use access::{CachedGrant, UnlockRecord};
pub use jobs::{ImportedJob, ImportOutcome, TransitionOutcome};
pub use outbox::{Mutation, MutationBody, MutationOutcome, MutationStatus, RECORD_ACTION, Record, RecordKind, SyncState};
pub use outbox::{MediaUpload, UPLOAD_ACTION};
pub use pod::SealedWrite;
pub use schema::SCHEMA_VERSION;

use crate::error::{CoreError, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Database {
    conn: Connection,
    path: PathBuf,
}

impl Database {
    /// Opens (creating if needed) the database at `path` and brings its
    /// schema up to date. A file that is not a database, is damaged, or was
    /// written by a newer build is reported as such and left untouched.
    pub fn open(path: &Path) -> Result<Database> {
        if path.is_dir() {
            return Err(CoreError::CannotOpen { path: path.display().to_string(), reason: "is a directory".into() });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| CoreError::from_sqlite_at(path, e))?;
        let mut db = Database { conn, path: path.to_owned() };
        db.configure().map_err(|e| db.classify(e))?;
        schema::migrate(&mut db.conn, path)?;
        db.ensure_device()?;
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(Duration::from_secs(5))?;
        // Every statement the store runs stays prepared (rusqlite keeps 16
        // by default, fewer than the store uses, so they would be re-parsed).
        self.conn.set_prepared_statement_cache_capacity(128);
        // Reading the header first makes a non-database file fail here, with
        // SQLITE_NOTADB, before any pragma could try to write to it.
        self.conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
        let mode: String = self.conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "SQLite refused WAL mode");
        }
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        self.conn.pragma_update(None, "foreign_keys", true)?;
        Ok(())
    }

    /// Maps a SQLite error to the core's error, naming this database's file
    /// when the file itself is the problem.
    pub(crate) fn classify(&self, err: rusqlite::Error) -> CoreError {
        CoreError::from_sqlite_at(&self.path, err)
    }

    /// Runs `work` in one immediate (write-locking) transaction and commits
    /// it; any error rolls everything back.
    fn write<T>(&mut self, work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, jobs::TxError>) -> Result<T> {
        let Database { conn, path } = self;
        let fail = |e| CoreError::from_sqlite_at(path, e);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(fail)?;
        let value = work(&tx).map_err(|err| match err {
            jobs::TxError::Core(err) => err,
            jobs::TxError::Sql(err) => fail(err),
        })?;
        tx.commit().map_err(fail)?;
        Ok(value)
    }

    /// A stored value that cannot be read back means the file was altered
    /// outside the core.
    pub(crate) fn corrupt(&self, what: impl std::fmt::Display) -> CoreError {
        CoreError::CorruptDatabase { path: self.path.display().to_string(), reason: what.to_string() }
    }
}
