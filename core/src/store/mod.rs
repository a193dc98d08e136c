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
use rusqlite::config::DbConfig;
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
        // Without the planner's stability guarantee, SQLite marks a
        // statement with `column = ?` as "re-plan when rebound" (in case the
        // value is 0 or 1), and the cache's clearing of bindings then makes
        // it re-parse the SQL on every use: half the time of a job read.
        // The store's plans never depend on bound values.
        self.conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
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
        self.write_then_read(work, |_, value| Ok(value))
    }

    /// Like `write`, and reads what the caller returns to the shell before
    /// the commit: inside the write transaction the pages just written are
    /// still at hand, where a read after the commit would start a new read
    /// transaction. A failed read rolls the write back, so the shell never
    /// gets an error for a change that was kept.
    fn write_then_read<T, R>(
        &mut self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, jobs::TxError>,
        read: impl FnOnce(&Database, T) -> Result<R>,
    ) -> Result<R> {
        // `&mut self` is what keeps transactions from nesting; the shared
        // borrow below only lets `read` use the store's own readers.
        let fail = |e| CoreError::from_sqlite_at(&self.path, e);
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, rusqlite::TransactionBehavior::Immediate).map_err(fail)?;
        let value = work(&tx).map_err(|err| match err {
            jobs::TxError::Core(err) => err,
            jobs::TxError::Sql(err) => fail(err),
        })?;
        let result = read(self, value)?;
        tx.commit().map_err(fail)?;
        Ok(result)
    }

    /// A stored value that cannot be read back means the file was altered
    /// outside the core.
    pub(crate) fn corrupt(&self, what: impl std::fmt::Display) -> CoreError {
        CoreError::CorruptDatabase { path: self.path.display().to_string(), reason: what.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_statement_keeps_its_plan_when_rebound() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("t.db")).unwrap();
        // Not a primary-key lookup, which SQLite plans by a shortcut.
        let sql = "SELECT barcode FROM packages WHERE job_id = ?1 ORDER BY position";
        for id in ["a", "b", "0", "1", "c"] {
            db.conn.prepare_cached(sql).unwrap().exists([id]).unwrap();
        }
        let reprepared = db.conn.prepare_cached(sql).unwrap().get_status(rusqlite::StatementStatus::RePrepare);
        assert_eq!(reprepared, 0, "a statement the cache hands back is not parsed again");
    }
}
