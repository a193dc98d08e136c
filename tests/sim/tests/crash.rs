//! `kill -9` in the middle of a stream of transitions: on reopening, every
//! transition is either fully there (state and event) or not at all.

mod common;

use doorstep_core::{DriverSession, JobEventKind, JobState};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn churn_then_kill(db: &std::path::Path, after_lines: usize) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_doorstep-sim"))
        .args(["churn", "--batch", "7", "--db"])
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the churn process");
    let mut lines = Vec::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines.len() < after_lines && Instant::now() < deadline {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        lines.push(line.trim_end().to_owned());
    }
    // SIGKILL: no destructors, no rollback hooks, mid-write as likely as not.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(lines.len() >= after_lines, "the churn process stopped early after {} lines", lines.len());
    lines
}

#[test]
fn a_killed_process_leaves_every_transition_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("churn.db");
    let mut acknowledged: HashMap<String, u64> = HashMap::new();
    for round in 0..4 {
        for line in churn_then_kill(&db, 150 + round * 37) {
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
