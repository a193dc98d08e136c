//! The demo is the README's first command: it must work and tell the truth.

use doorstep_core::{DriverSession, JobState};
use std::process::Command;

#[test]
fn the_demo_walks_the_sample_day_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let mut out = Vec::new();
    let report = doorstep_sim::demo::run(&db, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();

    assert_eq!(report.final_states.get(&JobState::Delivered), Some(&8));
    assert_eq!(report.final_states.get(&JobState::Declined), Some(&1));
    assert_eq!(report.final_states.get(&JobState::Returned), Some(&1));
    assert_eq!(report.observed_changes, report.events as u64);
    assert!(text.contains("HPM-2406  failed        at_dropoff -> failed (id_check_failed)"), "{text}");
    assert!(text.contains("end of shift: 8 delivered, 1 declined, 1 returned"), "{text}");

    // The timeline printed is the one stored.
    let session = DriverSession::open(&db).unwrap();
    assert_eq!(session.events_after(0, u32::MAX).unwrap().len(), report.events);
    assert_eq!(text.lines().filter(|l| l.contains(" UTC ")).count(), report.events);
}

#[test]
fn the_demo_command_refuses_to_reuse_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("used.db");
    std::fs::write(&db, b"").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_doorstep-sim")).args(["demo", "--db"]).arg(&db).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
}
