//! Proof of delivery across the FFI: capture calls on the driver's session
//! (one per driver action, each returning the whole draft), finalize and
//! failed delivery, and checking a sealed record with a device's public key.

use crate::session::DriverSession;
use crate::types::{DeliveryJob, Timestamp};
use crate::{DoorstepError, guard, off_caller_thread};
use doorstep_core::nav::{CompletionCheck, Fix};
use doorstep_core::pod::{
    AgeCheck, FailureNextStep, LocationFix, MediaRef, PinProgress, PodDraft, Scan, SignatureCapture, SignatureRendering, Stroke,
    StrokePoint,
};
use doorstep_core::store::MediaUpload;
use doorstep_core::{CoreError, DeliveryMethod, FailureReason};
use std::collections::HashMap;
use uuid::Uuid;

#[uniffi::remote(Record)]
pub struct StrokePoint {
    pub x: f32,
    pub y: f32,
}

#[uniffi::remote(Record)]
pub struct Stroke {
    pub points: Vec<StrokePoint>,
}

#[uniffi::remote(Record)]
pub struct SignatureRendering {
    pub svg: String,
    pub png: Vec<u8>,
    pub stroke_count: u32,
}

#[uniffi::remote(Record)]
pub struct MediaRef {
    pub sha256: String,
    pub content_type: String,
    pub size_bytes: u64,
}

#[uniffi::remote(Record)]
pub struct SignatureCapture {
    pub svg: String,
    pub png: MediaRef,
    pub stroke_count: u32,
    pub captured_at: Timestamp,
}

#[uniffi::remote(Record)]
pub struct Scan {
    pub barcode: String,
    pub package_id: Uuid,
    pub at: Timestamp,
}

#[uniffi::remote(Record)]
pub struct PinProgress {
    pub attempts: u32,
    pub verified: bool,
}

#[uniffi::remote(Record)]
pub struct AgeCheck {
    pub minimum_age: u8,
    pub id_checked: bool,
    pub meets_minimum: bool,
    pub checked_at: Timestamp,
}

#[uniffi::remote(Record)]
pub struct LocationFix {
    pub latitude_e7: i64,
    pub longitude_e7: i64,
    pub accuracy_cm: u64,
    pub fix_at: Timestamp,
    pub monotonic_ms: u64,
}

#[uniffi::remote(Record)]
pub struct PodDraft {
    pub job_id: Uuid,
    pub started_at: Timestamp,
    pub updated_at: Timestamp,
    pub photos: Vec<MediaRef>,
    pub signature: Option<SignatureCapture>,
    pub scans: Vec<Scan>,
    pub pin: PinProgress,
    pub age_check: Option<AgeCheck>,
    pub recipient_name: Option<String>,
    pub note: Option<String>,
    pub method: Option<DeliveryMethod>,
    pub fix: Option<LocationFix>,
}

/// A media file waiting in the outbox to be uploaded.
#[uniffi::remote(Record)]
pub struct MediaUpload {
    pub sha256: String,
    pub content_type: String,
    pub size_bytes: u64,
}

#[uniffi::remote(Enum)]
pub enum FailureNextStep {
    Reattempt,
    ReturnToStore,
}

/// A sealed proof of delivery (or failed attempt), as committed and queued.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SealedProof {
    /// The canonical record bytes, signed by the device key.
    pub record: Vec<u8>,
    /// The job as it now is.
    pub job: DeliveryJob,
    /// What the completion policy said; show `Warn` to the driver.
    pub completion: Option<CompletionCheck>,
    /// Media uploads queued ahead of the record.
    pub uploads: u32,
}

impl From<doorstep_core::session::SealedPod> for SealedProof {
    fn from(sealed: doorstep_core::session::SealedPod) -> Self {
        SealedProof { record: sealed.record, job: sealed.job, completion: sealed.completion, uploads: sealed.uploads }
    }
}

#[uniffi::export]
impl DriverSession {
    /// Starts (or resumes, after a restart) the proof of delivery of a job
    /// the driver holds.
    pub fn start_pod(&self, job_id: Uuid) -> Result<PodDraft, DoorstepError> {
        guard(|| self.0.start_pod(job_id))
    }

    pub fn pod_draft(&self, job_id: Uuid) -> Result<PodDraft, DoorstepError> {
        guard(|| self.0.pod_draft(job_id))
    }

    /// The requirements the draft does not meet yet, by their stable codes
    /// (`photos`, `signature`, `recipient_name`, `package_scans`, `pin`,
    /// `pin_locked_out`, `age_check`, `delivery_method`, ...).
    pub fn pod_unmet(&self, job_id: Uuid) -> Result<Vec<String>, DoorstepError> {
        guard(|| Ok(self.0.pod_unmet(job_id)?.iter().map(|r| r.code().to_owned()).collect()))
    }

    /// Copies the photo at `path` into the core's media store (hashing and
    /// syncing megabytes: off the caller's thread).
    pub async fn add_photo_file(&self, job_id: Uuid, path: String) -> Result<PodDraft, DoorstepError> {
        let session = self.0.clone();
        off_caller_thread(move || session.add_photo_file(job_id, std::path::Path::new(&path))).await
    }

    /// The blocking form of `add_photo_file`, for callers already off the main thread.
    pub fn add_photo_file_blocking(&self, job_id: Uuid, path: String) -> Result<PodDraft, DoorstepError> {
        guard(|| self.0.add_photo_file(job_id, std::path::Path::new(&path)))
    }

    /// Stores the camera's JPEG, PNG or HEIC bytes as a photo.
    pub async fn add_photo_bytes(&self, job_id: Uuid, bytes: Vec<u8>) -> Result<PodDraft, DoorstepError> {
        let session = self.0.clone();
        off_caller_thread(move || session.add_photo_bytes(job_id, &bytes)).await
    }

    /// The blocking form of `add_photo_bytes`, for callers already off the main thread.
    pub fn add_photo_bytes_blocking(&self, job_id: Uuid, bytes: Vec<u8>) -> Result<PodDraft, DoorstepError> {
        guard(|| self.0.add_photo_bytes(job_id, &bytes))
    }

    pub fn remove_photo(&self, job_id: Uuid, sha256: String) -> Result<PodDraft, DoorstepError> {
        guard(|| self.0.remove_photo(job_id, &sha256))
    }

    /// The recipient's strokes on a `width` × `height` pad; returns the SVG
    /// and PNG the core rendered, for the preview.
    pub fn add_signature(&self, job_id: Uuid, width: f32, height: f32, strokes: Vec<Stroke>) -> Result<SignatureRendering, DoorstepError> {
        guard(|| self.0.add_signature(job_id, width, height, &strokes))
    }

    /// Throws `UnknownBarcode`, `DuplicateScan` or `BarcodeOfOtherJob`.
    pub fn scan_package(&self, job_id: Uuid, barcode: String) -> Result<PodDraft, DoorstepError> {
        guard(|| self.0.scan_package(job_id, &barcode))
    }

    /// Throws `WrongPin { attemptsLeft }`, then `PinLockedOut`.
    pub fn enter_pin(&self, job_id: Uuid, pin: String) -> Result<PodDraft, DoorstepError> {
        guard(|| self.0.enter_pin(job_id, &pin))
    }

    /// The driver checked an ID; `date_of_birth` as `YYYY-MM-DD`. Only the
    /// verdict is kept.
    pub fn record_age_check(&self, job_id: Uuid, id_checked: bool, date_of_birth: String) -> Result<PodDraft, DoorstepError> {
        guard(|| {
            let date = date_of_birth
                .parse::<chrono::NaiveDate>()
                .map_err(|_| CoreError::invalid("date_of_birth", "must be a date written YYYY-MM-DD"))?;
            self.0.record_age_check(job_id, id_checked, date)
        })
    }

    pub fn set_recipient(&self, job_id: Uuid, name: String) -> Result<PodDraft, DoorstepError> {
        guard(|| self.0.set_recipient(job_id, &name))
    }

    pub fn set_method(&self, job_id: Uuid, method: DeliveryMethod) -> Result<PodDraft, DoorstepError> {
        guard(|| self.0.set_method(job_id, method))
    }

    pub fn add_note(&self, job_id: Uuid, note: String) -> Result<PodDraft, DoorstepError> {
        guard(|| self.0.add_note(job_id, &note))
    }

    /// The fix the completion policy judges, with the platform's monotonic
    /// clock at the fix (Android `elapsedRealtime`, iOS `systemUptime`), ms.
    pub fn attach_fix(&self, job_id: Uuid, fix: Fix, monotonic_ms: u64) -> Result<PodDraft, DoorstepError> {
        guard(|| self.0.attach_fix(job_id, &fix, monotonic_ms))
    }

    /// Seals and commits the delivery; throws `RequirementsNotMet { missing }`
    /// or `TooFarFromDropoff` (retry with an override reason). The device
    /// key signs on the core's worker threads, never the caller's.
    pub async fn finalize_pod(&self, job_id: Uuid, override_reason: Option<String>) -> Result<SealedProof, DoorstepError> {
        let session = self.0.clone();
        off_caller_thread(move || session.finalize_pod(job_id, override_reason.as_deref()).map(SealedProof::from)).await
    }

    /// The blocking form of `finalize_pod`, for callers already off the main thread.
    pub fn finalize_pod_blocking(&self, job_id: Uuid, override_reason: Option<String>) -> Result<SealedProof, DoorstepError> {
        guard(|| self.0.finalize_pod(job_id, override_reason.as_deref()).map(SealedProof::from))
    }

    /// Seals a failed attempt with its evidence and the next step.
    pub async fn fail_delivery(
        &self,
        job_id: Uuid,
        reason: FailureReason,
        next_step: FailureNextStep,
        override_reason: Option<String>,
    ) -> Result<SealedProof, DoorstepError> {
        let session = self.0.clone();
        off_caller_thread(move || session.fail_delivery(job_id, reason, next_step, override_reason.as_deref()).map(SealedProof::from)).await
    }

    /// The blocking form of `fail_delivery`, for callers already off the main thread.
    pub fn fail_delivery_blocking(
        &self,
        job_id: Uuid,
        reason: FailureReason,
        next_step: FailureNextStep,
        override_reason: Option<String>,
    ) -> Result<SealedProof, DoorstepError> {
        guard(|| self.0.fail_delivery(job_id, reason, next_step, override_reason.as_deref()).map(SealedProof::from))
    }

    /// The job's sealed records, oldest first.
    pub fn pod_records(&self, job_id: Uuid) -> Result<Vec<Vec<u8>>, DoorstepError> {
        guard(|| self.0.pod_records(job_id))
    }

    /// Checks a sealed record against this device's key and local media.
    pub fn verify_pod_record(&self, record: Vec<u8>) -> Result<(), DoorstepError> {
        guard(|| self.0.verify_pod_record(&record).map(|_| ()))
    }

    /// Removes local media dispatch has held for `retention_seconds`.
    pub fn purge_media(&self, retention_seconds: u64) -> Result<u32, DoorstepError> {
        guard(|| {
            let seconds = i64::try_from(retention_seconds).map_err(|_| CoreError::invalid("retention_seconds", "too large"))?;
            let retention = chrono::Duration::try_seconds(seconds).ok_or_else(|| CoreError::invalid("retention_seconds", "too large"))?;
            self.0.purge_media(retention)
        })
    }
}

/// Checks a sealed record with the device's public key (SEC1 or DER) and
/// the media it cites (by SHA-256 hex): any changed byte of the record or of
/// a file throws `InvalidInput` naming what failed.
#[uniffi::export]
pub fn verify_sealed_pod_record(record: Vec<u8>, public_key: Vec<u8>, media: HashMap<String, Vec<u8>>) -> Result<(), DoorstepError> {
    guard(|| {
        let key = doorstep_core::keys::DevicePublicKey::parse(&public_key)?;
        doorstep_core::pod::verify_sealed_record(&record, &key, &|sha| media.get(sha).cloned()).map(|_| ())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_from_the_shell_is_a_typed_error() {
        let result = verify_sealed_pod_record(b"{}".to_vec(), vec![1, 2, 3], HashMap::new());
        assert!(matches!(result, Err(DoorstepError::InvalidInput { .. })));
    }
}
