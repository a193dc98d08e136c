//! The sealed proof-of-delivery record: a canonical serialization holding
//! the hashes of every artifact, signed by the device key.
//!
//! Canonical form: compact JSON, object keys sorted by their UTF-8 bytes,
//! no floats (positions are integers), strings as serde_json writes them.
//! A record is accepted only if it is byte for byte its own canonical form,
//! so any changed byte either breaks the signature or the canonical check;
//! every photo is then checked against the hash the record carries.

use super::draft::{AgeCheck, LocationFix, MediaRef, PinProgress, Scan, SignatureCapture};
use super::failed::FailureNextStep;
use crate::error::{CoreError, Result};
use crate::jobs::{DeliveryMethod, FailureReason};
use crate::keys::{DevicePublicKey, DeviceSigner, from_hex, hex, sha256, sign_checked};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub const POD_FORMAT: &str = "doorstep.pod/1";
pub const SEALED_FORMAT: &str = "doorstep.sealed/1";
/// Prefixed to what the device key signs, so a PoD signature can never be
/// passed off as a signature of anything else the key signs.
const SIGNING_CONTEXT: &[u8] = b"doorstep.pod/1\0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Delivered,
    Failed,
}

/// How the completion policy judged the place of completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletionRecord {
    /// `within_geofence`, `warn`, `override` or `no_fix`.
    pub verdict: String,
    /// Metres beyond the drop-off's geofence, rounded.
    pub distance_m: Option<u64>,
    /// The driver's reason for completing beyond the block distance.
    pub override_reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRecord {
    pub reason: FailureReason,
    pub next_step: FailureNextStep,
}

/// When the record was sealed, by the device's clock and corrected by the
/// offset to dispatch's clock learned at the last sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordTimes {
    pub started_at: DateTime<Utc>,
    pub device_time: DateTime<Utc>,
    pub server_time: DateTime<Utc>,
    pub server_offset_ms: i64,
}

/// What the device key signs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodPayload {
    pub format: String,
    pub outcome: Outcome,
    pub job_id: Uuid,
    pub job_reference: String,
    pub client_id: Uuid,
    pub method: Option<DeliveryMethod>,
    pub recipient_name: Option<String>,
    pub note: Option<String>,
    pub photos: Vec<MediaRef>,
    pub signature: Option<SignatureCapture>,
    pub scans: Vec<Scan>,
    pub pin: Option<PinProgress>,
    pub age_check: Option<AgeCheck>,
    pub failure: Option<FailureRecord>,
    pub location: Option<LocationFix>,
    pub completion: CompletionRecord,
    pub times: RecordTimes,
    /// Hex of the handoff receipt by which the driver took custody of the
    /// packages at the store: the link that makes store → driver →
    /// recipient one verifiable chain. Absent when the job was picked up
    /// without a handoff receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custody_receipt: Option<String>,
}

impl PodPayload {
    /// Every media file the record cites.
    pub fn media(&self) -> Vec<&MediaRef> {
        self.photos.iter().chain(self.signature.as_ref().map(|s| &s.png)).collect()
    }
}

/// The payload with its signature and the key that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedRecord {
    pub format: String,
    pub payload: PodPayload,
    /// Compressed SEC1 P-256 point, hex.
    pub public_key: String,
    pub key_id: String,
    /// ECDSA P-256 / SHA-256, raw `r || s`, hex.
    pub signature: String,
}

impl SealedRecord {
    /// Signs `payload` with the device key (checked against its own public
    /// key before it is accepted).
    pub fn seal(payload: PodPayload, signer: &dyn DeviceSigner) -> Result<SealedRecord> {
        let message = signing_message(&payload)?;
        let (signature, public_key) = sign_checked(signer, &message)?;
        Ok(SealedRecord {
            format: SEALED_FORMAT.to_owned(),
            payload,
            public_key: hex(&public_key.to_compressed()),
            key_id: public_key.key_id(),
            signature: hex(&signature),
        })
    }

    pub fn to_value(&self) -> Result<Value> {
        serde_json::to_value(self).map_err(|e| CoreError::Internal { reason: format!("serializing a record: {e}") })
    }

    /// The canonical bytes: what is stored, sent and verified.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(canonical_json(&self.to_value()?))
    }
}

fn signing_message(payload: &PodPayload) -> Result<Vec<u8>> {
    let value = serde_json::to_value(payload).map_err(|e| CoreError::Internal { reason: format!("serializing a record: {e}") })?;
    Ok(signing_message_of(&value))
}

/// The signed bytes, from the payload's JSON as it stands. A verifier must
/// use the payload exactly as received, never a re-serialization of what it
/// parsed: parsing forgives case in UUIDs and timestamps, so a re-serialized
/// payload would hide such a changed byte from the signature.
fn signing_message_of(payload: &Value) -> Vec<u8> {
    let mut message = SIGNING_CONTEXT.to_vec();
    message.extend_from_slice(&canonical_json(payload));
    message
}

/// Checks a sealed record: canonical bytes, signed by `public_key` over its
/// payload, and every cited media file (fetched with `media`, by SHA-256)
/// present with exactly the hash and size the record states. Returns the
/// payload. Any changed byte of the record or of a photo fails with
/// `InvalidInput` naming what failed.
pub fn verify_sealed_record(
    record_bytes: &[u8],
    public_key: &DevicePublicKey,
    media: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<PodPayload> {
    let record = open_sealed_record(record_bytes)?;
    if record.public_key != hex(&public_key.to_compressed()) {
        return Err(CoreError::invalid("record.public_key", "sealed by another device key"));
    }
    check_media(&record.payload, media)?;
    Ok(record.payload)
}

/// Checks a record's form and signature against the key it names (what a
/// server does before it knows the device); not its media.
pub fn open_sealed_record(record_bytes: &[u8]) -> Result<SealedRecord> {
    let bad = |reason: String| CoreError::invalid("record", reason);
    let value: Value = serde_json::from_slice(record_bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    if canonical_json(&value) != record_bytes {
        return Err(bad("not in canonical form".into()));
    }
    let signed_payload = value.get("payload").cloned().unwrap_or(Value::Null);
    let record: SealedRecord = serde_json::from_value(value).map_err(|e| bad(format!("not a sealed record: {e}")))?;
    if record.format != SEALED_FORMAT || record.payload.format != POD_FORMAT {
        return Err(bad(format!("unknown format {:?} / {:?}", record.format, record.payload.format)));
    }
    let strict_hex = |text: &str| text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let key_bytes = (strict_hex(&record.public_key)).then(|| from_hex(&record.public_key)).flatten();
    let key = key_bytes.as_deref().map(DevicePublicKey::parse).transpose()?.ok_or_else(|| bad("public key is not lower-case hex".into()))?;
    if key.to_compressed().as_slice() != key_bytes.as_deref().unwrap_or_default() || key.key_id() != record.key_id {
        return Err(bad("the key id or key encoding does not match the key".into()));
    }
    let signature = (strict_hex(&record.signature) && record.signature.len() == 128)
        .then(|| from_hex(&record.signature))
        .flatten()
        .ok_or_else(|| bad("signature is not 64 bytes of lower-case hex".into()))?;
    if !key.verifies(&signing_message_of(&signed_payload), &signature) {
        return Err(bad("the signature does not match the record".into()));
    }
    Ok(record)
}

/// Every media file the payload cites is there and matches its hash and size.
pub fn check_media(payload: &PodPayload, media: &dyn Fn(&str) -> Option<Vec<u8>>) -> Result<()> {
    for cited in payload.media() {
        let field = format!("media.{}", cited.sha256);
        let bytes = media(&cited.sha256).ok_or_else(|| CoreError::invalid(&field, "the file is missing"))?;
        if hex(&sha256(&bytes)) != cited.sha256 || bytes.len() as u64 != cited.size_bytes {
            return Err(CoreError::invalid(&field, "the file does not match the hash in the record"));
        }
    }
    Ok(())
}

/// Compact JSON with object keys sorted: one byte string per value.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::String(text) => write_string(text, out),
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

fn write_string(text: &str, out: &mut Vec<u8>) {
    // serde_json's own escaping: the one form its parser reads back the same.
    out.extend_from_slice(Value::String(text.to_owned()).to_string().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_round_trips() {
        let value: Value = serde_json::from_str(r#"{"b":[1,{"d":null,"c":"x\n"}],"a":true}"#).unwrap();
        let bytes = canonical_json(&value);
        assert_eq!(bytes, br#"{"a":true,"b":[1,{"c":"x\n","d":null}]}"#);
        let again: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(canonical_json(&again), bytes);
    }
}
