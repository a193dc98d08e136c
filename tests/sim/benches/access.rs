//! Door access benchmarks: the lock's verification of one response (target
//! ≤ 1 ms), the phone's building of one, and what one unlock costs over the
//! air (bytes and GATT messages at several ATT MTUs; target 3 messages at
//! MTU 185), printed as `bench` lines.

use chrono::{DateTime, Duration, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use doorstep_core::ManualClock;
use doorstep_core::access::grant::{Grant, GrantIssuer, GrantTerms, door_tag};
use doorstep_core::access::lock::{LockConfig, ReferenceLock};
use doorstep_core::access::protocol::{Timeouts, build_response, exchange};
use doorstep_core::access::{InMemoryLink, unix_seconds};
use doorstep_core::keys::SoftwareSigner;
use std::hint::black_box;
use std::sync::Arc;

struct Rig {
    device: SoftwareSigner,
    grant: Grant,
    lock: Arc<ReferenceLock>,
}

fn rig(doors: usize) -> Rig {
    let now: DateTime<Utc> = "2026-11-23T18:30:00Z".parse().unwrap();
    let issuer = GrantIssuer::generate().unwrap();
    let device = SoftwareSigner::generate().unwrap();
    let door = door_tag("bldg-jackson-1180", "lobby-main");
    let mut door_ids: Vec<u32> = (1..doors as u32).collect();
    door_ids.push(door);
    let grant = issuer
        .issue(&GrantTerms {
            grant_id: [3; 8],
            job_id: uuid::Uuid::nil(),
            device_key: device.device_public_key(),
            door_ids,
            not_before: unix_seconds(now - Duration::hours(1)),
            validity_minutes: 240,
            epoch: 0,
            use_limit: 0,
        })
        .unwrap();
    let config = LockConfig::new(1, door, vec![issuer.verifying_key()], [7; 32]);
    let lock = Arc::new(ReferenceLock::new(config, Arc::new(ManualClock::starting_at(now))).unwrap());
    Rig { device, grant, lock }
}

fn lock_verification(c: &mut Criterion) {
    let rig = rig(2);
    let mut counter = 0u32;
    c.bench_function("access/lock_verify_response", |b| {
        b.iter_batched(
            || {
                counter += 1;
                let challenge = rig.lock.challenge().unwrap();
                build_response(&challenge, &rig.grant, counter, &rig.device, None).unwrap().encode()
            },
            |frame| {
                let result = rig.lock.respond(black_box(&frame));
                assert_eq!(result.code, 0, "every benchmarked response must be a good one");
                result
            },
            BatchSize::PerIteration,
        )
    });
}

fn phone_response(c: &mut Criterion) {
    let rig = rig(2);
    let challenge = rig.lock.challenge().unwrap();
    let mut counter = 0u32;
    c.bench_function("access/phone_build_response", |b| {
        b.iter(|| {
            counter += 1;
            build_response(black_box(&challenge), &rig.grant, counter, &rig.device, None).unwrap().encode()
        })
    });
}

/// One whole unlock over an in-memory link per MTU; the figures are exact
/// counts, not timings.
fn over_the_air(_: &mut Criterion) {
    for doors in [1, 2] {
        let rig = rig(doors);
        for mtu in [23u16, 185, 247, 517] {
            let link = InMemoryLink::new(rig.lock.clone(), mtu);
            let door = rig.lock.config().door_id;
            let counter = rig.lock.times_opened() + 1;
            let (_, result, stats) = exchange(&link, door, Timeouts::default(), |challenge| {
                Ok(build_response(challenge, &rig.grant, counter, &rig.device, None)?.encode())
            })
            .unwrap();
            assert_eq!(result.code, 0);
            let counters = link.counters();
            assert_eq!(counters.messages(), stats.messages());
            println!("bench access/gatt_messages_per_unlock_{doors}door_mtu{mtu}: {} messages", counters.messages());
            println!("bench access/bytes_per_unlock_{doors}door_mtu{mtu}: {} bytes", counters.bytes());
        }
        println!("bench access/grant_size_{doors}door: {} bytes", rig.grant.encoded().len());
    }
}

criterion_group!(benches, lock_verification, phone_response, over_the_air);
criterion_main!(benches);
