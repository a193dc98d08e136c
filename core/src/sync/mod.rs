//! Sync with dispatch: drains the outbox (exactly once, in order per job)
//! and pulls job changes, whenever the network allows.
//!
//! Owns the sync loop, error classification, backoff and the sync status.
//! Must not decide job rules (that is `jobs`) or touch SQL (that is
//! `store`); the HTTP exchange itself is in [`http`].

pub mod http;

use crate::error::CoreError;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Supplies the bearer token for dispatch; implemented by the shell, which
/// keeps the driver's credentials.
pub trait TokenProvider: Send + Sync {
    /// The current access token.
    fn access_token(&self) -> Result<String, TokenError>;
    /// A fresh token, after dispatch refused the current one.
    fn refresh_token(&self) -> Result<String, TokenError>;
}

/// Why the shell could not give a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Passing trouble (no network for the refresh): sync retries later.
    Unavailable(String),
    /// The driver is signed out: sync waits for a new sign-in.
    Refused(String),
}

#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Where dispatch lives, e.g. `https://dispatch.example.com`.
    pub base_url: String,
    /// Most mutations in one request.
    pub batch_size: u32,
    /// Most jobs in one page of the delta.
    pub page_size: u32,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// First retry delay after a transient failure; doubles each time.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How often to pull when nothing else prompts a sync.
    pub pull_interval: Duration,
    /// Sync in the background (a phone). Off, only `sync_now` syncs: QA and
    /// tests step a shift deterministically.
    pub automatic: bool,
}

impl SyncConfig {
    pub fn new(base_url: impl Into<String>) -> SyncConfig {
        SyncConfig {
            base_url: base_url.into(),
            batch_size: 200,
            page_size: 500,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            pull_interval: Duration::from_secs(60),
            automatic: true,
        }
    }
}

/// How sync is doing, as the driver's status bar and QA see it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncStatus {
    pub online: bool,
    pub syncing: bool,
    /// Actions waiting to be sent.
    pub pending: u32,
    /// Actions dispatch refused for good, waiting for retry or abandon.
    pub wedged: u32,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// What one sync round did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncReport {
    pub sent: u32,
    pub acknowledged: u32,
    pub conflicts: u32,
    pub rejected: u32,
    pub jobs_received: u32,
    pub pending: u32,
    pub wedged: u32,
}

/// Why a sync round stopped, classified for retrying.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncFailure {
    /// Worth retrying later: network trouble, timeouts, 408, 429, 5xx.
    Transient { reason: String, retry_after: Option<Duration> },
    /// Retrying the same thing will not help until something changes.
    Permanent(CoreError),
}

impl SyncFailure {
    pub fn into_error(self) -> CoreError {
        match self {
            SyncFailure::Transient { reason, .. } => CoreError::Network { reason },
            SyncFailure::Permanent(err) => err,
        }
    }
}

/// The delay before retry number `attempt` (1-based): exponential with full
/// jitter, at least what the server asked for. `random` is in [0, 1).
pub fn backoff_delay(config: &SyncConfig, attempt: u32, retry_after: Option<Duration>, random: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let ceiling = config.backoff_base.saturating_mul(1 << exponent).min(config.backoff_max);
    let jittered = ceiling.mul_f64(random.clamp(0.0, 1.0));
    match retry_after {
        Some(asked) => jittered.max(asked.min(config.backoff_max.max(asked))),
        None => jittered,
    }
}

/// A number in [0, 1) from the operating system's randomness (the v4 UUID
/// generator already draws on it); only used to spread retries apart.
pub fn jitter() -> f64 {
    let bits = (uuid::Uuid::new_v4().as_u128() >> 75) as u64; // 53 random bits
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let config = SyncConfig::new("http://127.0.0.1:1");
        assert_eq!(backoff_delay(&config, 1, None, 0.999_999), Duration::from_secs(1).mul_f64(0.999_999));
        assert!(backoff_delay(&config, 4, None, 0.999_999) > Duration::from_secs(7));
        assert!(backoff_delay(&config, 40, None, 0.999_999) <= config.backoff_max);
        assert_eq!(backoff_delay(&config, 1, Some(Duration::from_secs(30)), 0.0), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..1000 {
            let r = jitter();
            assert!((0.0..1.0).contains(&r));
        }
    }
}
