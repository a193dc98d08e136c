//! Signing and checking handoff offers, acceptances and receipts.
//!
//! The staff device signs an offer; the driver's device signs the offer's
//! hash. The pair is the receipt both sides keep: anyone with it can check
//! both signatures, and each job's `previous_receipt` names the receipt under
//! which the giver held the packages, so custody is a verifiable chain
//! (store → driver → recipient, or → store again).

use super::codec::{self, Acceptance, Message, OfferContent, SignedOffer};
use crate::error::{CoreError, Result};
use crate::keys::{DeviceSigner, DevicePublicKey, hex, from_hex, sha256, sign_checked};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// What a record of a receipt says it is, on the wire.
pub const RECORD_FORMAT: &str = "doorstep.handoff-receipt/1";

// Signatures are over a context string and the bytes, so a signature made
// for one purpose can never be replayed as another.
const OFFER_CONTEXT: &[u8] = b"doorstep handoff offer v1\n";
const ACCEPTANCE_CONTEXT: &[u8] = b"doorstep handoff acceptance v1\n";

/// Signs an offer with the staff device's key; the key must be the one the
/// offer names.
pub fn sign_offer(content: OfferContent, staff_signer: &dyn DeviceSigner) -> Result<SignedOffer> {
    let bytes = codec::offer_content_bytes(&content)?;
    let (signature, key) = sign_checked(staff_signer, &[OFFER_CONTEXT, &bytes].concat())?;
    if key != content.staff_key {
        return Err(CoreError::invalid("staff_key", "the offer names another key than the staff device's"));
    }
    Ok(SignedOffer { content, signature })
}

/// Checks the staff signature of an offer.
pub fn verify_offer(offer: &SignedOffer) -> Result<()> {
    let bytes = codec::offer_content_bytes(&offer.content)?;
    if offer.content.staff_key.verifies(&[OFFER_CONTEXT, &bytes].concat(), &offer.signature) {
        Ok(())
    } else {
        Err(CoreError::HandoffSignatureInvalid { what: "offer".into() })
    }
}

/// The signed offer's bytes and their SHA-256: what an acceptance names.
pub fn offer_bytes(offer: &SignedOffer) -> Result<Vec<u8>> {
    Ok(codec::encode(&Message::Offer(offer.clone()))?)
}

pub fn offer_hash(offer: &SignedOffer) -> Result<[u8; 32]> {
    Ok(sha256(&offer_bytes(offer)?))
}

/// The driver's device signs that it took (or gave back) what the offer
/// lists. The signer must hold the key the offer names.
pub fn accept_offer(offer: &SignedOffer, driver_signer: &dyn DeviceSigner, at: DateTime<Utc>) -> Result<Acceptance> {
    let at = whole_millis(at);
    let offer_hash = offer_hash(offer)?;
    let content = codec::acceptance_content_bytes(&offer_hash, at);
    let (signature, key) = sign_checked(driver_signer, &[ACCEPTANCE_CONTEXT, &content[..]].concat())?;
    if key != offer.content.driver_key {
        return Err(CoreError::HandoffWrongDevice { expected_key_id: offer.content.driver_key.key_id(), actual_key_id: key.key_id() });
    }
    Ok(Acceptance { offer_hash, accepted_at: at, signature })
}

/// Checks that an acceptance is the named driver's signature over this offer.
pub fn verify_acceptance(offer: &SignedOffer, acceptance: &Acceptance) -> Result<()> {
    if acceptance.offer_hash != offer_hash(offer)? {
        return Err(CoreError::HandoffMismatch { reason: "the acceptance is for another offer".into() });
    }
    let content = codec::acceptance_content_bytes(&acceptance.offer_hash, acceptance.accepted_at);
    if offer.content.driver_key.verifies(&[ACCEPTANCE_CONTEXT, &content[..]].concat(), &acceptance.signature) {
        Ok(())
    } else {
        Err(CoreError::HandoffSignatureInvalid { what: "acceptance".into() })
    }
}

/// Times in the codes have millisecond precision; signing a finer time
/// would sign something the bytes cannot carry.
pub fn whole_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

/// A handoff both devices signed. Built only by [`HandoffReceipt::verified`],
/// so a value of this type always checks out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffReceipt {
    pub offer: SignedOffer,
    pub acceptance: Acceptance,
}

impl HandoffReceipt {
    pub fn verified(offer: SignedOffer, acceptance: Acceptance) -> Result<HandoffReceipt> {
        verify_offer(&offer)?;
        verify_acceptance(&offer, &acceptance)?;
        Ok(HandoffReceipt { offer, acceptance })
    }

    /// The signed offer's bytes followed by the acceptance's: the exact
    /// bytes both devices keep and the server checks.
    pub fn to_bytes(&self) -> Result<(Vec<u8>, Vec<u8>)> {
        Ok((offer_bytes(&self.offer)?, codec::encode(&Message::Acceptance(self.acceptance.clone()))?))
    }

    /// The receipt's identity in the custody chain: SHA-256 of the offer's
    /// bytes followed by the acceptance's.
    pub fn hash(&self) -> Result<[u8; 32]> {
        let (offer, acceptance) = self.to_bytes()?;
        Ok(sha256(&[offer, acceptance].concat()))
    }

    pub fn from_bytes(offer: &[u8], acceptance: &[u8]) -> Result<HandoffReceipt> {
        let offer = match codec::decode(offer)? {
            Message::Offer(offer) => offer,
            _ => return Err(CoreError::invalid("offer", "not a handoff offer")),
        };
        let acceptance = match codec::decode(acceptance)? {
            Message::Acceptance(acceptance) => acceptance,
            _ => return Err(CoreError::invalid("acceptance", "not a handoff acceptance")),
        };
        HandoffReceipt::verified(offer, acceptance)
    }

    /// The record queued for dispatch: the signed bytes (what is verified)
    /// and a readable summary of them (what dispatch's tools show).
    pub fn to_record_body(&self) -> Result<Value> {
        let (offer, acceptance) = self.to_bytes()?;
        let content = &self.offer.content;
        Ok(json!({
            "format": RECORD_FORMAT,
            "receipt_hash": hex(&self.hash()?),
            "offer_hash": hex(&self.acceptance.offer_hash),
            "offer": hex(&offer),
            "acceptance": hex(&acceptance),
            "direction": content.direction.as_str(),
            "handoff_id": content.handoff_id.to_string(),
            "store_id": content.store_id.to_string(),
            "staff_key": hex(&content.staff_key.to_compressed()),
            "driver_key": hex(&content.driver_key.to_compressed()),
            "offered_at": content.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "accepted_at": self.acceptance.accepted_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "jobs": content.jobs.iter().map(|job| json!({
                "job_id": job.job_id.to_string(),
                "confirmed": job.confirmed,
                "discrepancies": job.discrepancies,
                "partial_reason": job.partial_reason,
                "previous_receipt": job.previous_receipt.map(|h| hex(&h)),
            })).collect::<Vec<_>>(),
        }))
    }

    /// Reads a record back (dispatch does this): both signatures are checked
    /// and the readable summary must say exactly what the signed bytes say.
    pub fn from_record_body(body: &Value) -> Result<HandoffReceipt> {
        let field = |name: &str| {
            body.get(name).and_then(Value::as_str).ok_or_else(|| CoreError::invalid(format!("record.{name}"), "missing or not text"))
        };
        if field("format")? != RECORD_FORMAT {
            return Err(CoreError::invalid("record.format", format!("expected {RECORD_FORMAT:?}")));
        }
        let bytes = |name: &str| from_hex(field(name)?).ok_or_else(|| CoreError::invalid(format!("record.{name}"), "not hex"));
        let receipt = HandoffReceipt::from_bytes(&bytes("offer")?, &bytes("acceptance")?)?;
        if &receipt.to_record_body()? != body {
            return Err(CoreError::HandoffMismatch { reason: "the record's summary differs from its signed bytes".into() });
        }
        Ok(receipt)
    }

    pub fn staff_key(&self) -> DevicePublicKey {
        self.offer.content.staff_key
    }

    pub fn driver_key(&self) -> DevicePublicKey {
        self.offer.content.driver_key
    }
}

/// One receipt as it concerns one job: what the job's screen shows as
/// "handed over" (or "returned"), and what a later receipt chains to.
#[derive(Debug, Clone, PartialEq)]
pub struct JobCustody {
    pub job_id: uuid::Uuid,
    /// Hex of the receipt hash: the link the next custody record names.
    pub receipt_hash: String,
    pub handoff_id: uuid::Uuid,
    pub direction: codec::Direction,
    pub store_id: uuid::Uuid,
    pub confirmed: Vec<String>,
    pub discrepancies: Vec<codec::Discrepancy>,
    pub partial_reason: Option<String>,
    /// Hex of the receipt this one follows in the chain.
    pub previous_receipt: Option<String>,
    pub staff_key_id: String,
    pub driver_key_id: String,
    pub offered_at: DateTime<Utc>,
    pub accepted_at: DateTime<Utc>,
}

impl JobCustody {
    /// The job's part of a receipt; `None` when the receipt does not list it.
    pub fn of(receipt: &HandoffReceipt, job_id: uuid::Uuid) -> Result<Option<JobCustody>> {
        let content = &receipt.offer.content;
        let Some(job) = content.jobs.iter().find(|job| job.job_id == job_id) else { return Ok(None) };
        Ok(Some(JobCustody {
            job_id,
            receipt_hash: hex(&receipt.hash()?),
            handoff_id: content.handoff_id,
            direction: content.direction,
            store_id: content.store_id,
            confirmed: job.confirmed.clone(),
            discrepancies: job.discrepancies.clone(),
            partial_reason: job.partial_reason.clone(),
            previous_receipt: job.previous_receipt.map(|h| hex(&h)),
            staff_key_id: content.staff_key.key_id(),
            driver_key_id: content.driver_key.key_id(),
            offered_at: content.created_at,
            accepted_at: receipt.acceptance.accepted_at,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::codec::tests::sample_content;
    use crate::keys::SoftwareSigner;

    fn signers() -> (SoftwareSigner, SoftwareSigner) {
        (SoftwareSigner::from_secret(&[7u8; 32]).unwrap(), SoftwareSigner::from_secret(&[9u8; 32]).unwrap())
    }

    fn receipt() -> HandoffReceipt {
        let (staff, driver) = signers();
        let offer = sign_offer(sample_content(10), &staff).unwrap();
        let acceptance = accept_offer(&offer, &driver, "2026-11-23T17:06:00.5Z".parse().unwrap()).unwrap();
        HandoffReceipt::verified(offer, acceptance).unwrap()
    }

    #[test]
    fn a_receipt_verifies_and_survives_its_record() {
        let receipt = receipt();
        let body = receipt.to_record_body().unwrap();
        assert_eq!(HandoffReceipt::from_record_body(&body).unwrap(), receipt);
    }

    #[test]
    fn any_changed_byte_of_either_half_breaks_the_receipt() {
        let (offer, acceptance) = receipt().to_bytes().unwrap();
        for index in 0..offer.len() {
            let mut changed = offer.clone();
            changed[index] ^= 0x01;
            assert!(HandoffReceipt::from_bytes(&changed, &acceptance).is_err(), "offer byte {index}");
        }
        for index in 0..acceptance.len() {
            let mut changed = acceptance.clone();
            changed[index] ^= 0x01;
            assert!(HandoffReceipt::from_bytes(&offer, &changed).is_err(), "acceptance byte {index}");
        }
    }

    #[test]
    fn a_record_whose_summary_was_edited_is_refused() {
        let mut body = receipt().to_record_body().unwrap();
        body["jobs"][0]["confirmed"][0] = json!("PKG-SWAPPED");
        assert!(matches!(HandoffReceipt::from_record_body(&body), Err(CoreError::HandoffMismatch { .. })));
    }

    #[test]
    fn only_the_named_keys_can_sign() {
        let (staff, driver) = signers();
        let other = SoftwareSigner::from_secret(&[11u8; 32]).unwrap();
        assert!(sign_offer(sample_content(2), &other).is_err());
        let offer = sign_offer(sample_content(2), &staff).unwrap();
        assert!(matches!(accept_offer(&offer, &other, Utc::now()), Err(CoreError::HandoffWrongDevice { .. })));
        let acceptance = accept_offer(&offer, &driver, Utc::now()).unwrap();
        let mut forged = acceptance.clone();
        forged.accepted_at += chrono::Duration::seconds(1);
        assert!(matches!(verify_acceptance(&offer, &forged), Err(CoreError::HandoffSignatureInvalid { .. })));
    }
}
