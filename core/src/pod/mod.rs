//! Proof of delivery: what the server requires per job, the driver's draft
//! (photos, signature, scans, PIN, age check, recipient, method, location),
//! the media store the photos live in, and the sealed, signed record that
//! anyone holding the device's public key can verify.
//!
//! Owns the rules (pure functions over a job and a draft) and the record
//! format. Must not touch SQL (that is `store`) or the network (that is
//! `sync`); the session ties capture, storage and the outbox together.

pub mod draft;
pub mod failed;
pub mod media;
pub mod pin;
pub mod requirements;
pub mod seal;
pub mod signature;

pub use draft::{AgeCheck, LocationFix, MediaRef, PinProgress, PodDraft, Scan, SignatureCapture};
pub use failed::{FailureNextStep, failure_evidence_missing};
pub use media::{MediaFile, MediaStore};
pub use requirements::{Requirement, unmet_requirements};
pub use seal::{CompletionRecord, PodPayload, RecordTimes, SealedRecord, verify_sealed_record};
pub use signature::{SignatureRendering, Stroke, StrokePoint};
