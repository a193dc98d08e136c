//! Proof-of-delivery benchmarks: finalize (seal with the device key, then
//! the one transaction for state, record and uploads) with a phone-sized
//! photo, and verifying a sealed record with its photo.
//!
//! `tests/bench.sh` prints one `bench pod/<name>: <value> <unit>` line each.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use doorstep_core::keys::SoftwareSigner;
use doorstep_core::pod::verify_sealed_record;
use doorstep_core::{DeliveryMethod, DriverSession, SessionOptions};
use doorstep_sim::synthetic::{self, HAPPY_PATH};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A 2.5 MB JPEG-headed photo, distinct per `seed` (a camera's typical size).
fn photo(seed: u64) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..2_500_000u64).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 7) as u8).collect();
    bytes[..4].copy_from_slice(b"\xFF\xD8\xFF\xE0");
    bytes
}

/// A job at its drop-off with a complete draft: photo, scans, method.
fn ready_job(session: &DriverSession, seed: u64) -> Uuid {
    let day = "2026-11-23T16:00:00Z".parse().unwrap();
    let imported = session.import_document(synthetic::document(1, 1, day).as_bytes()).unwrap();
    let id = imported.jobs[0].job_id;
    for step in &HAPPY_PATH[..4] {
        session.apply(id, *step).unwrap();
    }
    session.start_pod(id).unwrap();
    session.add_photo_bytes(id, &photo(seed)).unwrap();
    session.set_method(id, DeliveryMethod::HandedToRecipient).unwrap();
    for package in session.job(id).unwrap().packages {
        session.scan_package(id, &package.barcode).unwrap();
    }
    id
}

fn finalize(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let signer = Arc::new(SoftwareSigner::generate().unwrap());
    let options = SessionOptions { device_signer: Some(signer.clone()), ..SessionOptions::default() };
    let session = DriverSession::open_with(dir.path().join("bench.db"), options).unwrap();
    let mut group = c.benchmark_group("pod");
    group.sample_size(20).measurement_time(Duration::from_secs(6));
    let mut seed = 0;
    group.bench_function("finalize_seal_and_commit", |b| {
        b.iter_batched(
            || {
                seed += 1;
                ready_job(&session, seed)
            },
            |job| session.finalize_pod(job, Some("benchmark without a fix")).unwrap(),
            BatchSize::PerIteration,
        )
    });
    let job = ready_job(&session, u64::MAX);
    let sealed = session.finalize_pod(job, Some("benchmark without a fix")).unwrap();
    let media = session.media_store();
    let key = signer.device_public_key();
    group.bench_function("verify_record_and_photo", |b| {
        b.iter(|| verify_sealed_record(&sealed.record, &key, &|sha| media.read(sha).ok()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, finalize);
criterion_main!(benches);
