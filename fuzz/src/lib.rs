//! Fuzz targets for every parser of bytes that come from outside the core:
//! dispatch's documents and delta pages, scanned handoff codes, door grants
//! and the frames a lock or a phone receives over Bluetooth, sealed proof
//! records, and the small parsers of server headers, keys, photos and
//! route geometry.
//!
//! Each target takes arbitrary bytes and checks what must hold for any
//! input: no panic, a typed error for bad input, and where a format has
//! one canonical encoding, that whatever parses encodes back to the same
//! bytes. `tests/fuzz.sh` runs them under libFuzzer; `tests/replay.rs` runs
//! every seed and every saved finding in the normal test suite.
//!
//! Owns no behaviour of the core; must not weaken a check to make a target
//! pass.

use doorstep_core::access::audit::AuditRecord;
use doorstep_core::access::frame::{Challenge, Reassembler, Response, ResultFrame};
use doorstep_core::access::grant::{Grant, GrantIssuer, GrantTerms, RevocationNotice};
use doorstep_core::access::lock::{LockConfig, LockPeripheral, ReferenceLock};
use doorstep_core::access::wire::parse_grants;
use doorstep_core::handoff::{base45, codec};
use doorstep_core::keys::{DevicePublicKey, SoftwareSigner};
use doorstep_core::{CoreError, ManualClock, RouteGeometry};
use std::sync::{Arc, OnceLock};

pub mod seeds;

/// Every target by name, as the runners and the replay test know them.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("dispatch_document", dispatch_document),
    ("jobs_delta", jobs_delta),
    ("handoff_code", handoff_code),
    ("door_grant", door_grant),
    ("door_frames", door_frames),
    ("lock_writes", lock_writes),
    ("sealed_record", sealed_record),
    ("small_parsers", small_parsers),
];

/// Bad outside input must be reported as bad input, never as a storage,
/// network or internal failure.
fn only_invalid_input<T>(result: Result<T, CoreError>, what: &str) {
    if let Err(error) = result {
        assert!(matches!(error, CoreError::InvalidInput { .. }), "{what}: bad bytes gave {error:?}");
    }
}

/// A dispatch document (assigned day of jobs), as the shell or server hands it over.
pub fn dispatch_document(data: &[u8]) {
    only_invalid_input(doorstep_core::dispatch::parse_document(data), "dispatch document");
}

/// A page of the jobs delta from the server.
pub fn jobs_delta(data: &[u8]) {
    only_invalid_input(doorstep_core::dispatch::parse_delta(data), "jobs delta");
}

/// Text a camera scanned as a handoff code, and the bytes inside one.
pub fn handoff_code(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = codec::expect_offer(&text);
    let _ = codec::expect_acceptance(&text);
    let _ = codec::expect_check_in(&text);
    if let Ok(bytes) = base45::decode(&text) {
        assert_eq!(base45::decode(&base45::encode(&bytes)).ok(), Some(bytes.clone()), "Base45 round trip");
    }
    if let Ok(message) = codec::decode(data) {
        let encoded = codec::encode(&message).expect("a decoded message encodes");
        assert_eq!(encoded, data, "a handoff message has one encoding");
    }
}

fn device_key() -> &'static DevicePublicKey {
    static KEY: OnceLock<DevicePublicKey> = OnceLock::new();
    KEY.get_or_init(|| SoftwareSigner::from_secret(&[7; 32]).expect("a fixed key").device_public_key())
}

/// A door grant, a revocation notice, and the server's grants answer.
pub fn door_grant(data: &[u8]) {
    if let Ok(grant) = Grant::parse(data) {
        assert_eq!(grant.encoded(), data, "a grant is its own bytes");
        assert!((1..=8).contains(&grant.door_ids.len()), "a grant names 1 to 8 doors");
    }
    if let Ok(notice) = RevocationNotice::parse(data) {
        assert_eq!(notice.encoded(), data, "a notice is its own bytes");
    }
    only_invalid_input(parse_grants(data, device_key()), "grants answer");
}

/// Frames as a phone or a lock reassembles them from GATT payloads.
pub fn door_frames(data: &[u8]) {
    if let Ok(challenge) = Challenge::parse(data) {
        assert_eq!(challenge.encode(), data, "a challenge has one encoding");
    }
    if let Ok(response) = Response::parse(data) {
        assert_eq!(response.encode(), data, "a response has one encoding");
    }
    if let Ok(result) = ResultFrame::parse(data) {
        assert_eq!(result.encode(), data, "a result has one encoding");
    }
    let _ = AuditRecord::parse(data);
    let mut reassembler = Reassembler::default();
    for payload in data.chunks(20) {
        if reassembler.push(payload).is_err() {
            break;
        }
    }
}

fn issuer() -> &'static GrantIssuer {
    static ISSUER: OnceLock<GrantIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| GrantIssuer::from_secret(&[3; 32]).expect("a fixed issuer"))
}

/// The lock's side of a connection: the first byte picks the ATT MTU, then
/// each write is a length byte and that many bytes. Whatever a phone
/// writes, the lock answers without panicking, and never opens for bytes
/// it did not see signed.
pub fn lock_writes(data: &[u8]) {
    let Some((&mtu_byte, mut rest)) = data.split_first() else { return };
    let clock = Arc::new(ManualClock::starting_at("2026-11-23T18:30:00Z".parse().expect("a fixed time")));
    let lock = ReferenceLock::new(LockConfig::new(1, 2, vec![issuer().verifying_key()], [1; 32]), clock).expect("a lock");
    let peripheral = LockPeripheral::new(Arc::new(lock));
    let mtu = 23 + u16::from(mtu_byte) * 2;
    if peripheral.subscribe(mtu).is_err() {
        return;
    }
    while let Some((&length, tail)) = rest.split_first() {
        let (payload, after) = tail.split_at(usize::from(length).min(tail.len()));
        let _ = peripheral.write(payload);
        rest = after;
    }
    assert_eq!(peripheral.lock().times_opened(), 0, "opened without a signed request");
}

/// A sealed proof-of-delivery record, as the server or an auditor reads it.
pub fn sealed_record(data: &[u8]) {
    only_invalid_input(doorstep_core::pod::seal::open_sealed_record(data).map(|_| ()), "sealed record");
    let no_media = |_: &str| None;
    only_invalid_input(doorstep_core::pod::verify_sealed_record(data, device_key(), &no_media).map(|_| ()), "sealed record");
}

/// A server's `Retry-After`, a device key, photo bytes and route geometry.
pub fn small_parsers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = doorstep_core::sync::http::parse_retry_after(&text);
    let _ = DevicePublicKey::parse(data);
    let _ = doorstep_core::pod::media::sniff_image(data);
    if let Some((&precision, polyline)) = data.split_first() {
        let geometry = RouteGeometry { polyline: String::from_utf8_lossy(polyline).into_owned(), precision: precision % 16 };
        only_invalid_input(doorstep_core::nav::geometry::decode_polyline(&geometry), "route geometry");
    }
}

/// Terms for a sample grant (also used by the seeds).
pub fn sample_grant_terms() -> GrantTerms {
    GrantTerms {
        grant_id: [1; 8],
        job_id: uuid::Uuid::nil(),
        device_key: device_key().clone(),
        door_ids: vec![2, 3],
        not_before: 1_800_000_000,
        validity_minutes: 60,
        epoch: 0,
        use_limit: 0,
    }
}

/// The sample grant, signed by the targets' issuer.
pub fn sample_grant() -> Grant {
    issuer().issue(&sample_grant_terms()).expect("the sample grant")
}
