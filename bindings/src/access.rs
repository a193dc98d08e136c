//! Door access across the FFI: the BLE link as a foreign trait (Android
//! GATT, CoreBluetooth), unlocking from the session, and the reference
//! lock and grant issuer exported for QA and the shells' tests.

use crate::session::DriverSession;
use crate::types::Timestamp;
use crate::{DoorstepError, guard};
use doorstep_core::access::{self, LinkError};
use doorstep_core::{Clock, ManualClock, SystemClock};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// One BLE connection to a door lock, implemented by the shell over its
/// platform's GATT client. `connect` scans for the door service advertising
/// `door_id` (service data: lock id, door id), connects, subscribes to the
/// door characteristic and returns the ATT MTU; `write` sends one ATT
/// payload; `receive` returns the next notification. Throw
/// `BluetoothUnavailable` when Bluetooth is off or not permitted,
/// `LockOutOfRange` when no lock was found in time, `LinkFailed` otherwise.
/// Called on a core background thread; blocking is fine.
#[uniffi::export(with_foreign)]
pub trait BleLink: Send + Sync {
    fn connect(&self, door_id: u32, timeout_ms: u32) -> Result<u16, DoorstepError>;
    fn write(&self, payload: Vec<u8>) -> Result<(), DoorstepError>;
    fn receive(&self, timeout_ms: u32) -> Result<Vec<u8>, DoorstepError>;
    fn disconnect(&self);
}

/// Adapts a shell's link to the core's trait.
struct ForeignLink(Arc<dyn BleLink>);

fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

fn link_error(err: DoorstepError) -> LinkError {
    match err {
        DoorstepError::BluetoothUnavailable { reason } => LinkError::Unavailable { reason },
        DoorstepError::LockOutOfRange { .. } => LinkError::OutOfRange,
        DoorstepError::LinkFailed { reason } => LinkError::Broken { reason },
        other => LinkError::Broken { reason: other.to_string() },
    }
}

impl access::BleLink for ForeignLink {
    fn connect(&self, door_id: u32, timeout: Duration) -> Result<u16, LinkError> {
        self.0.connect(door_id, millis(timeout)).map_err(link_error)
    }

    fn write(&self, payload: &[u8]) -> Result<(), LinkError> {
        self.0.write(payload.to_vec()).map_err(link_error)
    }

    fn receive(&self, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        self.0.receive(millis(timeout)).map_err(link_error)
    }

    fn disconnect(&self) {
        self.0.disconnect();
    }
}

/// One of the core's links (in-memory, btleplug), handed out as a `BleLink`.
struct CoreLink<L: access::BleLink>(L);

fn core_link_error(err: LinkError, door_id: u32) -> DoorstepError {
    access::protocol::link_error(err, door_id).into()
}

impl<L: access::BleLink> BleLink for CoreLink<L> {
    fn connect(&self, door_id: u32, timeout_ms: u32) -> Result<u16, DoorstepError> {
        access::BleLink::connect(&self.0, door_id, Duration::from_millis(timeout_ms.into())).map_err(|e| core_link_error(e, door_id))
    }

    fn write(&self, payload: Vec<u8>) -> Result<(), DoorstepError> {
        access::BleLink::write(&self.0, &payload).map_err(|e| core_link_error(e, 0))
    }

    fn receive(&self, timeout_ms: u32) -> Result<Vec<u8>, DoorstepError> {
        access::BleLink::receive(&self.0, Duration::from_millis(timeout_ms.into())).map_err(|e| core_link_error(e, 0))
    }

    fn disconnect(&self) {
        access::BleLink::disconnect(&self.0);
    }
}

/// A door that opened, and what the exchange cost over the air.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DoorUnlock {
    pub door_tag: u32,
    pub lock_id: u32,
    pub grant_id: String,
    pub job_id: Uuid,
    pub audit_sequence: u32,
    pub mtu: u16,
    pub messages: u32,
    pub bytes: u32,
}

/// A grant held on the device for offline use.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DoorGrant {
    pub grant_id: String,
    pub job_id: Uuid,
    pub door_tags: Vec<u32>,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub epoch: u16,
}

/// One unlock attempt a lock judged, as the device recorded it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct UnlockAttempt {
    pub sequence: u64,
    pub at: Timestamp,
    pub door_tag: u32,
    pub lock_id: u32,
    pub grant_id: String,
    pub job_id: Uuid,
    pub counter: u32,
    /// `opened`, or the lock's reason (`expired`, `wrong_door`, …).
    pub outcome: String,
}

fn door_grant(grant: doorstep_core::store::CachedGrant) -> DoorGrant {
    DoorGrant {
        grant_id: grant.grant_id,
        job_id: grant.job_id,
        door_tags: grant.door_ids,
        not_before: grant.not_before,
        not_after: grant.not_after,
        epoch: grant.epoch,
    }
}

#[uniffi::export]
impl DriverSession {
    /// Opens a door of the job's building over `link`, with a cached grant;
    /// works offline. Only on an explicit driver action. A refusal by the
    /// lock throws `Denied { reason }` (and is recorded and queued for
    /// dispatch); `NoGrant` says to sync; `LockOutOfRange`,
    /// `BluetoothUnavailable` and `LinkFailed` come from the link.
    pub async fn unlock_door(&self, building_id: String, door_id: String, link: Arc<dyn BleLink>) -> Result<DoorUnlock, DoorstepError> {
        let outcome = self.0.unlock_async(building_id, door_id, Arc::new(ForeignLink(link))).await?;
        Ok(DoorUnlock {
            door_tag: outcome.door_id,
            lock_id: outcome.lock_id,
            grant_id: outcome.grant_id,
            job_id: outcome.job_id,
            audit_sequence: outcome.audit_sequence,
            mtu: outcome.stats.mtu,
            messages: outcome.stats.messages(),
            bytes: outcome.stats.bytes_written + outcome.stats.bytes_notified,
        })
    }

    /// The grants held for offline use.
    pub fn door_grants(&self) -> Result<Vec<DoorGrant>, DoorstepError> {
        guard(|| Ok(self.0.door_grants()?.into_iter().map(door_grant).collect()))
    }

    /// Caches a grant handed over outside sync (QA scenarios); it must name
    /// this device's key and the job.
    pub fn add_door_grant(&self, job_id: Uuid, encoded: Vec<u8>) -> Result<DoorGrant, DoorstepError> {
        guard(|| self.0.add_door_grant(job_id, &encoded).map(door_grant))
    }

    /// Every unlock attempt a lock judged, oldest first.
    pub fn unlock_history(&self) -> Result<Vec<UnlockAttempt>, DoorstepError> {
        guard(|| {
            Ok(self
                .0
                .unlock_history()?
                .into_iter()
                .map(|r| UnlockAttempt {
                    sequence: r.sequence,
                    at: r.at,
                    door_tag: r.door_id,
                    lock_id: r.lock_id,
                    grant_id: r.grant_id,
                    job_id: r.job_id,
                    counter: r.counter,
                    outcome: r.outcome,
                })
                .collect())
        })
    }
}

/// The machine's own Bluetooth adapter through btleplug (desktop QA; built
/// with the `ble` feature). `BluetoothUnavailable` when there is no system
/// Bluetooth service or adapter.
#[cfg(feature = "ble")]
#[uniffi::export]
pub fn desktop_ble_link() -> Result<Arc<dyn BleLink>, DoorstepError> {
    guard(|| Ok(Arc::new(CoreLink(access::ble::open_link()?)) as Arc<dyn BleLink>))
}

/// The number grants and locks use for a door of a building.
#[uniffi::export]
pub fn door_tag(building_id: String, door_id: String) -> u32 {
    access::grant::door_tag(&building_id, &door_id)
}

/// One record of a reference lock's audit log.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct LockAuditEntry {
    pub sequence: u32,
    pub grant_id: String,
    pub counter: u32,
    /// `opened`, or the reason name.
    pub outcome: String,
    /// Whether the record's MAC checks out under the lock's audit key.
    pub authentic: bool,
}

/// The reference lock for QA and the shells' tests: every check a door
/// controller makes, with its own clock (the system's, or a manual one
/// starting at `now` that `advance_clock` moves).
#[derive(uniffi::Object)]
pub struct ReferenceLock {
    lock: Arc<access::ReferenceLock>,
    peripheral: access::LockPeripheral,
    manual_clock: Option<Arc<ManualClock>>,
    audit_key: [u8; 32],
}

#[uniffi::export]
impl ReferenceLock {
    /// A lock for door `door_id` of `building_id` trusting the Ed25519
    /// issuer key `issuer_public_key` (32 bytes); `audit_key` (32 bytes)
    /// MACs its audit records.
    #[uniffi::constructor]
    pub fn new(
        issuer_public_key: Vec<u8>,
        lock_id: u32,
        building_id: String,
        door_id: String,
        audit_key: Vec<u8>,
        now: Option<Timestamp>,
    ) -> Result<Arc<Self>, DoorstepError> {
        guard(|| {
            let issuer = access::grant::issuer_key(&issuer_public_key)?;
            let audit_key: [u8; 32] = audit_key
                .as_slice()
                .try_into()
                .map_err(|_| doorstep_core::CoreError::invalid("audit_key", "must be 32 bytes"))?;
            let manual_clock = now.map(|at| Arc::new(ManualClock::starting_at(at)));
            let clock: Arc<dyn Clock> = match &manual_clock {
                Some(clock) => clock.clone(),
                None => Arc::new(SystemClock),
            };
            let config = access::LockConfig::new(lock_id, access::grant::door_tag(&building_id, &door_id), vec![issuer], audit_key);
            let lock = Arc::new(access::ReferenceLock::new(config, clock)?);
            Ok(Arc::new(ReferenceLock { peripheral: access::LockPeripheral::new(lock.clone()), lock, manual_clock, audit_key }))
        })
    }

    /// A phone subscribed at `mtu`: the notifications carrying the challenge.
    pub fn gatt_subscribe(&self, mtu: u16) -> Result<Vec<Vec<u8>>, DoorstepError> {
        guard(|| self.peripheral.subscribe(mtu))
    }

    /// A phone wrote one ATT payload: the notifications the lock answers
    /// with (none until a whole frame is in).
    pub fn gatt_write(&self, payload: Vec<u8>) -> Result<Vec<Vec<u8>>, DoorstepError> {
        guard(|| self.peripheral.write(&payload))
    }

    pub fn gatt_disconnect(&self) {
        self.peripheral.disconnect();
    }

    /// The door tag this lock advertises.
    pub fn door_tag(&self) -> u32 {
        self.lock.config().door_id
    }

    /// An in-process link to this lock at `mtu`, as a `BleLink`.
    pub fn in_memory_link(&self, mtu: u16) -> Arc<dyn BleLink> {
        Arc::new(CoreLink(access::InMemoryLink::new(self.lock.clone(), mtu)))
    }

    /// Moves a manual clock on; refused for a lock on the system clock.
    pub fn advance_clock(&self, seconds: i64) -> Result<(), DoorstepError> {
        guard(|| {
            let clock = self.manual_clock.as_ref().ok_or_else(|| doorstep_core::CoreError::invalid("clock", "this lock runs on the system clock"))?;
            clock.advance(chrono::Duration::seconds(seconds));
            Ok(())
        })
    }

    pub fn times_opened(&self) -> u32 {
        self.lock.times_opened()
    }

    pub fn epoch(&self) -> u16 {
        self.lock.epoch()
    }

    pub fn audit_log(&self) -> Vec<LockAuditEntry> {
        self.lock
            .audit_log()
            .into_iter()
            .map(|r| LockAuditEntry {
                sequence: r.sequence,
                grant_id: doorstep_core::keys::hex(&r.grant_id),
                counter: r.counter,
                outcome: match r.reason {
                    0 => "opened".to_owned(),
                    code => access::Reason::from_code(code).map_or_else(|| format!("reason_{code}"), |r| r.name().to_owned()),
                },
                authentic: r.verifies(&self.audit_key),
            })
            .collect()
    }
}

/// An Ed25519 grant issuer for QA and tests (dispatch holds the real one).
#[derive(uniffi::Object)]
pub struct GrantIssuer(access::GrantIssuer);

#[uniffi::export]
impl GrantIssuer {
    /// A fresh issuer, or the one with this 32-byte secret.
    #[uniffi::constructor]
    pub fn new(secret: Option<Vec<u8>>) -> Result<Arc<Self>, DoorstepError> {
        guard(|| {
            let issuer = match secret {
                Some(secret) => access::GrantIssuer::from_secret(&secret)?,
                None => access::GrantIssuer::generate()?,
            };
            Ok(Arc::new(GrantIssuer(issuer)))
        })
    }

    pub fn public_key(&self) -> Vec<u8> {
        self.0.public_key().to_vec()
    }

    /// A signed grant for `device_public_key` (SEC1 or SPKI DER) to open
    /// `door_ids` of `building_id` for `job_id`, from `not_before` for
    /// `validity_minutes` (1 to 720); `use_limit` 0 for none.
    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        &self,
        device_public_key: Vec<u8>,
        job_id: Uuid,
        building_id: String,
        door_ids: Vec<String>,
        not_before: Timestamp,
        validity_minutes: u16,
        epoch: u16,
        use_limit: u8,
    ) -> Result<Vec<u8>, DoorstepError> {
        guard(|| {
            let terms = access::GrantTerms {
                grant_id: doorstep_core::keys::random_bytes()?,
                job_id,
                device_key: doorstep_core::keys::DevicePublicKey::parse(&device_public_key)?,
                door_ids: door_ids.iter().map(|door| access::grant::door_tag(&building_id, door)).collect(),
                not_before: access::unix_seconds(not_before),
                validity_minutes,
                epoch,
                use_limit,
            };
            Ok(self.0.issue(&terms)?.encoded().to_vec())
        })
    }
}
