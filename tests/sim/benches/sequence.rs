//! Re-sequencing benchmark: re-order 150 remaining stops on the device.
//! Target: median ≤ 50 ms (release build).
//!
//! The instance is a random but fixed afternoon (seeded generator): 50 jobs
//! still to collect from 5 mall shops (pickup and drop-off), 50 jobs whose
//! packages the driver already holds (drop-off only), drop-offs spread over
//! 8 km × 8 km with two-hour windows across the next eight hours, listed in
//! a shuffled order that keeps every pickup before its drop-off. Criterion's
//! `sequence/resequence_150_stops` is the median of whole `resequence` calls;
//! the bench also prints the plan's figures beside the listed order's.

use chrono::{DateTime, Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use doorstep_core::nav::StopKind;
use doorstep_core::nav::sequence::{SequenceRequest, SequenceStop, evaluate, resequence};
use doorstep_core::{GeoPoint, TimeWindow};
use std::hint::black_box;
use uuid::Uuid;

const JOBS_TO_COLLECT: usize = 50;
const JOBS_HELD: usize = 50;
const SHOPS: usize = 5;
const AREA_M: f64 = 8_000.0;

fn now() -> DateTime<Utc> {
    "2026-11-23T12:00:00Z".parse().unwrap()
}

/// SplitMix64: a fixed, dependency-free stream of numbers, so every run
/// benchmarks the same instance.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// A point `north_m` and `east_m` metres from the city centre.
fn at(north_m: f64, east_m: f64) -> GeoPoint {
    let lat0: f64 = 52.52;
    GeoPoint { latitude: lat0 + north_m / 111_195.0, longitude: 13.40 + east_m / (111_195.0 * lat0.to_radians().cos()) }
}

fn window(rng: &mut Rng, opens_within_h: f64, width_h: f64) -> TimeWindow {
    let start = now() + Duration::seconds(rng.range(0.0, opens_within_h * 3600.0) as i64);
    TimeWindow { start, end: start + Duration::seconds((width_h * 3600.0) as i64) }
}

fn instance() -> SequenceRequest {
    let mut rng = Rng(0x5EC0_u64);
    let half = AREA_M / 2.0;
    let shops: Vec<GeoPoint> =
        (0..SHOPS).map(|_| at(rng.range(-1_000.0, 1_000.0), rng.range(-1_000.0, 1_000.0))).collect();
    // (sort key, stop): pickups get the smaller key of their job.
    let mut keyed: Vec<(u64, SequenceStop)> = Vec::new();
    for job in 0..JOBS_TO_COLLECT + JOBS_HELD {
        let job_id = Uuid::from_u128(job as u128 + 1);
        let (a, b) = (rng.next(), rng.next());
        if job < JOBS_TO_COLLECT {
            let shop = shops[(rng.next() % SHOPS as u64) as usize];
            let w = window(&mut rng, 3.0, 2.0);
            keyed.push((
                a.min(b),
                SequenceStop {
                    job_id,
                    kind: StopKind::Pickup,
                    location: shop,
                    window: w,
                    service_time: Duration::minutes(3),
                },
            ));
        }
        let location = at(rng.range(-half, half), rng.range(-half, half));
        let w = window(&mut rng, 8.0, 2.0);
        keyed.push((
            a.max(b),
            SequenceStop { job_id, kind: StopKind::Dropoff, location, window: w, service_time: Duration::minutes(2) },
        ));
    }
    keyed.sort_by_key(|(key, _)| *key);
    SequenceRequest {
        position: at(0.0, 0.0),
        now: now(),
        speed_mps: 8.0,
        stops: keyed.into_iter().map(|(_, stop)| stop).collect(),
    }
}

fn report(request: &SequenceRequest) {
    let plan = resequence(request).unwrap();
    let listed = evaluate(request, &(0..request.stops.len()).collect::<Vec<_>>()).unwrap();
    let late_stops = plan.visits.iter().filter(|v| v.lateness > Duration::zero()).count();
    println!(
        "sequence: {} stops; listed order {:.1} km, {} min late in total; re-sequenced {:.1} km, {} min late in total ({} stops late)",
        request.stops.len(),
        listed.total_distance_m / 1000.0,
        listed.total_lateness.num_minutes(),
        plan.total_distance_m / 1000.0,
        plan.total_lateness.num_minutes(),
        late_stops,
    );
}

fn resequence_150_stops(c: &mut Criterion) {
    let request = instance();
    assert_eq!(request.stops.len(), 150);
    report(&request);
    let mut group = c.benchmark_group("sequence");
    group.sample_size(20).measurement_time(std::time::Duration::from_secs(6));
    group.bench_function("resequence_150_stops", |b| b.iter(|| resequence(black_box(&request)).unwrap()));
    group.finish();
}

criterion_group!(benches, resequence_150_stops);
criterion_main!(benches);
