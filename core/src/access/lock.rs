//! The reference lock: what a door controller must check before it opens,
//! in the order it checks, with its failure rate limit and audit log.
//!
//! It judges time by its own clock (an input), never the phone's. State is
//! in memory; a real controller keeps the per-grant counters, the
//! revocation epoch and the audit log in non-volatile storage.

use super::audit::AuditRecord;
use super::frame::{self, Challenge, FrameError, Reassembler, Response, ResultFrame};
use super::grant::{GrantFormatError, GrantId};
use super::protocol::{signed_by_grant_device, unlock_message};
use super::{Reason, unix_seconds};
use crate::clock::Clock;
use crate::error::{CoreError, Result};
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::VerifyingKey;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Most grants whose counters the lock remembers at once.
const MAX_TRACKED_GRANTS: usize = 4096;

#[derive(Debug, Clone)]
pub struct LockConfig {
    pub lock_id: u32,
    pub door_id: u32,
    /// The dispatch issuers whose grants this lock honours.
    pub issuers: Vec<VerifyingKey>,
    /// Shared with dispatch only: MACs the audit records.
    pub audit_key: [u8; 32],
    /// How far the lock's clock may be from the issuer's, either way.
    pub max_skew: Duration,
    /// How long a challenge may be answered: bounds relay attacks.
    pub challenge_ttl: Duration,
    /// Failures within `failure_window` that trigger a lockout.
    pub max_failures: u32,
    pub failure_window: Duration,
    pub lockout: Duration,
    /// The revocation epoch the lock starts with.
    pub epoch: u16,
}

impl LockConfig {
    pub fn new(lock_id: u32, door_id: u32, issuers: Vec<VerifyingKey>, audit_key: [u8; 32]) -> LockConfig {
        LockConfig {
            lock_id,
            door_id,
            issuers,
            audit_key,
            max_skew: Duration::minutes(2),
            challenge_ttl: Duration::seconds(5),
            max_failures: 5,
            failure_window: Duration::minutes(1),
            lockout: Duration::minutes(1),
            epoch: 0,
        }
    }
}

pub struct ReferenceLock {
    config: LockConfig,
    clock: Arc<dyn Clock>,
    state: Mutex<LockState>,
}

#[derive(Default)]
struct LockState {
    open_challenge: Option<(Challenge, DateTime<Utc>)>,
    grants: HashMap<GrantId, GrantUse>,
    epoch: u16,
    notice_issued_at: u32,
    failures: VecDeque<DateTime<Utc>>,
    locked_until: Option<DateTime<Utc>>,
    audit: Vec<AuditRecord>,
    times_opened: u32,
}

struct GrantUse {
    last_counter: u32,
    uses: u32,
    not_after: u32,
}

/// What the lock learned of an attempt, for its audit record.
#[derive(Default)]
struct Attempt {
    grant_id: [u8; 8],
    job_tag: [u8; 4],
    counter: u32,
    action: u8,
}

impl ReferenceLock {
    pub fn new(config: LockConfig, clock: Arc<dyn Clock>) -> Result<ReferenceLock> {
        if config.issuers.is_empty() {
            return Err(CoreError::invalid("issuers", "a lock needs at least one issuer key"));
        }
        if config.challenge_ttl <= Duration::zero() || config.max_skew < Duration::zero() {
            return Err(CoreError::invalid("config", "the challenge TTL must be positive and the skew not negative"));
        }
        let state = LockState { epoch: config.epoch, ..LockState::default() };
        Ok(ReferenceLock { config, clock, state: Mutex::new(state) })
    }

    pub fn config(&self) -> &LockConfig {
        &self.config
    }

    /// A fresh challenge; it replaces any open one (one phone at a time).
    pub fn challenge(&self) -> Result<Challenge> {
        let now = self.clock.now();
        let mut state = self.state();
        let challenge = Challenge {
            version: frame::PROTOCOL_VERSION,
            lock_id: self.config.lock_id,
            door_id: self.config.door_id,
            nonce: crate::keys::random_bytes()?,
            lock_time: unix_seconds(now),
            epoch: state.epoch,
        };
        state.open_challenge = Some((challenge.clone(), now));
        Ok(challenge)
    }

    /// Judges a response frame. Every call closes the open challenge and
    /// leaves one audit record; the returned result frame carries it.
    pub fn respond(&self, frame_bytes: &[u8]) -> ResultFrame {
        let now = self.clock.now();
        let mut state = self.state();
        let challenge = state.open_challenge.take();
        let mut attempt = Attempt::default();
        let verdict = self.judge(&mut state, now, challenge, frame_bytes, &mut attempt);
        self.conclude(&mut state, now, verdict, attempt)
    }

    /// A response that could not even be reassembled still closes the
    /// challenge, counts as a failure and is audited.
    pub fn refuse_unreadable(&self, err: FrameError) -> ResultFrame {
        let now = self.clock.now();
        let mut state = self.state();
        state.open_challenge = None;
        let verdict = if self.is_locked_out(&state, now) { Err(Reason::RateLimited) } else { Err(reason_for(err)) };
        self.conclude(&mut state, now, verdict, Attempt::default())
    }

    fn judge(
        &self,
        state: &mut LockState,
        now: DateTime<Utc>,
        challenge: Option<(Challenge, DateTime<Utc>)>,
        frame_bytes: &[u8],
        attempt: &mut Attempt,
    ) -> std::result::Result<(), Reason> {
        if self.is_locked_out(state, now) {
            return Err(Reason::RateLimited);
        }
        let (challenge, issued_at) = challenge.ok_or(Reason::NoChallenge)?;
        if now - issued_at > self.config.challenge_ttl {
            return Err(Reason::ChallengeExpired);
        }
        let response = Response::parse(frame_bytes).map_err(reason_for)?;
        let grant = &response.grant;
        attempt.grant_id = grant.grant_id;
        attempt.job_tag = grant.job_tag;
        attempt.counter = response.counter;
        attempt.action = response.action as u8;
        if !grant.issued_by(&self.config.issuers) {
            return Err(Reason::UnknownIssuer);
        }
        if let Some(notice) = &response.notice
            && notice.issued_by(&self.config.issuers)
            && notice.epoch > state.epoch
            && notice.issued_at > state.notice_issued_at
        {
            state.epoch = notice.epoch;
            state.notice_issued_at = notice.issued_at;
        }
        if grant.epoch < state.epoch {
            return Err(Reason::Revoked);
        }
        if !grant.covers_door(self.config.door_id) {
            return Err(Reason::WrongDoor);
        }
        let now_s = i64::from(unix_seconds(now));
        let skew = self.config.max_skew.num_seconds();
        if now_s + skew < i64::from(grant.not_before) {
            return Err(Reason::NotYetValid);
        }
        if now_s - skew > i64::from(grant.not_after()) {
            return Err(Reason::Expired);
        }
        let known = state.grants.get(&grant.grant_id);
        if known.is_some_and(|used| response.counter <= used.last_counter) || response.counter == 0 {
            return Err(Reason::CounterReused);
        }
        let message = unlock_message(&challenge.nonce, challenge.lock_id, &grant.grant_id, response.counter, response.action);
        if !signed_by_grant_device(&message, &response.signature, response.recovery, grant) {
            return Err(Reason::DeviceSignature);
        }
        let uses = known.map_or(0, |used| used.uses);
        if grant.use_limit != 0 && uses >= u32::from(grant.use_limit) {
            return Err(Reason::UseLimitReached);
        }
        self.forget_expired(state, now_s);
        state.grants.insert(
            grant.grant_id,
            GrantUse { last_counter: response.counter, uses: uses + 1, not_after: grant.not_after() },
        );
        Ok(())
    }

    fn conclude(&self, state: &mut LockState, now: DateTime<Utc>, verdict: std::result::Result<(), Reason>, attempt: Attempt) -> ResultFrame {
        let code = match verdict {
            Ok(()) => {
                state.times_opened += 1;
                0
            }
            Err(reason) => {
                if reason != Reason::RateLimited {
                    self.count_failure(state, now);
                }
                reason.code()
            }
        };
        let record = AuditRecord {
            sequence: state.audit.len() as u32 + 1,
            lock_id: self.config.lock_id,
            door_id: self.config.door_id,
            lock_time: unix_seconds(now),
            grant_id: attempt.grant_id,
            job_tag: attempt.job_tag,
            counter: attempt.counter,
            action: attempt.action,
            reason: code,
            mac: [0; 32],
        }
        .sealed(&self.config.audit_key);
        state.audit.push(record);
        tracing::info!(lock = self.config.lock_id, code, "door attempt judged");
        ResultFrame { code, audit: record }
    }

    fn is_locked_out(&self, state: &LockState, now: DateTime<Utc>) -> bool {
        state.locked_until.is_some_and(|until| now < until)
    }

    fn count_failure(&self, state: &mut LockState, now: DateTime<Utc>) {
        let window_start = now - self.config.failure_window;
        while state.failures.front().is_some_and(|at| *at < window_start) {
            state.failures.pop_front();
        }
        state.failures.push_back(now);
        if state.failures.len() as u32 >= self.config.max_failures {
            state.locked_until = Some(now + self.config.lockout);
            state.failures.clear();
        }
    }

    fn forget_expired(&self, state: &mut LockState, now_s: i64) {
        let skew = self.config.max_skew.num_seconds();
        state.grants.retain(|_, used| i64::from(used.not_after) + skew >= now_s);
        if state.grants.len() >= MAX_TRACKED_GRANTS {
            // Over capacity with live grants: forget the one ending soonest.
            if let Some(oldest) = state.grants.iter().min_by_key(|(_, used)| used.not_after).map(|(id, _)| *id) {
                state.grants.remove(&oldest);
            }
        }
    }

    /// The audit log so far, oldest first. Append-only: nothing removes or
    /// changes a record.
    pub fn audit_log(&self) -> Vec<AuditRecord> {
        self.state().audit.clone()
    }

    pub fn epoch(&self) -> u16 {
        self.state().epoch
    }

    pub fn times_opened(&self) -> u32 {
        self.state().times_opened
    }

    fn state(&self) -> MutexGuard<'_, LockState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn reason_for(err: FrameError) -> Reason {
    match err {
        FrameError::TooLarge(_) => Reason::FrameTooLarge,
        FrameError::UnsupportedVersion(_) | FrameError::Grant(GrantFormatError::UnsupportedVersion(_)) => Reason::UnsupportedVersion,
        _ => Reason::Malformed,
    }
}

/// The lock's GATT server, minus the radio: subscribing opens a challenge,
/// written fragments are reassembled and judged, and what the lock
/// notifies comes back fragmented for the connection's MTU.
pub struct LockPeripheral {
    lock: Arc<ReferenceLock>,
    connection: Mutex<Option<(u16, Reassembler)>>,
}

impl LockPeripheral {
    pub fn new(lock: Arc<ReferenceLock>) -> LockPeripheral {
        LockPeripheral { lock, connection: Mutex::new(None) }
    }

    pub fn lock(&self) -> &Arc<ReferenceLock> {
        &self.lock
    }

    /// A phone subscribed at `mtu`: the challenge's notifications.
    pub fn subscribe(&self, mtu: u16) -> Result<Vec<Vec<u8>>> {
        if !(frame::MIN_ATT_MTU..=frame::MAX_ATT_MTU).contains(&mtu) {
            return Err(CoreError::invalid("mtu", "ATT MTU must be 23 to 517"));
        }
        let challenge = self.lock.challenge()?;
        *self.connection() = Some((mtu, Reassembler::default()));
        frame::fragment(&challenge.encode(), mtu).map_err(|e| CoreError::Internal { reason: e.to_string() })
    }

    /// A phone wrote one ATT payload: nothing yet, or the result's
    /// notifications once a frame is complete (or broken).
    pub fn write(&self, payload: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut connection = self.connection();
        let (mtu, reassembler) =
            connection.as_mut().ok_or_else(|| CoreError::LinkFailed { reason: "write before subscribing".into() })?;
        let mtu = *mtu;
        let result = match reassembler.push(payload) {
            Ok(None) => return Ok(Vec::new()),
            Ok(Some(frame)) => self.lock.respond(&frame),
            Err(err) => self.lock.refuse_unreadable(err),
        };
        frame::fragment(&result.encode(), mtu).map_err(|e| CoreError::Internal { reason: e.to_string() })
    }

    pub fn disconnect(&self) {
        *self.connection() = None;
    }

    fn connection(&self) -> MutexGuard<'_, Option<(u16, Reassembler)>> {
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
