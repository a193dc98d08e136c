//! Schema migrations, keyed on SQLite's `user_version`.

use crate::error::{CoreError, Result};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

/// Each entry moves the schema up by one version; never edit a shipped one.
const MIGRATIONS: &[&str] = &[
    // 1: stores, jobs, packages and the append-only job history.
    r#"
    CREATE TABLE stores (
        id            TEXT PRIMARY KEY NOT NULL,
        name          TEXT NOT NULL,
        address       TEXT NOT NULL,
        latitude      REAL NOT NULL,
        longitude     REAL NOT NULL,
        time_zone     TEXT NOT NULL,
        opening_hours TEXT NOT NULL
    ) STRICT;

    CREATE TABLE jobs (
        id               TEXT PRIMARY KEY NOT NULL,
        reference        TEXT NOT NULL,
        state            TEXT NOT NULL,
        failure          TEXT,
        version          INTEGER NOT NULL,
        updated_at_us    INTEGER NOT NULL,
        store_id         TEXT NOT NULL REFERENCES stores(id),
        pickup_start_us  INTEGER NOT NULL,
        pickup_end_us    INTEGER NOT NULL,
        dropoff_address  TEXT NOT NULL,
        dropoff_start_us INTEGER NOT NULL,
        dropoff_end_us   INTEGER NOT NULL,
        package_count    INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX jobs_by_dropoff_window ON jobs(dropoff_start_us, reference);

    -- Kept out of `jobs` so the rows the job list reads stay small.
    CREATE TABLE job_details (
        job_id  TEXT PRIMARY KEY NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        dropoff TEXT NOT NULL,
        pod     TEXT NOT NULL
    ) STRICT;

    CREATE TABLE packages (
        id          TEXT PRIMARY KEY NOT NULL,
        job_id      TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        barcode     TEXT NOT NULL UNIQUE,
        description TEXT NOT NULL,
        flags       TEXT NOT NULL
    ) STRICT;
    CREATE INDEX packages_by_job ON packages(job_id, position);

    CREATE TABLE job_events (
        sequence   INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id     TEXT NOT NULL REFERENCES jobs(id),
        at_us      INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        from_state TEXT,
        to_state   TEXT NOT NULL,
        failure    TEXT
    ) STRICT;
    CREATE INDEX job_events_by_job ON job_events(job_id, sequence);

    CREATE TRIGGER job_events_are_never_changed BEFORE UPDATE ON job_events
    BEGIN SELECT RAISE(ABORT, 'job_events is append-only'); END;
    CREATE TRIGGER job_events_are_never_deleted BEFORE DELETE ON job_events
    BEGIN SELECT RAISE(ABORT, 'job_events is append-only'); END;
    "#,
    // 2: the outbox of driver actions, the device's sync state, server job
    // snapshots held back until the device's own actions are acknowledged,
    // and conflicts.
    r#"
    CREATE TABLE device (
        singleton        INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
        client_id        TEXT NOT NULL,
        next_mutation_id INTEGER NOT NULL,
        delta_cursor     TEXT,
        server_offset_ms INTEGER NOT NULL DEFAULT 0,
        last_sync_at_us  INTEGER
    ) STRICT;

    CREATE TABLE outbox (
        mutation_id     INTEGER PRIMARY KEY NOT NULL,
        job_id          TEXT NOT NULL REFERENCES jobs(id),
        action          TEXT NOT NULL,
        failure         TEXT,
        occurred_at_us  INTEGER NOT NULL,
        idempotency_key TEXT NOT NULL,
        -- Sent only once this mutation has left the outbox (acknowledged);
        -- not a foreign key, since acknowledging deletes the row.
        depends_on      INTEGER,
        status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'wedged')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT
    ) STRICT;
    CREATE INDEX outbox_by_job ON outbox(job_id, mutation_id);
    CREATE INDEX outbox_by_dependency ON outbox(depends_on) WHERE depends_on IS NOT NULL;

    CREATE TABLE deferred_server_jobs (
        job_id      TEXT PRIMARY KEY NOT NULL,
        server_job  TEXT NOT NULL
    ) STRICT;

    ALTER TABLE jobs ADD COLUMN conflict TEXT;
    ALTER TABLE jobs ADD COLUMN server_revision INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE job_details ADD COLUMN route TEXT;
    "#,
    // 3: the navigation in progress, so it resumes after the app is killed.
    r#"
    CREATE TABLE navigation (
        singleton INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
        plan      TEXT NOT NULL,
        state     TEXT NOT NULL
    ) STRICT;
    "#,
    // 4: outbox mutations may carry a signed record (proof of delivery,
    // handoff receipt, door audit), alone or with a driver action.
    r#"
    ALTER TABLE outbox ADD COLUMN record_kind TEXT;
    ALTER TABLE outbox ADD COLUMN record_body TEXT;
    "#,
    // 5: fewer pages written per driver action. The next mutation id is the
    // outbox's highest plus one, with `device.next_mutation_id` as a floor
    // that a trigger raises whenever a mutation leaves the outbox, so an
    // action no longer rewrites the device row. Job events lose
    // AUTOINCREMENT: the table is append-only (triggers forbid deletes), so
    // plain rowids already never repeat, and the action no longer rewrites
    // sqlite_sequence.
    r#"
    CREATE TRIGGER outbox_ids_are_never_reused AFTER DELETE ON outbox
    BEGIN
        UPDATE device SET next_mutation_id = max(next_mutation_id, OLD.mutation_id + 1);
    END;

    CREATE TABLE job_events_v5 (
        sequence   INTEGER PRIMARY KEY,
        job_id     TEXT NOT NULL REFERENCES jobs(id),
        at_us      INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        from_state TEXT,
        to_state   TEXT NOT NULL,
        failure    TEXT
    ) STRICT;
    INSERT INTO job_events_v5 SELECT sequence, job_id, at_us, kind, from_state, to_state, failure FROM job_events;
    DROP TABLE job_events;
    ALTER TABLE job_events_v5 RENAME TO job_events;
    CREATE INDEX job_events_by_job ON job_events(job_id, sequence);
    CREATE TRIGGER job_events_are_never_changed BEFORE UPDATE ON job_events
    BEGIN SELECT RAISE(ABORT, 'job_events is append-only'); END;
    CREATE TRIGGER job_events_are_never_deleted BEFORE DELETE ON job_events
    BEGIN SELECT RAISE(ABORT, 'job_events is append-only'); END;
    "#,
    // 6: store handoffs: the staff device's handoffs in progress (jobs, scans,
    // discrepancies) and the signed receipts both devices keep, with the
    // packages each receipt moved per job (the custody chain).
    r#"
    CREATE TABLE handoffs (
        id            TEXT PRIMARY KEY NOT NULL,
        direction     TEXT NOT NULL CHECK (direction IN ('pickup', 'return')),
        driver_key    BLOB NOT NULL,
        status        TEXT NOT NULL CHECK (status IN ('open', 'offered', 'completed')),
        started_at_us INTEGER NOT NULL,
        offer         BLOB,
        offer_hash    BLOB UNIQUE
    ) STRICT;

    CREATE TABLE handoff_jobs (
        handoff_id     TEXT NOT NULL REFERENCES handoffs(id) ON DELETE CASCADE,
        job_id         TEXT NOT NULL REFERENCES jobs(id),
        position       INTEGER NOT NULL,
        partial_reason TEXT,
        PRIMARY KEY (handoff_id, job_id)
    ) STRICT;

    -- One row per barcode per handoff: scanned (confirmed), or reported
    -- missing or extra; `damaged` marks a confirmed package's note.
    CREATE TABLE handoff_packages (
        handoff_id TEXT NOT NULL REFERENCES handoffs(id) ON DELETE CASCADE,
        barcode    TEXT NOT NULL,
        job_id     TEXT,
        kind       TEXT NOT NULL CHECK (kind IN ('confirmed', 'missing', 'extra')),
        note       TEXT,
        damaged    TEXT,
        sequence   INTEGER NOT NULL,
        PRIMARY KEY (handoff_id, barcode)
    ) STRICT;

    CREATE TABLE handoff_receipts (
        receipt_hash   BLOB PRIMARY KEY NOT NULL,
        handoff_id     TEXT NOT NULL UNIQUE,
        direction      TEXT NOT NULL,
        offer          BLOB NOT NULL,
        acceptance     BLOB NOT NULL,
        recorded_at_us INTEGER NOT NULL,
        -- The staff device keeps the receipts it has yet to send.
        to_send        INTEGER NOT NULL DEFAULT 0
    ) STRICT;

    CREATE TABLE handoff_custody (
        receipt_hash BLOB NOT NULL REFERENCES handoff_receipts(receipt_hash),
        job_id       TEXT NOT NULL,
        direction    TEXT NOT NULL,
        confirmed    TEXT NOT NULL,
        PRIMARY KEY (receipt_hash, job_id)
    ) STRICT;
    CREATE INDEX handoff_custody_by_job ON handoff_custody(job_id, direction);
    "#,
    // 7: proof of delivery: drafts that survive restarts, sealed records,
    // the media files they cite (until dispatch holds them and the
    // retention period has passed), and media uploads in the outbox.
    r#"
    CREATE TABLE pod_drafts (
        job_id        TEXT PRIMARY KEY NOT NULL REFERENCES jobs(id),
        draft         TEXT NOT NULL,
        updated_at_us INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE pod_records (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id       TEXT NOT NULL REFERENCES jobs(id),
        outcome      TEXT NOT NULL CHECK (outcome IN ('delivered', 'failed')),
        sealed_at_us INTEGER NOT NULL,
        -- The canonical bytes, exactly as signed and sent.
        record       BLOB NOT NULL
    ) STRICT;
    CREATE INDEX pod_records_by_job ON pod_records(job_id, id);

    CREATE TABLE media_files (
        sha256         TEXT PRIMARY KEY NOT NULL,
        content_type   TEXT NOT NULL,
        size_bytes     INTEGER NOT NULL,
        added_at_us    INTEGER NOT NULL,
        -- When dispatch confirmed it holds the whole file.
        uploaded_at_us INTEGER
    ) STRICT;

    -- An upload in the outbox (action 'upload_media') names its file.
    ALTER TABLE outbox ADD COLUMN upload_sha256 TEXT;
    ALTER TABLE outbox ADD COLUMN upload_content_type TEXT;
    ALTER TABLE outbox ADD COLUMN upload_size_bytes INTEGER;
    CREATE INDEX outbox_by_upload ON outbox(upload_sha256) WHERE upload_sha256 IS NOT NULL;
    "#,
    // 8: door access: grants cached for offline use, the counter of each grant
    // (kept apart, so a grant re-sent by dispatch never resets it), the
    // revocation epoch and notice, the device key dispatch knows, and the
    // append-only record of unlock attempts.
    r#"
    CREATE TABLE door_grants (
        grant_id     TEXT PRIMARY KEY NOT NULL,
        job_id       TEXT NOT NULL,
        door_ids     TEXT NOT NULL,
        not_before_s INTEGER NOT NULL,
        not_after_s  INTEGER NOT NULL,
        epoch        INTEGER NOT NULL,
        encoded      BLOB NOT NULL
    ) STRICT;

    CREATE TABLE door_grant_counters (
        grant_id    TEXT PRIMARY KEY NOT NULL,
        counter     INTEGER NOT NULL,
        not_after_s INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE door_access (
        singleton      INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
        epoch          INTEGER NOT NULL DEFAULT 0,
        notice         BLOB,
        registered_key TEXT
    ) STRICT;
    INSERT INTO door_access (singleton) VALUES (1);

    CREATE TABLE door_unlocks (
        sequence  INTEGER PRIMARY KEY,  -- append-only: rowids never repeat
        at_us     INTEGER NOT NULL,
        door_id   INTEGER NOT NULL,
        lock_id   INTEGER NOT NULL,
        grant_id  TEXT NOT NULL,
        job_id    TEXT NOT NULL,
        counter   INTEGER NOT NULL,
        outcome   TEXT NOT NULL,
        audit     BLOB NOT NULL
    ) STRICT;
    CREATE TRIGGER door_unlocks_are_never_changed BEFORE UPDATE ON door_unlocks
    BEGIN SELECT RAISE(ABORT, 'door_unlocks is append-only'); END;
    CREATE TRIGGER door_unlocks_are_never_deleted BEFORE DELETE ON door_unlocks
    BEGIN SELECT RAISE(ABORT, 'door_unlocks is append-only'); END;
    "#,
    // 9: store-side receipt sync: why the last send failed, and whether
    // dispatch refused the receipt for good (it then stays, not resent).
    r#"
    ALTER TABLE handoff_receipts ADD COLUMN send_error TEXT;
    ALTER TABLE handoff_receipts ADD COLUMN send_refused INTEGER NOT NULL DEFAULT 0;
    "#,
    // 10: a job's history is a chain: each event names the same job's
    // previous event and the job row names its latest. Reading one job's
    // history then needs no index keyed by job id, whose random keys cost
    // every driver action one more page written (and checkpointed). A
    // trigger keeps the chain: an event must name the job's latest event,
    // and becomes the latest.
    r#"
    ALTER TABLE jobs ADD COLUMN last_event INTEGER;
    UPDATE jobs SET last_event = (SELECT max(sequence) FROM job_events WHERE job_id = jobs.id);

    CREATE TABLE job_events_v10 (
        sequence   INTEGER PRIMARY KEY,
        job_id     TEXT NOT NULL REFERENCES jobs(id),
        at_us      INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        from_state TEXT,
        to_state   TEXT NOT NULL,
        failure    TEXT,
        previous   INTEGER
    ) STRICT;
    INSERT INTO job_events_v10
        SELECT sequence, job_id, at_us, kind, from_state, to_state, failure,
               lag(sequence) OVER (PARTITION BY job_id ORDER BY sequence)
        FROM job_events;
    DROP TABLE job_events;
    ALTER TABLE job_events_v10 RENAME TO job_events;
    CREATE TRIGGER job_events_are_never_changed BEFORE UPDATE ON job_events
    BEGIN SELECT RAISE(ABORT, 'job_events is append-only'); END;
    CREATE TRIGGER job_events_are_never_deleted BEFORE DELETE ON job_events
    BEGIN SELECT RAISE(ABORT, 'job_events is append-only'); END;
    CREATE TRIGGER job_events_form_a_chain_per_job AFTER INSERT ON job_events
    BEGIN
        SELECT RAISE(ABORT, 'job_events: an event must follow its job''s latest event')
        WHERE NEW.previous IS NOT (SELECT last_event FROM jobs WHERE id = NEW.job_id);
        UPDATE jobs SET last_event = NEW.sequence WHERE id = NEW.job_id;
    END;
    "#,
];

pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the schema to [`SCHEMA_VERSION`], one transaction per step, so a
/// crash mid-migration leaves the previous version intact. The version is
/// read inside the write transaction, so two processes opening the same
/// file at once cannot both apply a step.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let fail = |e| CoreError::from_sqlite_at(path, e);
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(fail)?;
        let found: u32 = tx.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(fail)?;
        if found > SCHEMA_VERSION {
            return Err(CoreError::SchemaTooNew { path: path.display().to_string(), found, supported: SCHEMA_VERSION });
        }
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        if found == 0 {
            let tables: u32 = tx.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0)).map_err(fail)?;
            if tables > 0 {
                return Err(CoreError::CorruptDatabase {
                    path: path.display().to_string(),
                    reason: "the file holds tables but no Doorstep schema version".into(),
                });
            }
        }
        tracing::info!(from = found, to = found + 1, "migrating schema");
        tx.execute_batch(MIGRATIONS[found as usize]).map_err(fail)?;
        tx.pragma_update(None, "user_version", found + 1).map_err(fail)?;
        tx.commit().map_err(fail)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_version(conn: &Connection, version: usize) {
        for (step, sql) in MIGRATIONS[..version].iter().enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", step as u32 + 1).unwrap();
        }
    }

    /// A store and the jobs `(id, reference, state, version)` in an old file.
    fn old_store_with_jobs(conn: &Connection, jobs: &[(&str, &str, &str, i64)]) {
        conn.execute("INSERT INTO stores VALUES ('s', 'S', 'a', 0, 0, 'UTC', '[]')", []).unwrap();
        for (id, reference, state, version) in jobs {
            conn.execute(
                "INSERT INTO jobs (id, reference, state, version, updated_at_us, store_id, pickup_start_us, pickup_end_us,
                                   dropoff_address, dropoff_start_us, dropoff_end_us, package_count)
                 VALUES (?1, ?2, ?3, ?4, 0, 's', 0, 0, 'x', 0, 0, 1)",
                rusqlite::params![id, reference, state, version],
            )
            .unwrap();
        }
    }

    fn all_rows<T>(conn: &Connection, sql: &str, row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>) -> Vec<T> {
        conn.prepare(sql).unwrap().query_map([], row).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    }

    #[test]
    fn history_and_mutation_ids_survive_the_step_that_drops_autoincrement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let mut conn = Connection::open(&path).unwrap();
        at_version(&conn, 4);
        old_store_with_jobs(&conn, &[("j", "R", "accepted", 1)]);
        conn.execute_batch(
            "INSERT INTO job_events (job_id, at_us, kind, to_state) VALUES ('j', 1, 'imported', 'assigned');
             INSERT INTO job_events (job_id, at_us, kind, from_state, to_state) VALUES ('j', 2, 'transitioned', 'assigned', 'accepted');
             INSERT INTO device (singleton, client_id, next_mutation_id) VALUES (1, 'c', 8);",
        )
        .unwrap();
        migrate(&mut conn, &path).unwrap();
        let events: Vec<(i64, String)> =
            all_rows(&conn, "SELECT sequence, to_state FROM job_events ORDER BY sequence", |row| Ok((row.get(0)?, row.get(1)?)));
        assert_eq!(events, [(1, "assigned".to_owned()), (2, "accepted".to_owned())]);
        assert!(conn.execute("DELETE FROM job_events", []).is_err(), "still append-only");
        conn.execute_batch(
            "INSERT INTO outbox (mutation_id, job_id, action, occurred_at_us, idempotency_key) VALUES (8, 'j', 'accept', 0, 'k');
             DELETE FROM outbox;",
        )
        .unwrap();
        let floor: i64 = conn.query_row("SELECT next_mutation_id FROM device", [], |row| row.get(0)).unwrap();
        assert_eq!(floor, 9, "a mutation leaving the outbox raises the floor");
    }

    #[test]
    fn the_step_to_chained_history_links_every_jobs_events_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let mut conn = Connection::open(&path).unwrap();
        at_version(&conn, 9);
        old_store_with_jobs(&conn, &[("a", "A", "accepted", 1), ("b", "B", "accepted", 2), ("c", "C", "assigned", 0)]);
        conn.execute_batch(
            "INSERT INTO job_events (job_id, at_us, kind, to_state) VALUES
                 ('a', 1, 'imported', 'assigned'), ('b', 2, 'imported', 'assigned'),
                 ('b', 3, 'transitioned', 'accepted'), ('a', 4, 'transitioned', 'accepted'),
                 ('b', 5, 'updated', 'accepted');",
        )
        .unwrap();
        migrate(&mut conn, &path).unwrap();
        let rows: Vec<(i64, String, Option<i64>)> =
            all_rows(&conn, "SELECT sequence, job_id, previous FROM job_events ORDER BY sequence", |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            });
        let expected = [(1, "a", None), (2, "b", None), (3, "b", Some(2)), (4, "a", Some(1)), (5, "b", Some(3))];
        assert_eq!(rows, expected.map(|(seq, job, previous)| (seq, job.to_owned(), previous)));
        let latest: Vec<(String, Option<i64>)> =
            all_rows(&conn, "SELECT id, last_event FROM jobs ORDER BY id", |row| Ok((row.get(0)?, row.get(1)?)));
        assert_eq!(latest, [("a".to_owned(), Some(4)), ("b".to_owned(), Some(5)), ("c".to_owned(), None)]);
        conn.execute("INSERT INTO job_events (job_id, at_us, kind, to_state, previous) VALUES ('c', 6, 'imported', 'assigned', NULL)", [])
            .unwrap();
        let c_latest: i64 = conn.query_row("SELECT last_event FROM jobs WHERE id = 'c'", [], |row| row.get(0)).unwrap();
        assert_eq!(c_latest, 6, "a new event becomes its job's latest");
        assert!(conn.execute("DELETE FROM job_events", []).is_err(), "still append-only");
    }
}
