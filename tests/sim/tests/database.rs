//! The database file: migrations, damage, and the append-only history.

mod common;

use common::*;
use doorstep_core::*;

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let fx = Fixture::new();
    drop(fx.open_with_sample());
    rusqlite::Connection::open(fx.db()).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let before = std::fs::read(fx.db()).unwrap();
    let err = DriverSession::open(fx.db()).err().unwrap();
    assert_eq!(
        err,
        CoreError::SchemaTooNew { path: fx.db().display().to_string(), found: 99, supported: store::SCHEMA_VERSION }
    );
    assert_eq!(std::fs::read(fx.db()).unwrap(), before, "never a silent wipe");
}

#[test]
fn a_file_that_is_not_a_database_is_named_in_the_error() {
    let fx = Fixture::new();
    std::fs::write(fx.db(), vec![0x5a; 8192]).unwrap();
    match DriverSession::open(fx.db()) {
        Err(CoreError::CorruptDatabase { path, .. }) => assert_eq!(path, fx.db().display().to_string()),
        other => panic!("expected CorruptDatabase, got {:?}", other.err()),
    }
    assert_eq!(std::fs::read(fx.db()).unwrap(), vec![0x5a; 8192]);
}

#[test]
fn a_damaged_database_is_reported_as_corrupt() {
    let fx = Fixture::new();
    drop(fx.open_with_sample());
    // Overwrite every page but the header page: the schema is unreadable.
    let mut bytes = std::fs::read(fx.db()).unwrap();
    for byte in bytes.iter_mut().skip(100) {
        *byte = 0xff;
    }
    std::fs::write(fx.db(), bytes).unwrap();
    let result = DriverSession::open(fx.db()).and_then(|s| s.jobs());
    assert!(matches!(result, Err(CoreError::CorruptDatabase { ref path, .. }) if *path == fx.db().display().to_string()), "{result:?}");
}

#[test]
fn a_foreign_sqlite_file_is_not_adopted() {
    let fx = Fixture::new();
    rusqlite::Connection::open(fx.db()).unwrap().execute_batch("CREATE TABLE notes (body TEXT);").unwrap();
    assert!(matches!(DriverSession::open(fx.db()), Err(CoreError::CorruptDatabase { .. })));
}

#[test]
fn a_folder_cannot_be_opened_as_a_database() {
    let fx = Fixture::new();
    assert!(matches!(DriverSession::open(fx.dir.path()), Err(CoreError::CannotOpen { .. })));
}

#[test]
fn history_rows_can_never_be_changed_or_deleted() {
    let fx = Fixture::new();
    drop(fx.open_with_sample());
    let conn = rusqlite::Connection::open(fx.db()).unwrap();
    let update = conn.execute("UPDATE job_events SET to_state = 'delivered'", []);
    let delete = conn.execute("DELETE FROM job_events", []);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}

#[test]
fn a_history_row_must_follow_its_jobs_latest_event() {
    let fx = Fixture::new();
    let session = fx.open_with_sample();
    let job_id = session.jobs().unwrap()[0].id;
    session.apply(job_id, Transition::Accept).unwrap();
    drop(session);
    let conn = rusqlite::Connection::open(fx.db()).unwrap();
    let id = job_id.to_string();
    let (first, latest): (i64, i64) = conn
        .query_row("SELECT min(sequence), max(sequence) FROM job_events WHERE job_id = ?1", [&id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    let insert = |previous: Option<i64>| {
        conn.execute(
            "INSERT INTO job_events (job_id, at_us, kind, to_state, previous) VALUES (?1, 0, 'transitioned', 'accepted', ?2)",
            rusqlite::params![id, previous],
        )
    };
    for wrong in [None, Some(first), Some(latest + 1000)] {
        assert!(insert(wrong).unwrap_err().to_string().contains("latest event"), "previous {wrong:?} refused");
    }
    insert(Some(latest)).unwrap();
    drop(conn);
    assert_eq!(fx.open().history(job_id).unwrap().len(), 3, "the history reads through the new row");
}

#[test]
fn the_database_uses_wal_and_full_sync() {
    let fx = Fixture::new();
    let _session = fx.open();
    let conn = rusqlite::Connection::open(fx.db()).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, store::SCHEMA_VERSION);
}
