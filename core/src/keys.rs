//! Device keys: the [`DeviceSigner`] a shell implements (Android Keystore /
//! StrongBox, the Secure Enclave), a software P-256 signer for tests and
//! desktop, signature verification, and the hashing helpers every sealed or
//! signed record uses.
//!
//! Owns no storage and no policy: what gets signed, and when, belongs to the
//! proof-of-delivery, handoff and door-access modules.

use crate::error::{CoreError, Result};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256};
use std::fmt;

/// Why a signer could not sign. Shells map their platform's failures here.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SignerError {
    /// The key is missing, invalidated (e.g. biometrics changed) or locked.
    #[error("key unavailable: {reason}")]
    Unavailable { reason: String },
    /// The platform refused this signing operation.
    #[error("signing failed: {reason}")]
    Failed { reason: String },
}

/// The device's P-256 key, held wherever the platform keeps keys safest.
///
/// Implemented by the shells; [`SoftwareSigner`] is the Rust one.
pub trait DeviceSigner: Send + Sync {
    /// The public key: SEC1 (33 or 65 bytes, as the Secure Enclave exports)
    /// or X.509 SubjectPublicKeyInfo DER (as Android Keystore exports).
    fn public_key(&self) -> std::result::Result<Vec<u8>, SignerError>;

    /// ECDSA P-256 with SHA-256 over `message` (the signer hashes): DER
    /// (what both platforms return) or raw `r || s` (64 bytes).
    fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, SignerError>;
}

/// A P-256 public key, parsed and checked to be on the curve.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DevicePublicKey(VerifyingKey);

impl DevicePublicKey {
    /// Accepts SEC1 compressed/uncompressed points and SubjectPublicKeyInfo DER.
    pub fn parse(bytes: &[u8]) -> Result<DevicePublicKey> {
        VerifyingKey::from_sec1_bytes(bytes)
            .or_else(|_| VerifyingKey::from_public_key_der(bytes))
            .map(DevicePublicKey)
            .map_err(|_| CoreError::invalid("public_key", "not a P-256 public key (SEC1 or SubjectPublicKeyInfo DER)"))
    }

    /// The 33-byte compressed SEC1 form: what grants and records carry.
    pub fn to_compressed(&self) -> [u8; 33] {
        let point = self.0.to_encoded_point(true);
        let mut out = [0u8; 33];
        out.copy_from_slice(point.as_bytes());
        out
    }

    /// A short stable name for the key: the first 16 bytes of SHA-256 of
    /// the compressed point, hex.
    pub fn key_id(&self) -> String {
        hex(&sha256(&self.to_compressed())[..16])
    }

    /// Checks a signature in either encoding; false for anything malformed.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match parse_signature(signature) {
            Some(signature) => self.0.verify(message, &signature).is_ok(),
            None => false,
        }
    }
}

impl fmt::Debug for DevicePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DevicePublicKey({})", self.key_id())
    }
}

fn parse_signature(bytes: &[u8]) -> Option<Signature> {
    if bytes.len() == 64 {
        Signature::from_slice(bytes).ok()
    } else {
        Signature::from_der(bytes).ok()
    }
}

/// Signs with the shell's signer and returns the fixed 64-byte `r || s`
/// form, after checking the signature against the signer's own public key:
/// a misbehaving platform signer (wrong curve, wrong hash, wrong key) fails
/// here, loudly, not later at a lock or on the server.
pub fn sign_checked(signer: &dyn DeviceSigner, message: &[u8]) -> Result<([u8; 64], DevicePublicKey)> {
    let public_key = device_public_key(signer)?;
    let raw = signer.sign(message).map_err(key_unavailable)?;
    let signature = parse_signature(&raw)
        .ok_or_else(|| CoreError::KeyUnavailable { reason: "the signer returned a malformed signature".into() })?;
    if public_key.0.verify(message, &signature).is_err() {
        return Err(CoreError::KeyUnavailable {
            reason: "the signer's signature does not match its public key".into(),
        });
    }
    let mut out = [0u8; 64];
    out.copy_from_slice(&signature.to_bytes());
    Ok((out, public_key))
}

/// The signer's public key, parsed.
pub fn device_public_key(signer: &dyn DeviceSigner) -> Result<DevicePublicKey> {
    let bytes = signer.public_key().map_err(key_unavailable)?;
    DevicePublicKey::parse(&bytes)
        .map_err(|_| CoreError::KeyUnavailable { reason: "the signer's public key is not a P-256 key".into() })
}

fn key_unavailable(err: SignerError) -> CoreError {
    CoreError::KeyUnavailable { reason: err.to_string() }
}

/// A P-256 key held in memory: for tests, the simulator and desktop QA.
/// Phones use a hardware-backed [`DeviceSigner`] from their shell.
pub struct SoftwareSigner {
    key: SigningKey,
}

impl SoftwareSigner {
    /// A fresh key from the OS random source.
    pub fn generate() -> Result<SoftwareSigner> {
        loop {
            let secret: [u8; 32] = random_bytes()?;
            // A random 32-byte string is not a valid scalar with probability
            // about 2^-32; draw again rather than fail.
            if let Ok(signer) = SoftwareSigner::from_secret(&secret) {
                return Ok(signer);
            }
        }
    }

    /// The key whose 32-byte secret scalar is `secret` (big-endian).
    pub fn from_secret(secret: &[u8]) -> Result<SoftwareSigner> {
        let secret: &[u8; 32] = secret
            .try_into()
            .map_err(|_| CoreError::invalid("secret", "a P-256 secret scalar is 32 bytes"))?;
        SigningKey::from_bytes(secret.into())
            .map(|key| SoftwareSigner { key })
            .map_err(|_| CoreError::invalid("secret", "not a P-256 secret scalar of 32 bytes"))
    }

    pub fn secret(&self) -> [u8; 32] {
        self.key.to_bytes().into()
    }

    pub fn device_public_key(&self) -> DevicePublicKey {
        DevicePublicKey(*self.key.verifying_key())
    }
}

impl DeviceSigner for SoftwareSigner {
    fn public_key(&self) -> std::result::Result<Vec<u8>, SignerError> {
        Ok(self.device_public_key().to_compressed().to_vec())
    }

    fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, SignerError> {
        let signature: Signature = self.key.sign(message);
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

impl fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SoftwareSigner({})", self.device_public_key().key_id())
    }
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lower-case hex, the form hashes take in records and on the wire.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// Parses lower- or upper-case hex; `None` for odd lengths or other characters.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}

/// Bytes from the OS random source (keys, nonces, salts).
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::getrandom(&mut out)
        .map_err(|e| CoreError::Internal { reason: format!("the OS random source failed: {e}") })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::EncodePublicKey;

    #[test]
    fn a_software_signature_verifies_and_a_changed_byte_does_not() {
        let signer = SoftwareSigner::generate().unwrap();
        let (signature, public_key) = sign_checked(&signer, b"sealed record").unwrap();
        assert!(public_key.verifies(b"sealed record", &signature));
        assert!(!public_key.verifies(b"sealed recorD", &signature));
        let mut flipped = signature;
        flipped[10] ^= 1;
        assert!(!public_key.verifies(b"sealed record", &flipped));
        assert!(!public_key.verifies(b"sealed record", &[]));
    }

    #[test]
    fn public_keys_parse_from_every_platform_encoding() {
        let signer = SoftwareSigner::generate().unwrap();
        let key = signer.device_public_key();
        let uncompressed = key.0.to_encoded_point(false);
        let spki = key.0.to_public_key_der().unwrap();
        for bytes in [key.to_compressed().to_vec(), uncompressed.as_bytes().to_vec(), spki.as_bytes().to_vec()] {
            assert_eq!(DevicePublicKey::parse(&bytes).unwrap(), key);
        }
        assert!(DevicePublicKey::parse(&[4u8; 65]).is_err());
        assert!(DevicePublicKey::parse(b"").is_err());
    }

    struct LyingSigner {
        claimed: SoftwareSigner,
        actual: SoftwareSigner,
    }

    impl DeviceSigner for LyingSigner {
        fn public_key(&self) -> std::result::Result<Vec<u8>, SignerError> {
            self.claimed.public_key()
        }
        fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, SignerError> {
            self.actual.sign(message)
        }
    }

    #[test]
    fn a_signer_whose_signature_does_not_match_its_key_is_refused() {
        let signer = LyingSigner { claimed: SoftwareSigner::generate().unwrap(), actual: SoftwareSigner::generate().unwrap() };
        assert!(matches!(sign_checked(&signer, b"x"), Err(CoreError::KeyUnavailable { .. })));
    }

    #[test]
    fn secrets_round_trip_and_bad_secrets_are_refused() {
        let signer = SoftwareSigner::generate().unwrap();
        let again = SoftwareSigner::from_secret(&signer.secret()).unwrap();
        assert_eq!(again.device_public_key(), signer.device_public_key());
        assert!(SoftwareSigner::from_secret(&[0u8; 32]).is_err());
        assert!(SoftwareSigner::from_secret(&[1u8; 31]).is_err());
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(from_hex("00ABff"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
    }
}
