//! The completion policy for proof of delivery: how far from the stop a
//! driver may complete it.

use super::controller::{Fix, NavConfig};
use super::route::RouteStop;
use crate::error::CoreError;
use serde::{Deserialize, Serialize};

/// The verdict of [`completion_check`]. Distances are metres beyond the
/// stop's geofence, after crediting the fix's accuracy (up to
/// `config.accuracy_allowance_max_m`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletionCheck {
    /// Inside the geofence, or beyond it by no more than
    /// `config.completion_warn_distance_m`: complete without a word.
    WithinGeofence,
    /// Beyond the warning distance, up to the block distance: complete, but
    /// tell the driver how far off they are.
    Warn { distance_m: f64 },
    /// Beyond `config.completion_block_distance_m`: completion needs an
    /// override with a reason, which the session records.
    NeedsOverride { distance_m: f64 },
}

/// Judges completing `stop` at `fix`. Errors: a fix that cannot be a
/// measurement, or a bad config (`InvalidInput`).
pub fn completion_check(stop: &RouteStop, fix: &Fix, config: &NavConfig) -> Result<CompletionCheck, CoreError> {
    fix.validate()?;
    config.validate()?;
    let allowance = fix.horizontal_accuracy_m.min(config.accuracy_allowance_max_m);
    let distance_m = (stop.distance_to_geofence_m(fix.position()) - allowance).max(0.0);
    Ok(if distance_m > config.completion_block_distance_m {
        CompletionCheck::NeedsOverride { distance_m }
    } else if distance_m > config.completion_warn_distance_m {
        CompletionCheck::Warn { distance_m }
    } else {
        CompletionCheck::WithinGeofence
    })
}
