//! Re-sequencing the remaining stops on the device.
//!
//! When jobs are added, removed or fail while the phone is offline, the order
//! dispatch planned no longer fits and the device has to choose a new one by
//! itself. [`resequence`] takes the driver's position and time, an assumed
//! travel speed and the remaining stops, and returns the order to drive them
//! in with its cost figures. Pure and deterministic: the same request always
//! gives the same answer (no clock, no randomness, no hash-map iteration), so
//! the two phones, the simulator and a test agree on it.
//!
//! # Rules
//!
//! - **Precedence (hard).** A job's pickup comes before its drop-off: the
//!   driver cannot deliver packages they do not hold. A job whose packages
//!   the driver already holds appears with its drop-off only.
//! - **Time windows (soft).** The driver leaves the current position at
//!   `now`, drives each leg in a straight line (great-circle distance, `geo`'s
//!   Haversine) at the assumed speed, and waits when early until the window
//!   opens. A stop is late by how far its service starts after the window's
//!   end. Lateness is unavoidable sometimes (a window already over, too many
//!   stops for the time), so it is minimised, not forbidden.
//! - **Objective.** `distance_m + LATENESS_WEIGHT_M_PER_S × lateness_s`,
//!   summed over the stops: lateness first by a wide margin (one second late
//!   weighs as much as a kilometre of driving), then distance.
//!
//! # Method
//!
//! 1. *Construction:* jobs are taken by earliest deadline and each is put
//!    where it costs least: both ends of a job as a pair (every pickup
//!    position, every drop-off position after it), a lone drop-off or pickup
//!    at every position. The input order (the driver's current plan, which
//!    already satisfies precedence) is kept instead when it is cheaper, so
//!    re-sequencing never makes the plan worse.
//! 2. *Local search* (variable neighbourhood descent, first improvement, until
//!    no move improves): move a run of 1–3 consecutive stops elsewhere
//!    (relocate and or-opt), reverse a stretch (2-opt), take a job's pickup
//!    and drop-off out and put them back as a pair wherever is best. Every
//!    move is checked against precedence before it is costed. Don't-look bits
//!    keep later sweeps to the places earlier moves touched; a final sweep over
//!    everything confirms the local optimum.
//! 3. *Ruin and recreate:* local optima of such moves can be far from the
//!    best order when jobs ought to trade places, so a few jobs are taken out
//!    (those near one stop, or random ones) and put back by cheapest
//!    insertion, the local search runs again around them, and the best order
//!    seen is kept (the walk goes on from orders within a shrinking margin of
//!    the best). "Random" here is a fixed-seed generator: the rounds are a
//!    pure function of the request. Rounds stop after a fixed count or once
//!    the effort spent passes a budget (see [`Meter`]), which also caps the
//!    local search, so 150 stops take tens of milliseconds.
//!
//! A move is costed without replaying the whole route. Distances come from a
//! matrix computed once. Lateness is the prefix's (kept per position), plus
//! the stretch the move changes, plus the untouched tail's, read from a
//! precomputed *tail function*: the lateness of the stops from position `k`
//! on as a function of the arrival time at `k`. That function is convex and
//! piecewise linear (a constant plus one hinge `max(0, t − q)` per stop), so
//! it is stored as sorted breakpoints with prefix sums and read with one
//! binary search (see [`Tails`]). Stops that a move only delays are costed
//! from per-position waiting and slack (see [`Timeline`]). Lower bounds
//! (insertions never shorten a route, delays never reduce lateness) stop
//! scans early.
//!
//! Ties are broken by scan order (positions ascending) and a move is taken
//! only when it improves the cost by more than a small tolerance, so rounding
//! noise cannot make the search cycle. Effort is counted, never timed, so the
//! answer does not depend on the machine or its load.

use crate::error::{CoreError, Result};
use crate::jobs::{GeoPoint, TimeWindow};
use crate::nav::StopKind;
use chrono::{DateTime, TimeDelta, Utc};
use super::geometry::check_point;
use geo::{Distance, Haversine, Point};
use std::cell::Cell;
use std::collections::BTreeMap;
use uuid::Uuid;

/// How many metres of driving one second of lateness is worth in the
/// objective. Large, so lateness decides and distance only breaks ties
/// between equally late orders, yet finite, so the search can still trade
/// lateness between stops.
pub const LATENESS_WEIGHT_M_PER_S: f64 = 1_000.0;

/// The most stops one request may hold. The search keeps `O(n²)` numbers
/// (the distance matrix and the tail functions); a driver's remaining stops
/// are counted in tens or a few hundred.
pub const MAX_STOPS: usize = 1_000;

/// One of the driver's remaining stops.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceStop {
    pub job_id: Uuid,
    pub kind: StopKind,
    pub location: GeoPoint,
    pub window: TimeWindow,
    /// Time spent at the stop once service starts (parking, handover).
    pub service_time: chrono::Duration,
}

/// What re-sequencing needs: where and when the driver is, how fast they are
/// assumed to travel, and the stops left. `stops` is in the current planned
/// order; a job's pickup, when listed, must come before its drop-off.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceRequest {
    pub position: GeoPoint,
    pub now: DateTime<Utc>,
    /// Assumed average travel speed along the straight line between stops,
    /// metres per second (above zero).
    pub speed_mps: f64,
    pub stops: Vec<SequenceStop>,
}

/// One stop of the planned order, with its schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStop {
    /// Index of the stop in [`SequenceRequest::stops`].
    pub stop: usize,
    pub arrival: DateTime<Utc>,
    /// When service starts: the arrival, or the window's start when early.
    pub service_start: DateTime<Utc>,
    pub departure: DateTime<Utc>,
    /// Time spent waiting for the window to open.
    pub wait: chrono::Duration,
    /// How far service starts after the window's end (zero when on time).
    pub lateness: chrono::Duration,
    /// Straight-line distance from the previous stop (or the driver's
    /// position for the first), metres.
    pub distance_from_previous_m: f64,
}

/// A planned order of the stops and what it costs.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    /// The order to drive the stops in, as indices into
    /// [`SequenceRequest::stops`] (a permutation of `0..stops.len()`).
    pub order: Vec<usize>,
    /// The schedule, one entry per stop, in driving order
    /// (`visits[i].stop == order[i]`).
    pub visits: Vec<PlannedStop>,
    /// Straight-line driving distance from the driver's position through
    /// every stop, metres.
    pub total_distance_m: f64,
    /// Sum of the stops' lateness.
    pub total_lateness: chrono::Duration,
    /// Sum of the waits for windows to open.
    pub total_wait: chrono::Duration,
    /// Departure from the last stop (`now` when there are no stops).
    pub finish: DateTime<Utc>,
}

/// Re-orders the remaining stops: every pickup before its drop-off, as little
/// lateness as the search finds, then as little driving. Deterministic.
///
/// Errors: `InvalidInput` naming the field (`position.latitude`, `speed_mps`,
/// `stops[3].window`, `stops[5].job_id`, …) for a bad request.
pub fn resequence(request: &SequenceRequest) -> Result<Sequence> {
    validate(request)?;
    let problem = Problem::new(request);
    let order = solve(&problem);
    Ok(schedule(request, &problem, &order))
}

/// The schedule and cost figures of a given order, on the same model as
/// [`resequence`] (for comparing the current plan with a new one).
///
/// Errors: as [`resequence`], and `InvalidInput` on `order` unless it is a
/// permutation of the stops' indices with every listed pickup before its
/// drop-off.
pub fn evaluate(request: &SequenceRequest, order: &[usize]) -> Result<Sequence> {
    validate(request)?;
    let problem = Problem::new(request);
    check_order(&problem, order)?;
    Ok(schedule(request, &problem, order))
}

// ---------------------------------------------------------------------------
// Validation

/// Rejects what the model cannot cost, naming the first bad field.
fn validate(request: &SequenceRequest) -> Result<()> {
    check_point("position", request.position)?;
    if !(request.speed_mps.is_finite() && request.speed_mps > 0.0) {
        return Err(CoreError::invalid(
            "speed_mps",
            format!("{} is not a speed above zero in metres per second", request.speed_mps),
        ));
    }
    if request.stops.len() > MAX_STOPS {
        return Err(CoreError::invalid(
            "stops",
            format!("{} stops, at most {MAX_STOPS} can be re-sequenced at once", request.stops.len()),
        ));
    }
    // (job, is pickup) → index of its first listing; a BTreeMap so nothing
    // depends on hash order.
    let mut seen: BTreeMap<(Uuid, bool), usize> = BTreeMap::new();
    for (i, stop) in request.stops.iter().enumerate() {
        check_point(&format!("stops[{i}].location"), stop.location)?;
        if stop.window.end < stop.window.start {
            return Err(CoreError::invalid(format!("stops[{i}].window"), "ends before it starts"));
        }
        if stop.service_time < TimeDelta::zero() {
            return Err(CoreError::invalid(format!("stops[{i}].service_time"), "is negative"));
        }
        let is_pickup = stop.kind == StopKind::Pickup;
        if let Some(first) = seen.insert((stop.job_id, is_pickup), i) {
            return Err(CoreError::invalid(
                format!("stops[{i}].job_id"),
                format!("job {} already has a {} at stops[{first}]", stop.job_id, kind_name(stop.kind)),
            ));
        }
        if is_pickup && seen.contains_key(&(stop.job_id, false)) {
            let dropoff = seen[&(stop.job_id, false)];
            return Err(CoreError::invalid(
                format!("stops[{dropoff}]"),
                format!("the drop-off of job {} is listed before its pickup at stops[{i}]", stop.job_id),
            ));
        }
    }
    Ok(())
}

fn kind_name(kind: StopKind) -> &'static str {
    match kind {
        StopKind::Pickup => "pickup",
        StopKind::Dropoff => "drop-off",
    }
}

/// An order given to [`evaluate`] must visit each stop once, pickups first.
fn check_order(problem: &Problem, order: &[usize]) -> Result<()> {
    if order.len() != problem.n {
        return Err(CoreError::invalid("order", format!("has {} entries for {} stops", order.len(), problem.n)));
    }
    let mut position = vec![usize::MAX; problem.n];
    for (k, &stop) in order.iter().enumerate() {
        if stop >= problem.n || position[stop] != usize::MAX {
            return Err(CoreError::invalid(
                format!("order[{k}]"),
                format!("{stop} is not a stop index, or is listed twice"),
            ));
        }
        position[stop] = k;
    }
    for stop in 0..problem.n {
        if let Some(pickup) = problem.pickup_of(stop)
            && position[pickup] > position[stop]
        {
            return Err(CoreError::invalid(
                format!("order[{}]", position[stop]),
                format!("drop-off stop {stop} comes before its pickup, stop {pickup}"),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The problem in numbers

/// The request compiled for the search: times in seconds after `now`,
/// distances in a matrix. Stops are nodes `0..n`; node `n` is the driver's
/// position.
struct Problem {
    n: usize,
    /// `(n + 1)²` great-circle distances in metres, row-major.
    dist: Vec<f64>,
    secs_per_m: f64,
    /// Window start and end, seconds after `now`.
    ready: Vec<f64>,
    due: Vec<f64>,
    service: Vec<f64>,
    /// The other end of the same job, when it is listed.
    partner: Vec<Option<usize>>,
    is_pickup: Vec<bool>,
}

impl Problem {
    fn new(request: &SequenceRequest) -> Problem {
        let n = request.stops.len();
        let now = request.now;
        let mut by_job: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
        for (i, stop) in request.stops.iter().enumerate() {
            by_job.entry(stop.job_id).or_default().push(i);
        }
        let mut partner = vec![None; n];
        for ends in by_job.values() {
            if let [a, b] = ends[..] {
                partner[a] = Some(b);
                partner[b] = Some(a);
            }
        }
        let points: Vec<GeoPoint> = request.stops.iter().map(|s| s.location).chain([request.position]).collect();
        Problem {
            n,
            dist: distance_matrix(&points),
            secs_per_m: 1.0 / request.speed_mps,
            ready: request.stops.iter().map(|s| seconds(s.window.start - now)).collect(),
            due: request.stops.iter().map(|s| seconds(s.window.end - now)).collect(),
            service: request.stops.iter().map(|s| seconds(s.service_time)).collect(),
            partner,
            is_pickup: request.stops.iter().map(|s| s.kind == StopKind::Pickup).collect(),
        }
    }

    /// The driver's position as a node.
    fn start(&self) -> usize {
        self.n
    }

    fn d(&self, a: usize, b: usize) -> f64 {
        self.dist[a * (self.n + 1) + b]
    }

    fn travel(&self, a: usize, b: usize) -> f64 {
        self.d(a, b) * self.secs_per_m
    }

    /// The pickup a drop-off waits for, when it is listed.
    fn pickup_of(&self, stop: usize) -> Option<usize> {
        if self.is_pickup[stop] { None } else { self.partner[stop] }
    }

    /// The drop-off a pickup enables, when it is listed.
    fn dropoff_of(&self, stop: usize) -> Option<usize> {
        if self.is_pickup[stop] { self.partner[stop] } else { None }
    }

    /// Serves `stop` arriving at `arrival`: (service start, lateness,
    /// departure). Early arrivals wait for the window to open.
    fn serve(&self, stop: usize, arrival: f64) -> (f64, f64, f64) {
        let start = arrival.max(self.ready[stop]);
        (start, (start - self.due[stop]).max(0.0), start + self.service[stop])
    }

    /// Drives from `from` (left at `at`) to `stop` and serves it:
    /// (departure, lateness).
    fn visit(&self, from: usize, at: f64, stop: usize) -> (f64, f64) {
        let (_, late, departure) = self.serve(stop, at + self.travel(from, stop));
        (departure, late)
    }
}

/// Symmetric great-circle distances between all points, computed once and
/// rounded to the millimetre: the maths libraries of different platforms
/// may disagree in the last bits of a sine, and rounding keeps that noise out
/// of the comparisons the search makes, so the phones agree on the order.
fn distance_matrix(points: &[GeoPoint]) -> Vec<f64> {
    let size = points.len();
    let geo: Vec<Point<f64>> = points.iter().map(|p| Point::new(p.longitude, p.latitude)).collect();
    let mut dist = vec![0.0; size * size];
    for a in 0..size {
        for b in a + 1..size {
            let d = (Haversine.distance(geo[a], geo[b]) * 1000.0).round() / 1000.0;
            dist[a * size + b] = d;
            dist[b * size + a] = d;
        }
    }
    dist
}

fn seconds(delta: TimeDelta) -> f64 {
    delta.num_seconds() as f64 + f64::from(delta.subsec_nanos()) * 1e-9
}

/// Seconds back to a duration, to the nanosecond, saturating far outside any
/// real schedule.
fn duration(secs: f64) -> TimeDelta {
    let nanos = (secs * 1e9).round();
    if nanos >= i64::MAX as f64 {
        TimeDelta::MAX
    } else if nanos <= i64::MIN as f64 {
        TimeDelta::MIN
    } else {
        TimeDelta::nanoseconds(nanos as i64)
    }
}

fn instant(now: DateTime<Utc>, secs: f64) -> DateTime<Utc> {
    now.checked_add_signed(duration(secs)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

// ---------------------------------------------------------------------------
// Costing a route

/// Lateness of a route's tail as a function of when the driver reaches it.
///
/// For position `k`, `f_k(t)` is the total lateness of the stops at `k..m`
/// when the driver arrives at `k` at time `t`. Each stop adds one hinge
/// `max(0, t − q)` (it turns late once `t` passes `q`, its window's end moved
/// back by the time needed to reach it); waiting for a window to open turns
/// hinges below its start into a constant. So
/// `f_k(t) = c_k + Σ_{q ∈ Q_k} max(0, t − q)` with `|Q_k| = m − k`, and
/// `f_k` is built from `f_{k+1}` in `O(m)`:
/// shift `Q_{k+1}` by the stop's service and leg time, add the stop's own
/// window end, fold everything below the window start into the constant.
/// Reading it is one binary search over the sorted breakpoints.
struct Tails {
    /// `c_k`, for `k` in `0..=m` (`f_m ≡ 0`).
    constant: Vec<f64>,
    /// Where `Q_k` starts in `breaks`; `Q_k` is the next `m − k` entries.
    offset: Vec<usize>,
    breaks: Vec<f64>,
    /// Running sums of `breaks` within each `Q_k`.
    sums: Vec<f64>,
}

impl Tails {
    fn new(m: usize) -> Tails {
        let mut offset = Vec::with_capacity(m + 1);
        let mut at = 0;
        for k in 0..=m {
            offset.push(at);
            at += m - k;
        }
        Tails { constant: vec![0.0; m + 1], offset, breaks: vec![0.0; at], sums: vec![0.0; at] }
    }

    fn len(&self) -> usize {
        self.constant.len() - 1
    }

    /// Rebuilds `f_k` for `k` in `0..=upto` (the later ones being current).
    fn rebuild(&mut self, problem: &Problem, route: &[usize], upto: usize) {
        let m = self.len();
        if m == 0 {
            return;
        }
        for k in (0..=upto.min(m - 1)).rev() {
            let stop = route[k];
            let shift = problem.service[stop] + route.get(k + 1).map_or(0.0, |&next| problem.travel(stop, next));
            let (here, later) = self.breaks.split_at_mut(self.offset[k + 1]);
            let here = &mut here[self.offset[k]..];
            let later = &later[..m - k - 1];
            let constant =
                self.constant[k + 1] + merge_hinges(later, shift, problem.due[stop], problem.ready[stop], here);
            self.constant[k] = constant;
            let sums = &mut self.sums[self.offset[k]..self.offset[k] + m - k];
            let mut total = 0.0;
            for (sum, &q) in sums.iter_mut().zip(here.iter()) {
                total += q;
                *sum = total;
            }
        }
    }

    /// `f_k(t)`: lateness of the stops from position `k` on, arriving at `k`
    /// at `t`.
    fn lateness(&self, k: usize, t: f64) -> f64 {
        let from = self.offset[k];
        let count = self.len() - k;
        let below = self.breaks[from..from + count].partition_point(|&q| q < t);
        if below == 0 { self.constant[k] } else { self.constant[k] + below as f64 * t - self.sums[from + below - 1] }
    }
}

/// Writes into `out` the breakpoints of `later` moved `shift` earlier, plus
/// `due`, sorted, with every breakpoint below `ready` raised to `ready`;
/// returns the constant the raising adds (`Σ (ready − q)` over those).
fn merge_hinges(later: &[f64], shift: f64, due: f64, ready: f64, out: &mut [f64]) -> f64 {
    let at = later.partition_point(|&q| q - shift < due);
    for (o, &q) in out[..at].iter_mut().zip(&later[..at]) {
        *o = q - shift;
    }
    out[at] = due;
    for (o, &q) in out[at + 1..].iter_mut().zip(&later[at..]) {
        *o = q - shift;
    }
    let raised = out.partition_point(|&q| q < ready);
    let added = out[..raised].iter().map(|&q| ready - q).sum();
    out[..raised].fill(ready);
    added
}

/// A route's schedule: per position the arrival, departure, lateness and
/// waiting so far, the total distance, and the tail functions.
///
/// Delaying the driver's arrival at position `j` by `δ` (as inserting stops
/// before it does) leaves the order from `j` on unchanged, and the delay
/// shrinks by each wait it meets: service at `k ≥ j` starts
/// `max(0, δ + cum_wait[j − 1] − cum_wait[k])` later, and stop `k` gets later
/// by `max(0, δ + cum_wait[j − 1] − absorb[k])`, where `absorb[k]` adds the
/// time `k` had to spare before its window closed. So the cost of a delay is
/// a sum over these arrays, without replaying the stops.
struct Timeline {
    arrival: Vec<f64>,
    departure: Vec<f64>,
    /// Lateness of positions `0..=k`.
    cum_late: Vec<f64>,
    /// Waiting for windows to open at positions `0..=k`.
    cum_wait: Vec<f64>,
    /// `cum_wait[k]` plus how long before its window's end service at `k`
    /// starts (zero when late).
    absorb: Vec<f64>,
    distance: f64,
    tails: Tails,
}

impl Timeline {
    fn new(problem: &Problem, route: &[usize]) -> Timeline {
        let m = route.len();
        let mut timeline = Timeline {
            arrival: vec![0.0; m],
            departure: vec![0.0; m],
            cum_late: vec![0.0; m],
            cum_wait: vec![0.0; m],
            absorb: vec![0.0; m],
            distance: 0.0,
            tails: Tails::new(m),
        };
        timeline.refresh(problem, route, 0, m);
        timeline
    }

    /// Recomputes after `route[lo..=hi]` changed (same length).
    fn refresh(&mut self, problem: &Problem, route: &[usize], lo: usize, hi: usize) {
        let mut node = self.node_before(problem, route, lo);
        let mut at = self.departure_before(lo);
        let mut late = self.late_before(lo);
        let mut waited = self.wait_before(lo);
        for (k, &stop) in route.iter().enumerate().skip(lo) {
            let arrival = at + problem.travel(node, stop);
            let (start, l, departure) = problem.serve(stop, arrival);
            late += l;
            waited += start - arrival;
            self.arrival[k] = arrival;
            self.departure[k] = departure;
            self.cum_late[k] = late;
            self.cum_wait[k] = waited;
            self.absorb[k] = waited + (problem.due[stop] - start).max(0.0);
            node = stop;
            at = departure;
        }
        self.distance = route_distance(problem, route);
        self.tails.rebuild(problem, route, hi);
    }

    fn node_before(&self, problem: &Problem, route: &[usize], k: usize) -> usize {
        if k == 0 { problem.start() } else { route[k - 1] }
    }

    fn departure_before(&self, k: usize) -> f64 {
        if k == 0 { 0.0 } else { self.departure[k - 1] }
    }

    fn late_before(&self, k: usize) -> f64 {
        if k == 0 { 0.0 } else { self.cum_late[k - 1] }
    }

    /// The tail function `f_k(t)` (see [`Tails`]), metered.
    fn tail_lateness(&self, meter: &Meter, k: usize, t: f64) -> f64 {
        meter.tail();
        self.tails.lateness(k, t)
    }

    fn wait_before(&self, k: usize) -> f64 {
        if k == 0 { 0.0 } else { self.cum_wait[k - 1] }
    }

    fn lateness(&self) -> f64 {
        self.cum_late.last().copied().unwrap_or(0.0)
    }

    fn cost(&self) -> f64 {
        cost(self.distance, self.lateness())
    }
}

fn route_distance(problem: &Problem, route: &[usize]) -> f64 {
    let mut node = problem.start();
    let mut total = 0.0;
    for &stop in route {
        total += problem.d(node, stop);
        node = stop;
    }
    total
}

fn cost(distance: f64, lateness: f64) -> f64 {
    distance + LATENESS_WEIGHT_M_PER_S * lateness
}

/// Whether `candidate` beats `current` by more than rounding noise. The
/// tolerance keeps the search from cycling on ties.
fn improves(candidate: f64, current: f64) -> bool {
    candidate < current - (1e-6 + 1e-12 * current.abs())
}

// ---------------------------------------------------------------------------
// Construction: cheapest insertion

/// What to insert: a job's two ends (pickup, drop-off), or a lone stop.
#[derive(Clone, Copy)]
enum Item {
    Pair(usize, usize),
    Single(usize),
}

/// Where an item goes in a route and what the route then costs. For a pair,
/// the pickup goes before position `first` and the drop-off before position
/// `second` of the route without them (`first <= second`).
#[derive(Clone, Copy)]
struct Placement {
    first: usize,
    second: usize,
    cost: f64,
}

/// The jobs as insertion items, earliest deadline first (ties: window start,
/// then listing order), so the tightest jobs shape the route.
fn items_by_deadline(problem: &Problem) -> Vec<Item> {
    let mut items: Vec<(usize, Item)> = (0..problem.n)
        .filter_map(|stop| match (problem.is_pickup[stop], problem.partner[stop]) {
            (true, Some(dropoff)) => Some((dropoff, Item::Pair(stop, dropoff))),
            (false, Some(_)) => None, // placed with its pickup
            (_, None) => Some((stop, Item::Single(stop))),
        })
        .collect();
    items.sort_by(|(a, ia), (b, ib)| {
        problem.due[*a]
            .total_cmp(&problem.due[*b])
            .then(problem.ready[*a].total_cmp(&problem.ready[*b]))
            .then(first_stop(*ia).cmp(&first_stop(*ib)))
    });
    items.into_iter().map(|(_, item)| item).collect()
}

fn first_stop(item: Item) -> usize {
    match item {
        Item::Pair(pickup, _) => pickup,
        Item::Single(stop) => stop,
    }
}

/// Builds a route by inserting the jobs one by one where each costs least.
fn construct(problem: &Problem, meter: &Meter) -> Vec<usize> {
    let mut route = Vec::with_capacity(problem.n);
    for item in items_by_deadline(problem) {
        let timeline = Timeline::new(problem, &route);
        meter.timeline(route.len());
        let insertion = Insertion { problem, route: &route, timeline: &timeline, meter };
        let placement = insertion.best(item, f64::INFINITY, &mut never);
        let (first, second) = placement.map_or((route.len(), route.len()), |p| (p.first, p.second));
        route = with_item(&route, item, first, second);
    }
    route
}

/// `route` with `item` placed (see [`Placement`]).
fn with_item(route: &[usize], item: Item, first: usize, second: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(route.len() + 2);
    match item {
        Item::Single(stop) => {
            out.extend_from_slice(&route[..first]);
            out.push(stop);
            out.extend_from_slice(&route[first..]);
        }
        Item::Pair(pickup, dropoff) => {
            out.extend_from_slice(&route[..first]);
            out.push(pickup);
            out.extend_from_slice(&route[first..second]);
            out.push(dropoff);
            out.extend_from_slice(&route[second..]);
        }
    }
    out
}

/// A route ready to take an item: the route, its timeline and the meter.
struct Insertion<'a> {
    problem: &'a Problem,
    route: &'a [usize],
    timeline: &'a Timeline,
    meter: &'a Meter,
}

impl Insertion<'_> {
    /// The cheapest placement of `item` costing less than `bound`; the
    /// first found on ties (positions ascending).
    ///
    /// `blink` is asked before a candidate becomes the best; when it says yes
    /// the candidate is passed over (randomised recreation; [`never`]
    /// otherwise).
    fn best(&self, item: Item, bound: f64, blink: &mut dyn FnMut() -> bool) -> Option<Placement> {
        match item {
            Item::Single(stop) => self.best_single(stop, bound, blink),
            Item::Pair(pickup, dropoff) => self.best_pair(pickup, dropoff, bound, blink),
        }
    }

    fn best_single(&self, stop: usize, bound: f64, blink: &mut dyn FnMut() -> bool) -> Option<Placement> {
        let (problem, route, tl, meter) = (self.problem, self.route, self.timeline, self.meter);
        let total_late = tl.lateness();
        let mut best: Option<Placement> = None;
        let mut best_cost = bound;
        for x in 0..=route.len() {
            meter.add(1);
            let before = tl.node_before(problem, route, x);
            let (departure, own_late) = problem.visit(before, tl.departure_before(x), stop);
            // Everything after `x` is delayed, so at least as late as now.
            if cost(tl.distance, total_late + own_late) >= best_cost {
                continue;
            }
            let mut late = tl.late_before(x) + own_late;
            let mut added = problem.d(before, stop);
            if let Some(&next) = route.get(x) {
                added += problem.d(stop, next) - problem.d(before, next);
                late += tl.tail_lateness(meter, x, departure + problem.travel(stop, next));
            }
            let c = cost(tl.distance + added, late);
            if c < best_cost && !blink() {
                best_cost = c;
                best = Some(Placement { first: x, second: x, cost: c });
            }
        }
        best
    }

    /// Every pickup position `x`, every drop-off position `y ≥ x` after it;
    /// bounds cut both loops short.
    fn best_pair(
        &self,
        pickup: usize,
        dropoff: usize,
        bound: f64,
        blink: &mut dyn FnMut() -> bool,
    ) -> Option<Placement> {
        let (problem, route, tl, meter) = (self.problem, self.route, self.timeline, self.meter);
        let m = route.len();
        let mut best: Option<Placement> = None;
        let mut best_cost = bound;
        for x in 0..=m {
            meter.add(1);
            let before = tl.node_before(problem, route, x);
            let next = route.get(x).copied();
            let (pickup_departure, pickup_late) = problem.visit(before, tl.departure_before(x), pickup);
            let late_through_pickup = tl.late_before(x) + pickup_late;
            // The route with the pickup alone bounds every placement with the
            // pickup here: the drop-off only adds distance and delay.
            let pickup_added =
                problem.d(before, pickup) + next.map_or(0.0, |b| problem.d(pickup, b) - problem.d(before, b));
            let pickup_only_late = late_through_pickup
                + next.map_or(0.0, |b| tl.tail_lateness(meter, x, pickup_departure + problem.travel(pickup, b)));
            if cost(tl.distance + pickup_added, pickup_only_late) >= best_cost {
                continue;
            }

            // The drop-off right after the pickup.
            let (departure, dropoff_late) = problem.visit(pickup, pickup_departure, dropoff);
            let mut added = problem.d(before, pickup) + problem.d(pickup, dropoff);
            let mut late = late_through_pickup + dropoff_late;
            if let Some(b) = next {
                added += problem.d(dropoff, b) - problem.d(before, b);
                late += tl.tail_lateness(meter, x, departure + problem.travel(dropoff, b));
            }
            let c = cost(tl.distance + added, late);
            if c < best_cost && !blink() {
                best_cost = c;
                best = Some(Placement { first: x, second: x, cost: c });
            }

            // The drop-off after route[x..y].
            let (mut node, mut at, mut late) = (pickup, pickup_departure, late_through_pickup);
            for y in x + 1..=m {
                meter.add(1);
                let stop = route[y - 1];
                let (departure, l) = problem.visit(node, at, stop);
                (node, at, late) = (stop, departure, late + l);
                // The drop-off is reached after `at`: its lateness only grows.
                let dropoff_floor = (at - problem.due[dropoff]).max(0.0);
                if cost(tl.distance + pickup_added, pickup_only_late + dropoff_floor) >= best_cost {
                    break;
                }
                let after = route.get(y).copied();
                let added = pickup_added
                    + problem.d(node, dropoff)
                    + after.map_or(0.0, |n| problem.d(dropoff, n) - problem.d(node, n));
                let (departure, dropoff_late) = problem.visit(node, at, dropoff);
                if cost(tl.distance + added, pickup_only_late + dropoff_late) >= best_cost {
                    continue;
                }
                let mut total = late + dropoff_late;
                if let Some(n) = after {
                    total += tl.tail_lateness(meter, y, departure + problem.travel(dropoff, n));
                }
                let c = cost(tl.distance + added, total);
                if c < best_cost && !blink() {
                    best_cost = c;
                    best = Some(Placement { first: x, second: y, cost: c });
                }
            }
        }
        best
    }
}

/// For placements that take the best candidate every time.
fn never() -> bool {
    false
}

// ---------------------------------------------------------------------------
// Local search

/// Construction, or the input order when cheaper, improved by local search,
/// then by rounds of ruin and recreate while the work budget lasts.
fn solve(problem: &Problem) -> Vec<usize> {
    let meter = Meter::default();
    let constructed = construct(problem, &meter);
    let listed: Vec<usize> = (0..problem.n).collect();
    meter.timeline(problem.n);
    meter.timeline(problem.n);
    let start = if Timeline::new(problem, &listed).cost() < Timeline::new(problem, &constructed).cost() {
        listed
    } else {
        constructed
    };
    let mut best = Search::new(problem, start, &meter);
    best.descend(true);
    let mut current = best.route.clone();
    let mut improved_by_rounds = false;
    let mut rng = SplitMix64(SEED);
    let items = items_by_deadline(problem);
    for round in 0..MAX_ROUNDS {
        if meter.spent() >= WORK_BUDGET || items.len() < 2 {
            break;
        }
        let (route, touched) = ruin_and_recreate(problem, &current, &items, &mut rng, &meter);
        let mut candidate = Search::focused(problem, route, &touched, &meter);
        candidate.descend(false);
        // Record-to-record travel: go on from anything within a margin of
        // the best (shrinking to nothing), so the search can leave a basin.
        let margin = ACCEPT_MARGIN * (1.0 - round as f64 / MAX_ROUNDS as f64);
        if candidate.cost() <= best.cost() * (1.0 + margin) {
            current.clone_from(&candidate.route);
        }
        if improves(candidate.cost(), best.cost()) {
            best = candidate;
            improved_by_rounds = true;
        }
    }
    if improved_by_rounds {
        best.descend(true);
    }
    best.route
}

/// How much worse than the best a perturbed solution may be and still be
/// walked on from, at the first round (relative).
const ACCEPT_MARGIN: f64 = 0.03;

/// Rounds of ruin and recreate at most (small instances finish here).
const MAX_ROUNDS: usize = 100;

/// Effort after which no new ruin-and-recreate round starts, in [`Meter`]
/// units (about 3 ns each on a desktop core).
const WORK_BUDGET: u64 = 4_000_000;

/// Effort after which every search stops, even short of a local optimum: a
/// bound on the time whatever the input (about 25 ms on a desktop core).
const WORK_LIMIT: u64 = 8_000_000;

/// Effort spent by one re-sequencing, in units of roughly one move looked
/// at or one stop replayed (a few nanoseconds): counted, not timed, so the
/// answer depends on neither the machine nor its load.
#[derive(Default)]
struct Meter(Cell<u64>);

impl Meter {
    fn add(&self, units: u64) {
        self.0.set(self.0.get() + units);
    }

    fn spent(&self) -> u64 {
        self.0.get()
    }

    /// Reading one tail function (a binary search).
    fn tail(&self) {
        self.add(8);
    }

    /// Building a timeline for `m` stops (the tail functions: `m²/2`
    /// breakpoints).
    fn timeline(&self, m: usize) {
        self.add((m * m / 4 + m) as u64);
    }
}

/// The perturbation stream's fixed seed: "random" but the same every run.
const SEED: u64 = 0x00D0_0857_EB5E_0000;

/// SplitMix64, a small fixed-seed generator: perturbations look random but
/// are a pure function of the request.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Takes a few jobs out of `route` (those nearest a random stop, or random
/// ones) and puts them back one by one, in random order, where each costs
/// least. Escapes local optima the single moves cannot leave, such as two
/// jobs that should trade places. Returns the route and the stops whose
/// neighbours changed.
fn ruin_and_recreate(
    problem: &Problem,
    route: &[usize],
    items: &[Item],
    rng: &mut SplitMix64,
    meter: &Meter,
) -> (Vec<usize>, Vec<usize>) {
    // Two jobs at least (one is what pair relocation already tries), at
    // most a dozen (all of them on small instances).
    let most = items.len().min(12);
    let count = 2 + rng.below(most - 1);
    let mut chosen: Vec<usize> = (0..items.len()).collect();
    if rng.next() & 1 == 0 {
        // Related removal: the jobs nearest one stop.
        let seed = route[rng.below(route.len())];
        let near = |item: &Item| match *item {
            Item::Pair(a, b) => problem.d(seed, a).min(problem.d(seed, b)),
            Item::Single(a) => problem.d(seed, a),
        };
        chosen.sort_by(|&x, &y| near(&items[x]).total_cmp(&near(&items[y])).then(x.cmp(&y)));
    } else {
        shuffle(&mut chosen, rng);
    }
    let mut removed: Vec<Item> = chosen[..count].iter().map(|&k| items[k]).collect();
    shuffle(&mut removed, rng);
    let out: Vec<usize> = removed
        .iter()
        .flat_map(|item| match *item {
            Item::Pair(a, b) => [Some(a), Some(b)],
            Item::Single(a) => [Some(a), None],
        })
        .flatten()
        .collect();
    // The stops that closed the gaps, and the ones put back.
    let mut touched: Vec<usize> = out.clone();
    for (k, &stop) in route.iter().enumerate() {
        if out.contains(&stop) {
            touched.extend(k.checked_sub(1).map(|b| route[b]));
            touched.extend(route.get(k + 1).copied());
        }
    }
    let mut rebuilt: Vec<usize> = route.iter().copied().filter(|s| !out.contains(s)).collect();
    for item in removed {
        let timeline = Timeline::new(problem, &rebuilt);
        meter.timeline(rebuilt.len());
        let insertion = Insertion { problem, route: &rebuilt, timeline: &timeline, meter };
        let placement = insertion.best(item, f64::INFINITY, &mut || rng.next() % 100 < BLINK_PERCENT);
        let (first, second) = placement.map_or((rebuilt.len(), rebuilt.len()), |p| (p.first, p.second));
        rebuilt = with_item(&rebuilt, item, first, second);
    }
    (rebuilt, touched)
}

/// Chance in percent that recreation passes over a placement that would have
/// been the best so far: without it, putting the same jobs back in the same
/// order always rebuilds the same route.
const BLINK_PERCENT: u64 = 15;

/// Fisher–Yates with the fixed-seed stream.
fn shuffle<T>(items: &mut [T], rng: &mut SplitMix64) {
    for k in (1..items.len()).rev() {
        items.swap(k, rng.below(k + 1));
    }
}

/// Local search state: the route, where each stop is in it, its timeline.
struct Search<'p> {
    problem: &'p Problem,
    route: Vec<usize>,
    position: Vec<usize>,
    timeline: Timeline,
    /// Don't-look bits, per neighbourhood ([`RUNS`], [`REVERSALS`],
    /// [`PAIRS`]) and stop: whether moves starting at that stop are worth
    /// examining. Cleared when they are examined without success, set again
    /// when a move changes the stop's neighbours; so after the first sweep
    /// only the places a move touched are looked at again.
    look: [Vec<bool>; 3],
    /// Effort spent so far by the whole re-sequencing.
    meter: &'p Meter,
}

/// Longest run of consecutive stops or-opt moves.
const MAX_SEGMENT: usize = 3;

/// The neighbourhoods' don't-look bits (see [`Search::look`]).
const RUNS: usize = 0;
const REVERSALS: usize = 1;
const PAIRS: usize = 2;

impl<'p> Search<'p> {
    /// A search from `route`, looking everywhere.
    fn new(problem: &'p Problem, route: Vec<usize>, meter: &'p Meter) -> Search<'p> {
        let timeline = Timeline::new(problem, &route);
        meter.timeline(route.len());
        let mut position = vec![0; problem.n];
        for (k, &stop) in route.iter().enumerate() {
            position[stop] = k;
        }
        let all = vec![true; problem.n];
        Search { problem, route, position, timeline, look: [all.clone(), all.clone(), all], meter }
    }

    /// A search from `route` looking only at `stops` and their neighbours
    /// (after a perturbation, the rest is as locally optimal as before).
    fn focused(problem: &'p Problem, route: Vec<usize>, stops: &[usize], meter: &'p Meter) -> Search<'p> {
        let mut search = Search::new(problem, route, meter);
        for look in &mut search.look {
            look.fill(false);
        }
        for &stop in stops {
            let k = search.position[stop];
            for near in [k.wrapping_sub(1), k, k + 1] {
                if let Some(&s) = search.route.get(near) {
                    search.wake(s);
                }
            }
        }
        search
    }

    /// Variable neighbourhood descent until no move improves: the cheap
    /// neighbourhoods first, the costlier pair relocation only when they are
    /// exhausted, back to the cheap ones after any improvement. Don't-look
    /// bits skip what no move has touched; with `verify`, sweeps over
    /// everything follow until one finds nothing, so the route is a true
    /// local optimum (a move also shifts the times of every later stop,
    /// which the bits do not track).
    fn descend(&mut self, verify: bool) {
        self.sweep();
        while verify && self.can_move() {
            for look in &mut self.look {
                look.fill(true);
            }
            if !self.sweep() {
                break;
            }
        }
    }

    /// Runs the neighbourhoods until none improves; true if any did.
    fn sweep(&mut self) -> bool {
        let mut improved = false;
        while self.can_move() && (self.segment_pass() || self.two_opt_pass() || self.pair_pass()) {
            improved = true;
        }
        improved
    }

    fn cost(&self) -> f64 {
        self.timeline.cost()
    }

    /// Whether the search may go on: work left.
    fn can_move(&self) -> bool {
        self.meter.spent() < WORK_LIMIT
    }

    /// Takes a move: `route[lo..=hi]` changed in place; the stops at
    /// `touched` positions (where arcs changed) are looked at again.
    fn changed(&mut self, lo: usize, hi: usize, touched: &[usize]) {
        for k in lo..=hi {
            self.position[self.route[k]] = k;
        }
        self.timeline.refresh(self.problem, &self.route, lo, hi);
        let m = self.route.len();
        self.meter.add(((hi + 1) * m / 4 + m) as u64);
        for &k in touched {
            if let Some(&stop) = self.route.get(k) {
                self.wake(stop);
            }
        }
    }

    fn wake(&mut self, stop: usize) {
        for look in &mut self.look {
            look[stop] = true;
        }
    }

    /// Or-opt moves of runs of 1..=3 stops starting at each stop still
    /// looked at; true if any improved.
    fn segment_pass(&mut self) -> bool {
        let mut improved = false;
        let mut i = 0;
        while i < self.route.len() && self.can_move() {
            let stop = self.route[i];
            if !self.look[RUNS][stop] {
                i += 1;
                continue;
            }
            let moved = (1..=MAX_SEGMENT).any(|len| i + len <= self.route.len() && self.move_segment(i, len));
            if moved {
                improved = true; // look at the same place again
            } else {
                self.look[RUNS][stop] = false;
                i += 1;
            }
        }
        improved
    }

    /// 2-opt moves from each stop still looked at; true if any improved.
    fn two_opt_pass(&mut self) -> bool {
        let mut improved = false;
        let mut i = 0;
        while i + 1 < self.route.len() && self.can_move() {
            let stop = self.route[i];
            if !self.look[REVERSALS][stop] {
                i += 1;
                continue;
            }
            if self.reverse_from(i) {
                improved = true;
            } else {
                self.look[REVERSALS][stop] = false;
                i += 1;
            }
        }
        improved
    }

    /// Pair relocations of the jobs with an end still looked at, in listing
    /// order; true if any improved.
    fn pair_pass(&mut self) -> bool {
        let mut improved = false;
        for pickup in 0..self.problem.n {
            if !self.can_move() {
                break;
            }
            let Some(dropoff) = self.problem.dropoff_of(pickup) else {
                continue;
            };
            if !(self.look[PAIRS][pickup] || self.look[PAIRS][dropoff]) {
                continue;
            }
            if self.relocate_pair(pickup, dropoff) {
                improved = true;
            } else {
                self.look[PAIRS][pickup] = false;
                self.look[PAIRS][dropoff] = false;
            }
        }
        improved
    }

    /// Moves the run `route[i..i + len]` to the first place, later or
    /// earlier, where the route gets cheaper. True if it moved.
    fn move_segment(&mut self, i: usize, len: usize) -> bool {
        if let Some(j) = self.segment_later(i, len) {
            self.route[i..=j].rotate_left(len);
            // New arcs: before i, around the run's new place.
            let touched = [i.wrapping_sub(1), i, j - len, j + 1 - len, j, j + 1];
            self.changed(i, j, &touched);
            return true;
        }
        if let Some(j) = self.segment_earlier(i, len) {
            self.route[j..i + len].rotate_right(len);
            let touched = [j.wrapping_sub(1), j, j + len - 1, j + len, i + len - 1, i + len];
            self.changed(j, i + len - 1, &touched);
            return true;
        }
        false
    }

    /// Whether `stop` sits in `route[lo..hi]`.
    fn within(&self, stop: Option<usize>, lo: usize, hi: usize) -> bool {
        stop.is_some_and(|s| (lo..hi).contains(&self.position[s]))
    }

    /// The first `j` such that putting the run after `route[j]` improves.
    fn segment_later(&self, i: usize, len: usize) -> Option<usize> {
        let (p, r, tl) = (self.problem, &self.route, &self.timeline);
        let current = self.cost();
        let &after = r.get(i + len)?;
        let (first, last) = (r[i], r[i + len - 1]);
        let before = tl.node_before(p, r, i);
        let inner: f64 = r[i..i + len].windows(2).map(|w| p.d(w[0], w[1])).sum();
        let removed = p.d(before, first) + p.d(last, after) - p.d(before, after);
        // Re-inserting the run costs at least `-inner` (triangle inequality).
        let floor = tl.distance - removed - inner - 1e-6;
        let (mut node, mut at, mut late) = (before, tl.departure_before(i), tl.late_before(i));
        for j in i + len..r.len() {
            self.meter.add(1);
            let stop = r[j];
            // Passing the run's own drop-off would put it before its pickup.
            if self.within(p.pickup_of(stop), i, i + len) {
                break;
            }
            let (departure, l) = p.visit(node, at, stop);
            (node, at, late) = (stop, departure, late + l);
            if !improves(cost(floor, late), current) {
                break; // lateness only grows from here
            }
            let next = r.get(j + 1).copied();
            let distance = tl.distance - removed + p.d(stop, first) + next.map_or(0.0, |y| p.d(last, y) - p.d(stop, y));
            if !improves(cost(distance, late), current) {
                continue;
            }
            let (mut run_at, mut run_late, mut run_node) = (at, late, stop);
            for &s in &r[i..i + len] {
                let (departure, l) = p.visit(run_node, run_at, s);
                (run_node, run_at, run_late) = (s, departure, run_late + l);
            }
            if let Some(y) = next {
                run_late += tl.tail_lateness(self.meter, j + 1, run_at + p.travel(last, y));
            }
            if improves(cost(distance, run_late), current) {
                return Some(j);
            }
        }
        None
    }

    /// The first `j` (nearest first) such that putting the run before
    /// `route[j]` improves.
    fn segment_earlier(&self, i: usize, len: usize) -> Option<usize> {
        let (p, r, tl) = (self.problem, &self.route, &self.timeline);
        if i == 0 {
            return None;
        }
        let current = self.cost();
        let (first, last) = (r[i], r[i + len - 1]);
        let after = r.get(i + len).copied();
        let inner: f64 = r[i..i + len].windows(2).map(|w| p.d(w[0], w[1])).sum();
        let removed = p.d(r[i - 1], first) + after.map_or(0.0, |a| p.d(last, a) - p.d(r[i - 1], a));
        // The stops jumped over are delayed: at least as late as now; the
        // stops after the run are reached no earlier than straight from
        // `route[i - 1]` at its present departure.
        let tail_floor =
            after.map_or(0.0, |a| tl.tail_lateness(self.meter, i + len, tl.departure[i - 1] + p.travel(r[i - 1], a)));
        let late_floor = tl.cum_late[i - 1] + tail_floor;
        if !improves(cost(tl.distance - removed - inner - 1e-6, late_floor), current) {
            return None;
        }
        for j in (0..i).rev() {
            self.meter.add(1);
            let stop = r[j];
            // Jumping over the pickup of the run's drop-off breaks precedence.
            if self.within(p.dropoff_of(stop), i, i + len) {
                break;
            }
            let before = tl.node_before(p, r, j);
            let distance = tl.distance - removed + p.d(before, first) + p.d(last, stop) - p.d(before, stop);
            if !improves(cost(distance, late_floor), current) {
                continue;
            }
            if let Some(late) = self.late_with_run_before(i, len, j, distance, tail_floor, current)
                && improves(cost(distance, late), current)
            {
                return Some(j);
            }
        }
        None
    }

    /// Lateness of the route with the run `route[i..i + len]` moved before
    /// `route[j]` (`j < i`), or None once it cannot beat `current`. The
    /// stops jumped over keep their order and are only delayed, so their
    /// extra lateness and the delay they pass on come from the timeline's
    /// delay arrays (see [`Timeline`]) rather than a replay.
    ///
    /// `tail_floor` is the lateness of the stops after the run when the
    /// jumped-over ones pass on no delay.
    fn late_with_run_before(
        &self,
        i: usize,
        len: usize,
        j: usize,
        distance: f64,
        tail_floor: f64,
        current: f64,
    ) -> Option<f64> {
        let (p, r, tl) = (self.problem, &self.route, &self.timeline);
        let (mut node, mut at, mut late) = (tl.node_before(p, r, j), tl.departure_before(j), tl.late_before(j));
        for &s in &r[i..i + len] {
            let (departure, l) = p.visit(node, at, s);
            (node, at, late) = (s, departure, late + l);
        }
        let delay = (at + p.travel(node, r[j]) - tl.arrival[j]).max(0.0);
        let x = delay + tl.wait_before(j);
        let passed_on = (x - tl.cum_wait[i - 1]).max(0.0);
        late += tl.cum_late[i - 1] - tl.late_before(j);
        if !improves(cost(distance, late + tail_floor), current) {
            return None;
        }
        late += match r.get(i + len) {
            Some(&next) if passed_on > 0.0 => {
                let leave = tl.departure[i - 1] + passed_on;
                tl.tail_lateness(self.meter, i + len, leave + p.travel(r[i - 1], next))
            }
            _ => tail_floor,
        };
        for k in j..i {
            self.meter.add(1);
            if x <= tl.wait_before(k) || !improves(cost(distance, late), current) {
                break; // the delay is used up, or it is too late already
            }
            late += (x - tl.absorb[k]).max(0.0);
        }
        improves(cost(distance, late), current).then_some(late)
    }

    /// Reverses the first stretch `route[i..=j]` whose reversal improves.
    fn reverse_from(&mut self, i: usize) -> bool {
        if let Some(j) = self.reversal_from(i) {
            self.route[i..=j].reverse();
            self.changed(i, j, &[i.wrapping_sub(1), i, j, j + 1]);
            return true;
        }
        false
    }

    fn reversal_from(&self, i: usize) -> Option<usize> {
        let (p, r, tl) = (self.problem, &self.route, &self.timeline);
        let current = self.cost();
        let before = tl.node_before(p, r, i);
        let late_floor = tl.late_before(i);
        for j in i + 1..r.len() {
            self.meter.add(1);
            let stop = r[j];
            // A stretch holding both ends of a job cannot be reversed.
            if self.within(p.pickup_of(stop), i, j) {
                break;
            }
            let next = r.get(j + 1).copied();
            let distance =
                tl.distance + p.d(before, stop) - p.d(before, r[i]) + next.map_or(0.0, |y| p.d(r[i], y) - p.d(stop, y));
            if !improves(cost(distance, late_floor), current) {
                continue;
            }
            let (mut node, mut at, mut late) = (before, tl.departure_before(i), late_floor);
            let mut pruned = false;
            for &s in r[i..=j].iter().rev() {
                self.meter.add(1);
                let (departure, l) = p.visit(node, at, s);
                (node, at, late) = (s, departure, late + l);
                if !improves(cost(distance, late), current) {
                    pruned = true;
                    break;
                }
            }
            if pruned {
                continue;
            }
            if let Some(y) = next {
                late += tl.tail_lateness(self.meter, j + 1, at + p.travel(node, y));
            }
            if improves(cost(distance, late), current) {
                return Some(j);
            }
        }
        None
    }

    /// Takes a job's two ends out and puts them back where the route costs
    /// least, if that improves.
    fn relocate_pair(&mut self, pickup: usize, dropoff: usize) -> bool {
        let p = self.problem;
        let reduced: Vec<usize> = self.route.iter().copied().filter(|&s| s != pickup && s != dropoff).collect();
        let timeline = Timeline::new(p, &reduced);
        self.meter.timeline(reduced.len());
        let current = self.cost();
        let bound = current - (1e-6 + 1e-12 * current.abs());
        let insertion = Insertion { problem: p, route: &reduced, timeline: &timeline, meter: self.meter };
        let Some(placement) = insertion.best_pair(pickup, dropoff, bound, &mut never) else {
            return false;
        };
        if !improves(placement.cost, current) {
            return false;
        }
        let lo = self.position[pickup].min(placement.first);
        let (was_p, was_d) = (self.position[pickup], self.position[dropoff]);
        let old_neighbours =
            [was_p.wrapping_sub(1), was_p + 1, was_d.wrapping_sub(1), was_d + 1].map(|k| self.route.get(k).copied());
        self.route = with_item(&reduced, Item::Pair(pickup, dropoff), placement.first, placement.second);
        let (now_p, now_d) = (placement.first, placement.second + 1);
        // Past both drop-off positions, old and new, the route is as before.
        let hi = was_d.max(now_d);
        self.changed(lo, hi, &[now_p.wrapping_sub(1), now_p, now_p + 1, now_d.wrapping_sub(1), now_d, now_d + 1]);
        for stop in old_neighbours.into_iter().flatten() {
            self.wake(stop);
        }
        true
    }
}

// ---------------------------------------------------------------------------
// The answer

/// Replays `order` stop by stop into the figures the caller sees.
fn schedule(request: &SequenceRequest, problem: &Problem, order: &[usize]) -> Sequence {
    let now = request.now;
    let mut visits = Vec::with_capacity(order.len());
    let (mut node, mut at) = (problem.start(), 0.0);
    let (mut distance, mut lateness, mut wait) = (0.0, 0.0, 0.0);
    for &stop in order {
        let leg = problem.d(node, stop);
        let arrival = at + leg * problem.secs_per_m;
        let (start, late, departure) = problem.serve(stop, arrival);
        visits.push(PlannedStop {
            stop,
            arrival: instant(now, arrival),
            service_start: instant(now, start),
            departure: instant(now, departure),
            wait: duration(start - arrival),
            lateness: duration(late),
            distance_from_previous_m: leg,
        });
        distance += leg;
        lateness += late;
        wait += start - arrival;
        (node, at) = (stop, departure);
    }
    Sequence {
        order: order.to_vec(),
        visits,
        total_distance_m: distance,
        total_lateness: duration(lateness),
        total_wait: duration(wait),
        finish: instant(now, at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn problem(stops: &[(f64, f64, f64, f64, f64)]) -> Problem {
        // (lat offset, lon offset, ready, due, service) with no jobs paired.
        let n = stops.len();
        let points: Vec<GeoPoint> = stops
            .iter()
            .map(|s| GeoPoint { latitude: 52.0 + s.0, longitude: 13.0 + s.1 })
            .chain([GeoPoint { latitude: 52.0, longitude: 13.0 }])
            .collect();
        Problem {
            n,
            dist: distance_matrix(&points),
            secs_per_m: 0.1,
            ready: stops.iter().map(|s| s.2).collect(),
            due: stops.iter().map(|s| s.2 + s.3).collect(),
            service: stops.iter().map(|s| s.4).collect(),
            partner: vec![None; n],
            is_pickup: vec![false; n],
        }
    }

    /// Lateness of `route[k..]` arriving at `k` at `t`, the slow way.
    fn walked(p: &Problem, route: &[usize], k: usize, t: f64) -> f64 {
        let mut late = 0.0;
        let mut arrival = t;
        for (i, &stop) in route.iter().enumerate().skip(k) {
            let (_, l, departure) = p.serve(stop, arrival);
            late += l;
            if let Some(&next) = route.get(i + 1) {
                arrival = departure + p.travel(stop, next);
            }
        }
        late
    }

    proptest! {
        /// The tail functions agree with replaying the tail.
        #[test]
        fn tails_match_replay(
            stops in prop::collection::vec(
                (-0.02..0.02f64, -0.02..0.02f64, 0.0..4000.0f64, 0.0..1500.0f64, 0.0..300.0f64),
                1..25,
            ),
            k_frac in 0.0..1.0f64,
            t in -500.0..8000.0f64,
        ) {
            let p = problem(&stops);
            let route: Vec<usize> = (0..p.n).rev().collect();
            let timeline = Timeline::new(&p, &route);
            let k = ((k_frac * p.n as f64) as usize).min(p.n);
            let fast = timeline.tails.lateness(k, t);
            let slow = walked(&p, &route, k, t);
            prop_assert!((fast - slow).abs() <= 1e-6 * (1.0 + slow.abs()), "k={k} t={t}: {fast} vs {slow}");
        }
    }
}
