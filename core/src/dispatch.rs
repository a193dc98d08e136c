//! Reading the job documents the dispatch server sends (`doorstep.dispatch/1`).
//!
//! Owns the wire format and its validation: outside bytes come in, either a
//! fully checked [`DispatchDocument`] comes out or an `InvalidInput` error
//! naming the JSON path of the first bad field. Must not touch the store: a
//! rejected document changes nothing because nothing is written before it
//! is accepted whole.

use crate::error::{CoreError, Result};
use crate::jobs::*;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

pub const FORMAT: &str = "doorstep.dispatch/1";
pub const DELTA_FORMAT: &str = "doorstep.delta/1";

const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;
const MAX_JOBS: usize = 5_000;
const MAX_PACKAGES_PER_JOB: usize = 500;
const MAX_WINDOW: Duration = Duration::days(7);
const MAX_PHOTOS: u32 = 10;
const MAX_PIN_ATTEMPTS: u32 = 10;
const MAX_POLYLINE_BYTES: usize = 1024 * 1024;

/// A job as dispatch defines it: everything but the device's own progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDefinition {
    pub id: Uuid,
    pub reference: String,
    pub pickup: PickupStop,
    pub dropoff: DropoffStop,
    pub packages: Vec<Package>,
    pub pod: PodRequirements,
    #[serde(default)]
    pub route: Option<RouteGeometry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DispatchDocument {
    pub jobs: Vec<JobDefinition>,
}

/// Dispatch's current view of one of the driver's jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerJob {
    pub definition: JobDefinition,
    pub revision: u64,
    pub status: ServerStatus,
    pub state: JobState,
}

/// One page of job changes from `GET /v1/jobs/delta`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobsDelta {
    pub cursor: String,
    pub has_more: bool,
    pub server_time: DateTime<Utc>,
    pub jobs: Vec<ServerJob>,
}

/// Parses and validates a document. Unknown fields are ignored (the server
/// may be newer); unknown enum values, wrong types and absurd values are not.
pub fn parse_document(json: &[u8]) -> Result<DispatchDocument> {
    let doc: wire::Document = deserialize(json)?;
    check_format(&doc.format, FORMAT)?;
    let jobs = validate_jobs(doc.stores, doc.jobs)?;
    Ok(DispatchDocument { jobs })
}

/// Parses and validates a page of the jobs delta; like documents, a bad page
/// is rejected whole.
pub fn parse_delta(json: &[u8]) -> Result<JobsDelta> {
    let delta: wire::Delta = deserialize(json)?;
    check_format(&delta.format, DELTA_FORMAT)?;
    if delta.cursor.is_empty() || delta.cursor.len() > 19 || !delta.cursor.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CoreError::invalid("cursor", "must be 1 to 19 digits"));
    }
    let mut meta = Vec::with_capacity(delta.jobs.len());
    let mut jobs = Vec::with_capacity(delta.jobs.len());
    for (index, job) in delta.jobs.into_iter().enumerate() {
        if job.revision == 0 {
            return Err(CoreError::invalid(format!("jobs[{index}].revision"), "must be at least 1"));
        }
        meta.push((job.revision, job.status, job.state));
        jobs.push(job.job);
    }
    let definitions = validate_jobs(delta.stores, jobs)?;
    let jobs = definitions
        .into_iter()
        .zip(meta)
        .map(|(definition, (revision, status, state))| ServerJob { definition, revision, status, state })
        .collect();
    Ok(JobsDelta { cursor: delta.cursor, has_more: delta.has_more, server_time: delta.server_time, jobs })
}

fn deserialize<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T> {
    if json.len() > MAX_DOCUMENT_BYTES {
        return Err(CoreError::invalid("document", format!("is {} bytes; the limit is {MAX_DOCUMENT_BYTES}", json.len())));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { "document".to_owned() } else { path };
        CoreError::invalid(field, err.into_inner().to_string())
    })?;
    deserializer
        .end()
        .map_err(|err| CoreError::invalid("document", format!("trailing data after the document: {err}")))?;
    Ok(value)
}

fn check_format(found: &str, expected: &str) -> Result<()> {
    if found == expected {
        Ok(())
    } else {
        Err(CoreError::invalid("format", format!("expected {expected:?}, got {found:?}")))
    }
}

fn validate_jobs(wire_stores: Vec<wire::Store>, wire_jobs: Vec<wire::Job>) -> Result<Vec<JobDefinition>> {
    if wire_jobs.len() > MAX_JOBS {
        return Err(CoreError::invalid("jobs", format!("{} jobs; the limit is {MAX_JOBS}", wire_jobs.len())));
    }
    let mut stores = HashMap::new();
    for (index, store) in wire_stores.into_iter().enumerate() {
        let field = format!("stores[{index}]");
        let store = validate_store(&field, store)?;
        if stores.insert(store.id, store).is_some() {
            return Err(CoreError::invalid(format!("{field}.id"), "appears twice in the document"));
        }
    }
    let mut job_ids = HashSet::new();
    let mut package_ids = HashSet::new();
    let mut barcodes = HashSet::new();
    let mut jobs = Vec::with_capacity(wire_jobs.len());
    for (index, job) in wire_jobs.into_iter().enumerate() {
        let field = format!("jobs[{index}]");
        let job = validate_job(&field, job, &stores)?;
        if !job_ids.insert(job.id) {
            return Err(CoreError::invalid(format!("{field}.id"), "appears twice in the document"));
        }
        for (p, package) in job.packages.iter().enumerate() {
            if !package_ids.insert(package.id) {
                return Err(CoreError::invalid(format!("{field}.packages[{p}].id"), "appears twice in the document"));
            }
            if !barcodes.insert(package.barcode.clone()) {
                return Err(CoreError::invalid(format!("{field}.packages[{p}].barcode"), "appears twice in the document"));
            }
        }
        jobs.push(job);
    }
    Ok(jobs)
}

fn validate_store(field: &str, store: wire::Store) -> Result<Store> {
    let opening_hours = store
        .opening_hours
        .into_iter()
        .enumerate()
        .map(|(i, hours)| {
            let field = format!("{field}.opening_hours[{i}]");
            let opens = parse_local_time(&format!("{field}.opens"), &hours.opens)?;
            let mut closes = parse_local_time(&format!("{field}.closes"), &hours.closes)?;
            if closes <= opens {
                // Closing at or before opening means the period runs past midnight.
                closes += 24 * 60;
            }
            Ok(OpeningHours { weekday: hours.weekday, opens_minute: opens, closes_minute: closes })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Store {
        id: store.id,
        name: text(&format!("{field}.name"), store.name, 200)?,
        address: text(&format!("{field}.address"), store.address, 500)?,
        location: point(&format!("{field}.location"), store.location)?,
        time_zone: time_zone(&format!("{field}.time_zone"), store.time_zone)?,
        opening_hours,
    })
}

fn validate_job(field: &str, job: wire::Job, stores: &HashMap<Uuid, Store>) -> Result<JobDefinition> {
    let store = stores
        .get(&job.pickup.store_id)
        .cloned()
        .ok_or_else(|| CoreError::invalid(format!("{field}.pickup.store_id"), "names no store of this document"))?;
    let pickup = PickupStop { store, window: window(&format!("{field}.pickup.window"), job.pickup.window)? };
    let dropoff = validate_dropoff(&format!("{field}.dropoff"), job.dropoff)?;

    if job.packages.is_empty() {
        return Err(CoreError::invalid(format!("{field}.packages"), "a job needs at least one package"));
    }
    if job.packages.len() > MAX_PACKAGES_PER_JOB {
        return Err(CoreError::invalid(format!("{field}.packages"), format!("more than {MAX_PACKAGES_PER_JOB} packages")));
    }
    let packages = job
        .packages
        .into_iter()
        .enumerate()
        .map(|(i, package)| validate_package(&format!("{field}.packages[{i}]"), package))
        .collect::<Result<Vec<_>>>()?;
    let age_restricted = packages.iter().any(|p| p.has_flag(PackageFlag::AgeRestricted));
    let pod = validate_pod(&format!("{field}.pod"), job.pod, age_restricted)?;
    let route = job.route.map(|route| validate_route(&format!("{field}.route"), route)).transpose()?;
    Ok(JobDefinition {
        id: job.id,
        reference: text(&format!("{field}.reference"), job.reference, 64)?,
        pickup,
        dropoff,
        packages,
        pod,
        route,
    })
}

/// Checks the encoding's alphabet and the precision; decoding is the
/// navigator's job.
fn validate_route(field: &str, route: wire::Route) -> Result<RouteGeometry> {
    if route.precision != 5 && route.precision != 6 {
        return Err(CoreError::invalid(format!("{field}.precision"), "must be 5 or 6"));
    }
    let polyline = route.polyline;
    if polyline.is_empty() || polyline.len() > MAX_POLYLINE_BYTES || !polyline.bytes().all(|b| (63..=126).contains(&b)) {
        return Err(CoreError::invalid(
            format!("{field}.polyline"),
            format!("must be an encoded polyline (characters ? to ~) of at most {MAX_POLYLINE_BYTES} bytes"),
        ));
    }
    Ok(RouteGeometry { polyline, precision: route.precision })
}

fn validate_dropoff(field: &str, dropoff: wire::Dropoff) -> Result<DropoffStop> {
    let door_ids = dropoff
        .door_ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| identifier(&format!("{field}.door_ids[{i}]"), id))
        .collect::<Result<Vec<_>>>()?;
    if !door_ids.is_empty() && dropoff.building_id.is_none() {
        return Err(CoreError::invalid(format!("{field}.door_ids"), "doors need a building_id"));
    }
    Ok(DropoffStop {
        recipient_name: text(&format!("{field}.recipient_name"), dropoff.recipient_name, 200)?,
        address: text(&format!("{field}.address"), dropoff.address, 500)?,
        location: point(&format!("{field}.location"), dropoff.location)?,
        access_notes: dropoff.access_notes.map(|notes| text(&format!("{field}.access_notes"), notes, 2000)).transpose()?,
        building_id: dropoff.building_id.map(|id| identifier(&format!("{field}.building_id"), id)).transpose()?,
        door_ids,
        window: window(&format!("{field}.window"), dropoff.window)?,
    })
}

fn validate_package(field: &str, package: wire::Package) -> Result<Package> {
    let barcode = package.barcode;
    if barcode.is_empty() || barcode.len() > 64 || !barcode.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CoreError::invalid(format!("{field}.barcode"), "must be 1 to 64 printable ASCII characters"));
    }
    let mut flags = package.flags;
    flags.sort_by_key(|flag| *flag as u8);
    flags.dedup();
    Ok(Package { id: package.id, barcode, description: text(&format!("{field}.description"), package.description, 500)?, flags })
}

fn validate_pod(field: &str, pod: wire::Pod, age_restricted: bool) -> Result<PodRequirements> {
    if pod.min_photos > MAX_PHOTOS {
        return Err(CoreError::invalid(format!("{field}.min_photos"), format!("at most {MAX_PHOTOS}")));
    }
    if let Some(age) = pod.minimum_age {
        if !(1..=99).contains(&age) {
            return Err(CoreError::invalid(format!("{field}.minimum_age"), "must be between 1 and 99"));
        }
    }
    if age_restricted && pod.minimum_age.is_none() {
        return Err(CoreError::invalid(format!("{field}.minimum_age"), "an age-restricted package needs a minimum age"));
    }
    let pin = pod.pin.map(|pin| validate_pin(&format!("{field}.pin"), pin)).transpose()?;
    let mut allowed_methods = pod.allowed_methods;
    if allowed_methods.is_empty() {
        return Err(CoreError::invalid(format!("{field}.allowed_methods"), "at least one delivery method is needed"));
    }
    let unique: HashSet<_> = allowed_methods.iter().collect();
    if unique.len() != allowed_methods.len() {
        return Err(CoreError::invalid(format!("{field}.allowed_methods"), "lists a method twice"));
    }
    let needs_recipient = pin.is_some() || pod.minimum_age.is_some();
    if needs_recipient && allowed_methods.contains(&DeliveryMethod::LeftAtDoor) {
        return Err(CoreError::invalid(
            format!("{field}.allowed_methods"),
            "a job with a PIN or an age check can never be left at the door",
        ));
    }
    allowed_methods.sort_by_key(|method| *method as u8);
    Ok(PodRequirements {
        min_photos: pod.min_photos,
        signature: pod.signature,
        recipient_name: pod.recipient_name,
        scan_all_packages: pod.scan_all_packages,
        pin,
        minimum_age: pod.minimum_age,
        allowed_methods,
    })
}

fn validate_pin(field: &str, pin: wire::Pin) -> Result<PinCheck> {
    let is_hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    if pin.salt_hex.len() < 16 || pin.salt_hex.len() > 128 || pin.salt_hex.len() % 2 != 0 || !is_hex(&pin.salt_hex) {
        return Err(CoreError::invalid(format!("{field}.salt_hex"), "must be 8 to 64 bytes, hex-encoded"));
    }
    if pin.sha256_hex.len() != 64 || !is_hex(&pin.sha256_hex) {
        return Err(CoreError::invalid(format!("{field}.sha256_hex"), "must be a hex-encoded SHA-256 (64 hex digits)"));
    }
    if !(1..=MAX_PIN_ATTEMPTS).contains(&pin.max_attempts) {
        return Err(CoreError::invalid(format!("{field}.max_attempts"), format!("must be 1 to {MAX_PIN_ATTEMPTS}")));
    }
    Ok(PinCheck {
        salt_hex: pin.salt_hex.to_ascii_lowercase(),
        sha256_hex: pin.sha256_hex.to_ascii_lowercase(),
        max_attempts: pin.max_attempts,
    })
}

fn text(field: &str, value: String, max_chars: usize) -> Result<String> {
    clean_text(field, &value, max_chars)
}

/// Text from outside (a document, or what the driver typed): trimmed, not
/// empty, not too long, no control characters but newlines.
pub(crate) fn clean_text(field: &str, text: &str, max_chars: usize) -> Result<String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(CoreError::invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > max_chars {
        return Err(CoreError::invalid(field, format!("longer than {max_chars} characters")));
    }
    if trimmed.chars().any(|c| c.is_control() && c != '\n') {
        return Err(CoreError::invalid(field, "contains control characters"));
    }
    Ok(trimmed.to_owned())
}

fn identifier(field: &str, value: String) -> Result<String> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok { Ok(value) } else { Err(CoreError::invalid(field, "must be 1 to 64 of A-Z a-z 0-9 - _ . :")) }
}

fn time_zone(field: &str, value: String) -> Result<String> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'));
    if ok { Ok(value) } else { Err(CoreError::invalid(field, "must be an IANA time zone name such as Europe/Berlin")) }
}

fn point(field: &str, location: wire::Point) -> Result<GeoPoint> {
    if !location.lat.is_finite() || !(-90.0..=90.0).contains(&location.lat) {
        return Err(CoreError::invalid(format!("{field}.lat"), "must be a latitude between -90 and 90"));
    }
    if !location.lon.is_finite() || !(-180.0..=180.0).contains(&location.lon) {
        return Err(CoreError::invalid(format!("{field}.lon"), "must be a longitude between -180 and 180"));
    }
    Ok(GeoPoint { latitude: location.lat, longitude: location.lon })
}

fn window(field: &str, window: wire::Window) -> Result<TimeWindow> {
    if window.end <= window.start {
        return Err(CoreError::invalid(format!("{field}.end"), "must be after start"));
    }
    if window.end - window.start > MAX_WINDOW {
        return Err(CoreError::invalid(format!("{field}.end"), "the window is longer than 7 days"));
    }
    Ok(TimeWindow { start: window.start, end: window.end })
}

/// "HH:MM" in 24-hour time, "24:00" allowed as the end of a day.
fn parse_local_time(field: &str, value: &str) -> Result<u16> {
    let parsed = value.split_once(':').and_then(|(h, m)| {
        let digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(h) || !digits(m) {
            return None;
        }
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
    });
    parsed.ok_or_else(|| CoreError::invalid(field, format!("{value:?} is not a time of day like \"09:30\"")))
}

/// The JSON shapes exactly as the server sends them.
mod wire {
    use super::*;

    #[derive(Deserialize)]
    pub struct Document {
        pub format: String,
        #[serde(default)]
        pub stores: Vec<Store>,
        pub jobs: Vec<Job>,
    }

    #[derive(Deserialize)]
    pub struct Delta {
        pub format: String,
        pub cursor: String,
        pub has_more: bool,
        pub server_time: DateTime<Utc>,
        #[serde(default)]
        pub stores: Vec<Store>,
        pub jobs: Vec<DeltaJob>,
    }

    #[derive(Deserialize)]
    pub struct DeltaJob {
        #[serde(flatten)]
        pub job: Job,
        pub revision: u64,
        pub status: ServerStatus,
        pub state: JobState,
    }

    #[derive(Deserialize)]
    pub struct Store {
        pub id: Uuid,
        pub name: String,
        pub address: String,
        pub location: Point,
        pub time_zone: String,
        #[serde(default)]
        pub opening_hours: Vec<Hours>,
    }

    #[derive(Deserialize)]
    pub struct Hours {
        pub weekday: Weekday,
        pub opens: String,
        pub closes: String,
    }

    #[derive(Deserialize)]
    pub struct Point {
        pub lat: f64,
        pub lon: f64,
    }

    #[derive(Deserialize)]
    pub struct Window {
        pub start: DateTime<Utc>,
        pub end: DateTime<Utc>,
    }

    #[derive(Deserialize)]
    pub struct Job {
        pub id: Uuid,
        pub reference: String,
        pub pickup: Pickup,
        pub dropoff: Dropoff,
        pub packages: Vec<Package>,
        pub pod: Pod,
        #[serde(default)]
        pub route: Option<Route>,
    }

    #[derive(Deserialize)]
    pub struct Route {
        pub polyline: String,
        pub precision: u8,
    }

    #[derive(Deserialize)]
    pub struct Pickup {
        pub store_id: Uuid,
        pub window: Window,
    }

    #[derive(Deserialize)]
    pub struct Dropoff {
        pub recipient_name: String,
        pub address: String,
        pub location: Point,
        #[serde(default)]
        pub access_notes: Option<String>,
        #[serde(default)]
        pub building_id: Option<String>,
        #[serde(default)]
        pub door_ids: Vec<String>,
        pub window: Window,
    }

    #[derive(Deserialize)]
    pub struct Package {
        pub id: Uuid,
        pub barcode: String,
        pub description: String,
        #[serde(default)]
        pub flags: Vec<PackageFlag>,
    }

    #[derive(Deserialize)]
    pub struct Pod {
        #[serde(default)]
        pub min_photos: u32,
        #[serde(default)]
        pub signature: bool,
        #[serde(default)]
        pub recipient_name: bool,
        #[serde(default)]
        pub scan_all_packages: bool,
        #[serde(default)]
        pub pin: Option<Pin>,
        #[serde(default)]
        pub minimum_age: Option<u8>,
        pub allowed_methods: Vec<DeliveryMethod>,
    }

    #[derive(Deserialize)]
    pub struct Pin {
        pub salt_hex: String,
        pub sha256_hex: String,
        pub max_attempts: u32,
    }
}
