//! Navigation driven by GPS traces, through the public API only: synthetic
//! drives with seeded noise (`doorstep_sim::traces`) and a GPX file, each
//! replayed through `nav::update`, checking the events a shift would see.

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::nav::{
    Geofence, LegShape, NavConfig, NavEvent, NavPhase, NavState, Route, StopInput, StopKind, geometry,
};
use doorstep_core::{GeoPoint, TimeWindow};
use doorstep_sim::traces::{self, TraceBuilder, offset, path_between, point_along, replay};
use std::path::Path;
use uuid::Uuid;

/// Every synthetic scenario runs with each of these noise seeds.
const SEEDS: std::ops::Range<u64> = 0..16;

fn t0() -> DateTime<Utc> {
    "2026-11-23T09:00:00Z".parse().unwrap()
}

fn window() -> TimeWindow {
    TimeWindow { start: t0(), end: t0() + TimeDelta::hours(8) }
}

/// A 3 km road heading roughly east, gently winding, a vertex every 100 m.
fn road() -> Vec<GeoPoint> {
    let mut p = GeoPoint { latitude: 48.1371, longitude: 11.5754 };
    let mut road = vec![p];
    for k in 0..30 {
        p = geometry::destination(p, 90.0 + 12.0 * (k as f64 / 3.0).sin(), 100.0);
        road.push(p);
    }
    road
}

fn stop(n: u128, kind: StopKind, location: GeoPoint, leg: &[GeoPoint]) -> StopInput {
    StopInput {
        job_id: Uuid::from_u128(n),
        kind,
        location,
        geofence: Geofence::Radius { radius_m: 40.0 },
        window: window(),
        service_time_s: 180.0,
        leg: Some(geometry::encode_polyline(leg, 5).unwrap()),
    }
}

/// Stops on the road at the given distances along it; each leg is the road
/// between them, as a router would draw it.
fn route_on_road(road: &[GeoPoint], at_m: &[f64]) -> Route {
    let mut from = 0.0;
    let stops = at_m
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let mut leg = vec![point_along(road, from)];
            leg.extend(path_between(road, from, d));
            from = d;
            stop(i as u128 + 1, if i == 0 { StopKind::Pickup } else { StopKind::Dropoff }, point_along(road, d), &leg)
        })
        .collect();
    Route::new(None, stops).unwrap()
}

fn run(route: &Route, trace: &TraceBuilder) -> traces::Replay {
    replay(route, &NavState::new(route), trace.fixes(), &NavConfig::default()).unwrap()
}

#[test]
fn straight_drive_tracks_progress_without_events() {
    for seed in SEEDS {
        straight_drive_tracks_progress_without_events_with(seed);
    }
}

fn straight_drive_tracks_progress_without_events_with(seed: u64) {
    let road = road();
    let route = route_on_road(&road, &[2_800.0]);
    let mut trace = TraceBuilder::new(road[0], t0(), seed);
    trace.drive(&path_between(&road, 0.0, 2_700.0), 12.0);
    let replay = run(&route, &trace);
    assert_eq!(replay.summary(), Vec::<String>::new());

    let fixes = trace.fixes();
    for (fix, state) in fixes.iter().zip(&replay.states) {
        let truth = (fix.at - t0()).num_milliseconds() as f64 / 1000.0 * 12.0;
        assert!(
            (state.distance_along_leg_m - truth).abs() < 15.0,
            "seed {seed}: along {} vs {truth}",
            state.distance_along_leg_m
        );
        assert!(state.distance_from_route_m.unwrap() < 15.0);
        assert!(!state.off_route);
        let leg = route.leg_length_m(0).unwrap();
        assert!((state.remaining_leg_m - (leg - state.distance_along_leg_m)).abs() < 1e-6);
    }
    // ETA: the last 100 m at the smoothed ~12 m/s, then 180 s of service.
    let last = &replay.last;
    let eta_s = (last.eta_next_stop.unwrap() - fixes.last().unwrap().at).num_milliseconds() as f64 / 1000.0;
    assert!((eta_s - last.remaining_leg_m / 12.0).abs() < 2.0, "eta {eta_s} s for {} m", last.remaining_leg_m);
    let end_s = (last.eta_route_end.unwrap() - last.eta_next_stop.unwrap()).num_seconds();
    assert!((179..=181).contains(&end_s), "service time counted: {end_s}");
    assert!((last.smoothed_speed_mps.unwrap() - 12.0).abs() < 0.5);
}

#[test]
fn driving_past_a_stop_without_stopping_is_no_arrival() {
    for seed in SEEDS {
        driving_past_a_stop_without_stopping_is_no_arrival_with(seed);
    }
}

fn driving_past_a_stop_without_stopping_is_no_arrival_with(seed: u64) {
    let road = road();
    let route = route_on_road(&road, &[1_200.0, 2_800.0]);
    let mut trace = TraceBuilder::new(road[0], t0(), seed);
    trace.drive(&path_between(&road, 0.0, 2_000.0), 12.0);
    let replay = run(&route, &trace);
    assert_eq!(replay.count("arrived"), 0, "{:?}", replay.summary());
    assert_eq!(replay.last.current_stop, 0);
    assert_eq!(replay.last.phase, NavPhase::Approaching);
    // Past the end of its leg the driver is off the route to the stop, and
    // a reroute back to it is asked for, once.
    assert_eq!(replay.summary(), ["off_route", "reroute_requested 0"]);
    let request = replay.events.iter().find_map(|e| match &e.event {
        NavEvent::RerouteRequested(r) => Some(r.clone()),
        _ => None,
    });
    let request = request.unwrap();
    assert_eq!(request.destination, route.stops()[0].location);
    assert_eq!(request.remaining_stops, vec![route.stops()[1].location]);
}

#[test]
fn stopping_and_dwelling_arrives_then_departs() {
    for seed in SEEDS {
        stopping_and_dwelling_arrives_then_departs_with(seed);
    }
}

fn stopping_and_dwelling_arrives_then_departs_with(seed: u64) {
    let road = road();
    let route = route_on_road(&road, &[1_200.0, 2_800.0]);
    let mut trace = TraceBuilder::new(road[0], t0(), seed);
    trace.drive(&path_between(&road, 0.0, 1_200.0), 12.0).dwell(120.0);
    trace.drive(&path_between(&road, 1_200.0, 2_800.0), 12.0).dwell(60.0);
    let replay = run(&route, &trace);
    assert_eq!(replay.summary(), ["arrived 0", "departed 0", "arrived 1"]);
    match &replay.events[0].event {
        NavEvent::Arrived { stop_index: 0, job_id, kind: StopKind::Pickup } => assert_eq!(*job_id, Uuid::from_u128(1)),
        other => panic!("{other:?}"),
    }
    // Arrival within a few seconds of stopping; departure once past the
    // fence and its margin.
    let arrived = replay.events[0].at - t0();
    assert!((100..=106).contains(&arrived.num_seconds()), "arrived after {arrived}");
    let departed = replay.events[1].at - t0();
    assert!((220..=232).contains(&departed.num_seconds()), "departed after {departed}");
    assert_eq!(replay.last.current_stop, 1);
    assert_eq!(replay.last.phase, NavPhase::Arrived);
    assert_eq!(replay.last.remaining_route_m, 0.0);
}

#[test]
fn jitter_at_the_geofence_edge_arrives_once() {
    for seed in SEEDS {
        jitter_at_the_geofence_edge_arrives_once_with(seed);
    }
}

fn jitter_at_the_geofence_edge_arrives_once_with(seed: u64) {
    let road = road();
    // The house is 40 m off the road, its fence 40 m: the driver parks
    // right on the fence's edge.
    let curb = point_along(&road, 1_500.0);
    let house = offset(curb, 0.0, 40.0);
    let mut leg0 = vec![road[0]];
    leg0.extend(path_between(&road, 0.0, 1_500.0));
    let mut leg1 = vec![curb];
    leg1.extend(path_between(&road, 1_500.0, 2_800.0));
    let route = Route::new(
        None,
        vec![stop(1, StopKind::Dropoff, house, &leg0), stop(2, StopKind::Dropoff, point_along(&road, 2_800.0), &leg1)],
    )
    .unwrap();
    let mut trace = TraceBuilder::new(road[0], t0(), seed);
    trace.drive(&path_between(&road, 0.0, 1_500.0), 12.0);
    trace.noise_m(5.0).accuracy_m(6.0).dwell(300.0);
    let parked_until = trace.now();
    trace.noise_m(3.0).accuracy_m(5.0).drive(&path_between(&road, 1_500.0, 2_800.0), 12.0).dwell(30.0);

    let replay = run(&route, &trace);
    assert_eq!(replay.summary(), ["arrived 0", "departed 0", "arrived 1"]);
    assert!(replay.events[1].at > parked_until, "departed only after driving off");

    // The trace does cross the edge: without hysteresis (no accuracy
    // credit, no margin, single fixes) the same trace departs while the
    // driver is still parked, and the stop is lost.
    let twitchy = NavConfig {
        accuracy_allowance_max_m: 0.0,
        departure_margin_m: 0.0,
        arrival_min_fixes: 1,
        departure_min_fixes: 1,
        ..NavConfig::default()
    };
    let flapping = replay_with(&route, &trace, &twitchy);
    assert_eq!(flapping.summary()[..2], ["arrived 0", "departed 0"]);
    assert!(flapping.events[1].at < parked_until, "{:?}", flapping.events[1]);
}

fn replay_with(route: &Route, trace: &TraceBuilder, config: &NavConfig) -> traces::Replay {
    replay(route, &NavState::new(route), trace.fixes(), config).unwrap()
}

#[test]
fn a_detour_goes_off_route_asks_once_for_a_reroute_and_comes_back() {
    for seed in SEEDS {
        a_detour_goes_off_route_asks_once_for_a_reroute_and_comes_back_with(seed);
    }
}

fn a_detour_goes_off_route_asks_once_for_a_reroute_and_comes_back_with(seed: u64) {
    let road = road();
    let route = route_on_road(&road, &[2_800.0]);
    let mut trace = TraceBuilder::new(road[0], t0(), seed);
    let (left, rejoin) = (point_along(&road, 1_000.0), point_along(&road, 1_700.0));
    trace.drive(&path_between(&road, 0.0, 1_000.0), 12.0);
    trace.drive(&[offset(left, 0.0, 180.0), offset(rejoin, 0.0, 180.0), rejoin], 10.0);
    trace.drive(&path_between(&road, 1_700.0, 2_800.0), 12.0).dwell(30.0);
    let replay = run(&route, &trace);
    assert_eq!(replay.summary(), ["off_route", "reroute_requested 0", "back_on_route", "arrived 0"]);

    let (off, request) = match (&replay.events[0].event, &replay.events[1].event) {
        (NavEvent::OffRoute { distance_m }, NavEvent::RerouteRequested(r)) => (*distance_m, r.clone()),
        other => panic!("{other:?}"),
    };
    assert!(off > 50.0 && off < 120.0, "off by {off} m");
    assert_eq!(request.destination, route.stops()[0].location);
    assert!(request.remaining_stops.is_empty());
    assert!(request.course_deg.is_some());
    assert!(geometry::distance_m(request.position, left) < 200.0);
    // Back on the road after rejoining it, not before.
    let back = replay.events[2].fix_index;
    let rejoined_at = trace.fixes().iter().position(|f| geometry::distance_m(f.position(), rejoin) < 15.0).unwrap();
    assert!(
        back >= rejoined_at.saturating_sub(3) && back <= rejoined_at + 6,
        "back at fix {back}, rejoined at {rejoined_at}"
    );
    // Progress after the detour continues from where the road was rejoined.
    assert!((replay.states[back].distance_along_leg_m - 1_700.0).abs() < 60.0);
}

#[test]
fn a_tunnel_gap_of_60_s_resumes_further_along() {
    for seed in SEEDS {
        a_tunnel_gap_of_60_s_resumes_further_along_with(seed);
    }
}

fn a_tunnel_gap_of_60_s_resumes_further_along_with(seed: u64) {
    let road = road();
    let route = route_on_road(&road, &[2_800.0]);
    let mut trace = TraceBuilder::new(road[0], t0(), seed);
    trace.drive(&path_between(&road, 0.0, 1_000.0), 10.0);
    let before = trace.fixes().len();
    trace.drive_dark(&path_between(&road, 1_000.0, 1_600.0), 10.0);
    trace.drive(&path_between(&road, 1_600.0, 2_800.0), 10.0).dwell(30.0);
    let fixes = trace.fixes();
    let gap = fixes[before].at - fixes[before - 1].at;
    assert!(gap >= TimeDelta::seconds(60), "a {gap} gap");

    let replay = run(&route, &trace);
    assert_eq!(replay.summary(), ["arrived 0"]);
    let after = &replay.states[before];
    // The first fix after the tunnel is up to a second (10 m) past its exit.
    let resumed = after.distance_along_leg_m - 1_600.0;
    assert!((-15.0..25.0).contains(&resumed), "seed {seed}: resumed at {}", after.distance_along_leg_m);
    assert!(after.distance_from_route_m.unwrap() < 15.0);
    // The speed over the gap was the driving speed: the ETA holds.
    assert!((after.smoothed_speed_mps.unwrap() - 10.0).abs() < 1.0);
}

#[test]
fn co_located_pickups_are_reached_together() {
    for seed in SEEDS {
        co_located_pickups_are_reached_together_with(seed);
    }
}

fn co_located_pickups_are_reached_together_with(seed: u64) {
    // Two jobs picked up at the same shop, then two drop-offs.
    let road = road();
    let shop = point_along(&road, 800.0);
    let mut leg0 = vec![road[0]];
    leg0.extend(path_between(&road, 0.0, 800.0));
    let mut leg2 = vec![shop];
    leg2.extend(path_between(&road, 800.0, 2_000.0));
    let route = Route::new(
        None,
        vec![
            stop(1, StopKind::Pickup, shop, &leg0),
            stop(2, StopKind::Pickup, shop, &[shop]),
            stop(1, StopKind::Dropoff, point_along(&road, 2_000.0), &leg2),
        ],
    )
    .unwrap();
    let mut trace = TraceBuilder::new(road[0], t0(), seed);
    trace.drive(&path_between(&road, 0.0, 800.0), 12.0).dwell(120.0);
    trace.drive(&path_between(&road, 800.0, 2_000.0), 12.0).dwell(20.0);
    let replay = run(&route, &trace);
    assert_eq!(replay.summary(), ["arrived 0", "departed 0", "arrived 1", "departed 1", "arrived 2"]);
}

#[test]
fn a_gpx_trace_replays_a_pickup_and_a_drop_off() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/pickup-dropoff-run.gpx");
    let fixes = traces::read_gpx_file(&path).unwrap();
    assert_eq!(fixes.len(), 201);
    assert!(fixes.windows(2).all(|w| w[0].at < w[1].at));
    assert!(fixes.iter().all(|f| f.speed_mps.is_none() && (4.0..=7.0).contains(&f.horizontal_accuracy_m)));

    // The roads the trace follows (see the file's description).
    let depot = GeoPoint { latitude: 48.1500, longitude: 11.5600 };
    let at = |east, north| offset(depot, east, north);
    let shop = at(515.0, 300.0);
    let house = at(900.0, -20.0);
    let mut pickup = stop(1, StopKind::Pickup, shop, &[depot, at(500.0, 0.0), at(500.0, 300.0)]);
    pickup.geofence = Geofence::Polygon {
        // The shop's footprint, its door on the road.
        vertices: vec![at(505.0, 290.0), at(540.0, 290.0), at(540.0, 320.0), at(505.0, 320.0)],
    };
    let dropoff = stop(1, StopKind::Dropoff, house, &[at(500.0, 300.0), at(900.0, 300.0), at(900.0, 0.0)]);
    let route = Route::new(None, vec![pickup, dropoff]).unwrap();
    assert_eq!(route.leg_shape(1), Some(LegShape::Polyline));

    let replay = replay(&route, &NavState::new(&route), &fixes, &NavConfig::default()).unwrap();
    assert_eq!(replay.summary(), ["arrived 0", "departed 0", "arrived 1", "departed 1"]);
    assert!(replay.last.is_finished());
    assert_eq!(replay.last.ignored_stale + replay.last.ignored_inaccurate, 0);
}

#[test]
fn bad_gpx_is_an_error() {
    assert!(matches!(traces::read_gpx("<gpx>".as_bytes()), Err(traces::TraceError::Gpx(_))));
    let no_time = r#"<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">
        <trk><trkseg><trkpt lat="48.1" lon="11.5"></trkpt></trkseg></trk></gpx>"#;
    assert!(matches!(traces::read_gpx(no_time.as_bytes()), Err(traces::TraceError::MissingTime { index: 0 })));
}

#[test]
fn synthetic_traces_are_deterministic_per_seed() {
    let road = road();
    let build = |seed| {
        let mut trace = TraceBuilder::new(road[0], t0(), seed);
        trace.drive(&path_between(&road, 0.0, 500.0), 10.0).dwell(10.0);
        trace.build()
    };
    assert_eq!(build(9), build(9));
    assert_ne!(build(9), build(10));
}
