//! Door grants: what dispatch signs so one device may open some doors of a
//! building for a while, in a compact binary form a lock reads.
//!
//! Layout (version 1, big-endian, 103 + 4 × doors bytes; 107 with one door,
//! 111 with two, so a two-door grant and its device signature still fit one
//! ATT write at MTU 185):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version, 1 |
//! | 1 | 8 | grant id |
//! | 9 | 4 | job tag: the first 4 bytes of SHA-256 of the job's UUID bytes |
//! | 13 | 16 | device key hash: the first 16 bytes of SHA-256 of the compressed P-256 key |
//! | 29 | 4 | not before, Unix seconds |
//! | 33 | 2 | validity in minutes, 1 to 720 |
//! | 35 | 2 | revocation epoch at issue |
//! | 37 | 1 | use limit, 0 for none |
//! | 38 | 1 | door count n, 1 to 8 |
//! | 39 | 4n | door tags ([`door_tag`]) |
//! | 39+4n | 64 | Ed25519 signature of the issuer over `"doorstep.grant/1\0"` and bytes 0 to 39+4n |

use crate::error::{CoreError, Result};
use crate::keys::{DevicePublicKey, sha256};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use uuid::Uuid;

pub const GRANT_VERSION: u8 = 1;
pub const MAX_DOORS: usize = 8;
/// Grants live a few hours around a delivery slot, never longer.
pub const MAX_VALIDITY_MINUTES: u16 = 720;
const BODY_FIXED: usize = 39;
const SIGNATURE_LEN: usize = 64;
pub const MIN_GRANT_LEN: usize = BODY_FIXED + 4 + SIGNATURE_LEN;
pub const MAX_GRANT_LEN: usize = BODY_FIXED + 4 * MAX_DOORS + SIGNATURE_LEN;
const GRANT_DOMAIN: &[u8] = b"doorstep.grant/1\0";

pub type GrantId = [u8; 8];

/// A parsed grant. Parsing checks the structure only; whether the issuer
/// really signed it is [`Grant::issued_by`], which only a lock (or anyone
/// holding the issuer's public key) can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub grant_id: GrantId,
    pub job_tag: [u8; 4],
    pub device_key_hash: [u8; 16],
    pub not_before: u32,
    pub validity_minutes: u16,
    pub epoch: u16,
    pub use_limit: u8,
    pub door_ids: Vec<u32>,
    pub signature: [u8; 64],
    /// The exact bytes as signed, kept so the grant is forwarded unchanged.
    encoded: Vec<u8>,
}

/// Why grant bytes were refused, before any signature is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrantFormatError {
    #[error("grant is truncated")]
    Truncated,
    #[error("grant version {0} is not supported")]
    UnsupportedVersion(u8),
    #[error("grant names no doors or more than 8")]
    BadDoorCount,
    #[error("grant validity must be 1 to 720 minutes")]
    BadValidity,
    #[error("bytes after the end of the grant")]
    TrailingBytes,
}

impl Grant {
    /// Strict: the whole input must be exactly one grant.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Grant, GrantFormatError> {
        let (grant, used) = Grant::parse_prefix(bytes)?;
        if used != bytes.len() {
            return Err(GrantFormatError::TrailingBytes);
        }
        Ok(grant)
    }

    /// Reads one grant from the front of `bytes`; returns it and its length.
    pub fn parse_prefix(bytes: &[u8]) -> std::result::Result<(Grant, usize), GrantFormatError> {
        if bytes.len() < BODY_FIXED {
            return Err(GrantFormatError::Truncated);
        }
        if bytes[0] != GRANT_VERSION {
            return Err(GrantFormatError::UnsupportedVersion(bytes[0]));
        }
        let doors = bytes[38] as usize;
        if doors == 0 || doors > MAX_DOORS {
            return Err(GrantFormatError::BadDoorCount);
        }
        let body_len = BODY_FIXED + 4 * doors;
        let total = body_len + SIGNATURE_LEN;
        if bytes.len() < total {
            return Err(GrantFormatError::Truncated);
        }
        let validity_minutes = u16::from_be_bytes([bytes[33], bytes[34]]);
        if validity_minutes == 0 || validity_minutes > MAX_VALIDITY_MINUTES {
            return Err(GrantFormatError::BadValidity);
        }
        let door_ids = bytes[BODY_FIXED..body_len].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect();
        let grant = Grant {
            grant_id: bytes[1..9].try_into().expect("8 bytes"),
            job_tag: bytes[9..13].try_into().expect("4 bytes"),
            device_key_hash: bytes[13..29].try_into().expect("16 bytes"),
            not_before: u32::from_be_bytes(bytes[29..33].try_into().expect("4 bytes")),
            validity_minutes,
            epoch: u16::from_be_bytes([bytes[35], bytes[36]]),
            use_limit: bytes[37],
            door_ids,
            signature: bytes[body_len..total].try_into().expect("64 bytes"),
            encoded: bytes[..total].to_vec(),
        };
        Ok((grant, total))
    }

    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    fn signed_part(&self) -> &[u8] {
        &self.encoded[..self.encoded.len() - SIGNATURE_LEN]
    }

    /// Last second of validity (inclusive), Unix seconds.
    pub fn not_after(&self) -> u32 {
        self.not_before.saturating_add(u32::from(self.validity_minutes) * 60)
    }

    pub fn covers_door(&self, door_id: u32) -> bool {
        self.door_ids.contains(&door_id)
    }

    pub fn is_for_device(&self, key: &DevicePublicKey) -> bool {
        self.device_key_hash == device_key_hash(key)
    }

    /// Whether one of `issuers` signed exactly these bytes.
    pub fn issued_by(&self, issuers: &[VerifyingKey]) -> bool {
        let message = [GRANT_DOMAIN, self.signed_part()].concat();
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature);
        issuers.iter().any(|issuer| issuer.verify_strict(&message, &signature).is_ok())
    }

    pub fn grant_id_hex(&self) -> String {
        crate::keys::hex(&self.grant_id)
    }
}

/// A protocol time (Unix seconds) as a date.
pub fn seconds_to_time(seconds: u32) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(i64::from(seconds), 0).unwrap_or_default()
}

pub fn device_key_hash(key: &DevicePublicKey) -> [u8; 16] {
    sha256(&key.to_compressed())[..16].try_into().expect("16 bytes")
}

/// The 32-bit number a grant and a lock use for a door: the first 4 bytes
/// of SHA-256 over `"doorstep.door/1\0"`, the building id, `/` and the
/// door id (the ids of the job's drop-off).
pub fn door_tag(building_id: &str, door_id: &str) -> u32 {
    let digest = sha256(&[b"doorstep.door/1\0".as_slice(), building_id.as_bytes(), b"/", door_id.as_bytes()].concat());
    u32::from_be_bytes(digest[..4].try_into().expect("4 bytes"))
}

pub fn job_tag(job_id: Uuid) -> [u8; 4] {
    sha256(job_id.as_bytes())[..4].try_into().expect("4 bytes")
}

/// What dispatch decides when it issues a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantTerms {
    pub grant_id: GrantId,
    pub job_id: Uuid,
    pub device_key: DevicePublicKey,
    pub door_ids: Vec<u32>,
    pub not_before: u32,
    pub validity_minutes: u16,
    pub epoch: u16,
    pub use_limit: u8,
}

/// An Ed25519 grant issuer: dispatch's signing key (the reference server,
/// tests and QA hold one in memory).
pub struct GrantIssuer {
    key: SigningKey,
}

impl GrantIssuer {
    pub fn generate() -> Result<GrantIssuer> {
        Ok(GrantIssuer { key: SigningKey::from_bytes(&crate::keys::random_bytes::<32>()?) })
    }

    pub fn from_secret(secret: &[u8]) -> Result<GrantIssuer> {
        let secret: [u8; 32] =
            secret.try_into().map_err(|_| CoreError::invalid("secret", "an Ed25519 secret key is 32 bytes"))?;
        Ok(GrantIssuer { key: SigningKey::from_bytes(&secret) })
    }

    pub fn secret(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Encodes and signs a grant; refuses terms the format cannot carry.
    pub fn issue(&self, terms: &GrantTerms) -> Result<Grant> {
        if terms.door_ids.is_empty() || terms.door_ids.len() > MAX_DOORS {
            return Err(CoreError::invalid("door_ids", "a grant names 1 to 8 doors"));
        }
        if terms.validity_minutes == 0 || terms.validity_minutes > MAX_VALIDITY_MINUTES {
            return Err(CoreError::invalid("validity_minutes", "a grant is valid for 1 to 720 minutes"));
        }
        let mut body = Vec::with_capacity(MAX_GRANT_LEN);
        body.push(GRANT_VERSION);
        body.extend_from_slice(&terms.grant_id);
        body.extend_from_slice(&job_tag(terms.job_id));
        body.extend_from_slice(&device_key_hash(&terms.device_key));
        body.extend_from_slice(&terms.not_before.to_be_bytes());
        body.extend_from_slice(&terms.validity_minutes.to_be_bytes());
        body.extend_from_slice(&terms.epoch.to_be_bytes());
        body.push(terms.use_limit);
        body.push(terms.door_ids.len() as u8);
        for door in &terms.door_ids {
            body.extend_from_slice(&door.to_be_bytes());
        }
        let signature = self.key.sign(&[GRANT_DOMAIN, &body].concat());
        body.extend_from_slice(&signature.to_bytes());
        Grant::parse(&body).map_err(|e| CoreError::Internal { reason: format!("issued grant does not parse: {e}") })
    }

    /// Signs a revocation notice: every grant issued before `epoch` is void.
    pub fn revocation_notice(&self, epoch: u16, issued_at: u32) -> RevocationNotice {
        let mut body = Vec::with_capacity(REVOCATION_LEN);
        body.push(REVOCATION_VERSION);
        body.extend_from_slice(&epoch.to_be_bytes());
        body.extend_from_slice(&issued_at.to_be_bytes());
        let signature = self.key.sign(&[REVOCATION_DOMAIN, &body].concat());
        body.extend_from_slice(&signature.to_bytes());
        RevocationNotice { epoch, issued_at, encoded: body }
    }
}

pub const REVOCATION_VERSION: u8 = 1;
/// version 1, epoch 2, issued at 4, signature 64.
pub const REVOCATION_LEN: usize = 71;
const REVOCATION_DOMAIN: &[u8] = b"doorstep.revocation/1\0";

/// The issuer's word that every grant with an epoch below `epoch` is void.
/// Phones carry it to locks that have not heard it yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationNotice {
    pub epoch: u16,
    pub issued_at: u32,
    encoded: Vec<u8>,
}

impl RevocationNotice {
    pub fn parse(bytes: &[u8]) -> std::result::Result<RevocationNotice, GrantFormatError> {
        if bytes.len() < REVOCATION_LEN {
            return Err(GrantFormatError::Truncated);
        }
        if bytes.len() > REVOCATION_LEN {
            return Err(GrantFormatError::TrailingBytes);
        }
        if bytes[0] != REVOCATION_VERSION {
            return Err(GrantFormatError::UnsupportedVersion(bytes[0]));
        }
        Ok(RevocationNotice {
            epoch: u16::from_be_bytes([bytes[1], bytes[2]]),
            issued_at: u32::from_be_bytes(bytes[3..7].try_into().expect("4 bytes")),
            encoded: bytes.to_vec(),
        })
    }

    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    pub fn issued_by(&self, issuers: &[VerifyingKey]) -> bool {
        let message = [REVOCATION_DOMAIN, &self.encoded[..7]].concat();
        let Ok(signature) = <[u8; 64]>::try_from(&self.encoded[7..]) else { return false };
        let signature = ed25519_dalek::Signature::from_bytes(&signature);
        issuers.iter().any(|issuer| issuer.verify_strict(&message, &signature).is_ok())
    }
}

/// Parses an issuer's 32-byte Ed25519 public key.
pub fn issuer_key(bytes: &[u8]) -> Result<VerifyingKey> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| CoreError::invalid("issuer_key", "an Ed25519 public key is 32 bytes"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| CoreError::invalid("issuer_key", "not an Ed25519 public key"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SoftwareSigner;

    pub(crate) fn terms(device: &SoftwareSigner, doors: Vec<u32>) -> GrantTerms {
        GrantTerms {
            grant_id: [7; 8],
            job_id: Uuid::from_u128(42),
            device_key: device.device_public_key(),
            door_ids: doors,
            not_before: 1_800_000_000,
            validity_minutes: 180,
            epoch: 3,
            use_limit: 0,
        }
    }

    #[test]
    fn a_grant_round_trips_has_the_stated_size_and_verifies() {
        let issuer = GrantIssuer::generate().unwrap();
        let device = SoftwareSigner::generate().unwrap();
        let grant = issuer.issue(&terms(&device, vec![11])).unwrap();
        assert_eq!(grant.encoded().len(), 107);
        assert_eq!(issuer.issue(&terms(&device, vec![11, 12])).unwrap().encoded().len(), 111);
        let again = Grant::parse(grant.encoded()).unwrap();
        assert_eq!(again, grant);
        assert!(again.issued_by(&[issuer.verifying_key()]));
        assert!(!again.issued_by(&[GrantIssuer::generate().unwrap().verifying_key()]));
        assert!(again.is_for_device(&device.device_public_key()));
        assert_eq!(again.not_after(), 1_800_000_000 + 180 * 60);
    }

    #[test]
    fn malformed_grants_are_refused() {
        let issuer = GrantIssuer::generate().unwrap();
        let device = SoftwareSigner::generate().unwrap();
        let bytes = issuer.issue(&terms(&device, vec![11])).unwrap().encoded().to_vec();
        for len in 0..bytes.len() {
            assert!(Grant::parse(&bytes[..len]).is_err(), "length {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Grant::parse(&longer), Err(GrantFormatError::TrailingBytes));
        assert!(issuer.issue(&terms(&device, vec![])).is_err());
        assert!(issuer.issue(&terms(&device, (0..9).collect())).is_err());
    }

    #[test]
    fn revocation_notices_verify_and_refuse_tampering() {
        let issuer = GrantIssuer::generate().unwrap();
        let notice = issuer.revocation_notice(9, 1_800_000_000);
        let parsed = RevocationNotice::parse(notice.encoded()).unwrap();
        assert_eq!(parsed.epoch, 9);
        assert!(parsed.issued_by(&[issuer.verifying_key()]));
        let mut bytes = notice.encoded().to_vec();
        bytes[2] ^= 1;
        assert!(!RevocationNotice::parse(&bytes).unwrap().issued_by(&[issuer.verifying_key()]));
    }
}
