//! Store benchmarks: one durable driver action (beside a bare SQLite
//! transaction doing the same writes, for scale), a batch of actions, and a
//! cold open of a full store until the job list is ready.
//!
//! `tests/bench.sh` runs these and prints one `bench <name>: <value> <unit>`
//! line per figure from Criterion's medians.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use doorstep_core::{DriverSession, Transition};
use doorstep_sim::synthetic::{self, HAPPY_PATH};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use uuid::Uuid;

fn day() -> chrono::DateTime<chrono::Utc> {
    "2026-11-23T16:00:00Z".parse().unwrap()
}

/// Imports enough fresh jobs for `actions` happy-path transitions and
/// returns the actions in an order that is always legal.
fn prepare_actions(session: &DriverSession, actions: u64) -> Vec<(Uuid, Transition)> {
    let jobs = (actions as usize).div_ceil(HAPPY_PATH.len()).max(1);
    let mut ids = Vec::with_capacity(jobs);
    for chunk in 0..jobs.div_ceil(2_000) {
        let size = (jobs - chunk * 2_000).min(2_000);
        let outcome = session.import_document(synthetic::document(size, 3, day()).as_bytes()).unwrap();
        ids.extend(outcome.jobs.iter().map(|j| j.job_id));
    }
    HAPPY_PATH.iter().flat_map(|&t| ids.iter().map(move |&id| (id, t))).take(actions as usize).collect()
}

fn durable_transition(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let session = DriverSession::open(dir.path().join("bench.db")).unwrap();
    let mut group = c.benchmark_group("store");
    group.sample_size(30).measurement_time(Duration::from_secs(4));
    group.bench_function("durable_transition", |b| {
        b.iter_custom(|iters| {
            let actions = prepare_actions(&session, iters);
            let start = Instant::now();
            for (id, transition) in actions {
                session.apply(id, transition).unwrap();
            }
            start.elapsed()
        })
    });
    let conn = bare_connection(&dir.path().join("bare.db"));
    let mut n = 0i64;
    group.bench_function("bare_sqlite_transaction", |b| {
        b.iter(|| {
            n += 1;
            let tx = conn.unchecked_transaction().unwrap();
            tx.execute("UPDATE item SET state = ?1 WHERE id = 1", [n]).unwrap();
            tx.execute("INSERT INTO log (item, state) VALUES (1, ?1)", [n]).unwrap();
            tx.commit().unwrap();
        })
    });
    // Part of every durable action: the job is read back for the shell.
    let read_id = prepare_actions(&session, 1)[0].0;
    group.bench_function("read_job", |b| b.iter(|| session.job(read_id).unwrap()));
    group.bench_function("batch_of_100_transitions", |b| {
        b.iter_batched(
            || prepare_actions(&session, 100),
            |actions| session.apply_all(&actions).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// The same durability settings as the store, with nothing of the core.
fn bare_connection(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())).unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE item (id INTEGER PRIMARY KEY, state INTEGER);
         CREATE TABLE log (seq INTEGER PRIMARY KEY AUTOINCREMENT, item INTEGER, state INTEGER);
         INSERT INTO item VALUES (1, 0);",
    )
    .unwrap();
    conn
}

/// A store holding 10,000 jobs and 100,000 events: every job imported,
/// walked the happy path (5 transitions) and re-sent by dispatch 4 times.
fn full_store(dir: &Path) -> PathBuf {
    let path = dir.join("full.db");
    let session = DriverSession::open(&path).unwrap();
    let documents: Vec<String> = (0..5).map(|_| synthetic::document(2_000, 3, day())).collect();
    for document in &documents {
        let ids: Vec<Uuid> = session.import_document(document.as_bytes()).unwrap().jobs.iter().map(|j| j.job_id).collect();
        for &step in &HAPPY_PATH {
            session.apply_all(&ids.iter().map(|&id| (id, step)).collect::<Vec<_>>()).unwrap();
        }
        for revision in 1..=4 {
            // Dispatch re-sends the day with every address amended.
            let amended = document.replace(" Test Street", &format!(" Test Street (rev {revision})"));
            assert_eq!(session.import_document(amended.as_bytes()).unwrap().updated(), 2_000);
        }
    }
    assert_eq!(session.jobs().unwrap().len(), 10_000);
    assert_eq!(session.events_after(0, u32::MAX).unwrap().len(), 100_000);
    path
}

fn cold_open(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = full_store(dir.path());
    let mut group = c.benchmark_group("store");
    group.sample_size(20).measurement_time(Duration::from_secs(4));
    group.bench_function("cold_open_10k_jobs_100k_events", |b| {
        b.iter(|| {
            let session = DriverSession::open(&path).unwrap();
            let jobs = session.jobs().unwrap();
            assert_eq!(jobs.len(), 10_000);
            jobs
        })
    });
    group.finish();
}

criterion_group!(benches, durable_transition, cold_open);
criterion_main!(benches);
