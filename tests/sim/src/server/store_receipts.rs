//! Handoff receipts sent by store staff devices (`/v1/stores/{store_id}/receipts`),
//! the store bearer tokens they authenticate with, and the admin view of
//! what a store sent.
//!
//! A receipt is checked exactly as one arriving with a driver's mutation
//! (both signatures, the summary against the signed bytes, by the core's own
//! verifier) and must be the calling store's. Kept once per receipt hash: a
//! resend is answered as a duplicate. Must not change jobs: custody moves
//! with the driver's mutations.

use super::AppState;
use super::problem::Problem;
use super::records::MAX_RECORD_BYTES;
use super::storage::store_receipts;
use super::wire::IssuedToken;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use doorstep_core::handoff::HandoffReceipt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The store a request's store token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticatedStore {
    pub store_id: Uuid,
}

impl FromRequestParts<AppState> for AuthenticatedStore {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(super::auth::bearer_token)
            .map(str::to_owned)
            .ok_or_else(|| Problem::unauthorized("a store bearer token is required"))?;
        let store_id = state.db.call(move |tx| store_receipts::store_of(tx, &token)).await?;
        store_id
            .map(|store_id| AuthenticatedStore { store_id })
            .ok_or_else(|| Problem::unauthorized("the token is not a live store token"))
    }
}

/// What the server answers a store device that sent a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptAck {
    pub receipt_hash: String,
    /// `stored` the first time, `duplicate` for a resend.
    pub outcome: String,
}

/// A store's receipt as the admin view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreReceipt {
    pub receipt_hash: String,
    pub handoff_id: Uuid,
    pub job_ids: Vec<Uuid>,
    pub body: serde_json::Value,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreReceipts {
    pub store_id: Uuid,
    pub receipts: Vec<StoreReceipt>,
}

pub fn parse_store_id(text: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(text).map_err(|_| Problem::invalid("store_id", "a store id is a UUID"))
}

pub async fn issue_token(state: &AppState, store_id: &str) -> Result<IssuedToken, Problem> {
    let store_id = parse_store_id(store_id)?;
    let token = Uuid::new_v4().simple().to_string();
    let issued = token.clone();
    state.db.call(move |tx| store_receipts::insert_token(tx, &issued, store_id, Utc::now())).await?;
    Ok(IssuedToken { token })
}

/// Checks a receipt the way a driver's record is checked, and that it is
/// `store_id`'s; returns it with its hash.
pub fn verify(store_id: Uuid, body: &serde_json::Value) -> Result<(HandoffReceipt, String), Problem> {
    if !body.is_object() {
        return Err(Problem::invalid("body", "a receipt is a JSON object"));
    }
    let size = body.to_string().len();
    if size > MAX_RECORD_BYTES {
        return Err(Problem::invalid("body", format!("{size} bytes; a receipt is at most {MAX_RECORD_BYTES}")));
    }
    let receipt = HandoffReceipt::from_record_body(body).map_err(|e| Problem::invalid("body", e.to_string()))?;
    let offered_by = receipt.offer.content.store_id;
    if offered_by != store_id {
        return Err(Problem::invalid("body.store_id", format!("the receipt is of store {offered_by}, not {store_id}")));
    }
    let hash = receipt.hash().map_err(|e| Problem::invalid("body", e.to_string()))?;
    Ok((receipt, doorstep_core::keys::hex(&hash)))
}

/// Keeps a store's receipt once; `(201, stored)` the first time, `(200,
/// duplicate)` after.
pub async fn receive(
    state: &AppState,
    caller: AuthenticatedStore,
    store_id: &str,
    body: serde_json::Value,
) -> Result<(StatusCode, ReceiptAck), Problem> {
    let store_id = parse_store_id(store_id)?;
    if caller.store_id != store_id {
        return Err(Problem::new(StatusCode::FORBIDDEN, "forbidden", "The token is for another store")
            .with_detail(format!("the token stands for store {}", caller.store_id)));
    }
    let (receipt, receipt_hash) = verify(store_id, &body)?;
    let handoff_id = receipt.offer.content.handoff_id;
    let hash = receipt_hash.clone();
    let new = state.db.call(move |tx| store_receipts::insert_receipt(tx, &hash, store_id, handoff_id, &body, Utc::now())).await?;
    let (status, outcome) = if new { (StatusCode::CREATED, "stored") } else { (StatusCode::OK, "duplicate") };
    tracing::info!(%store_id, %receipt_hash, outcome, "store receipt");
    Ok((status, ReceiptAck { receipt_hash, outcome: outcome.to_owned() }))
}

pub async fn list(state: &AppState, store_id: &str) -> Result<StoreReceipts, Problem> {
    let store_id = parse_store_id(store_id)?;
    let rows = state.db.call(move |tx| store_receipts::for_store(tx, store_id)).await?;
    let receipts = rows
        .into_iter()
        .map(|(receipt_hash, handoff_id, body, received_at)| {
            // Verified on the way in; read again only to list its jobs.
            let job_ids = HandoffReceipt::from_record_body(&body)
                .map(|r| r.offer.content.jobs.iter().map(|job| job.job_id).collect())
                .unwrap_or_default();
            StoreReceipt { receipt_hash, handoff_id, job_ids, body, received_at }
        })
        .collect();
    Ok(StoreReceipts { store_id, receipts })
}
