//! The route model: ordered stops with their geofences, and the leg
//! geometry leading to each, prepared once so that each fix is cheap.

use super::StopKind;
use super::geometry::{self, Fingerprint, LocalFrame, check_point, coord, from_coord};
use crate::error::CoreError;
use crate::jobs::{GeoPoint, RouteGeometry, TimeWindow};
use geo::{BoundingRect, Closest, ClosestPoint, Coord, Distance, Euclidean, Line, LineString, Point, Polygon, Rect};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Arrival radius to use when dispatch gives a stop no geofence of its own.
pub const DEFAULT_GEOFENCE_RADIUS_M: f64 = 40.0;

/// The largest distance a footprint vertex may lie from its stop: a
/// footprint is a building, not a district (and the local frame its
/// distances are measured in stays accurate at this size).
const MAX_FOOTPRINT_SPAN_M: f64 = 5_000.0;

/// How far behind the last matched point the window search looks, metres.
const WINDOW_BACK_M: f64 = 30.0;

/// Segments per bounding box of a leg's index: a whole-leg search visits
/// boxes nearest first and stops when the next box is farther than the best
/// match so far.
const CHUNK_SEGMENTS: usize = 64;

/// Where a stop counts as reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Geofence {
    /// A circle around the stop's location.
    Radius { radius_m: f64 },
    /// The building footprint: a ring of at least three vertices, in order
    /// (a closing vertex equal to the first is optional).
    Polygon { vertices: Vec<GeoPoint> },
}

impl Default for Geofence {
    fn default() -> Self {
        Geofence::Radius { radius_m: DEFAULT_GEOFENCE_RADIUS_M }
    }
}

/// One stop as the caller describes it, with the leg leading to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopInput {
    pub job_id: Uuid,
    pub kind: StopKind,
    pub location: GeoPoint,
    pub geofence: Geofence,
    /// When service at the stop may happen (pickup or drop-off window).
    pub window: TimeWindow,
    /// Expected time spent at the stop, seconds (counted in the ETA).
    pub service_time_s: f64,
    /// The road from the previous stop (or the route's origin) to this one.
    /// `None`: the straight line from the previous stop, or from the origin;
    /// for the first stop without an origin, an open leg (see [`LegShape`]).
    pub leg: Option<RouteGeometry>,
}

/// How a leg's geometry was obtained; it decides whether off-route applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegShape {
    /// Decoded from a router's encoded polyline: the driver is expected to
    /// follow it, and leaving it is reported as off-route.
    Polyline,
    /// No geometry was given: the straight line from the previous stop. Real
    /// roads stray from it, so leaving it is not reported as off-route.
    Straight,
    /// The first leg when neither an origin nor geometry is known: the
    /// driver may come from anywhere; progress is the distance to the stop.
    Open,
}

/// A validated stop of a [`Route`].
#[derive(Debug, Clone)]
pub struct RouteStop {
    pub job_id: Uuid,
    pub kind: StopKind,
    pub location: GeoPoint,
    pub geofence: Geofence,
    pub window: TimeWindow,
    pub service_time_s: f64,
    fence: PreparedFence,
}

#[derive(Debug, Clone)]
enum PreparedFence {
    Radius(f64),
    /// The footprint in a local frame (metres) around the stop's location.
    Polygon {
        frame: LocalFrame,
        polygon: Polygon<f64>,
    },
}

impl RouteStop {
    /// Validates one stop (its `leg` is ignored), e.g. to run
    /// [`completion_check`](super::completion_check) for a job outside any
    /// route.
    pub fn new(input: &StopInput) -> Result<RouteStop, CoreError> {
        prepare_stop("stop", input)
    }

    /// Distance in metres from `p` to the geofence: 0 inside it.
    pub fn distance_to_geofence_m(&self, p: GeoPoint) -> f64 {
        match &self.fence {
            PreparedFence::Radius(r) => (geometry::distance_m(p, self.location) - r).max(0.0),
            PreparedFence::Polygon { frame, polygon } => {
                Euclidean.distance(&Point::from(frame.project(coord(p))), polygon)
            }
        }
    }
}

fn prepare_stop(field: &str, input: &StopInput) -> Result<RouteStop, CoreError> {
    check_point(&format!("{field}.location"), input.location)?;
    if input.window.end < input.window.start {
        return Err(CoreError::invalid(format!("{field}.window"), "ends before it starts"));
    }
    if !input.service_time_s.is_finite() || input.service_time_s < 0.0 {
        return Err(CoreError::invalid(
            format!("{field}.service_time_s"),
            format!("{} is not a duration in seconds", input.service_time_s),
        ));
    }
    let fence = match &input.geofence {
        Geofence::Radius { radius_m } => {
            if !radius_m.is_finite() || *radius_m <= 0.0 {
                return Err(CoreError::invalid(
                    format!("{field}.geofence.radius_m"),
                    format!("{radius_m} is not a positive radius in metres"),
                ));
            }
            PreparedFence::Radius(*radius_m)
        }
        Geofence::Polygon { vertices } => {
            let field = format!("{field}.geofence.vertices");
            for (i, v) in vertices.iter().enumerate() {
                check_point(&format!("{field}[{i}]"), *v)?;
                if geometry::distance_m(*v, input.location) > MAX_FOOTPRINT_SPAN_M {
                    return Err(CoreError::invalid(
                        format!("{field}[{i}]"),
                        format!("more than {MAX_FOOTPRINT_SPAN_M} m from the stop; not a building footprint"),
                    ));
                }
            }
            let frame = LocalFrame::new(input.location);
            let mut ring: Vec<Coord<f64>> = Vec::with_capacity(vertices.len() + 1);
            for v in vertices {
                let c = frame.project(coord(*v));
                if ring.last() != Some(&c) {
                    ring.push(c);
                }
            }
            if ring.len() > 1 && ring.first() == ring.last() {
                ring.pop();
            }
            if ring.len() < 3 {
                return Err(CoreError::invalid(field, "a footprint needs at least three distinct vertices"));
            }
            PreparedFence::Polygon { frame, polygon: Polygon::new(LineString::new(ring), vec![]) }
        }
    };
    Ok(RouteStop {
        job_id: input.job_id,
        kind: input.kind,
        location: input.location,
        geofence: input.geofence.clone(),
        window: input.window,
        service_time_s: input.service_time_s,
        fence,
    })
}

/// A leg's geometry, prepared: vertices (x = longitude, y = latitude) and
/// the Haversine distance from the leg's start to each vertex.
#[derive(Debug, Clone)]
pub(crate) struct Leg {
    coords: Vec<Coord<f64>>,
    cumulative_m: Vec<f64>,
    /// Bounding box (lon/lat) of each run of `CHUNK_SEGMENTS` segments.
    chunks: Vec<Rect<f64>>,
    shape: LegShape,
    fingerprint: u64,
}

/// Where a fix lies on a leg.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LegMatch {
    pub segment: u32,
    pub along_m: f64,
    pub snapped: GeoPoint,
    /// Haversine distance from the fix to `snapped`.
    pub distance_m: f64,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    segment: usize,
    fraction: f64,
    local_distance_m: f64,
}

impl Leg {
    fn new(coords: Vec<Coord<f64>>, shape: LegShape) -> Leg {
        let mut cumulative_m = Vec::with_capacity(coords.len());
        let mut total = 0.0;
        let mut print = Fingerprint::new().u64(shape as u64).u64(coords.len() as u64);
        for (i, c) in coords.iter().enumerate() {
            if i > 0 {
                total += geometry::distance_m(from_coord(coords[i - 1]), from_coord(*c));
            }
            cumulative_m.push(total);
            print = print.f64(c.x).f64(c.y);
        }
        let segments = coords.len().saturating_sub(1);
        let chunks = (0..segments.div_ceil(CHUNK_SEGMENTS))
            .filter_map(|c| {
                let last = ((c + 1) * CHUNK_SEGMENTS).min(segments);
                LineString::new(coords[c * CHUNK_SEGMENTS..=last].to_vec()).bounding_rect()
            })
            .collect();
        Leg { coords, cumulative_m, chunks, shape, fingerprint: print.finish() }
    }

    pub(crate) fn length_m(&self) -> f64 {
        self.cumulative_m.last().copied().unwrap_or(0.0)
    }

    pub(crate) fn shape(&self) -> LegShape {
        self.shape
    }

    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    fn segment_count(&self) -> usize {
        self.coords.len().saturating_sub(1)
    }

    /// The closest point to the frame's origin (the fix) on segments
    /// `lo..=hi`; the earliest wins a tie.
    fn best_in(&self, frame: &LocalFrame, lo: usize, hi: usize) -> Candidate {
        let origin = Point::new(0.0, 0.0);
        let mut best = Candidate { segment: lo, fraction: 0.0, local_distance_m: f64::INFINITY };
        let mut a = frame.project(self.coords[lo]);
        for segment in lo..=hi {
            let b = frame.project(self.coords[segment + 1]);
            let length = (b.x - a.x).hypot(b.y - a.y);
            let (p, fraction) = match Line::new(a, b).closest_point(&origin) {
                Closest::Intersection(p) | Closest::SinglePoint(p) => {
                    let along = (p.x() - a.x).hypot(p.y() - a.y);
                    (p.0, if length > 0.0 { (along / length).min(1.0) } else { 0.0 })
                }
                Closest::Indeterminate => (a, 0.0),
            };
            let d = p.x.hypot(p.y);
            if d < best.local_distance_m {
                best = Candidate { segment, fraction, local_distance_m: d };
            }
            a = b;
        }
        best
    }

    /// The closest point on the whole leg: boxes of segments nearest first,
    /// until the next box cannot hold anything closer.
    fn best_anywhere(&self, frame: &LocalFrame) -> Candidate {
        let n = self.segment_count();
        if self.chunks.len() <= 2 {
            return self.best_in(frame, 0, n - 1);
        }
        let mut order: Vec<(f64, usize)> =
            self.chunks.iter().enumerate().map(|(c, rect)| (lower_bound_m(frame, rect), c)).collect();
        order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut best = Candidate { segment: 0, fraction: 0.0, local_distance_m: f64::INFINITY };
        for (bound, c) in order {
            if bound > best.local_distance_m {
                break;
            }
            let lo = c * CHUNK_SEGMENTS;
            let candidate = self.best_in(frame, lo, ((c + 1) * CHUNK_SEGMENTS).min(n) - 1);
            if candidate.local_distance_m < best.local_distance_m
                || (candidate.local_distance_m == best.local_distance_m && candidate.segment < best.segment)
            {
                best = candidate;
            }
        }
        best
    }

    /// Matches `p` to the leg. With a `hint` (segment and distance along the
    /// leg of the last match) only a window of segments is searched: from
    /// [`WINDOW_BACK_M`] behind to `ahead_m` ahead. The whole leg is searched
    /// when there is no usable hint, or when the window's best is farther
    /// than `widen_beyond_m` or at the window's edge.
    pub(crate) fn locate(&self, p: GeoPoint, hint: Option<(u32, f64)>, ahead_m: f64, widen_beyond_m: f64) -> LegMatch {
        let n = self.segment_count();
        if n == 0 {
            let snapped = from_coord(self.coords[0]);
            return LegMatch { segment: 0, along_m: 0.0, snapped, distance_m: geometry::distance_m(p, snapped) };
        }
        let frame = LocalFrame::new(p);
        let (lo, hi) = match hint {
            Some((segment, along)) if (segment as usize) < n && along.is_finite() => {
                let segment = segment as usize;
                let back = along - WINDOW_BACK_M;
                let mut lo = segment;
                while lo > 0 && self.cumulative_m[lo] > back {
                    lo -= 1;
                }
                let ahead = along + ahead_m;
                let mut hi = segment;
                while hi + 1 < n && self.cumulative_m[hi + 1] < ahead {
                    hi += 1;
                }
                (lo, hi.max((segment + 2).min(n - 1)))
            }
            _ => (0, n - 1),
        };
        let whole = lo == 0 && hi == n - 1;
        let mut best = if whole { self.best_anywhere(&frame) } else { self.best_in(&frame, lo, hi) };
        let at_edge = (best.segment == hi && best.fraction >= 1.0 && hi + 1 < n)
            || (best.segment == lo && best.fraction <= 0.0 && lo > 0);
        if !whole && (best.local_distance_m > widen_beyond_m || at_edge) {
            let all = self.best_anywhere(&frame);
            if all.local_distance_m < best.local_distance_m {
                best = all;
            }
        }
        let (a, b) = (self.coords[best.segment], self.coords[best.segment + 1]);
        let mut dlon = b.x - a.x;
        if dlon > 180.0 {
            dlon -= 360.0;
        } else if dlon < -180.0 {
            dlon += 360.0;
        }
        let mut lon = a.x + best.fraction * dlon;
        if lon > 180.0 {
            lon -= 360.0;
        } else if lon < -180.0 {
            lon += 360.0;
        }
        let snapped = GeoPoint { latitude: a.y + best.fraction * (b.y - a.y), longitude: lon };
        let (start, end) = (self.cumulative_m[best.segment], self.cumulative_m[best.segment + 1]);
        LegMatch {
            segment: best.segment as u32,
            along_m: start + best.fraction * (end - start),
            snapped,
            distance_m: geometry::distance_m(p, snapped),
        }
    }

    fn vertices(&self) -> Vec<GeoPoint> {
        self.coords.iter().map(|c| from_coord(*c)).collect()
    }
}

/// A lower bound of the distance from the frame's origin to anything in
/// `rect` (lon/lat), in the frame's metres; 0 for a box across the
/// antimeridian.
fn lower_bound_m(frame: &LocalFrame, rect: &Rect<f64>) -> f64 {
    let (min, max) = (frame.project(rect.min()), frame.project(rect.max()));
    if min.x > max.x || rect.max().x - rect.min().x > 180.0 {
        return 0.0;
    }
    let dx = min.x.max(-max.x).max(0.0);
    let dy = min.y.max(-max.y).max(0.0);
    dx.hypot(dy)
}

/// A driver's route: stops in visiting order, and for each the leg leading
/// to it. Built once ([`Route::new`]) and read by every
/// [`update`](super::update); the navigation state refers to it by index and
/// never copies it.
#[derive(Debug, Clone)]
pub struct Route {
    origin: Option<GeoPoint>,
    stops: Vec<RouteStop>,
    legs: Vec<Leg>,
    /// `legs_from[i]`: total length of legs `i..`; one more entry than legs.
    legs_from: Vec<f64>,
    /// `service_from[i]`: total expected service time of stops `i..`.
    service_from: Vec<f64>,
    fingerprint: u64,
}

impl Route {
    /// Validates and prepares a route. `origin`, when known (the driver's
    /// position or depot), starts the first leg when that leg has no
    /// geometry. Errors are `InvalidInput` naming the field, e.g.
    /// `stops[3].leg.polyline`.
    pub fn new(origin: Option<GeoPoint>, stops: Vec<StopInput>) -> Result<Route, CoreError> {
        if let Some(o) = origin {
            check_point("origin", o)?;
        }
        if stops.is_empty() {
            return Err(CoreError::invalid("stops", "a route needs at least one stop"));
        }
        if stops.len() > u32::MAX as usize {
            return Err(CoreError::invalid("stops", "too many stops"));
        }
        let mut prepared = Vec::with_capacity(stops.len());
        for (i, input) in stops.iter().enumerate() {
            prepared.push(prepare_stop(&format!("stops[{i}]"), input)?);
        }
        let mut legs = Vec::with_capacity(stops.len());
        for (i, input) in stops.iter().enumerate() {
            let start = if i == 0 { origin } else { Some(prepared[i - 1].location) };
            legs.push(build_leg(&format!("stops[{i}].leg"), input.leg.as_ref(), start, prepared[i].location)?);
        }
        let mut print = Fingerprint::new().u64(prepared.len() as u64);
        for stop in &prepared {
            print = print.bytes(stop.job_id.as_bytes()).u64(stop.kind as u64);
        }
        let mut route = Route {
            origin,
            stops: prepared,
            legs,
            legs_from: Vec::new(),
            service_from: Vec::new(),
            fingerprint: print.finish(),
        };
        route.refresh_sums();
        Ok(route)
    }

    fn refresh_sums(&mut self) {
        let n = self.stops.len();
        self.legs_from = vec![0.0; n + 1];
        self.service_from = vec![0.0; n + 1];
        for i in (0..n).rev() {
            self.legs_from[i] = self.legs_from[i + 1] + self.legs[i].length_m();
            self.service_from[i] = self.service_from[i + 1] + self.stops[i].service_time_s;
        }
    }

    /// Replaces the geometry of the leg leading to `stop_index`, e.g. to
    /// accept a reroute (`None`: the straight line again). If the driver is
    /// on that leg, the next [`update`](super::update) notices the new
    /// geometry and restarts progress on it from scratch (a whole-leg
    /// search, off-route re-judged, a new reroute request possible).
    pub fn replace_leg_geometry(&mut self, stop_index: u32, geometry: Option<&RouteGeometry>) -> Result<(), CoreError> {
        let i = stop_index as usize;
        if i >= self.stops.len() {
            return Err(CoreError::invalid("stop_index", format!("{stop_index} is not a stop of this route")));
        }
        let start = if i == 0 { self.origin } else { Some(self.stops[i - 1].location) };
        self.legs[i] = build_leg("geometry", geometry, start, self.stops[i].location)?;
        self.refresh_sums();
        Ok(())
    }

    pub fn stops(&self) -> &[RouteStop] {
        &self.stops
    }

    pub fn stop(&self, index: u32) -> Option<&RouteStop> {
        self.stops.get(index as usize)
    }

    pub fn stop_count(&self) -> u32 {
        self.stops.len() as u32
    }

    /// Identifies the stop list (job ids and kinds, in order); a
    /// [`NavState`](super::NavState) only applies to a route with the same.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Length in metres of the leg leading to `stop_index` (0 for an open leg).
    pub fn leg_length_m(&self, stop_index: u32) -> Option<f64> {
        self.legs.get(stop_index as usize).map(Leg::length_m)
    }

    pub fn leg_shape(&self, stop_index: u32) -> Option<LegShape> {
        self.legs.get(stop_index as usize).map(Leg::shape)
    }

    /// The vertices of the leg leading to `stop_index`, e.g. to draw it.
    pub fn leg_vertices(&self, stop_index: u32) -> Option<Vec<GeoPoint>> {
        self.legs.get(stop_index as usize).map(Leg::vertices)
    }

    /// The leg leading to `stop_index` as an encoded polyline (precision 5 or 6).
    pub fn leg_polyline(&self, stop_index: u32, precision: u8) -> Result<RouteGeometry, CoreError> {
        let leg = self
            .legs
            .get(stop_index as usize)
            .ok_or_else(|| CoreError::invalid("stop_index", format!("{stop_index} is not a stop of this route")))?;
        geometry::encode_polyline(&leg.vertices(), precision)
    }

    /// Total length of all legs, metres.
    pub fn total_length_m(&self) -> f64 {
        self.legs_from[0]
    }

    pub(crate) fn leg(&self, stop_index: usize) -> &Leg {
        &self.legs[stop_index]
    }

    /// Total length of legs `stop_index..`.
    pub(crate) fn legs_from(&self, stop_index: usize) -> f64 {
        self.legs_from[stop_index.min(self.stops.len())]
    }

    /// Total expected service time of stops `stop_index..`, seconds.
    pub(crate) fn service_from(&self, stop_index: usize) -> f64 {
        self.service_from[stop_index.min(self.stops.len())]
    }
}

fn build_leg(
    field: &str,
    geometry: Option<&RouteGeometry>,
    start: Option<GeoPoint>,
    end: GeoPoint,
) -> Result<Leg, CoreError> {
    match geometry {
        Some(g) => {
            if !matches!(g.precision, 5 | 6) {
                return Err(CoreError::invalid(format!("{field}.precision"), format!("{} is not 5 or 6", g.precision)));
            }
            let line = polyline::decode_polyline(&g.polyline, u32::from(g.precision))
                .map_err(|e| CoreError::invalid(format!("{field}.polyline"), e.to_string()))?;
            if line.0.is_empty() {
                return Err(CoreError::invalid(format!("{field}.polyline"), "has no vertices"));
            }
            if let Some((i, c)) = line.0.iter().enumerate().find(|(_, c)| !geometry::is_valid(from_coord(**c))) {
                return Err(CoreError::invalid(
                    format!("{field}.polyline"),
                    format!("vertex {i} ({}, {}) is not on the globe", c.y, c.x),
                ));
            }
            Ok(Leg::new(line.0, LegShape::Polyline))
        }
        None => match start {
            Some(start) => Ok(Leg::new(vec![coord(start), coord(end)], LegShape::Straight)),
            None => Ok(Leg::new(vec![coord(end)], LegShape::Open)),
        },
    }
}
