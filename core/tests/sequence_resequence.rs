//! On-device re-sequencing (`nav::sequence`), through the public API:
//! precedence on random instances, determinism, tour length against a brute
//! force on small instances, time windows, and bad requests.

use chrono::{DateTime, Duration, Utc};
use doorstep_core::nav::StopKind;
use doorstep_core::nav::sequence::{
    LATENESS_WEIGHT_M_PER_S, Sequence, SequenceRequest, SequenceStop, evaluate, resequence,
};
use doorstep_core::{CoreError, GeoPoint, TimeWindow};
use geo::{Distance, Haversine, Point};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    "2026-11-23T09:00:00Z".parse().unwrap()
}

/// A point `north_m` and `east_m` metres from the depot (Berlin Mitte).
fn at(north_m: f64, east_m: f64) -> GeoPoint {
    let lat0: f64 = 52.52;
    GeoPoint { latitude: lat0 + north_m / 111_195.0, longitude: 13.40 + east_m / (111_195.0 * lat0.to_radians().cos()) }
}

fn window(start_min: i64, end_min: i64) -> TimeWindow {
    TimeWindow { start: now() + Duration::minutes(start_min), end: now() + Duration::minutes(end_min) }
}

fn stop(job: u128, kind: StopKind, location: GeoPoint, window: TimeWindow, service_s: i64) -> SequenceStop {
    SequenceStop { job_id: Uuid::from_u128(job), kind, location, window, service_time: Duration::seconds(service_s) }
}

fn request(stops: Vec<SequenceStop>) -> SequenceRequest {
    SequenceRequest { position: at(0.0, 0.0), now: now(), speed_mps: 10.0, stops }
}

fn weighted(seq: &Sequence) -> f64 {
    seq.total_distance_m + LATENESS_WEIGHT_M_PER_S * seconds(seq.total_lateness)
}

/// Equal to within a second (the test's metre grid is not the sphere's).
fn assert_close(actual: Duration, expected: Duration) {
    assert!((actual - expected).abs() < Duration::seconds(1), "{actual} is not {expected}");
}

fn seconds(d: Duration) -> f64 {
    d.num_nanoseconds().unwrap() as f64 * 1e-9
}

/// Every listed pickup strictly before its drop-off in `order`.
fn precedence_holds(req: &SequenceRequest, order: &[usize]) -> Result<(), String> {
    let mut position = vec![usize::MAX; req.stops.len()];
    for (k, &s) in order.iter().enumerate() {
        position[s] = k;
    }
    for (d, dropoff) in req.stops.iter().enumerate().filter(|(_, s)| s.kind == StopKind::Dropoff) {
        let pickup = req.stops.iter().position(|s| s.job_id == dropoff.job_id && s.kind == StopKind::Pickup);
        if let Some(p) = pickup
            && position[p] >= position[d]
        {
            return Err(format!(
                "job {} delivered at {} before its pickup at {}",
                dropoff.job_id, position[d], position[p]
            ));
        }
    }
    Ok(())
}

fn is_permutation(order: &[usize], n: usize) -> bool {
    let mut sorted = order.to_vec();
    sorted.sort_unstable();
    sorted == (0..n).collect::<Vec<_>>()
}

// ---------------------------------------------------------------------------
// Random instances

/// One job: whether the driver already holds its packages, where its pickup
/// and drop-off are, its windows (minutes after now) and service times, and
/// two keys deciding where its stops sit in the listed order.
#[derive(Debug, Clone)]
struct JobSpec {
    held: bool,
    pickup: (f64, f64),
    dropoff: (f64, f64),
    pickup_window: (i64, i64),
    dropoff_window: (i64, i64),
    service_s: (i64, i64),
    keys: (u32, u32),
}

fn job_spec(area_m: f64, tight: bool) -> impl Strategy<Value = JobSpec> {
    let spot = move || (-area_m..area_m, -area_m..area_m);
    let width = if tight { 10i64..90 } else { 100_000i64..100_001 };
    let opens = if tight { -60i64..240 } else { -60i64..-59 };
    (
        prop::bool::weighted(0.3),
        spot(),
        spot(),
        (opens.clone(), width.clone()),
        (opens, width),
        (0i64..300, 0i64..300),
        (any::<u32>(), any::<u32>()),
    )
        .prop_map(|(held, pickup, dropoff, pw, dw, service_s, keys)| JobSpec {
            held,
            pickup,
            dropoff,
            pickup_window: (pw.0, pw.0 + pw.1),
            dropoff_window: (dw.0, dw.0 + dw.1),
            service_s,
            keys,
        })
}

/// The request for `jobs`, listed in an order where pickups come first (the
/// driver's current plan must already satisfy precedence).
fn build(jobs: &[JobSpec], speed_mps: f64) -> SequenceRequest {
    let mut keyed: Vec<(u32, usize, SequenceStop)> = Vec::new();
    for (j, spec) in jobs.iter().enumerate() {
        let id = j as u128 + 1;
        let (first, second) = (spec.keys.0.min(spec.keys.1), spec.keys.0.max(spec.keys.1));
        if !spec.held {
            let w = window(spec.pickup_window.0, spec.pickup_window.1);
            keyed.push((
                first,
                2 * j,
                stop(id, StopKind::Pickup, at(spec.pickup.0, spec.pickup.1), w, spec.service_s.0),
            ));
        }
        let w = window(spec.dropoff_window.0, spec.dropoff_window.1);
        keyed.push((
            second,
            2 * j + 1,
            stop(id, StopKind::Dropoff, at(spec.dropoff.0, spec.dropoff.1), w, spec.service_s.1),
        ));
    }
    keyed.sort_by_key(|(key, tie, _)| (*key, *tie));
    SequenceRequest { speed_mps, ..request(keyed.into_iter().map(|(_, _, s)| s).collect()) }
}

fn instance(max_jobs: usize, tight: bool) -> impl Strategy<Value = SequenceRequest> {
    (prop::collection::vec(job_spec(6_000.0, tight), 0..=max_jobs), 3.0..20.0f64)
        .prop_map(|(jobs, speed)| build(&jobs, speed))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    /// Every pickup before its drop-off, whatever the windows, with some
    /// jobs already picked up; the answer is a permutation whose figures are
    /// the replay of its order, and never worse than the listed order.
    #[test]
    fn pickups_always_precede_their_dropoffs(req in prop_oneof![instance(20, true), instance(20, false)]) {
        let seq = resequence(&req).unwrap();
        prop_assert!(is_permutation(&seq.order, req.stops.len()), "{:?}", seq.order);
        if let Err(why) = precedence_holds(&req, &seq.order) {
            return Err(TestCaseError::fail(why));
        }
        prop_assert_eq!(&evaluate(&req, &seq.order).unwrap(), &seq);
        let listed = evaluate(&req, &(0..req.stops.len()).collect::<Vec<_>>()).unwrap();
        prop_assert!(weighted(&seq) <= weighted(&listed) + 1e-3, "{} > listed {}", weighted(&seq), weighted(&listed));
    }

    /// Same request, same answer, also from another thread (where hash
    /// seeds differ).
    #[test]
    fn same_request_same_answer(req in instance(20, true)) {
        let first = resequence(&req).unwrap();
        let again = resequence(&req.clone()).unwrap();
        let elsewhere = {
            let req = req.clone();
            std::thread::spawn(move || resequence(&req).unwrap()).join().unwrap()
        };
        prop_assert_eq!(&first, &again);
        prop_assert_eq!(&first, &elsewhere);
    }
}

/// The search costs moves incrementally (tail functions, delay arrays); if
/// that costing were off, it would stop where a plain replay still sees an
/// improving move. So: on random windowed instances, no single stop moved
/// anywhere else (precedence kept) gives a cheaper order by `evaluate`.
#[test]
fn no_single_stop_move_improves_the_result() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..25 {
        let req = instance(12, true).new_tree(&mut runner).unwrap().current();
        let seq = resequence(&req).unwrap();
        let best = weighted(&seq);
        for from in 0..seq.order.len() {
            for to in 0..seq.order.len() {
                let mut order = seq.order.clone();
                let stop = order.remove(from);
                order.insert(to, stop);
                if let Ok(moved) = evaluate(&req, &order) {
                    assert!(
                        weighted(&moved) >= best - (1e-3 + 1e-9 * best),
                        "moving {stop} from {from} to {to}: {} < {best}",
                        weighted(&moved)
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Tour length against the exact optimum

/// The shortest tour over all precedence-feasible orders, by depth-first
/// enumeration, with distances straight from `geo`.
fn brute_force_shortest(req: &SequenceRequest) -> f64 {
    let n = req.stops.len();
    let points: Vec<Point<f64>> = req
        .stops
        .iter()
        .map(|s| s.location)
        .chain([req.position])
        .map(|p| Point::new(p.longitude, p.latitude))
        .collect();
    let d = |a: usize, b: usize| Haversine.distance(points[a], points[b]);
    let pickup_of: Vec<Option<usize>> = req
        .stops
        .iter()
        .map(|s| match s.kind {
            StopKind::Pickup => None,
            StopKind::Dropoff => req.stops.iter().position(|o| o.job_id == s.job_id && o.kind == StopKind::Pickup),
        })
        .collect();

    fn dfs(
        node: usize,
        length: f64,
        visited: &mut Vec<bool>,
        left: usize,
        best: &mut f64,
        d: &dyn Fn(usize, usize) -> f64,
        pickup_of: &[Option<usize>],
    ) {
        if left == 0 {
            *best = best.min(length);
            return;
        }
        for next in 0..visited.len() {
            if visited[next] || pickup_of[next].is_some_and(|p| !visited[p]) {
                continue;
            }
            visited[next] = true;
            dfs(next, length + d(node, next), visited, left - 1, best, d, pickup_of);
            visited[next] = false;
        }
    }
    let mut best = f64::INFINITY;
    dfs(n, 0.0, &mut vec![false; n], n, &mut best, &d, &pickup_of);
    best
}

/// Small random instances (up to 9 stops) with windows too wide to bind.
fn small_instance() -> impl Strategy<Value = SequenceRequest> {
    prop::collection::vec(job_spec(5_000.0, false), 1..=6).prop_map(|jobs| {
        // Trim to at most 9 stops, keeping the jobs whole.
        let mut kept = Vec::new();
        let mut count = 0;
        for job in jobs {
            let size = if job.held { 1 } else { 2 };
            if count + size <= 9 {
                count += size;
                kept.push(job);
            }
        }
        build(&kept, 10.0)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn small_tours_are_within_5_percent_of_the_optimum(req in small_instance()) {
        let seq = resequence(&req).unwrap();
        prop_assert_eq!(seq.total_lateness, Duration::zero(), "windows were meant not to bind");
        let optimum = brute_force_shortest(&req);
        // The core rounds each leg to the millimetre.
        let slack = 1e-3 * req.stops.len() as f64;
        prop_assert!(seq.total_distance_m >= optimum - slack, "shorter than the optimum: {} < {}", seq.total_distance_m, optimum);
        prop_assert!(
            seq.total_distance_m <= optimum * 1.05 + slack,
            "{:.1} m is {:.2}% over the optimum {:.1} m ({} stops)",
            seq.total_distance_m, (seq.total_distance_m / optimum - 1.0) * 100.0, optimum, req.stops.len()
        );
    }
}

// ---------------------------------------------------------------------------
// Time windows

/// Three drop-offs on a line east of the driver; the farthest must be there
/// within six minutes. Nearest-first is the shortest order but reaches it
/// late; the result goes there first and is on time.
#[test]
fn an_urgent_far_stop_is_served_first_at_the_cost_of_distance() {
    let wide = window(-60, 600);
    let req = request(vec![
        stop(1, StopKind::Dropoff, at(0.0, 1_000.0), wide, 120),
        stop(2, StopKind::Dropoff, at(0.0, 2_000.0), wide, 120),
        stop(3, StopKind::Dropoff, at(0.0, 3_000.0), window(0, 6), 120),
    ]);
    let shortest = evaluate(&req, &[0, 1, 2]).unwrap();
    assert!(shortest.total_lateness > Duration::zero(), "the shortest order was meant to be late");

    let seq = resequence(&req).unwrap();
    assert_eq!(seq.total_lateness, Duration::zero(), "{seq:#?}");
    assert_eq!(seq.order[0], 2);
    assert!(seq.total_distance_m > shortest.total_distance_m + 1_000.0);
    // 3 km at 10 m/s: there after five minutes.
    assert_close(seq.visits[0].arrival - now(), Duration::seconds(300));
}

/// A store that opens in 20 minutes next door and a drop-off across town
/// due in 15: deliver first, then come back and wait for the store, and the
/// schedule shows the wait.
#[test]
fn early_arrivals_wait_for_the_window_and_the_wait_is_modelled() {
    let req = request(vec![
        stop(1, StopKind::Pickup, at(100.0, 0.0), window(20, 80), 60),
        stop(1, StopKind::Dropoff, at(-1_000.0, 0.0), window(0, 240), 60),
        stop(2, StopKind::Dropoff, at(0.0, -3_000.0), window(0, 15), 60),
    ]);
    let seq = resequence(&req).unwrap();
    assert_eq!(seq.order, vec![2, 0, 1], "{seq:#?}");
    assert_eq!(seq.total_lateness, Duration::zero());
    let store = &seq.visits[1];
    assert!(store.arrival < window(20, 80).start);
    assert_eq!(store.service_start, window(20, 80).start);
    assert_eq!(store.wait, store.service_start - store.arrival);
    assert_eq!(store.departure, store.service_start + Duration::seconds(60));
    assert_eq!(seq.total_wait, store.wait);
    // The leg from the store starts when the service ends.
    let leg = seq.visits[2].distance_from_previous_m / 10.0;
    let expected = store.departure + Duration::nanoseconds((leg * 1e9).round() as i64);
    assert!((seq.visits[2].arrival - expected).abs() <= Duration::microseconds(1));
}

/// When being late cannot be avoided the answer still comes, with the
/// lateness measured from each window's end, and the least total lateness
/// among orders: both windows are already over, so the nearer first.
#[test]
fn unavoidable_lateness_is_reported_and_minimised() {
    let req = request(vec![
        stop(1, StopKind::Dropoff, at(0.0, 3_000.0), window(-30, -10), 0),
        stop(2, StopKind::Dropoff, at(0.0, 600.0), window(-30, -10), 0),
    ]);
    let seq = resequence(&req).unwrap();
    assert_eq!(seq.order, vec![1, 0]);
    assert_close(seq.visits[0].lateness, Duration::minutes(10) + Duration::seconds(60));
    assert_close(seq.visits[1].lateness, Duration::minutes(10) + Duration::seconds(300));
    assert_close(seq.total_lateness, seq.visits[0].lateness + seq.visits[1].lateness);
}

/// Random windowed instances: the result is never later in total than the
/// nearest-feasible-first order a naive planner would drive.
#[test]
fn lateness_beats_a_greedy_nearest_neighbour() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..40 {
        let req = instance(20, true).new_tree(&mut runner).unwrap().current();
        let greedy = evaluate(&req, &nearest_feasible_first(&req)).unwrap();
        let seq = resequence(&req).unwrap();
        assert!(weighted(&seq) <= weighted(&greedy) + 1e-3, "{} > greedy {}", weighted(&seq), weighted(&greedy));
    }
}

fn nearest_feasible_first(req: &SequenceRequest) -> Vec<usize> {
    let n = req.stops.len();
    let mut done = vec![false; n];
    let mut here = req.position;
    let mut order = Vec::new();
    let dist = |a: GeoPoint, b: GeoPoint| {
        Haversine.distance(Point::new(a.longitude, a.latitude), Point::new(b.longitude, b.latitude))
    };
    while order.len() < n {
        let next = (0..n)
            .filter(|&i| !done[i])
            .filter(|&i| {
                let s = &req.stops[i];
                s.kind == StopKind::Pickup
                    || req
                        .stops
                        .iter()
                        .enumerate()
                        .all(|(j, o)| !(o.job_id == s.job_id && o.kind == StopKind::Pickup) || done[j])
            })
            .min_by(|&a, &b| dist(here, req.stops[a].location).total_cmp(&dist(here, req.stops[b].location)))
            .unwrap();
        done[next] = true;
        here = req.stops[next].location;
        order.push(next);
    }
    order
}

// ---------------------------------------------------------------------------
// Bad requests

fn field_of(result: Result<Sequence, CoreError>) -> String {
    match result {
        Err(CoreError::InvalidInput { field, .. }) => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

fn valid() -> SequenceRequest {
    request(vec![
        stop(1, StopKind::Pickup, at(100.0, 0.0), window(0, 60), 60),
        stop(1, StopKind::Dropoff, at(500.0, 0.0), window(0, 120), 60),
        stop(2, StopKind::Dropoff, at(0.0, 500.0), window(0, 120), 60),
    ])
}

#[test]
fn bad_requests_are_rejected_naming_the_field() {
    assert!(resequence(&valid()).is_ok());

    let mut req = valid();
    req.position.latitude = f64::NAN;
    assert_eq!(field_of(resequence(&req)), "position.latitude");

    let mut req = valid();
    req.position.longitude = 181.0;
    assert_eq!(field_of(resequence(&req)), "position.longitude");

    let mut req = valid();
    req.stops[2].location.longitude = f64::NAN;
    assert_eq!(field_of(resequence(&req)), "stops[2].location.longitude");

    let mut req = valid();
    req.stops[1].location.latitude = f64::INFINITY;
    assert_eq!(field_of(resequence(&req)), "stops[1].location.latitude");

    for speed in [0.0, -3.0, f64::NAN, f64::INFINITY] {
        let req = SequenceRequest { speed_mps: speed, ..valid() };
        assert_eq!(field_of(resequence(&req)), "speed_mps", "speed {speed}");
    }

    let mut req = valid();
    req.stops[1].window = window(30, 20);
    assert_eq!(field_of(resequence(&req)), "stops[1].window");

    let mut req = valid();
    req.stops[2].service_time = Duration::seconds(-1);
    assert_eq!(field_of(resequence(&req)), "stops[2].service_time");

    // The same job listed twice for the same kind.
    let mut req = valid();
    req.stops.push(stop(2, StopKind::Dropoff, at(0.0, 900.0), window(0, 120), 60));
    assert_eq!(field_of(resequence(&req)), "stops[3].job_id");
    let mut req = valid();
    req.stops.push(stop(1, StopKind::Pickup, at(0.0, 900.0), window(0, 120), 60));
    assert_eq!(field_of(resequence(&req)), "stops[3].job_id");

    // A drop-off listed before its pickup.
    let mut req = valid();
    req.stops.swap(0, 1);
    assert_eq!(field_of(resequence(&req)), "stops[0]");
}

#[test]
fn bad_orders_are_rejected_by_evaluate() {
    let req = valid();
    assert!(evaluate(&req, &[0, 1, 2]).is_ok());
    assert_eq!(field_of(evaluate(&req, &[0, 1])), "order");
    assert_eq!(field_of(evaluate(&req, &[0, 1, 1])), "order[2]");
    assert_eq!(field_of(evaluate(&req, &[0, 1, 3])), "order[2]");
    assert_eq!(field_of(evaluate(&req, &[1, 0, 2])), "order[0]");
}

#[test]
fn edge_cases_that_are_fine() {
    // Nothing left to do.
    let seq = resequence(&request(vec![])).unwrap();
    assert!(seq.order.is_empty() && seq.visits.is_empty());
    assert_eq!((seq.total_distance_m, seq.finish), (0.0, now()));

    // A zero-length window, a pickup whose drop-off is not listed, zero service.
    let req = request(vec![
        stop(1, StopKind::Pickup, at(0.0, 100.0), window(5, 5), 0),
        stop(2, StopKind::Dropoff, at(0.0, 200.0), window(0, 60), 0),
    ]);
    let seq = resequence(&req).unwrap();
    assert!(is_permutation(&seq.order, 2));
}
