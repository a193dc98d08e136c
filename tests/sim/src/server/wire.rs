//! The JSON shapes of `docs/dispatch-api.yaml`, shared by the server and the
//! test client ([`super::client`]).
//!
//! Owns the wire form of jobs and stores as the server sends them back, built
//! from the core's validated model so that what goes out is canonical (trimmed
//! text, sorted flags, `HH:MM` opening hours). Must not validate: the core's
//! `dispatch::parse_document` does that for everything that comes in.

use super::problem::Problem;
use chrono::{DateTime, Utc};
use doorstep_core::dispatch::JobDefinition;
use doorstep_core::{DeliveryMethod, PackageFlag, Weekday};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const DELTA_FORMAT: &str = "doorstep.delta/1";

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpeningHours {
    pub weekday: Weekday,
    pub opens: String,
    pub closes: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Store {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    pub location: Point,
    pub time_zone: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opening_hours: Vec<OpeningHours>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pickup {
    pub store_id: Uuid,
    pub window: Window,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dropoff {
    pub recipient_name: String,
    pub address: String,
    pub location: Point,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub building_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub door_ids: Vec<String>,
    pub window: Window,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub id: Uuid,
    pub barcode: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<PackageFlag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub salt_hex: String,
    pub sha256_hex: String,
    pub max_attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pod {
    #[serde(default)]
    pub min_photos: u32,
    #[serde(default)]
    pub signature: bool,
    #[serde(default)]
    pub recipient_name: bool,
    #[serde(default)]
    pub scan_all_packages: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<Pin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_age: Option<u8>,
    pub allowed_methods: Vec<DeliveryMethod>,
}

/// A job as dispatch defines it (the contract's `Job`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: Uuid,
    pub reference: String,
    pub pickup: Pickup,
    pub dropoff: Dropoff,
    pub packages: Vec<Package>,
    pub pod: Pod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
}

/// The leg's geometry as an encoded polyline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub polyline: String,
    pub precision: u8,
}

/// Where a job stands with dispatch, as one driver sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Active,
    Cancelled,
    /// The job now belongs to another driver.
    Reassigned,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Active => "active",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Reassigned => "reassigned",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [JobStatus::Active, JobStatus::Cancelled, JobStatus::Reassigned].into_iter().find(|s| s.as_str() == text)
    }
}

/// A job as the driver should now see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeltaJob {
    #[serde(flatten)]
    pub job: Job,
    pub revision: u64,
    pub status: JobStatus,
    /// The server's state of the job (a `JobState` name).
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobsDelta {
    pub format: String,
    pub cursor: String,
    pub has_more: bool,
    pub server_time: DateTime<Utc>,
    pub stores: Vec<Store>,
    pub jobs: Vec<DeltaJob>,
}

/// One driver action, as the device sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mutation {
    pub mutation_id: u64,
    pub idempotency_key: String,
    pub job_id: Uuid,
    /// A transition name (`accept`, `arrive_at_pickup`, …); checked by the
    /// server, not by the parser, so an unknown one is a 422 naming it.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// The signed evidence of the action (or, with action `record`, alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<MutationRecord>,
    pub occurred_at: DateTime<Utc>,
}

/// A signed record a device sends with a mutation; `kind` is checked by the
/// server, not the parser, so an unknown one is a 422 naming it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutationRecord {
    pub kind: String,
    pub body: serde_json::Value,
}

/// A record as the server keeps it, for `/admin/jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRecord {
    pub client_id: Uuid,
    pub mutation_id: u64,
    pub kind: String,
    pub body: serde_json::Value,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutationBatch {
    pub client_id: Uuid,
    pub mutations: Vec<Mutation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Applied,
    Duplicate,
    Conflict,
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::Conflict => "conflict",
            Outcome::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Outcome::Applied, Outcome::Duplicate, Outcome::Conflict, Outcome::Rejected]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutationResult {
    pub mutation_id: u64,
    pub outcome: Outcome,
    /// For a `duplicate`: how the mutation went when it was first processed
    /// (absent when that record predates a gap the server never saw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome_of_original: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<JobStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutationResults {
    pub last_processed_mutation_id: u64,
    pub results: Vec<MutationResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaStatus {
    pub sha256: String,
    pub received: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    pub grants: Vec<GrantItem>,
    pub revocation: Revocation,
}

/// One signed door grant; the summary fields repeat what `encoded` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantItem {
    pub grant_id: String,
    pub job_id: Uuid,
    pub door_ids: Vec<u32>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub encoded: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub epoch: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceKey {
    pub public_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredKey {
    pub key_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorIssuer {
    pub public_key: String,
    pub epoch: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignJobs {
    pub driver_id: String,
    /// A `doorstep.dispatch/1` document, validated by the core.
    pub document: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignedJobs {
    pub job_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassign {
    pub driver_id: String,
}

/// The server-owned fields an admin may change; absent ones stay as they are.
/// An empty (or blank) `access_notes` removes the notes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropoff_window: Option<Window>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_window: Option<Window>,
}

impl JobUpdate {
    pub fn is_empty(&self) -> bool {
        self.address.is_none()
            && self.access_notes.is_none()
            && self.dropoff_window.is_none()
            && self.pickup_window.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub mutation_id: u64,
    pub client_id: Uuid,
    pub action: String,
    pub server_status: JobStatus,
    pub recorded_at: DateTime<Utc>,
}

/// The server's whole view of a job (the contract's `AdminJob`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminJob {
    pub job: Job,
    pub driver_id: String,
    pub status: JobStatus,
    pub state: String,
    pub revision: u64,
    pub conflicts: Vec<Conflict>,
    pub records: Vec<StoredRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessedMutation {
    pub mutation_id: u64,
    pub job_id: Uuid,
    pub action: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminClient {
    pub client_id: Uuid,
    pub last_processed_mutation_id: u64,
    pub processed: Vec<ProcessedMutation>,
}

impl From<&doorstep_core::Store> for Store {
    fn from(store: &doorstep_core::Store) -> Self {
        Store {
            id: store.id,
            name: store.name.clone(),
            address: store.address.clone(),
            location: Point { lat: store.location.latitude, lon: store.location.longitude },
            time_zone: store.time_zone.clone(),
            opening_hours: store
                .opening_hours
                .iter()
                .map(|hours| OpeningHours {
                    weekday: hours.weekday,
                    opens: time_of_day(hours.opens_minute),
                    closes: time_of_day(closing_minute(hours.closes_minute)),
                })
                .collect(),
        }
    }
}

/// The core keeps a period that ends after midnight as minutes past 24:00;
/// the wire writes the clock time it closes at ("02:00"), and "24:00" for
/// exactly midnight, which both read back to the same period.
fn closing_minute(minute: u16) -> u16 {
    if minute > 24 * 60 { minute - 24 * 60 } else { minute }
}

fn time_of_day(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

impl From<&JobDefinition> for Job {
    fn from(job: &JobDefinition) -> Self {
        let dropoff = &job.dropoff;
        let pod = &job.pod;
        Job {
            id: job.id,
            reference: job.reference.clone(),
            pickup: Pickup {
                store_id: job.pickup.store.id,
                window: Window { start: job.pickup.window.start, end: job.pickup.window.end },
            },
            dropoff: Dropoff {
                recipient_name: dropoff.recipient_name.clone(),
                address: dropoff.address.clone(),
                location: Point { lat: dropoff.location.latitude, lon: dropoff.location.longitude },
                access_notes: dropoff.access_notes.clone(),
                building_id: dropoff.building_id.clone(),
                door_ids: dropoff.door_ids.clone(),
                window: Window { start: dropoff.window.start, end: dropoff.window.end },
            },
            packages: job
                .packages
                .iter()
                .map(|package| Package {
                    id: package.id,
                    barcode: package.barcode.clone(),
                    description: package.description.clone(),
                    flags: package.flags.clone(),
                })
                .collect(),
            pod: Pod {
                min_photos: pod.min_photos,
                signature: pod.signature,
                recipient_name: pod.recipient_name,
                scan_all_packages: pod.scan_all_packages,
                pin: pod.pin.as_ref().map(|pin| Pin {
                    salt_hex: pin.salt_hex.clone(),
                    sha256_hex: pin.sha256_hex.clone(),
                    max_attempts: pin.max_attempts,
                }),
                minimum_age: pod.minimum_age,
                allowed_methods: pod.allowed_methods.clone(),
            },
            route: job.route.as_ref().map(|route| Route { polyline: route.polyline.clone(), precision: route.precision }),
        }
    }
}
