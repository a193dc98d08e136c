//! Door access in the store: cached grants, per-grant counters, the
//! revocation state and the append-only record of unlock attempts.

use super::Database;
use super::jobs::TxError;
use super::outbox::{Record, enqueue_record_in};
use crate::access::grant::{Grant, RevocationNotice};
use crate::error::Result;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

/// A grant held on the device for offline use.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedGrant {
    pub grant_id: String,
    pub job_id: Uuid,
    pub door_ids: Vec<u32>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub epoch: u16,
    pub grant: Grant,
}

/// One unlock attempt the lock judged, as the device recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct UnlockRecord {
    pub sequence: u64,
    pub at: DateTime<Utc>,
    pub door_id: u32,
    pub lock_id: u32,
    pub grant_id: String,
    pub job_id: Uuid,
    pub counter: u32,
    /// `opened`, or the lock's reason name.
    pub outcome: String,
    /// The lock's MAC'd audit record, as carried to dispatch.
    pub audit: Vec<u8>,
}

fn seconds(at: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(at, 0).single().unwrap_or_default()
}

impl Database {
    /// Replaces the cached grants with dispatch's current set and takes its
    /// revocation state; counters of grants seen before are kept.
    pub fn replace_grants(&mut self, grants: &[(Uuid, Grant)], epoch: u16, notice: Option<&RevocationNotice>) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM door_grants", [])?;
            for (job_id, grant) in grants {
                insert_grant(tx, *job_id, grant)?;
            }
            tx.execute(
                "UPDATE door_access SET epoch = max(epoch, ?1), notice = coalesce(?2, notice)",
                params![epoch, notice.map(|n| n.encoded().to_vec())],
            )?;
            Ok(())
        })
    }

    /// Adds (or refreshes) one grant without touching the others.
    pub fn add_grant(&mut self, job_id: Uuid, grant: &Grant) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM door_grants WHERE grant_id = ?1", [grant.grant_id_hex()])?;
            insert_grant(tx, job_id, grant)?;
            Ok(())
        })
    }

    /// Drops grants (and their counters) that ended before `before`.
    pub fn purge_grants(&mut self, before: DateTime<Utc>) -> Result<usize> {
        let before = before.timestamp();
        self.write(|tx| {
            let removed = tx.execute("DELETE FROM door_grants WHERE not_after_s < ?1", [before])?;
            tx.execute("DELETE FROM door_grant_counters WHERE not_after_s < ?1", [before])?;
            Ok(removed)
        })
    }

    pub fn cached_grants(&self) -> Result<Vec<CachedGrant>> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT job_id, encoded FROM door_grants ORDER BY not_before_s, grant_id")
            .map_err(|e| self.classify(e))?;
        let rows = statement
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.classify(e))?;
        rows.into_iter()
            .map(|(job_id, encoded)| {
                let job_id = Uuid::parse_str(&job_id).map_err(|_| self.corrupt("door_grants.job_id is not a UUID"))?;
                let grant = Grant::parse(&encoded).map_err(|e| self.corrupt(format!("door_grants.encoded: {e}")))?;
                Ok(CachedGrant {
                    grant_id: grant.grant_id_hex(),
                    job_id,
                    door_ids: grant.door_ids.clone(),
                    not_before: seconds(i64::from(grant.not_before)),
                    not_after: seconds(i64::from(grant.not_after())),
                    epoch: grant.epoch,
                    grant,
                })
            })
            .collect()
    }

    /// The revocation epoch and the issuer's notice of it, as dispatch last sent them.
    pub fn revocation(&self) -> Result<(u16, Option<RevocationNotice>)> {
        let (epoch, notice): (u16, Option<Vec<u8>>) = self
            .conn
            .query_row("SELECT epoch, notice FROM door_access", [], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(|e| self.classify(e))?;
        let notice = notice.map(|bytes| RevocationNotice::parse(&bytes)).transpose().map_err(|e| self.corrupt(format!("door_access.notice: {e}")))?;
        Ok((epoch, notice))
    }

    /// The next counter of a grant, made durable before it is used, so a
    /// crash can never make the device send one twice.
    pub fn next_grant_counter(&mut self, grant: &Grant) -> Result<u32> {
        let grant_id = grant.grant_id_hex();
        let not_after = i64::from(grant.not_after());
        self.write(|tx| {
            let last: Option<u32> =
                tx.query_row("SELECT counter FROM door_grant_counters WHERE grant_id = ?1", [&grant_id], |row| row.get(0)).optional()?;
            let next = last.unwrap_or(0).checked_add(1).ok_or_else(|| {
                TxError::Core(crate::CoreError::NoGrant { door_id: String::new(), reason: "the grant's counter is exhausted".into() })
            })?;
            tx.execute(
                "INSERT INTO door_grant_counters (grant_id, counter, not_after_s) VALUES (?1, ?2, ?3)
                 ON CONFLICT (grant_id) DO UPDATE SET counter = excluded.counter",
                params![grant_id, next, not_after],
            )?;
            Ok(next)
        })
    }

    pub fn registered_device_key(&self) -> Result<Option<String>> {
        self.conn.query_row("SELECT registered_key FROM door_access", [], |row| row.get(0)).map_err(|e| self.classify(e))
    }

    pub fn set_registered_device_key(&mut self, key_id: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("UPDATE door_access SET registered_key = ?1", [key_id])?;
            Ok(())
        })
    }

    /// Records an attempt the lock judged and, in the same transaction,
    /// queues the lock's audit record for dispatch (on the grant's job; a
    /// job this device does not hold cannot carry it, and is logged).
    pub fn record_unlock(&mut self, record: &UnlockRecord, audit: &Record) -> Result<u64> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO door_unlocks (at_us, door_id, lock_id, grant_id, job_id, counter, outcome, audit)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    record.at.timestamp_micros(),
                    record.door_id,
                    record.lock_id,
                    record.grant_id,
                    record.job_id.to_string(),
                    record.counter,
                    record.outcome,
                    record.audit
                ],
            )?;
            let sequence = tx.last_insert_rowid() as u64;
            let job_known: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM jobs WHERE id = ?1)", [record.job_id.to_string()], |row| row.get(0))?;
            if job_known {
                enqueue_record_in(tx, record.job_id, audit, record.at, None)?;
            } else {
                tracing::warn!(job = %record.job_id, "door audit not queued: the grant's job is not on this device");
            }
            Ok(sequence)
        })
    }

    pub fn unlock_records(&self) -> Result<Vec<UnlockRecord>> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT sequence, at_us, door_id, lock_id, grant_id, job_id, counter, outcome, audit FROM door_unlocks ORDER BY sequence",
            )
            .map_err(|e| self.classify(e))?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, u32>(2)?,
                    row.get::<_, u32>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, u32>(6)?,
                    row.get::<_, String>(7)?,
                    row.get::<_, Vec<u8>>(8)?,
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.classify(e))?;
        rows.into_iter()
            .map(|(sequence, at_us, door_id, lock_id, grant_id, job_id, counter, outcome, audit)| {
                Ok(UnlockRecord {
                    sequence: sequence as u64,
                    at: Utc.timestamp_micros(at_us).single().unwrap_or_default(),
                    door_id,
                    lock_id,
                    grant_id,
                    job_id: Uuid::parse_str(&job_id).map_err(|_| self.corrupt("door_unlocks.job_id is not a UUID"))?,
                    counter,
                    outcome,
                    audit,
                })
            })
            .collect()
    }
}

fn insert_grant(tx: &rusqlite::Transaction<'_>, job_id: Uuid, grant: &Grant) -> Result<(), TxError> {
    let doors = serde_json::to_string(&grant.door_ids).map_err(|e| TxError::Core(crate::CoreError::Internal { reason: e.to_string() }))?;
    tx.execute(
        "INSERT INTO door_grants (grant_id, job_id, door_ids, not_before_s, not_after_s, epoch, encoded)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![grant.grant_id_hex(), job_id.to_string(), doors, grant.not_before, grant.not_after(), grant.epoch, grant.encoded()],
    )?;
    Ok(())
}
