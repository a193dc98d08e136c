//! Navigation along the driver's route, as pure functions of their inputs
//! (the route, the previous state, a location fix, the time).
//!
//! Owns the route model, the navigation controller (progress, arrival and
//! departure geofences with hysteresis, off-route, ETA), the completion
//! policy for proof of delivery and the re-sequencing of stops. Must not
//! touch storage, the network or job state: the session applies what the
//! controller reports.

pub mod sequence;

use serde::{Deserialize, Serialize};

/// Which end of a job a stop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    Pickup,
    Dropoff,
}
