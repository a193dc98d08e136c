//! Door access: registering a driver's device key and issuing grants for
//! the doors of the driver's active drop-offs, signed by the server's
//! Ed25519 issuer key (docs/door-protocol.md has the grant format).
//!
//! A grant covers the drop-off window with an hour either side, capped at
//! the format's 12 hours, and is issued at the current revocation epoch;
//! revoking moves the epoch on, so every older grant is void at any lock
//! that hears the new epoch. Grant ids are derived, not random, so the same
//! grant comes back on every pull and the device's counters stay valid.

use super::AppState;
use super::problem::Problem;
use super::storage::doors;
use super::wire::{self, DeviceKey, DoorIssuer, GrantItem, Grants, RegisteredKey, Revocation};
use chrono::{DateTime, Duration, Utc};
use doorstep_core::access::grant::{GrantIssuer, GrantTerms, MAX_VALIDITY_MINUTES, door_tag};
use doorstep_core::keys::{DevicePublicKey, from_hex, hex, sha256};
use doorstep_core::{JobState, access::unix_seconds};

/// How far before and after the drop-off window a grant is valid.
const MARGIN: Duration = Duration::hours(1);

fn issuer_of(state: &doors::Issuer) -> Result<GrantIssuer, Problem> {
    GrantIssuer::from_secret(&state.secret).map_err(|_| Problem::internal())
}

fn fresh_secret() -> Result<[u8; 32], Problem> {
    doorstep_core::keys::random_bytes::<32>().map_err(|_| Problem::internal())
}

pub async fn register_device_key(state: &AppState, driver_id: String, request: DeviceKey) -> Result<RegisteredKey, Problem> {
    let bytes = from_hex(&request.public_key).ok_or_else(|| Problem::invalid("public_key", "must be hex"))?;
    let key = DevicePublicKey::parse(&bytes).map_err(|_| Problem::invalid("public_key", "must be a P-256 public key (SEC1)"))?;
    let compressed = key.to_compressed();
    let now = Utc::now();
    state.db.call(move |tx| doors::set_device_key(tx, &driver_id, &compressed, now)).await?;
    Ok(RegisteredKey { key_id: key.key_id() })
}

pub async fn grants(state: &AppState, driver_id: String) -> Result<Grants, Problem> {
    let secret = fresh_secret()?;
    let now = Utc::now();
    let (issuer_state, key, jobs) = state
        .db
        .call(move |tx| {
            let issuer = doors::issuer(tx, secret, now)?;
            let key = doors::device_key(tx, &driver_id)?;
            let mut jobs = Vec::new();
            if key.is_none() {
                return Ok((issuer, key, jobs));
            }
            for (job, state_name) in doors::active_jobs(tx, &driver_id)? {
                let doors = grantable_doors(&job, &state_name, now);
                let own = doors::claim_door_tags(tx, &doors)?;
                let mut tags = Vec::new();
                for (door, own) in doors.iter().zip(own) {
                    if own {
                        tags.push(door.tag);
                    } else {
                        tracing::warn!(building = %door.building, door = %door.door, tag = door.tag, "door tag held by another door; no grant names it");
                    }
                }
                if !tags.is_empty() {
                    jobs.push((job, tags));
                }
            }
            Ok((issuer, key, jobs))
        })
        .await?;
    let issuer = issuer_of(&issuer_state)?;
    let notice = (issuer_state.epoch > 0).then(|| issuer.revocation_notice(issuer_state.epoch, unix_seconds(issuer_state.epoch_at)));
    let revocation = Revocation { epoch: issuer_state.epoch, notice: notice.map(|n| hex(n.encoded())) };
    let Some(key) = key else { return Ok(Grants { grants: Vec::new(), revocation }) };
    let device = DevicePublicKey::parse(&key).map_err(|_| Problem::internal())?;
    let mut grants = Vec::new();
    for (job, door_ids) in jobs {
        let (not_before, not_after) = validity(&job);
        let minutes = ((not_after - not_before).num_minutes()).clamp(1, i64::from(MAX_VALIDITY_MINUTES)) as u16;
        let not_before_s = unix_seconds(not_before);
        let derivation = [
            issuer_state.secret.as_slice(),
            job.id.as_bytes(),
            &device.to_compressed(),
            &issuer_state.epoch.to_be_bytes(),
            &not_before_s.to_be_bytes(),
            &minutes.to_be_bytes(),
        ]
        .concat();
        let terms = GrantTerms {
            grant_id: sha256(&derivation)[..8].try_into().expect("8 bytes"),
            job_id: job.id,
            device_key: device,
            door_ids: door_ids.clone(),
            not_before: not_before_s,
            validity_minutes: minutes,
            epoch: issuer_state.epoch,
            use_limit: 0,
        };
        let grant = issuer.issue(&terms).map_err(|_| Problem::internal())?;
        grants.push(GrantItem {
            grant_id: grant.grant_id_hex(),
            job_id: job.id,
            door_ids,
            not_before: doorstep_core::access::grant::seconds_to_time(grant.not_before),
            not_after: doorstep_core::access::grant::seconds_to_time(grant.not_after()),
            encoded: hex(grant.encoded()),
        });
    }
    Ok(Grants { grants, revocation })
}

/// When a grant for the job's drop-off is valid.
fn validity(job: &wire::Job) -> (DateTime<Utc>, DateTime<Utc>) {
    let not_before = job.dropoff.window.start - MARGIN;
    let not_after = (job.dropoff.window.end + MARGIN).min(not_before + Duration::minutes(i64::from(MAX_VALIDITY_MINUTES)));
    (not_before, not_after)
}

/// The doors a grant for the job would name (at most 8): none once the job
/// is finished, its drop-off has no doors, or the grant would have expired.
fn grantable_doors(job: &wire::Job, state_name: &str, now: DateTime<Utc>) -> Vec<doors::TaggedDoor> {
    let finished = JobState::parse(state_name).is_none_or(|s| s.is_terminal());
    let Some(building) = job.dropoff.building_id.as_deref() else { return Vec::new() };
    if finished || validity(job).1 <= now {
        return Vec::new();
    }
    job.dropoff
        .door_ids
        .iter()
        .take(8)
        .map(|door| doors::TaggedDoor { tag: door_tag(building, door), building: building.to_owned(), door: door.clone() })
        .collect()
}

pub async fn issuer(state: &AppState) -> Result<DoorIssuer, Problem> {
    let secret = fresh_secret()?;
    let now = Utc::now();
    let issuer_state = state.db.call(move |tx| doors::issuer(tx, secret, now)).await?;
    let issuer = issuer_of(&issuer_state)?;
    Ok(DoorIssuer { public_key: hex(&issuer.public_key()), epoch: issuer_state.epoch })
}

/// Voids every grant issued so far; the next pull brings new ones.
pub async fn revoke_all(state: &AppState) -> Result<DoorIssuer, Problem> {
    let secret = fresh_secret()?;
    let now = Utc::now();
    let issuer_state = state
        .db
        .call(move |tx| {
            doors::issuer(tx, secret, now)?;
            doors::bump_epoch(tx, now)?;
            doors::issuer(tx, secret, now)
        })
        .await?;
    let issuer = issuer_of(&issuer_state)?;
    Ok(DoorIssuer { public_key: hex(&issuer.public_key()), epoch: issuer_state.epoch })
}

/// What the server can check of a door audit a phone carried: the lock's
/// record must be whole and agree with what the phone says about it. Its
/// MAC is checked by whoever holds the lock's audit key (the building's
/// access system), not by this server.
pub fn verify_audit(body: &serde_json::Value) -> Result<(), Problem> {
    let field = |name: &str| format!("record.body.{name}");
    let hex_record = body.get("audit_record").and_then(|v| v.as_str()).ok_or_else(|| Problem::invalid(field("audit_record"), "required, hex"))?;
    let bytes = from_hex(hex_record).ok_or_else(|| Problem::invalid(field("audit_record"), "must be hex"))?;
    let record = doorstep_core::access::audit::AuditRecord::parse(&bytes)
        .ok_or_else(|| Problem::invalid(field("audit_record"), "not a lock audit record"))?;
    let number = |name: &str| body.get(name).and_then(|v| v.as_u64());
    if number("lock_id") != Some(u64::from(record.lock_id)) {
        return Err(Problem::invalid(field("lock_id"), "differs from the lock's record"));
    }
    if number("counter") != Some(u64::from(record.counter)) {
        return Err(Problem::invalid(field("counter"), "differs from the lock's record"));
    }
    let outcome = body.get("outcome").and_then(|v| v.as_str()).unwrap_or_default();
    let expected = match record.reason {
        0 => "opened",
        code => doorstep_core::access::Reason::from_code(code).map_or("", |r| r.name()),
    };
    if outcome != expected {
        return Err(Problem::invalid(field("outcome"), "differs from the lock's record"));
    }
    Ok(())
}
