//! GPS traces for QA: synthetic drives with seeded noise, traces read from
//! GPX files, and replaying either through the core's navigation controller
//! (`doorstep_core::nav::update`) to collect what it reported.
//!
//! Everything is deterministic for a given seed: the same trace, fix for
//! fix, on every machine.

use chrono::{DateTime, TimeDelta, Utc};
use doorstep_core::nav::{self, Fix, NavConfig, NavEvent, NavState, Route, geometry};
use doorstep_core::{CoreError, GeoPoint};
use std::io::Read;
use std::path::Path;

/// A small deterministic random source (SplitMix64), so traces need no
/// dependency and never change between releases.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// `p` moved `east_m` metres east and `north_m` metres north.
pub fn offset(p: GeoPoint, east_m: f64, north_m: f64) -> GeoPoint {
    let distance = east_m.hypot(north_m);
    if distance == 0.0 {
        return p;
    }
    geometry::destination(p, east_m.atan2(north_m).to_degrees(), distance)
}

/// The point `distance_m` metres along the polyline `road` (its end when
/// the road is shorter).
pub fn point_along(road: &[GeoPoint], distance_m: f64) -> GeoPoint {
    let mut left = distance_m.max(0.0);
    for pair in road.windows(2) {
        let length = geometry::distance_m(pair[0], pair[1]);
        if left <= length {
            return geometry::destination(pair[0], geometry::bearing_deg(pair[0], pair[1]), left);
        }
        left -= length;
    }
    *road.last().expect("a road has vertices")
}

/// The points to drive through to follow `road` from `from_m` to `to_m`
/// metres along it (its vertices in between, then the end point).
pub fn path_between(road: &[GeoPoint], from_m: f64, to_m: f64) -> Vec<GeoPoint> {
    let mut path = Vec::new();
    let mut at = 0.0;
    for (i, &vertex) in road.iter().enumerate() {
        if i > 0 {
            at += geometry::distance_m(road[i - 1], vertex);
        }
        if at > from_m && at < to_m {
            path.push(vertex);
        }
    }
    path.push(point_along(road, to_m));
    path
}

/// Builds a synthetic trace: the driver's true path (drives, dwells, drives
/// without fixes), sampled every `interval_s` into fixes whose positions
/// carry Gaussian noise of `noise_m` metres per axis and report
/// `accuracy_m`.
#[derive(Debug, Clone)]
pub struct TraceBuilder {
    rng: Rng,
    position: GeoPoint,
    start: DateTime<Utc>,
    /// Seconds since `start` of the true path so far.
    clock_s: f64,
    /// Seconds since `start` of the next fix to emit.
    next_fix_s: f64,
    interval_s: f64,
    noise_m: f64,
    accuracy_m: f64,
    fixes: Vec<Fix>,
}

impl TraceBuilder {
    /// A driver standing at `start` at `at`; one fix a second, 3 m of noise,
    /// 5 m reported accuracy until told otherwise.
    pub fn new(start: GeoPoint, at: DateTime<Utc>, seed: u64) -> TraceBuilder {
        TraceBuilder {
            rng: Rng::new(seed),
            position: start,
            start: at,
            clock_s: 0.0,
            next_fix_s: 0.0,
            interval_s: 1.0,
            noise_m: 3.0,
            accuracy_m: 5.0,
            fixes: Vec::new(),
        }
    }

    pub fn interval_s(&mut self, seconds: f64) -> &mut Self {
        assert!(seconds > 0.0);
        self.interval_s = seconds;
        self
    }

    pub fn noise_m(&mut self, metres: f64) -> &mut Self {
        self.noise_m = metres;
        self
    }

    pub fn accuracy_m(&mut self, metres: f64) -> &mut Self {
        self.accuracy_m = metres;
        self
    }

    /// The driver's true position now.
    pub fn position(&self) -> GeoPoint {
        self.position
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.start + millis(self.clock_s)
    }

    /// Drives from the current position through `points` at `speed_mps`,
    /// with a fix every interval.
    pub fn drive(&mut self, points: &[GeoPoint], speed_mps: f64) -> &mut Self {
        self.travel(points, speed_mps, true)
    }

    /// Drives through `points` with no fixes at all (a tunnel, a garage):
    /// time passes, the driver moves, the phone hears nothing.
    pub fn drive_dark(&mut self, points: &[GeoPoint], speed_mps: f64) -> &mut Self {
        self.travel(points, speed_mps, false)
    }

    /// Stands still for `seconds`, fixes scattered by the noise.
    pub fn dwell(&mut self, seconds: f64) -> &mut Self {
        let end = self.clock_s + seconds;
        while self.next_fix_s <= end {
            self.clock_s = self.next_fix_s;
            self.emit(Some(0.0), None);
        }
        self.clock_s = end;
        self
    }

    pub fn fixes(&self) -> &[Fix] {
        &self.fixes
    }

    pub fn build(&self) -> Vec<Fix> {
        self.fixes.clone()
    }

    fn travel(&mut self, points: &[GeoPoint], speed_mps: f64, with_fixes: bool) -> &mut Self {
        assert!(speed_mps > 0.0);
        for &target in points {
            let length = geometry::distance_m(self.position, target);
            if length == 0.0 {
                continue;
            }
            let from = self.position;
            let course = geometry::bearing_deg(from, target);
            let (start_s, end_s) = (self.clock_s, self.clock_s + length / speed_mps);
            while self.next_fix_s <= end_s {
                let travelled = (self.next_fix_s - start_s).max(0.0) * speed_mps;
                self.position = geometry::destination(from, course, travelled);
                self.clock_s = self.next_fix_s;
                if with_fixes {
                    self.emit(Some(speed_mps), Some(course));
                } else {
                    self.next_fix_s += self.interval_s;
                }
            }
            self.position = target;
            self.clock_s = end_s;
        }
        self
    }

    fn emit(&mut self, speed: Option<f64>, course: Option<f64>) {
        let noisy = offset(self.position, self.rng.normal() * self.noise_m, self.rng.normal() * self.noise_m);
        let speed = speed.map(|v| (v + self.rng.normal() * 0.3).max(0.0));
        self.fixes.push(Fix {
            latitude: noisy.latitude,
            longitude: noisy.longitude,
            horizontal_accuracy_m: self.accuracy_m,
            speed_mps: speed,
            course_deg: course,
            at: self.start + millis(self.next_fix_s),
        });
        self.next_fix_s += self.interval_s;
    }
}

fn millis(seconds: f64) -> TimeDelta {
    TimeDelta::milliseconds((seconds * 1000.0).round() as i64)
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot read GPX: {0}")]
    Gpx(String),
    #[error("GPX point {index} has no time")]
    MissingTime { index: usize },
    #[error("GPX point {index} has an unreadable time: {reason}")]
    BadTime { index: usize, reason: String },
    #[error("cannot open {path}: {reason}")]
    Io { path: String, reason: String },
}

/// Horizontal accuracy assumed per unit of HDOP (a typical phone's user
/// equivalent range error), metres.
pub const METRES_PER_HDOP: f64 = 5.0;
/// Horizontal accuracy assumed for points without HDOP, metres.
pub const DEFAULT_GPX_ACCURACY_M: f64 = 5.0;

/// Reads every track point of a GPX document (tracks, then segments, in
/// order) as fixes. Accuracy comes from HDOP (`METRES_PER_HDOP` a unit) or
/// is `DEFAULT_GPX_ACCURACY_M`; speed from GPX 1.0's `<speed>` (otherwise
/// unknown: the controller derives it); course from the previous point.
pub fn read_gpx(reader: impl Read) -> Result<Vec<Fix>, TraceError> {
    let document = gpx::read(reader).map_err(|e| TraceError::Gpx(e.to_string()))?;
    let points = document.tracks.iter().flat_map(|t| &t.segments).flat_map(|s| &s.points);
    let mut fixes: Vec<Fix> = Vec::new();
    for (index, point) in points.enumerate() {
        let time = point.time.ok_or(TraceError::MissingTime { index })?;
        let text = time.format().map_err(|e| TraceError::BadTime { index, reason: e.to_string() })?;
        let at = DateTime::parse_from_rfc3339(&text)
            .map_err(|e| TraceError::BadTime { index, reason: format!("{text}: {e}") })?
            .with_timezone(&Utc);
        let p = point.point();
        let position = GeoPoint { latitude: p.y(), longitude: p.x() };
        let course_deg = fixes.last().and_then(|last| {
            let from = last.position();
            (geometry::distance_m(from, position) >= 1.0).then(|| geometry::bearing_deg(from, position))
        });
        fixes.push(Fix {
            latitude: position.latitude,
            longitude: position.longitude,
            horizontal_accuracy_m: point.hdop.map_or(DEFAULT_GPX_ACCURACY_M, |h| h * METRES_PER_HDOP),
            speed_mps: point.speed,
            course_deg,
            at,
        });
    }
    Ok(fixes)
}

pub fn read_gpx_file(path: &Path) -> Result<Vec<Fix>, TraceError> {
    let file = std::fs::File::open(path)
        .map_err(|e| TraceError::Io { path: path.display().to_string(), reason: e.to_string() })?;
    read_gpx(std::io::BufReader::new(file))
}

/// One event of a replay, with the fix that caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayEvent {
    pub fix_index: usize,
    pub at: DateTime<Utc>,
    pub event: NavEvent,
}

/// What the controller reported over a trace.
#[derive(Debug, Clone)]
pub struct Replay {
    pub events: Vec<ReplayEvent>,
    /// The state after each fix, in order.
    pub states: Vec<NavState>,
    pub last: NavState,
}

impl Replay {
    /// The events in a compact form for assertions: `arrived 0`,
    /// `departed 0`, `off_route`, `back_on_route`, `reroute_requested 1`.
    pub fn summary(&self) -> Vec<String> {
        self.events.iter().map(|e| describe(&e.event)).collect()
    }

    pub fn count(&self, name: &str) -> usize {
        self.events.iter().filter(|e| describe(&e.event).split(' ').next() == Some(name)).count()
    }
}

pub fn describe(event: &NavEvent) -> String {
    match event {
        NavEvent::Arrived { stop_index, .. } => format!("arrived {stop_index}"),
        NavEvent::Departed { stop_index, .. } => format!("departed {stop_index}"),
        NavEvent::OffRoute { .. } => "off_route".to_owned(),
        NavEvent::BackOnRoute => "back_on_route".to_owned(),
        NavEvent::RerouteRequested(request) => format!("reroute_requested {}", request.stop_index),
    }
}

/// Feeds `fixes` through the controller from `start`, stopping at the first
/// error (a fix that cannot be a measurement).
pub fn replay(route: &Route, start: &NavState, fixes: &[Fix], config: &NavConfig) -> Result<Replay, CoreError> {
    let mut state = start.clone();
    let mut events = Vec::new();
    let mut states = Vec::with_capacity(fixes.len());
    for (fix_index, fix) in fixes.iter().enumerate() {
        let update = nav::update(route, &state, fix, config)?;
        events.extend(update.events.into_iter().map(|event| ReplayEvent { fix_index, at: fix.at, event }));
        state = update.state;
        states.push(state.clone());
    }
    Ok(Replay { events, states, last: state })
}
