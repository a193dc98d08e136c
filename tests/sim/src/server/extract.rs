//! Request extractors whose every rejection is a [`Problem`], never axum's
//! plain-text default: JSON bodies, raw bodies, query strings and paths.
//!
//! Owns turning bytes into typed requests (400 for bad JSON or wrong types,
//! 413 for a body over the limit). Must not apply the contract's rules to
//! the values: handlers and domain modules answer those with 422.

use super::problem::Problem;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

/// The largest request body the server reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// A JSON request body (`application/json` or any `+json` type).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(request.headers().get(header::CONTENT_TYPE)) {
            return Err(Problem::bad_request("the body must be JSON (Content-Type: application/json)"));
        }
        let ApiBody(bytes) = ApiBody::from_request(request, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body, naming the path of a field of the wrong type.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if !inner.is_data() {
            return Problem::bad_request(format!("the body is not valid JSON: {inner}"));
        }
        let problem = Problem::bad_request(format!("the body does not have the contract's shape: {inner}"));
        if path == "." { problem } else { problem.with_field(path) }
    })?;
    deserializer.end().map_err(|err| Problem::bad_request(format!("trailing data after the JSON body: {err}")))?;
    Ok(value)
}

fn is_json(content_type: Option<&axum::http::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A raw request body, bounded by [`MAX_BODY_BYTES`].
pub struct ApiBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBody {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        Bytes::from_request(request, state).await.map(ApiBody).map_err(|rejection: BytesRejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::too_large(format!("request bodies are limited to {MAX_BODY_BYTES} bytes"))
            } else {
                Problem::bad_request(format!("cannot read the body: {}", rejection.body_text()))
            }
        })
    }
}

/// Query-string parameters.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| Problem::bad_request(rejection.body_text()))
    }
}

/// Path parameters.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|rejection| Problem::bad_request(rejection.body_text()))
    }
}
