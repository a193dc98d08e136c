//! The demo shift: a mall pickup run (3 stores, 10 drop-offs) walked through
//! on a simulated clock, fully offline, the way a driver's day goes: store
//! staff hand the packages over by QR, the driver opens lobby doors with
//! locally issued grants, captures proof of delivery as each job requires,
//! and the timeline is then read back from the database and printed.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use doorstep_core::access::grant::{GrantIssuer, GrantTerms, door_tag};
use doorstep_core::access::lock::{LockConfig, ReferenceLock};
use doorstep_core::access::{InMemoryLink, unix_seconds};
use doorstep_core::handoff::{Direction, QrSymbol, StoreSession};
use doorstep_core::keys::{DeviceSigner, SoftwareSigner, random_bytes};
use doorstep_core::nav::Fix;
use doorstep_core::pod::{FailureNextStep, PodPayload, Stroke, StrokePoint};
use doorstep_core::store::{MutationBody, RecordKind, UnlockRecord};
use doorstep_core::{
    Clock, CoreError, DeliveryMethod, DriverSession, FailureReason, Job, JobEvent, JobEventKind, JobObserver, JobState,
    ManualClock, SessionOptions, Transition,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

pub const MALL_PICKUP_RUN: &str = include_str!("../../scenarios/mall-pickup-run.json");

/// The PIN the sample's recipient of HPM-2403 tells the driver at the door
/// (docs/proof-of-delivery.md).
const SAMPLE_PIN: &str = "4711";
/// A recipient old enough for the age-restricted orders, and one who is not.
const ADULT_BIRTH_DATE: (i32, u32, u32) = (1988, 6, 14);
const MINOR_BIRTH_DATE: (i32, u32, u32) = (2008, 9, 30);
/// The BLE payload size the phone negotiates with the locks.
const LINK_MTU: u16 = 185;
/// Long enough for the whole shift, within the grant format's 720 minutes.
const GRANT_MINUTES: u16 = 600;
/// A driver may need a door more than once (a reattempt), but not often.
const GRANT_USES: u8 = 4;

/// What the demo did, for tests and for its closing lines.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoReport {
    pub events: usize,
    pub final_states: BTreeMap<JobState, usize>,
    pub observed_changes: u64,
    /// Distinct handoff receipts on the driver's device (pickups and returns).
    pub receipts: usize,
    /// Receipts the store devices hold for dispatch.
    pub store_receipts: usize,
    /// The lock's verdict on each unlock, as the device recorded it.
    pub unlock_outcomes: Vec<String>,
    /// Sealed proof-of-delivery records on the device (deliveries, failed attempts).
    pub delivery_records: usize,
    pub failed_records: usize,
    pub outbox: OutboxCounts,
}

/// The driver's outbox at the end of the shift, by what each entry carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxCounts {
    pub total: usize,
    pub actions: usize,
    pub uploads: usize,
    /// Signed records by kind name, whether alone or riding on an action.
    pub records: BTreeMap<&'static str, usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("cannot write the timeline: {0}")]
    Output(#[from] std::io::Error),
}

struct CountingObserver(AtomicU64);

impl JobObserver for CountingObserver {
    fn job_changed(&self, _event: &JobEvent) -> Result<(), String> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// What the timeline shows that the database does not keep: how big the
/// offer QR was, and how many BLE messages an unlock took.
#[derive(Default)]
struct Notes {
    /// By receipt hash: store name, QR version, offer text length.
    handoffs: HashMap<String, (String, i16, usize)>,
    /// By (time, door tag): messages exchanged.
    unlock_messages: HashMap<(DateTime<Utc>, u32), u32>,
}

/// The driver's device, the stores' devices and the doors, on one clock.
struct Shift {
    clock: Arc<ManualClock>,
    session: DriverSession,
    signer: Arc<SoftwareSigner>,
    /// Staff devices by store id; each keeps its own database.
    stores: HashMap<Uuid, StoreSession>,
    /// Dispatch's grant key, held locally: the demo has no server.
    issuer: GrantIssuer,
    /// The lobby locks by door tag, created on first visit.
    locks: HashMap<u32, Arc<ReferenceLock>>,
    notes: Notes,
}

/// Runs the shift against a fresh database at `db_path` and writes the
/// timeline to `out`.
pub fn run(db_path: &Path, out: &mut dyn Write) -> Result<DemoReport, DemoError> {
    let clock = Arc::new(ManualClock::starting_at(shift_start()));
    let signer = Arc::new(SoftwareSigner::generate()?);
    let options = SessionOptions { clock: clock.clone(), device_signer: Some(signer.clone() as Arc<dyn DeviceSigner>) };
    let session = DriverSession::open_with(db_path, options)?;
    let observer = Arc::new(CountingObserver(AtomicU64::new(0)));
    let subscription = session.subscribe(observer.clone());
    // The staff devices' databases are theirs, not the driver's: kept aside
    // for the length of the run.
    let store_dir = tempfile::tempdir()?;

    let imported = session.import_document(MALL_PICKUP_RUN.as_bytes())?;
    let jobs: Vec<Job> = session.jobs()?.iter().map(|s| session.job(s.id)).collect::<Result<_, _>>()?;
    writeln!(out, "Doorstep demo: mall pickup run, {} jobs from {} stores, offline", imported.jobs.len(), count_stores(&jobs))?;
    writeln!(out, "database: {}", db_path.display())?;
    writeln!(out)?;

    let mut shift = Shift {
        clock,
        session,
        signer,
        stores: HashMap::new(),
        issuer: GrantIssuer::generate()?,
        locks: HashMap::new(),
        notes: Notes::default(),
    };
    shift.open_store_devices(&jobs, store_dir.path())?;
    walk_the_shift(&mut shift, &jobs)?;

    let references: HashMap<Uuid, &str> = jobs.iter().map(|j| (j.id, j.reference.as_str())).collect();
    let events = shift.session.events_after(0, u32::MAX)?;
    let timeline = read_timeline(&shift, &jobs, &events, &references)?;
    writeln!(out, "{:<10} {:<9} {:<13} state / detail", "time", "job", "event")?;
    for entry in &timeline {
        writeln!(out, "{}", entry.line)?;
    }

    // Observers run on their own thread; give it a moment to catch up.
    wait_for(|| observer.0.load(Ordering::Relaxed) >= events.len() as u64);
    subscription.cancel();
    let report = summarize(&shift, &jobs, events.len(), observer.0.load(Ordering::Relaxed))?;
    print_summary(out, &report)?;
    Ok(report)
}

/// The day itself. The driver declines the farthest drop-off, collects at
/// each store, delivers in route order (one recipient is out, one fails
/// the ID check), tries the absent one again and takes the wine back.
fn walk_the_shift(shift: &mut Shift, jobs: &[Job]) -> Result<(), CoreError> {
    let id_of = |reference: &str| jobs.iter().find(|j| j.reference == reference).map(|j| j.id).expect("the sample names it");
    let declined = id_of("HPM-2410");
    let out_job = id_of("HPM-2405");
    let id_job = id_of("HPM-2406");

    shift.act(2, declined, Transition::Decline)?;
    let taken: Vec<&Job> = jobs.iter().filter(|j| j.id != declined).collect();
    for job in &taken {
        shift.act(0, job.id, Transition::Accept)?;
    }
    // Dispatch would send the door grants with the jobs; offline, the demo
    // issues them itself for this device's key.
    for job in &taken {
        shift.cache_door_grant(job)?;
    }
    for (store_id, store_jobs) in group_by_store(&taken) {
        shift.collect_at_store(store_id, &store_jobs)?;
    }
    for job in &taken {
        shift.advance_minutes(11);
        shift.session.apply(job.id, Transition::ArriveAtDropoff)?;
        shift.open_lobby_door(job)?;
        if job.id == out_job {
            shift.fail_at_door(job, FailureReason::RecipientUnavailable, FailureNextStep::Reattempt)?;
        } else if job.id == id_job {
            shift.fail_at_door(job, FailureReason::IdCheckFailed, FailureNextStep::ReturnToStore)?;
        } else {
            shift.deliver(job)?;
        }
    }
    let second_try = jobs.iter().find(|j| j.id == out_job).expect("taken above");
    shift.advance_minutes(16);
    shift.session.apply(out_job, Transition::ArriveAtDropoff)?;
    shift.open_lobby_door(second_try)?;
    shift.deliver(second_try)?;
    let wine = jobs.iter().find(|j| j.id == id_job).expect("taken above");
    shift.advance_minutes(24);
    shift.hand_over(wine.pickup.store.id, Direction::Return, &[wine])?;
    Ok(())
}

impl Shift {
    fn advance_minutes(&self, minutes: i64) {
        self.clock.advance(Duration::minutes(minutes));
    }

    /// Capture steps take seconds, not minutes; the timeline still orders them.
    fn advance_seconds(&self, seconds: i64) {
        self.clock.advance(Duration::seconds(seconds));
    }

    fn act(&self, minutes: i64, job: Uuid, transition: Transition) -> Result<(), CoreError> {
        self.advance_minutes(minutes);
        self.session.apply(job, transition).map(|_| ())
    }

    fn open_store_devices(&mut self, jobs: &[Job], dir: &Path) -> Result<(), CoreError> {
        let store_ids: BTreeSet<Uuid> = jobs.iter().map(|j| j.pickup.store.id).collect();
        for store_id in store_ids {
            let staff_key = Arc::new(SoftwareSigner::generate()?);
            let store = StoreSession::open(dir.join(format!("{store_id}.db")), store_id, staff_key, self.clock.clone())?;
            store.import_document(MALL_PICKUP_RUN.as_bytes())?;
            self.stores.insert(store_id, store);
        }
        Ok(())
    }

    /// The driver walks in, each order is found at the counter, and staff
    /// hand them over in one QR exchange.
    fn collect_at_store(&mut self, store_id: Uuid, jobs: &[&Job]) -> Result<(), CoreError> {
        self.advance_minutes(6);
        for job in jobs {
            self.act(1, job.id, Transition::ArriveAtPickup)?;
        }
        self.advance_minutes(2);
        self.hand_over(store_id, Direction::Pickup, jobs)
    }

    /// One handoff, as the two cameras would see it: the driver's check-in
    /// QR, staff scanning every package, the signed offer QR the driver
    /// accepts, and the acceptance QR that completes it on the store's side.
    fn hand_over(&mut self, store_id: Uuid, direction: Direction, jobs: &[&Job]) -> Result<(), CoreError> {
        let store = self.stores.get(&store_id).ok_or_else(|| CoreError::not_found("store device", store_id))?;
        let check_in = self.session.handoff_check_in_code()?;
        let job_ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
        let handoff = store.start_handoff(direction, &check_in, &job_ids)?.handoff_id;
        for barcode in jobs.iter().flat_map(|j| &j.packages).map(|p| p.barcode.as_str()) {
            self.clock.advance(Duration::seconds(5));
            store.scan(handoff, barcode)?;
        }
        let offer = store.offer_code(handoff)?;
        let symbol = QrSymbol::new(&offer)?;
        let accepted = self.session.accept_handoff_offer(&offer)?;
        store.complete_handoff(&accepted.acceptance_code)?;
        let store_name = jobs[0].pickup.store.name.clone();
        self.notes.handoffs.insert(accepted.receipt_hash, (store_name, symbol.version(), offer.len()));
        Ok(())
    }

    fn cache_door_grant(&self, job: &Job) -> Result<(), CoreError> {
        let Some(building) = &job.dropoff.building_id else { return Ok(()) };
        if job.dropoff.door_ids.is_empty() {
            return Ok(());
        }
        let terms = GrantTerms {
            grant_id: random_bytes::<8>()?,
            job_id: job.id,
            device_key: self.signer.device_public_key(),
            door_ids: job.dropoff.door_ids.iter().map(|door| door_tag(building, door)).collect(),
            not_before: unix_seconds(self.clock.now()),
            validity_minutes: GRANT_MINUTES,
            epoch: 0,
            use_limit: GRANT_USES,
        };
        let grant = self.issuer.issue(&terms)?;
        self.session.add_door_grant(job.id, grant.encoded())?;
        Ok(())
    }

    /// Opens the first lobby door the job names, if any, over an in-memory
    /// BLE link to a reference lock that trusts the grant issuer.
    fn open_lobby_door(&mut self, job: &Job) -> Result<(), CoreError> {
        let (Some(building), Some(door)) = (&job.dropoff.building_id, job.dropoff.door_ids.first()) else { return Ok(()) };
        self.advance_seconds(40);
        let lock = self.lock_for(building, door)?;
        let link = InMemoryLink::new(lock, LINK_MTU);
        let opened = self.session.unlock(building, door, &link)?;
        self.notes.unlock_messages.insert((self.clock.now(), opened.door_id), opened.stats.messages());
        Ok(())
    }

    fn lock_for(&mut self, building: &str, door: &str) -> Result<Arc<ReferenceLock>, CoreError> {
        let tag = door_tag(building, door);
        if let Some(lock) = self.locks.get(&tag) {
            return Ok(lock.clone());
        }
        let lock_id = 1000 + self.locks.len() as u32;
        let config = LockConfig::new(lock_id, tag, vec![self.issuer.verifying_key()], random_bytes::<32>()?);
        let lock = Arc::new(ReferenceLock::new(config, self.clock.clone())?);
        self.locks.insert(tag, lock.clone());
        Ok(lock)
    }

    /// Captures everything the job's requirements ask for, then seals it.
    fn deliver(&self, job: &Job) -> Result<(), CoreError> {
        let s = &self.session;
        self.advance_seconds(30);
        s.start_pod(job.id)?;
        s.set_method(job.id, delivery_method(job))?;
        s.add_photo_bytes(job.id, &door_photo(job)?)?;
        for package in &job.packages {
            self.advance_seconds(5);
            s.scan_package(job.id, &package.barcode)?;
        }
        if job.pod.signature {
            s.add_signature(job.id, 300.0, 120.0, &signature_strokes())?;
        }
        if job.pod.recipient_name {
            s.set_recipient(job.id, &job.dropoff.recipient_name)?;
        }
        if job.pod.pin.is_some() {
            s.enter_pin(job.id, SAMPLE_PIN)?;
        }
        if job.pod.minimum_age.is_some() {
            s.record_age_check(job.id, true, birth_date(ADULT_BIRTH_DATE))?;
        }
        s.attach_fix(job.id, &self.fix_at_door(job), self.monotonic_ms())?;
        self.advance_seconds(20);
        s.finalize_pod(job.id, None)?;
        Ok(())
    }

    /// A failed attempt is sealed too, with the evidence its reason needs: a
    /// photo of the door, and for a failed ID check the check itself.
    fn fail_at_door(&self, job: &Job, reason: FailureReason, next_step: FailureNextStep) -> Result<(), CoreError> {
        let s = &self.session;
        self.advance_minutes(2);
        s.start_pod(job.id)?;
        s.add_photo_bytes(job.id, &door_photo(job)?)?;
        if reason == FailureReason::IdCheckFailed {
            s.record_age_check(job.id, true, birth_date(MINOR_BIRTH_DATE))?;
        }
        s.attach_fix(job.id, &self.fix_at_door(job), self.monotonic_ms())?;
        self.advance_minutes(1);
        s.fail_delivery(job.id, reason, next_step, None)?;
        Ok(())
    }

    /// A GPS fix a few metres from the drop-off, as the phone would report it.
    fn fix_at_door(&self, job: &Job) -> Fix {
        Fix {
            latitude: job.dropoff.location.latitude + 8.0 / 111_320.0,
            longitude: job.dropoff.location.longitude,
            horizontal_accuracy_m: 6.0,
            speed_mps: None,
            course_deg: None,
            at: self.clock.now(),
        }
    }

    /// The phone's monotonic clock: time since the shift's first instant.
    fn monotonic_ms(&self) -> u64 {
        (self.clock.now() - shift_start()).num_milliseconds().max(0) as u64
    }
}

fn shift_start() -> DateTime<Utc> {
    "2026-11-23T16:50:00Z".parse().expect("a valid instant")
}

fn delivery_method(job: &Job) -> DeliveryMethod {
    // Signed-for orders go into the recipient's hands; the rest may be left.
    if !job.pod.signature && job.pod.allowed_methods.contains(&DeliveryMethod::LeftAtDoor) {
        DeliveryMethod::LeftAtDoor
    } else {
        DeliveryMethod::HandedToRecipient
    }
}

/// A stand-in for the camera: a real PNG (the job's reference drawn as a QR
/// code), different per job so each photo is its own upload.
fn door_photo(job: &Job) -> Result<Vec<u8>, CoreError> {
    QrSymbol::new(&format!("door photo {}", job.reference))?.to_png(4)
}

fn signature_strokes() -> Vec<Stroke> {
    let stroke = |points: &[(f32, f32)]| Stroke { points: points.iter().map(|&(x, y)| StrokePoint { x, y }).collect() };
    vec![stroke(&[(12.0, 80.0), (60.0, 30.0), (110.0, 90.0), (170.0, 40.0)]), stroke(&[(190.0, 70.0), (260.0, 65.0)])]
}

fn birth_date((year, month, day): (i32, u32, u32)) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("a valid date")
}

/// One printed line of the timeline, with what orders it: the time, then
/// the kind (a door opens before the state it leads to; receipts and
/// sealed records follow the state change they were committed with).
struct Entry {
    at: DateTime<Utc>,
    rank: u8,
    line: String,
}

fn read_timeline(shift: &Shift, jobs: &[Job], events: &[JobEvent], references: &HashMap<Uuid, &str>) -> Result<Vec<Entry>, CoreError> {
    let reference = |id: &Uuid| references.get(id).copied().unwrap_or("?");
    let mut entries: Vec<Entry> =
        events.iter().map(|e| Entry { at: e.at, rank: 1, line: timeline_line(e, reference(&e.job_id)) }).collect();
    for unlock in shift.session.unlock_history()? {
        let messages = shift.notes.unlock_messages.get(&(unlock.at, unlock.door_id)).copied();
        entries.push(Entry { at: unlock.at, rank: 0, line: unlock_line(&unlock, reference(&unlock.job_id), messages) });
    }
    for (hash, seen) in receipts_by_hash(shift, jobs)? {
        let note = shift.notes.handoffs.get(&hash);
        entries.push(Entry { at: seen.at, rank: 2, line: handoff_line(seen.at, seen.direction, &seen.jobs, &hash, note) });
    }
    for job in jobs {
        for record in shift.session.pod_records(job.id)? {
            let payload = shift.session.verify_pod_record(&record)?;
            entries.push(Entry { at: payload.times.device_time, rank: 3, line: proof_line(&payload, job, record.len()) });
        }
    }
    entries.sort_by_key(|e| (e.at, e.rank));
    Ok(entries)
}

/// A handoff receipt as the driver's device holds it.
struct ReceiptSeen {
    at: DateTime<Utc>,
    direction: Direction,
    /// References of the jobs it covers.
    jobs: Vec<String>,
}

/// Every receipt on the driver's device by hash (a receipt is kept once per
/// job it names, so the jobs are gathered back together here).
fn receipts_by_hash(shift: &Shift, jobs: &[Job]) -> Result<BTreeMap<String, ReceiptSeen>, CoreError> {
    let mut receipts: BTreeMap<String, ReceiptSeen> = BTreeMap::new();
    for job in jobs {
        for custody in shift.session.handoff_custody(job.id)? {
            let seen = receipts.entry(custody.receipt_hash).or_insert(ReceiptSeen {
                at: custody.accepted_at,
                direction: custody.direction,
                jobs: Vec::new(),
            });
            seen.jobs.push(job.reference.clone());
        }
    }
    Ok(receipts)
}

fn timeline_line(event: &JobEvent, reference: &str) -> String {
    let what = match event.kind {
        JobEventKind::Imported => "imported".to_owned(),
        JobEventKind::Updated => "updated".to_owned(),
        JobEventKind::Reconciled => "reconciled".to_owned(),
        JobEventKind::Transitioned => transition_word(event.from_state, event.to_state).to_owned(),
    };
    let state = match (event.from_state, event.failure) {
        (Some(from), Some(reason)) if event.kind == JobEventKind::Transitioned => {
            format!("{from} -> {} ({})", event.to_state, reason.as_str())
        }
        (Some(from), _) if event.kind == JobEventKind::Transitioned => format!("{from} -> {}", event.to_state),
        _ => event.to_state.to_string(),
    };
    row(event.at, reference, &what, &state)
}

fn unlock_line(unlock: &UnlockRecord, reference: &str, messages: Option<u32>) -> String {
    let messages = messages.map_or_else(|| "?".to_owned(), |m| m.to_string());
    let detail = format!("lock {}: {} ({messages} BLE messages, grant {})", unlock.lock_id, unlock.outcome, unlock.grant_id);
    row(unlock.at, reference, "door", &detail)
}

fn handoff_line(at: DateTime<Utc>, direction: Direction, references: &[String], hash: &str, note: Option<&(String, i16, usize)>) -> String {
    let what = match direction {
        Direction::Pickup => "handoff",
        Direction::Return => "return",
    };
    let (store, qr) = match note {
        Some((store, version, length)) => (store.as_str(), format!("offer QR version {version}, {length} chars")),
        None => ("?", "offer QR not seen".to_owned()),
    };
    let detail = format!("{store}: {}; {qr}; receipt {}", references.join(", "), &hash[..16]);
    row(at, "", what, &detail)
}

fn proof_line(payload: &PodPayload, job: &Job, record_len: usize) -> String {
    let mut parts = vec![format!("{} photo(s)", payload.photos.len())];
    if payload.signature.is_some() {
        parts.push("signature".into());
    }
    if let Some(name) = &payload.recipient_name {
        parts.push(format!("name {name}"));
    }
    parts.push(format!("{}/{} scanned", payload.scans.len(), job.packages.len()));
    if let Some(pin) = payload.pin {
        parts.push(if pin.verified { "PIN ok".into() } else { "PIN not verified".into() });
    }
    if let Some(age) = payload.age_check {
        parts.push(format!("age {}+ {}", age.minimum_age, if age.meets_minimum { "ok" } else { "NOT met" }));
    }
    parts.push(payload.completion.verdict.clone());
    let (what, why) = match &payload.failure {
        Some(failure) => ("failure proof", format!("{}, ", failure.reason.as_str())),
        None => ("proof sealed", String::new()),
    };
    row(payload.times.device_time, &job.reference, what, &format!("{why}{}; {record_len} bytes signed", parts.join(", ")))
}

fn row(at: DateTime<Utc>, job: &str, what: &str, detail: &str) -> String {
    format!("{:<10} {:<9} {:<13} {}", at.format("%H:%M UTC"), job, what, detail)
}

fn transition_word(from: Option<JobState>, to: JobState) -> &'static str {
    match (from, to) {
        (Some(JobState::Failed), JobState::PickedUp) => "reattempt",
        (_, JobState::Accepted) => "accept",
        (_, JobState::Declined) => "decline",
        (_, JobState::AtPickup) => "at store",
        (_, JobState::PickedUp) => "picked up",
        (_, JobState::AtDropoff) => "at door",
        (_, JobState::Delivered) => "delivered",
        (_, JobState::Failed) => "failed",
        (_, JobState::Returning) => "returning",
        (_, JobState::Returned) => "returned",
        (_, JobState::Cancelled) => "cancelled",
        (_, JobState::Assigned) => "assigned",
    }
}

fn summarize(shift: &Shift, jobs: &[Job], events: usize, observed_changes: u64) -> Result<DemoReport, CoreError> {
    let final_states = shift.session.jobs()?.iter().fold(BTreeMap::new(), |mut counts, job| {
        *counts.entry(job.state).or_insert(0) += 1;
        counts
    });
    let mut delivery_records = 0;
    let mut failed_records = 0;
    for job in jobs {
        for record in shift.session.pod_records(job.id)? {
            match shift.session.verify_pod_record(&record)?.failure {
                Some(_) => failed_records += 1,
                None => delivery_records += 1,
            }
        }
    }
    let mut store_receipts = 0;
    for store in shift.stores.values() {
        store_receipts += store.receipts_to_send()?.len();
    }
    Ok(DemoReport {
        events,
        final_states,
        observed_changes,
        receipts: receipts_by_hash(shift, jobs)?.len(),
        store_receipts,
        unlock_outcomes: shift.session.unlock_history()?.into_iter().map(|u| u.outcome).collect(),
        delivery_records,
        failed_records,
        outbox: count_outbox(&shift.session)?,
    })
}

fn count_outbox(session: &DriverSession) -> Result<OutboxCounts, CoreError> {
    let mut counts = OutboxCounts::default();
    for mutation in session.outbox()? {
        counts.total += 1;
        let record_kind: Option<RecordKind> = match &mutation.body {
            MutationBody::Action { record, .. } => {
                counts.actions += 1;
                record.as_ref().map(|r| r.kind)
            }
            MutationBody::Record(record) => Some(record.kind),
            MutationBody::Upload(_) => {
                counts.uploads += 1;
                None
            }
        };
        if let Some(kind) = record_kind {
            *counts.records.entry(kind.as_str()).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

fn print_summary(out: &mut dyn Write, report: &DemoReport) -> std::io::Result<()> {
    writeln!(out)?;
    let states: Vec<String> = report.final_states.iter().map(|(state, n)| format!("{n} {state}")).collect();
    writeln!(out, "end of shift: {}", states.join(", "))?;
    writeln!(out, "{} events stored durably; the observer saw {} changes", report.events, report.observed_changes)?;
    writeln!(out, "handoff receipts: {} on the driver's device, {} on the stores' devices", report.receipts, report.store_receipts)?;
    let opened = report.unlock_outcomes.iter().filter(|o| *o == "opened").count();
    writeln!(out, "door unlocks: {} attempted, {opened} opened", report.unlock_outcomes.len())?;
    writeln!(out, "sealed records: {} proofs of delivery, {} failed attempts", report.delivery_records, report.failed_records)?;
    let records: Vec<String> = report.outbox.records.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
    writeln!(
        out,
        "outbox: {} mutations queued for dispatch: {} actions, {} uploads; records: {}",
        report.outbox.total,
        report.outbox.actions,
        report.outbox.uploads,
        records.join(", ")
    )?;
    Ok(())
}

fn count_stores(jobs: &[Job]) -> usize {
    jobs.iter().map(|j| j.pickup.store.id).collect::<BTreeSet<_>>().len()
}

/// The jobs by store, stores in name order and jobs in route order.
fn group_by_store<'a>(jobs: &[&'a Job]) -> Vec<(Uuid, Vec<&'a Job>)> {
    let mut groups: BTreeMap<(String, Uuid), Vec<&Job>> = BTreeMap::new();
    for job in jobs {
        groups.entry((job.pickup.store.name.clone(), job.pickup.store.id)).or_default().push(job);
    }
    groups.into_iter().map(|((_, id), jobs)| (id, jobs)).collect()
}

fn wait_for(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
