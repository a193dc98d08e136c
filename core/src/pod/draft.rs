//! The proof-of-delivery draft: everything captured for one job so far.
//! Stored as one JSON value per job (see `store::pod`), so a draft outlives
//! an app kill or a restart; the capture rules that change it live here as
//! plain functions.

use crate::error::{CoreError, Result};
use crate::jobs::{DeliveryMethod, GeoPoint, Job};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Most photos one draft keeps; more are refused.
pub const MAX_PHOTOS: usize = 20;
/// Longest recipient name and note, in characters.
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_NOTE_CHARS: usize = 2000;

/// A file in the media store, as records cite it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaRef {
    /// Lower-case hex SHA-256 of the file's bytes: its name everywhere.
    pub sha256: String,
    pub content_type: String,
    pub size_bytes: u64,
}

/// The recipient's signature: its SVG (kept inline, it is small) and the
/// PNG rendering in the media store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureCapture {
    pub svg: String,
    pub png: MediaRef,
    pub stroke_count: u32,
    pub captured_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    pub barcode: String,
    pub package_id: Uuid,
    pub at: DateTime<Utc>,
}

/// PIN attempts so far. Once `attempts` reaches the job's maximum without a
/// match, the PIN check is locked for this draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinProgress {
    pub attempts: u32,
    pub verified: bool,
}

impl PinProgress {
    pub fn locked_out(&self, max_attempts: u32) -> bool {
        !self.verified && self.attempts >= max_attempts
    }
}

/// The driver's word that an ID was checked and its date of birth meets the
/// job's minimum age. No image of the ID and no date of birth is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgeCheck {
    pub minimum_age: u8,
    pub id_checked: bool,
    pub meets_minimum: bool,
    pub checked_at: DateTime<Utc>,
}

/// Where the device was when the driver finished, in integers (1e-7
/// degrees, centimetres) so the sealed record has one exact serialization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationFix {
    pub latitude_e7: i64,
    pub longitude_e7: i64,
    pub accuracy_cm: u64,
    /// The fix's own time (device clock).
    pub fix_at: DateTime<Utc>,
    /// The platform's monotonic clock at the fix (Android's
    /// `elapsedRealtime`, iOS's `systemUptime`), in milliseconds: immune to
    /// the driver changing the device's clock.
    pub monotonic_ms: u64,
}

impl LocationFix {
    pub fn position(&self) -> GeoPoint {
        GeoPoint { latitude: self.latitude_e7 as f64 / 1e7, longitude: self.longitude_e7 as f64 / 1e7 }
    }

    pub fn accuracy_m(&self) -> f64 {
        self.accuracy_cm as f64 / 100.0
    }
}

/// Everything captured so far for one job's proof of delivery (or its
/// failed attempt's evidence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodDraft {
    pub job_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
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

impl PodDraft {
    pub fn new(job_id: Uuid, at: DateTime<Utc>) -> PodDraft {
        PodDraft {
            job_id,
            started_at: at,
            updated_at: at,
            photos: Vec::new(),
            signature: None,
            scans: Vec::new(),
            pin: PinProgress::default(),
            age_check: None,
            recipient_name: None,
            note: None,
            method: None,
            fix: None,
        }
    }

    /// Every media file the draft cites: photos, then the signature's PNG.
    pub fn media(&self) -> Vec<&MediaRef> {
        self.photos.iter().chain(self.signature.as_ref().map(|s| &s.png)).collect()
    }

    /// Adds a photo; the same bytes twice count once.
    pub fn add_photo(&mut self, photo: MediaRef) -> Result<()> {
        if self.photos.iter().any(|p| p.sha256 == photo.sha256) {
            return Ok(());
        }
        if self.photos.len() >= MAX_PHOTOS {
            return Err(CoreError::invalid("photo", format!("a proof of delivery holds at most {MAX_PHOTOS} photos")));
        }
        self.photos.push(photo);
        Ok(())
    }

    pub fn remove_photo(&mut self, sha256: &str) -> Result<()> {
        let before = self.photos.len();
        self.photos.retain(|p| p.sha256 != sha256);
        if self.photos.len() == before {
            return Err(CoreError::not_found("photo", sha256));
        }
        Ok(())
    }
}

/// Checks a scanned barcode against this job's manifest and the draft's
/// scans. `other_job` names the job (its reference) that owns the barcode
/// when it is not this one's.
pub fn check_scan(job: &Job, draft: &PodDraft, barcode: &str, other_job: Option<String>) -> Result<Uuid> {
    let barcode = barcode.trim();
    if barcode.is_empty() || barcode.len() > 64 || !barcode.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CoreError::invalid("barcode", "must be 1 to 64 printable ASCII characters"));
    }
    let Some(package) = job.packages.iter().find(|p| p.barcode == barcode) else {
        return Err(match other_job {
            Some(job_reference) => CoreError::BarcodeOfOtherJob { barcode: barcode.to_owned(), job_reference },
            None => CoreError::UnknownBarcode { barcode: barcode.to_owned() },
        });
    };
    if draft.scans.iter().any(|s| s.barcode == barcode) {
        return Err(CoreError::DuplicateScan { barcode: barcode.to_owned() });
    }
    Ok(package.id)
}

/// Turns a fix from the shell into the record's integer form; `InvalidInput`
/// for a fix that cannot be a measurement.
pub fn location_fix(fix: &crate::nav::Fix, monotonic_ms: u64) -> Result<LocationFix> {
    fix.validate()?;
    Ok(LocationFix {
        latitude_e7: (fix.latitude * 1e7).round() as i64,
        longitude_e7: (fix.longitude * 1e7).round() as i64,
        accuracy_cm: (fix.horizontal_accuracy_m * 100.0).round().min(1e12) as u64,
        fix_at: fix.at,
        monotonic_ms,
    })
}

/// Whole years between `date_of_birth` and `on`.
pub fn age_on(date_of_birth: chrono::NaiveDate, on: chrono::NaiveDate) -> Option<u32> {
    on.years_since(date_of_birth)
}
