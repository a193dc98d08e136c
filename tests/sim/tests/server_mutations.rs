//! `POST /v1/mutations` over HTTP: exactly once, in order, each mutation with
//! its own outcome; a bad batch changes nothing.

mod server_support;

use doorstep_sim::server::wire::{JobStatus, Outcome};
use reqwest::StatusCode;
use server_support::{assign, batch, mutation, start};
use uuid::Uuid;

#[test]
fn the_same_batch_twice_is_applied_once() {
    let (_server, admin) = start();
    let jobs = assign(&admin, "driver-a", 1);
    let device = admin.driver("driver-a").unwrap();
    let client = Uuid::new_v4();
    let sent = batch(client, vec![mutation(1, jobs[0], "accept"), mutation(2, jobs[0], "arrive_at_pickup")]);

    let first = device.post_mutations(&sent).unwrap();
    assert_eq!(first.last_processed_mutation_id, 2);
    assert_eq!(first.results.iter().map(|r| r.outcome).collect::<Vec<_>>(), [Outcome::Applied, Outcome::Applied]);
    assert_eq!(first.results[1].job_state.as_deref(), Some("at_pickup"));
    let revision_after_first = admin.job(jobs[0]).unwrap().revision;

    let second = device.post_mutations(&sent).unwrap();
    assert_eq!(second.last_processed_mutation_id, 2);
    for result in &second.results {
        assert_eq!(result.outcome, Outcome::Duplicate);
        assert_eq!(result.outcome_of_original, Some(Outcome::Applied));
        assert_eq!(result.job_state.as_deref(), Some("at_pickup"));
    }
    let job = admin.job(jobs[0]).unwrap();
    assert_eq!(job.state, "at_pickup");
    assert_eq!(job.revision, revision_after_first, "a duplicate changes nothing");
    let record = admin.client_record(client).unwrap();
    assert_eq!(record.last_processed_mutation_id, 2);
    assert_eq!(record.processed.iter().map(|p| p.mutation_id).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn an_overlapping_batch_processes_only_the_new_mutations() {
    let (_server, admin) = start();
    let jobs = assign(&admin, "driver-a", 1);
    let device = admin.driver("driver-a").unwrap();
    let client = Uuid::new_v4();
    device
        .post_mutations(&batch(client, vec![mutation(1, jobs[0], "accept"), mutation(2, jobs[0], "arrive_at_pickup")]))
        .unwrap();

    let overlapping = batch(
        client,
        vec![
            mutation(2, jobs[0], "arrive_at_pickup"),
            mutation(3, jobs[0], "confirm_pickup"),
            mutation(4, jobs[0], "arrive_at_dropoff"),
        ],
    );
    let results = device.post_mutations(&overlapping).unwrap();
    assert_eq!(
        results.results.iter().map(|r| r.outcome).collect::<Vec<_>>(),
        [Outcome::Duplicate, Outcome::Applied, Outcome::Applied]
    );
    assert_eq!(results.last_processed_mutation_id, 4);
    assert_eq!(admin.job(jobs[0]).unwrap().state, "at_dropoff");
    let processed = admin.client_record(client).unwrap().processed;
    assert_eq!(
        processed.iter().map(|p| (p.mutation_id, p.action.as_str())).collect::<Vec<_>>(),
        [(1, "accept"), (2, "arrive_at_pickup"), (3, "confirm_pickup"), (4, "arrive_at_dropoff")]
    );
}

#[test]
fn ids_that_do_not_increase_refuse_the_whole_batch() {
    let (_server, admin) = start();
    let jobs = assign(&admin, "driver-a", 1);
    let device = admin.driver("driver-a").unwrap();
    let client = Uuid::new_v4();
    let revision_before = admin.job(jobs[0]).unwrap().revision;

    for ids in [[1, 1], [2, 1]] {
        let bad =
            batch(client, vec![mutation(ids[0], jobs[0], "accept"), mutation(ids[1], jobs[0], "arrive_at_pickup")]);
        let err = device.post_mutations(&bad).unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::UNPROCESSABLE_ENTITY), "{err}");
        assert_eq!(err.problem().and_then(|p| p.field.as_deref()), Some("mutations[1].mutation_id"));
    }
    let job = admin.job(jobs[0]).unwrap();
    assert_eq!((job.state.as_str(), job.revision), ("assigned", revision_before), "nothing was processed");
    assert_eq!(
        admin.client_record(client).unwrap_err().status(),
        Some(StatusCode::NOT_FOUND),
        "the client was never recorded"
    );
}

#[test]
fn a_bad_mutation_anywhere_refuses_the_batch_before_any_is_processed() {
    let (_server, admin) = start();
    let jobs = assign(&admin, "driver-a", 1);
    let device = admin.driver("driver-a").unwrap();
    let client = Uuid::new_v4();

    let unknown_action = batch(client, vec![mutation(1, jobs[0], "accept"), mutation(2, jobs[0], "teleport")]);
    let err = device.post_mutations(&unknown_action).unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNPROCESSABLE_ENTITY));
    assert_eq!(err.problem().and_then(|p| p.field.as_deref()), Some("mutations[1].action"));

    let reasonless_failure = batch(client, vec![mutation(1, jobs[0], "fail")]);
    let err = device.post_mutations(&reasonless_failure).unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNPROCESSABLE_ENTITY));
    assert_eq!(err.problem().and_then(|p| p.field.as_deref()), Some("mutations[0].failure_reason"));

    let too_many = batch(client, (1..=501).map(|id| mutation(id, jobs[0], "accept")).collect());
    assert_eq!(device.post_mutations(&too_many).unwrap_err().status(), Some(StatusCode::PAYLOAD_TOO_LARGE));

    assert_eq!(admin.job(jobs[0]).unwrap().state, "assigned");
    assert!(admin.client_record(client).is_err());
}

#[test]
fn malformed_bodies_are_problems_not_plain_text() {
    let (_server, admin) = start();
    let device = admin.driver("driver-a").unwrap();
    for (content_type, body) in [
        ("application/json", "{not json"),
        ("application/json", r#"{"client_id": "not-a-uuid", "mutations": []}"#),
        (
            "application/json",
            r#"{"client_id": "6d1f7c9e-3a52-4c1e-9b8e-2f1a0c3d4e5f", "mutations": [{"mutation_id": "one"}]}"#,
        ),
        ("text/plain", "{}"),
    ] {
        let response = device
            .request(reqwest::Method::POST, "/v1/mutations")
            .header("content-type", content_type)
            .body(body)
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{body}");
        let problem: serde_json::Value = response.json().unwrap();
        assert_eq!(problem["status"], 400);
    }
}

#[test]
fn illegal_moves_and_unknown_jobs_are_rejected_and_still_count_as_processed() {
    let (_server, admin) = start();
    let jobs = assign(&admin, "driver-a", 1);
    let device = admin.driver("driver-a").unwrap();
    let client = Uuid::new_v4();
    let mut failing = mutation(3, jobs[0], "fail");
    failing.failure_reason = Some("recipient_unavailable".to_owned());

    let results = device
        .post_mutations(&batch(
            client,
            vec![mutation(1, jobs[0], "deliver"), mutation(2, Uuid::new_v4(), "accept"), failing],
        ))
        .unwrap();
    let outcomes: Vec<_> = results.results.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::Rejected, Outcome::Rejected, Outcome::Rejected]);
    let illegal = results.results[0].problem.as_ref().unwrap();
    assert_eq!((illegal.kind.as_str(), illegal.status), ("/problems/invalid-transition", 409));
    let detail = illegal.detail.as_deref().unwrap_or("");
    assert!(detail.contains("assigned") && detail.contains("delivered"), "{detail}");
    let unknown = results.results[1].problem.as_ref().unwrap();
    assert_eq!((unknown.kind.as_str(), unknown.status), ("/problems/unknown-job", 404));
    assert_eq!(results.last_processed_mutation_id, 3);

    let again = device.post_mutations(&batch(client, vec![mutation(1, jobs[0], "deliver")])).unwrap();
    assert_eq!(again.results[0].outcome, Outcome::Duplicate);
    assert_eq!(again.results[0].outcome_of_original, Some(Outcome::Rejected));
    assert_eq!(admin.job(jobs[0]).unwrap().state, "assigned");
}

#[test]
fn a_job_held_by_another_driver_is_unknown_to_this_one() {
    let (_server, admin) = start();
    let jobs = assign(&admin, "driver-a", 1);
    let stranger = admin.driver("driver-b").unwrap();
    let results = stranger.post_mutations(&batch(Uuid::new_v4(), vec![mutation(1, jobs[0], "accept")])).unwrap();
    assert_eq!(results.results[0].outcome, Outcome::Rejected);
    assert_eq!(results.results[0].problem.as_ref().map(|p| p.status), Some(404));
    assert_eq!(admin.job(jobs[0]).unwrap().state, "assigned");
}

#[test]
fn an_id_below_a_gap_is_a_duplicate_without_an_original() {
    let (_server, admin) = start();
    let jobs = assign(&admin, "driver-a", 1);
    let device = admin.driver("driver-a").unwrap();
    let client = Uuid::new_v4();
    device.post_mutations(&batch(client, vec![mutation(10, jobs[0], "accept")])).unwrap();

    let results = device.post_mutations(&batch(client, vec![mutation(5, jobs[0], "decline")])).unwrap();
    assert_eq!(results.results[0].outcome, Outcome::Duplicate);
    assert_eq!(results.results[0].outcome_of_original, None);
    assert_eq!(results.last_processed_mutation_id, 10);
    assert_eq!(admin.job(jobs[0]).unwrap().state, "accepted");
}

#[test]
fn an_action_on_a_cancelled_job_is_recorded_as_a_conflict() {
    let (_server, admin) = start();
    let jobs = assign(&admin, "driver-a", 1);
    let device = admin.driver("driver-a").unwrap();
    let client = Uuid::new_v4();
    device.post_mutations(&batch(client, vec![mutation(1, jobs[0], "accept")])).unwrap();
    let cancelled = admin.cancel_job(jobs[0]).unwrap();
    assert_eq!(
        (cancelled.status, cancelled.state.as_str()),
        (JobStatus::Cancelled, "accepted"),
        "cancel keeps the physical state"
    );

    let results = device.post_mutations(&batch(client, vec![mutation(2, jobs[0], "arrive_at_pickup")])).unwrap();
    let result = &results.results[0];
    assert_eq!(result.outcome, Outcome::Conflict);
    assert_eq!(result.job_status, Some(JobStatus::Cancelled));
    assert_eq!(result.job_state.as_deref(), Some("accepted"));

    let job = admin.job(jobs[0]).unwrap();
    assert_eq!(job.state, "accepted", "a conflict leaves the server's state alone");
    assert_eq!(job.revision, cancelled.revision + 1, "a recorded conflict is a change");
    assert_eq!(job.conflicts.len(), 1);
    let conflict = &job.conflicts[0];
    assert_eq!((conflict.mutation_id, conflict.client_id, conflict.action.as_str()), (2, client, "arrive_at_pickup"));
    assert_eq!(conflict.server_status, JobStatus::Cancelled);
    assert_eq!(admin.client_record(client).unwrap().processed[1].outcome, Outcome::Conflict);
}

#[test]
fn an_action_on_a_job_reassigned_away_is_a_conflict_for_the_old_driver() {
    let (_server, admin) = start();
    let jobs = assign(&admin, "driver-a", 1);
    let old_driver = admin.driver("driver-a").unwrap();
    admin.reassign_job(jobs[0], "driver-b").unwrap();

    let results = old_driver.post_mutations(&batch(Uuid::new_v4(), vec![mutation(1, jobs[0], "accept")])).unwrap();
    assert_eq!(results.results[0].outcome, Outcome::Conflict);
    assert_eq!(results.results[0].job_status, Some(JobStatus::Reassigned));
    let job = admin.job(jobs[0]).unwrap();
    assert_eq!((job.driver_id.as_str(), job.state.as_str()), ("driver-b", "assigned"));
    assert_eq!(job.conflicts[0].server_status, JobStatus::Reassigned);

    let new_driver = admin.driver("driver-b").unwrap();
    let results = new_driver.post_mutations(&batch(Uuid::new_v4(), vec![mutation(1, jobs[0], "accept")])).unwrap();
    assert_eq!(results.results[0].outcome, Outcome::Applied);
}

fn with_record(mut mutation: doorstep_sim::server::wire::Mutation, kind: &str, body: serde_json::Value) -> doorstep_sim::server::wire::Mutation {
    mutation.record = Some(doorstep_sim::server::wire::MutationRecord { kind: kind.to_owned(), body });
    mutation
}

/// A handoff receipt both devices signed, listing `job` (the server checks
/// receipts; a made-up body would be refused).
fn signed_receipt(job: Uuid) -> serde_json::Value {
    use doorstep_core::handoff::codec::{Direction, OfferContent, OfferJob};
    use doorstep_core::handoff::{HandoffReceipt, receipt};
    use doorstep_core::keys::SoftwareSigner;
    let (staff, driver) = (SoftwareSigner::generate().unwrap(), SoftwareSigner::generate().unwrap());
    let content = OfferContent {
        direction: Direction::Pickup,
        handoff_id: Uuid::new_v4(),
        store_id: Uuid::new_v4(),
        staff_key: staff.device_public_key(),
        driver_key: driver.device_public_key(),
        created_at: receipt::whole_millis(chrono::Utc::now()),
        jobs: vec![OfferJob { job_id: job, confirmed: vec!["PKG-1".into()], discrepancies: vec![], partial_reason: None, previous_receipt: None }],
        extras: vec![],
    };
    let offer = receipt::sign_offer(content, &staff).unwrap();
    let acceptance = receipt::accept_offer(&offer, &driver, chrono::Utc::now()).unwrap();
    HandoffReceipt::verified(offer, acceptance).unwrap().to_record_body().unwrap()
}

#[test]
fn records_are_kept_with_their_action_or_alone_and_once() {
    let (_server, admin) = start();
    let jobs = assign(&admin, "driver-a", 1);
    let device = admin.driver("driver-a").unwrap();
    let client = Uuid::new_v4();
    let receipt = signed_receipt(jobs[0]);
    let lock_record = doorstep_core::access::audit::AuditRecord {
        sequence: 1,
        lock_id: 7,
        door_id: 9,
        lock_time: 1_800_000_000,
        grant_id: [1; 8],
        job_tag: [2; 4],
        counter: 3,
        action: 1,
        reason: 0,
        mac: [0; 32],
    }
    .sealed(&[5; 32]);
    let audit = serde_json::json!({
        "lock_id": 7, "counter": 3, "outcome": "opened",
        "audit_record": doorstep_core::keys::hex(&lock_record.encode()),
    });
    let sent = batch(
        client,
        vec![
            mutation(1, jobs[0], "accept"),
            with_record(mutation(2, jobs[0], "record"), "door_audit", audit.clone()),
            mutation(3, jobs[0], "arrive_at_pickup"),
            with_record(mutation(4, jobs[0], "confirm_pickup"), "handoff_receipt", receipt.clone()),
        ],
    );
    let results = device.post_mutations(&sent).unwrap();
    assert!(results.results.iter().all(|r| r.outcome == Outcome::Applied), "{results:?}");
    assert_eq!(results.results[1].job_state.as_deref(), Some("accepted"), "a record alone moves nothing");
    device.post_mutations(&sent).unwrap();

    let job = admin.job(jobs[0]).unwrap();
    assert_eq!(job.state, "picked_up");
    let kept: Vec<_> = job.records.iter().map(|r| (r.mutation_id, r.kind.as_str(), r.body.clone())).collect();
    assert_eq!(kept, [(2, "door_audit", audit), (4, "handoff_receipt", receipt)], "each record kept once");
    assert!(job.records.iter().all(|r| r.client_id == client));
}

#[test]
fn a_malformed_record_refuses_the_batch_and_names_the_field() {
    let (_server, admin) = start();
    let jobs = assign(&admin, "driver-a", 1);
    let device = admin.driver("driver-a").unwrap();
    let client = Uuid::new_v4();
    let cases = [
        (with_record(mutation(1, jobs[0], "record"), "selfie", serde_json::json!({})), "mutations[0].record.kind"),
        (with_record(mutation(1, jobs[0], "record"), "door_audit", serde_json::json!([1, 2])), "mutations[0].record.body"),
        (mutation(1, jobs[0], "record"), "mutations[0].record"),
    ];
    for (bad, field) in cases {
        let err = device.post_mutations(&batch(client, vec![bad])).unwrap_err();
        let text = format!("{err:?}");
        assert!(text.contains(field), "{field} not named in {text}");
    }
    assert!(admin.client_record(client).is_err(), "nothing was processed");
    assert!(admin.job(jobs[0]).unwrap().records.is_empty());
}
