//! `/admin`: the reference server's own controls, for tests and QA (no
//! authentication; the server listens on loopback by default).

use crate::server::AppState;
use crate::server::extract::{ApiJson, ApiPath};
use crate::server::problem::Problem;
use crate::server::wire::{DoorIssuer, AdminClient, AdminJob, AssignJobs, AssignedJobs, IssuedToken, JobUpdate, Reassign};
use crate::server::{auth, doors, jobs, mutations};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

pub async fn issue_token(
    State(state): State<AppState>,
    ApiPath(driver_id): ApiPath<String>,
) -> Result<(StatusCode, Json<IssuedToken>), Problem> {
    auth::issue(&state, driver_id).await.map(|token| (StatusCode::CREATED, Json(token)))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<StatusCode, Problem> {
    auth::revoke(&state, token).await.map(|()| StatusCode::NO_CONTENT)
}

pub async fn assign_jobs(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<AssignJobs>,
) -> Result<(StatusCode, Json<AssignedJobs>), Problem> {
    jobs::assign(&state, request).await.map(|assigned| (StatusCode::CREATED, Json(assigned)))
}

pub async fn job(State(state): State<AppState>, ApiPath(job_id): ApiPath<String>) -> Result<Json<AdminJob>, Problem> {
    jobs::view(&state, &job_id).await.map(Json)
}

pub async fn update_job(
    State(state): State<AppState>,
    ApiPath(job_id): ApiPath<String>,
    ApiJson(update): ApiJson<JobUpdate>,
) -> Result<Json<AdminJob>, Problem> {
    jobs::update(&state, &job_id, update).await.map(Json)
}

pub async fn cancel_job(
    State(state): State<AppState>,
    ApiPath(job_id): ApiPath<String>,
) -> Result<Json<AdminJob>, Problem> {
    jobs::cancel(&state, &job_id).await.map(Json)
}

pub async fn reassign_job(
    State(state): State<AppState>,
    ApiPath(job_id): ApiPath<String>,
    ApiJson(request): ApiJson<Reassign>,
) -> Result<Json<AdminJob>, Problem> {
    jobs::reassign(&state, &job_id, request).await.map(Json)
}

/// Every mutation processed for a device, in order.
pub async fn client(
    State(state): State<AppState>,
    ApiPath(client_id): ApiPath<String>,
) -> Result<Json<AdminClient>, Problem> {
    mutations::client_record(&state, &client_id).await.map(Json)
}

pub async fn door_issuer(State(state): State<AppState>) -> Result<Json<DoorIssuer>, Problem> {
    doors::issuer(&state).await.map(Json)
}

pub async fn revoke_grants(State(state): State<AppState>) -> Result<Json<DoorIssuer>, Problem> {
    doors::revoke_all(&state).await.map(Json)
}
