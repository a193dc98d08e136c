//! The session's side of proof of delivery: capture calls that change a
//! job's draft (each one durable before it returns), finalize and failed
//! delivery (seal, then one transaction for state, record and uploads), and
//! the local media's retention.

use super::DriverSession;
use crate::error::{CoreError, Result};
use crate::jobs::{DeliveryMethod, FailureReason, Job, JobState, Transition};
use crate::nav::{CompletionCheck, Fix};
use crate::dispatch::clean_text;
use crate::pod::draft::{self, MAX_NAME_CHARS, MAX_NOTE_CHARS};
use crate::pod::seal::{FailureRecord, Outcome, POD_FORMAT};
use crate::pod::*;
use crate::store::SealedWrite;
use crate::store::{Record, RecordKind};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// How long a media file stays on the device after dispatch has it, unless
/// the shell asks for another period.
pub const DEFAULT_MEDIA_RETENTION: chrono::Duration = chrono::Duration::days(7);

/// A sealed proof of delivery (or failed attempt), as committed.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedPod {
    /// The canonical record bytes, as signed and queued.
    pub record: Vec<u8>,
    pub payload: PodPayload,
    /// The job as it now is.
    pub job: Job,
    /// What the completion policy said; `Warn` is for the driver to see.
    pub completion: Option<CompletionCheck>,
    /// Media uploads queued ahead of the record.
    pub uploads: u32,
}

impl DriverSession {
    /// The folder the session keeps photos and signatures in.
    pub fn media_store(&self) -> MediaStore {
        MediaStore::beside(&self.path())
    }

    /// Starts (or resumes) the proof of delivery of a job the driver holds.
    #[tracing::instrument(skip(self))]
    pub fn start_pod(&self, job_id: Uuid) -> Result<PodDraft> {
        let mut store = self.store();
        let job = store.job(job_id)?;
        if !matches!(job.state, JobState::PickedUp | JobState::AtDropoff) {
            return Err(CoreError::InvalidTransition { from: job.state, to: JobState::Delivered });
        }
        if let Some(draft) = store.pod_draft(job_id)? {
            return Ok(draft);
        }
        let draft = PodDraft::new(job_id, self.inner.clock.now());
        store.save_pod_draft(&draft)?;
        tracing::info!("proof of delivery started");
        Ok(draft)
    }

    /// The job's draft; `NotFound` when none was started.
    pub fn pod_draft(&self, job_id: Uuid) -> Result<PodDraft> {
        self.store().pod_draft(job_id)?.ok_or_else(|| CoreError::not_found("proof-of-delivery draft", job_id))
    }

    /// What the draft still lacks for the job's requirements.
    pub fn pod_unmet(&self, job_id: Uuid) -> Result<Vec<Requirement>> {
        let store = self.store();
        let job = store.job(job_id)?;
        let draft = store.pod_draft(job_id)?.ok_or_else(|| CoreError::not_found("proof-of-delivery draft", job_id))?;
        Ok(unmet_requirements(&job, &draft))
    }

    /// Copies the photo at `path` into the media store and adds it. A
    /// missing or non-image file is `MediaUnusable`, a full disk `DiskFull`;
    /// the draft is unchanged either way.
    #[tracing::instrument(skip(self))]
    pub fn add_photo_file(&self, job_id: Uuid, path: &std::path::Path) -> Result<PodDraft> {
        self.pod_draft(job_id)?;
        let file = self.media_store().add_file(path)?;
        self.add_photo(job_id, file)
    }

    /// Stores the camera's bytes and adds them as a photo.
    #[tracing::instrument(skip(self, bytes), fields(bytes = bytes.len()))]
    pub fn add_photo_bytes(&self, job_id: Uuid, bytes: &[u8]) -> Result<PodDraft> {
        self.pod_draft(job_id)?;
        let file = self.media_store().add_bytes(bytes)?;
        self.add_photo(job_id, file)
    }

    fn add_photo(&self, job_id: Uuid, file: MediaRef) -> Result<PodDraft> {
        let at = self.inner.clock.now();
        self.store().record_media(&file, at)?;
        self.change_draft(job_id, |_, draft| draft.add_photo(file))
    }

    pub fn remove_photo(&self, job_id: Uuid, sha256: &str) -> Result<PodDraft> {
        self.change_draft(job_id, |_, draft| draft.remove_photo(sha256))
    }

    /// Renders the recipient's strokes (pad `width` × `height` points) to SVG
    /// and PNG, keeps the PNG in the media store and puts the signature on
    /// the draft (replacing an earlier one). Returns the rendering for the
    /// shell's preview.
    #[tracing::instrument(skip(self, strokes), fields(strokes = strokes.len()))]
    pub fn add_signature(&self, job_id: Uuid, width: f32, height: f32, strokes: &[Stroke]) -> Result<SignatureRendering> {
        self.pod_draft(job_id)?;
        let rendering = signature::render(width, height, strokes)?;
        let png = self.media_store().put(&rendering.png, "image/png")?;
        let at = self.inner.clock.now();
        self.store().record_media(&png, at)?;
        let capture = SignatureCapture { svg: rendering.svg.clone(), png, stroke_count: rendering.stroke_count, captured_at: at };
        self.change_draft(job_id, |_, draft| {
            draft.signature = Some(capture);
            Ok(())
        })?;
        Ok(rendering)
    }

    /// Checks a scanned barcode against the job's manifest: `UnknownBarcode`,
    /// `DuplicateScan` or `BarcodeOfOtherJob` (naming that job) change nothing.
    #[tracing::instrument(skip(self))]
    pub fn scan_package(&self, job_id: Uuid, barcode: &str) -> Result<PodDraft> {
        let at = self.inner.clock.now();
        let mut store = self.store();
        let job = store.job(job_id)?;
        let mut draft = store.pod_draft(job_id)?.ok_or_else(|| CoreError::not_found("proof-of-delivery draft", job_id))?;
        let other = store.job_of_barcode(barcode.trim())?.filter(|(id, _)| *id != job_id).map(|(_, reference)| reference);
        let package_id = draft::check_scan(&job, &draft, barcode, other)?;
        draft.scans.push(Scan { barcode: barcode.trim().to_owned(), package_id, at });
        draft.updated_at = at;
        store.save_pod_draft(&draft)?;
        Ok(draft)
    }

    /// Checks the PIN the recipient gives. A wrong one is counted (durably)
    /// and returns `WrongPin` with the attempts left; after the last,
    /// `PinLockedOut`, and no PIN is checked again for this draft.
    #[tracing::instrument(skip(self, pin))]
    pub fn enter_pin(&self, job_id: Uuid, pin: &str) -> Result<PodDraft> {
        let at = self.inner.clock.now();
        let mut store = self.store();
        let job = store.job(job_id)?;
        let check = job.pod.pin.clone().ok_or_else(|| CoreError::invalid("pin", "this job has no PIN"))?;
        let mut draft = store.pod_draft(job_id)?.ok_or_else(|| CoreError::not_found("proof-of-delivery draft", job_id))?;
        if draft.pin.verified {
            return Ok(draft);
        }
        if draft.pin.locked_out(check.max_attempts) {
            return Err(CoreError::PinLockedOut);
        }
        let matches = pin::pin_matches(&check, pin)?;
        draft.pin.attempts += 1;
        draft.pin.verified = matches;
        draft.updated_at = at;
        store.save_pod_draft(&draft)?;
        if matches {
            return Ok(draft);
        }
        tracing::info!(attempts = draft.pin.attempts, "wrong PIN");
        match check.max_attempts.saturating_sub(draft.pin.attempts) {
            0 => Err(CoreError::PinLockedOut),
            attempts_left => Err(CoreError::WrongPin { attempts_left }),
        }
    }

    /// Records the driver's ID check: that an ID was seen and whether its
    /// date of birth meets the job's minimum age today (by the earliest
    /// date any time zone has, so never a day early). Only the verdict is
    /// kept, never the date of birth.
    #[tracing::instrument(skip(self, date_of_birth))]
    pub fn record_age_check(&self, job_id: Uuid, id_checked: bool, date_of_birth: chrono::NaiveDate) -> Result<PodDraft> {
        let at = self.inner.clock.now();
        self.change_draft(job_id, |job, draft| {
            let minimum_age = job.pod.minimum_age.ok_or_else(|| CoreError::invalid("age_check", "this job has no minimum age"))?;
            // The earliest calendar date anywhere on earth now (UTC-12): an
            // ID never passes before the birthday has come at the door.
            let today = (at - chrono::Duration::hours(12)).date_naive();
            let age = draft::age_on(date_of_birth, today)
                .ok_or_else(|| CoreError::invalid("date_of_birth", "lies in the future"))?;
            if age > 130 {
                return Err(CoreError::invalid("date_of_birth", "more than 130 years ago"));
            }
            draft.age_check =
                Some(AgeCheck { minimum_age, id_checked, meets_minimum: id_checked && age >= u32::from(minimum_age), checked_at: at });
            Ok(())
        })
    }

    pub fn set_recipient(&self, job_id: Uuid, name: &str) -> Result<PodDraft> {
        let name = clean_text("recipient_name", name, MAX_NAME_CHARS)?;
        self.change_draft(job_id, |_, draft| {
            draft.recipient_name = Some(name);
            Ok(())
        })
    }

    /// Chooses how the packages were handed over; a method the job does not
    /// allow, or an unattended one for a job that needs a person, is refused.
    pub fn set_method(&self, job_id: Uuid, method: DeliveryMethod) -> Result<PodDraft> {
        self.change_draft(job_id, |job, draft| {
            if !job.pod.allowed_methods.contains(&method) {
                return Err(CoreError::invalid("method", "dispatch does not allow this delivery method for this job"));
            }
            if requirements::is_unattended(method) && requirements::needs_attended_handover(job) {
                return Err(CoreError::invalid("method", "a job with a PIN, an age check or age-restricted items is never left unattended"));
            }
            draft.method = Some(method);
            Ok(())
        })
    }

    pub fn add_note(&self, job_id: Uuid, note: &str) -> Result<PodDraft> {
        let note = clean_text("note", note, MAX_NOTE_CHARS)?;
        self.change_draft(job_id, |_, draft| {
            draft.note = Some(note);
            Ok(())
        })
    }

    /// Attaches the location fix the completion policy judges, with the
    /// platform's monotonic clock at the fix, in milliseconds.
    pub fn attach_fix(&self, job_id: Uuid, fix: &Fix, monotonic_ms: u64) -> Result<PodDraft> {
        let fix = draft::location_fix(fix, monotonic_ms)?;
        self.change_draft(job_id, |_, draft| {
            draft.fix = Some(fix);
            Ok(())
        })
    }

    /// Reads, changes and saves the draft under the store lock; an error
    /// from `change` saves nothing.
    fn change_draft(&self, job_id: Uuid, change: impl FnOnce(&Job, &mut PodDraft) -> Result<()>) -> Result<PodDraft> {
        let at = self.inner.clock.now();
        let mut store = self.store();
        let job = store.job(job_id)?;
        let mut draft = store.pod_draft(job_id)?.ok_or_else(|| CoreError::not_found("proof-of-delivery draft", job_id))?;
        change(&job, &mut draft)?;
        draft.updated_at = at;
        store.save_pod_draft(&draft)?;
        Ok(draft)
    }

    /// Checks every requirement and the completion policy, seals the record
    /// with the device key and commits, in one transaction, the job's move
    /// to delivered, the record's outbox entry and one upload per media file
    /// (sent first). `RequirementsNotMet` names what is missing;
    /// `TooFarFromDropoff` asks for `override_reason`. Nothing changes on
    /// any error.
    #[tracing::instrument(skip(self, override_reason))]
    pub fn finalize_pod(&self, job_id: Uuid, override_reason: Option<&str>) -> Result<SealedPod> {
        let (job, draft) = self.job_and_draft(job_id)?;
        let mut missing: Vec<String> = unmet_requirements(&job, &draft).iter().map(|r| r.code().to_owned()).collect();
        missing.extend(missing_fix(&draft, override_reason));
        if !missing.is_empty() {
            return Err(CoreError::RequirementsNotMet { missing });
        }
        let mut transitions = Vec::new();
        if job.state == JobState::PickedUp {
            transitions.push(Transition::ArriveAtDropoff);
        }
        transitions.push(Transition::Deliver);
        self.seal_and_commit(job, draft, Outcome::Delivered, None, &transitions, override_reason)
    }

    /// Records a failed attempt with the evidence its reason needs (see
    /// [`failure_evidence_missing`]), sealed like a delivery, and the next
    /// step: reattempt later, or return the packages to the store.
    #[tracing::instrument(skip(self, override_reason))]
    pub fn fail_delivery(
        &self,
        job_id: Uuid,
        reason: FailureReason,
        next_step: FailureNextStep,
        override_reason: Option<&str>,
    ) -> Result<SealedPod> {
        let (job, draft) = self.job_and_draft(job_id)?;
        let mut missing: Vec<String> =
            failure_evidence_missing(&job, &draft, reason, next_step).into_iter().map(str::to_owned).collect();
        missing.extend(missing_fix(&draft, override_reason));
        if !missing.is_empty() {
            return Err(CoreError::RequirementsNotMet { missing });
        }
        let failure = FailureRecord { reason, next_step };
        let transitions = [Transition::Fail { reason }, next_step.transition()];
        self.seal_and_commit(job, draft, Outcome::Failed, Some(failure), &transitions, override_reason)
    }

    fn job_and_draft(&self, job_id: Uuid) -> Result<(Job, PodDraft)> {
        let store = self.store();
        let job = store.job(job_id)?;
        let draft = store.pod_draft(job_id)?.ok_or_else(|| CoreError::not_found("proof-of-delivery draft", job_id))?;
        Ok((job, draft))
    }

    fn seal_and_commit(
        &self,
        job: Job,
        draft: PodDraft,
        outcome: Outcome,
        failure: Option<FailureRecord>,
        transitions: &[Transition],
        override_reason: Option<&str>,
    ) -> Result<SealedPod> {
        let (completion, check) = self.judge_completion(&job, &draft, override_reason)?;
        let media_store = self.media_store();
        for file in draft.media() {
            // A photo deleted or changed behind the core's back is caught
            // here, while the draft can still take a new one.
            media_store.read(&file.sha256)?;
        }
        let signer = self.device_signer()?;
        let sync_state = self.store().sync_state()?;
        let now = self.inner.clock.now();
        let payload = PodPayload {
            format: POD_FORMAT.to_owned(),
            outcome,
            job_id: job.id,
            job_reference: job.reference.clone(),
            client_id: sync_state.client_id,
            method: if outcome == Outcome::Delivered { draft.method } else { None },
            recipient_name: draft.recipient_name.clone(),
            note: draft.note.clone(),
            photos: draft.photos.clone(),
            signature: draft.signature.clone(),
            scans: draft.scans.clone(),
            pin: job.pod.pin.as_ref().map(|_| draft.pin),
            age_check: draft.age_check,
            failure,
            location: draft.fix,
            completion,
            times: RecordTimes {
                started_at: micros(draft.started_at),
                device_time: micros(now),
                server_time: micros(now + chrono::Duration::milliseconds(sync_state.server_offset_ms)),
                server_offset_ms: sync_state.server_offset_ms,
            },
            custody_receipt: crate::handoff::latest_custody(&self.store(), job.id, crate::handoff::Direction::Pickup)?
                .map(|custody| custody.receipt_hash),
        };
        let sealed = SealedRecord::seal(payload, signer.as_ref())?;
        let record_bytes = sealed.to_bytes()?;
        let kind = if outcome == Outcome::Delivered { RecordKind::ProofOfDelivery } else { RecordKind::FailedDelivery };
        let record = Record { kind, body: String::from_utf8(record_bytes.clone()).map_err(|e| CoreError::Internal { reason: e.to_string() })? };
        let media: Vec<MediaRef> = sealed.payload.media().into_iter().cloned().collect();
        let outcome_name = if outcome == Outcome::Delivered { "delivered" } else { "failed" };
        let mut store = self.store();
        // The job may have moved while the record was signed (a pull).
        let current = store.job(job.id)?;
        if current.version != job.version {
            return Err(CoreError::InvalidTransition { from: current.state, to: transitions[transitions.len() - 1].target() });
        }
        if store.pod_draft(job.id)?.as_ref() != Some(&draft) {
            return Err(CoreError::invalid("draft", "the draft changed while it was being sealed; finalize again"));
        }
        let write = SealedWrite {
            job_id: job.id,
            transitions,
            outcome: outcome_name,
            record_bytes: &record_bytes,
            record: &record,
            media: &media,
        };
        let events = store.seal_pod(&write, now)?;
        self.notify(events);
        let job = store.job(job.id)?;
        drop(store);
        self.inner.sync.wake();
        tracing::info!(outcome = outcome_name, uploads = media.len(), "proof sealed");
        Ok(SealedPod { record: record_bytes, payload: sealed.payload, job, completion: check, uploads: media.len() as u32 })
    }

    /// The completion policy on the draft's fix: within or warn completes;
    /// beyond the block distance needs an override reason; with no fix the
    /// place cannot be judged, so it needs a reason too.
    fn judge_completion(&self, job: &Job, draft: &PodDraft, override_reason: Option<&str>) -> Result<(CompletionRecord, Option<CompletionCheck>)> {
        let reason = override_reason.map(|r| clean_text("override_reason", r, MAX_NOTE_CHARS)).transpose()?;
        let Some(fix) = draft.fix else {
            let Some(reason) = reason else {
                return Err(CoreError::RequirementsNotMet { missing: vec!["location_fix".into()] });
            };
            return Ok((CompletionRecord { verdict: "no_fix".into(), distance_m: None, override_reason: Some(reason) }, None));
        };
        let nav_fix = Fix {
            latitude: fix.position().latitude,
            longitude: fix.position().longitude,
            horizontal_accuracy_m: fix.accuracy_m(),
            speed_mps: None,
            course_deg: None,
            at: fix.fix_at,
        };
        let check = self.completion_check(job.id, &nav_fix)?;
        let record = match check {
            CompletionCheck::WithinGeofence => CompletionRecord { verdict: "within_geofence".into(), distance_m: None, override_reason: None },
            CompletionCheck::Warn { distance_m } => {
                CompletionRecord { verdict: "warn".into(), distance_m: Some(distance_m.round() as u64), override_reason: None }
            }
            CompletionCheck::NeedsOverride { distance_m } => match reason {
                Some(reason) => CompletionRecord {
                    verdict: "override".into(),
                    distance_m: Some(distance_m.round() as u64),
                    override_reason: Some(reason),
                },
                None => return Err(CoreError::TooFarFromDropoff { distance_m }),
            },
        };
        Ok((record, Some(check)))
    }

    /// The sealed records of a job (deliveries and failed attempts), oldest
    /// first, as canonical bytes.
    pub fn pod_records(&self, job_id: Uuid) -> Result<Vec<Vec<u8>>> {
        self.store().pod_records(job_id)
    }

    /// Checks a sealed record against this device's key and the media store.
    pub fn verify_pod_record(&self, record: &[u8]) -> Result<PodPayload> {
        let key = crate::keys::device_public_key(self.device_signer()?.as_ref())?;
        let media = self.media_store();
        verify_sealed_record(record, &key, &|sha| media.read(sha).ok())
    }

    /// Removes local media files dispatch has held for at least `retention`
    /// (and files nothing cites any more); returns how many went.
    #[tracing::instrument(skip(self))]
    pub fn purge_media(&self, retention: chrono::Duration) -> Result<u32> {
        let cutoff = self.inner.clock.now() - retention;
        let media = self.media_store();
        let due = self.store().media_to_purge(cutoff)?;
        for sha in &due {
            media.remove(sha)?;
            self.store().forget_media(sha)?;
        }
        if !due.is_empty() {
            tracing::info!(files = due.len(), "local media purged");
        }
        Ok(due.len() as u32)
    }
}

/// Without a fix the completion policy cannot judge the place, so the
/// driver must say why (`location_fix` is then missing).
fn missing_fix(draft: &PodDraft, override_reason: Option<&str>) -> Option<String> {
    let has_reason = override_reason.is_some_and(|reason| !reason.trim().is_empty());
    (draft.fix.is_none() && !has_reason).then(|| "location_fix".to_owned())
}

/// Stored and signed times have microsecond precision.
fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

impl DriverSession {
    /// Sends one media upload from the outbox and records the outcome: done
    /// when dispatch holds the file (now or already), wedged when dispatch
    /// refuses it for good or the local file is gone or changed, retried
    /// later (the error is returned) on network trouble.
    pub(super) async fn upload_media_mutation(
        &self,
        client: &crate::sync::http::DispatchClient,
        mutation: &crate::store::Mutation,
        report: &mut crate::sync::SyncReport,
    ) -> std::result::Result<(), crate::sync::SyncFailure> {
        use crate::store::{MutationBody, MutationOutcome};
        use crate::sync::SyncFailure;
        let MutationBody::Upload(upload) = &mutation.body else { return Ok(()) };
        let id = mutation.mutation_id;
        report.sent += 1;
        let sha = upload.sha256.clone();
        let outcome = match self.media_store().read(&sha) {
            Err(err) => MutationOutcome::Rejected { reason: err.to_string() },
            Ok(bytes) => match client.upload_media(&sha, &bytes).await {
                Ok(()) => MutationOutcome::Acknowledged,
                Err(SyncFailure::Permanent(CoreError::Rejected { status, reason })) => {
                    MutationOutcome::Rejected { reason: format!("{status}: {reason}") }
                }
                Err(failure @ SyncFailure::Transient { .. }) => {
                    let reason = failure.clone().into_error().to_string();
                    let session = self.clone();
                    crate::runtime::run_blocking(move || session.store().record_attempt(&[id], &reason))
                        .await
                        .map_err(SyncFailure::Permanent)?;
                    return Err(failure);
                }
                Err(other) => return Err(other),
            },
        };
        match &outcome {
            MutationOutcome::Acknowledged => report.acknowledged += 1,
            _ => report.rejected += 1,
        }
        tracing::info!(sha256 = %sha, ?outcome, "media upload");
        let session = self.clone();
        let at = self.inner.clock.now();
        crate::runtime::run_blocking(move || {
            let mut store = session.store();
            if outcome == MutationOutcome::Acknowledged {
                store.media_uploaded(&sha, at)?;
            }
            let events = store.record_outcomes(&[(id, outcome)], at)?;
            session.notify(events);
            Ok(())
        })
        .await
        .map_err(SyncFailure::Permanent)
    }

    /// Local media past retention leaves the device after a sync; trouble
    /// removing a file is logged and tried again next round.
    pub(super) async fn purge_media_after_sync(&self) {
        let session = self.clone();
        if let Err(err) = crate::runtime::run_blocking(move || session.purge_media(DEFAULT_MEDIA_RETENTION)).await {
            tracing::warn!(error = %err, "purging local media failed");
        }
    }
}
