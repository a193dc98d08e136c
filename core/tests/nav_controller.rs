//! The navigation controller through the public API: bad and ignored
//! fixes, arrival and departure, off-route and accepting a reroute, ETA,
//! persistence of the state, the completion policy and polygon geofences.

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::nav::{
    self, CompletionCheck, Fix, Geofence, NavConfig, NavEvent, NavPhase, NavState, Route, RouteStop, StopInput,
    StopKind, completion_check, geometry,
};
use doorstep_core::{CoreError, GeoPoint, TimeWindow};
use uuid::Uuid;

const START: GeoPoint = GeoPoint { latitude: 48.137, longitude: 11.575 };

fn t0() -> DateTime<Utc> {
    "2026-11-23T09:00:00Z".parse().unwrap()
}

/// The point `along` metres east of START and `north` metres north of that.
fn at(along: f64, north: f64) -> GeoPoint {
    let p = geometry::destination(START, 90.0, along);
    if north == 0.0 { p } else { geometry::destination(p, if north > 0.0 { 0.0 } else { 180.0 }, north.abs()) }
}

fn input(n: u128, location: GeoPoint, leg_from_to: Option<(f64, f64)>) -> StopInput {
    StopInput {
        job_id: Uuid::from_u128(n),
        kind: if n % 2 == 1 { StopKind::Pickup } else { StopKind::Dropoff },
        location,
        geofence: Geofence::Radius { radius_m: 30.0 },
        window: TimeWindow { start: t0(), end: t0() + TimeDelta::hours(4) },
        service_time_s: 120.0,
        leg: leg_from_to.map(|(from, to)| {
            let points: Vec<GeoPoint> =
                (0..=((to - from) / 50.0) as usize).map(|k| at(from + 50.0 * k as f64, 0.0)).collect();
            geometry::encode_polyline(&points, 6).unwrap()
        }),
    }
}

/// Stops at 1 km and 2 km east along a road with a vertex every 50 m.
fn route() -> Route {
    Route::new(
        None,
        vec![input(1, at(1_000.0, 0.0), Some((0.0, 1_000.0))), input(2, at(2_000.0, 0.0), Some((1_000.0, 2_000.0)))],
    )
    .unwrap()
}

fn fix(p: GeoPoint, seconds: f64, speed: Option<f64>) -> Fix {
    Fix {
        latitude: p.latitude,
        longitude: p.longitude,
        horizontal_accuracy_m: 5.0,
        speed_mps: speed,
        course_deg: Some(90.0),
        at: t0() + TimeDelta::milliseconds((seconds * 1000.0) as i64),
    }
}

/// Feeds fixes, returning the final state and every event.
fn feed(route: &Route, state: &NavState, fixes: &[Fix]) -> (NavState, Vec<NavEvent>) {
    let mut state = state.clone();
    let mut events = Vec::new();
    for f in fixes {
        let update = nav::update(route, &state, f, &NavConfig::default()).unwrap();
        events.extend(update.events);
        state = update.state;
    }
    (state, events)
}

/// Driving east along the road at 10 m/s from `from` to `to` metres, one
/// fix a second, starting at `t` seconds, `north` metres off the road.
fn drive(from: f64, to: f64, t: f64, north: f64) -> Vec<Fix> {
    let n = ((to - from) / 10.0) as usize;
    (0..=n).map(|k| fix(at(from + 10.0 * k as f64, north), t + k as f64, Some(10.0))).collect()
}

fn names(events: &[NavEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            NavEvent::Arrived { .. } => "arrived",
            NavEvent::Departed { .. } => "departed",
            NavEvent::OffRoute { .. } => "off_route",
            NavEvent::BackOnRoute => "back_on_route",
            NavEvent::RerouteRequested(_) => "reroute_requested",
        })
        .collect()
}

fn field_of(err: CoreError) -> String {
    match err {
        CoreError::InvalidInput { field, .. } => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn bad_fixes_are_typed_errors() {
    let route = route();
    let state = NavState::new(&route);
    let good = fix(at(0.0, 0.0), 0.0, Some(10.0));
    let config = NavConfig::default();
    let cases = [
        (Fix { latitude: f64::NAN, ..good }, "fix.latitude"),
        (Fix { latitude: 90.5, ..good }, "fix.latitude"),
        (Fix { longitude: -180.01, ..good }, "fix.longitude"),
        (Fix { longitude: f64::INFINITY, ..good }, "fix.longitude"),
        (Fix { horizontal_accuracy_m: -1.0, ..good }, "fix.horizontal_accuracy_m"),
        (Fix { horizontal_accuracy_m: f64::NAN, ..good }, "fix.horizontal_accuracy_m"),
        (Fix { speed_mps: Some(f64::NAN), ..good }, "fix.speed_mps"),
        (Fix { course_deg: Some(361.0), ..good }, "fix.course_deg"),
    ];
    for (bad, field) in cases {
        assert_eq!(field_of(nav::update(&route, &state, &bad, &config).unwrap_err()), field);
        assert_eq!(field_of(completion_check(&route.stops()[0], &bad, &config).unwrap_err()), field);
    }
    // CoreLocation's "unknown" (-1) speed and course are accepted as unknown.
    let unknown = Fix { speed_mps: Some(-1.0), course_deg: Some(-1.0), ..good };
    assert_eq!(nav::update(&route, &state, &unknown, &config).unwrap().state.accepted_fixes, 1);
    // A config without hysteresis is refused.
    let inverted = NavConfig { back_on_route_threshold_m: 80.0, ..config };
    assert_eq!(
        field_of(nav::update(&route, &state, &good, &inverted).unwrap_err()),
        "config.back_on_route_threshold_m"
    );
    assert_eq!(
        field_of(nav::update(&route, &state, &good, &NavConfig { arrival_min_fixes: 0, ..config }).unwrap_err()),
        "config.arrival_min_fixes"
    );
}

#[test]
fn stale_and_inaccurate_fixes_are_ignored_and_counted() {
    let route = route();
    let config = NavConfig::default();
    let (state, _) = feed(&route, &NavState::new(&route), &drive(0.0, 100.0, 0.0, 0.0));
    let last = state.last_fix_at.unwrap();

    let mut s = state.clone();
    for f in [
        fix(at(500.0, 0.0), 10.0, Some(10.0)), // same instant as the last
        fix(at(500.0, 0.0), 3.0, Some(10.0)),  // older
        Fix { horizontal_accuracy_m: 80.0, ..fix(at(500.0, 0.0), 11.0, Some(10.0)) }, // too vague
    ] {
        let update = nav::update(&route, &s, &f, &config).unwrap();
        assert!(update.events.is_empty());
        s = update.state;
    }
    assert_eq!((s.ignored_stale, s.ignored_inaccurate), (2, 1));
    assert_eq!(s.last_fix_at, Some(last));
    assert_eq!(NavState { ignored_stale: 0, ignored_inaccurate: 0, ..s.clone() }, state, "nothing else moved");

    // A looser limit accepts the vague fix.
    let loose = NavConfig { max_accuracy_m: 100.0, ..config };
    let f = Fix { horizontal_accuracy_m: 80.0, ..fix(at(110.0, 0.0), 11.0, Some(10.0)) };
    assert_eq!(nav::update(&route, &s, &f, &loose).unwrap().state.accepted_fixes, state.accepted_fixes + 1);
}

#[test]
fn arrival_needs_slow_fixes_inside_then_departure_moves_to_the_next_stop() {
    let route = route();
    let (state, events) = feed(&route, &NavState::new(&route), &drive(0.0, 990.0, 0.0, 0.0));
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(state.phase, NavPhase::Approaching);

    // Two slow fixes at the door: not yet (3 needed, and only 2 s dwelt).
    let (state, events) =
        feed(&route, &state, &[fix(at(1_000.0, 5.0), 100.0, Some(0.3)), fix(at(998.0, 4.0), 101.0, Some(0.0))]);
    assert!(events.is_empty());
    let (state, events) = feed(&route, &state, &[fix(at(1_001.0, 6.0), 102.0, Some(0.1))]);
    assert_eq!(events, vec![NavEvent::Arrived { stop_index: 0, job_id: Uuid::from_u128(1), kind: StopKind::Pickup }]);
    assert_eq!(
        (state.phase, state.current_stop, state.arrived_at),
        (NavPhase::Arrived, 0, Some(t0() + TimeDelta::seconds(102)))
    );
    assert_eq!(state.remaining_leg_m, 0.0);
    assert!((state.remaining_route_m - 1_000.0).abs() < 1.0);

    // Or two slow fixes 10 s apart (the dwell), at the next stop later.
    let (state, events) = feed(&route, &state, &drive(1_010.0, 1_990.0, 200.0, 0.0));
    assert_eq!(names(&events), ["departed"]);
    assert_eq!((state.phase, state.current_stop), (NavPhase::Approaching, 1));
    assert_eq!(state.last_departure.unwrap().stop_index, 0);
    let (state, events) =
        feed(&route, &state, &[fix(at(2_000.0, 0.0), 400.0, Some(0.0)), fix(at(2_000.0, 2.0), 410.0, Some(0.0))]);
    assert_eq!(names(&events), ["arrived"]);

    // Leaving the last stop finishes the route.
    let (state, events) = feed(&route, &state, &drive(2_000.0, 2_200.0, 500.0, 0.0));
    assert_eq!(names(&events), ["departed"]);
    assert!(state.is_finished());
    assert_eq!((state.current_stop, state.eta_route_end, state.remaining_route_m), (2, None, 0.0));
    let (after, events) = feed(&route, &state, &drive(2_200.0, 2_300.0, 600.0, 0.0));
    assert!(events.is_empty() && after.is_finished());
}

#[test]
fn fast_fixes_inside_the_fence_are_no_arrival() {
    let route = route();
    let (state, events) = feed(&route, &NavState::new(&route), &drive(0.0, 1_100.0, 0.0, 0.0));
    assert!(!names(&events).contains(&"arrived"), "{events:?}");
    assert_eq!((state.phase, state.current_stop), (NavPhase::Approaching, 0));
    // Without speeds, the displacement between fixes tells the same.
    let unknown: Vec<Fix> = drive(0.0, 1_100.0, 0.0, 0.0).into_iter().map(|f| Fix { speed_mps: None, ..f }).collect();
    let (_, events) = feed(&route, &NavState::new(&route), &unknown);
    assert!(!names(&events).contains(&"arrived"));
}

#[test]
fn off_route_with_hysteresis_and_an_accepted_reroute() {
    let mut route = route();
    let (state, _) = feed(&route, &NavState::new(&route), &drive(0.0, 300.0, 0.0, 0.0));
    // 70 m north of the road: two fixes are not enough.
    let off = drive(310.0, 330.0, 31.0, 70.0);
    let (s2, events) = feed(&route, &state, &off[..2]);
    assert!(events.is_empty() && !s2.off_route);
    let (s3, events) = feed(&route, &s2, &off[2..]);
    assert_eq!(names(&events), ["off_route", "reroute_requested"]);
    assert!(s3.off_route);
    match &events[1] {
        NavEvent::RerouteRequested(r) => {
            assert_eq!(r.stop_index, 0);
            assert_eq!(r.destination, route.stops()[0].location);
            assert_eq!(r.remaining_stops, vec![route.stops()[1].location]);
            assert_eq!(r.course_deg, Some(90.0));
            assert_eq!(r.position, at(330.0, 70.0));
        }
        other => panic!("{other:?}"),
    }
    // Staying off: no second request. 40 m off is inside the hysteresis
    // band: not back on route either.
    let (s4, events) = feed(&route, &s3, &drive(340.0, 400.0, 34.0, 70.0));
    assert!(events.is_empty());
    let (s5, events) = feed(&route, &s4, &drive(410.0, 450.0, 41.0, 40.0));
    assert!(events.is_empty() && s5.off_route);
    // Back within 30 m for three fixes.
    let (s6, events) = feed(&route, &s5, &drive(460.0, 480.0, 46.0, 10.0));
    assert_eq!(names(&events), ["back_on_route"]);
    assert!(!s6.off_route);
    assert!((s6.distance_along_leg_m - 480.0).abs() < 1.0);

    // A second episode, and this time the reroute is accepted: a new leg
    // from where the driver is, 200 m north, to the stop.
    let (s7, events) = feed(&route, &s6, &drive(490.0, 600.0, 49.0, 200.0));
    assert_eq!(names(&events), ["off_route", "reroute_requested"]);
    let new_leg: Vec<GeoPoint> = vec![at(600.0, 200.0), at(1_000.0, 200.0), at(1_000.0, 0.0)];
    route.replace_leg_geometry(0, Some(&geometry::encode_polyline(&new_leg, 5).unwrap())).unwrap();
    let (s8, events) = feed(&route, &s7, &drive(610.0, 610.0, 61.0, 200.0));
    assert_eq!(names(&events), ["back_on_route"], "on the new geometry at once");
    assert!(
        (s8.distance_along_leg_m - 10.0).abs() < 1.0,
        "progress restarted on the new leg: {}",
        s8.distance_along_leg_m
    );
    assert!((s8.remaining_leg_m - (route.leg_length_m(0).unwrap() - 10.0)).abs() < 1.0);
    // Leaving the new geometry asks again.
    let (_, events) = feed(&route, &s8, &drive(620.0, 660.0, 62.0, 350.0));
    assert_eq!(names(&events), ["off_route", "reroute_requested"]);
}

#[test]
fn eta_uses_the_smoothed_speed_and_counts_service_times() {
    let route = route();
    let (state, _) = feed(&route, &NavState::new(&route), &drive(0.0, 500.0, 0.0, 0.0));
    let now = state.last_fix_at.unwrap();
    assert!((state.smoothed_speed_mps.unwrap() - 10.0).abs() < 1e-9);
    assert!((state.remaining_leg_m - 500.0).abs() < 1.0);
    assert!((state.remaining_route_m - 1_500.0).abs() < 1.0);
    let secs = |t: Option<DateTime<Utc>>| (t.unwrap() - now).num_milliseconds() as f64 / 1000.0;
    assert!((secs(state.eta_next_stop) - 50.0).abs() < 0.2);
    // 150 s of driving and two stops' 120 s of service.
    assert!((secs(state.eta_route_end) - (150.0 + 240.0)).abs() < 0.2);

    // Slower fixes pull the smoothed speed down gradually, not at once.
    let slow: Vec<Fix> = (1..=5).map(|k| fix(at(500.0 + 5.0 * k as f64, 0.0), 50.0 + k as f64, Some(5.0))).collect();
    let (slowed, _) = feed(&route, &state, &slow);
    let v = slowed.smoothed_speed_mps.unwrap();
    assert!(v < 9.5 && v > 5.0, "{v}");
}

#[test]
fn the_state_survives_a_json_round_trip_mid_route() {
    let route = route();
    let trace: Vec<Fix> = drive(0.0, 1_000.0, 0.0, 3.0)
        .into_iter()
        .chain((0..4).map(|k| fix(at(1_000.0, 4.0), 101.0 + 5.0 * k as f64, Some(0.0))))
        .chain(drive(1_000.0, 2_000.0, 130.0, -3.0))
        .chain((0..4).map(|k| fix(at(2_000.0, 0.0), 240.0 + 5.0 * k as f64, Some(0.0))))
        .collect();
    let (whole, all_events) = feed(&route, &NavState::new(&route), &trace);
    assert_eq!(names(&all_events), ["arrived", "departed", "arrived"]);

    for cut in [50, 103, 108, 150] {
        let (mid, first) = feed(&route, &NavState::new(&route), &trace[..cut]);
        let json = serde_json::to_string(&mid).unwrap();
        // The app was killed; a new process reads the state back.
        let restored: NavState = serde_json::from_str(&json).unwrap();
        assert_eq!(restored.current_stop, mid.current_stop);
        assert_eq!(restored.phase, mid.phase);
        assert_eq!(restored.tracking.matched.map(|m| m.segment), mid.tracking.matched.map(|m| m.segment));
        let (end, rest) = feed(&route, &restored, &trace[cut..]);
        assert_eq!([first, rest].concat(), all_events, "cut at {cut}");
        assert_eq!(
            (end.current_stop, end.phase, end.accepted_fixes),
            (whole.current_stop, whole.phase, whole.accepted_fixes)
        );
        assert!((end.remaining_route_m - whole.remaining_route_m).abs() < 1e-6);
    }

    // A state for another route is refused, not misapplied.
    let other = Route::new(None, vec![input(9, at(1_000.0, 0.0), None)]).unwrap();
    let err = nav::update(&other, &whole, &trace[0], &NavConfig::default()).unwrap_err();
    assert_eq!(field_of(err), "state");
}

#[test]
fn completion_policy_tiers() {
    let route = route();
    let stop = &route.stops()[0]; // radius 30 m at 1 km
    let config = NavConfig::default();
    let check = |north: f64, accuracy: f64, config: &NavConfig| {
        let f = Fix { horizontal_accuracy_m: accuracy, ..fix(at(1_000.0, north), 0.0, None) };
        completion_check(stop, &f, config).unwrap()
    };
    assert_eq!(check(10.0, 5.0, &config), CompletionCheck::WithinGeofence);
    // 30 m fence + 5 m accuracy credit + 90 m: still within the warning distance.
    assert_eq!(check(125.0, 5.0, &config), CompletionCheck::WithinGeofence);
    match check(235.0, 5.0, &config) {
        CompletionCheck::Warn { distance_m } => assert!((distance_m - 200.0).abs() < 0.5, "{distance_m}"),
        other => panic!("{other:?}"),
    }
    match check(535.0, 5.0, &config) {
        CompletionCheck::NeedsOverride { distance_m } => assert!((distance_m - 500.0).abs() < 0.5, "{distance_m}"),
        other => panic!("{other:?}"),
    }
    // Accuracy is credited, up to the cap.
    assert_eq!(check(150.0, 25.0, &config), CompletionCheck::WithinGeofence);
    assert!(matches!(check(150.0, 5.0, &config), CompletionCheck::Warn { .. }));
    assert!(matches!(check(170.0, 45.0, &config), CompletionCheck::Warn { .. }));
    // The block distance is configurable.
    let strict = NavConfig { completion_warn_distance_m: 50.0, completion_block_distance_m: 150.0, ..config };
    assert!(matches!(check(235.0, 5.0, &strict), CompletionCheck::NeedsOverride { .. }));
    assert!(matches!(check(125.0, 5.0, &strict), CompletionCheck::Warn { .. }));
}

#[test]
fn a_building_footprint_is_the_geofence() {
    // A 60 m x 20 m building north of the road; its stop point is the
    // entrance on the road side.
    let footprint = vec![at(990.0, 15.0), at(1_050.0, 15.0), at(1_050.0, 35.0), at(990.0, 35.0)];
    let building = StopInput {
        geofence: Geofence::Polygon { vertices: footprint.clone() },
        ..input(2, at(1_000.0, 15.0), Some((0.0, 1_000.0)))
    };
    let stop = RouteStop::new(&building).unwrap();
    assert_eq!(stop.distance_to_geofence_m(at(1_045.0, 30.0)), 0.0, "the far corner, inside");
    assert!((stop.distance_to_geofence_m(at(1_045.0, 75.0)) - 40.0).abs() < 0.1);
    assert!((stop.distance_to_geofence_m(at(1_100.0, 25.0)) - 50.0).abs() < 0.1);
    let config = NavConfig::default();
    // Deep inside the building, 46 m from its entrance: fine.
    let inside = fix(at(1_045.0, 30.0), 0.0, None);
    assert_eq!(completion_check(&stop, &inside, &config).unwrap(), CompletionCheck::WithinGeofence);
    let far = fix(at(1_045.0, 300.0), 0.0, None);
    assert!(
        matches!(completion_check(&stop, &far, &config).unwrap(), CompletionCheck::Warn { distance_m } if (distance_m - 260.0).abs() < 0.5)
    );

    // Arrival: parking at the back of the building (46 m from its entrance,
    // 3 m from the wall: within the fix's accuracy) arrives; 60 m beyond
    // its east wall does not.
    let route = Route::new(None, vec![building]).unwrap();
    let (state, _) = feed(&route, &NavState::new(&route), &drive(0.0, 900.0, 0.0, 0.0));
    let dwell = |p: GeoPoint| (0..4).map(move |k| fix(p, 200.0 + 3.0 * k as f64, Some(0.0))).collect::<Vec<_>>();
    let (_, events) = feed(&route, &state, &dwell(at(1_040.0, 38.0)));
    assert_eq!(names(&events), ["arrived"]);
    let (_, events) = feed(&route, &state, &dwell(at(1_110.0, 25.0)));
    assert!(!names(&events).contains(&"arrived"), "{events:?}");
}

#[test]
fn open_and_straight_legs_track_distance_but_never_go_off_route() {
    // No origin and no geometry: the first leg is open, the second straight.
    let route = Route::new(None, vec![input(1, at(1_000.0, 0.0), None), input(2, at(2_000.0, 0.0), None)]).unwrap();
    // Coming from 400 m south, far from any line.
    let approach: Vec<Fix> =
        (0..=30).map(|k| fix(at(1_000.0, -400.0 + 10.0 * k as f64), k as f64, Some(10.0))).collect();
    let (state, events) = feed(&route, &NavState::new(&route), &approach);
    assert!(events.is_empty(), "{events:?}");
    assert_eq!((state.snapped, state.distance_from_route_m), (None, None));
    assert!((state.remaining_leg_m - 100.0).abs() < 0.5, "{}", state.remaining_leg_m);
    assert!((state.remaining_route_m - 1_100.0).abs() < 1.0);
    let (state, events) =
        feed(&route, &state, &(0..3).map(|k| fix(at(1_000.0, 0.0), 40.0 + k as f64, Some(0.0))).collect::<Vec<_>>());
    assert_eq!(names(&events), ["arrived"]);
    // The straight leg to the next stop: a 150 m detour is no off-route.
    let (state, events) = feed(&route, &state, &drive(1_000.0, 1_900.0, 100.0, 150.0));
    assert_eq!(names(&events), ["departed"]);
    assert!(!state.off_route);
    assert!((state.distance_along_leg_m - 900.0).abs() < 1.0);
    assert!((state.distance_from_route_m.unwrap() - 150.0).abs() < 1.0);
}
