//! `kill -9` in the middle of a stream of transitions: on reopening, every
//! transition is either fully there (state and event) or not at all.

mod common;
mod kill_support;

use doorstep_core::{DriverSession, JobEventKind, JobState};
use std::collections::HashMap;

#[test]
fn a_killed_process_leaves_every_transition_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("churn.db");
    let mut acknowledged: HashMap<String, u64> = HashMap::new();
    for round in 0..4 {
        for line in kill_support::run_then_kill("churn", 7, &db, 150 + round * 37) {
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts[0], "committed", "{line}");
            acknowledged.insert(parts[1].to_owned(), parts[2].parse().unwrap());
        }

        let conn = rusqlite::Connection::open(&db).unwrap();
        let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(integrity, "ok");
        drop(conn);

        let session = DriverSession::open(&db).unwrap();
        for job in session.jobs().unwrap() {
            let history = session.history(job.id).unwrap();
            let transitions: Vec<_> = history.iter().filter(|e| e.kind == JobEventKind::Transitioned).collect();
            assert_eq!(history[0].kind, JobEventKind::Imported);
            assert_eq!(job.version, transitions.len() as u64, "job {} version vs events", job.id);
            let replayed = transitions.iter().fold(JobState::Assigned, |state, event| {
                assert_eq!(event.from_state, Some(state), "events chain");
                event.to_state
            });
            assert_eq!(job.state, replayed, "state matches its history");
            if let Some(&version) = acknowledged.get(&job.id.to_string()) {
                assert!(job.version >= version, "an acknowledged transition was lost for {}", job.id);
            }
        }
        assert!(acknowledged.keys().all(|id| session.job(id.parse().unwrap()).is_ok()), "an acknowledged job vanished");
    }
}
