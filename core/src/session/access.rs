//! The session's side of door access: unlocking a door with a cached
//! grant over a [`BleLink`], recording what the lock said, and fetching
//! grants when syncing.
//!
//! The exchange itself is `access::protocol`; grant bytes are judged by the
//! lock. The device only picks a grant that should work (by the time the
//! server offset corrects, then by the lock's own time from its challenge)
//! and fails early, with an error the driver can act on, when none can.

use super::DriverSession;
use crate::access::grant::{Grant, door_tag};
use crate::access::link::BleLink;
use crate::access::protocol::{self, ExchangeStats, Timeouts};
use crate::access::{Reason, wire};
use crate::error::{CoreError, Result};
use crate::keys::{DevicePublicKey, device_public_key};
use crate::access::audit::AuditRecord;
use crate::store::{CachedGrant, Record, RecordKind, UnlockRecord};
use crate::sync::SyncFailure;
use crate::sync::http::DispatchClient;
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;
use uuid::Uuid;

/// How far a lock's clock may be from dispatch's (as the reference lock
/// allows): grants this close to their window are still tried.
const LOCK_SKEW: Duration = Duration::minutes(2);
/// How far the phone's idea of dispatch's time may be off (no sync yet,
/// a clock changed since): grants this far outside their window are still
/// tried, and the lock decides by its own clock.
const PHONE_TOLERANCE: Duration = Duration::minutes(15);
/// Expired grants are purged at sync this long after their end; until then
/// an unlock can still say "expired" instead of "no grant".
const PURGE_AFTER: Duration = Duration::minutes(15);

/// A door that opened.
#[derive(Debug, Clone, PartialEq)]
pub struct UnlockOutcome {
    /// The door's tag ([`door_tag`]).
    pub door_id: u32,
    pub lock_id: u32,
    pub grant_id: String,
    pub job_id: Uuid,
    /// The lock's audit sequence number for this opening.
    pub audit_sequence: u32,
    pub stats: ExchangeStats,
}

impl DriverSession {
    /// Opens door `door_id` of building `building_id` (as the job's drop-off
    /// names them) over `link`: only ever on an explicit driver action,
    /// never by proximity. Works with no network. A denial is recorded, its
    /// audit record queued for dispatch, and returned as `Denied { reason }`
    /// with the lock's reason name.
    #[tracing::instrument(skip(self, link))]
    pub fn unlock(&self, building_id: &str, door_id: &str, link: &dyn BleLink) -> Result<UnlockOutcome> {
        let door = door_tag(building_id, door_id);
        let signer = self.device_signer()?;
        let device = device_public_key(signer.as_ref())?;
        let now = self.inner.clock.now() + self.server_offset()?;
        let candidates = {
            let store = self.store();
            let (epoch, _) = store.revocation()?;
            let grants: Vec<CachedGrant> = store
                .cached_grants()?
                .into_iter()
                .filter(|g| g.door_ids.contains(&door) && g.grant.is_for_device(&device) && g.epoch >= epoch)
                .collect();
            usable_candidates(door_id, grants, now)?
        };
        let (_, notice) = self.store().revocation()?;
        let mut chosen: Option<CachedGrant> = None;
        let mut counter = 0;
        let exchange = protocol::exchange(link, door, Timeouts::default(), |challenge| {
            let at_lock = crate::access::grant::seconds_to_time(challenge.lock_time);
            let grant = pick_for_lock_time(&candidates, at_lock).clone();
            counter = self.store().next_grant_counter(&grant.grant)?;
            let response = protocol::build_response(challenge, &grant.grant, counter, signer.as_ref(), notice.as_ref())?;
            chosen = Some(grant);
            Ok(response.encode())
        });
        let (challenge, result, stats) = exchange.inspect_err(|e| tracing::info!(error = %e, "unlock did not reach a verdict"))?;
        let grant = chosen.ok_or_else(|| CoreError::Internal { reason: "the exchange finished without a grant".into() })?;
        let outcome = match result.code {
            0 => "opened".to_owned(),
            code => Reason::from_code(code).map_or_else(|| format!("reason_{code}"), |r| r.name().to_owned()),
        };
        let record = UnlockRecord {
            sequence: 0,
            at: self.inner.clock.now(),
            door_id: door,
            lock_id: challenge.lock_id,
            grant_id: grant.grant_id.clone(),
            job_id: grant.job_id,
            counter,
            outcome: outcome.clone(),
            audit: result.audit.encode().to_vec(),
        };
        let audit = Record { kind: RecordKind::DoorAudit, body: audit_body(&record, &result.audit) };
        self.store().record_unlock(&record, &audit)?;
        self.inner.sync.wake();
        tracing::info!(%outcome, lock = challenge.lock_id, "lock answered");
        if result.code != 0 {
            return Err(CoreError::Denied { reason: outcome });
        }
        Ok(UnlockOutcome {
            door_id: door,
            lock_id: challenge.lock_id,
            grant_id: grant.grant_id,
            job_id: grant.job_id,
            audit_sequence: result.audit.sequence,
            stats,
        })
    }

    /// [`unlock`](Self::unlock) on the core's runtime, for callers that
    /// must not block.
    pub async fn unlock_async(&self, building_id: String, door_id: String, link: Arc<dyn BleLink>) -> Result<UnlockOutcome> {
        let session = self.clone();
        crate::runtime::run_blocking(move || session.unlock(&building_id, &door_id, link.as_ref())).await
    }

    /// The grants held for offline use, soonest first.
    pub fn door_grants(&self) -> Result<Vec<CachedGrant>> {
        self.store().cached_grants()
    }

    /// Every unlock attempt a lock judged, oldest first.
    pub fn unlock_history(&self) -> Result<Vec<UnlockRecord>> {
        self.store().unlock_records()
    }

    /// Caches one grant (QA scenarios, or a grant handed over out of band).
    /// It must parse and name this device's key; the lock checks the rest.
    pub fn add_door_grant(&self, job_id: Uuid, encoded: &[u8]) -> Result<CachedGrant> {
        let device = device_public_key(self.device_signer()?.as_ref())?;
        let grant = Grant::parse(encoded).map_err(|e| CoreError::invalid("grant", e.to_string()))?;
        if !grant.is_for_device(&device) {
            return Err(CoreError::invalid("grant", "issued to another device key"));
        }
        if grant.job_tag != crate::access::grant::job_tag(job_id) {
            return Err(CoreError::invalid("job_id", "the grant was issued for another job"));
        }
        let mut store = self.store();
        store.add_grant(job_id, &grant)?;
        store
            .cached_grants()?
            .into_iter()
            .find(|g| g.grant.grant_id == grant.grant_id)
            .ok_or_else(|| CoreError::Internal { reason: "the grant vanished after it was stored".into() })
    }

    /// The sync round's door access step: make sure dispatch knows the
    /// device key, then take dispatch's current grants and revocation state.
    /// Without a device key there is nothing to fetch.
    /// Tells dispatch the device's public key when it changed, and returns
    /// it (none without a device signer). Runs before anything is pushed:
    /// dispatch checks sealed records against the keys the driver's devices
    /// registered.
    pub(super) async fn register_device_key(
        &self,
        client: &DispatchClient,
    ) -> std::result::Result<Option<DevicePublicKey>, SyncFailure> {
        let Ok(signer) = self.device_signer() else { return Ok(None) };
        let device = device_public_key(signer.as_ref()).map_err(SyncFailure::Permanent)?;
        let key_id = device.key_id();
        let registered = self.off_thread(|s| s.store().registered_device_key()).await.map_err(SyncFailure::Permanent)?;
        if registered.as_deref() != Some(key_id.as_str()) {
            client.register_device_key(&device.to_compressed()).await?;
            self.off_thread(move |s| s.store().set_registered_device_key(&key_id)).await.map_err(SyncFailure::Permanent)?;
        }
        Ok(Some(device))
    }

    /// Pulls the grants for `device`, the key [`Self::register_device_key`]
    /// returned.
    pub(super) async fn sync_door_access(
        &self,
        client: &DispatchClient,
        device: &DevicePublicKey,
    ) -> std::result::Result<(), SyncFailure> {
        let body = client.grants().await?;
        let set = wire::parse_grants(&body, device)
            .map_err(|e| SyncFailure::Permanent(CoreError::BadResponse { reason: format!("grants: {e}") }))?;
        let now = self.inner.clock.now() + self.server_offset().map_err(SyncFailure::Permanent)?;
        self.off_thread(move |s| {
            let mut store = s.store();
            store.replace_grants(&set.grants, set.epoch, set.notice.as_ref())?;
            store.purge_grants(now - PURGE_AFTER)?;
            Ok(())
        })
        .await
        .map_err(SyncFailure::Permanent)?;
        Ok(())
    }
}

impl DriverSession {
    async fn off_thread<T: Send + 'static>(&self, work: impl FnOnce(&DriverSession) -> Result<T> + Send + 'static) -> Result<T> {
        let session = self.clone();
        crate::runtime::run_blocking(move || work(&session)).await
    }
}

/// The door audit record as dispatch receives it: the lock's MAC'd record
/// byte for byte (hex), with what the device knows about the attempt.
fn audit_body(record: &UnlockRecord, audit: &AuditRecord) -> String {
    serde_json::json!({
        "lock_id": record.lock_id,
        "door_id": record.door_id,
        "grant_id": record.grant_id,
        "counter": record.counter,
        "outcome": record.outcome,
        "audit_sequence": audit.sequence,
        "audit_record": crate::keys::hex(&audit.encode()),
        "recorded_at": record.at,
    })
    .to_string()
}

/// The grants worth trying at `now` (dispatch's time as the device best
/// knows it), or the error that tells the driver what to do.
fn usable_candidates(door_id: &str, grants: Vec<CachedGrant>, now: DateTime<Utc>) -> Result<Vec<CachedGrant>> {
    let no_grant = |reason: String| CoreError::NoGrant { door_id: door_id.to_string(), reason };
    if grants.is_empty() {
        return Err(no_grant("no grant for this door on this device; sync when online".into()));
    }
    let usable: Vec<CachedGrant> =
        grants.iter().filter(|g| g.not_before - PHONE_TOLERANCE <= now && now <= g.not_after + PHONE_TOLERANCE).cloned().collect();
    if !usable.is_empty() {
        return Ok(usable);
    }
    match grants.iter().filter(|g| g.not_before - PHONE_TOLERANCE > now).map(|g| g.not_before).min() {
        Some(from) => Err(no_grant(format!("the grant is valid from {}", from.to_rfc3339()))),
        None => Err(no_grant("the grant expired; sync when online to get a new one".into())),
    }
}

/// The lock judges by its own clock: prefer a grant valid at the time its
/// challenge states, the one with most time left.
fn pick_for_lock_time(candidates: &[CachedGrant], at_lock: DateTime<Utc>) -> &CachedGrant {
    candidates
        .iter()
        .filter(|g| g.not_before - LOCK_SKEW <= at_lock && at_lock <= g.not_after + LOCK_SKEW)
        .max_by_key(|g| g.not_after)
        .or_else(|| candidates.iter().max_by_key(|g| g.not_after))
        .expect("candidates are never empty")
}
