//! The UniFFI surface of `doorstep-core`, for the Kotlin and Swift shells.
//!
//! Owns only what crossing the FFI needs: the mirror declarations of core
//! types (`#[uniffi::remote]`, so values pass without copying code), the one
//! error enum shells catch, and objects wrapping the core's handles. No
//! domain rule may live here. Every exported call runs inside [`guard`] (or,
//! for async calls, [`off_caller_thread`]), so a panic in the core reaches
//! the shell as `DoorstepError::Internal`.

mod access;
mod error;
mod handoff;
mod keys;
mod pod;
mod session;
mod types;

pub use access::{BleLink, GrantIssuer, ReferenceLock};
pub use error::DoorstepError;
pub use handoff::StoreSession;
pub use keys::DeviceSigner;
pub use pod::SealedProof;
pub use session::{DriverSession, JobObserver, Subscription, SyncObserver, TokenProvider};
pub use types::ImportSummary;

uniffi::setup_scaffolding!("doorstep");

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs one exported call, turning a core error into the FFI error and a
/// panic into `Internal` instead of unwinding into the foreign runtime.
pub(crate) fn guard<T>(call: impl FnOnce() -> Result<T, doorstep_core::CoreError>) -> Result<T, DoorstepError> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(result) => result.map_err(DoorstepError::from),
        Err(payload) => {
            let reason = doorstep_core::error::panic_message(&*payload);
            tracing::error!(%reason, "panic caught at the FFI boundary");
            Err(DoorstepError::Internal { reason })
        }
    }
}

/// The version of the core library, for the shells' about screens and bug
/// reports.
#[uniffi::export]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_a_call_becomes_a_typed_error() {
        let result: Result<(), _> = guard(|| panic!("index out of bounds"));
        assert_eq!(result, Err(DoorstepError::Internal { reason: "index out of bounds".into() }));
    }

    #[test]
    fn core_errors_keep_their_fields() {
        let result: Result<(), _> = guard(|| Err(doorstep_core::CoreError::invalid("jobs[2].id", "appears twice")));
        assert_eq!(result, Err(DoorstepError::InvalidInput { field: "jobs[2].id".into(), reason: "appears twice".into() }));
    }
}

/// Runs the blocking work of an async call (signing, file copies, durable
/// commits) on the core's worker threads, so a shell awaiting it from its
/// main thread never blocks there. A panic becomes `Internal`.
pub(crate) async fn off_caller_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, doorstep_core::CoreError> + Send + 'static,
) -> Result<T, DoorstepError> {
    Ok(doorstep_core::runtime::run_blocking(work).await?)
}
