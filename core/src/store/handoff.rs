//! Reads and writes of store handoffs: the staff device's handoffs in
//! progress and the signed receipts both devices keep.
//!
//! Decides nothing about what a valid handoff is (that is `handoff`); it
//! stores what it is given, and applies a driver's accepted handoff (the
//! receipt, the job transitions and their outbox mutations) in one
//! transaction.

use super::Database;
use super::jobs::{TxError, to_json, transition_in};
use super::outbox::Record;
use crate::error::{CoreError, Result};
use crate::jobs::{JobEvent, Transition};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffStatus {
    /// Staff are scanning.
    Open,
    /// The signed offer is on screen; scans are frozen.
    Offered,
    /// The driver's acceptance was scanned: a receipt exists.
    Completed,
}

impl HandoffStatus {
    fn as_str(self) -> &'static str {
        match self {
            HandoffStatus::Open => "open",
            HandoffStatus::Offered => "offered",
            HandoffStatus::Completed => "completed",
        }
    }
}

/// A handoff as the staff device stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct HandoffRow {
    pub id: Uuid,
    pub direction: String,
    pub driver_key: Vec<u8>,
    pub status: HandoffStatus,
    pub started_at: DateTime<Utc>,
    pub offer: Option<Vec<u8>>,
    /// Job ids in the order staff added them, with any partial reason.
    pub jobs: Vec<(Uuid, Option<String>)>,
    pub packages: Vec<HandoffPackageRow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HandoffPackageRow {
    pub barcode: String,
    pub job_id: Option<Uuid>,
    /// `confirmed`, `missing` or `extra`.
    pub kind: String,
    pub note: Option<String>,
    pub damaged: Option<String>,
}

/// direction, driver key, status, start, offer
type RawHandoff = (String, Vec<u8>, String, i64, Option<Vec<u8>>);

/// hash, handoff, direction, recorded at, send error, refused
type RawUnsentReceipt = (Vec<u8>, String, String, i64, Option<String>, bool);

/// A receipt the staff device has yet to have acknowledged by dispatch.
#[derive(Debug, Clone, PartialEq)]
pub struct UnsentReceiptRow {
    pub receipt_hash: [u8; 32],
    pub handoff_id: Uuid,
    pub direction: String,
    pub recorded_at: DateTime<Utc>,
    pub send_error: Option<String>,
    pub refused: bool,
}

/// A receipt as kept on either device, with what it moved per job.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReceipt {
    pub receipt_hash: [u8; 32],
    pub handoff_id: Uuid,
    pub direction: String,
    pub offer: Vec<u8>,
    pub acceptance: Vec<u8>,
    pub recorded_at: DateTime<Utc>,
    /// Per job: the barcodes that changed hands.
    pub custody: Vec<(Uuid, Vec<String>)>,
}

impl Database {
    pub fn insert_handoff(&mut self, id: Uuid, direction: &str, driver_key: &[u8], jobs: &[Uuid], at: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO handoffs (id, direction, driver_key, status, started_at_us) VALUES (?1, ?2, ?3, 'open', ?4)",
            )?
            .execute(params![id.to_string(), direction, driver_key, at.timestamp_micros()])?;
            for (position, job) in jobs.iter().enumerate() {
                tx.prepare_cached("INSERT INTO handoff_jobs (handoff_id, job_id, position) VALUES (?1, ?2, ?3)")?
                    .execute(params![id.to_string(), job.to_string(), position as i64])?;
            }
            Ok(())
        })
    }

    /// Handoffs not completed (open or offered), oldest first.
    pub fn handoffs_in_progress(&self) -> Result<Vec<Uuid>> {
        let ids: Vec<String> = self
            .conn
            .prepare_cached("SELECT id FROM handoffs WHERE status != 'completed' ORDER BY started_at_us, id")
            .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
            .map_err(|e| self.classify(e))?;
        ids.iter().map(|id| self.uuid(id)).collect()
    }

    /// Removes an open handoff with its jobs and scans. Returns whether one
    /// was removed: a handoff whose offer was shown stays.
    pub fn delete_open_handoff(&mut self, id: Uuid) -> Result<bool> {
        self.write(|tx| Ok(tx.prepare_cached("DELETE FROM handoffs WHERE id = ?1 AND status = 'open'")?.execute([id.to_string()])? == 1))
    }

    pub fn handoff(&self, id: Uuid) -> Result<HandoffRow> {
        let row: Option<RawHandoff> = self
            .conn
            .prepare_cached("SELECT direction, driver_key, status, started_at_us, offer FROM handoffs WHERE id = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([id.to_string()], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)))
                    .optional()
            })
            .map_err(|e| self.classify(e))?;
        let (direction, driver_key, status, started, offer) = row.ok_or_else(|| CoreError::not_found("handoff", id))?;
        let status = [HandoffStatus::Open, HandoffStatus::Offered, HandoffStatus::Completed]
            .into_iter()
            .find(|s| s.as_str() == status)
            .ok_or_else(|| self.corrupt(format!("handoff status {status:?}")))?;
        let jobs = self
            .conn
            .prepare_cached("SELECT job_id, partial_reason FROM handoff_jobs WHERE handoff_id = ?1 ORDER BY position")
            .and_then(|mut stmt| {
                stmt.query_map([id.to_string()], |row| Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| self.classify(e))?
            .into_iter()
            .map(|(job, reason)| Ok((self.uuid(&job)?, reason)))
            .collect::<Result<Vec<_>>>()?;
        let packages = self
            .conn
            .prepare_cached(
                "SELECT barcode, job_id, kind, note, damaged FROM handoff_packages WHERE handoff_id = ?1 ORDER BY sequence",
            )
            .and_then(|mut stmt| {
                stmt.query_map([id.to_string()], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| self.classify(e))?
            .into_iter()
            .map(|(barcode, job, kind, note, damaged)| {
                Ok(HandoffPackageRow { barcode, job_id: job.map(|j| self.uuid(&j)).transpose()?, kind, note, damaged })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(HandoffRow { id, direction, driver_key, status, started_at: self.instant(started)?, offer, jobs, packages })
    }

    /// Records one barcode of a handoff; a barcode already recorded in it is
    /// a `DuplicateScan` and changes nothing.
    pub fn add_handoff_package(&mut self, id: Uuid, barcode: &str, job_id: Option<Uuid>, kind: &str, note: Option<&str>) -> Result<()> {
        self.write(|tx| {
            let known = tx
                .prepare_cached("SELECT 1 FROM handoff_packages WHERE handoff_id = ?1 AND barcode = ?2")?
                .exists(params![id.to_string(), barcode])?;
            if known {
                return Err(TxError::Core(CoreError::DuplicateScan { barcode: barcode.to_owned() }));
            }
            tx.prepare_cached(
                "INSERT INTO handoff_packages (handoff_id, barcode, job_id, kind, note, sequence) \
                 VALUES (?1, ?2, ?3, ?4, ?5, (SELECT coalesce(max(sequence), 0) + 1 FROM handoff_packages WHERE handoff_id = ?1))",
            )?
            .execute(params![id.to_string(), barcode, job_id.map(|j| j.to_string()), kind, note])?;
            Ok(())
        })
    }

    pub fn mark_handoff_package_damaged(&mut self, id: Uuid, barcode: &str, note: &str) -> Result<()> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached("UPDATE handoff_packages SET damaged = ?3 WHERE handoff_id = ?1 AND barcode = ?2 AND kind = 'confirmed'")?
                .execute(params![id.to_string(), barcode, note])?;
            if changed == 0 {
                return Err(TxError::Core(CoreError::invalid("barcode", format!("{barcode} has not been scanned in this handoff"))));
            }
            Ok(())
        })
    }

    pub fn set_handoff_partial_reason(&mut self, id: Uuid, job_id: Uuid, reason: Option<&str>) -> Result<()> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached("UPDATE handoff_jobs SET partial_reason = ?3 WHERE handoff_id = ?1 AND job_id = ?2")?
                .execute(params![id.to_string(), job_id.to_string(), reason])?;
            if changed == 0 {
                return Err(TxError::Core(CoreError::not_found("job in this handoff", job_id)));
            }
            Ok(())
        })
    }

    /// Freezes a handoff with its signed offer.
    pub fn set_handoff_offer(&mut self, id: Uuid, offer: &[u8], offer_hash: &[u8; 32]) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached("UPDATE handoffs SET status = 'offered', offer = ?2, offer_hash = ?3 WHERE id = ?1 AND status = 'open'")?
                .execute(params![id.to_string(), offer, &offer_hash[..]])?;
            Ok(())
        })
    }

    /// The offered handoff an acceptance names, if any.
    pub fn handoff_by_offer_hash(&self, offer_hash: &[u8; 32]) -> Result<Option<Uuid>> {
        let id: Option<String> = self
            .conn
            .prepare_cached("SELECT id FROM handoffs WHERE offer_hash = ?1")
            .and_then(|mut stmt| stmt.query_row([&offer_hash[..]], |row| row.get(0)).optional())
            .map_err(|e| self.classify(e))?;
        id.map(|id| self.uuid(&id)).transpose()
    }

    /// The staff side's end of a handoff: the receipt kept and queued to send.
    pub fn complete_handoff(&mut self, id: Uuid, receipt: &StoredReceipt) -> Result<()> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached("UPDATE handoffs SET status = 'completed' WHERE id = ?1 AND status = 'offered'")?
                .execute([id.to_string()])?;
            if changed == 0 {
                return Err(TxError::Core(CoreError::HandoffReplayed { handoff_id: id.to_string() }));
            }
            insert_receipt_in(tx, receipt, true)
        })
    }

    /// The driver's side: the receipt, each job's transitions and one outbox
    /// mutation per job, all or nothing. A handoff accepted before is
    /// `HandoffReplayed`.
    /// The receipt rides with each job's last transition (the pickup or the
    /// return itself), so dispatch gets one mutation per job carrying it.
    pub(crate) fn accept_handoff(
        &mut self,
        receipt: &StoredReceipt,
        record: &Record,
        transitions: &[(Uuid, Vec<Transition>)],
        at: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>> {
        self.write(|tx| {
            insert_receipt_in(tx, receipt, false)?;
            let mut events = Vec::new();
            for (job_id, steps) in transitions {
                for (index, &transition) in steps.iter().enumerate() {
                    events.push(transition_in(tx, *job_id, transition, at)?);
                    let evidence = (index + 1 == steps.len()).then_some(record);
                    super::outbox::enqueue_action_in(tx, *job_id, transition, evidence, at, None)?;
                }
            }
            Ok(events)
        })
    }

    pub fn receipt_exists_for_handoff(&self, handoff_id: Uuid) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM handoff_receipts WHERE handoff_id = ?1")
            .and_then(|mut stmt| stmt.exists([handoff_id.to_string()]))
            .map_err(|e| self.classify(e))
    }

    /// Every receipt that moved a job's packages, oldest first.
    pub fn receipts_for_job(&self, job_id: Uuid) -> Result<Vec<StoredReceipt>> {
        let hashes: Vec<Vec<u8>> = self
            .conn
            .prepare_cached(
                "SELECT r.receipt_hash FROM handoff_custody c JOIN handoff_receipts r ON r.receipt_hash = c.receipt_hash \
                 WHERE c.job_id = ?1 ORDER BY r.recorded_at_us, r.rowid",
            )
            .and_then(|mut stmt| stmt.query_map([job_id.to_string()], |row| row.get(0))?.collect())
            .map_err(|e| self.classify(e))?;
        hashes.iter().map(|hash| self.receipt(hash)).collect()
    }

    /// The receipts the staff device has yet to send, oldest first.
    pub fn receipts_to_send(&self) -> Result<Vec<StoredReceipt>> {
        let hashes: Vec<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT receipt_hash FROM handoff_receipts WHERE to_send = 1 AND send_refused = 0 ORDER BY recorded_at_us, rowid")
            .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
            .map_err(|e| self.classify(e))?;
        hashes.iter().map(|hash| self.receipt(hash)).collect()
    }

    pub fn mark_receipt_sent(&mut self, receipt_hash: &[u8; 32]) -> Result<()> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached("UPDATE handoff_receipts SET to_send = 0, send_error = NULL, send_refused = 0 WHERE receipt_hash = ?1")?
                .execute([&receipt_hash[..]])?;
            if changed == 0 {
                return Err(TxError::Core(CoreError::not_found("receipt", crate::keys::hex(receipt_hash))));
            }
            Ok(())
        })
    }

    /// Every receipt the staff device has not had acknowledged, oldest
    /// first, with why its last send failed and whether dispatch refused it.
    pub fn unsent_receipts(&self) -> Result<Vec<UnsentReceiptRow>> {
        let rows: Vec<RawUnsentReceipt> = self
            .conn
            .prepare_cached(
                "SELECT receipt_hash, handoff_id, direction, recorded_at_us, send_error, send_refused FROM handoff_receipts \
                 WHERE to_send = 1 ORDER BY recorded_at_us, rowid",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?)))?
                    .collect()
            })
            .map_err(|e| self.classify(e))?;
        rows.into_iter()
            .map(|(hash, handoff, direction, recorded, send_error, refused)| {
                Ok(UnsentReceiptRow {
                    receipt_hash: hash.try_into().map_err(|_| self.corrupt("a receipt hash is not 32 bytes"))?,
                    handoff_id: self.uuid(&handoff)?,
                    direction,
                    recorded_at: self.instant(recorded)?,
                    send_error,
                    refused,
                })
            })
            .collect()
    }

    /// Notes why sending a receipt failed; `refused` stops it being resent.
    pub fn record_receipt_send_error(&mut self, receipt_hash: &[u8; 32], error: &str, refused: bool) -> Result<()> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached("UPDATE handoff_receipts SET send_error = ?2, send_refused = ?3 WHERE receipt_hash = ?1 AND to_send = 1")?
                .execute(params![&receipt_hash[..], error, refused])?;
            if changed == 0 {
                return Err(TxError::Core(CoreError::not_found("receipt to send", crate::keys::hex(receipt_hash))));
            }
            Ok(())
        })
    }

    /// The raw receipt with this hash, as stored.
    pub fn stored_receipt(&self, receipt_hash: &[u8; 32]) -> Result<StoredReceipt> {
        self.receipt(receipt_hash)
    }

    fn receipt(&self, hash: &[u8]) -> Result<StoredReceipt> {
        let (handoff, direction, offer, acceptance, recorded): (String, String, Vec<u8>, Vec<u8>, i64) = self
            .conn
            .prepare_cached(
                "SELECT handoff_id, direction, offer, acceptance, recorded_at_us FROM handoff_receipts WHERE receipt_hash = ?1",
            )
            .and_then(|mut stmt| stmt.query_row([hash], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))))
            .map_err(|e| self.classify(e))?;
        let custody = self
            .conn
            .prepare_cached("SELECT job_id, confirmed FROM handoff_custody WHERE receipt_hash = ?1 ORDER BY rowid")
            .and_then(|mut stmt| {
                stmt.query_map([hash], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| self.classify(e))?
            .into_iter()
            .map(|(job, confirmed)| Ok((self.uuid(&job)?, self.from_json("handoff custody", &confirmed)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(StoredReceipt {
            receipt_hash: hash.try_into().map_err(|_| self.corrupt("a receipt hash is not 32 bytes"))?,
            handoff_id: self.uuid(&handoff)?,
            direction,
            offer,
            acceptance,
            recorded_at: self.instant(recorded)?,
            custody,
        })
    }
}

fn insert_receipt_in(tx: &rusqlite::Transaction<'_>, receipt: &StoredReceipt, to_send: bool) -> Result<(), TxError> {
    let replayed = tx
        .prepare_cached("SELECT 1 FROM handoff_receipts WHERE handoff_id = ?1 OR receipt_hash = ?2")?
        .exists(params![receipt.handoff_id.to_string(), &receipt.receipt_hash[..]])?;
    if replayed {
        return Err(TxError::Core(CoreError::HandoffReplayed { handoff_id: receipt.handoff_id.to_string() }));
    }
    tx.prepare_cached(
        "INSERT INTO handoff_receipts (receipt_hash, handoff_id, direction, offer, acceptance, recorded_at_us, to_send) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        &receipt.receipt_hash[..],
        receipt.handoff_id.to_string(),
        receipt.direction,
        receipt.offer,
        receipt.acceptance,
        receipt.recorded_at.timestamp_micros(),
        to_send,
    ])?;
    for (job_id, confirmed) in &receipt.custody {
        tx.prepare_cached("INSERT INTO handoff_custody (receipt_hash, job_id, direction, confirmed) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![&receipt.receipt_hash[..], job_id.to_string(), receipt.direction, to_json(confirmed)])?;
    }
    Ok(())
}
