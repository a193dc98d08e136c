//! Navigation along the driver's route, as pure functions of their inputs
//! (the route, the previous state, a location fix, the time).
//!
//! Owns the route model, the navigation controller (progress, arrival and
//! departure geofences with hysteresis, off-route, ETA), the completion
//! policy for proof of delivery and the re-sequencing of stops. Must not
//! touch storage, the network or job state: the session applies what the
//! controller reports.
//!
//! - [`Route`] (`route.rs`): stops with geofences, service windows and
//!   times, and leg geometry decoded from encoded polylines, prepared once;
//! - [`update`] (`controller.rs`): one fix in, the next [`NavState`] and the
//!   [`NavEvent`]s out;
//! - [`completion_check`] (`policy.rs`): may proof of delivery be taken here;
//! - [`geometry`]: distances and bearings on top of `geo`;
//! - [`sequence`]: re-sequencing the remaining stops.

pub mod geometry;
mod controller;
mod policy;
mod route;
pub mod sequence;

pub use controller::{
    Departure, Fix, MatchHint, NavConfig, NavEvent, NavPhase, NavState, NavUpdate, RerouteRequest, Tracking, update,
};
pub use policy::{CompletionCheck, completion_check};
pub use route::{DEFAULT_GEOFENCE_RADIUS_M, Geofence, LegShape, Route, RouteStop, StopInput};

use serde::{Deserialize, Serialize};

/// Which end of a job a stop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    Pickup,
    Dropoff,
}
