//! Door access on the server: the grant issuer's key and revocation epoch,
//! each driver's registered device key, and the jobs grants are issued for.
//! The tables are created on first use so this concern stays in one file.

use super::StorageError;
use crate::server::wire;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS door_issuer (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    secret     BLOB NOT NULL,
    epoch      INTEGER NOT NULL,
    epoch_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS device_keys (
    driver_id      TEXT PRIMARY KEY,
    public_key     BLOB NOT NULL,
    registered_at  TEXT NOT NULL
);
-- Every key a driver's devices ever registered: records sealed before a
-- key changed (a new phone, a key invalidated) still verify.
CREATE TABLE IF NOT EXISTS device_key_history (
    driver_id      TEXT NOT NULL,
    public_key     BLOB NOT NULL,
    registered_at  TEXT NOT NULL,
    PRIMARY KEY (driver_id, public_key)
);
-- Every door a grant was issued for, by its 32-bit tag: the first door to
-- use a tag keeps it. A grant naming a tag opens every door with that tag,
-- so no grant names a door whose tag another door already holds.
CREATE TABLE IF NOT EXISTS door_tags (
    tag       INTEGER PRIMARY KEY,
    building  TEXT NOT NULL,
    door      TEXT NOT NULL
);
"#;

/// A door as grants and locks name it: its tag, and the ids it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedDoor {
    pub tag: u32,
    pub building: String,
    pub door: String,
}

/// The issuer's state: secret key, current epoch and when it last moved.
pub struct Issuer {
    pub secret: [u8; 32],
    pub epoch: u16,
    pub epoch_at: DateTime<Utc>,
}

/// The issuer, created with a fresh key the first time it is needed.
pub fn issuer(tx: &Transaction<'_>, fresh_secret: [u8; 32], now: DateTime<Utc>) -> Result<Issuer, StorageError> {
    tx.execute_batch(SCHEMA)?;
    tx.execute(
        "INSERT OR IGNORE INTO door_issuer (singleton, secret, epoch, epoch_at) VALUES (1, ?1, 0, ?2)",
        params![fresh_secret.to_vec(), now.to_rfc3339()],
    )?;
    let (secret, epoch, epoch_at): (Vec<u8>, i64, String) =
        tx.query_row("SELECT secret, epoch, epoch_at FROM door_issuer", [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    Ok(Issuer {
        secret: secret.try_into().map_err(|_| StorageError::Corrupt("door_issuer.secret is not 32 bytes".into()))?,
        epoch: u16::try_from(epoch).map_err(|_| StorageError::Corrupt("door_issuer.epoch".into()))?,
        epoch_at: DateTime::parse_from_rfc3339(&epoch_at)
            .map_err(|_| StorageError::Corrupt("door_issuer.epoch_at".into()))?
            .with_timezone(&Utc),
    })
}

/// Moves the epoch on by one: every grant issued before is void.
pub fn bump_epoch(tx: &Transaction<'_>, now: DateTime<Utc>) -> Result<(), StorageError> {
    tx.execute("UPDATE door_issuer SET epoch = min(epoch + 1, 65535), epoch_at = ?1", [now.to_rfc3339()])?;
    Ok(())
}

pub fn set_device_key(tx: &Transaction<'_>, driver_id: &str, key: &[u8; 33], now: DateTime<Utc>) -> Result<(), StorageError> {
    tx.execute_batch(SCHEMA)?;
    tx.execute(
        "INSERT INTO device_keys (driver_id, public_key, registered_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (driver_id) DO UPDATE SET public_key = excluded.public_key, registered_at = excluded.registered_at",
        params![driver_id, key.to_vec(), now.to_rfc3339()],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO device_key_history (driver_id, public_key, registered_at) VALUES (?1, ?2, ?3)",
        params![driver_id, key.to_vec(), now.to_rfc3339()],
    )?;
    Ok(())
}

/// Whether one of the driver's devices ever registered `key` (compressed SEC1).
pub fn was_registered(tx: &Transaction<'_>, driver_id: &str, key: &[u8]) -> Result<bool, StorageError> {
    tx.execute_batch(SCHEMA)?;
    Ok(tx
        .query_row(
            "SELECT 1 FROM device_key_history WHERE driver_id = ?1 AND public_key = ?2",
            params![driver_id, key],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub fn device_key(tx: &Transaction<'_>, driver_id: &str) -> Result<Option<Vec<u8>>, StorageError> {
    tx.execute_batch(SCHEMA)?;
    Ok(tx.query_row("SELECT public_key FROM device_keys WHERE driver_id = ?1", [driver_id], |row| row.get(0)).optional()?)
}

/// The driver's active jobs, with their current state names.
pub fn active_jobs(tx: &Transaction<'_>, driver_id: &str) -> Result<Vec<(wire::Job, String)>, StorageError> {
    let mut statement = tx.prepare("SELECT body, state FROM jobs WHERE driver_id = ?1 AND status = 'active' ORDER BY id")?;
    let rows = statement
        .query_map([driver_id], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(body, state)| {
            let job = serde_json::from_str(&body).map_err(|err| StorageError::Corrupt(format!("jobs.body: {err}")))?;
            Ok((job, state))
        })
        .collect()
}

/// Registers each door under its tag, unless another door holds the tag.
/// Returns, per door, whether the tag is that door's alone.
pub fn claim_door_tags(tx: &Transaction<'_>, doors: &[TaggedDoor]) -> Result<Vec<bool>, StorageError> {
    tx.execute_batch(SCHEMA)?;
    let mut claim = tx.prepare_cached("INSERT OR IGNORE INTO door_tags (tag, building, door) VALUES (?1, ?2, ?3)")?;
    let mut holder = tx.prepare_cached("SELECT building, door FROM door_tags WHERE tag = ?1")?;
    doors
        .iter()
        .map(|door| {
            claim.execute(params![door.tag, door.building, door.door])?;
            let (building, id): (String, String) = holder.query_row([door.tag], |row| Ok((row.get(0)?, row.get(1)?)))?;
            Ok(building == door.building && id == door.door)
        })
        .collect()
}
