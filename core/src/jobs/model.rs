use super::state::JobState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub latitude: f64,
    pub longitude: f64,
}

/// A half-open interval of UTC instants, `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl TimeWindow {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

/// One opening period of a store on a weekday, in the store's local time.
/// `closes_minute` may exceed 1440 for a period that ends after midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpeningHours {
    pub weekday: Weekday,
    pub opens_minute: u16,
    pub closes_minute: u16,
}

/// A store or mall shop where packages are picked up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Store {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    pub location: GeoPoint,
    /// IANA time zone the opening hours are written in.
    pub time_zone: String,
    pub opening_hours: Vec<OpeningHours>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PickupStop {
    pub store: Store,
    pub window: TimeWindow,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropoffStop {
    pub recipient_name: String,
    pub address: String,
    pub location: GeoPoint,
    pub access_notes: Option<String>,
    /// The building the lobby doors belong to, when door access is offered.
    pub building_id: Option<String>,
    pub door_ids: Vec<String>,
    pub window: TimeWindow,
}

/// The road from pickup to drop-off as dispatch's router drew it: an encoded
/// polyline (Google's algorithm) at 5 or 6 decimal digits, as OSRM and
/// Valhalla emit. Navigation decodes it; without one the leg is straight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteGeometry {
    pub polyline: String,
    pub precision: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageFlag {
    AgeRestricted,
    Fragile,
    Perishable,
    HighValue,
    Oversized,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub id: Uuid,
    pub barcode: String,
    pub description: String,
    pub flags: Vec<PackageFlag>,
}

impl Package {
    pub fn has_flag(&self, flag: PackageFlag) -> bool {
        self.flags.contains(&flag)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMethod {
    HandedToRecipient,
    LeftAtDoor,
    Mailroom,
    Locker,
    Neighbour,
}

/// The recipient's PIN as the server sends it: only a salted hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinCheck {
    /// Hex-encoded salt.
    pub salt_hex: String,
    /// Hex-encoded SHA-256 of salt || PIN.
    pub sha256_hex: String,
    pub max_attempts: u32,
}

/// What the server requires as proof that a job was delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodRequirements {
    pub min_photos: u32,
    pub signature: bool,
    pub recipient_name: bool,
    pub scan_all_packages: bool,
    pub pin: Option<PinCheck>,
    pub minimum_age: Option<u8>,
    pub allowed_methods: Vec<DeliveryMethod>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::RecipientUnavailable => "recipient_unavailable",
            FailureReason::NoAccessToBuilding => "no_access_to_building",
            FailureReason::UnsafeLocation => "unsafe_location",
            FailureReason::Refused => "refused",
            FailureReason::Damaged => "damaged",
            FailureReason::WrongAddress => "wrong_address",
            FailureReason::BusinessClosed => "business_closed",
            FailureReason::IdCheckFailed => "id_check_failed",
        }
    }
}

/// One driver action on one job (a batch entry, a suggestion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobAction {
    pub job_id: Uuid,
    pub transition: super::state::Transition,
}

/// Why dispatch and the driver disagree about a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// Dispatch cancelled the job after the driver acted on it.
    Cancelled,
    /// Dispatch gave the job to another driver after this one acted on it.
    Reassigned,
}

/// What the driver should do about a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextStep {
    /// The driver holds the packages: take them back to the store.
    ReturnToStore,
    /// Nothing is left to do on the road; dispatch sorts it out.
    ContactDispatch,
}

/// A disagreement between dispatch and the driver, kept visible on the job
/// until the driver has done the next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobConflict {
    pub kind: ConflictKind,
    pub next_step: NextStep,
    pub detected_at: DateTime<Utc>,
}

/// A job as the driver sees it: the server's definition plus local progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: Uuid,
    /// The human-readable order reference printed on labels.
    pub reference: String,
    pub state: JobState,
    pub failure: Option<FailureReason>,
    pub pickup: PickupStop,
    pub dropoff: DropoffStop,
    pub packages: Vec<Package>,
    pub pod: PodRequirements,
    pub route: Option<RouteGeometry>,
    pub conflict: Option<JobConflict>,
    /// How many transitions the job has been through; grows by one each time.
    pub version: u64,
    pub updated_at: DateTime<Utc>,
}

/// One row of the driver's job list: what the list screen shows, cheap to
/// load for a whole day's jobs at once.
#[derive(Debug, Clone, PartialEq)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobEventKind {
    /// The job arrived from dispatch.
    Imported,
    /// Dispatch sent a new definition (address, window, …); state unchanged.
    Updated,
    /// The job moved from one state to another.
    Transitioned,
    /// Dispatch's view was applied: its state adopted, or a conflict raised.
    Reconciled,
}

impl JobEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobEventKind::Imported => "imported",
            JobEventKind::Updated => "updated",
            JobEventKind::Transitioned => "transitioned",
            JobEventKind::Reconciled => "reconciled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [JobEventKind::Imported, JobEventKind::Updated, JobEventKind::Transitioned, JobEventKind::Reconciled]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// One row of a job's append-only history.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    /// Position in the device's history, increasing across all jobs.
    pub sequence: u64,
    pub job_id: Uuid,
    pub at: DateTime<Utc>,
    pub kind: JobEventKind,
    pub from_state: Option<JobState>,
    pub to_state: JobState,
    pub failure: Option<FailureReason>,
}
