//! The navigation controller: one pure step per location fix.
//!
//! [`update`] takes the route, the previous [`NavState`], a [`Fix`] and the
//! [`NavConfig`], and returns the next state with the events the fix caused.
//! It reads the route by reference and never copies it; the state is a small
//! value (no heap data) that the session may persist as JSON and hand back
//! after the app was killed.
//!
//! How a fix is judged:
//! - **Bad fixes**: a fix that cannot be a measurement is an `InvalidInput`
//!   error; one not newer than the last accepted fix, or less accurate than
//!   `max_accuracy_m`, is ignored and counted (`ignored_stale`,
//!   `ignored_inaccurate`), with no events.
//! - **Matching**: the fix is projected onto the leg leading to the current
//!   stop. Only a window of segments around the last match is searched
//!   (30 m back, ahead twice the distance the driver could have covered plus
//!   the accuracy, at least 150 m); the whole leg is searched, nearest
//!   segment boxes first, only when the window holds nothing within
//!   `back_on_route_threshold_m` (plus the accuracy credit): the first fix, a
//!   gap, off-route, a new geometry. Cost per fix is therefore bounded by the
//!   window, not the route.
//! - **Arrival**: "qualifying" fixes are inside the current stop's geofence
//!   after crediting the fix's accuracy (up to `accuracy_allowance_max_m`)
//!   and slow (`arrival_max_speed_mps`; without a reported speed, the
//!   displacement since the last fix beyond this fix's accuracy, over the
//!   time between them). `arrival_min_fixes` consecutive ones, or two or more
//!   spanning `arrival_dwell_s`, make an [`NavEvent::Arrived`].
//! - **Departure**: fixes beyond the geofence by more than
//!   `departure_margin_m` even after the accuracy credit,
//!   `departure_min_fixes` in a row (or spanning `departure_dwell_s`), make a
//!   [`NavEvent::Departed`]; the current stop then advances. The margin is
//!   the hysteresis: jitter at the fence's edge cannot depart. While arrived,
//!   qualifying fixes for the *next* stop that are also nearer to it (a
//!   second pickup at the same shop) depart this stop and arrive there.
//!   Stops are visited in order; skipping one is a re-sequencing matter.
//! - **Off-route** (polyline legs only; straight and open legs are not
//!   roads): `off_route_min_fixes` fixes in a row farther than
//!   `off_route_threshold_m` from the leg (after the accuracy credit, and not
//!   near the stop itself) make [`NavEvent::OffRoute`] followed by one
//!   [`NavEvent::RerouteRequested`] for the episode; `back_on_route_min_fixes`
//!   fixes within `back_on_route_threshold_m` end it with
//!   [`NavEvent::BackOnRoute`]. When the leg's geometry is replaced
//!   ([`Route::replace_leg_geometry`]), progress on it restarts; a fix on the
//!   new geometry ends the episode at once, and leaving it may ask again.
//! - **ETA**: remaining distance over the smoothed driving speed
//!   (exponential, time constant `speed_smoothing_s`; `default_speed_mps`
//!   before any, never below `eta_min_speed_mps`), plus the expected service
//!   time of every remaining stop (what is left of it at the current one).
//!   Time windows do not delay the ETA.

use super::StopKind;
use super::geometry::{self, check_point};
use super::route::{LegMatch, LegShape, Route};
use crate::error::CoreError;
use crate::jobs::GeoPoint;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One location fix from the phone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    pub latitude: f64,
    pub longitude: f64,
    /// Radius of 68 % confidence, metres (as both platforms report it).
    pub horizontal_accuracy_m: f64,
    /// Ground speed, m/s. Negative means unknown (CoreLocation's
    /// convention) and is treated as `None`; without it the controller
    /// derives a speed from the displacement since the last fix.
    pub speed_mps: Option<f64>,
    /// Course over ground, degrees clockwise from north in `[0, 360]`.
    /// Negative means unknown and is treated as `None`.
    pub course_deg: Option<f64>,
    pub at: DateTime<Utc>,
}

impl Fix {
    pub fn position(&self) -> GeoPoint {
        GeoPoint { latitude: self.latitude, longitude: self.longitude }
    }

    /// `InvalidInput` for a fix that cannot be a measurement: non-finite or
    /// out-of-range coordinates, a negative or non-finite accuracy, a
    /// non-finite speed or course, a course above 360.
    pub fn validate(&self) -> Result<(), CoreError> {
        check_point("fix", self.position())?;
        if !self.horizontal_accuracy_m.is_finite() || self.horizontal_accuracy_m < 0.0 {
            return Err(CoreError::invalid(
                "fix.horizontal_accuracy_m",
                format!("{} is not a non-negative distance in metres", self.horizontal_accuracy_m),
            ));
        }
        if let Some(speed) = self.speed_mps.filter(|s| !s.is_finite()) {
            return Err(CoreError::invalid("fix.speed_mps", format!("{speed} is not a speed")));
        }
        if let Some(course) = self.course_deg.filter(|c| !c.is_finite() || *c > 360.0) {
            return Err(CoreError::invalid("fix.course_deg", format!("{course} is not a course in [0, 360]")));
        }
        Ok(())
    }

    fn speed(&self) -> Option<f64> {
        self.speed_mps.filter(|s| *s >= 0.0)
    }

    fn course(&self) -> Option<f64> {
        self.course_deg.filter(|c| *c >= 0.0)
    }
}

/// Tuning of the controller and the completion policy. Every field has a
/// documented default ([`NavConfig::default`]); [`update`] rejects a config
/// that makes no sense (`InvalidInput` naming `config.<field>`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NavConfig {
    /// Fixes whose accuracy is worse than this are ignored (and counted).
    /// Default 50 m.
    pub max_accuracy_m: f64,
    /// At most this much of a fix's accuracy is credited when judging
    /// whether it is inside a geofence (or on the route). Default 25 m.
    pub accuracy_allowance_max_m: f64,
    /// Consecutive qualifying fixes (inside the geofence, slow) that make an
    /// arrival. Default 3.
    pub arrival_min_fixes: u32,
    /// ...or qualifying time since the first of them, seconds. Default 10 s.
    pub arrival_dwell_s: f64,
    /// Fixes faster than this never count towards an arrival (driving
    /// past). Default 2.5 m/s (9 km/h).
    pub arrival_max_speed_mps: f64,
    /// Departure needs the fix this far beyond the geofence, even after
    /// crediting its accuracy: the hysteresis band that keeps jitter at the
    /// fence's edge from flapping. Default 20 m.
    pub departure_margin_m: f64,
    /// Consecutive fixes beyond the margin that make a departure. Default 3.
    pub departure_min_fixes: u32,
    /// ...or time beyond the margin since the first of them. Default 10 s.
    pub departure_dwell_s: f64,
    /// A fix farther than this from the leg (after crediting accuracy)
    /// counts towards off-route. Default 50 m.
    pub off_route_threshold_m: f64,
    /// Consecutive such fixes that make the driver off-route. Default 3.
    pub off_route_min_fixes: u32,
    /// Back on route needs fixes within this distance of the leg (below the
    /// off-route threshold: hysteresis). Default 30 m.
    pub back_on_route_threshold_m: f64,
    /// Consecutive such fixes that end an off-route episode. Default 3.
    pub back_on_route_min_fixes: u32,
    /// Time constant of the exponential smoothing of speed for the ETA,
    /// seconds. Default 30 s.
    pub speed_smoothing_s: f64,
    /// Speed assumed for the ETA before any speed is known. Default 8.3 m/s
    /// (30 km/h).
    pub default_speed_mps: f64,
    /// The ETA never assumes a slower speed than this (a red light must not
    /// push it to infinity). Default 3 m/s.
    pub eta_min_speed_mps: f64,
    /// Completion farther than this beyond the geofence warns. Default 100 m.
    pub completion_warn_distance_m: f64,
    /// Completion farther than this beyond the geofence needs an override
    /// with a reason. Default 300 m.
    pub completion_block_distance_m: f64,
}

impl Default for NavConfig {
    fn default() -> Self {
        NavConfig {
            max_accuracy_m: 50.0,
            accuracy_allowance_max_m: 25.0,
            arrival_min_fixes: 3,
            arrival_dwell_s: 10.0,
            arrival_max_speed_mps: 2.5,
            departure_margin_m: 20.0,
            departure_min_fixes: 3,
            departure_dwell_s: 10.0,
            off_route_threshold_m: 50.0,
            off_route_min_fixes: 3,
            back_on_route_threshold_m: 30.0,
            back_on_route_min_fixes: 3,
            speed_smoothing_s: 30.0,
            default_speed_mps: 8.3,
            eta_min_speed_mps: 3.0,
            completion_warn_distance_m: 100.0,
            completion_block_distance_m: 300.0,
        }
    }
}

impl NavConfig {
    pub fn validate(&self) -> Result<(), CoreError> {
        let non_negative = [
            ("max_accuracy_m", self.max_accuracy_m),
            ("accuracy_allowance_max_m", self.accuracy_allowance_max_m),
            ("arrival_dwell_s", self.arrival_dwell_s),
            ("departure_margin_m", self.departure_margin_m),
            ("departure_dwell_s", self.departure_dwell_s),
            ("off_route_threshold_m", self.off_route_threshold_m),
            ("back_on_route_threshold_m", self.back_on_route_threshold_m),
            ("completion_warn_distance_m", self.completion_warn_distance_m),
            ("completion_block_distance_m", self.completion_block_distance_m),
        ];
        for (name, v) in non_negative {
            if !v.is_finite() || v < 0.0 {
                return Err(CoreError::invalid(
                    format!("config.{name}"),
                    format!("{v} is not a finite non-negative number"),
                ));
            }
        }
        let positive = [
            ("arrival_max_speed_mps", self.arrival_max_speed_mps),
            ("speed_smoothing_s", self.speed_smoothing_s),
            ("default_speed_mps", self.default_speed_mps),
            ("eta_min_speed_mps", self.eta_min_speed_mps),
        ];
        for (name, v) in positive {
            if !v.is_finite() || v <= 0.0 {
                return Err(CoreError::invalid(
                    format!("config.{name}"),
                    format!("{v} is not a finite positive number"),
                ));
            }
        }
        let counts = [
            ("arrival_min_fixes", self.arrival_min_fixes),
            ("departure_min_fixes", self.departure_min_fixes),
            ("off_route_min_fixes", self.off_route_min_fixes),
            ("back_on_route_min_fixes", self.back_on_route_min_fixes),
        ];
        for (name, v) in counts {
            if v == 0 {
                return Err(CoreError::invalid(format!("config.{name}"), "must be at least 1"));
            }
        }
        if self.back_on_route_threshold_m > self.off_route_threshold_m {
            return Err(CoreError::invalid(
                "config.back_on_route_threshold_m",
                "must not exceed off_route_threshold_m (no hysteresis otherwise)",
            ));
        }
        if self.completion_warn_distance_m > self.completion_block_distance_m {
            return Err(CoreError::invalid(
                "config.completion_warn_distance_m",
                "must not exceed completion_block_distance_m",
            ));
        }
        Ok(())
    }
}

/// Where the driver is with respect to the current stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NavPhase {
    /// Driving the leg to the current stop.
    Approaching,
    /// At the current stop (arrived, not yet departed).
    Arrived,
    /// Departed the last stop.
    Finished,
}

/// The navigation state after a fix: everything the shell shows, and the
/// controller's own bookkeeping. Small and free of route data; serde
/// round-trips it (persist it to resume navigation after the app is killed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NavState {
    /// [`Route::fingerprint`] of the route this state belongs to.
    pub route_fingerprint: u64,
    /// Index of the stop being approached or served; equals the stop count
    /// once finished.
    pub current_stop: u32,
    pub phase: NavPhase,
    /// When the driver arrived at the current stop (phase `Arrived`).
    pub arrived_at: Option<DateTime<Utc>>,
    /// The last departure: stop index and when.
    pub last_departure: Option<Departure>,
    /// The last accepted fix projected onto the route (`None` before the
    /// first fix, on an open leg, and once finished).
    pub snapped: Option<GeoPoint>,
    /// Distance from the last accepted fix to `snapped`, metres.
    pub distance_from_route_m: Option<f64>,
    /// Progress along the leg to the current stop, metres (the leg's length
    /// once arrived).
    pub distance_along_leg_m: f64,
    /// Distance left on the leg to the current stop, metres (0 once arrived;
    /// on an open leg, the straight distance to the stop).
    pub remaining_leg_m: f64,
    /// Distance left on the whole route, metres.
    pub remaining_route_m: f64,
    /// When the driver should reach the current stop (the arrival instant
    /// once arrived; `None` before the first fix and once finished).
    pub eta_next_stop: Option<DateTime<Utc>>,
    /// When the whole route should be done, service at every remaining stop
    /// included (`None` before the first fix and once finished).
    pub eta_route_end: Option<DateTime<Utc>>,
    /// Exponentially smoothed driving speed, m/s (not updated while at a stop).
    pub smoothed_speed_mps: Option<f64>,
    pub off_route: bool,
    /// Fixes ignored because they were not newer than the last accepted one.
    pub ignored_stale: u64,
    /// Fixes ignored because their accuracy was worse than the limit.
    pub ignored_inaccurate: u64,
    pub accepted_fixes: u64,
    pub last_fix_at: Option<DateTime<Utc>>,
    pub last_position: Option<GeoPoint>,
    /// The controller's counters; shells need not read them.
    pub tracking: Tracking,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Departure {
    pub stop_index: u32,
    pub at: DateTime<Utc>,
}

/// Hysteresis counters and the last leg match.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Tracking {
    /// Consecutive fixes qualifying for an arrival (at the current stop, or
    /// at the next one while arrived), and since when.
    pub arrival_fixes: u32,
    pub arrival_since: Option<DateTime<Utc>>,
    pub departure_fixes: u32,
    pub departure_since: Option<DateTime<Utc>>,
    pub off_route_fixes: u32,
    pub on_route_fixes: u32,
    /// A reroute was requested in the current off-route episode.
    pub reroute_requested: bool,
    /// The last match, the start of the next window search.
    pub matched: Option<MatchHint>,
}

/// Where the last fix matched: which leg (by stop index and geometry
/// fingerprint, so new geometry is noticed), which segment, how far along.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MatchHint {
    pub leg: u32,
    pub leg_fingerprint: u64,
    pub segment: u32,
    pub along_m: f64,
}

/// What a routing service needs to draw a new leg.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RerouteRequest {
    pub position: GeoPoint,
    pub course_deg: Option<f64>,
    pub speed_mps: Option<f64>,
    pub at: DateTime<Utc>,
    /// The stop the new leg must lead to.
    pub stop_index: u32,
    pub destination: GeoPoint,
    /// The locations of the stops after it, in order (for a multi-leg answer).
    pub remaining_stops: Vec<GeoPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NavEvent {
    Arrived {
        stop_index: u32,
        job_id: Uuid,
        kind: StopKind,
    },
    /// The driver left the stop, or moved on to the next stop sharing its
    /// place (e.g. a second pickup at the same shop).
    Departed {
        stop_index: u32,
        job_id: Uuid,
        kind: StopKind,
    },
    OffRoute {
        distance_m: f64,
    },
    BackOnRoute,
    /// Emitted once per off-route episode (and again if a new geometry,
    /// once accepted, is left too).
    RerouteRequested(RerouteRequest),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NavUpdate {
    pub state: NavState,
    pub events: Vec<NavEvent>,
}

impl NavState {
    /// The state before the first fix of `route`.
    pub fn new(route: &Route) -> NavState {
        let remaining = route.legs_from(0);
        NavState {
            route_fingerprint: route.fingerprint(),
            current_stop: 0,
            phase: NavPhase::Approaching,
            arrived_at: None,
            last_departure: None,
            snapped: None,
            distance_from_route_m: None,
            distance_along_leg_m: 0.0,
            remaining_leg_m: route.leg_length_m(0).unwrap_or(0.0),
            remaining_route_m: remaining,
            eta_next_stop: None,
            eta_route_end: None,
            smoothed_speed_mps: None,
            off_route: false,
            ignored_stale: 0,
            ignored_inaccurate: 0,
            accepted_fixes: 0,
            last_fix_at: None,
            last_position: None,
            tracking: Tracking::default(),
        }
    }

    pub fn is_finished(&self) -> bool {
        self.phase == NavPhase::Finished
    }
}

/// One step of navigation: the state after `fix`, and what it caused.
///
/// Errors (`InvalidInput`): a fix that cannot be a measurement
/// ([`Fix::validate`]), a bad `config`, or a `previous` state made for
/// another route (field `state`). Fixes not newer than the last accepted one,
/// or less accurate than `config.max_accuracy_m`, are ignored: the state
/// comes back with only the matching counter raised, and no events.
pub fn update(route: &Route, previous: &NavState, fix: &Fix, config: &NavConfig) -> Result<NavUpdate, CoreError> {
    fix.validate()?;
    config.validate()?;
    if previous.route_fingerprint != route.fingerprint() {
        return Err(CoreError::invalid("state", "the navigation state belongs to a different route"));
    }
    let stop_count = route.stop_count();
    let finished_ok = previous.current_stop == stop_count && previous.phase == NavPhase::Finished;
    if previous.current_stop > stop_count || (previous.current_stop == stop_count && !finished_ok) {
        return Err(CoreError::invalid("state", "current_stop is out of range for this route"));
    }

    let mut state = previous.clone();
    if previous.last_fix_at.is_some_and(|last| fix.at <= last) {
        state.ignored_stale += 1;
        return Ok(NavUpdate { state, events: Vec::new() });
    }
    if fix.horizontal_accuracy_m > config.max_accuracy_m {
        state.ignored_inaccurate += 1;
        return Ok(NavUpdate { state, events: Vec::new() });
    }

    let position = fix.position();
    let dt_s = previous.last_fix_at.map(|last| seconds(fix.at - last));
    // Without a reported speed, the displacement since the last fix beyond
    // this fix's own error, over the time between them: a parked phone's
    // scatter must not look like driving.
    let speed = fix.speed().or_else(|| match (previous.last_position, dt_s) {
        (Some(last), Some(dt)) if dt > 0.0 => {
            Some((geometry::distance_m(last, position) - fix.horizontal_accuracy_m).max(0.0) / dt)
        }
        _ => None,
    });
    state.accepted_fixes += 1;
    state.last_fix_at = Some(fix.at);
    state.last_position = Some(position);

    let mut events = Vec::new();
    if state.phase == NavPhase::Finished {
        return Ok(NavUpdate { state, events });
    }
    // The driving speed: not updated while at a stop.
    if let Some(v) = speed.filter(|_| state.phase != NavPhase::Arrived) {
        state.smoothed_speed_mps = Some(match (state.smoothed_speed_mps, dt_s) {
            (Some(old), Some(dt)) => old + (1.0 - (-dt / config.speed_smoothing_s).exp()) * (v - old),
            _ => v,
        });
    }

    let mut step = Step {
        route,
        config,
        fix,
        position,
        speed,
        dt_s,
        allowance: fix.horizontal_accuracy_m.min(config.accuracy_allowance_max_m),
        state,
        events: &mut events,
    };
    step.run();
    let mut state = step.state;
    refresh_eta(route, &mut state, fix.at, config);
    Ok(NavUpdate { state, events })
}

struct Step<'a> {
    route: &'a Route,
    config: &'a NavConfig,
    fix: &'a Fix,
    position: GeoPoint,
    speed: Option<f64>,
    dt_s: Option<f64>,
    allowance: f64,
    state: NavState,
    events: &'a mut Vec<NavEvent>,
}

impl Step<'_> {
    fn run(&mut self) {
        match self.state.phase {
            NavPhase::Approaching => self.approach(),
            NavPhase::Arrived => self.at_stop(),
            NavPhase::Finished => {}
        }
    }

    fn slow(&self) -> bool {
        self.speed.is_none_or(|v| v <= self.config.arrival_max_speed_mps)
    }

    fn stop_event(&self, i: usize, arrived: bool) -> NavEvent {
        let stop = &self.route.stops()[i];
        let (stop_index, job_id, kind) = (i as u32, stop.job_id, stop.kind);
        if arrived {
            NavEvent::Arrived { stop_index, job_id, kind }
        } else {
            NavEvent::Departed { stop_index, job_id, kind }
        }
    }

    /// Matches the fix on the leg to `stop`; returns the match and whether
    /// the leg's geometry is new to this state (progress restarted).
    fn locate(&mut self, stop: usize) -> (LegMatch, bool) {
        let leg = self.route.leg(stop);
        let hint = self.state.tracking.matched.filter(|h| h.leg as usize == stop);
        let fresh = hint.is_none_or(|h| h.leg_fingerprint != leg.fingerprint());
        let hint = hint.filter(|_| !fresh).map(|h| (h.segment, h.along_m));
        // Ahead: twice the distance the driver could have covered since the
        // last fix, plus the fix's accuracy, and never less than 150 m.
        let travelled = match (self.speed.or(self.state.smoothed_speed_mps), self.dt_s) {
            (Some(v), Some(dt)) => v * dt,
            _ => 0.0,
        };
        let ahead = (2.0 * travelled + self.fix.horizontal_accuracy_m).max(150.0);
        let m = leg.locate(self.position, hint, ahead, self.config.back_on_route_threshold_m + self.allowance);
        self.state.tracking.matched = Some(MatchHint {
            leg: stop as u32,
            leg_fingerprint: leg.fingerprint(),
            segment: m.segment,
            along_m: m.along_m,
        });
        (m, fresh)
    }

    fn approach(&mut self) {
        let route = self.route;
        let i = self.state.current_stop as usize;
        let stop = &route.stops()[i];
        let leg = route.leg(i);
        let (m, fresh) = self.locate(i);
        let open = leg.shape() == LegShape::Open;
        self.state.snapped = (!open).then_some(m.snapped);
        self.state.distance_from_route_m = (!open).then_some(m.distance_m);
        self.state.distance_along_leg_m = if open { 0.0 } else { m.along_m };
        self.state.remaining_leg_m = if open {
            geometry::distance_m(self.position, stop.location)
        } else {
            (leg.length_m() - m.along_m).max(0.0)
        };
        self.state.remaining_route_m = self.state.remaining_leg_m + self.route.legs_from(i + 1);

        let fence_m = stop.distance_to_geofence_m(self.position);
        let qualifies = fence_m <= self.allowance && self.slow();
        let t = &mut self.state.tracking;
        if qualifies {
            t.arrival_fixes += 1;
            t.arrival_since.get_or_insert(self.fix.at);
        } else {
            t.arrival_fixes = 0;
            t.arrival_since = None;
        }
        if self.arrival_due() {
            if self.state.off_route {
                self.end_off_route();
            }
            self.arrive(i);
            return;
        }
        if fresh {
            // New geometry (or a new leg): a reroute may be asked for again.
            self.state.tracking.reroute_requested = false;
            self.state.tracking.off_route_fixes = 0;
            self.state.tracking.on_route_fixes = 0;
        }
        if leg.shape() != LegShape::Polyline {
            if self.state.off_route {
                self.end_off_route();
            }
            return;
        }
        let beyond = (m.distance_m - self.allowance).max(0.0);
        let near_stop = fence_m - self.allowance <= self.config.departure_margin_m;
        let t = &mut self.state.tracking;
        if !self.state.off_route {
            if beyond > self.config.off_route_threshold_m && !near_stop {
                t.off_route_fixes += 1;
            } else {
                t.off_route_fixes = 0;
            }
            if t.off_route_fixes >= self.config.off_route_min_fixes {
                t.off_route_fixes = 0;
                t.on_route_fixes = 0;
                self.state.off_route = true;
                self.events.push(NavEvent::OffRoute { distance_m: m.distance_m });
                self.request_reroute(i);
            }
        } else if beyond <= self.config.back_on_route_threshold_m || near_stop {
            t.on_route_fixes += 1;
            t.off_route_fixes = 0;
            // A just-accepted geometry that starts here ends the episode at once.
            if fresh || t.on_route_fixes >= self.config.back_on_route_min_fixes {
                self.end_off_route();
            }
        } else {
            t.on_route_fixes = 0;
            if !t.reroute_requested {
                // Still off the geometry accepted in this episode: ask again.
                t.off_route_fixes += 1;
                if t.off_route_fixes >= self.config.off_route_min_fixes {
                    t.off_route_fixes = 0;
                    self.request_reroute(i);
                }
            }
        }
    }

    fn arrival_due(&self) -> bool {
        let t = &self.state.tracking;
        t.arrival_fixes >= self.config.arrival_min_fixes
            || t.arrival_since.is_some_and(|since| {
                seconds(self.fix.at - since) >= self.config.arrival_dwell_s && t.arrival_fixes >= 2
            })
    }

    fn departure_due(&self) -> bool {
        let t = &self.state.tracking;
        t.departure_fixes >= self.config.departure_min_fixes
            || t.departure_since.is_some_and(|since| {
                seconds(self.fix.at - since) >= self.config.departure_dwell_s && t.departure_fixes >= 2
            })
    }

    fn arrive(&mut self, i: usize) {
        self.events.push(self.stop_event(i, true));
        let s = &mut self.state;
        s.current_stop = i as u32;
        s.phase = NavPhase::Arrived;
        s.arrived_at = Some(self.fix.at);
        s.tracking.arrival_fixes = 0;
        s.tracking.arrival_since = None;
        s.tracking.departure_fixes = 0;
        s.tracking.departure_since = None;
        s.tracking.off_route_fixes = 0;
        s.tracking.on_route_fixes = 0;
        s.tracking.reroute_requested = false;
        s.distance_along_leg_m = self.route.leg(i).length_m();
        s.remaining_leg_m = 0.0;
        s.remaining_route_m = self.route.legs_from(i + 1);
    }

    fn depart(&mut self, i: usize) {
        self.events.push(self.stop_event(i, false));
        let s = &mut self.state;
        s.last_departure = Some(Departure { stop_index: i as u32, at: self.fix.at });
        s.arrived_at = None;
        s.tracking.departure_fixes = 0;
        s.tracking.departure_since = None;
        s.tracking.arrival_fixes = 0;
        s.tracking.arrival_since = None;
        s.current_stop = i as u32 + 1;
        s.phase = if s.current_stop == self.route.stop_count() { NavPhase::Finished } else { NavPhase::Approaching };
    }

    fn at_stop(&mut self) {
        let route = self.route;
        let i = self.state.current_stop as usize;
        let stop = &route.stops()[i];
        let next = i + 1;
        let has_next = next < self.route.stops().len();

        // Show progress on the leg the driver will leave by.
        let (m, _) = self.locate(if has_next { next } else { i });
        self.state.snapped =
            (self.route.leg(if has_next { next } else { i }).shape() != LegShape::Open).then_some(m.snapped);
        self.state.distance_from_route_m = self.state.snapped.map(|_| m.distance_m);
        self.state.distance_along_leg_m = self.route.leg(i).length_m();
        self.state.remaining_leg_m = 0.0;
        self.state.remaining_route_m = (self.route.legs_from(next) - if has_next { m.along_m } else { 0.0 }).max(0.0);

        // A next stop sharing this place (another pickup at the same shop,
        // a neighbour's door): reaching it moves on without leaving.
        if has_next {
            let next_stop = &route.stops()[next];
            let closer = geometry::distance_m(self.position, next_stop.location)
                <= geometry::distance_m(self.position, stop.location);
            let inside_next = next_stop.distance_to_geofence_m(self.position) <= self.allowance;
            let qualifies = closer && inside_next && self.slow();
            let t = &mut self.state.tracking;
            if qualifies {
                t.arrival_fixes += 1;
                t.arrival_since.get_or_insert(self.fix.at);
            } else {
                t.arrival_fixes = 0;
                t.arrival_since = None;
            }
            if self.arrival_due() {
                self.depart(i);
                self.arrive(next);
                return;
            }
        }

        let beyond = stop.distance_to_geofence_m(self.position) - self.allowance;
        let t = &mut self.state.tracking;
        if beyond > self.config.departure_margin_m {
            t.departure_fixes += 1;
            t.departure_since.get_or_insert(self.fix.at);
        } else {
            t.departure_fixes = 0;
            t.departure_since = None;
        }
        if self.departure_due() {
            self.depart(i);
            if self.state.phase == NavPhase::Approaching {
                // Judge the fix on the new leg right away.
                self.approach();
            } else {
                self.state.snapped = None;
                self.state.distance_from_route_m = None;
                self.state.distance_along_leg_m = 0.0;
                self.state.remaining_leg_m = 0.0;
                self.state.remaining_route_m = 0.0;
                self.state.tracking.matched = None;
            }
        }
    }

    fn end_off_route(&mut self) {
        let t = &mut self.state.tracking;
        t.off_route_fixes = 0;
        t.on_route_fixes = 0;
        t.reroute_requested = false;
        self.state.off_route = false;
        self.events.push(NavEvent::BackOnRoute);
    }

    fn request_reroute(&mut self, i: usize) {
        self.state.tracking.reroute_requested = true;
        let stops = self.route.stops();
        self.events.push(NavEvent::RerouteRequested(RerouteRequest {
            position: self.position,
            course_deg: self.fix.course(),
            speed_mps: self.speed,
            at: self.fix.at,
            stop_index: i as u32,
            destination: stops[i].location,
            remaining_stops: stops[i + 1..].iter().map(|s| s.location).collect(),
        }));
    }
}

fn refresh_eta(route: &Route, state: &mut NavState, at: DateTime<Utc>, config: &NavConfig) {
    let i = state.current_stop as usize;
    let speed = state.smoothed_speed_mps.unwrap_or(config.default_speed_mps).max(config.eta_min_speed_mps);
    match state.phase {
        NavPhase::Finished => {
            state.eta_next_stop = None;
            state.eta_route_end = None;
        }
        NavPhase::Approaching => {
            state.eta_next_stop = Some(at + duration(state.remaining_leg_m / speed));
            state.eta_route_end = Some(at + duration(state.remaining_route_m / speed + route.service_from(i)));
        }
        NavPhase::Arrived => {
            let arrived = state.arrived_at.unwrap_or(at);
            let service_left = (route.stops()[i].service_time_s - seconds(at - arrived)).max(0.0);
            state.eta_next_stop = Some(arrived);
            state.eta_route_end =
                Some(at + duration(state.remaining_route_m / speed + service_left + route.service_from(i + 1)));
        }
    }
}

fn seconds(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// A duration from seconds, capped at a year (an ETA beyond that is noise).
fn duration(s: f64) -> chrono::TimeDelta {
    chrono::TimeDelta::milliseconds((s.clamp(0.0, 365.0 * 86_400.0) * 1000.0).round() as i64)
}
