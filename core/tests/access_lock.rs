//! The reference lock fails closed: every way a response can be wrong is
//! denied with its own reason code, and every attempt is audited under the
//! lock's MAC key.

use chrono::{DateTime, Duration, Utc};
use doorstep_core::access::frame::{self, Challenge, Response};
use doorstep_core::access::grant::{Grant, GrantIssuer, GrantTerms, door_tag};
use doorstep_core::access::lock::{LockConfig, LockPeripheral, ReferenceLock};
use doorstep_core::access::protocol::build_response;
use doorstep_core::access::{Reason, unix_seconds};
use doorstep_core::keys::SoftwareSigner;
use doorstep_core::{Clock, ManualClock};
use std::sync::Arc;
use uuid::Uuid;

const AUDIT_KEY: [u8; 32] = [0x5a; 32];

struct Rig {
    issuer: GrantIssuer,
    device: SoftwareSigner,
    clock: Arc<ManualClock>,
    lock: Arc<ReferenceLock>,
    door: u32,
}

fn start() -> DateTime<Utc> {
    "2026-11-23T18:30:00Z".parse().unwrap()
}

impl Rig {
    fn new() -> Rig {
        Rig::with(|_| {})
    }

    fn with(adjust: impl FnOnce(&mut LockConfig)) -> Rig {
        let issuer = GrantIssuer::generate().unwrap();
        let door = door_tag("bldg-jackson-1180", "lobby-main");
        let clock = Arc::new(ManualClock::starting_at(start()));
        let mut config = LockConfig::new(77, door, vec![issuer.verifying_key()], AUDIT_KEY);
        config.max_failures = 1000;
        adjust(&mut config);
        let lock = Arc::new(ReferenceLock::new(config, clock.clone()).unwrap());
        Rig { issuer, device: SoftwareSigner::generate().unwrap(), clock, lock, door }
    }

    fn terms(&self) -> GrantTerms {
        GrantTerms {
            grant_id: [1, 2, 3, 4, 5, 6, 7, 8],
            job_id: Uuid::from_u128(9),
            device_key: self.device.device_public_key(),
            door_ids: vec![door_tag("bldg-jackson-1180", "garage"), self.door],
            not_before: unix_seconds(start() - Duration::hours(1)),
            validity_minutes: 240,
            epoch: 0,
            use_limit: 0,
        }
    }

    fn grant(&self) -> Grant {
        self.issuer.issue(&self.terms()).unwrap()
    }

    fn respond(&self, grant: &Grant, counter: u32) -> (Challenge, Vec<u8>) {
        self.respond_as(&self.device, grant, counter)
    }

    fn respond_as(&self, device: &SoftwareSigner, grant: &Grant, counter: u32) -> (Challenge, Vec<u8>) {
        let challenge = self.lock.challenge().unwrap();
        let response = build_unchecked(&challenge, grant, counter, device);
        (challenge, response)
    }

    fn verdict(&self, frame: &[u8]) -> u8 {
        self.lock.respond(frame).code
    }

    fn assert_denied(&self, frame: &[u8], reason: Reason) {
        let before = self.lock.audit_log().len();
        let opened = self.lock.times_opened();
        let result = self.lock.respond(frame);
        assert_eq!(Reason::from_code(result.code), Some(reason), "expected {reason}, got code {}", result.code);
        assert_eq!(self.lock.times_opened(), opened, "a denial must not open the door");
        let log = self.lock.audit_log();
        assert_eq!(log.len(), before + 1, "every attempt is audited");
        let record = log.last().unwrap();
        assert_eq!(record.reason, reason.code());
        assert!(record.verifies(&AUDIT_KEY));
        assert_eq!(*record, result.audit, "the phone carries the lock's own record");
    }
}

/// Signs like a phone would, even with a grant that is not the signer's (so
/// the lock, not the phone, is what refuses it).
fn build_unchecked(challenge: &Challenge, grant: &Grant, counter: u32, device: &SoftwareSigner) -> Vec<u8> {
    match build_response(challenge, grant, counter, device, None) {
        Ok(response) => response.encode(),
        Err(_) => {
            let own = GrantIssuer::generate().unwrap();
            let terms = GrantTerms {
                grant_id: grant.grant_id,
                job_id: Uuid::nil(),
                device_key: device.device_public_key(),
                door_ids: grant.door_ids.clone(),
                not_before: grant.not_before,
                validity_minutes: grant.validity_minutes,
                epoch: grant.epoch,
                use_limit: grant.use_limit,
            };
            let stand_in = own.issue(&terms).unwrap();
            let mut response = build_response(challenge, &stand_in, counter, device, None).unwrap();
            response.grant = grant.clone();
            response.encode()
        }
    }
}

#[test]
fn a_good_response_opens_once_and_is_audited() {
    let rig = Rig::new();
    let (_, frame) = rig.respond(&rig.grant(), 1);
    let result = rig.lock.respond(&frame);
    assert_eq!(result.code, 0);
    assert_eq!(rig.lock.times_opened(), 1);
    assert_eq!(result.audit.sequence, 1);
    assert_eq!(result.audit.grant_id, rig.grant().grant_id);
    assert!(result.audit.verifies(&AUDIT_KEY));
}

#[test]
fn a_replayed_response_is_denied() {
    let rig = Rig::new();
    let (_, frame) = rig.respond(&rig.grant(), 1);
    assert_eq!(rig.verdict(&frame), 0);
    // Replayed against the challenge it answered: that challenge is closed.
    rig.assert_denied(&frame, Reason::NoChallenge);
    // Replayed against a fresh challenge: the counter was used.
    rig.lock.challenge().unwrap();
    rig.assert_denied(&frame, Reason::CounterReused);
}

#[test]
fn a_response_signed_for_another_challenge_is_denied() {
    let rig = Rig::new();
    let (_, frame) = rig.respond(&rig.grant(), 1);
    rig.lock.challenge().unwrap(); // a new nonce replaces the one signed
    rig.assert_denied(&frame, Reason::DeviceSignature);
}

#[test]
fn an_expired_grant_is_denied() {
    let rig = Rig::new();
    rig.clock.advance(Duration::hours(3) + Duration::minutes(3));
    let (_, frame) = rig.respond(&rig.grant(), 1);
    rig.assert_denied(&frame, Reason::Expired);
}

#[test]
fn a_grant_inside_the_skew_still_opens_and_one_outside_does_not() {
    let rig = Rig::new();
    rig.clock.set(start() + Duration::hours(3) + Duration::seconds(100));
    let (_, frame) = rig.respond(&rig.grant(), 1);
    assert_eq!(rig.verdict(&frame), 0, "100 s after the end is inside the 2 minute skew");
    rig.clock.set(start() + Duration::hours(3) + Duration::seconds(121));
    let (_, frame) = rig.respond(&rig.grant(), 2);
    rig.assert_denied(&frame, Reason::Expired);
}

#[test]
fn a_grant_not_yet_valid_is_denied() {
    let rig = Rig::new();
    let mut terms = rig.terms();
    terms.not_before = unix_seconds(start() + Duration::minutes(10));
    let grant = rig.issuer.issue(&terms).unwrap();
    let (_, frame) = rig.respond(&grant, 1);
    rig.assert_denied(&frame, Reason::NotYetValid);
}

#[test]
fn a_grant_for_other_doors_is_denied() {
    let rig = Rig::new();
    let mut terms = rig.terms();
    terms.door_ids = vec![door_tag("bldg-jackson-1180", "garage"), door_tag("bldg-other", "lobby-main")];
    let grant = rig.issuer.issue(&terms).unwrap();
    let (_, frame) = rig.respond(&grant, 1);
    rig.assert_denied(&frame, Reason::WrongDoor);
}

#[test]
fn another_devices_grant_is_denied() {
    let rig = Rig::new();
    let thief = SoftwareSigner::generate().unwrap();
    let (_, frame) = rig.respond_as(&thief, &rig.grant(), 1);
    rig.assert_denied(&frame, Reason::DeviceSignature);
}

#[test]
fn a_grant_from_an_unknown_issuer_is_denied() {
    let rig = Rig::new();
    let stranger = GrantIssuer::generate().unwrap();
    let grant = stranger.issue(&rig.terms()).unwrap();
    let (_, frame) = rig.respond(&grant, 1);
    rig.assert_denied(&frame, Reason::UnknownIssuer);
}

#[test]
fn a_revoked_grant_is_denied_and_the_lock_learns_revocation_from_a_phone() {
    let rig = Rig::with(|config| config.epoch = 2);
    let mut terms = rig.terms();
    terms.epoch = 1;
    let old = rig.issuer.issue(&terms).unwrap();
    let (_, frame) = rig.respond(&old, 1);
    rig.assert_denied(&frame, Reason::Revoked);

    // A phone that synced carries the issuer's notice of epoch 3; the lock
    // moves on, and a grant of epoch 2 is void from then on.
    terms.epoch = 3;
    terms.grant_id = [9; 8];
    let fresh = rig.issuer.issue(&terms).unwrap();
    let notice = rig.issuer.revocation_notice(3, unix_seconds(start()));
    let challenge = rig.lock.challenge().unwrap();
    let response = build_response(&challenge, &fresh, 1, &rig.device, Some(&notice)).unwrap();
    assert!(response.notice.is_some(), "the lock said epoch 2; the phone knows 3");
    assert_eq!(rig.verdict(&response.encode()), 0);
    assert_eq!(rig.lock.epoch(), 3);
    terms.epoch = 2;
    terms.grant_id = [10; 8];
    let stale = rig.issuer.issue(&terms).unwrap();
    let (_, frame) = rig.respond(&stale, 1);
    rig.assert_denied(&frame, Reason::Revoked);

    // A notice not signed by the issuer teaches the lock nothing.
    let forged = GrantIssuer::generate().unwrap().revocation_notice(9, unix_seconds(start()) + 1);
    let challenge = rig.lock.challenge().unwrap();
    let response = build_response(&challenge, &fresh, 2, &rig.device, Some(&forged)).unwrap();
    assert_eq!(rig.verdict(&response.encode()), 0);
    assert_eq!(rig.lock.epoch(), 3);
}

#[test]
fn a_rolled_back_counter_is_denied() {
    let rig = Rig::new();
    let (_, frame) = rig.respond(&rig.grant(), 5);
    assert_eq!(rig.verdict(&frame), 0);
    for counter in [5, 3, 0] {
        let (_, frame) = rig.respond(&rig.grant(), counter);
        rig.assert_denied(&frame, Reason::CounterReused);
    }
    let (_, frame) = rig.respond(&rig.grant(), 6);
    assert_eq!(rig.verdict(&frame), 0);
}

#[test]
fn a_challenge_answered_after_its_ttl_is_denied() {
    let rig = Rig::new();
    let (_, frame) = rig.respond(&rig.grant(), 1);
    rig.clock.advance(Duration::milliseconds(5_001));
    rig.assert_denied(&frame, Reason::ChallengeExpired);
    let (_, frame) = rig.respond(&rig.grant(), 2);
    rig.clock.advance(Duration::seconds(5));
    assert_eq!(rig.verdict(&frame), 0, "exactly at the TTL still counts");
}

#[test]
fn a_use_limit_is_enforced() {
    let rig = Rig::new();
    let mut terms = rig.terms();
    terms.use_limit = 2;
    let grant = rig.issuer.issue(&terms).unwrap();
    for counter in 1..=2 {
        let (_, frame) = rig.respond(&grant, counter);
        assert_eq!(rig.verdict(&frame), 0);
    }
    let (_, frame) = rig.respond(&grant, 3);
    rig.assert_denied(&frame, Reason::UseLimitReached);
}

#[test]
fn every_truncation_of_a_response_is_denied() {
    let rig = Rig::new();
    let (_, full) = rig.respond(&rig.grant(), 1);
    for len in 0..full.len() {
        rig.lock.challenge().unwrap();
        rig.assert_denied(&full[..len], Reason::Malformed);
    }
    let mut longer = full.clone();
    longer.extend_from_slice(&[0; 3]);
    rig.lock.challenge().unwrap();
    rig.assert_denied(&longer, Reason::Malformed);
}

#[test]
fn oversized_and_broken_fragment_streams_are_denied() {
    let rig = Rig::new();
    let peripheral = LockPeripheral::new(rig.lock.clone());
    peripheral.subscribe(23).unwrap();
    let mut notifications = Vec::new();
    for index in 0..100u8 {
        let mut fragment = vec![index];
        fragment.extend_from_slice(&[0xab; 19]);
        notifications = peripheral.write(&fragment).unwrap();
        if !notifications.is_empty() {
            break;
        }
    }
    let result = reassemble(&notifications);
    assert_eq!(Reason::from_code(result.code), Some(Reason::FrameTooLarge));
    assert_eq!(rig.lock.audit_log().last().unwrap().reason, Reason::FrameTooLarge.code());

    // A frame over 512 bytes handed over whole is refused the same way.
    rig.lock.challenge().unwrap();
    rig.assert_denied(&[frame::TYPE_RESPONSE; 600], Reason::FrameTooLarge);

    // Fragments out of order.
    peripheral.subscribe(23).unwrap();
    peripheral.write(&[0, 2, 1]).unwrap();
    let result = reassemble(&peripheral.write(&[5, 1]).unwrap());
    assert_eq!(Reason::from_code(result.code), Some(Reason::Malformed));
}

fn reassemble(notifications: &[Vec<u8>]) -> frame::ResultFrame {
    let mut reassembler = frame::Reassembler::default();
    let mut out = None;
    for payload in notifications {
        out = reassembler.push(payload).unwrap();
    }
    frame::ResultFrame::parse(&out.expect("a whole result frame")).unwrap()
}

#[test]
fn a_grant_with_any_single_byte_flipped_is_denied() {
    let rig = Rig::new();
    let grant = rig.grant();
    let bytes = grant.encoded().to_vec();
    for index in 0..bytes.len() {
        for mask in [0x01u8, 0x80] {
            let mut flipped = bytes.clone();
            flipped[index] ^= mask;
            let challenge = rig.lock.challenge().unwrap();
            let good = Response::parse(&build_unchecked(&challenge, &grant, (index * 2 + 1) as u32 + u32::from(mask), &rig.device)).unwrap();
            let mut frame = vec![frame::TYPE_RESPONSE];
            frame.extend_from_slice(&flipped);
            frame.extend_from_slice(&good.encode()[1 + bytes.len()..]);
            let result = rig.lock.respond(&frame);
            let reason = Reason::from_code(result.code);
            assert!(
                matches!(reason, Some(Reason::UnknownIssuer | Reason::Malformed | Reason::UnsupportedVersion)),
                "byte {index} mask {mask:#x}: got {reason:?}"
            );
            assert_eq!(rig.lock.audit_log().last().unwrap().reason, result.code);
        }
    }
    assert_eq!(rig.lock.times_opened(), 0);
    assert_eq!(rig.lock.audit_log().len(), bytes.len() * 2);
}

#[test]
fn repeated_failures_lock_everyone_out_for_a_while() {
    let rig = Rig::with(|config| config.max_failures = 5);
    let thief = SoftwareSigner::generate().unwrap();
    for counter in 1..=5 {
        let (_, frame) = rig.respond_as(&thief, &rig.grant(), counter);
        rig.assert_denied(&frame, Reason::DeviceSignature);
    }
    let (_, frame) = rig.respond(&rig.grant(), 10);
    rig.assert_denied(&frame, Reason::RateLimited);
    rig.clock.advance(Duration::seconds(61));
    let (_, frame) = rig.respond(&rig.grant(), 11);
    assert_eq!(rig.verdict(&frame), 0);
}

#[test]
fn the_audit_log_is_numbered_and_every_record_verifies() {
    let rig = Rig::new();
    for counter in 1..=3 {
        let (_, frame) = rig.respond(&rig.grant(), counter);
        rig.lock.respond(&frame);
    }
    rig.lock.respond(b"junk");
    let log = rig.lock.audit_log();
    assert_eq!(log.iter().map(|r| r.sequence).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert!(log.iter().all(|r| r.verifies(&AUDIT_KEY) && !r.verifies(&[0; 32])));
    assert_eq!(log[3].reason, Reason::NoChallenge.code());
    let lock_time = rig.clock.now();
    assert!(log.iter().all(|r| r.lock_time == unix_seconds(lock_time)));
}
