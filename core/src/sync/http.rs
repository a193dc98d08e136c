//! The dispatch API over HTTP (docs/dispatch-api.yaml): requests, the bearer
//! token with one refresh on 401, and strict reading of answers. Owns no
//! state; a bad answer is an error and nothing of it reaches the store.

mod media;
mod store_receipts;

pub use media::MEDIA_CHUNK_BYTES;

use super::{SyncConfig, SyncFailure, TokenError, TokenProvider};
use crate::dispatch::{self, JobsDelta};
use crate::error::CoreError;
use crate::jobs::{ServerStatus, Transition};
use crate::store::{Mutation, MutationOutcome, RECORD_ACTION};
use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder, Response, StatusCode, header};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Longest answer read from dispatch; anything larger is refused.
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

pub struct DispatchClient {
    http: reqwest::Client,
    base_url: String,
    tokens: Arc<dyn TokenProvider>,
}

impl DispatchClient {
    pub fn new(config: &SyncConfig, tokens: Arc<dyn TokenProvider>) -> Result<DispatchClient, CoreError> {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base_url).map_err(|e| CoreError::invalid("base_url", e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(CoreError::invalid("base_url", "must be an http or https URL"));
        }
        let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der.as_ref()).ok());
        let http = reqwest::Client::builder()
            .tls_certs_only(roots)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("doorstep-core/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CoreError::Internal { reason: format!("cannot build the HTTP client: {}", describe(&e)) })?;
        Ok(DispatchClient { http, base_url, tokens })
    }

    /// Sends a batch of mutations; returns dispatch's outcome for each, in
    /// the order sent.
    pub async fn push(&self, client_id: Uuid, batch: &[Mutation]) -> Result<Vec<(u64, MutationOutcome)>, SyncFailure> {
        let mutations = batch.iter().map(wire_mutation).collect::<Result<Vec<_>, _>>()?;
        let body = wire::MutationBatch { client_id, mutations };
        let body = serde_json::to_vec(&body).map_err(|e| SyncFailure::Permanent(CoreError::Internal { reason: e.to_string() }))?;
        let response = self.send(Method::POST, "/v1/mutations", |request| {
            request.header(header::CONTENT_TYPE, "application/json").body(body.clone())
        })
        .await?;
        let bytes = read_body(response).await?;
        let results: wire::MutationResults = parse_json(&bytes)?;
        outcomes_for(batch, results).map_err(|reason| SyncFailure::Permanent(CoreError::BadResponse { reason }))
    }

    /// One page of job changes since `cursor` (all current jobs when none).
    pub async fn pull(&self, cursor: Option<&str>, page_size: u32) -> Result<JobsDelta, SyncFailure> {
        let mut path = format!("/v1/jobs/delta?limit={page_size}");
        if let Some(cursor) = cursor {
            path.push_str("&since=");
            path.push_str(cursor);
        }
        let response = self.send(Method::GET, &path, |request| request).await?;
        let bytes = read_body(response).await?;
        dispatch::parse_delta(&bytes).map_err(|err| {
            SyncFailure::Permanent(CoreError::BadResponse { reason: format!("jobs delta: {err}") })
        })
    }

    /// Sends a request with the bearer token, refreshing it once on a 401;
    /// classifies every other failure.
    async fn send(
        &self,
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, SyncFailure> {
        let url = format!("{}{path}", self.base_url);
        let mut token = self.token(false).await?;
        for refreshed in [false, true] {
            let request = build(self.http.request(method.clone(), &url)).bearer_auth(&token);
            let response = request.send().await.map_err(|e| SyncFailure::Transient { reason: describe(&e), retry_after: None })?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                token = self.token(true).await?;
                continue;
            }
            return Err(classify(response).await);
        }
        unreachable!("the loop returns on its second pass")
    }

    async fn token(&self, refresh: bool) -> Result<String, SyncFailure> {
        let tokens = Arc::clone(&self.tokens);
        // The shell may block (a keychain, a refresh over the network).
        let outcome = tokio::task::spawn_blocking(move || if refresh { tokens.refresh_token() } else { tokens.access_token() })
            .await
            .map_err(|e| SyncFailure::Permanent(CoreError::Internal { reason: format!("token provider: {e}") }))?;
        match outcome {
            Ok(token) if !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()) => Ok(token),
            Ok(_) => Err(SyncFailure::Permanent(CoreError::Unauthorized { reason: "the token provider gave an unusable token".into() })),
            Err(TokenError::Unavailable(reason)) => {
                Err(SyncFailure::Transient { reason: format!("no token yet: {reason}"), retry_after: None })
            }
            Err(TokenError::Refused(reason)) => Err(SyncFailure::Permanent(CoreError::Unauthorized { reason })),
        }
    }
}

async fn read_body(mut response: Response) -> Result<Vec<u8>, SyncFailure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| SyncFailure::Transient { reason: describe(&e), retry_after: None })? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(SyncFailure::Permanent(CoreError::BadResponse { reason: "answer larger than 32 MiB".into() }));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, SyncFailure> {
    serde_json::from_slice(bytes).map_err(|e| SyncFailure::Permanent(CoreError::BadResponse { reason: e.to_string() }))
}

/// Sorts a failed answer into retry-later or give-up.
async fn classify(response: Response) -> SyncFailure {
    let status = response.status();
    let retry_after = response.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
    let detail = response
        .bytes()
        .await
        .ok()
        .and_then(|body| serde_json::from_slice::<wire::Problem>(&body).ok())
        .map(|p| p.detail.unwrap_or(p.title))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("no reason given").to_owned());
    let reason = format!("{} {detail}", status.as_u16());
    match status {
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => SyncFailure::Transient { reason, retry_after },
        s if s.is_server_error() => SyncFailure::Transient { reason, retry_after },
        StatusCode::UNAUTHORIZED => SyncFailure::Permanent(CoreError::Unauthorized { reason }),
        s => SyncFailure::Permanent(CoreError::Rejected { status: s.as_u16(), reason: detail }),
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds.min(24 * 3600)));
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    (when - Utc::now()).to_std().ok().or(Some(Duration::ZERO))
}

fn describe(err: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn wire_mutation(m: &Mutation) -> Result<wire::Mutation<'_>, SyncFailure> {
    if let crate::store::MutationBody::Upload(upload) = &m.body {
        // Uploads go to the media endpoint, never into a batch.
        return Err(SyncFailure::Permanent(CoreError::Internal {
            reason: format!("mutation {} uploads {}; it is not a batch item", m.mutation_id, upload.sha256),
        }));
    }
    let transition = m.body.transition();
    let record = m
        .body
        .record()
        .map(|record| {
            // Stored as sealed; a record that no longer parses was damaged on
            // the device and must not be sent as if it were evidence.
            serde_json::from_str::<&serde_json::value::RawValue>(&record.body)
                .map(|body| wire::Record { kind: record.kind.as_str(), body })
                .map_err(|e| {
                    SyncFailure::Permanent(CoreError::Storage {
                        reason: format!("outbox mutation {}: stored record is not JSON: {e}", m.mutation_id),
                    })
                })
        })
        .transpose()?;
    Ok(wire::Mutation {
        mutation_id: m.mutation_id,
        idempotency_key: &m.idempotency_key,
        job_id: m.job_id,
        action: transition.map_or(RECORD_ACTION, Transition::name),
        failure_reason: match transition {
            Some(Transition::Fail { reason }) => Some(reason.as_str()),
            _ => None,
        },
        record,
        occurred_at: m.occurred_at,
    })
}

/// Matches dispatch's results to the batch: one per mutation, same order.
fn outcomes_for(batch: &[Mutation], results: wire::MutationResults) -> Result<Vec<(u64, MutationOutcome)>, String> {
    if results.results.len() != batch.len() {
        return Err(format!("{} results for {} mutations", results.results.len(), batch.len()));
    }
    batch
        .iter()
        .zip(results.results)
        .map(|(sent, result)| {
            if result.mutation_id != sent.mutation_id {
                return Err(format!("result for mutation {} where {} was sent", result.mutation_id, sent.mutation_id));
            }
            let outcome = match result.outcome.as_str() {
                "duplicate" => result.outcome_of_original.as_deref().unwrap_or("applied").to_owned(),
                other => other.to_owned(),
            };
            let outcome = match outcome.as_str() {
                "applied" => MutationOutcome::Acknowledged,
                "conflict" => MutationOutcome::Conflict { status: result.job_status.unwrap_or(ServerStatus::Cancelled) },
                "rejected" => MutationOutcome::Rejected {
                    reason: result.problem.map(|p| p.detail.unwrap_or(p.title)).unwrap_or_else(|| "rejected".into()),
                },
                other => return Err(format!("unknown outcome {other:?} for mutation {}", sent.mutation_id)),
            };
            Ok((sent.mutation_id, outcome))
        })
        .collect()
}

/// The JSON shapes of docs/dispatch-api.yaml.
mod wire {
    use super::*;

    #[derive(Serialize)]
    pub struct MutationBatch<'a> {
        pub client_id: Uuid,
        pub mutations: Vec<Mutation<'a>>,
    }

    #[derive(Serialize)]
    pub struct Mutation<'a> {
        pub mutation_id: u64,
        pub idempotency_key: &'a str,
        pub job_id: Uuid,
        pub action: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub failure_reason: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub record: Option<Record<'a>>,
        pub occurred_at: DateTime<Utc>,
    }

    #[derive(Serialize)]
    pub struct Record<'a> {
        pub kind: &'static str,
        pub body: &'a serde_json::value::RawValue,
    }

    #[derive(Deserialize)]
    pub struct MutationResults {
        #[allow(dead_code)] // part of the contract; the outbox keys on each result
        pub last_processed_mutation_id: u64,
        pub results: Vec<MutationResult>,
    }

    #[derive(Deserialize)]
    pub struct MutationResult {
        pub mutation_id: u64,
        pub outcome: String,
        #[serde(default)]
        pub outcome_of_original: Option<String>,
        #[serde(default)]
        pub job_status: Option<ServerStatus>,
        #[serde(default)]
        pub problem: Option<Problem>,
    }

    #[derive(Deserialize)]
    pub struct Problem {
        pub title: String,
        #[serde(default)]
        pub detail: Option<String>,
    }
}

/// Door access calls (`docs/dispatch-api.yaml`: `/v1/device-key`, `/v1/grants`).
impl DispatchClient {
    /// Tells dispatch which P-256 key this device's grants must name.
    pub async fn register_device_key(&self, compressed_key: &[u8; 33]) -> Result<(), SyncFailure> {
        let body = serde_json::json!({ "public_key": crate::keys::hex(compressed_key) }).to_string();
        let response = self
            .send(Method::PUT, "/v1/device-key", |request| request.header(header::CONTENT_TYPE, "application/json").body(body.clone()))
            .await?;
        read_body(response).await.map(|_| ())
    }

    /// The grants dispatch holds for this driver's device, as raw JSON.
    pub async fn grants(&self) -> Result<Vec<u8>, SyncFailure> {
        let response = self.send(Method::GET, "/v1/grants", |request| request).await?;
        read_body(response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MutationBody, MutationStatus, Record, RecordKind};

    fn queued(body: MutationBody) -> Mutation {
        Mutation {
            mutation_id: 7,
            idempotency_key: "k7".into(),
            job_id: Uuid::nil(),
            body,
            occurred_at: "2026-11-23T17:00:00Z".parse().unwrap(),
            status: MutationStatus::Pending,
            attempts: 0,
            last_error: None,
            depends_on: None,
        }
    }

    #[test]
    fn a_record_goes_on_the_wire_byte_for_byte_with_its_action() {
        let record = Record { kind: RecordKind::ProofOfDelivery, body: r#"{"b":1,"a":[2]}"#.into() };
        let sent = queued(MutationBody::Action { transition: Transition::Deliver, record: Some(record) });
        let json = serde_json::to_string(&wire_mutation(&sent).ok().unwrap()).unwrap();
        assert!(json.contains(r#""action":"deliver""#), "{json}");
        assert!(json.contains(r#""record":{"kind":"proof_of_delivery","body":{"b":1,"a":[2]}}"#), "{json}");
    }

    #[test]
    fn a_record_alone_is_the_record_action_and_a_damaged_one_is_not_sent() {
        let audit = Record { kind: RecordKind::DoorAudit, body: "{}".into() };
        let json = serde_json::to_string(&wire_mutation(&queued(MutationBody::Record(audit))).ok().unwrap()).unwrap();
        assert!(json.contains(r#""action":"record""#), "{json}");
        let damaged = Record { kind: RecordKind::DoorAudit, body: "{not json".into() };
        assert!(wire_mutation(&queued(MutationBody::Record(damaged))).is_err());
    }
}
