//! The phone's side of the door exchange: the message the device key signs,
//! building the response to a challenge, and running the whole exchange
//! over a [`BleLink`].

use super::frame::{self, Action, Challenge, FrameError, Reassembler, Response, ResultFrame};
use super::grant::{Grant, RevocationNotice};
use super::link::{BleLink, LinkError};
use crate::error::{CoreError, Result};
use crate::keys::{DeviceSigner, sha256, sign_checked};
use ecdsa::RecoveryId;
use p256::ecdsa::{Signature, VerifyingKey};
use std::time::Duration;

const UNLOCK_DOMAIN: &[u8] = b"doorstep.unlock/1\0";

/// What the device key signs: the lock's nonce and id, the grant, the
/// counter and the action, so a response answers one challenge only.
pub fn unlock_message(nonce: &[u8; 16], lock_id: u32, grant_id: &[u8; 8], counter: u32, action: Action) -> Vec<u8> {
    let mut out = Vec::with_capacity(UNLOCK_DOMAIN.len() + 33);
    out.extend_from_slice(UNLOCK_DOMAIN);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&lock_id.to_be_bytes());
    out.extend_from_slice(grant_id);
    out.extend_from_slice(&counter.to_be_bytes());
    out.push(action as u8);
    out
}

/// Signs a response to `challenge` with the device key. The grant must be
/// this device's; the recovery bits are worked out here so the lock needs
/// only one key recovery.
pub fn build_response(
    challenge: &Challenge,
    grant: &Grant,
    counter: u32,
    signer: &dyn DeviceSigner,
    notice: Option<&RevocationNotice>,
) -> Result<Response> {
    let message = unlock_message(&challenge.nonce, challenge.lock_id, &grant.grant_id, counter, Action::Unlock);
    let (signature, public_key) = sign_checked(signer, &message)?;
    if !grant.is_for_device(&public_key) {
        return Err(CoreError::NoGrant {
            door_id: challenge.door_id.to_string(),
            reason: "the grant was issued to another device key".into(),
        });
    }
    let verifying = VerifyingKey::from_sec1_bytes(&public_key.to_compressed())
        .map_err(|_| CoreError::KeyUnavailable { reason: "the device key is not a P-256 key".into() })?;
    let parsed = Signature::from_slice(&signature)
        .map_err(|_| CoreError::KeyUnavailable { reason: "the signer returned a malformed signature".into() })?;
    let recovery = RecoveryId::trial_recovery_from_msg(&verifying, &message, &parsed)
        .map_err(|_| CoreError::KeyUnavailable { reason: "the signature does not recover the device key".into() })?;
    Ok(Response {
        grant: grant.clone(),
        counter,
        action: Action::Unlock,
        recovery: recovery.to_byte(),
        signature,
        notice: notice.filter(|n| n.epoch > challenge.epoch).cloned(),
    })
}

/// The lock's check of a device signature: recovers the signing key and
/// compares its hash with the grant's.
pub fn signed_by_grant_device(message: &[u8], signature: &[u8; 64], recovery: u8, grant: &Grant) -> bool {
    let Ok(signature) = Signature::from_slice(signature) else { return false };
    let Some(recovery) = RecoveryId::from_byte(recovery) else { return false };
    match VerifyingKey::recover_from_msg(message, &signature, recovery) {
        Ok(key) => {
            let point = key.to_encoded_point(true);
            let hash: [u8; 16] = sha256(point.as_bytes())[..16].try_into().expect("16 bytes");
            hash == grant.device_key_hash
        }
        Err(_) => false,
    }
}

/// How long each step of the exchange may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Scanning for the lock and connecting.
    pub connect: Duration,
    /// Each notification from the lock.
    pub receive: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect: Duration::from_secs(10), receive: Duration::from_secs(3) }
    }
}

/// What went over the air in one exchange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExchangeStats {
    pub mtu: u16,
    pub writes: u32,
    pub notifications: u32,
    pub bytes_written: u32,
    pub bytes_notified: u32,
}

impl ExchangeStats {
    pub fn messages(&self) -> u32 {
        self.writes + self.notifications
    }
}

/// One exchange: connect to the lock of `door_id`, read its challenge, send
/// what `respond` builds for it, read the result. Always disconnects.
pub fn exchange(
    link: &dyn BleLink,
    door_id: u32,
    timeouts: Timeouts,
    respond: impl FnOnce(&Challenge) -> Result<Vec<u8>>,
) -> Result<(Challenge, ResultFrame, ExchangeStats)> {
    let mtu = link.connect(door_id, timeouts.connect).map_err(|e| link_error(e, door_id))?;
    let outcome = run_connected(link, door_id, mtu, timeouts, respond);
    link.disconnect();
    outcome
}

fn run_connected(
    link: &dyn BleLink,
    door_id: u32,
    mtu: u16,
    timeouts: Timeouts,
    respond: impl FnOnce(&Challenge) -> Result<Vec<u8>>,
) -> Result<(Challenge, ResultFrame, ExchangeStats)> {
    if !(frame::MIN_ATT_MTU..=frame::MAX_ATT_MTU).contains(&mtu) {
        return Err(CoreError::LinkFailed { reason: format!("the link reported ATT MTU {mtu}") });
    }
    let mut stats = ExchangeStats { mtu, ..ExchangeStats::default() };
    let challenge_frame = receive_frame(link, door_id, timeouts, &mut stats)?;
    let challenge = Challenge::parse(&challenge_frame).map_err(|e| lock_spoke_nonsense("challenge", e))?;
    if challenge.door_id != door_id {
        return Err(CoreError::LinkFailed {
            reason: format!("reached the lock of door {}, not door {door_id}", challenge.door_id),
        });
    }
    let response = respond(&challenge)?;
    for payload in frame::fragment(&response, mtu).map_err(|e| CoreError::Internal { reason: e.to_string() })? {
        link.write(&payload).map_err(|e| link_error(e, door_id))?;
        stats.writes += 1;
        stats.bytes_written += payload.len() as u32;
    }
    let result_frame = receive_frame(link, door_id, timeouts, &mut stats)?;
    let result = ResultFrame::parse(&result_frame).map_err(|e| lock_spoke_nonsense("result", e))?;
    Ok((challenge, result, stats))
}

fn receive_frame(link: &dyn BleLink, door_id: u32, timeouts: Timeouts, stats: &mut ExchangeStats) -> Result<Vec<u8>> {
    let mut reassembler = Reassembler::default();
    loop {
        let payload = link.receive(timeouts.receive).map_err(|e| link_error(e, door_id))?;
        stats.notifications += 1;
        stats.bytes_notified += payload.len() as u32;
        if let Some(frame) = reassembler.push(&payload).map_err(|e| lock_spoke_nonsense("fragment", e))? {
            return Ok(frame);
        }
    }
}

fn lock_spoke_nonsense(what: &str, err: FrameError) -> CoreError {
    CoreError::LinkFailed { reason: format!("the lock sent a bad {what}: {err}") }
}

/// The driver-facing error for a link failure.
pub fn link_error(err: LinkError, door_id: u32) -> CoreError {
    match err {
        LinkError::Unavailable { reason } => CoreError::BluetoothUnavailable { reason },
        LinkError::OutOfRange => CoreError::LockOutOfRange { lock_id: door_id.to_string() },
        LinkError::Timeout => CoreError::LinkFailed { reason: "the lock stopped answering".into() },
        LinkError::Broken { reason } => CoreError::LinkFailed { reason },
    }
}
