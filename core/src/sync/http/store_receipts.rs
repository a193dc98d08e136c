//! `POST /v1/stores/{store_id}/receipts`: a store staff device sending one
//! handoff receipt (docs/dispatch-api.yaml). Dispatch keeps each receipt
//! once; a resend is acknowledged as a duplicate.

use super::{DispatchClient, parse_json, read_body};
use crate::error::CoreError;
use crate::sync::SyncFailure;
use reqwest::{Method, header};
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize)]
struct ReceiptAck {
    receipt_hash: String,
    outcome: String,
}

impl DispatchClient {
    /// Sends one receipt (its record body, JSON) for `store_id`; `Ok` once
    /// dispatch holds the receipt with `receipt_hash` (hex).
    pub async fn send_store_receipt(&self, store_id: Uuid, receipt_hash: &str, body: &[u8]) -> Result<(), SyncFailure> {
        let path = format!("/v1/stores/{store_id}/receipts");
        let response = self
            .send(Method::POST, &path, |request| request.header(header::CONTENT_TYPE, "application/json").body(body.to_vec()))
            .await?;
        let bytes = read_body(response).await?;
        let ack: ReceiptAck = parse_json(&bytes)?;
        acknowledges(&ack, receipt_hash).map_err(|reason| SyncFailure::Permanent(CoreError::BadResponse { reason }))
    }
}

/// Whether dispatch's answer says it holds this receipt.
fn acknowledges(ack: &ReceiptAck, receipt_hash: &str) -> Result<(), String> {
    if !ack.receipt_hash.eq_ignore_ascii_case(receipt_hash) {
        return Err(format!("acknowledged receipt {} where {receipt_hash} was sent", ack.receipt_hash));
    }
    match ack.outcome.as_str() {
        "stored" | "duplicate" => Ok(()),
        other => Err(format!("unknown receipt outcome {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_answer_naming_the_sent_receipt_acknowledges_it() {
        let ack = |hash: &str, outcome: &str| ReceiptAck { receipt_hash: hash.into(), outcome: outcome.into() };
        assert!(acknowledges(&ack("ab01", "stored"), "ab01").is_ok());
        assert!(acknowledges(&ack("AB01", "duplicate"), "ab01").is_ok());
        assert!(acknowledges(&ack("ab02", "stored"), "ab01").is_err());
        assert!(acknowledges(&ack("ab01", "queued"), "ab01").is_err());
    }
}
