use doorstep_core::{CoreError, JobState};

/// The one error shells catch. Each variant is something a shell can act on:
/// show the field that is wrong, refresh a stale screen, tell the driver the
/// database needs support, and so on.
#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
pub enum DoorstepError {
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
    /// Network trouble or a passing server failure; sync retries by itself.
    #[error("network trouble: {reason}")]
    Network { reason: String },
    /// Dispatch refused the driver's credentials, even after a refresh.
    #[error("not signed in: {reason}")]
    Unauthorized { reason: String },
    /// Dispatch answered with something the core cannot accept.
    #[error("bad response from dispatch: {reason}")]
    BadResponse { reason: String },
    /// Dispatch refused a request for good.
    #[error("dispatch refused the request ({status}): {reason}")]
    Rejected { status: u16, reason: String },
    /// A bug: a panic in the core, or an unexpected exception thrown by a
    /// shell's callback.
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
    /// The code does not fit what this device knows.
    #[error("the handoff does not match: {reason}")]
    HandoffMismatch { reason: String },
    /// This offer was accepted before; each one is good once.
    #[error("handoff {handoff_id} was already accepted")]
    HandoffReplayed { handoff_id: String },
    /// The offer is too old (or too far ahead) for this device's clock.
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

impl From<CoreError> for DoorstepError {
    fn from(err: CoreError) -> Self {
        match err {
            CoreError::InvalidInput { field, reason } => DoorstepError::InvalidInput { field, reason },
            CoreError::InvalidTransition { from, to } => DoorstepError::InvalidTransition { from, to },
            CoreError::NotFound { what, id } => DoorstepError::NotFound { what, id },
            CoreError::CannotOpen { path, reason } => DoorstepError::CannotOpen { path, reason },
            CoreError::CorruptDatabase { path, reason } => DoorstepError::CorruptDatabase { path, reason },
            CoreError::SchemaTooNew { path, found, supported } => DoorstepError::SchemaTooNew { path, found, supported },
            CoreError::Storage { reason } => DoorstepError::Storage { reason },
            CoreError::Offline => DoorstepError::Offline,
            CoreError::Network { reason } => DoorstepError::Network { reason },
            CoreError::Unauthorized { reason } => DoorstepError::Unauthorized { reason },
            CoreError::BadResponse { reason } => DoorstepError::BadResponse { reason },
            CoreError::Rejected { status, reason } => DoorstepError::Rejected { status, reason },
            CoreError::Internal { reason } => DoorstepError::Internal { reason },
            // device keys
            CoreError::KeyUnavailable { reason } => DoorstepError::KeyUnavailable { reason },
            // proof of delivery and handoffs
            CoreError::RequirementsNotMet { missing } => DoorstepError::RequirementsNotMet { missing },
            CoreError::UnknownBarcode { barcode } => DoorstepError::UnknownBarcode { barcode },
            CoreError::DuplicateScan { barcode } => DoorstepError::DuplicateScan { barcode },
            CoreError::BarcodeOfOtherJob { barcode, job_reference } => {
                DoorstepError::BarcodeOfOtherJob { barcode, job_reference }
            }
            CoreError::WrongPin { attempts_left } => DoorstepError::WrongPin { attempts_left },
            CoreError::PinLockedOut => DoorstepError::PinLockedOut,
            CoreError::MediaUnusable { path, reason } => DoorstepError::MediaUnusable { path, reason },
            CoreError::DiskFull { reason } => DoorstepError::DiskFull { reason },
            CoreError::TooFarFromDropoff { distance_m } => DoorstepError::TooFarFromDropoff { distance_m },
            // store handoffs
            CoreError::HandoffSignatureInvalid { what } => DoorstepError::HandoffSignatureInvalid { what },
            CoreError::HandoffWrongDevice { expected_key_id, actual_key_id } => {
                DoorstepError::HandoffWrongDevice { expected_key_id, actual_key_id }
            }
            CoreError::HandoffMismatch { reason } => DoorstepError::HandoffMismatch { reason },
            CoreError::HandoffReplayed { handoff_id } => DoorstepError::HandoffReplayed { handoff_id },
            CoreError::HandoffExpired { age_seconds } => DoorstepError::HandoffExpired { age_seconds },
            // door access
            CoreError::Denied { reason } => DoorstepError::Denied { reason },
            CoreError::NoGrant { door_id, reason } => DoorstepError::NoGrant { door_id, reason },
            CoreError::BluetoothUnavailable { reason } => DoorstepError::BluetoothUnavailable { reason },
            CoreError::LockOutOfRange { lock_id } => DoorstepError::LockOutOfRange { lock_id },
            CoreError::LinkFailed { reason } => DoorstepError::LinkFailed { reason },
        }
    }
}

/// An exception a shell's callback threw that was not a `DoorstepError`.
impl From<uniffi::UnexpectedUniFFICallbackError> for DoorstepError {
    fn from(err: uniffi::UnexpectedUniFFICallbackError) -> Self {
        DoorstepError::Internal { reason: format!("callback threw: {}", err.reason) }
    }
}
