//! The device key across the FFI: the shell's signer (Android Keystore /
//! StrongBox, Secure Enclave) as a foreign trait, and the core's software
//! signer for tests and desktop QA.

use crate::session::DriverSession;
use crate::{DoorstepError, guard};
use doorstep_core::keys::{self, SignerError};
use std::sync::Arc;

/// The device's P-256 key. `public_key` returns SEC1 (33 or 65 bytes) or
/// SubjectPublicKeyInfo DER; `sign` returns an ECDSA P-256 / SHA-256
/// signature over the message, DER or raw r||s. Throw `KeyUnavailable` when
/// the key is gone or locked. Called on a core background thread.
#[uniffi::export(with_foreign)]
pub trait DeviceSigner: Send + Sync {
    fn public_key(&self) -> Result<Vec<u8>, DoorstepError>;
    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, DoorstepError>;
}

/// The core's in-memory P-256 key, handed to shells as a `DeviceSigner`.
struct SoftwareDeviceSigner(keys::SoftwareSigner);

impl DeviceSigner for SoftwareDeviceSigner {
    fn public_key(&self) -> Result<Vec<u8>, DoorstepError> {
        Ok(keys::DeviceSigner::public_key(&self.0).map_err(signer_error)?)
    }

    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, DoorstepError> {
        Ok(keys::DeviceSigner::sign(&self.0, &message).map_err(signer_error)?)
    }
}

fn signer_error(err: SignerError) -> DoorstepError {
    DoorstepError::KeyUnavailable { reason: err.to_string() }
}

/// Adapts a shell's signer to the core's trait.
pub(crate) struct ForeignSigner(pub(crate) Arc<dyn DeviceSigner>);

impl keys::DeviceSigner for ForeignSigner {
    fn public_key(&self) -> Result<Vec<u8>, SignerError> {
        self.0.public_key().map_err(foreign_signer_error)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.0.sign(message.to_vec()).map_err(foreign_signer_error)
    }
}

fn foreign_signer_error(err: DoorstepError) -> SignerError {
    match err {
        DoorstepError::KeyUnavailable { reason } => SignerError::Unavailable { reason },
        other => SignerError::Failed { reason: other.to_string() },
    }
}

/// A software P-256 key: fresh when `secret` is absent, else the key with
/// that 32-byte secret (so QA can keep a device identity across runs).
/// Phones use their platform's hardware-backed key instead.
#[uniffi::export]
pub fn software_device_signer(secret: Option<Vec<u8>>) -> Result<Arc<dyn DeviceSigner>, DoorstepError> {
    guard(|| {
        let signer = match secret {
            Some(secret) => keys::SoftwareSigner::from_secret(&secret)?,
            None => keys::SoftwareSigner::generate()?,
        };
        Ok(Arc::new(SoftwareDeviceSigner(signer)) as Arc<dyn DeviceSigner>)
    })
}

/// A short stable id of a P-256 public key (hex of the first 16 bytes of the
/// SHA-256 of its compressed form), for logs and support screens.
#[uniffi::export]
pub fn device_key_id(public_key: Vec<u8>) -> Result<String, DoorstepError> {
    guard(|| Ok(keys::DevicePublicKey::parse(&public_key)?.key_id()))
}

#[uniffi::export]
impl DriverSession {
    /// Installs the device key that signs proofs of delivery, handoff
    /// receipts and door requests.
    pub fn set_device_signer(&self, signer: Arc<dyn DeviceSigner>) {
        self.0.set_device_signer(Arc::new(ForeignSigner(signer)));
    }
}
