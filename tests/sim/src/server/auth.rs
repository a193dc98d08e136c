//! Who is calling: bearer tokens, issued per driver by the admin API and
//! checked on every `/v1` request.
//!
//! Owns token issue, revocation and the [`AuthenticatedDriver`] extractor.
//! Must not decide what a driver may do with a job: that is the job rules'.

use super::AppState;
use super::problem::Problem;
use super::storage::tokens;
use super::wire::IssuedToken;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::Utc;

/// The driver a request's bearer token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedDriver {
    pub driver_id: String,
}

impl FromRequestParts<AppState> for AuthenticatedDriver {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| Problem::unauthorized("the request has no Authorization header"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(bearer_token)
            .ok_or_else(|| Problem::unauthorized("the Authorization header is not `Bearer <token>`"))?
            .to_owned();
        let driver_id = state.db.call(move |tx| tokens::driver_of(tx, &token)).await?;
        driver_id
            .map(|driver_id| AuthenticatedDriver { driver_id })
            .ok_or_else(|| Problem::unauthorized("the token is unknown or was revoked"))
    }
}

/// The token of a `Bearer <token>` credential (the scheme is case-insensitive).
pub(super) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether `value` is a driver id as the contract's `DriverId` allows.
pub fn is_driver_id(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

pub fn check_driver_id(field: &str, value: &str) -> Result<(), Problem> {
    if is_driver_id(value) {
        Ok(())
    } else {
        Err(Problem::invalid(field, "a driver id is 1 to 64 of A-Z a-z 0-9 _ . : -"))
    }
}

/// Issues a new random token for `driver_id`.
pub async fn issue(state: &AppState, driver_id: String) -> Result<IssuedToken, Problem> {
    if !is_driver_id(&driver_id) {
        return Err(Problem::bad_request("a driver id is 1 to 64 of A-Z a-z 0-9 _ . : -").with_field("driver_id"));
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    let issued = token.clone();
    state.db.call(move |tx| tokens::insert(tx, &issued, &driver_id, Utc::now())).await?;
    Ok(IssuedToken { token })
}

/// Revokes a token; an unknown one is already as good as revoked.
pub async fn revoke(state: &AppState, token: String) -> Result<(), Problem> {
    Ok(state.db.call(move |tx| tokens::delete(tx, &token)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_credentials_are_read_leniently_but_only_as_bearer() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }

    #[test]
    fn driver_ids_follow_the_contract() {
        assert!(is_driver_id("driver-1.a:b_c"));
        assert!(!is_driver_id(""));
        assert!(!is_driver_id("has space"));
        assert!(!is_driver_id(&"x".repeat(65)));
    }
}
