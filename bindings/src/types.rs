//! Mirror declarations of the core's data types. `#[uniffi::remote]` makes
//! UniFFI generate converters for the core's own types, so values cross the
//! FFI without a parallel set of structs; the compiler checks that each
//! mirror matches its original field for field.

use chrono::{DateTime, Utc};
use doorstep_core::store::{ImportOutcome, Mutation, MutationBody, MutationStatus, Record, RecordKind};
use doorstep_core::sync::{SyncConfig, SyncReport, SyncStatus};
use doorstep_core::nav::{
    CompletionCheck, Departure, Fix, Geofence, MatchHint, NavConfig, NavEvent, NavPhase, NavState, RerouteRequest, StopInput, StopKind, Tracking,
};
use doorstep_core::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

use crate::DoorstepError;

// Ids cross as text and become java.util.UUID / Foundation.UUID (uniffi.toml).
uniffi::custom_type!(Uuid, String, {
    remote,
    lower: |id| id.to_string(),
    try_lift: |text| Uuid::parse_str(&text).map_err(|e| {
        DoorstepError::InvalidInput { field: "id".into(), reason: format!("{text:?} is not a UUID: {e}") }.into()
    }),
});

// Instants cross as the platform's own type: java.time.Instant, Foundation.Date.
pub type Timestamp = DateTime<Utc>;
uniffi::custom_type!(Timestamp, SystemTime, {
    remote,
    lower: |instant| system_time(instant),
    try_lift: |time| utc_instant(time).ok_or_else(|| {
        DoorstepError::InvalidInput { field: "time".into(), reason: "out of the supported range".into() }.into()
    }),
});

fn system_time(instant: DateTime<Utc>) -> SystemTime {
    let nanos = instant.timestamp_subsec_nanos();
    let seconds = instant.timestamp();
    if seconds >= 0 {
        UNIX_EPOCH + Duration::new(seconds as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs()) + Duration::from_nanos(nanos as u64)
    }
}

fn utc_instant(time: SystemTime) -> Option<DateTime<Utc>> {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => DateTime::from_timestamp(i64::try_from(after.as_secs()).ok()?, after.subsec_nanos()),
        Err(before) => {
            let before = before.duration();
            let seconds = -i64::try_from(before.as_secs()).ok()?;
            let instant = DateTime::from_timestamp(seconds, 0)?;
            instant.checked_sub_signed(chrono::Duration::nanoseconds(before.subsec_nanos() as i64))
        }
    }
}

#[uniffi::remote(Record)]
pub struct GeoPoint {
    pub latitude: f64,
    pub longitude: f64,
}

#[uniffi::remote(Record)]
pub struct TimeWindow {
    pub start: Timestamp,
    pub end: Timestamp,
}

#[uniffi::remote(Enum)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

#[uniffi::remote(Record)]
pub struct OpeningHours {
    pub weekday: Weekday,
    pub opens_minute: u16,
    pub closes_minute: u16,
}

#[uniffi::remote(Record)]
pub struct Store {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    pub location: GeoPoint,
    pub time_zone: String,
    pub opening_hours: Vec<OpeningHours>,
}

#[uniffi::remote(Record)]
pub struct PickupStop {
    pub store: Store,
    pub window: TimeWindow,
}

#[uniffi::remote(Record)]
pub struct DropoffStop {
    pub recipient_name: String,
    pub address: String,
    pub location: GeoPoint,
    pub access_notes: Option<String>,
    pub building_id: Option<String>,
    pub door_ids: Vec<String>,
    pub window: TimeWindow,
}

#[uniffi::remote(Enum)]
pub enum PackageFlag {
    AgeRestricted,
    Fragile,
    Perishable,
    HighValue,
    Oversized,
}

#[uniffi::remote(Record)]
pub struct RouteGeometry {
    pub polyline: String,
    pub precision: u8,
}

#[uniffi::remote(Record)]
pub struct Package {
    pub id: Uuid,
    pub barcode: String,
    pub description: String,
    pub flags: Vec<PackageFlag>,
}

#[uniffi::remote(Enum)]
pub enum DeliveryMethod {
    HandedToRecipient,
    LeftAtDoor,
    Mailroom,
    Locker,
    Neighbour,
}

#[uniffi::remote(Record)]
pub struct PinCheck {
    pub salt_hex: String,
    pub sha256_hex: String,
    pub max_attempts: u32,
}

#[uniffi::remote(Record)]
pub struct PodRequirements {
    pub min_photos: u32,
    pub signature: bool,
    pub recipient_name: bool,
    pub scan_all_packages: bool,
    pub pin: Option<PinCheck>,
    pub minimum_age: Option<u8>,
    pub allowed_methods: Vec<DeliveryMethod>,
}

#[uniffi::remote(Enum)]
pub enum FailureReason {
    RecipientUnavailable,
    NoAccessToBuilding,
    UnsafeLocation,
    Refused,
    Damaged,
    WrongAddress,
    BusinessClosed,
    IdCheckFailed,
}

#[uniffi::remote(Enum)]
pub enum JobState {
    Assigned,
    Accepted,
    AtPickup,
    PickedUp,
    AtDropoff,
    Delivered,
    Declined,
    Failed,
    Returning,
    Returned,
    Cancelled,
}

#[uniffi::remote(Enum)]
pub enum Transition {
    Accept,
    Decline,
    ArriveAtPickup,
    ConfirmPickup,
    ArriveAtDropoff,
    Deliver,
    Fail { reason: FailureReason },
    Reattempt,
    StartReturn,
    CompleteReturn,
    Cancel,
}

/// Exposed as `DeliveryJob`: a plain `Job` collides with the coroutine `Job`
/// the Kotlin bindings import, and with the Swift standard library's `Job`.
pub type DeliveryJob = Job;

#[uniffi::remote(Record)]
pub struct DeliveryJob {
    pub id: Uuid,
    pub reference: String,
    pub state: JobState,
    pub failure: Option<FailureReason>,
    pub pickup: PickupStop,
    pub dropoff: DropoffStop,
    pub packages: Vec<Package>,
    pub pod: PodRequirements,
    pub route: Option<RouteGeometry>,
    pub conflict: Option<JobConflict>,
    pub version: u64,
    pub updated_at: Timestamp,
}

#[uniffi::remote(Record)]
pub struct JobSummary {
    pub id: Uuid,
    pub reference: String,
    pub state: JobState,
    pub store_name: String,
    pub dropoff_address: String,
    pub pickup_window: TimeWindow,
    pub dropoff_window: TimeWindow,
    pub package_count: u32,
    pub conflict: Option<JobConflict>,
    pub version: u64,
}

#[uniffi::remote(Enum)]
pub enum JobEventKind {
    Imported,
    Updated,
    Transitioned,
    Reconciled,
}

#[uniffi::remote(Enum)]
pub enum ConflictKind {
    Cancelled,
    Reassigned,
}

#[uniffi::remote(Enum)]
pub enum NextStep {
    ReturnToStore,
    ContactDispatch,
}

#[uniffi::remote(Record)]
pub struct JobConflict {
    pub kind: ConflictKind,
    pub next_step: NextStep,
    pub detected_at: Timestamp,
}

#[uniffi::remote(Enum)]
pub enum MutationStatus {
    Pending,
    Wedged,
}

/// What a mutation tells dispatch: a driver action (with the signed record
/// that proves it, if any) or a record alone.
#[uniffi::remote(Enum)]
pub enum MutationBody {
    Action { transition: Transition, record: Option<Record> },
    Record(Record),
}

/// A signed record for dispatch, as canonical JSON text.
#[uniffi::remote(Record)]
pub struct Record {
    pub kind: RecordKind,
    pub body: String,
}

#[uniffi::remote(Enum)]
pub enum RecordKind {
    ProofOfDelivery,
    FailedDelivery,
    HandoffReceipt,
    DoorAudit,
}

/// One driver action waiting to reach dispatch.
#[uniffi::remote(Record)]
pub struct Mutation {
    pub mutation_id: u64,
    pub idempotency_key: String,
    pub job_id: Uuid,
    pub body: MutationBody,
    pub occurred_at: Timestamp,
    pub status: MutationStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub depends_on: Option<u64>,
}

#[uniffi::remote(Record)]
pub struct SyncConfig {
    pub base_url: String,
    pub batch_size: u32,
    pub page_size: u32,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub pull_interval: Duration,
    pub automatic: bool,
}

#[uniffi::remote(Record)]
pub struct SyncStatus {
    pub online: bool,
    pub syncing: bool,
    pub pending: u32,
    pub wedged: u32,
    pub last_success_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<Timestamp>,
}

#[uniffi::remote(Record)]
pub struct SyncReport {
    pub sent: u32,
    pub acknowledged: u32,
    pub conflicts: u32,
    pub rejected: u32,
    pub jobs_received: u32,
    pub pending: u32,
    pub wedged: u32,
}

/// Sync settings with the defaults a phone should use, for `base_url`.
#[uniffi::export]
pub fn default_sync_config(base_url: String) -> SyncConfig {
    SyncConfig::new(base_url)
}

#[uniffi::remote(Record)]
pub struct JobEvent {
    pub sequence: u64,
    pub job_id: Uuid,
    pub at: Timestamp,
    pub kind: JobEventKind,
    pub from_state: Option<JobState>,
    pub to_state: JobState,
    pub failure: Option<FailureReason>,
}

#[uniffi::remote(Record)]
pub struct ObserverHealth {
    pub delivered: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

/// What importing a dispatch document did.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ImportSummary {
    pub created: u32,
    pub updated: u32,
    /// Every job the document named, in document order.
    pub job_ids: Vec<Uuid>,
}

impl From<ImportOutcome> for ImportSummary {
    fn from(outcome: ImportOutcome) -> Self {
        ImportSummary {
            created: outcome.created() as u32,
            updated: outcome.updated() as u32,
            job_ids: outcome.jobs.iter().map(|job| job.job_id).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_through_system_time() {
        for text in ["2026-11-21T09:30:00.123456789Z", "1969-07-20T20:17:40.5Z", "1970-01-01T00:00:00Z"] {
            let instant: DateTime<Utc> = text.parse().unwrap();
            assert_eq!(utc_instant(system_time(instant)), Some(instant), "{text}");
        }
    }
}

// Navigation.

#[uniffi::remote(Record)]
pub struct JobAction {
    pub job_id: Uuid,
    pub transition: Transition,
}

#[uniffi::remote(Enum)]
pub enum StopKind {
    Pickup,
    Dropoff,
}

#[uniffi::remote(Enum)]
pub enum Geofence {
    Radius { radius_m: f64 },
    Polygon { vertices: Vec<GeoPoint> },
}

#[uniffi::remote(Record)]
pub struct StopInput {
    pub job_id: Uuid,
    pub kind: StopKind,
    pub location: GeoPoint,
    pub geofence: Geofence,
    pub window: TimeWindow,
    pub service_time_s: f64,
    pub leg: Option<RouteGeometry>,
}

#[uniffi::remote(Record)]
pub struct Fix {
    pub latitude: f64,
    pub longitude: f64,
    pub horizontal_accuracy_m: f64,
    pub speed_mps: Option<f64>,
    pub course_deg: Option<f64>,
    pub at: Timestamp,
}

#[uniffi::remote(Record)]
pub struct NavConfig {
    pub max_accuracy_m: f64,
    pub accuracy_allowance_max_m: f64,
    pub arrival_min_fixes: u32,
    pub arrival_dwell_s: f64,
    pub arrival_max_speed_mps: f64,
    pub departure_margin_m: f64,
    pub departure_min_fixes: u32,
    pub departure_dwell_s: f64,
    pub off_route_threshold_m: f64,
    pub off_route_min_fixes: u32,
    pub back_on_route_threshold_m: f64,
    pub back_on_route_min_fixes: u32,
    pub speed_smoothing_s: f64,
    pub default_speed_mps: f64,
    pub eta_min_speed_mps: f64,
    pub completion_warn_distance_m: f64,
    pub completion_block_distance_m: f64,
}

#[uniffi::remote(Enum)]
pub enum ArrivalMode {
    Automatic,
    Suggest,
}

#[uniffi::remote(Record)]
pub struct NavigationOptions {
    pub config: NavConfig,
    pub arrival_mode: ArrivalMode,
    pub planning_speed_mps: f64,
    pub service_time_s: f64,
}

/// The settings a phone should navigate with.
#[uniffi::export]
pub fn default_navigation_options() -> NavigationOptions {
    NavigationOptions::default()
}

#[uniffi::remote(Enum)]
pub enum NavPhase {
    Approaching,
    Arrived,
    Finished,
}

#[uniffi::remote(Record)]
pub struct Departure {
    pub stop_index: u32,
    pub at: Timestamp,
}

#[uniffi::remote(Record)]
pub struct MatchHint {
    pub leg: u32,
    pub leg_fingerprint: u64,
    pub segment: u32,
    pub along_m: f64,
}

#[uniffi::remote(Record)]
pub struct Tracking {
    pub arrival_fixes: u32,
    pub arrival_since: Option<Timestamp>,
    pub departure_fixes: u32,
    pub departure_since: Option<Timestamp>,
    pub off_route_fixes: u32,
    pub on_route_fixes: u32,
    pub reroute_requested: bool,
    pub matched: Option<MatchHint>,
}

#[uniffi::remote(Record)]
pub struct NavState {
    pub route_fingerprint: u64,
    pub current_stop: u32,
    pub phase: NavPhase,
    pub arrived_at: Option<Timestamp>,
    pub last_departure: Option<Departure>,
    pub snapped: Option<GeoPoint>,
    pub distance_from_route_m: Option<f64>,
    pub distance_along_leg_m: f64,
    pub remaining_leg_m: f64,
    pub remaining_route_m: f64,
    pub eta_next_stop: Option<Timestamp>,
    pub eta_route_end: Option<Timestamp>,
    pub smoothed_speed_mps: Option<f64>,
    pub off_route: bool,
    pub ignored_stale: u64,
    pub ignored_inaccurate: u64,
    pub accepted_fixes: u64,
    pub last_fix_at: Option<Timestamp>,
    pub last_position: Option<GeoPoint>,
    pub tracking: Tracking,
}

#[uniffi::remote(Record)]
pub struct RerouteRequest {
    pub position: GeoPoint,
    pub course_deg: Option<f64>,
    pub speed_mps: Option<f64>,
    pub at: Timestamp,
    pub stop_index: u32,
    pub destination: GeoPoint,
    pub remaining_stops: Vec<GeoPoint>,
}

#[uniffi::remote(Enum)]
pub enum NavEvent {
    Arrived { stop_index: u32, job_id: Uuid, kind: StopKind },
    Departed { stop_index: u32, job_id: Uuid, kind: StopKind },
    OffRoute { distance_m: f64 },
    BackOnRoute,
    RerouteRequested(RerouteRequest),
}

#[uniffi::remote(Enum)]
pub enum CompletionCheck {
    WithinGeofence,
    Warn { distance_m: f64 },
    NeedsOverride { distance_m: f64 },
}

#[uniffi::remote(Record)]
pub struct NavSnapshot {
    pub state: NavState,
    pub stops: Vec<StopInput>,
    pub events: Vec<NavEvent>,
    pub job_events: Vec<JobEvent>,
    pub suggestions: Vec<JobAction>,
}
