//! `kill -9` while proofs of delivery are being sealed: on reopening, each
//! job is either sealed and queued (delivered, its record kept, the record
//! and its photo upload in the outbox) or still has its draft intact
//! (not delivered, nothing queued for it) — never half of it.

mod kill_support;

use doorstep_core::pod::seal::{check_media, open_sealed_record};
use doorstep_core::store::MutationBody;
use doorstep_core::{DriverSession, JobState, Transition};
use std::collections::HashSet;
use uuid::Uuid;

#[test]
fn a_kill_during_finalize_leaves_each_proof_sealed_and_queued_or_its_draft_intact() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pod.db");
    let mut sealed: HashSet<Uuid> = HashSet::new();
    let mut drafted: HashSet<Uuid> = HashSet::new();
    let (mut whole_seals, mut intact_drafts) = (0, 0);
    for round in 0..5 {
        // An odd count ends on a `drafted` line: the kill lands in finalize.
        for line in kill_support::run_then_kill("pod-churn", 4, &db, 7 + round * 6) {
            let (what, id) = line.split_once(' ').unwrap();
            let id: Uuid = id.parse().unwrap();
            match what {
                "drafted" => drop(drafted.insert(id)),
                "sealed" => drop(sealed.insert(id)),
                other => panic!("unexpected line {other}"),
            }
        }
        let session = DriverSession::open(&db).unwrap();
        let outbox = session.outbox().unwrap();
        let media = session.media_store();
        for &job_id in &drafted {
            let job = session.job(job_id).unwrap();
            let records = session.pod_records(job_id).unwrap();
            let queued: Vec<_> = outbox.iter().filter(|m| m.job_id == job_id).collect();
            let deliver = queued.iter().find(|m| m.body.transition() == Some(Transition::Deliver));
            let uploads = queued.iter().filter(|m| matches!(m.body, MutationBody::Upload(_))).count();
            if job.state == JobState::Delivered {
                assert_eq!(records.len(), 1, "{job_id}: delivered with its record");
                assert!(session.pod_draft(job_id).is_err(), "{job_id}: the draft is gone");
                let deliver = deliver.unwrap_or_else(|| panic!("{job_id}: delivered but the record is not queued"));
                assert_eq!(deliver.body.record().unwrap().body.as_bytes(), records[0].as_slice());
                assert_eq!(uploads, 1, "{job_id}: the photo's upload is queued");
                let sealed_record = open_sealed_record(&records[0]).unwrap();
                check_media(&sealed_record.payload, &|sha| media.read(sha).ok()).unwrap();
                whole_seals += 1;
            } else {
                assert!(!sealed.contains(&job_id), "{job_id}: reported sealed but not delivered");
                assert_eq!(job.state, JobState::AtDropoff, "{job_id}");
                assert!(records.is_empty() && deliver.is_none() && uploads == 0, "{job_id}: half a seal");
                let draft = session.pod_draft(job_id).unwrap();
                assert_eq!((draft.photos.len(), draft.scans.len()), (1, 1), "{job_id}: the draft is intact");
                intact_drafts += 1;
            }
        }
    }
    assert!(whole_seals > 0, "some proofs were sealed");
    assert!(intact_drafts > 0, "some kills landed before a seal committed");
}
