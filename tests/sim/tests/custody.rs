//! The chain of custody across features: the receipt a store and a driver
//! sign at pickup is named in the proof of delivery the driver seals, so
//! store → driver → recipient is one verifiable chain.

mod common;

use common::Fixture;
use doorstep_core::handoff::Direction;
use doorstep_core::keys::SoftwareSigner;
use doorstep_core::nav::Fix;
use doorstep_core::pod::verify_sealed_record;
use doorstep_core::{DeliveryMethod, DriverSession, Transition};
use std::sync::Arc;
use uuid::Uuid;

const STORE: &str = "775bf8b3-3b4a-5397-9d8f-453d5c4ef140";
const HPM_2401: &str = "f83adc5d-00a4-5760-b151-14243daf701b"; // DS100000, DS100001; photo, scans
const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00 the parcel at the door";

fn id(text: &str) -> Uuid {
    Uuid::parse_str(text).unwrap()
}

fn deliver(driver: &DriverSession, job: Uuid) -> doorstep_core::session::SealedPod {
    driver.apply(job, Transition::ArriveAtDropoff).unwrap();
    driver.start_pod(job).unwrap();
    driver.set_method(job, DeliveryMethod::HandedToRecipient).unwrap();
    driver.add_photo_bytes(job, JPEG).unwrap();
    for package in driver.job(job).unwrap().packages {
        driver.scan_package(job, &package.barcode).unwrap();
    }
    let at = driver.job(job).unwrap().dropoff.location;
    let fix = Fix {
        latitude: at.latitude,
        longitude: at.longitude,
        horizontal_accuracy_m: 5.0,
        speed_mps: None,
        course_deg: None,
        at: chrono::Utc::now(),
    };
    driver.attach_fix(job, &fix, 1_000).unwrap();
    driver.finalize_pod(job, None).unwrap()
}

#[test]
fn the_proof_of_delivery_names_the_receipt_of_the_pickup() {
    let fixture = Fixture::new();
    let driver = fixture.open_with_sample();
    let driver_key = Arc::new(SoftwareSigner::generate().unwrap());
    driver.set_device_signer(driver_key.clone());
    let job = id(HPM_2401);
    driver.apply(job, Transition::Accept).unwrap();
    driver.apply(job, Transition::ArriveAtPickup).unwrap();

    let store = fixture.open_store("store.db", id(STORE));
    store.import_document(common::MALL_PICKUP_RUN.as_bytes()).unwrap();
    let handoff = store.start_handoff(Direction::Pickup, &driver.handoff_check_in_code().unwrap(), &[job]).unwrap().handoff_id;
    for barcode in ["DS100000", "DS100001"] {
        store.scan(handoff, barcode).unwrap();
    }
    let accepted = driver.accept_handoff_offer(&store.offer_code(handoff).unwrap()).unwrap();
    store.complete_handoff(&accepted.acceptance_code).unwrap();

    let sealed = deliver(&driver, job);
    assert_eq!(sealed.payload.custody_receipt.as_deref(), Some(accepted.receipt_hash.as_str()));
    let media_store = driver.media_store();
    let media = |sha256: &str| media_store.read(sha256).ok();
    let verified = verify_sealed_record(&sealed.record, &driver_key.device_public_key(), &media).unwrap();
    assert_eq!(verified.custody_receipt, Some(accepted.receipt_hash.clone()), "the link is under the signature");
    let store_side = store.custody(job).unwrap();
    assert_eq!(store_side[0].receipt_hash, accepted.receipt_hash, "the store holds the other end of the link");
}

#[test]
fn a_job_picked_up_without_a_receipt_names_none() {
    let fixture = Fixture::new();
    let driver = fixture.open_with_sample();
    driver.set_device_signer(Arc::new(SoftwareSigner::generate().unwrap()));
    let job = id(HPM_2401);
    for transition in [Transition::Accept, Transition::ArriveAtPickup, Transition::ConfirmPickup] {
        driver.apply(job, transition).unwrap();
    }
    assert_eq!(deliver(&driver, job).payload.custody_receipt, None);
}
