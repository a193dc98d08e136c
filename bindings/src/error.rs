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
        }
    }
}

/// An exception a shell's callback threw that was not a `DoorstepError`.
impl From<uniffi::UnexpectedUniFFICallbackError> for DoorstepError {
    fn from(err: uniffi::UnexpectedUniFFICallbackError) -> Self {
        DoorstepError::Internal { reason: format!("callback threw: {}", err.reason) }
    }
}
