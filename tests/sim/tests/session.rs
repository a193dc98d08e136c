//! The driver session as a shell uses it: import, list, transitions,
//! persistence, observers, and every kind of bad input.

mod common;

use common::*;
use doorstep_core::*;
use serde_json::json;
use std::sync::Arc;

#[test]
fn the_sample_day_imports_whole() {
    let fx = Fixture::new();
    let session = fx.open();
    let outcome = session.import_document(MALL_PICKUP_RUN.as_bytes()).unwrap();
    assert_eq!((outcome.created(), outcome.updated()), (10, 0));

    let jobs = session.jobs().unwrap();
    assert_eq!(jobs.len(), 10);
    assert!(jobs.iter().all(|j| j.state == JobState::Assigned && j.version == 0));
    assert!(jobs.windows(2).all(|w| w[0].dropoff_window.start <= w[1].dropoff_window.start), "drop-off order");

    let wine = jobs.iter().find(|j| j.reference == "HPM-2403").unwrap();
    let job = session.job(wine.id).unwrap();
    assert_eq!(job.pickup.store.name, "Cellar Door Wines");
    assert_eq!(job.pod.minimum_age, Some(21));
    assert!(job.pod.pin.is_some());
    assert_eq!(job.dropoff.door_ids, vec!["lobby-north", "lobby-south"]);
    assert!(job.packages.iter().all(|p| p.has_flag(PackageFlag::AgeRestricted)));
    assert_eq!(job.packages.len() as u32, wine.package_count);
    assert_eq!(job.pickup.store.opening_hours.iter().find(|h| h.weekday == Weekday::Friday).unwrap().closes_minute, 25 * 60);
}

#[test]
fn a_transition_is_durable_and_recorded() {
    let fx = Fixture::new();
    let job_id = {
        let session = fx.open_with_sample();
        let id = session.jobs().unwrap()[0].id;
        fx.clock.advance(chrono::Duration::minutes(3));
        let job = session.apply(id, Transition::Accept).unwrap();
        assert_eq!((job.state, job.version), (JobState::Accepted, 1));
        assert_eq!(job.updated_at, fx.clock.now());
        id
    };
    let reopened = fx.open();
    assert_eq!(reopened.job(job_id).unwrap().state, JobState::Accepted);
    let history = reopened.history(job_id).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].kind, JobEventKind::Imported);
    assert_eq!((history[1].from_state, history[1].to_state), (Some(JobState::Assigned), JobState::Accepted));
    assert_eq!(history[1].at, fx.clock.now());
}

#[test]
fn an_illegal_transition_names_both_states_and_changes_nothing() {
    let fx = Fixture::new();
    let session = fx.open_with_sample();
    let id = session.jobs().unwrap()[0].id;
    let before = session.job(id).unwrap();
    let err = session.apply(id, Transition::Deliver).unwrap_err();
    assert_eq!(err, CoreError::InvalidTransition { from: JobState::Assigned, to: JobState::Delivered });
    assert_eq!(session.job(id).unwrap(), before);
    assert_eq!(session.history(id).unwrap().len(), 1);
}

#[test]
fn an_unknown_job_is_not_found() {
    let fx = Fixture::new();
    let session = fx.open_with_sample();
    let missing = uuid::Uuid::new_v4();
    for err in [
        session.apply(missing, Transition::Accept).unwrap_err(),
        session.job(missing).unwrap_err(),
        session.history(missing).unwrap_err(),
    ] {
        assert_eq!(err, CoreError::NotFound { what: "job".into(), id: missing.to_string() });
    }
}

#[test]
fn failure_reasons_travel_with_the_job_until_it_is_back() {
    let fx = Fixture::new();
    let session = fx.open_with_sample();
    let id = session.jobs().unwrap()[0].id;
    for t in [Transition::Accept, Transition::ArriveAtPickup, Transition::ConfirmPickup, Transition::ArriveAtDropoff] {
        session.apply(id, t).unwrap();
    }
    let failed = session.apply(id, Transition::Fail { reason: FailureReason::NoAccessToBuilding }).unwrap();
    assert_eq!((failed.state, failed.failure), (JobState::Failed, Some(FailureReason::NoAccessToBuilding)));
    let returned = [Transition::StartReturn, Transition::CompleteReturn]
        .into_iter()
        .map(|t| session.apply(id, t).unwrap())
        .last()
        .unwrap();
    assert_eq!((returned.state, returned.failure), (JobState::Returned, Some(FailureReason::NoAccessToBuilding)));
    assert!(session.apply(id, Transition::Reattempt).is_err());
}

#[test]
fn reimporting_updates_the_definition_and_keeps_the_drivers_progress() {
    let fx = Fixture::new();
    let session = fx.open_with_sample();
    let id = session.jobs().unwrap().iter().find(|j| j.reference == "HPM-2401").unwrap().id;
    session.apply(id, Transition::Accept).unwrap();

    let changed = sample_with("/jobs/0/dropoff/access_notes", json!("Use the side door"));
    let outcome = session.import_document(changed.as_bytes()).unwrap();
    assert_eq!((outcome.created(), outcome.updated(), outcome.unchanged()), (0, 1, 9));
    let job = session.job(id).unwrap();
    assert_eq!(job.state, JobState::Accepted);
    assert_eq!(job.dropoff.access_notes.as_deref(), Some("Use the side door"));
    let last = session.history(id).unwrap().pop().unwrap();
    assert_eq!((last.kind, last.from_state, last.to_state), (JobEventKind::Updated, Some(JobState::Accepted), JobState::Accepted));
}

/// Each bad document is rejected with the field that is wrong, and the
/// store is exactly as it was.
#[test]
fn bad_documents_name_the_field_and_change_nothing() {
    let cases: Vec<(String, &str)> = vec![
        ("not json at all".into(), "document"),
        ("{\"format\": \"doorstep.dispatch/1\", \"jobs\": []} trailing".into(), "document"),
        (sample_with("/format", json!("doorstep.dispatch/9")), "format"),
        (sample_with("/jobs/3/dropoff/location/lat", json!(91.5)), "jobs[3].dropoff.location.lat"),
        (sample_with("/jobs/3/dropoff/location/lon", json!("west")), "jobs[3].dropoff.location.lon"),
        (sample_with("/jobs/1/packages/0/flags", json!(["explosive"])), "jobs[1].packages[0].flags[0]"),
        (sample_with("/jobs/2/id", json!("not-a-uuid")), "jobs[2].id"),
        (sample_with("/jobs/4/id", sample_value("/jobs/0/id")), "jobs[4].id"),
        (sample_with("/jobs/5/pickup/store_id", json!("8b6f8e0a-0d0e-5a57-9a5e-6f3a1c7f7b11")), "jobs[5].pickup.store_id"),
        (sample_with("/jobs/6/dropoff/window/end", json!("2026-11-23T10:00:00Z")), "jobs[6].dropoff.window.end"),
        (sample_with("/jobs/7/packages", json!([])), "jobs[7].packages"),
        (sample_with("/jobs/2/pod/allowed_methods", json!(["left_at_door"])), "jobs[2].pod.allowed_methods"),
        (sample_with("/jobs/0/pod/min_photos", json!(-1)), "jobs[0].pod.min_photos"),
        (sample_with("/jobs/0/pod/min_photos", json!(500)), "jobs[0].pod.min_photos"),
        (sample_with("/jobs/0/reference", json!("   ")), "jobs[0].reference"),
        (sample_with("/stores/0/opening_hours/0/opens", json!("9am")), "stores[0].opening_hours[0].opens"),
        (sample_with("/jobs/8/packages/0/barcode", json!("DS100000")), "jobs[8].packages[0].barcode"),
        (sample_with("/jobs/0/route/precision", json!(7)), "jobs[0].route.precision"),
        (sample_with("/jobs/0/route/polyline", json!("not a polyline")), "jobs[0].route.polyline"),
    ];
    let fx = Fixture::new();
    let session = fx.open();
    let empty_id = session.path();
    assert!(session.jobs().unwrap().is_empty(), "{}", empty_id.display());
    for (document, field) in &cases {
        match session.import_document(document.as_bytes()) {
            Err(CoreError::InvalidInput { field: got, reason }) => {
                assert_eq!(&got, field, "wrong field for {reason}");
                assert!(!reason.is_empty());
            }
            other => panic!("expected InvalidInput for {field}, got {other:?}"),
        }
        assert!(session.jobs().unwrap().is_empty(), "a rejected document ({field}) left jobs behind");
    }
}

#[test]
fn a_barcode_already_held_by_another_job_rejects_the_whole_document() {
    let fx = Fixture::new();
    let session = fx.open_with_sample();
    let before: Vec<_> = session.jobs().unwrap();
    // A second day's document whose last job reuses a barcode from today.
    let tomorrow = doorstep_sim::synthetic::document(5, 2, "2026-11-24T16:00:00Z".parse().unwrap());
    let mut doc: serde_json::Value = serde_json::from_str(&tomorrow).unwrap();
    doc["jobs"][4]["packages"][0]["barcode"] = json!("DS100000");
    let err = session.import_document(doc.to_string().as_bytes()).unwrap_err();
    assert!(matches!(&err, CoreError::InvalidInput { field, .. } if field == "jobs[4].packages[0]"), "{err:?}");
    assert_eq!(session.jobs().unwrap(), before, "the first four jobs must not have been written");
}

#[test]
fn observers_hear_every_change_in_order_on_a_core_thread() {
    let fx = Fixture::new();
    let session = fx.open();
    let recorder = Arc::new(Recorder::default());
    let _subscription = session.subscribe(recorder.clone());
    session.import_document(MALL_PICKUP_RUN.as_bytes()).unwrap();
    let id = session.jobs().unwrap()[0].id;
    session.apply(id, Transition::Accept).unwrap();
    session.apply(id, Transition::ArriveAtPickup).unwrap();

    let seen = recorder.wait_for(12);
    assert_eq!(seen.len(), 12);
    assert!(seen.windows(2).all(|w| w[0].0.sequence < w[1].0.sequence), "commit order");
    assert!(seen.iter().all(|(_, thread)| *thread != std::thread::current().id()), "never the caller's thread");
    assert_eq!(seen[11].0.to_state, JobState::AtPickup);
}

struct Faulty;

impl JobObserver for Faulty {
    fn job_changed(&self, event: &JobEvent) -> Result<(), String> {
        match event.to_state {
            JobState::Accepted => panic!("observer bug"),
            JobState::Declined => Err("ui gone".into()),
            _ => Ok(()),
        }
    }
}

#[test]
fn a_failing_or_panicking_observer_is_recorded_and_does_not_stop_delivery() {
    let fx = Fixture::new();
    let session = fx.open_with_sample();
    let jobs = session.jobs().unwrap();
    let _faulty = session.subscribe(Arc::new(Faulty));
    let recorder = Arc::new(Recorder::default());
    let _recorder = session.subscribe(recorder.clone());

    session.apply(jobs[0].id, Transition::Accept).unwrap();
    session.apply(jobs[1].id, Transition::Decline).unwrap();
    session.apply(jobs[0].id, Transition::ArriveAtPickup).unwrap();
    assert_eq!(recorder.wait_for(3).len(), 3);
    wait_until(|| session.observer_health().delivered == 4);
    let health = session.observer_health();
    assert_eq!(health.failed, 2);
    assert_eq!(health.last_error.as_deref(), Some("ui gone"));
    assert_eq!(health.delivered, 4);
    assert_eq!(session.job(jobs[0].id).unwrap().state, JobState::AtPickup);
}

#[test]
fn a_cancelled_subscription_hears_nothing_more() {
    let fx = Fixture::new();
    let session = fx.open_with_sample();
    let id = session.jobs().unwrap()[0].id;
    let recorder = Arc::new(Recorder::default());
    let subscription = session.subscribe(recorder.clone());
    session.apply(id, Transition::Accept).unwrap();
    assert_eq!(recorder.wait_for(1).len(), 1);
    subscription.cancel();
    session.apply(id, Transition::ArriveAtPickup).unwrap();
    // A sentinel observer proves the later change was delivered to others.
    let sentinel = Arc::new(Recorder::default());
    let _s = session.subscribe(sentinel.clone());
    session.apply(id, Transition::ConfirmPickup).unwrap();
    sentinel.wait_for(1);
    assert_eq!(recorder.events.lock().unwrap().len(), 1);
}

#[test]
fn async_calls_run_on_the_cores_runtime() {
    let fx = Fixture::new();
    let session = fx.open();
    // A plain executor with no tokio in sight, as a Kotlin or Swift caller has.
    let outcome = futures_lite_block_on(session.import_document_async(MALL_PICKUP_RUN.as_bytes().to_vec())).unwrap();
    let id = outcome.jobs[0].job_id;
    let job = futures_lite_block_on(session.apply_async(id, Transition::Accept)).unwrap();
    assert_eq!(job.state, JobState::Accepted);
    let err = futures_lite_block_on(session.apply_async(id, Transition::Accept)).unwrap_err();
    assert!(matches!(err, CoreError::InvalidTransition { .. }));
}

/// The smallest executor: poll on this thread, park until woken.
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

#[test]
fn a_batch_of_actions_is_all_or_nothing() {
    let fx = Fixture::new();
    let session = fx.open_with_sample();
    let ids: Vec<_> = session.jobs().unwrap().iter().map(|j| j.id).collect();
    let events = session.apply_all(&ids.iter().map(|&id| (id, Transition::Accept)).collect::<Vec<_>>()).unwrap();
    assert_eq!(events.len(), ids.len());
    assert!(session.jobs().unwrap().iter().all(|j| j.state == JobState::Accepted));

    // The last action is illegal: none of the batch may stick.
    let mut actions: Vec<_> = ids.iter().map(|&id| (id, Transition::ArriveAtPickup)).collect();
    actions.push((ids[0], Transition::Deliver));
    let err = session.apply_all(&actions).unwrap_err();
    assert_eq!(err, CoreError::InvalidTransition { from: JobState::AtPickup, to: JobState::Delivered });
    assert!(session.jobs().unwrap().iter().all(|j| j.state == JobState::Accepted && j.version == 1));
}
