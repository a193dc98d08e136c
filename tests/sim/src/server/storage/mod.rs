//! The server's SQLite database: one connection, its schema, and the one way
//! handlers reach it ([`Database::call`], on a blocking thread, inside one
//! transaction that commits only when the closure succeeds).
//!
//! Owns the tables and the SQL. Submodules hold the queries of one concern
//! each. Must not know about HTTP: it returns rows and [`StorageError`]s, and
//! the domain modules decide what they mean for a request.

pub mod clients;
pub mod doors;
pub mod jobs;
pub mod media;
pub mod records;
pub mod store_receipts;
pub mod tokens;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, Transaction};

/// A failure of the database itself (never of the request).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("the database task failed: {0}")]
    Task(String),
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tokens (
    token      TEXT PRIMARY KEY,
    driver_id  TEXT NOT NULL,
    issued_at  TEXT NOT NULL
);

-- Stores as dispatch last sent them (wire JSON), kept per id.
CREATE TABLE IF NOT EXISTS stores (
    id    TEXT PRIMARY KEY,
    body  TEXT NOT NULL
);

-- Every server-side change of a job, in one global order; `seq` is the
-- delta cursor.
CREATE TABLE IF NOT EXISTS changes (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    at      TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS jobs (
    id          TEXT PRIMARY KEY,
    store_id    TEXT NOT NULL,
    body        TEXT NOT NULL,      -- the wire `Job`, canonical
    driver_id   TEXT NOT NULL,
    status      TEXT NOT NULL,      -- active | cancelled
    state       TEXT NOT NULL,      -- a JobState name
    failure     TEXT,               -- a FailureReason name
    revision    INTEGER NOT NULL,
    change_seq  INTEGER NOT NULL    -- the job's latest changes.seq
);
CREATE INDEX IF NOT EXISTS jobs_by_change ON jobs (change_seq);

-- Every driver a job was ever assigned to: who must hear it was reassigned.
CREATE TABLE IF NOT EXISTS job_drivers (
    driver_id  TEXT NOT NULL,
    job_id     TEXT NOT NULL,
    PRIMARY KEY (driver_id, job_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS conflicts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id         TEXT NOT NULL,
    mutation_id    INTEGER NOT NULL,
    client_id      TEXT NOT NULL,
    action         TEXT NOT NULL,
    server_status  TEXT NOT NULL,
    recorded_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conflicts_by_job ON conflicts (job_id, id);

CREATE TABLE IF NOT EXISTS clients (
    client_id                   TEXT PRIMARY KEY,
    last_processed_mutation_id  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS processed_mutations (
    client_id        TEXT NOT NULL,
    mutation_id      INTEGER NOT NULL,
    idempotency_key  TEXT NOT NULL,
    job_id           TEXT NOT NULL,
    action           TEXT NOT NULL,
    failure_reason   TEXT,
    occurred_at      TEXT NOT NULL,
    outcome          TEXT NOT NULL,  -- applied | conflict | rejected
    processed_at     TEXT NOT NULL,
    PRIMARY KEY (client_id, mutation_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS media (
    sha256    TEXT PRIMARY KEY,
    size      INTEGER NOT NULL,
    received  INTEGER NOT NULL,
    complete  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS media_chunks (
    sha256  TEXT NOT NULL,
    offset  INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (sha256, offset)
) WITHOUT ROWID;
"#;

/// The server's database. Cheap to clone; all clones share one connection,
/// so requests are serialised at the database, which is what makes each
/// mutation batch see and leave a consistent state.
#[derive(Clone)]
pub struct Database {
    connection: Arc<Mutex<Connection>>,
}

impl Database {
    /// Opens (creating if needed) the database at `path`, or a fresh
    /// in-memory one when `path` is `None`.
    pub fn open(path: Option<&Path>) -> Result<Database, StorageError> {
        let connection = match path {
            Some(path) => {
                let connection = Connection::open(path)?;
                // A batch's outcome is answered only after it is on disk.
                connection.pragma_update(None, "journal_mode", "WAL")?;
                connection.pragma_update(None, "synchronous", "FULL")?;
                connection
            }
            None => Connection::open_in_memory()?,
        };
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(SCHEMA)?;
        connection.execute_batch(records::SCHEMA)?;
        connection.execute_batch(store_receipts::SCHEMA)?;
        Ok(Database { connection: Arc::new(Mutex::new(connection)) })
    }

    /// Runs `work` inside one transaction on a blocking thread: commits when
    /// it returns `Ok`, rolls back when it returns a [`StorageError`]. The
    /// `Ok` value may itself refuse the request (`Result<_, Problem>`); such
    /// work refuses before it writes, or means to keep what it wrote (a
    /// discarded upload stays discarded).
    pub async fn call<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StorageError> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock rolled its transaction back on
            // unwind, so the connection behind a poisoned lock is sound.
            let mut guard = connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let transaction = guard.transaction()?;
            let value = work(&transaction)?;
            transaction.commit()?;
            Ok(value)
        })
        .await
        .map_err(|err| StorageError::Task(err.to_string()))?
    }
}

/// Reads a column holding one of our own names (`active`, `assigned`, …).
pub(crate) fn parse_stored<T>(
    column: &str,
    text: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, StorageError> {
    parse(text).ok_or_else(|| StorageError::Corrupt(format!("{column} holds {text:?}")))
}

/// Reads a stored non-negative integer (SQLite has only i64).
pub(crate) fn to_u64(column: &str, value: i64) -> Result<u64, StorageError> {
    u64::try_from(value).map_err(|_| StorageError::Corrupt(format!("{column} holds {value}")))
}

/// Stores a u64 the contract bounds below i64::MAX (ids up to 2^53-1, sizes,
/// revisions); saturates rather than wrapping if that were ever broken.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl From<StorageError> for crate::server::problem::Problem {
    /// The client learns only that the server failed; the log says how.
    fn from(err: StorageError) -> Self {
        tracing::error!(error = %err, "storage failure");
        crate::server::problem::Problem::internal()
    }
}
