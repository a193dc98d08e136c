//! Navigation benchmark: one `nav::update` on a 150-stop route whose
//! geometry has 20,000 vertices about 10 m apart, fed one fix 2 m beside
//! the line at each vertex (plus a short dwell at each stop, so the
//! controller arrives, departs and moves on to the next leg as in a shift).
//! Target: median ≤ 20 µs.
//!
//! Criterion's `nav/update_150_stops_20000_vertices` times consecutive
//! updates along the trace (its median is over samples of many updates).
//! The bench also times every update of a few passes on its own and prints
//! the per-update median and 99th percentile as `bench` lines for
//! `tests/bench.sh`.

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use doorstep_core::GeoPoint;
use doorstep_core::TimeWindow;
use doorstep_core::nav::{self, Fix, Geofence, NavConfig, NavEvent, NavState, Route, StopInput, StopKind, geometry};
use std::hint::black_box;
use std::time::{Duration, Instant};
use uuid::Uuid;

const STOPS: usize = 150;
const VERTICES: usize = 20_000;
const SPACING_M: f64 = 10.0;
const BESIDE_M: f64 = 2.0;

fn t0() -> DateTime<Utc> {
    "2026-11-23T08:00:00Z".parse().unwrap()
}

/// A winding road heading roughly east, and the heading at each vertex.
fn road() -> (Vec<GeoPoint>, Vec<f64>) {
    let mut points = Vec::with_capacity(VERTICES);
    let mut headings = Vec::with_capacity(VERTICES);
    let mut p = GeoPoint { latitude: 52.40, longitude: 12.90 };
    for k in 0..VERTICES {
        let heading = 90.0 + 55.0 * (k as f64 / 40.0).sin() + 20.0 * (k as f64 / 7.0).sin();
        points.push(p);
        headings.push(heading);
        p = geometry::destination(p, heading, SPACING_M);
    }
    (points, headings)
}

fn setup() -> (Route, Vec<Fix>) {
    let (points, headings) = road();
    let window = TimeWindow { start: t0(), end: t0() + TimeDelta::hours(12) };
    let stop_vertex = |j: usize| (j + 1) * (VERTICES - 1) / STOPS;
    let mut stops = Vec::with_capacity(STOPS);
    let mut from = 0;
    for j in 0..STOPS {
        let to = stop_vertex(j);
        stops.push(StopInput {
            job_id: Uuid::from_u128(j as u128 + 1),
            kind: if j % 3 == 0 { StopKind::Pickup } else { StopKind::Dropoff },
            location: points[to],
            geofence: Geofence::Radius { radius_m: 30.0 },
            window,
            service_time_s: 120.0,
            leg: Some(geometry::encode_polyline(&points[from..=to], 6).unwrap()),
        });
        from = to;
    }
    let route = Route::new(None, stops).unwrap();

    let mut fixes = Vec::with_capacity(VERTICES + 3 * STOPS);
    let mut at = t0();
    let mut next_stop = 0;
    for (k, (&p, &heading)) in points.iter().zip(&headings).enumerate() {
        let beside = geometry::destination(p, heading + 90.0, BESIDE_M);
        let fix = |at, speed| Fix {
            latitude: beside.latitude,
            longitude: beside.longitude,
            horizontal_accuracy_m: 5.0,
            speed_mps: Some(speed),
            course_deg: Some(heading.rem_euclid(360.0)),
            at,
        };
        fixes.push(fix(at, SPACING_M));
        at += TimeDelta::seconds(1);
        if next_stop < STOPS && k == stop_vertex(next_stop) {
            for _ in 0..3 {
                fixes.push(fix(at, 0.0));
                at += TimeDelta::seconds(5);
            }
            next_stop += 1;
        }
    }
    (route, fixes)
}

/// One pass over the trace; checks the controller did what a shift needs.
fn check(route: &Route, fixes: &[Fix], config: &NavConfig) {
    let mut state = NavState::new(route);
    let (mut arrivals, mut off_route) = (0, 0);
    for fix in fixes {
        let update = nav::update(route, &state, fix, config).unwrap();
        for event in &update.events {
            match event {
                NavEvent::Arrived { .. } => arrivals += 1,
                NavEvent::OffRoute { .. } => off_route += 1,
                _ => {}
            }
        }
        state = update.state;
    }
    assert_eq!(arrivals, STOPS, "every stop reached");
    assert_eq!(off_route, 0, "never off the route");
    assert_eq!(state.current_stop as usize, STOPS - 1, "at the last stop");
}

fn per_update_figures(route: &Route, fixes: &[Fix], config: &NavConfig) {
    let mut times = Vec::with_capacity(fixes.len() * 3);
    for _ in 0..3 {
        let mut state = NavState::new(route);
        for fix in fixes {
            let start = Instant::now();
            let update = nav::update(route, black_box(&state), black_box(fix), config).unwrap();
            times.push(start.elapsed());
            state = update.state;
        }
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_nanos() as f64 / 1000.0;
    println!("bench nav/update_single_median: {:.3} us", at(0.5));
    println!("bench nav/update_single_p99: {:.3} us", at(0.99));
}

fn update(c: &mut Criterion) {
    let started = Instant::now();
    let (route, fixes) = setup();
    let config = NavConfig::default();
    check(&route, &fixes, &config);
    eprintln!("nav bench setup: {} fixes in {:?}", fixes.len(), started.elapsed());
    per_update_figures(&route, &fixes, &config);

    let mut group = c.benchmark_group("nav");
    group.sample_size(50).measurement_time(Duration::from_secs(5));
    let mut state = NavState::new(&route);
    let mut cursor = 0;
    group.bench_function("update_150_stops_20000_vertices", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if cursor == fixes.len() {
                    cursor = 0;
                    state = NavState::new(&route);
                }
                let start = Instant::now();
                let update = nav::update(&route, black_box(&state), black_box(&fixes[cursor]), &config).unwrap();
                total += start.elapsed();
                state = update.state;
                cursor += 1;
            }
            total
        })
    });
    group.finish();
}

/// The worst case of the search: a single 20,000-vertex leg, the driver
/// 200 m beside it all the way (off-route, so every fix searches the whole
/// leg, through its index of segment boxes).
fn off_route(c: &mut Criterion) {
    let (points, headings) = road();
    let window = TimeWindow { start: t0(), end: t0() + TimeDelta::hours(12) };
    let route = Route::new(
        None,
        vec![StopInput {
            job_id: Uuid::from_u128(1),
            kind: StopKind::Dropoff,
            location: *points.last().unwrap(),
            geofence: Geofence::Radius { radius_m: 30.0 },
            window,
            service_time_s: 120.0,
            leg: Some(geometry::encode_polyline(&points, 6).unwrap()),
        }],
    )
    .unwrap();
    let fixes: Vec<Fix> = points
        .iter()
        .zip(&headings)
        .enumerate()
        .map(|(k, (&p, &heading))| {
            let beside = geometry::destination(p, heading + 90.0, 200.0);
            Fix {
                latitude: beside.latitude,
                longitude: beside.longitude,
                horizontal_accuracy_m: 5.0,
                speed_mps: Some(SPACING_M),
                course_deg: Some(heading.rem_euclid(360.0)),
                at: t0() + TimeDelta::seconds(k as i64),
            }
        })
        .collect();
    let config = NavConfig::default();
    let mut group = c.benchmark_group("nav");
    group.sample_size(30).measurement_time(Duration::from_secs(4));
    let mut state = NavState::new(&route);
    let mut cursor = 0;
    group.bench_function("update_off_route_20000_vertex_leg", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if cursor == fixes.len() {
                    cursor = 0;
                    state = NavState::new(&route);
                }
                let start = Instant::now();
                let update = nav::update(&route, black_box(&state), black_box(&fixes[cursor]), &config).unwrap();
                total += start.elapsed();
                state = update.state;
                cursor += 1;
            }
            assert!(state.off_route || cursor < 5);
            total
        })
    });
    group.finish();
}

criterion_group!(benches, update, off_route);
criterion_main!(benches);
