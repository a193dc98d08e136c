//! Fuzz-style properties over random bytes for every parser of bytes that
//! come from outside (a lock, a phone, dispatch): none panics, none accepts
//! what it should not, and the lock never opens for random input.

use doorstep_core::access::frame::{self, Challenge, Reassembler, Response, ResultFrame};
use doorstep_core::access::grant::{Grant, GrantIssuer, GrantTerms, RevocationNotice};
use doorstep_core::access::lock::{LockConfig, LockPeripheral, ReferenceLock};
use doorstep_core::access::wire::parse_grants;
use doorstep_core::keys::SoftwareSigner;
use doorstep_core::{ManualClock, access::Reason};
use proptest::prelude::*;
use std::sync::Arc;

fn config() -> ProptestConfig {
    ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() }
}

fn lock() -> Arc<ReferenceLock> {
    let issuer = GrantIssuer::generate().unwrap();
    let mut config = LockConfig::new(1, 2, vec![issuer.verifying_key()], [1; 32]);
    config.max_failures = u32::MAX;
    let clock = Arc::new(ManualClock::starting_at("2026-11-23T18:30:00Z".parse().unwrap()));
    Arc::new(ReferenceLock::new(config, clock).unwrap())
}

fn a_grant() -> Vec<u8> {
    let device = SoftwareSigner::from_secret(&[7; 32]).unwrap();
    GrantIssuer::from_secret(&[3; 32])
        .unwrap()
        .issue(&GrantTerms {
            grant_id: [1; 8],
            job_id: uuid::Uuid::nil(),
            device_key: device.device_public_key(),
            door_ids: vec![2, 3],
            not_before: 1_800_000_000,
            validity_minutes: 60,
            epoch: 0,
            use_limit: 0,
        })
        .unwrap()
        .encoded()
        .to_vec()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn grant_parsing_never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(grant) = Grant::parse(&bytes) {
            prop_assert_eq!(grant.encoded(), &bytes[..]);
            prop_assert!(!grant.door_ids.is_empty() && grant.door_ids.len() <= 8);
        }
        let _ = RevocationNotice::parse(&bytes);
    }

    #[test]
    fn mutated_grants_parse_to_themselves_or_not_at_all(index in 0usize..111, value in any::<u8>()) {
        let mut bytes = a_grant();
        bytes[index] = value;
        if let Ok(grant) = Grant::parse(&bytes) {
            prop_assert_eq!(grant.encoded(), &bytes[..]);
        }
    }

    #[test]
    fn frame_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Challenge::parse(&bytes);
        let _ = Response::parse(&bytes);
        let _ = ResultFrame::parse(&bytes);
        if let Ok(challenge) = Challenge::parse(&bytes) {
            prop_assert_eq!(challenge.encode(), bytes);
        }
    }

    #[test]
    fn reassembly_never_panics_nor_exceeds_the_frame_limit(
        fragments in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..60), 0..40)
    ) {
        let mut reassembler = Reassembler::default();
        for fragment in fragments {
            if let Ok(Some(frame)) = reassembler.push(&fragment) {
                prop_assert!(frame.len() <= frame::MAX_FRAME_LEN);
            }
        }
    }

    #[test]
    fn the_lock_never_opens_for_random_frames(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let lock = lock();
        lock.challenge().unwrap();
        let result = lock.respond(&bytes);
        prop_assert_ne!(result.code, 0);
        prop_assert!(Reason::from_code(result.code).is_some());
        prop_assert_eq!(lock.audit_log().len(), 1);
    }

    #[test]
    fn the_lock_never_opens_for_random_fragments(
        fragments in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..20), 1..30)
    ) {
        let lock = lock();
        let peripheral = LockPeripheral::new(lock.clone());
        peripheral.subscribe(23).unwrap();
        for fragment in fragments {
            let _ = peripheral.write(&fragment);
        }
        prop_assert_eq!(lock.times_opened(), 0);
    }

    #[test]
    fn grant_answers_from_dispatch_never_panic(json in "\\PC{0,300}") {
        let device = SoftwareSigner::from_secret(&[7; 32]).unwrap().device_public_key();
        let _ = parse_grants(json.as_bytes(), &device);
    }
}
