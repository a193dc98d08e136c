//! The core's error type: every failure a caller can act on, by kind.

use crate::jobs::JobState;
use std::path::Path;

pub type Result<T, E = CoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum CoreError {
    /// Input from the shell, the server or a file is malformed; `field` names
    /// where (a JSON path for documents, an argument name for calls).
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: String, reason: String },

    #[error("a job cannot go from {from} to {to}")]
    InvalidTransition { from: JobState, to: JobState },

    #[error("{what} {id} not found")]
    NotFound { what: String, id: String },

    #[error("cannot open database {path}: {reason}")]
    CannotOpen { path: String, reason: String },

    #[error("database {path} is corrupt or not a Doorstep database: {reason}")]
    CorruptDatabase { path: String, reason: String },

    #[error("database {path} has schema version {found}; this build knows up to {supported}")]
    SchemaTooNew { path: String, found: u32, supported: u32 },

    #[error("storage failure: {reason}")]
    Storage { reason: String },

    /// The shell said the device is offline; the action is queued.
    #[error("offline")]
    Offline,

    /// The network or dispatch failed in a way worth retrying later.
    #[error("network trouble: {reason}")]
    Network { reason: String },

    /// Dispatch refused the driver's credentials, even after a refresh.
    #[error("not signed in: {reason}")]
    Unauthorized { reason: String },

    /// Dispatch answered with something the core cannot accept; nothing
    /// from that answer was stored.
    #[error("bad response from dispatch: {reason}")]
    BadResponse { reason: String },

    /// Dispatch refused a request for good.
    #[error("dispatch refused the request ({status}): {reason}")]
    Rejected { status: u16, reason: String },

    #[error("internal error: {reason}")]
    Internal { reason: String },

    // --- device keys ---
    /// The device signer is missing, locked or refused to sign.
    #[error("device key unavailable: {reason}")]
    KeyUnavailable { reason: String },

    // --- proof of delivery and handoffs ---
    /// Finalize refused: each entry names one unmet requirement.
    #[error("proof of delivery incomplete: {}", missing.join(", "))]
    RequirementsNotMet { missing: Vec<String> },
    #[error("barcode {barcode} is not on this job's manifest")]
    UnknownBarcode { barcode: String },
    #[error("barcode {barcode} was already scanned")]
    DuplicateScan { barcode: String },
    #[error("barcode {barcode} belongs to job {job_reference}")]
    BarcodeOfOtherJob { barcode: String, job_reference: String },
    #[error("wrong PIN; {attempts_left} attempts left")]
    WrongPin { attempts_left: u32 },
    #[error("too many wrong PINs; the PIN check is locked")]
    PinLockedOut,
    /// A photo or file the shell passed cannot be read or is not an image.
    #[error("cannot use media {path}: {reason}")]
    MediaUnusable { path: String, reason: String },
    #[error("the device storage is full: {reason}")]
    DiskFull { reason: String },
    /// The completion policy blocks finishing this far from the drop-off
    /// unless the driver gives an override reason.
    #[error("{distance_m:.0} m from the drop-off; an override reason is needed")]
    TooFarFromDropoff { distance_m: f64 },

    // --- store handoffs ---
    /// A scanned handoff code's signature does not match its bytes.
    #[error("the handoff {what} signature does not verify")]
    HandoffSignatureInvalid { what: String },
    /// The code was made for (or signed by) another driver's device.
    #[error("the handoff is for device key {expected_key_id}, not {actual_key_id}")]
    HandoffWrongDevice { expected_key_id: String, actual_key_id: String },
    /// The code does not fit what this device knows: another offer, another
    /// store, a broken custody chain.
    #[error("the handoff does not match: {reason}")]
    HandoffMismatch { reason: String },
    /// This offer was accepted before; each one is good once.
    #[error("handoff {handoff_id} was already accepted")]
    HandoffReplayed { handoff_id: String },
    /// The offer is too far from this device's clock to be a fresh one.
    #[error("the handoff offer is {age_seconds} s from this device's time; staff must make a new one")]
    HandoffExpired { age_seconds: i64 },

    // --- door access ---
    /// The lock (or the core, before asking it) refused to open.
    #[error("door access denied: {reason}")]
    Denied { reason: String },
    #[error("no usable grant for door {door_id}: {reason}")]
    NoGrant { door_id: String, reason: String },
    #[error("Bluetooth unavailable: {reason}")]
    BluetoothUnavailable { reason: String },
    #[error("lock {lock_id} not in range")]
    LockOutOfRange { lock_id: String },
    /// The link to the lock broke mid-exchange or the lock spoke nonsense.
    #[error("lock link failed: {reason}")]
    LinkFailed { reason: String },
}

impl CoreError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CoreError::InvalidInput { field: field.into(), reason: reason.into() }
    }

    pub fn not_found(what: &str, id: impl ToString) -> Self {
        CoreError::NotFound { what: what.to_owned(), id: id.to_string() }
    }

    /// Classifies a SQLite error for a database file, so that a damaged file
    /// is reported as such (with its path) rather than as a generic failure.
    pub(crate) fn from_sqlite_at(path: &Path, err: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::*;
        let path = path.display().to_string();
        let reason = err.to_string();
        match err.sqlite_error_code() {
            Some(NotADatabase | DatabaseCorrupt) => CoreError::CorruptDatabase { path, reason },
            Some(CannotOpen | PermissionDenied | ReadOnly | NoLargeFileSupport) => {
                CoreError::CannotOpen { path, reason }
            }
            _ => CoreError::Storage { reason: format!("{path}: {reason}") },
        }
    }
}

impl From<rusqlite::Error> for CoreError {
    fn from(err: rusqlite::Error) -> Self {
        CoreError::Storage { reason: err.to_string() }
    }
}

pub(crate) fn describe_join_error(err: tokio::task::JoinError) -> String {
    if err.is_panic() {
        format!("core task panicked: {}", panic_message(&*err.into_panic()))
    } else {
        "core task was cancelled".to_owned()
    }
}

/// The text of a panic payload, for turning a caught panic into an error.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}
