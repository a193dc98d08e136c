//! Proof-of-delivery storage: drafts, sealed records, the media files they
//! cite, and the one transaction that seals a delivery (state, record,
//! outbox entries and uploads together).

use super::Database;
use super::jobs::{TxError, to_json, transition_in};
use crate::error::{CoreError, Result};
use crate::jobs::{JobEvent, Transition};
use crate::pod::{MediaRef, PodDraft};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

/// What sealing writes besides the job's state.
pub struct SealedWrite<'a> {
    pub job_id: Uuid,
    /// The driver's transitions, in order (deliver; or fail then reattempt
    /// or start-return). The first carries the record.
    pub transitions: &'a [Transition],
    pub outcome: &'a str,
    pub record_bytes: &'a [u8],
    pub record: &'a super::outbox::Record,
    /// Media the record cites; each gets an upload the record waits on.
    pub media: &'a [MediaRef],
}

impl Database {
    pub fn pod_draft(&self, job_id: Uuid) -> Result<Option<PodDraft>> {
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT draft FROM pod_drafts WHERE job_id = ?1")
            .and_then(|mut stmt| stmt.query_row([job_id.to_string()], |row| row.get(0)).optional())
            .map_err(|e| self.classify(e))?;
        text.map(|text| self.from_json("proof-of-delivery draft", &text)).transpose()
    }

    pub fn save_pod_draft(&mut self, draft: &PodDraft) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO pod_drafts (job_id, draft, updated_at_us) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(job_id) DO UPDATE SET draft = ?2, updated_at_us = ?3",
            )?
            .execute(params![draft.job_id.to_string(), to_json(draft), draft.updated_at.timestamp_micros()])?;
            Ok(())
        })
    }

    /// Records a file now in the media store (once per content).
    pub fn record_media(&mut self, file: &MediaRef, at: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO media_files (sha256, content_type, size_bytes, added_at_us) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![file.sha256, file.content_type, file.size_bytes as i64, at.timestamp_micros()])?;
            Ok(())
        })
    }

    /// The job (id and reference) whose manifest holds `barcode`.
    pub fn job_of_barcode(&self, barcode: &str) -> Result<Option<(Uuid, String)>> {
        let found: Option<(String, String)> = self
            .conn
            .prepare_cached("SELECT j.id, j.reference FROM packages p JOIN jobs j ON j.id = p.job_id WHERE p.barcode = ?1")
            .and_then(|mut stmt| stmt.query_row([barcode], |row| Ok((row.get(0)?, row.get(1)?))).optional())
            .map_err(|e| self.classify(e))?;
        found.map(|(id, reference)| Ok((self.uuid(&id)?, reference))).transpose()
    }

    /// Seals a delivery or a failed attempt in one transaction: the job's
    /// transitions and events, one uploads per media file chained one after
    /// the other, the record's mutation waiting on the last upload, later
    /// transitions waiting on the record, the sealed record kept, the draft
    /// removed. All or nothing.
    pub fn seal_pod(&mut self, write: &SealedWrite<'_>, at: DateTime<Utc>) -> Result<Vec<JobEvent>> {
        self.write(|tx| {
            let job = write.job_id;
            let mut previous: Option<u64> = None;
            for file in write.media {
                let upload = super::outbox::MediaUpload {
                    sha256: file.sha256.clone(),
                    content_type: file.content_type.clone(),
                    size_bytes: file.size_bytes,
                };
                previous = Some(super::outbox::enqueue_upload_in(tx, job, &upload, at, previous)?);
            }
            let mut events = Vec::new();
            for (i, &transition) in write.transitions.iter().enumerate() {
                if !transition.is_driver_action() {
                    return Err(TxError::Core(CoreError::invalid("transition", "not a driver action")));
                }
                events.push(transition_in(tx, job, transition, at)?);
                let record = (i == 0).then_some(write.record);
                previous = Some(super::outbox::enqueue_action_in(tx, job, transition, record, at, previous)?);
            }
            tx.prepare_cached("INSERT INTO pod_records (job_id, outcome, sealed_at_us, record) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![job.to_string(), write.outcome, at.timestamp_micros(), write.record_bytes])?;
            tx.prepare_cached("DELETE FROM pod_drafts WHERE job_id = ?1")?.execute([job.to_string()])?;
            Ok(events)
        })
    }

    /// The sealed records of a job, oldest first, as canonical bytes.
    pub fn pod_records(&self, job_id: Uuid) -> Result<Vec<Vec<u8>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT record FROM pod_records WHERE job_id = ?1 ORDER BY id")
            .map_err(|e| self.classify(e))?;
        let rows = stmt.query_map([job_id.to_string()], |row| row.get(0)).map_err(|e| self.classify(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.classify(e))
    }

    /// Dispatch confirmed it holds the whole file: local copies may go once
    /// the retention period has passed. The upload itself leaves the outbox
    /// through `record_outcomes`, which also renumbers what it promotes.
    pub fn media_uploaded(&mut self, sha256: &str, at: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached("UPDATE media_files SET uploaded_at_us = coalesce(uploaded_at_us, ?2) WHERE sha256 = ?1")?
                .execute(params![sha256, at.timestamp_micros()])?;
            Ok(())
        })
    }

    /// Media files that may leave the device: dispatch has held them since
    /// `uploaded_before`, or nothing cites them (a photo taken out of a
    /// draft) and they were added before it; in either case no draft and no
    /// queued upload still needs them.
    pub fn media_to_purge(&self, uploaded_before: DateTime<Utc>) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT m.sha256 FROM media_files m \
                 WHERE coalesce(m.uploaded_at_us, m.added_at_us) <= ?1 \
                   AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.upload_sha256 = m.sha256) \
                   AND (m.uploaded_at_us IS NOT NULL OR NOT EXISTS \
                        (SELECT 1 FROM pod_records r WHERE instr(r.record, m.sha256) > 0)) \
                   AND NOT EXISTS (SELECT 1 FROM pod_drafts d WHERE instr(d.draft, m.sha256) > 0) \
                 ORDER BY m.sha256",
            )
            .map_err(|e| self.classify(e))?;
        let rows = stmt.query_map([uploaded_before.timestamp_micros()], |row| row.get(0)).map_err(|e| self.classify(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.classify(e))
    }

    pub fn forget_media(&mut self, sha256: &str) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached("DELETE FROM media_files WHERE sha256 = ?1")?.execute([sha256])?;
            Ok(())
        })
    }
}

