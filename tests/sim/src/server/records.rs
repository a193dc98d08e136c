//! Signed records arriving with mutations: proofs of delivery, failed
//! delivery evidence, handoff receipts and door audits.
//!
//! Owns what the server accepts as a record: a known kind, a JSON object of
//! bounded size, and the checks each kind's evidence must pass before it is
//! kept. Storage is [`super::storage::records`]'s.

use super::problem::Problem;
use super::wire::MutationRecord;
use doorstep_core::store::RecordKind;
use rusqlite::Transaction;

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
/// with the reason).
pub fn verify(_tx: &Transaction<'_>, record: &MutationRecord) -> Result<(), Problem> {
    let kind = check(record).map_err(|(field, detail)| Problem::invalid(format!("record.{field}"), detail))?;
    match kind {
        RecordKind::DoorAudit => super::doors::verify_audit(&record.body),
        RecordKind::ProofOfDelivery | RecordKind::FailedDelivery | RecordKind::HandoffReceipt => Ok(()),
    }
}
