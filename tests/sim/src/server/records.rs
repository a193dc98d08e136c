//! Signed records arriving with mutations: proofs of delivery, failed
//! delivery evidence, handoff receipts and door audits.
//!
//! Owns what the server accepts as a record: a known kind, a JSON object of
//! bounded size, and the checks each kind's evidence must pass before it is
//! kept. Storage is [`super::storage::records`]'s.

use super::problem::Problem;
use super::storage::media as stored_media;
use super::wire::MutationRecord;
use doorstep_core::store::RecordKind;
use rusqlite::Transaction;
use uuid::Uuid;

/// The largest record body the server keeps (serialized JSON).
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// The shape every record must have, checked with the batch before anything
/// is processed: (field, detail) when it is wrong.
pub fn check(record: &MutationRecord) -> Result<RecordKind, (&'static str, String)> {
    let kind = RecordKind::parse(&record.kind).ok_or(("kind", format!("{:?} is not a record kind", record.kind)))?;
    if !record.body.is_object() {
        return Err(("body", "a record body is a JSON object".to_owned()));
    }
    let size = record.body.to_string().len();
    if size > MAX_RECORD_BYTES {
        return Err(("body", format!("{size} bytes; a record is at most {MAX_RECORD_BYTES}")));
    }
    Ok(kind)
}

/// The checks a record's evidence must pass before the server keeps it; a
/// record that fails them is rejected (the mutation is wedged on the device
/// with the reason). Its shape and size were checked with its batch
/// ([`check`]), so only the kind is read again here.
pub fn verify(tx: &Transaction<'_>, driver_id: &str, job_id: Uuid, record: &MutationRecord) -> Result<(), Problem> {
    let kind = RecordKind::parse(&record.kind)
        .ok_or_else(|| Problem::invalid("record.kind", format!("{:?} is not a record kind", record.kind)))?;
    match kind {
        RecordKind::ProofOfDelivery | RecordKind::FailedDelivery => verify_sealed_pod(tx, driver_id, record),
        RecordKind::HandoffReceipt => super::handoff_records::verify_for_job(record, job_id).map(|_| ()),
        RecordKind::DoorAudit => super::doors::verify_audit(&record.body),
    }
}

/// A sealed proof of delivery (or failed attempt): canonical, signed by the
/// key it names, and every photo it cites already uploaded whole with the
/// hash and size it states. The device uploads media before the record, so
/// a missing file means the record cannot be trusted yet.
fn verify_sealed_pod(tx: &Transaction<'_>, driver_id: &str, record: &MutationRecord) -> Result<(), Problem> {
    use doorstep_core::pod::seal::{canonical_json, check_media, open_sealed_record};
    let invalid = |err: doorstep_core::CoreError| match err {
        doorstep_core::CoreError::InvalidInput { field, reason } => Problem::invalid(format!("record.body.{field}"), reason),
        other => Problem::invalid("record.body", other.to_string()),
    };
    let sealed = open_sealed_record(&canonical_json(&record.body)).map_err(invalid)?;
    // A record that verifies against the key it names proves only that
    // someone holding that key signed it: the key must be one this driver's
    // devices registered.
    let key = doorstep_core::keys::from_hex(&sealed.public_key).unwrap_or_default();
    if !super::storage::doors::was_registered(tx, driver_id, &key).map_err(|_| Problem::internal())? {
        return Err(Problem::invalid(
            "record.body.public_key",
            "sealed by a key none of this driver's devices registered (PUT /v1/device-key)",
        ));
    }
    let media = |sha256: &str| -> Option<Vec<u8>> {
        let held = stored_media::get(tx, sha256).ok()??;
        if !held.complete {
            return None;
        }
        let mut bytes = Vec::with_capacity(held.size as usize);
        stored_media::read_chunks(tx, sha256, |chunk| bytes.extend_from_slice(chunk)).ok()?;
        Some(bytes)
    };
    check_media(&sealed.payload, &media).map_err(invalid)
}
