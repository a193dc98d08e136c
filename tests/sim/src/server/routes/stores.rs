//! Store staff devices' calls and their admin controls.

use crate::server::AppState;
use crate::server::extract::{ApiJson, ApiPath};
use crate::server::problem::Problem;
use crate::server::store_receipts::{self, AuthenticatedStore, ReceiptAck, StoreReceipts};
use crate::server::wire::IssuedToken;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

pub async fn post_receipt(
    State(state): State<AppState>,
    store: AuthenticatedStore,
    ApiPath(store_id): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<(StatusCode, Json<ReceiptAck>), Problem> {
    store_receipts::receive(&state, store, &store_id, body).await.map(|(status, ack)| (status, Json(ack)))
}

pub async fn issue_token(
    State(state): State<AppState>,
    ApiPath(store_id): ApiPath<String>,
) -> Result<(StatusCode, Json<IssuedToken>), Problem> {
    store_receipts::issue_token(&state, &store_id).await.map(|token| (StatusCode::CREATED, Json(token)))
}

pub async fn receipts(State(state): State<AppState>, ApiPath(store_id): ApiPath<String>) -> Result<Json<StoreReceipts>, Problem> {
    store_receipts::list(&state, &store_id).await.map(Json)
}
