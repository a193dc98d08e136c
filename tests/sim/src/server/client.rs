//! A small typed client of the dispatch API, for tests and QA tools: the
//! admin calls, and the device calls made with a driver's token.
//!
//! Blocking (reqwest's blocking client): call it from plain `#[test]`s or
//! threads, never from inside an async runtime. Owns no rules: every answer
//! is the server's, decoded into [`super::wire`] types or a [`ClientError`].

use super::problem::Problem;
use super::wire::{
    AdminClient, AdminJob, AssignJobs, AssignedJobs, Grants, IssuedToken, JobUpdate, JobsDelta, MediaStatus,
    MutationBatch, MutationResults, Reassign,
};
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("HTTP failure: {0}")]
    Http(#[from] reqwest::Error),
    /// The server refused the request with a problem document.
    #[error("{status}: {problem:?}")]
    Problem { status: StatusCode, problem: Problem },
    /// The server answered something the contract does not allow.
    #[error("unexpected answer {status}: {body}")]
    Unexpected { status: StatusCode, body: String },
}

impl ClientError {
    /// The HTTP status the server answered with, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Http(err) => err.status(),
            ClientError::Problem { status, .. } | ClientError::Unexpected { status, .. } => Some(*status),
        }
    }

    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ClientError::Problem { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

/// A client of one server, optionally acting as one driver (its token).
#[derive(Clone)]
pub struct DispatchClient {
    base_url: String,
    http: Client,
    token: Option<String>,
}

impl DispatchClient {
    /// `base_url` as `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn new(base_url: impl Into<String>) -> Self {
        DispatchClient { base_url: base_url.into().trim_end_matches('/').to_owned(), http: Client::new(), token: None }
    }

    /// The same client, sending `token` as its bearer token.
    pub fn as_driver(&self, token: impl Into<String>) -> Self {
        DispatchClient { token: Some(token.into()), ..self.clone() }
    }

    /// Issues a token for `driver_id` and returns a client acting as that driver.
    pub fn driver(&self, driver_id: &str) -> ClientResult<DispatchClient> {
        let token = self.issue_token(driver_id)?;
        Ok(self.as_driver(token))
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// A request to `path` (starting with `/`), with the token if any: for
    /// tests that send what the typed calls cannot.
    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base_url));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    // --- admin ---

    pub fn issue_token(&self, driver_id: &str) -> ClientResult<String> {
        let issued: IssuedToken =
            decode(self.request(reqwest::Method::POST, &format!("/admin/drivers/{driver_id}/tokens")).send()?)?;
        Ok(issued.token)
    }

    pub fn revoke_token(&self, token: &str) -> ClientResult<()> {
        expect_empty(self.request(reqwest::Method::DELETE, &format!("/admin/tokens/{token}")).send()?)
    }

    /// Creates the document's jobs for `driver_id`; `document` is a
    /// `doorstep.dispatch/1` document.
    pub fn assign_jobs(&self, driver_id: &str, document: serde_json::Value) -> ClientResult<Vec<Uuid>> {
        let body = AssignJobs { driver_id: driver_id.to_owned(), document };
        let assigned: AssignedJobs = decode(self.request(reqwest::Method::POST, "/admin/jobs").json(&body).send()?)?;
        Ok(assigned.job_ids)
    }

    pub fn job(&self, job_id: Uuid) -> ClientResult<AdminJob> {
        decode(self.request(reqwest::Method::GET, &format!("/admin/jobs/{job_id}")).send()?)
    }

    pub fn update_job(&self, job_id: Uuid, update: &JobUpdate) -> ClientResult<AdminJob> {
        decode(self.request(reqwest::Method::PATCH, &format!("/admin/jobs/{job_id}")).json(update).send()?)
    }

    pub fn cancel_job(&self, job_id: Uuid) -> ClientResult<AdminJob> {
        decode(self.request(reqwest::Method::POST, &format!("/admin/jobs/{job_id}/cancel")).send()?)
    }

    pub fn reassign_job(&self, job_id: Uuid, driver_id: &str) -> ClientResult<AdminJob> {
        let body = Reassign { driver_id: driver_id.to_owned() };
        decode(self.request(reqwest::Method::POST, &format!("/admin/jobs/{job_id}/reassign")).json(&body).send()?)
    }

    pub fn client_record(&self, client_id: Uuid) -> ClientResult<AdminClient> {
        decode(self.request(reqwest::Method::GET, &format!("/admin/clients/{client_id}")).send()?)
    }

    // --- device (need a token: see `as_driver` / `driver`) ---

    /// One page of the driver's job changes.
    pub fn delta(&self, since: Option<&str>, limit: Option<u32>) -> ClientResult<JobsDelta> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(since) = since {
            query.push(("since", since.to_owned()));
        }
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        decode(self.request(reqwest::Method::GET, "/v1/jobs/delta").query(&query).send()?)
    }

    pub fn post_mutations(&self, batch: &MutationBatch) -> ClientResult<MutationResults> {
        decode(self.request(reqwest::Method::POST, "/v1/mutations").json(batch).send()?)
    }

    pub fn media_status(&self, sha256: &str) -> ClientResult<MediaStatus> {
        decode(self.request(reqwest::Method::GET, &format!("/v1/media/{sha256}")).send()?)
    }

    /// Uploads `chunk` as the bytes of the file starting at `offset`.
    pub fn put_media_chunk(&self, sha256: &str, offset: u64, total: u64, chunk: &[u8]) -> ClientResult<MediaStatus> {
        let last = (offset + chunk.len() as u64).saturating_sub(1);
        let request = self
            .request(reqwest::Method::PUT, &format!("/v1/media/{sha256}"))
            .header(reqwest::header::CONTENT_RANGE, format!("bytes {offset}-{last}/{total}"))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(chunk.to_vec());
        decode(request.send()?)
    }

    pub fn grants(&self) -> ClientResult<Grants> {
        decode(self.request(reqwest::Method::GET, "/v1/grants").send()?)
    }
}

fn content_type(response: &Response) -> String {
    response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("").to_owned()
}

/// A success decoded as `T`; an error as its problem document.
fn decode<T: DeserializeOwned>(response: Response) -> ClientResult<T> {
    let status = response.status();
    let content_type = content_type(&response);
    let body = response.text()?;
    if status.is_success() && content_type.starts_with("application/json") {
        return serde_json::from_str(&body)
            .map_err(|err| ClientError::Unexpected { status, body: format!("{err}: {body}") });
    }
    Err(refusal(status, &content_type, body))
}

fn expect_empty(response: Response) -> ClientResult<()> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let content_type = content_type(&response);
    Err(refusal(status, &content_type, response.text()?))
}

fn refusal(status: StatusCode, content_type: &str, body: String) -> ClientError {
    if content_type.starts_with(super::problem::PROBLEM_CONTENT_TYPE)
        && let Ok(problem) = serde_json::from_str(&body)
    {
        return ClientError::Problem { status, problem };
    }
    ClientError::Unexpected { status, body }
}

/// Store staff devices' calls and their admin controls.
impl DispatchClient {
    pub fn issue_store_token(&self, store_id: Uuid) -> ClientResult<String> {
        let issued: IssuedToken =
            decode(self.request(reqwest::Method::POST, &format!("/admin/stores/{store_id}/tokens")).send()?)?;
        Ok(issued.token)
    }

    /// Every receipt the store's devices sent, in the order received.
    pub fn store_receipts(&self, store_id: Uuid) -> ClientResult<crate::server::store_receipts::StoreReceipts> {
        decode(self.request(reqwest::Method::GET, &format!("/admin/stores/{store_id}/receipts")).send()?)
    }
}
