//! Navigation in the driver session: the route planned from the driver's
//! jobs, fixes pushed one at a time, arrivals moving jobs (or suggested),
//! the state surviving a restart, and the completion policy.

mod common;

use common::*;
use doorstep_core::nav::{CompletionCheck, Fix, NavEvent, StopKind};
use doorstep_core::*;
use doorstep_sim::traces::{TraceBuilder, offset};

/// Accepts one job of the sample day and returns its id.
fn accepted_job(session: &DriverSession, reference: &str) -> uuid::Uuid {
    let id = session.jobs().unwrap().into_iter().find(|j| j.reference == reference).unwrap().id;
    session.apply(id, Transition::Accept).unwrap();
    id
}

/// A drive from 600 m south of `to` up to it, then a stop of two minutes.
fn drive_and_stop(to: GeoPoint, at: chrono::DateTime<chrono::Utc>, seed: u64) -> Vec<Fix> {
    let start = offset(to, 0.0, -600.0);
    let mut trace = TraceBuilder::new(start, at, seed);
    trace.interval_s(1.0).noise_m(3.0).accuracy_m(8.0).drive(&[start, to], 9.0).dwell(120.0);
    trace.build()
}

#[test]
fn arriving_at_the_store_moves_the_job_to_at_pickup() {
    let fx = Fixture::new();
    let session = fx.open_with_sample();
    let job_id = accepted_job(&session, "HPM-2402");
    let store = session.job(job_id).unwrap().pickup.store.location;
    let origin = offset(store, 0.0, -600.0);
    let plan = session.start_navigation(origin, NavigationOptions::default()).unwrap();
    assert_eq!(plan.stops.iter().map(|s| s.kind).collect::<Vec<_>>(), vec![StopKind::Pickup, StopKind::Dropoff]);

    let mut arrived = Vec::new();
    for fix in drive_and_stop(store, fx.clock.now(), 7) {
        let snapshot = session.push_fix(fix).unwrap();
        arrived.extend(snapshot.events.iter().filter(|e| matches!(e, NavEvent::Arrived { .. })).cloned());
        if !snapshot.job_events.is_empty() {
            assert_eq!(snapshot.job_events[0].to_state, JobState::AtPickup);
        }
    }
    assert_eq!(arrived.len(), 1, "one arrival: {arrived:?}");
    let job = session.job(job_id).unwrap();
    assert_eq!(job.state, JobState::AtPickup);
    // The arrival is a driver action like any other: it goes to dispatch.
    assert!(session.outbox().unwrap().iter().any(|m| m.job_id == job_id && m.body.transition() == Some(Transition::ArriveAtPickup)));
}

#[test]
fn in_suggest_mode_an_arrival_is_offered_not_applied() {
    let fx = Fixture::new();
    let session = fx.open_with_sample();
    let job_id = accepted_job(&session, "HPM-2402");
    let store = session.job(job_id).unwrap().pickup.store.location;
    let options = NavigationOptions { arrival_mode: ArrivalMode::Suggest, ..NavigationOptions::default() };
    session.start_navigation(offset(store, 0.0, -600.0), options).unwrap();
    let mut suggested = Vec::new();
    for fix in drive_and_stop(store, fx.clock.now(), 11) {
        suggested.extend(session.push_fix(fix).unwrap().suggestions);
    }
    assert_eq!(suggested, vec![JobAction { job_id, transition: Transition::ArriveAtPickup }]);
    assert_eq!(session.job(job_id).unwrap().state, JobState::Accepted);
}

#[test]
fn navigation_resumes_after_the_app_is_killed() {
    let fx = Fixture::new();
    let fixes = {
        let session = fx.open_with_sample();
        let job_id = accepted_job(&session, "HPM-2402");
        let store = session.job(job_id).unwrap().pickup.store.location;
        session.start_navigation(offset(store, 0.0, -600.0), NavigationOptions::default()).unwrap();
        let fixes = drive_and_stop(store, fx.clock.now(), 3);
        for fix in &fixes[..30] {
            session.push_fix(fix.clone()).unwrap();
        }
        fixes
    };
    let session = fx.open();
    let restored = session.navigation().unwrap().expect("navigation survives a restart");
    assert_eq!(restored.state.accepted_fixes, 30);
    for fix in &fixes[30..] {
        session.push_fix(fix.clone()).unwrap();
    }
    assert_eq!(session.jobs().unwrap().iter().filter(|j| j.state == JobState::AtPickup).count(), 1);
}

#[test]
fn a_bad_fix_is_a_typed_error_and_changes_nothing() {
    let fx = Fixture::new();
    let session = fx.open_with_sample();
    let job_id = accepted_job(&session, "HPM-2402");
    let store = session.job(job_id).unwrap().pickup.store.location;
    session.start_navigation(offset(store, 0.0, -600.0), NavigationOptions::default()).unwrap();
    let before = session.navigation().unwrap().unwrap().state;
    let bad = Fix { latitude: f64::NAN, longitude: 0.0, horizontal_accuracy_m: 5.0, speed_mps: None, course_deg: None, at: fx.clock.now() };
    assert!(matches!(session.push_fix(bad), Err(CoreError::InvalidInput { .. })));
    assert_eq!(session.navigation().unwrap().unwrap().state, before);
}

#[test]
fn proof_of_delivery_far_from_the_door_needs_an_override() {
    let fx = Fixture::new();
    let session = fx.open_with_sample();
    let job_id = accepted_job(&session, "HPM-2402");
    let door = session.job(job_id).unwrap().dropoff.location;
    let at = |p: GeoPoint| Fix {
        latitude: p.latitude,
        longitude: p.longitude,
        horizontal_accuracy_m: 5.0,
        speed_mps: Some(0.0),
        course_deg: None,
        at: fx.clock.now(),
    };
    assert_eq!(session.completion_check(job_id, &at(door)).unwrap(), CompletionCheck::WithinGeofence);
    assert!(matches!(session.completion_check(job_id, &at(offset(door, 200.0, 0.0))).unwrap(), CompletionCheck::Warn { .. }));
    assert!(matches!(
        session.completion_check(job_id, &at(offset(door, 1000.0, 0.0))).unwrap(),
        CompletionCheck::NeedsOverride { .. }
    ));
}

#[test]
fn navigation_needs_an_accepted_job() {
    let fx = Fixture::new();
    let session = fx.open_with_sample();
    let origin = GeoPoint { latitude: 37.8, longitude: -122.27 };
    assert!(matches!(session.start_navigation(origin, NavigationOptions::default()), Err(CoreError::InvalidInput { .. })));
    assert!(matches!(session.navigation(), Ok(None)));
}

#[test]
fn the_completion_policy_after_a_restart_is_the_one_navigation_started_with() {
    let fx = Fixture::new();
    let job_id = {
        let session = fx.open_with_sample();
        let job_id = accepted_job(&session, "HPM-2402");
        let store = session.job(job_id).unwrap().pickup.store.location;
        let mut options = NavigationOptions::default();
        options.config.completion_block_distance_m = 2_000.0;
        session.start_navigation(offset(store, 0.0, -600.0), options).unwrap();
        job_id
    };
    let session = fx.open();
    let far = offset(session.job(job_id).unwrap().dropoff.location, 1000.0, 0.0);
    let fix = Fix { latitude: far.latitude, longitude: far.longitude, horizontal_accuracy_m: 5.0, speed_mps: None, course_deg: None, at: fx.clock.now() };
    assert!(matches!(session.completion_check(job_id, &fix).unwrap(), CompletionCheck::Warn { .. }));
}

#[test]
fn a_job_added_mid_route_is_sequenced_in_at_the_next_fix() {
    let fx = Fixture::new();
    let session = fx.open_with_sample();
    let first = accepted_job(&session, "HPM-2401");
    let second = accepted_job(&session, "HPM-2404");
    let store = session.job(first).unwrap().pickup.store.location;
    let start = offset(store, 0.0, -600.0);
    let plan = session.start_navigation(start, NavigationOptions::default()).unwrap();
    assert_eq!(plan.stops.len(), 4);

    let added = accepted_job(&session, "HPM-2407");
    let fix = Fix { latitude: start.latitude, longitude: start.longitude, horizontal_accuracy_m: 5.0, speed_mps: Some(8.0), course_deg: None, at: fx.clock.now() };
    let replanned = session.push_fix(fix).unwrap();
    assert_eq!(replanned.stops.len(), 6);
    for job in [first, second, added] {
        let kinds: Vec<_> = replanned.stops.iter().filter(|s| s.job_id == job).map(|s| s.kind).collect();
        assert_eq!(kinds, vec![StopKind::Pickup, StopKind::Dropoff], "pickup before drop-off for {job}");
    }
}

#[test]
fn a_rerouted_leg_is_followed_and_survives_a_restart() {
    let fx = Fixture::new();
    let (job_id, road) = {
        let session = fx.open_with_sample();
        let job_id = accepted_job(&session, "HPM-2402");
        let store = session.job(job_id).unwrap().pickup.store.location;
        let start = offset(store, 0.0, -600.0);
        session.start_navigation(start, NavigationOptions::default()).unwrap();
        let road = doorstep_core::nav::geometry::encode_polyline(&[start, offset(store, 300.0, -300.0), store], 6).unwrap();
        let bad = RouteGeometry { polyline: "not a polyline".into(), precision: 6 };
        assert!(matches!(session.accept_reroute(0, bad), Err(CoreError::InvalidInput { .. })));
        assert!(session.accept_reroute(9, road.clone()).is_err());
        let snapshot = session.accept_reroute(0, road.clone()).unwrap();
        assert_eq!(snapshot.stops[0].leg.as_ref(), Some(&road));
        (job_id, road)
    };
    let session = fx.open();
    let restored = session.navigation().unwrap().unwrap();
    assert_eq!(restored.stops[0].leg.as_ref(), Some(&road));
    assert_eq!(restored.stops[0].job_id, job_id);
}
