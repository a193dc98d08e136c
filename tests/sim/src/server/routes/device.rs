//! `/v1`: what drivers' devices call. Every handler takes the
//! [`AuthenticatedDriver`] first, so a bad token is a 401 before anything
//! about the request is looked at.

use crate::server::AppState;
use crate::server::auth::AuthenticatedDriver;
use crate::server::extract::{ApiBody, ApiJson, ApiPath, ApiQuery};
use crate::server::problem::Problem;
use crate::server::wire::{DeviceKey, Grants, RegisteredKey, JobsDelta, MediaStatus, MutationBatch, MutationResults};
use crate::server::{doors, jobs, media, mutations};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_RANGE;

pub async fn jobs_delta(
    State(state): State<AppState>,
    driver: AuthenticatedDriver,
    ApiQuery(query): ApiQuery<jobs::DeltaQuery>,
) -> Result<Json<JobsDelta>, Problem> {
    jobs::delta(&state, driver.driver_id, query).await.map(Json)
}

pub async fn post_mutations(
    State(state): State<AppState>,
    driver: AuthenticatedDriver,
    ApiJson(batch): ApiJson<MutationBatch>,
) -> Result<Json<MutationResults>, Problem> {
    mutations::process(&state, driver.driver_id, batch).await.map(Json)
}

pub async fn media_status(
    State(state): State<AppState>,
    _driver: AuthenticatedDriver,
    ApiPath(sha256): ApiPath<String>,
) -> Result<Json<MediaStatus>, Problem> {
    media::status(&state, sha256).await.map(Json)
}

pub async fn put_media_chunk(
    State(state): State<AppState>,
    _driver: AuthenticatedDriver,
    ApiPath(sha256): ApiPath<String>,
    headers: HeaderMap,
    ApiBody(chunk): ApiBody,
) -> Result<Json<MediaStatus>, Problem> {
    media::check_sha256(&sha256)?;
    let range = media::parse_content_range(headers.get(CONTENT_RANGE))?;
    media::put_chunk(&state, sha256, range, chunk).await.map(Json)
}

/// Door grants for the driver's registered device key.
pub async fn grants(State(state): State<AppState>, driver: AuthenticatedDriver) -> Result<Json<Grants>, Problem> {
    doors::grants(&state, driver.driver_id).await.map(Json)
}

pub async fn put_device_key(
    State(state): State<AppState>,
    driver: AuthenticatedDriver,
    ApiJson(request): ApiJson<DeviceKey>,
) -> Result<Json<RegisteredKey>, Problem> {
    doors::register_device_key(&state, driver.driver_id, request).await.map(Json)
}
