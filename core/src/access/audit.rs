//! The lock's audit records: one per attempt, numbered, each with an
//! HMAC-SHA256 under a key the lock shares with dispatch only. A phone
//! carries records from the lock to dispatch; it can drop one (dispatch
//! sees the gap in the sequence numbers) but cannot alter or forge one.
//!
//! Record layout (34 bytes, big-endian) followed by the 32-byte MAC over
//! `"doorstep.audit/1\0"` and the record: sequence 4, lock id 4, door id 4,
//! lock time 4, grant id 8, job tag 4, counter 4, action 1, reason 1.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const AUDIT_BODY_LEN: usize = 34;
pub const AUDIT_RECORD_LEN: usize = AUDIT_BODY_LEN + 32;
const AUDIT_DOMAIN: &[u8] = b"doorstep.audit/1\0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditRecord {
    pub sequence: u32,
    pub lock_id: u32,
    pub door_id: u32,
    pub lock_time: u32,
    /// Zero when the attempt did not get as far as a readable grant.
    pub grant_id: [u8; 8],
    pub job_tag: [u8; 4],
    pub counter: u32,
    pub action: u8,
    /// 0 for opened, else the [`super::Reason`] code.
    pub reason: u8,
    pub mac: [u8; 32],
}

impl AuditRecord {
    fn body(&self) -> [u8; AUDIT_BODY_LEN] {
        let mut out = [0u8; AUDIT_BODY_LEN];
        out[0..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.lock_id.to_be_bytes());
        out[8..12].copy_from_slice(&self.door_id.to_be_bytes());
        out[12..16].copy_from_slice(&self.lock_time.to_be_bytes());
        out[16..24].copy_from_slice(&self.grant_id);
        out[24..28].copy_from_slice(&self.job_tag);
        out[28..32].copy_from_slice(&self.counter.to_be_bytes());
        out[32] = self.action;
        out[33] = self.reason;
        out
    }

    pub fn encode(&self) -> [u8; AUDIT_RECORD_LEN] {
        let mut out = [0u8; AUDIT_RECORD_LEN];
        out[..AUDIT_BODY_LEN].copy_from_slice(&self.body());
        out[AUDIT_BODY_LEN..].copy_from_slice(&self.mac);
        out
    }

    /// Reads a record without checking its MAC (only the key holder can).
    pub fn parse(bytes: &[u8]) -> Option<AuditRecord> {
        if bytes.len() != AUDIT_RECORD_LEN {
            return None;
        }
        let be32 = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        Some(AuditRecord {
            sequence: be32(0),
            lock_id: be32(4),
            door_id: be32(8),
            lock_time: be32(12),
            grant_id: bytes[16..24].try_into().ok()?,
            job_tag: bytes[24..28].try_into().ok()?,
            counter: be32(28),
            action: bytes[32],
            reason: bytes[33],
            mac: bytes[34..].try_into().ok()?,
        })
    }

    /// Fills in the MAC under `key`.
    pub fn sealed(mut self, key: &[u8; 32]) -> AuditRecord {
        self.mac = mac(key, &self.body());
        self
    }

    /// Whether the MAC is right under `key` (constant time).
    pub fn verifies(&self, key: &[u8; 32]) -> bool {
        let mut check = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        check.update(AUDIT_DOMAIN);
        check.update(&self.body());
        check.verify_slice(&self.mac).is_ok()
    }
}

fn mac(key: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(AUDIT_DOMAIN);
    mac.update(body);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_byte_breaks_the_mac() {
        let key = [9u8; 32];
        let record = AuditRecord {
            sequence: 1,
            lock_id: 2,
            door_id: 3,
            lock_time: 4,
            grant_id: [5; 8],
            job_tag: [6; 4],
            counter: 7,
            action: 1,
            reason: 0,
            mac: [0; 32],
        }
        .sealed(&key);
        assert!(record.verifies(&key));
        assert!(!record.verifies(&[8u8; 32]));
        let bytes = record.encode();
        for i in 0..bytes.len() {
            let mut changed = bytes;
            changed[i] ^= 0x01;
            assert!(!AuditRecord::parse(&changed).unwrap().verifies(&key), "byte {i}");
        }
    }
}
