//! Handoff benchmarks: what the counter waits for. The staff device signing
//! a ten-package offer, the driver's device reading and checking one,
//! drawing the QR code as PNG, and the whole acceptance on the driver's
//! device (check, sign, commit the receipt and the pickups).
//!
//! `tests/bench.sh` prints one `bench handoff/<name>: <value> <unit>` line
//! per figure from Criterion's medians.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use doorstep_core::handoff::codec::{self, Direction, Message, OfferContent, OfferJob};
use doorstep_core::handoff::{QrSymbol, StoreSession, receipt};
use doorstep_core::keys::SoftwareSigner;
use doorstep_core::{DriverSession, ManualClock, SessionOptions, Transition};
use doorstep_sim::demo::MALL_PICKUP_RUN;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const STORE: &str = "775bf8b3-3b4a-5397-9d8f-453d5c4ef140";
const HPM_2401: &str = "f83adc5d-00a4-5760-b151-14243daf701b";

fn ten_packages(staff: &SoftwareSigner, driver: &SoftwareSigner) -> OfferContent {
    OfferContent {
        direction: Direction::Pickup,
        handoff_id: Uuid::new_v4(),
        store_id: Uuid::parse_str(STORE).unwrap(),
        staff_key: staff.device_public_key(),
        driver_key: driver.device_public_key(),
        created_at: receipt::whole_millis(chrono::Utc::now()),
        jobs: (0..4)
            .map(|job| OfferJob {
                job_id: Uuid::new_v4(),
                confirmed: (0..if job < 2 { 3 } else { 2 }).map(|p| format!("DS1{job:02}{p:03}")).collect(),
                discrepancies: vec![],
                partial_reason: None,
                previous_receipt: None,
            })
            .collect(),
        extras: vec![],
    }
}

fn codes(c: &mut Criterion) {
    let staff = SoftwareSigner::generate().unwrap();
    let driver = SoftwareSigner::generate().unwrap();
    let mut group = c.benchmark_group("handoff");
    group.sample_size(30).measurement_time(Duration::from_secs(3));
    group.bench_function("sign_offer_10_packages", |b| {
        b.iter_batched(|| ten_packages(&staff, &driver), |content| receipt::sign_offer(content, &staff).unwrap(), BatchSize::SmallInput)
    });
    let offer = receipt::sign_offer(ten_packages(&staff, &driver), &staff).unwrap();
    let text = codec::to_text(&Message::Offer(offer)).unwrap();
    group.bench_function("read_and_verify_offer", |b| {
        b.iter(|| receipt::verify_offer(&codec::expect_offer(&text).unwrap()).unwrap())
    });
    group.bench_function("offer_qr_png", |b| b.iter(|| QrSymbol::new(&text).unwrap().to_png(4).unwrap()));
    group.bench_function("offer_qr_svg", |b| b.iter(|| QrSymbol::new(&text).unwrap().to_svg(4)));
    group.finish();
}

/// A driver at the counter and the staff's offer for HPM-2401, ready to accept.
fn at_the_counter() -> (tempfile::TempDir, DriverSession, String) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_at(chrono::Utc::now()));
    let driver = DriverSession::open_with(dir.path().join("d.db"), SessionOptions { clock: clock.clone(), ..SessionOptions::default() }).unwrap();
    driver.import_document(MALL_PICKUP_RUN.as_bytes()).unwrap();
    driver.set_device_signer(Arc::new(SoftwareSigner::generate().unwrap()));
    let job = Uuid::parse_str(HPM_2401).unwrap();
    driver.apply(job, Transition::Accept).unwrap();
    let store = StoreSession::open(dir.path().join("s.db"), Uuid::parse_str(STORE).unwrap(), Arc::new(SoftwareSigner::generate().unwrap()), clock).unwrap();
    store.import_document(MALL_PICKUP_RUN.as_bytes()).unwrap();
    let handoff = store.start_handoff(Direction::Pickup, &driver.handoff_check_in_code().unwrap(), &[job]).unwrap().handoff_id;
    store.scan(handoff, "DS100000").unwrap();
    store.scan(handoff, "DS100001").unwrap();
    let offer = store.offer_code(handoff).unwrap();
    (dir, driver, offer)
}

fn acceptance(c: &mut Criterion) {
    let mut group = c.benchmark_group("handoff");
    group.sample_size(20).measurement_time(Duration::from_secs(5));
    group.bench_function("driver_accepts_offer", |b| {
        b.iter_batched(
            at_the_counter,
            |(dir, driver, offer)| {
                driver.accept_handoff_offer(&offer).unwrap();
                (dir, driver)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, codes, acceptance);
criterion_main!(benches);
