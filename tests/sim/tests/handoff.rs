//! Store handoffs through the public API: a driver's session and a store's
//! session, each with its own software key and database, passing QR texts
//! the way the two cameras would.

mod common;

use common::Fixture;
use doorstep_core::handoff::{Direction, DiscrepancyKind, HandoffReceipt, QrSymbol, StoreSession};
use doorstep_core::store::HandoffStatus;
use doorstep_core::keys::SoftwareSigner;
use doorstep_core::{CoreError, DriverSession, FailureReason, JobState, Transition};
use std::sync::Arc;
use uuid::Uuid;

const STORE: &str = "775bf8b3-3b4a-5397-9d8f-453d5c4ef140";
const HPM_2401: &str = "f83adc5d-00a4-5760-b151-14243daf701b"; // DS100000, DS100001
const HPM_2404: &str = "154e2f40-8788-5ca7-9c01-5ed41b1839dd"; // DS100300, DS100301
const HPM_2407: &str = "fe7e74be-bf80-5036-bac2-48ede103ea88"; // DS100600, DS100601

fn id(text: &str) -> Uuid {
    Uuid::parse_str(text).unwrap()
}

struct Counter {
    fixture: Fixture,
    driver: DriverSession,
    store: StoreSession,
}

impl Counter {
    /// A driver who accepted HPM-2401 and HPM-2404 and stands at the store's
    /// counter (2401 arrived by geofence, 2404 not yet), and the store's
    /// device with the same dispatch document.
    fn new() -> Counter {
        let fixture = Fixture::new();
        let driver = fixture.open_with_sample();
        driver.set_device_signer(Arc::new(SoftwareSigner::generate().unwrap()));
        for (job, transition) in [(HPM_2401, Transition::Accept), (HPM_2401, Transition::ArriveAtPickup), (HPM_2404, Transition::Accept)] {
            driver.apply(id(job), transition).unwrap();
        }
        let store = fixture.open_store("store.db", id(STORE));
        assert_eq!(store.import_document(common::MALL_PICKUP_RUN.as_bytes()).unwrap(), 4, "only this store's orders");
        Counter { fixture, driver, store }
    }

    fn start(&self, direction: Direction, jobs: &[&str]) -> Uuid {
        let check_in = self.driver.handoff_check_in_code().unwrap();
        let ids: Vec<Uuid> = jobs.iter().map(|j| id(j)).collect();
        self.store.start_handoff(direction, &check_in, &ids).unwrap().handoff_id
    }

    fn scan_all(&self, handoff: Uuid, barcodes: &[&str]) {
        for barcode in barcodes {
            self.store.scan(handoff, barcode).unwrap();
        }
    }

    /// Everything the driver's device holds that a refused handoff must
    /// leave as it was.
    fn driver_snapshot(&self) -> (Vec<(JobState, u64)>, usize, usize) {
        let jobs = self.driver.jobs().unwrap().iter().map(|j| (j.state, j.version)).collect();
        let custody = [HPM_2401, HPM_2404, HPM_2407].iter().map(|j| self.driver.handoff_custody(id(j)).unwrap().len()).sum();
        (jobs, self.driver.outbox().unwrap().len(), custody)
    }
}

#[test]
fn a_full_offline_handoff_moves_the_jobs_and_leaves_one_receipt_on_both_devices() {
    let counter = Counter::new();
    let awaiting: Vec<String> = counter.store.orders_awaiting_pickup().unwrap().into_iter().map(|o| o.reference).collect();
    assert_eq!(awaiting, ["HPM-2401", "HPM-2404", "HPM-2407", "HPM-2409"]);

    let handoff = counter.start(Direction::Pickup, &[HPM_2401, HPM_2404]);
    counter.scan_all(handoff, &["DS100000", "DS100301", "DS100001", "DS100300"]);
    let view = counter.store.handoff(handoff).unwrap();
    assert!(view.jobs.iter().all(|job| job.unscanned.is_empty()));
    let offer = counter.store.offer_code(handoff).unwrap();
    assert_eq!(counter.store.offer_code(handoff).unwrap(), offer, "the same code is shown again");
    assert!(counter.store.scan(handoff, "DS100000").is_err(), "scans are frozen once offered");

    let outbox_before = counter.driver.outbox().unwrap().len();
    let accepted = counter.driver.accept_handoff_offer(&offer).unwrap();
    assert_eq!(accepted.direction, Direction::Pickup);
    assert!(accepted.jobs.iter().all(|job| job.state == JobState::PickedUp));
    assert_eq!(counter.driver.job(id(HPM_2404)).unwrap().state, JobState::PickedUp, "arrival is implied by the handoff");
    // HPM-2401: confirm_pickup; HPM-2404: arrive_at_pickup, confirm_pickup.
    let queued: Vec<(Uuid, &str)> =
        counter.driver.outbox().unwrap()[outbox_before..].iter().map(|m| (m.job_id, m.body.transition().unwrap().name())).collect();
    assert_eq!(
        queued,
        [(id(HPM_2401), "confirm_pickup"), (id(HPM_2404), "arrive_at_pickup"), (id(HPM_2404), "confirm_pickup")]
    );

    let receipt = counter.store.complete_handoff(&accepted.acceptance_code).unwrap();
    assert_eq!(doorstep_core::keys::hex(&receipt.hash().unwrap()), accepted.receipt_hash);
    let driver_side = counter.driver.handoff_custody(id(HPM_2404)).unwrap();
    let store_side = counter.store.custody(id(HPM_2404)).unwrap();
    assert_eq!(driver_side, store_side, "both devices hold the same record");
    assert_eq!(driver_side.len(), 1);
    assert_eq!(driver_side[0].confirmed, ["DS100301", "DS100300"], "in scan order");
    assert_eq!(driver_side[0].previous_receipt, None, "custody starts at the store");

    let to_send = counter.store.receipts_to_send().unwrap();
    assert_eq!(to_send.len(), 1);
    assert_eq!(HandoffReceipt::from_record_body(&to_send[0]).unwrap(), receipt);
    counter.store.mark_receipt_sent(&accepted.receipt_hash).unwrap();
    assert!(counter.store.receipts_to_send().unwrap().is_empty());
    let awaiting: Vec<String> = counter.store.orders_awaiting_pickup().unwrap().into_iter().map(|o| o.reference).collect();
    assert_eq!(awaiting, ["HPM-2407", "HPM-2409"]);

    assert!(matches!(counter.store.complete_handoff(&accepted.acceptance_code), Err(CoreError::HandoffReplayed { .. })));
}

#[test]
fn a_partial_handoff_needs_a_reason_and_the_driver_sees_what_is_missing() {
    let counter = Counter::new();
    let handoff = counter.start(Direction::Pickup, &[HPM_2401]);
    counter.scan_all(handoff, &["DS100000"]);
    match counter.store.offer_code(handoff) {
        Err(CoreError::RequirementsNotMet { missing }) => {
            assert_eq!(missing.len(), 1);
            assert!(missing[0].contains("HPM-2401") && missing[0].contains("reason"), "{missing:?}");
        }
        other => panic!("expected RequirementsNotMet, got {other:?}"),
    }
    counter.store.set_partial_reason(handoff, id(HPM_2401), Some("second box still in the back room")).unwrap();
    let offer = counter.store.offer_code(handoff).unwrap();
    let accepted = counter.driver.accept_handoff_offer(&offer).unwrap();
    counter.store.complete_handoff(&accepted.acceptance_code).unwrap();

    let custody = counter.driver.handoff_custody(id(HPM_2401)).unwrap();
    assert_eq!(custody[0].confirmed, ["DS100000"]);
    assert_eq!(custody[0].partial_reason.as_deref(), Some("second box still in the back room"));
    assert_eq!(custody[0].discrepancies.len(), 1);
    assert_eq!(custody[0].discrepancies[0].kind, DiscrepancyKind::Missing);
    assert_eq!(custody[0].discrepancies[0].barcode, "DS100001");
    assert_eq!(counter.driver.job(id(HPM_2401)).unwrap().state, JobState::PickedUp);
}

#[test]
fn a_job_with_nothing_scanned_cannot_be_offered() {
    let counter = Counter::new();
    let handoff = counter.start(Direction::Pickup, &[HPM_2401, HPM_2404]);
    counter.scan_all(handoff, &["DS100000", "DS100001"]);
    match counter.store.offer_code(handoff) {
        Err(CoreError::RequirementsNotMet { missing }) => {
            assert!(missing.iter().any(|m| m.contains("HPM-2404") && m.contains("no package scanned")), "{missing:?}")
        }
        other => panic!("expected RequirementsNotMet, got {other:?}"),
    }
}

#[test]
fn scans_are_checked_one_by_one_and_discrepancies_travel_with_the_receipt() {
    let counter = Counter::new();
    let handoff = counter.start(Direction::Pickup, &[HPM_2401, HPM_2404]);
    counter.scan_all(handoff, &["DS100000", "DS100001", "DS100300"]);
    let before = counter.store.handoff(handoff).unwrap();
    assert_eq!(counter.store.scan(handoff, "DS100000"), Err(CoreError::DuplicateScan { barcode: "DS100000".into() }));
    assert_eq!(
        counter.store.scan(handoff, "DS100600"),
        Err(CoreError::BarcodeOfOtherJob { barcode: "DS100600".into(), job_reference: "HPM-2407".into() })
    );
    // Another store's package is unknown to this store's device.
    assert_eq!(counter.store.scan(handoff, "DS100100"), Err(CoreError::UnknownBarcode { barcode: "DS100100".into() }));
    assert_eq!(counter.store.scan(handoff, "NOPE-1"), Err(CoreError::UnknownBarcode { barcode: "NOPE-1".into() }));
    assert!(matches!(counter.store.scan(handoff, ""), Err(CoreError::InvalidInput { .. })));
    assert!(matches!(
        counter.store.record_discrepancy(handoff, DiscrepancyKind::Damaged, "DS100301", "dented"),
        Err(CoreError::InvalidInput { .. })
    ), "a package not scanned cannot be handed over damaged");
    assert!(matches!(
        counter.store.record_discrepancy(handoff, DiscrepancyKind::Extra, "DS100000", "?"),
        Err(CoreError::InvalidInput { .. })
    ));
    assert_eq!(counter.store.handoff(handoff).unwrap(), before, "refused scans change nothing");

    counter.store.record_discrepancy(handoff, DiscrepancyKind::Damaged, "DS100001", "corner crushed").unwrap();
    counter.store.record_discrepancy(handoff, DiscrepancyKind::Missing, "DS100301", "not on the shelf").unwrap();
    counter.store.record_discrepancy(handoff, DiscrepancyKind::Extra, "NOPE-1", "unlabelled bag with the order").unwrap();
    assert!(matches!(
        counter.store.record_discrepancy(handoff, DiscrepancyKind::Missing, "DS100301", "again"),
        Err(CoreError::DuplicateScan { .. })
    ));
    counter.store.set_partial_reason(handoff, id(HPM_2404), Some("recipient agreed to one box today")).unwrap();
    let offer = counter.store.offer_code(handoff).unwrap();
    let accepted = counter.driver.accept_handoff_offer(&offer).unwrap();
    let receipt = counter.store.complete_handoff(&accepted.acceptance_code).unwrap();

    let content = &receipt.offer.content;
    assert_eq!(content.extras.len(), 1);
    assert_eq!(content.extras[0].barcode, "NOPE-1");
    let on_2401 = &counter.driver.handoff_custody(id(HPM_2401)).unwrap()[0];
    assert_eq!(on_2401.confirmed, ["DS100000", "DS100001"], "a damaged package still changes hands");
    assert_eq!(on_2401.discrepancies[0].kind, DiscrepancyKind::Damaged);
    assert_eq!(on_2401.partial_reason, None);
    let on_2404 = &counter.driver.handoff_custody(id(HPM_2404)).unwrap()[0];
    assert_eq!(on_2404.confirmed, ["DS100300"]);
    assert_eq!(on_2404.discrepancies[0].note, "not on the shelf");
}

/// Replaces one character of a code with another of the Base45 alphabet.
fn with_char_changed(code: &str, index: usize) -> String {
    let mut chars: Vec<char> = code.chars().collect();
    chars[index] = if chars[index] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[test]
fn a_tampered_offer_is_refused_at_every_character_and_changes_nothing() {
    let counter = Counter::new();
    let handoff = counter.start(Direction::Pickup, &[HPM_2401, HPM_2404]);
    counter.scan_all(handoff, &["DS100000", "DS100001", "DS100300", "DS100301"]);
    let offer = counter.store.offer_code(handoff).unwrap();
    let before = counter.driver_snapshot();
    for index in 0..offer.len() {
        match counter.driver.accept_handoff_offer(&with_char_changed(&offer, index)) {
            Err(CoreError::InvalidInput { .. } | CoreError::HandoffSignatureInvalid { .. } | CoreError::HandoffWrongDevice { .. }) => {}
            other => panic!("character {index}: {other:?}"),
        }
    }
    assert!(matches!(counter.driver.accept_handoff_offer("not a code"), Err(CoreError::InvalidInput { .. })));
    assert_eq!(counter.driver_snapshot(), before);
    // The untouched code still works.
    counter.driver.accept_handoff_offer(&offer).unwrap();
}

#[test]
fn a_tampered_acceptance_is_refused_by_the_store() {
    let counter = Counter::new();
    let handoff = counter.start(Direction::Pickup, &[HPM_2401]);
    counter.scan_all(handoff, &["DS100000", "DS100001"]);
    let accepted = counter.driver.accept_handoff_offer(&counter.store.offer_code(handoff).unwrap()).unwrap();
    for index in 4..accepted.acceptance_code.len() {
        match counter.store.complete_handoff(&with_char_changed(&accepted.acceptance_code, index)) {
            Err(CoreError::InvalidInput { .. } | CoreError::HandoffSignatureInvalid { .. } | CoreError::HandoffMismatch { .. }) => {}
            other => panic!("character {index}: {other:?}"),
        }
    }
    assert_eq!(counter.store.receipts_to_send().unwrap().len(), 0);
    counter.store.complete_handoff(&accepted.acceptance_code).unwrap();
}

#[test]
fn an_offer_for_another_drivers_device_is_refused() {
    let counter = Counter::new();
    let handoff = counter.start(Direction::Pickup, &[HPM_2401]);
    counter.scan_all(handoff, &["DS100000", "DS100001"]);
    let offer = counter.store.offer_code(handoff).unwrap();
    let before = counter.driver_snapshot();
    counter.driver.set_device_signer(Arc::new(SoftwareSigner::generate().unwrap()));
    assert!(matches!(counter.driver.accept_handoff_offer(&offer), Err(CoreError::HandoffWrongDevice { .. })));
    assert_eq!(counter.driver_snapshot(), before);
}

#[test]
fn an_offer_is_good_once_and_only_while_fresh() {
    let counter = Counter::new();
    let handoff = counter.start(Direction::Pickup, &[HPM_2401]);
    counter.scan_all(handoff, &["DS100000", "DS100001"]);
    let offer = counter.store.offer_code(handoff).unwrap();
    counter.driver.accept_handoff_offer(&offer).unwrap();
    let before = counter.driver_snapshot();
    assert_eq!(counter.driver.accept_handoff_offer(&offer), Err(CoreError::HandoffReplayed { handoff_id: handoff.to_string() }));
    assert_eq!(counter.driver_snapshot(), before);

    let stale = counter.start(Direction::Pickup, &[HPM_2404]);
    counter.scan_all(stale, &["DS100300", "DS100301"]);
    let old_offer = counter.store.offer_code(stale).unwrap();
    counter.fixture.clock.advance(chrono::Duration::minutes(31));
    assert!(matches!(counter.driver.accept_handoff_offer(&old_offer), Err(CoreError::HandoffExpired { age_seconds: 1860 })));
    assert_eq!(counter.driver_snapshot(), before);
}

#[test]
fn an_offer_for_a_job_in_the_wrong_state_or_unknown_to_the_driver_changes_nothing() {
    let counter = Counter::new();
    // HPM-2407 was never accepted by this driver.
    let handoff = counter.start(Direction::Pickup, &[HPM_2401, HPM_2407]);
    counter.scan_all(handoff, &["DS100000", "DS100001", "DS100600", "DS100601"]);
    let before = counter.driver_snapshot();
    assert_eq!(
        counter.driver.accept_handoff_offer(&counter.store.offer_code(handoff).unwrap()),
        Err(CoreError::InvalidTransition { from: JobState::Assigned, to: JobState::PickedUp })
    );
    assert_eq!(counter.driver_snapshot(), before, "not even HPM-2401 moved");
}

#[test]
fn a_return_hands_the_packages_back_and_chains_to_the_pickup() {
    let counter = Counter::new();
    let pickup = counter.start(Direction::Pickup, &[HPM_2401]);
    counter.scan_all(pickup, &["DS100000", "DS100001"]);
    let accepted = counter.driver.accept_handoff_offer(&counter.store.offer_code(pickup).unwrap()).unwrap();
    counter.store.complete_handoff(&accepted.acceptance_code).unwrap();

    // A return before the driver has headed back is refused on the driver's side.
    let check_in = counter.driver.handoff_check_in_code().unwrap();
    assert!(matches!(
        counter.store.start_handoff(Direction::Return, &check_in, &[id(HPM_2404)]),
        Err(CoreError::HandoffMismatch { .. })
    ), "no pickup receipt for HPM-2404 on the store's device");
    let job = id(HPM_2401);
    counter.driver.apply(job, Transition::ArriveAtDropoff).unwrap();
    counter.driver.apply(job, Transition::Fail { reason: FailureReason::RecipientUnavailable }).unwrap();
    let early = counter.start(Direction::Return, &[HPM_2401]);
    counter.scan_all(early, &["DS100001", "DS100000"]);
    assert_eq!(
        counter.driver.accept_handoff_offer(&counter.store.offer_code(early).unwrap()),
        Err(CoreError::InvalidTransition { from: JobState::Failed, to: JobState::Returned })
    );
    counter.driver.apply(job, Transition::StartReturn).unwrap();

    let back = counter.start(Direction::Return, &[HPM_2401]);
    assert_eq!(counter.store.handoff(back).unwrap().jobs[0].expected, ["DS100000", "DS100001"]);
    counter.scan_all(back, &["DS100001", "DS100000"]);
    let returned = counter.driver.accept_handoff_offer(&counter.store.offer_code(back).unwrap()).unwrap();
    assert_eq!(returned.direction, Direction::Return);
    assert_eq!(returned.jobs[0].state, JobState::Returned);
    assert_eq!(returned.jobs[0].failure, Some(FailureReason::RecipientUnavailable), "the store sees why");
    counter.store.complete_handoff(&returned.acceptance_code).unwrap();

    let chain = counter.driver.handoff_custody(job).unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!((chain[0].direction, chain[1].direction), (Direction::Pickup, Direction::Return));
    assert_eq!(chain[1].previous_receipt.as_deref(), Some(chain[0].receipt_hash.as_str()), "store → driver → store");
    assert_eq!(counter.store.custody(job).unwrap(), chain);
    assert_eq!(counter.store.receipts_to_send().unwrap().len(), 2);
    assert!(matches!(
        counter.store.start_handoff(Direction::Return, &check_in, &[job]),
        Err(CoreError::HandoffMismatch { .. })
    ), "already returned");
}

#[test]
fn a_return_offer_that_breaks_the_custody_chain_is_refused() {
    // The driver picked up from one staff device; a second device (which
    // never saw that pickup) cannot offer a return the driver would accept.
    let counter = Counter::new();
    let pickup = counter.start(Direction::Pickup, &[HPM_2401]);
    counter.scan_all(pickup, &["DS100000", "DS100001"]);
    let accepted = counter.driver.accept_handoff_offer(&counter.store.offer_code(pickup).unwrap()).unwrap();
    counter.store.complete_handoff(&accepted.acceptance_code).unwrap();
    let job = id(HPM_2401);
    for t in [Transition::ArriveAtDropoff, Transition::Fail { reason: FailureReason::Refused }, Transition::StartReturn] {
        counter.driver.apply(job, t).unwrap();
    }
    // The second device holds a pickup receipt of its own for the same job
    // (with another driver key), so its return offer chains elsewhere.
    let other = counter.fixture.open_store("other-store.db", id(STORE));
    other.import_document(common::MALL_PICKUP_RUN.as_bytes()).unwrap();
    let stranger = Fixture::new();
    let stranger_driver = stranger.open_with_sample();
    stranger_driver.set_device_signer(Arc::new(SoftwareSigner::generate().unwrap()));
    stranger_driver.apply(job, Transition::Accept).unwrap();
    let h = other.start_handoff(Direction::Pickup, &stranger_driver.handoff_check_in_code().unwrap(), &[job]).unwrap().handoff_id;
    other.scan(h, "DS100000").unwrap();
    other.scan(h, "DS100001").unwrap();
    let elsewhere = stranger_driver.accept_handoff_offer(&other.offer_code(h).unwrap()).unwrap();
    other.complete_handoff(&elsewhere.acceptance_code).unwrap();

    let back = other.start_handoff(Direction::Return, &counter.driver.handoff_check_in_code().unwrap(), &[job]).unwrap().handoff_id;
    other.scan(back, "DS100000").unwrap();
    other.scan(back, "DS100001").unwrap();
    let before = counter.driver_snapshot();
    assert!(matches!(counter.driver.accept_handoff_offer(&other.offer_code(back).unwrap()), Err(CoreError::HandoffMismatch { .. })));
    assert_eq!(counter.driver_snapshot(), before);
}

#[test]
fn staff_progress_survives_a_restart_of_the_store_device() {
    let counter = Counter::new();
    let handoff = counter.start(Direction::Pickup, &[HPM_2401]);
    counter.scan_all(handoff, &["DS100000"]);
    let Counter { fixture, driver, store } = counter;
    let before = store.handoff(handoff).unwrap();
    drop(store);
    let store = fixture.open_store("store.db", id(STORE));
    assert_eq!(store.handoff(handoff).unwrap(), before);
    store.scan(handoff, "DS100001").unwrap();
    let accepted = driver.accept_handoff_offer(&store.offer_code(handoff).unwrap()).unwrap();
    store.complete_handoff(&accepted.acceptance_code).unwrap();
}

#[test]
fn handoffs_in_progress_are_listed_after_a_restart_and_only_an_open_one_can_be_cancelled() {
    let counter = Counter::new();
    let open = counter.start(Direction::Pickup, &[HPM_2401]);
    counter.scan_all(open, &["DS100000"]);
    counter.fixture.clock.advance(chrono::Duration::seconds(5));
    let offered = counter.start(Direction::Pickup, &[HPM_2404]);
    counter.scan_all(offered, &["DS100300", "DS100301"]);
    let offer = counter.store.offer_code(offered).unwrap();
    let Counter { fixture, driver, store } = counter;
    drop(store);
    let store = fixture.open_store("store.db", id(STORE));
    let in_progress = |store: &StoreSession| -> Vec<(Uuid, HandoffStatus)> {
        store.handoffs_in_progress().unwrap().iter().map(|view| (view.handoff_id, view.status)).collect()
    };
    assert_eq!(in_progress(&store), [(open, HandoffStatus::Open), (offered, HandoffStatus::Offered)], "oldest first, after a restart");

    assert!(
        matches!(store.cancel_handoff(offered), Err(CoreError::InvalidInput { ref reason, .. }) if reason.contains("acceptance")),
        "a shown offer may already be accepted"
    );
    store.cancel_handoff(open).unwrap();
    assert!(matches!(store.handoff(open), Err(CoreError::NotFound { .. })));
    assert!(matches!(store.cancel_handoff(open), Err(CoreError::NotFound { .. })));
    assert!(matches!(store.cancel_handoff(Uuid::new_v4()), Err(CoreError::NotFound { .. })));
    assert_eq!(in_progress(&store), [(offered, HandoffStatus::Offered)]);

    // The cancelled job's packages can be handed over again; the offer shown
    // before the restart still completes.
    let again = store.start_handoff(Direction::Pickup, &driver.handoff_check_in_code().unwrap(), &[id(HPM_2401)]).unwrap();
    assert!(again.jobs[0].confirmed.is_empty(), "a fresh start: nothing scanned");
    let accepted = driver.accept_handoff_offer(&offer).unwrap();
    store.complete_handoff(&accepted.acceptance_code).unwrap();
    assert!(matches!(store.cancel_handoff(offered), Err(CoreError::InvalidInput { .. })), "a receipt stands");
    assert_eq!(in_progress(&store), [(again.handoff_id, HandoffStatus::Open)]);
}

/// The size a realistic handoff reaches: ten packages over four jobs, with
/// a partial job and a damaged package. docs/handoff.md quotes these figures.
#[test]
fn a_ten_package_offer_fits_a_small_qr_code() {
    let fixture = Fixture::new();
    let mut document: serde_json::Value = serde_json::from_str(common::MALL_PICKUP_RUN).unwrap();
    // Give this store's four jobs ten packages between them.
    let jobs = document["jobs"].as_array_mut().unwrap();
    let mut ours: Vec<&mut serde_json::Value> = jobs.iter_mut().filter(|j| j["pickup"]["store_id"] == STORE).collect();
    let extra_barcodes = [("DS100302", 1), ("DS100602", 2), ("DS100802", 3)];
    for (barcode, job) in extra_barcodes {
        let mut package = ours[job]["packages"][0].clone();
        package["barcode"] = barcode.into();
        package["id"] = Uuid::new_v4().to_string().into();
        ours[job]["packages"].as_array_mut().unwrap().push(package);
    }
    let job_ids: Vec<Uuid> = ours.iter().map(|j| id(j["id"].as_str().unwrap())).collect();
    let barcodes: Vec<Vec<String>> = ours
        .iter()
        .map(|j| j["packages"].as_array().unwrap().iter().map(|p| p["barcode"].as_str().unwrap().to_owned()).collect())
        .collect();
    assert_eq!(barcodes.iter().map(Vec::len).sum::<usize>(), 10);
    let document = document.to_string();

    let driver = fixture.open();
    driver.import_document(document.as_bytes()).unwrap();
    driver.set_device_signer(Arc::new(SoftwareSigner::generate().unwrap()));
    for job in &job_ids {
        driver.apply(*job, Transition::Accept).unwrap();
    }
    let store = fixture.open_store("s.db", id(STORE));
    store.import_document(document.as_bytes()).unwrap();
    let handoff = store.start_handoff(Direction::Pickup, &driver.handoff_check_in_code().unwrap(), &job_ids).unwrap().handoff_id;
    for (index, job) in barcodes.iter().enumerate() {
        for barcode in job {
            if !(index == 3 && barcode == "DS100802") {
                store.scan(handoff, barcode).unwrap();
            }
        }
    }
    store.record_discrepancy(handoff, DiscrepancyKind::Damaged, "DS100000", "box wet on one side").unwrap();
    store.set_partial_reason(handoff, job_ids[3], Some("second bag not packed yet")).unwrap();
    let offer = store.offer_code(handoff).unwrap();
    let accepted = driver.accept_handoff_offer(&offer).unwrap();

    let offer_symbol = QrSymbol::new(&offer).unwrap();
    let acceptance_symbol = QrSymbol::new(&accepted.acceptance_code).unwrap();
    let check_in = driver.handoff_check_in_code().unwrap();
    let check_in_symbol = QrSymbol::new(&check_in).unwrap();
    println!(
        "offer: {} characters, QR version {} ({}x{} modules); acceptance: {} characters, version {}; check-in: {} characters, version {}",
        offer.len(),
        offer_symbol.version(),
        offer_symbol.width(),
        offer_symbol.width(),
        accepted.acceptance_code.len(),
        acceptance_symbol.version(),
        check_in.len(),
        check_in_symbol.version(),
    );
    assert!(offer_symbol.version() <= 17, "offer needs version {}", offer_symbol.version());
    assert!(acceptance_symbol.version() <= 8, "acceptance needs version {}", acceptance_symbol.version());
    assert!(check_in_symbol.version() <= 5);
}

/// A standard reader (zbar, as shipped by Debian's zbar-tools) decodes the
/// PNG the core draws back to the exact code text.
#[test]
fn zbarimg_reads_the_png_the_core_draws() {
    let counter = Counter::new();
    let handoff = counter.start(Direction::Pickup, &[HPM_2401, HPM_2404]);
    counter.scan_all(handoff, &["DS100000", "DS100001", "DS100300", "DS100301"]);
    let offer = counter.store.offer_code(handoff).unwrap();
    let accepted = counter.driver.accept_handoff_offer(&offer).unwrap();
    for code in [offer, accepted.acceptance_code, counter.driver.handoff_check_in_code().unwrap()] {
        let png = QrSymbol::new(&code).unwrap().to_png(4).unwrap();
        let path = counter.fixture.dir.path().join("code.png");
        std::fs::write(&path, png).unwrap();
        let output = std::process::Command::new("zbarimg")
            .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
            .arg(&path)
            .output()
            .expect("zbarimg is installed by tests/rust.sh (Debian package zbar-tools)");
        assert!(output.status.success(), "zbarimg failed: {}", String::from_utf8_lossy(&output.stderr));
        let read = String::from_utf8(output.stdout).unwrap();
        assert_eq!(read.trim_end_matches('\n'), code);
        // What the reader returns is accepted as it is, trailing newline and all.
        assert!(doorstep_core::handoff::codec::from_text(&read).is_ok());
    }
}

#[test]
fn the_svg_drawing_holds_the_same_symbol() {
    let symbol = QrSymbol::new("DH1:EXAMPLE").unwrap();
    let svg = symbol.to_svg(4);
    let side = (symbol.width() + 8) * 4;
    assert!(svg.contains(&format!("width=\"{side}\"")), "{svg}");
}

/// The receipt on its way to dispatch: with each job's pickup, through the
/// generic record mutation, checked by the reference server.
mod dispatch {
    use super::*;
    use common::{FixedToken, block_on};
    use doorstep_core::sync::SyncConfig;
    use doorstep_sim::server::client::DispatchClient;
    use doorstep_sim::server::wire::{Mutation, MutationBatch, MutationRecord, Outcome};
    use doorstep_sim::server::{RunningServer, ServerConfig, spawn};

    const DRIVER: &str = "driver-ana";

    /// A counter whose driver syncs with a fresh reference server holding
    /// the same day.
    fn online_counter() -> (RunningServer, DispatchClient, Counter) {
        let server = spawn(ServerConfig::ephemeral()).expect("start the reference server");
        let admin = DispatchClient::new(server.base_url());
        let token = admin.issue_token(DRIVER).unwrap();
        admin.assign_jobs(DRIVER, serde_json::from_str(common::MALL_PICKUP_RUN).unwrap()).unwrap();
        let counter = Counter::new();
        let mut config = SyncConfig::new(server.base_url());
        config.automatic = false;
        counter.driver.start_sync(config, Arc::new(FixedToken(token))).unwrap();
        (server, admin, counter)
    }

    fn handed_over(counter: &Counter, jobs: &[&str], barcodes: &[&str]) -> String {
        let handoff = counter.start(Direction::Pickup, jobs);
        counter.scan_all(handoff, barcodes);
        let accepted = counter.driver.accept_handoff_offer(&counter.store.offer_code(handoff).unwrap()).unwrap();
        counter.store.complete_handoff(&accepted.acceptance_code).unwrap();
        accepted.receipt_hash
    }

    #[test]
    fn the_receipt_reaches_dispatch_with_each_pickup_and_verifies_there() {
        let (_server, admin, counter) = online_counter();
        let receipt_hash = handed_over(&counter, &[HPM_2401, HPM_2404], &["DS100000", "DS100001", "DS100300", "DS100301"]);
        let with_receipt: Vec<_> = counter.driver.outbox().unwrap().into_iter().filter(|m| m.body.record().is_some()).collect();
        assert_eq!(with_receipt.len(), 2, "one mutation per job carries the receipt");
        assert!(with_receipt.iter().all(|m| m.body.transition() == Some(Transition::ConfirmPickup)));

        block_on(counter.driver.sync_now()).unwrap();
        assert!(counter.driver.outbox().unwrap().is_empty(), "{:?}", counter.driver.outbox());
        let staff_record = counter.store.receipts_to_send().unwrap().remove(0);
        for job in [HPM_2401, HPM_2404] {
            let on_server = admin.job(id(job)).unwrap();
            assert_eq!(on_server.state, "picked_up");
            let kept: Vec<_> = on_server.records.iter().filter(|r| r.kind == "handoff_receipt").collect();
            assert_eq!(kept.len(), 1);
            assert_eq!(kept[0].body, staff_record, "the driver's and the staff's record are the same");
            let receipt = HandoffReceipt::from_record_body(&kept[0].body).unwrap();
            assert_eq!(doorstep_core::keys::hex(&receipt.hash().unwrap()), receipt_hash);
        }
    }

    fn confirm_with(job: Uuid, body: serde_json::Value, mutation_id: u64) -> Mutation {
        Mutation {
            mutation_id,
            idempotency_key: format!("handoff-{mutation_id}"),
            job_id: job,
            action: "confirm_pickup".into(),
            failure_reason: None,
            record: Some(MutationRecord { kind: "handoff_receipt".into(), body }),
            occurred_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn dispatch_refuses_a_tampered_receipt_and_one_for_another_job() {
        let (_server, admin, counter) = online_counter();
        handed_over(&counter, &[HPM_2401], &["DS100000", "DS100001"]);
        let good = counter.store.receipts_to_send().unwrap().remove(0);
        let device = admin.driver(DRIVER).unwrap();
        let client = Uuid::new_v4();
        let setup: Vec<Mutation> = ["accept", "arrive_at_pickup"]
            .iter()
            .enumerate()
            .map(|(i, action)| Mutation { action: (*action).into(), record: None, ..confirm_with(id(HPM_2407), serde_json::json!({}), i as u64 + 1) })
            .collect();
        let results = device.post_mutations(&MutationBatch { client_id: client, mutations: setup }).unwrap();
        assert!(results.results.iter().all(|r| r.outcome == Outcome::Applied), "{results:?}");

        let mut tampered = good.clone();
        tampered["jobs"][0]["confirmed"][1] = "DS100601".into();
        let mut forged_bytes = good.clone();
        let offer = forged_bytes["offer"].as_str().unwrap().to_owned();
        forged_bytes["offer"] = format!("{}{}", &offer[..offer.len() - 2], if offer.ends_with("00") { "01" } else { "00" }).into();
        let cases = [(tampered, "summary"), (forged_bytes, "signature"), (good.clone(), "another job")];
        for (mutation_id, (body, what)) in (3..).zip(cases) {
            let sent = MutationBatch { client_id: client, mutations: vec![confirm_with(id(HPM_2407), body, mutation_id)] };
            let results = device.post_mutations(&sent).unwrap();
            assert_eq!(results.results[0].outcome, Outcome::Rejected, "{what}: {results:?}");
        }
        let job = admin.job(id(HPM_2407)).unwrap();
        assert_eq!(job.state, "at_pickup");
        assert!(job.records.is_empty());
    }
}

/// Staff's scanning as a state machine: any sequence of scans, reports and
/// reasons gives exactly the answers a plain model predicts, a refused step
/// changes nothing, and the offer is possible exactly when the model says
/// so; then the driver's device sees the same packages the model holds.
mod scanning_model {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const MANIFEST: [(&str, &str); 4] =
        [("DS100000", HPM_2401), ("DS100001", HPM_2401), ("DS100300", HPM_2404), ("DS100301", HPM_2404)];
    const OUTSIDERS: [&str; 2] = ["DS100600", "XX-1"];

    #[derive(Debug, Clone)]
    enum Step {
        Scan(usize),
        Report(DiscrepancyKind, usize),
        Reason(bool, Option<&'static str>),
    }

    fn barcode(index: usize) -> &'static str {
        if index < MANIFEST.len() { MANIFEST[index].0 } else { OUTSIDERS[index - MANIFEST.len()] }
    }

    fn any_step() -> impl Strategy<Value = Step> {
        let kind = prop_oneof![Just(DiscrepancyKind::Missing), Just(DiscrepancyKind::Damaged), Just(DiscrepancyKind::Extra)];
        prop_oneof![
            4 => (0usize..6).prop_map(Step::Scan),
            2 => (kind, 0usize..6).prop_map(|(k, b)| Step::Report(k, b)),
            1 => (any::<bool>(), proptest::option::of(Just("agreed with the recipient"))).prop_map(|(j, r)| Step::Reason(j, r)),
        ]
    }

    #[derive(Default, Debug)]
    struct Model {
        /// barcode → "confirmed" | "missing" | "extra", in recording order.
        recorded: Vec<(String, &'static str)>,
        damaged: BTreeMap<String, String>,
        reasons: BTreeMap<&'static str, &'static str>,
    }

    impl Model {
        fn kind_of(&self, barcode: &str) -> Option<&'static str> {
            self.recorded.iter().find(|(b, _)| b == barcode).map(|(_, k)| *k)
        }

        fn confirmed(&self, job: &str) -> Vec<String> {
            self.recorded
                .iter()
                .filter(|(b, k)| *k == "confirmed" && MANIFEST.iter().any(|(m, j)| m == b && *j == job))
                .map(|(b, _)| b.clone())
                .collect()
        }

        fn outside_error(barcode: &str) -> CoreError {
            if barcode == "DS100600" {
                CoreError::BarcodeOfOtherJob { barcode: barcode.into(), job_reference: "HPM-2407".into() }
            } else {
                CoreError::UnknownBarcode { barcode: barcode.into() }
            }
        }

        /// What the store should answer: Ok(()) or the error.
        fn apply(&mut self, step: &Step) -> Result<(), CoreError> {
            match *step {
                Step::Scan(index) => {
                    let code = barcode(index);
                    if index >= MANIFEST.len() {
                        return Err(Model::outside_error(code));
                    }
                    if self.kind_of(code).is_some() {
                        return Err(CoreError::DuplicateScan { barcode: code.into() });
                    }
                    self.recorded.push((code.into(), "confirmed"));
                }
                Step::Report(kind, index) => {
                    let code = barcode(index);
                    let on_manifest = index < MANIFEST.len();
                    match (kind, on_manifest) {
                        (DiscrepancyKind::Missing, true) | (DiscrepancyKind::Extra, false) => {
                            if self.kind_of(code).is_some() {
                                return Err(CoreError::DuplicateScan { barcode: code.into() });
                            }
                            self.recorded.push((code.into(), if kind == DiscrepancyKind::Missing { "missing" } else { "extra" }));
                        }
                        (DiscrepancyKind::Damaged, true) => {
                            if self.kind_of(code) != Some("confirmed") {
                                return Err(CoreError::invalid("barcode", "not scanned"));
                            }
                            self.damaged.insert(code.into(), "dented".into());
                        }
                        (DiscrepancyKind::Extra, true) => return Err(CoreError::invalid("barcode", "on a manifest")),
                        (_, false) => return Err(Model::outside_error(code)),
                    }
                }
                Step::Reason(first, reason) => {
                    let job = if first { HPM_2401 } else { HPM_2404 };
                    match reason {
                        Some(reason) => self.reasons.insert(job, reason),
                        None => self.reasons.remove(job),
                    };
                }
            }
            Ok(())
        }

        fn offerable(&self) -> bool {
            [HPM_2401, HPM_2404].iter().all(|job| {
                let complete = MANIFEST.iter().filter(|(_, j)| j == job).all(|(b, _)| self.kind_of(b) == Some("confirmed"));
                !self.confirmed(job).is_empty() && (complete || self.reasons.contains_key(job))
            })
        }
    }

    fn same_kind(actual: &CoreError, expected: &CoreError) -> bool {
        match (actual, expected) {
            (CoreError::InvalidInput { .. }, CoreError::InvalidInput { .. }) => true,
            _ => actual == expected,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn the_store_answers_as_the_model_does(mut steps in proptest::collection::vec(any_step(), 0..14), finish in any::<bool>()) {
            // Half the runs then scan the whole manifest, so that offers
            // (complete, partial, refused) are all reached often.
            if finish {
                steps.extend((0..MANIFEST.len()).map(Step::Scan));
            }
            let counter = Counter::new();
            let handoff = counter.start(Direction::Pickup, &[HPM_2401, HPM_2404]);
            let mut model = Model::default();
            for step in &steps {
                let before = counter.store.handoff(handoff).unwrap();
                let actual = match *step {
                    Step::Scan(index) => counter.store.scan(handoff, barcode(index)).map(|_| ()),
                    Step::Report(kind, index) => counter.store.record_discrepancy(handoff, kind, barcode(index), "dented").map(|_| ()),
                    Step::Reason(first, reason) => {
                        counter.store.set_partial_reason(handoff, id(if first { HPM_2401 } else { HPM_2404 }), reason).map(|_| ())
                    }
                };
                let expected = model.apply(step);
                match (&actual, &expected) {
                    (Ok(()), Ok(())) => {}
                    (Err(a), Err(e)) => {
                        prop_assert!(same_kind(a, e), "{step:?}: got {a:?}, the model says {e:?}");
                        prop_assert_eq!(counter.store.handoff(handoff).unwrap(), before, "a refused step changed something");
                    }
                    _ => prop_assert!(false, "{:?}: got {:?}, the model says {:?}", step, actual, expected),
                }
                let view = counter.store.handoff(handoff).unwrap();
                prop_assert_eq!(view.jobs[0].confirmed.clone(), model.confirmed(HPM_2401));
                prop_assert_eq!(view.jobs[1].confirmed.clone(), model.confirmed(HPM_2404));
            }
            match counter.store.offer_code(handoff) {
                Ok(offer) => {
                    prop_assert!(model.offerable(), "offered although the model says no: {model:?}");
                    counter.driver.accept_handoff_offer(&offer).unwrap();
                    for job in [HPM_2401, HPM_2404] {
                        let custody = &counter.driver.handoff_custody(id(job)).unwrap()[0];
                        prop_assert_eq!(custody.confirmed.clone(), model.confirmed(job));
                        let damaged: Vec<_> = custody.discrepancies.iter().filter(|d| d.kind == DiscrepancyKind::Damaged).map(|d| d.barcode.clone()).collect();
                        let expected: Vec<_> = model.damaged.keys().filter(|b| model.confirmed(job).contains(b)).cloned().collect();
                        let mut damaged_sorted = damaged.clone();
                        damaged_sorted.sort();
                        prop_assert_eq!(damaged_sorted, expected);
                        let handed_or_missing = custody.confirmed.len()
                            + custody.discrepancies.iter().filter(|d| d.kind == DiscrepancyKind::Missing).count();
                        prop_assert_eq!(handed_or_missing, 2, "every package of the job is accounted for");
                    }
                }
                Err(CoreError::RequirementsNotMet { missing }) => {
                    prop_assert!(!model.offerable(), "refused although the model says yes: {missing:?}");
                }
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }
}
