//! The HTTP surface: which handler answers which path of
//! `docs/dispatch-api.yaml`, and the answers for everything else.
//!
//! Owns routing, status codes of successes and the guarantee that every
//! error leaves as `application/problem+json`. Must not hold rules of the
//! domain: handlers only extract, call the domain module, and respond.

mod admin;
mod device;
mod stores;

use super::AppState;
use super::extract::MAX_BODY_BYTES;
use super::problem::{PROBLEM_CONTENT_TYPE, Problem};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/jobs/delta", get(device::jobs_delta))
        .route("/v1/mutations", post(device::post_mutations))
        .route("/v1/media/{sha256}", get(device::media_status).put(device::put_media_chunk))
        .route("/v1/grants", get(device::grants))
        .route("/v1/device-key", put(device::put_device_key))
        .route("/v1/stores/{store_id}/receipts", post(stores::post_receipt))
        .route("/admin/stores/{store_id}/tokens", post(stores::issue_token))
        .route("/admin/stores/{store_id}/receipts", get(stores::receipts))
        .route("/admin/doors/issuer", get(admin::door_issuer))
        .route("/admin/doors/revoke", post(admin::revoke_grants))
        .route("/admin/drivers/{driver_id}/tokens", post(admin::issue_token))
        .route("/admin/tokens/{token}", delete(admin::revoke_token))
        .route("/admin/jobs", post(admin::assign_jobs))
        .route("/admin/jobs/{job_id}", get(admin::job).patch(admin::update_job))
        .route("/admin/jobs/{job_id}/cancel", post(admin::cancel_job))
        .route("/admin/jobs/{job_id}/reassign", post(admin::reassign_job))
        .route("/admin/clients/{client_id}", get(admin::client))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::map_response(problem_for_bare_errors))
        .layer(middleware::from_fn(log_request))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// One line per request at debug level (`DOORSTEP_LOG=debug` for `serve`).
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), "dispatch request");
    response
}

async fn unknown_route() -> Problem {
    Problem::not_found("no such operation; see docs/dispatch-api.yaml")
}

async fn method_not_allowed() -> Problem {
    Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "The path does not take this method")
}

/// A last guard: any error response that is not already a problem (from a
/// layer or extractor outside our control) is replaced by one with its status.
async fn problem_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(PROBLEM_CONTENT_TYPE));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let title = status.canonical_reason().unwrap_or("Request failed");
    let (mut parts, _) = response.into_parts();
    let mut problem = Problem::new(status, "http", title).into_response();
    // Keep headers such as Allow and Retry-After, with the problem's content type.
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in problem.headers() {
        parts.headers.insert(name.clone(), value.clone());
    }
    *problem.headers_mut() = parts.headers;
    problem
}
