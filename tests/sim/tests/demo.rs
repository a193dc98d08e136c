//! The demo is the README's first command: it must work and tell the truth.

use doorstep_core::{DriverSession, JobState};
use std::process::Command;

struct Ran {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    report: doorstep_sim::demo::DemoReport,
    text: String,
}

fn run_demo() -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let mut out = Vec::new();
    let report = doorstep_sim::demo::run(&db, &mut out).unwrap();
    Ran { _dir: dir, db, report, text: String::from_utf8(out).unwrap() }
}

fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn the_demo_walks_the_sample_day_to_its_end() {
    // The temporary directory must outlive the reopen below.
    let Ran { _dir, db, report, text } = run_demo();

    assert_eq!(report.final_states.get(&JobState::Delivered), Some(&8));
    assert_eq!(report.final_states.get(&JobState::Declined), Some(&1));
    assert_eq!(report.final_states.get(&JobState::Returned), Some(&1));
    assert_eq!(report.final_states.values().sum::<usize>(), 10, "{:?}", report.final_states);
    assert_eq!(report.observed_changes, report.events as u64);
    assert!(text.contains("HPM-2406  failed        at_dropoff -> failed (id_check_failed)"), "{text}");
    assert!(text.contains("end of shift: 8 delivered, 1 declined, 1 returned"), "{text}");

    // The timeline printed is the one stored: job events, unlocks, receipts
    // and sealed records, each read back from the driver's database.
    let session = DriverSession::open(&db).unwrap();
    assert_eq!(session.events_after(0, u32::MAX).unwrap().len(), report.events);
    assert_eq!(session.unlock_history().unwrap().len(), report.unlock_outcomes.len());
    assert_eq!(session.outbox().unwrap().len(), report.outbox.total);
    let records: usize = session.jobs().unwrap().iter().map(|j| session.pod_records(j.id).unwrap().len()).sum();
    assert_eq!(records, report.delivery_records + report.failed_records);
    let timeline_lines = report.events + report.unlock_outcomes.len() + report.receipts + records;
    assert_eq!(text.lines().filter(|l| l.contains(" UTC ")).count(), timeline_lines, "{text}");
}

#[test]
fn the_timeline_is_in_time_order() {
    let Ran { text, .. } = run_demo();
    let times: Vec<&str> = text.lines().filter(|l| l.contains(" UTC ")).map(|l| &l[..5]).collect();
    assert!(times.len() > 60);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{text}");
}

#[test]
fn every_store_hands_over_by_qr_and_the_wine_goes_back_the_same_way() {
    let Ran { report, text, .. } = run_demo();
    // One pickup per store, one return; both devices keep every receipt.
    assert_eq!(report.receipts, 4);
    assert_eq!(report.store_receipts, 4);
    let pickups = lines_with(&text, " handoff ");
    assert_eq!(pickups.len(), 3, "{text}");
    let returns = lines_with(&text, " return ");
    assert_eq!(returns.len(), 1, "{text}");
    assert!(returns[0].contains("Cellar Door Wines: HPM-2406"), "{text}");
    for line in pickups.iter().chain(&returns) {
        assert!(line.contains("offer QR version ") && line.contains(" chars; receipt "), "{line}");
    }
    // Nine jobs picked up and one returned, each by a handoff and never by hand.
    assert_eq!(lines_with(&text, "picked up     at_pickup -> picked_up").len(), 9, "{text}");
    assert!(text.contains("Northwind Books: HPM-2401, HPM-2404, HPM-2407, HPM-2409"), "{text}");
    assert!(text.contains("returned      returning -> returned (id_check_failed)"), "{text}");
}

#[test]
fn every_lobby_door_opens_offline_with_a_locally_issued_grant() {
    let Ran { report, text, .. } = run_demo();
    // HPM-2401, 2403, 2405 (twice: the reattempt) and 2408 name doors.
    assert_eq!(report.unlock_outcomes, vec!["opened"; 5]);
    let doors = lines_with(&text, " door          lock ");
    assert_eq!(doors.len(), 5, "{text}");
    assert!(doors.iter().all(|l| l.contains(": opened (3 BLE messages, grant ")), "{text}");
    assert_eq!(lines_with(&text, "HPM-2405  door ").len(), 2, "{text}");
    assert!(lines_with(&text, "HPM-2402  door ").is_empty(), "no door for a drop-off without one");
}

#[test]
fn every_outcome_is_sealed_with_what_its_job_requires() {
    let Ran { report, text, .. } = run_demo();
    assert_eq!(report.delivery_records, 8);
    assert_eq!(report.failed_records, 2);
    let proofs = lines_with(&text, " proof sealed ");
    assert_eq!(proofs.len(), 8, "{text}");
    for line in &proofs {
        let scanned = line.split(", ").find(|p| p.ends_with(" scanned")).unwrap_or_else(|| panic!("{line}"));
        let (done, of) = scanned.trim_end_matches(" scanned").split_once('/').unwrap();
        assert_eq!(done, of, "every package scanned: {line}");
        assert!(line.contains("1 photo(s)") && line.contains("within_geofence"), "{line}");
    }
    let strict = lines_with(&text, "HPM-2403  proof sealed");
    assert!(strict[0].contains("signature, name Priya Nair, 1/1 scanned, PIN ok, age 21+ ok"), "{text}");
    let failures = lines_with(&text, " failure proof ");
    assert_eq!(failures.len(), 2, "{text}");
    assert!(failures.iter().any(|l| l.contains("HPM-2405") && l.contains("recipient_unavailable")), "{text}");
    assert!(failures.iter().any(|l| l.contains("HPM-2406") && l.contains("id_check_failed") && l.contains("age 21+ NOT met")), "{text}");
}

#[test]
fn the_outbox_holds_every_action_upload_and_record_for_dispatch() {
    let Ran { report, text, .. } = run_demo();
    let outbox = &report.outbox;
    // Every transition is an action (all events but the ten imports).
    assert_eq!(outbox.actions, report.events - 10);
    // A photo per sealed record and the one signature image.
    assert_eq!(outbox.uploads, 11);
    assert_eq!(outbox.records.get("proof_of_delivery"), Some(&8));
    assert_eq!(outbox.records.get("failed_delivery"), Some(&2));
    assert_eq!(outbox.records.get("door_audit"), Some(&5));
    // A receipt rides on each job's move: nine pickups and one return.
    assert_eq!(outbox.records.get("handoff_receipt"), Some(&10));
    assert_eq!(outbox.total, outbox.actions + outbox.uploads + 5, "door audits are records of their own");
    let summary = format!("outbox: {} mutations queued for dispatch: {} actions, 11 uploads;", outbox.total, outbox.actions);
    assert!(text.contains(&summary), "{text}");
    assert!(text.contains("door unlocks: 5 attempted, 5 opened"), "{text}");
    assert!(text.contains("handoff receipts: 4 on the driver's device, 4 on the stores' devices"), "{text}");
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
