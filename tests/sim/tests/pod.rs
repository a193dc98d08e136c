//! Proof of delivery through the public API: the requirement matrix, PIN
//! lockout, scans, media trouble, the completion policy, restarts, failed
//! delivery and tamper-evidence of sealed records.

mod common;

use common::*;
use doorstep_core::keys::{SoftwareSigner, hex, sha256};
use doorstep_core::nav::Fix;
use doorstep_core::pod::{FailureNextStep, Stroke, StrokePoint, verify_sealed_record};
use doorstep_core::*;
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

/// HPM-2401: a photo and both packages scanned; may be left at the door.
const SIMPLE: usize = 0;
/// HPM-2402: its package DS100100 is scanned at the wrong door in tests.
const OTHER: usize = 1;
/// HPM-2403: photo, signature, name, scan, minimum age 21 and PIN 4711.
const STRICT: usize = 2;

const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00 a photo of the door";

struct Pod {
    fx: Fixture,
    signer: Arc<SoftwareSigner>,
    session: DriverSession,
    jobs: Vec<Job>,
}

impl Pod {
    fn new() -> Pod {
        let fx = Fixture::new();
        let signer = Arc::new(SoftwareSigner::generate().unwrap());
        let session = open(&fx, &signer);
        session.import_document(MALL_PICKUP_RUN.as_bytes()).unwrap();
        let jobs: Vec<Job> = session.jobs().unwrap().iter().map(|s| session.job(s.id).unwrap()).collect();
        let mut jobs = jobs;
        jobs.sort_by(|a, b| a.reference.cmp(&b.reference));
        Pod { fx, signer, session, jobs }
    }

    fn reopen(&mut self) {
        self.session = open(&self.fx, &self.signer);
    }

    fn id(&self, index: usize) -> Uuid {
        self.jobs[index].id
    }

    /// Drives a job to the drop-off and starts its draft.
    fn at_dropoff(&self, index: usize) -> Uuid {
        let id = self.id(index);
        for t in [Transition::Accept, Transition::ArriveAtPickup, Transition::ConfirmPickup, Transition::ArriveAtDropoff] {
            self.session.apply(id, t).unwrap();
        }
        self.session.start_pod(id).unwrap();
        id
    }

    /// A fix `metres_north` of the job's drop-off.
    fn fix_near(&self, index: usize, metres_north: f64) -> Fix {
        let at = self.jobs[index].dropoff.location;
        Fix {
            latitude: at.latitude + metres_north / 111_320.0,
            longitude: at.longitude,
            horizontal_accuracy_m: 5.0,
            speed_mps: None,
            course_deg: None,
            at: self.fx.clock.now(),
        }
    }
}

fn open(fx: &Fixture, signer: &Arc<SoftwareSigner>) -> DriverSession {
    let options = SessionOptions { clock: fx.clock.clone(), device_signer: Some(signer.clone() as Arc<dyn keys::DeviceSigner>) };
    DriverSession::open_with(fx.db(), options).unwrap()
}

fn strokes() -> Vec<Stroke> {
    vec![
        Stroke { points: vec![StrokePoint { x: 10.0, y: 60.0 }, StrokePoint { x: 80.0, y: 20.0 }, StrokePoint { x: 150.0, y: 70.0 }] },
        Stroke { points: vec![StrokePoint { x: 170.0, y: 40.0 }] },
    ]
}

/// Every capture step of the strict job, by the requirement it satisfies.
const STEPS: [&str; 8] =
    ["delivery_method", "photos", "signature", "recipient_name", "package_scans", "pin", "age_check", "location_fix"];

fn capture(pod: &Pod, job: Uuid, step: &str) {
    let s = &pod.session;
    match step {
        "delivery_method" => drop(s.set_method(job, DeliveryMethod::HandedToRecipient).unwrap()),
        "photos" => drop(s.add_photo_bytes(job, JPEG).unwrap()),
        "signature" => drop(s.add_signature(job, 200.0, 80.0, &strokes()).unwrap()),
        "recipient_name" => drop(s.set_recipient(job, "Dana Whitfield").unwrap()),
        "package_scans" => drop(s.scan_package(job, "DS100200").unwrap()),
        "pin" => drop(s.enter_pin(job, "4711").unwrap()),
        "age_check" => drop(s.record_age_check(job, true, "1990-04-02".parse().unwrap()).unwrap()),
        "location_fix" => drop(s.attach_fix(job, &pod.fix_near(STRICT, 10.0), 123_456).unwrap()),
        other => panic!("unknown step {other}"),
    }
}

#[test]
fn each_missing_requirement_refuses_finalize_and_names_it() {
    for missing in STEPS {
        let pod = Pod::new();
        let job = pod.at_dropoff(STRICT);
        for step in STEPS.iter().filter(|s| **s != missing) {
            capture(&pod, job, step);
        }
        let before = pod.session.pod_draft(job).unwrap();
        match pod.session.finalize_pod(job, None) {
            Err(CoreError::RequirementsNotMet { missing: named }) => assert_eq!(named, vec![missing.to_owned()]),
            other => panic!("without {missing}: {other:?}"),
        }
        assert_eq!(pod.session.job(job).unwrap().state, JobState::AtDropoff, "without {missing}");
        assert_eq!(pod.session.pod_draft(job).unwrap(), before, "the draft is kept");
        assert!(pod.session.pod_records(job).unwrap().is_empty());
    }
}

/// Every key, string and number of a JSON document, as text.
fn json_scalars(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::String(text) => vec![text.clone()],
        serde_json::Value::Number(number) => vec![number.to_string()],
        serde_json::Value::Array(items) => items.iter().flat_map(json_scalars).collect(),
        serde_json::Value::Object(fields) => {
            fields.iter().flat_map(|(key, value)| std::iter::once(key.clone()).chain(json_scalars(value))).collect()
        }
        serde_json::Value::Bool(_) | serde_json::Value::Null => Vec::new(),
    }
}

#[test]
fn a_complete_draft_is_sealed_delivered_and_verifiable() {
    let pod = Pod::new();
    let job = pod.at_dropoff(STRICT);
    for step in STEPS {
        capture(&pod, job, step);
    }
    let sealed = pod.session.finalize_pod(job, None).unwrap();
    assert_eq!(sealed.job.state, JobState::Delivered);
    assert_eq!(sealed.completion, Some(nav::CompletionCheck::WithinGeofence));
    assert_eq!(sealed.uploads, 2, "the photo and the signature's PNG");
    assert_eq!(sealed.payload.completion.verdict, "within_geofence");
    assert_eq!(sealed.payload.recipient_name.as_deref(), Some("Dana Whitfield"));
    assert_eq!(sealed.payload.location.unwrap().monotonic_ms, 123_456);
    assert!(sealed.payload.age_check.unwrap().meets_minimum);
    // Looked for field by field: the record's hashes, keys and signature
    // are random hex, which holds any four digits now and then.
    let record: serde_json::Value = serde_json::from_slice(&sealed.record).unwrap();
    for text in json_scalars(&record) {
        assert!(!text.contains("1990-04-02") && !text.contains("19900402"), "the date of birth is never kept: {text}");
        let random_hex = text.len() >= 32 && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        assert!(text != "4711" && (random_hex || !text.contains("4711")), "nor the PIN: {text}");
    }
    assert!(matches!(pod.session.pod_draft(job), Err(CoreError::NotFound { .. })), "the draft is gone");
    assert_eq!(pod.session.pod_records(job).unwrap(), vec![sealed.record.clone()]);
    let verified = pod.session.verify_pod_record(&sealed.record).unwrap();
    assert_eq!(verified, sealed.payload);
    let media = pod.session.media_store();
    let key = pod.signer.device_public_key();
    verify_sealed_record(&sealed.record, &key, &|sha| media.read(sha).ok()).unwrap();
    let other_key = SoftwareSigner::generate().unwrap().device_public_key();
    assert!(verify_sealed_record(&sealed.record, &other_key, &|sha| media.read(sha).ok()).is_err());
    assert!(matches!(pod.session.finalize_pod(job, None), Err(CoreError::NotFound { .. })), "sealed once");
}

#[test]
fn finalize_needs_a_device_key_and_changes_nothing_without_one() {
    let fx = Fixture::new();
    let session = fx.open_with_sample();
    let job = session.jobs().unwrap().iter().find(|s| s.reference == "HPM-2401").unwrap().id;
    for t in [Transition::Accept, Transition::ArriveAtPickup, Transition::ConfirmPickup] {
        session.apply(job, t).unwrap();
    }
    session.start_pod(job).unwrap();
    session.set_method(job, DeliveryMethod::LeftAtDoor).unwrap();
    session.add_photo_bytes(job, JPEG).unwrap();
    for barcode in ["DS100000", "DS100001"] {
        session.scan_package(job, barcode).unwrap();
    }
    assert!(matches!(session.finalize_pod(job, Some("GPS lost in the lobby")), Err(CoreError::KeyUnavailable { .. })));
    assert_eq!(session.job(job).unwrap().state, JobState::PickedUp);
    session.set_device_signer(Arc::new(SoftwareSigner::generate().unwrap()));
    let sealed = session.finalize_pod(job, Some("GPS lost in the lobby")).unwrap();
    assert_eq!(sealed.job.state, JobState::Delivered, "arrival and delivery in one go");
    assert_eq!(sealed.payload.completion.verdict, "no_fix");
    assert_eq!(sealed.payload.completion.override_reason.as_deref(), Some("GPS lost in the lobby"));
}

#[test]
fn the_completion_policy_warns_blocks_and_records_an_override() {
    let pod = Pod::new();
    let job = pod.at_dropoff(SIMPLE);
    pod.session.set_method(job, DeliveryMethod::LeftAtDoor).unwrap();
    pod.session.add_photo_bytes(job, JPEG).unwrap();
    pod.session.scan_package(job, "DS100000").unwrap();
    pod.session.scan_package(job, "DS100001").unwrap();
    pod.session.attach_fix(job, &pod.fix_near(SIMPLE, 2_000.0), 1).unwrap();
    match pod.session.finalize_pod(job, None) {
        Err(CoreError::TooFarFromDropoff { distance_m }) => assert!(distance_m > 1_500.0, "{distance_m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(pod.session.finalize_pod(job, Some("   ")), Err(CoreError::InvalidInput { .. })));
    assert_eq!(pod.session.job(job).unwrap().state, JobState::AtDropoff);
    let sealed = pod.session.finalize_pod(job, Some("Recipient met me at the corner shop")).unwrap();
    assert_eq!(sealed.payload.completion.verdict, "override");
    assert_eq!(sealed.payload.completion.override_reason.as_deref(), Some("Recipient met me at the corner shop"));

    let job = pod.at_dropoff(OTHER);
    pod.session.set_method(job, DeliveryMethod::Mailroom).unwrap();
    pod.session.add_photo_bytes(job, JPEG).unwrap();
    pod.session.scan_package(job, "DS100100").unwrap();
    pod.session.attach_fix(job, &pod.fix_near(OTHER, 250.0), 2).unwrap();
    let sealed = pod.session.finalize_pod(job, None).unwrap();
    assert!(matches!(sealed.completion, Some(nav::CompletionCheck::Warn { .. })), "{:?}", sealed.completion);
    assert_eq!(sealed.payload.completion.verdict, "warn");
}

#[test]
fn methods_follow_the_job_and_pin_or_age_jobs_are_never_left_at_the_door() {
    let pod = Pod::new();
    let strict = pod.at_dropoff(STRICT);
    for method in [DeliveryMethod::LeftAtDoor, DeliveryMethod::Locker, DeliveryMethod::Neighbour] {
        assert!(matches!(pod.session.set_method(strict, method), Err(CoreError::InvalidInput { .. })), "{method:?}");
    }
    assert_eq!(pod.session.pod_draft(strict).unwrap().method, None);
    let simple = pod.at_dropoff(SIMPLE);
    assert!(matches!(pod.session.set_method(simple, DeliveryMethod::Locker), Err(CoreError::InvalidInput { .. })));
    pod.session.set_method(simple, DeliveryMethod::LeftAtDoor).unwrap();
}

#[test]
fn the_pin_locks_after_the_last_wrong_attempt_and_stays_locked_across_restarts() {
    let mut pod = Pod::new();
    let job = pod.at_dropoff(STRICT);
    assert!(matches!(pod.session.enter_pin(job, "12-34"), Err(CoreError::InvalidInput { .. })), "not counted");
    assert_eq!(pod.session.enter_pin(job, "1111"), Err(CoreError::WrongPin { attempts_left: 2 }));
    pod.reopen();
    assert_eq!(pod.session.enter_pin(job, "2222"), Err(CoreError::WrongPin { attempts_left: 1 }));
    assert_eq!(pod.session.enter_pin(job, "3333"), Err(CoreError::PinLockedOut));
    assert_eq!(pod.session.enter_pin(job, "4711"), Err(CoreError::PinLockedOut), "even the right PIN");
    pod.reopen();
    assert_eq!(pod.session.enter_pin(job, "4711"), Err(CoreError::PinLockedOut));
    let draft = pod.session.pod_draft(job).unwrap();
    assert_eq!((draft.pin.attempts, draft.pin.verified), (3, false));
    for step in STEPS.iter().filter(|s| **s != "pin") {
        capture(&pod, job, step);
    }
    match pod.session.finalize_pod(job, None) {
        Err(CoreError::RequirementsNotMet { missing }) => assert_eq!(missing, vec!["pin_locked_out".to_owned()]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(pod.session.enter_pin(pod.at_dropoff(SIMPLE), "4711"), Err(CoreError::InvalidInput { .. })), "no PIN on this job");
}

#[test]
fn a_failed_id_check_does_not_meet_the_age_requirement() {
    let pod = Pod::new();
    let job = pod.at_dropoff(STRICT);
    let today = pod.fx.clock.now().date_naive();
    let nineteen = today.with_year(today.year() - 19).unwrap();
    let draft = pod.session.record_age_check(job, true, nineteen).unwrap();
    assert!(!draft.age_check.unwrap().meets_minimum);
    // The clock reads 16:50 UTC: the 21st birthday is today everywhere,
    // tomorrow's is not yet anywhere that counts.
    let twenty_one = today.with_year(today.year() - 21).unwrap();
    assert!(pod.session.record_age_check(job, true, twenty_one).unwrap().age_check.unwrap().meets_minimum);
    let draft = pod.session.record_age_check(job, true, twenty_one.succ_opt().unwrap()).unwrap();
    assert!(!draft.age_check.unwrap().meets_minimum, "a day short");
    let draft = pod.session.record_age_check(job, false, "1980-01-01".parse().unwrap()).unwrap();
    assert!(!draft.age_check.unwrap().meets_minimum, "no ID seen, no pass");
    assert!(pod.session.record_age_check(job, true, today.succ_opt().unwrap()).is_err());
    for step in STEPS.iter().filter(|s| **s != "age_check") {
        capture(&pod, job, step);
    }
    match pod.session.finalize_pod(job, None) {
        Err(CoreError::RequirementsNotMet { missing }) => assert_eq!(missing, vec!["age_check".to_owned()]),
        other => panic!("{other:?}"),
    }
}

use chrono::Datelike;

#[test]
fn scans_are_checked_against_the_manifest() {
    let pod = Pod::new();
    let job = pod.at_dropoff(SIMPLE);
    pod.session.scan_package(job, "DS100000").unwrap();
    assert_eq!(pod.session.scan_package(job, "DS100000"), Err(CoreError::DuplicateScan { barcode: "DS100000".into() }));
    assert_eq!(pod.session.scan_package(job, "NOPE-1"), Err(CoreError::UnknownBarcode { barcode: "NOPE-1".into() }));
    assert_eq!(
        pod.session.scan_package(job, "DS100100"),
        Err(CoreError::BarcodeOfOtherJob { barcode: "DS100100".into(), job_reference: "HPM-2402".into() })
    );
    assert!(matches!(pod.session.scan_package(job, "bad\u{7}code"), Err(CoreError::InvalidInput { .. })));
    let draft = pod.session.pod_draft(job).unwrap();
    assert_eq!(draft.scans.iter().map(|s| s.barcode.as_str()).collect::<Vec<_>>(), vec!["DS100000"]);
    assert!(matches!(pod.session.start_pod(pod.id(OTHER)), Err(CoreError::InvalidTransition { .. })), "not picked up yet");
}

#[test]
fn a_draft_survives_a_restart() {
    let mut pod = Pod::new();
    let job = pod.at_dropoff(STRICT);
    for step in ["photos", "signature", "recipient_name", "package_scans", "location_fix"] {
        capture(&pod, job, step);
    }
    pod.session.add_note(job, "Side entrance, blue door").unwrap();
    let before = pod.session.pod_draft(job).unwrap();
    pod.reopen();
    assert_eq!(pod.session.pod_draft(job).unwrap(), before);
    assert_eq!(pod.session.start_pod(job).unwrap(), before, "starting again resumes");
    for step in ["delivery_method", "pin", "age_check"] {
        capture(&pod, job, step);
    }
    pod.session.finalize_pod(job, None).unwrap();
}

#[test]
fn a_missing_file_or_a_full_disk_is_a_typed_error_and_keeps_the_draft() {
    let pod = Pod::new();
    let job = pod.at_dropoff(SIMPLE);
    pod.session.add_photo_bytes(job, JPEG).unwrap();
    let before = pod.session.pod_draft(job).unwrap();

    let missing = pod.fx.dir.path().join("DCIM/IMG_0001.jpg");
    assert!(matches!(pod.session.add_photo_file(job, &missing), Err(CoreError::MediaUnusable { .. })));
    let text = pod.fx.dir.path().join("notes.txt");
    std::fs::write(&text, "not a photo").unwrap();
    assert!(matches!(pod.session.add_photo_file(job, &text), Err(CoreError::MediaUnusable { .. })));
    assert!(matches!(pod.session.add_photo_bytes(job, b"GIF89a"), Err(CoreError::MediaUnusable { .. })));

    // The next write lands on a device with no space left (ENOSPC, from
    // Linux's /dev/full).
    let photo = b"\xFF\xD8\xFF\xE1 another photo";
    #[cfg(target_os = "linux")]
    {
        let partial = pod.session.media_store().dir().join(format!("{}.partial", hex(&sha256(photo))));
        std::os::unix::fs::symlink("/dev/full", &partial).unwrap();
        assert!(matches!(pod.session.add_photo_bytes(job, photo), Err(CoreError::DiskFull { .. })));
        assert_eq!(pod.session.pod_draft(job).unwrap(), before);
        assert!(!partial.exists(), "nothing half-written is left");
    }

    // A photo file taken away behind the core's back is caught at finalize.
    let real = pod.fx.dir.path().join("IMG_0002.jpg");
    std::fs::write(&real, photo).unwrap();
    let draft = pod.session.add_photo_file(job, &real).unwrap();
    assert_eq!(draft.photos.len(), 2);
    std::fs::remove_file(pod.session.media_store().path_of(&draft.photos[1].sha256)).unwrap();
    pod.session.set_method(job, DeliveryMethod::LeftAtDoor).unwrap();
    pod.session.scan_package(job, "DS100000").unwrap();
    pod.session.scan_package(job, "DS100001").unwrap();
    pod.session.attach_fix(job, &pod.fix_near(SIMPLE, 0.0), 9).unwrap();
    assert!(matches!(pod.session.finalize_pod(job, None), Err(CoreError::MediaUnusable { .. })));
    assert_eq!(pod.session.job(job).unwrap().state, JobState::AtDropoff);
    let draft = pod.session.remove_photo(job, &draft.photos[1].sha256.clone()).unwrap();
    assert_eq!(draft.photos.len(), 1);
    pod.session.finalize_pod(job, None).unwrap();
}

#[test]
fn a_failed_delivery_needs_its_evidence_and_leads_to_reattempt_or_return() {
    let pod = Pod::new();
    let job = pod.at_dropoff(SIMPLE);
    pod.session.attach_fix(job, &pod.fix_near(SIMPLE, 5.0), 7).unwrap();
    match pod.session.fail_delivery(job, FailureReason::RecipientUnavailable, FailureNextStep::Reattempt, None) {
        Err(CoreError::RequirementsNotMet { missing }) => assert_eq!(missing, vec!["photos".to_owned()]),
        other => panic!("{other:?}"),
    }
    match pod.session.fail_delivery(job, FailureReason::UnsafeLocation, FailureNextStep::Reattempt, None) {
        Err(CoreError::RequirementsNotMet { missing }) => assert_eq!(missing, vec!["note".to_owned()]),
        other => panic!("{other:?}"),
    }
    pod.session.add_photo_bytes(job, JPEG).unwrap();
    let sealed = pod.session.fail_delivery(job, FailureReason::RecipientUnavailable, FailureNextStep::Reattempt, None).unwrap();
    assert_eq!(sealed.job.state, JobState::PickedUp, "back on the route");
    let failure = sealed.payload.failure.unwrap();
    assert_eq!((failure.reason, failure.next_step), (FailureReason::RecipientUnavailable, FailureNextStep::Reattempt));
    pod.session.verify_pod_record(&sealed.record).unwrap();

    let strict = pod.at_dropoff(STRICT);
    pod.session.attach_fix(strict, &pod.fix_near(STRICT, 5.0), 8).unwrap();
    pod.session.add_photo_bytes(strict, JPEG).unwrap();
    match pod.session.fail_delivery(strict, FailureReason::IdCheckFailed, FailureNextStep::ReturnToStore, None) {
        Err(CoreError::RequirementsNotMet { missing }) => assert_eq!(missing, vec!["age_check".to_owned()]),
        other => panic!("{other:?}"),
    }
    pod.session.record_age_check(strict, true, "2012-01-01".parse().unwrap()).unwrap();
    match pod.session.fail_delivery(strict, FailureReason::IdCheckFailed, FailureNextStep::Reattempt, None) {
        Err(CoreError::RequirementsNotMet { missing }) => assert_eq!(missing, vec!["next_step".to_owned()]),
        other => panic!("{other:?}"),
    }
    let sealed = pod.session.fail_delivery(strict, FailureReason::IdCheckFailed, FailureNextStep::ReturnToStore, None).unwrap();
    assert_eq!(sealed.job.state, JobState::Returning, "age-restricted goods go back, never left");
    assert_eq!(sealed.job.failure, Some(FailureReason::IdCheckFailed));
}

/// One sealed record and its photo, made once for the tamper properties.
fn sealed_sample() -> &'static (Vec<u8>, Vec<u8>, keys::DevicePublicKey) {
    static SAMPLE: OnceLock<(Vec<u8>, Vec<u8>, keys::DevicePublicKey)> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let pod = Pod::new();
        let job = pod.at_dropoff(STRICT);
        for step in STEPS {
            capture(&pod, job, step);
        }
        let sealed = pod.session.finalize_pod(job, None).unwrap();
        (sealed.record, JPEG.to_vec(), pod.signer.device_public_key())
    })
}

fn lookup<'a>(photo: &'a [u8], record: &[u8]) -> impl Fn(&str) -> Option<Vec<u8>> + 'a {
    // The signature PNG is looked up from the record itself (it is not
    // under test here); the photo is the one given.
    let payload: serde_json::Value = serde_json::from_slice(record).unwrap_or_default();
    let png = payload.pointer("/payload/signature/png/sha256").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let png_bytes = PNG_BYTES.get().cloned().unwrap_or_default();
    move |sha: &str| if sha == png { Some(png_bytes.clone()) } else { Some(photo.to_vec()) }
}

static PNG_BYTES: OnceLock<Vec<u8>> = OnceLock::new();

fn init_png() {
    PNG_BYTES.get_or_init(|| doorstep_core::pod::signature::render(200.0, 80.0, &strokes()).unwrap().png);
}

/// Parsing forgives letter case in UUIDs and timestamps; the signature
/// must not: every letter of the record, case flipped, fails.
#[test]
fn a_letter_changed_to_the_other_case_anywhere_in_a_sealed_record_fails_verification() {
    init_png();
    let (record, photo, key) = sealed_sample();
    for i in (0..record.len()).filter(|&i| record[i].is_ascii_alphabetic()) {
        let mut tampered = record.clone();
        tampered[i] ^= 0x20;
        assert!(verify_sealed_record(&tampered, key, &lookup(photo, record)).is_err(), "byte {i} changed case");
    }
}

#[test]
fn the_untouched_sample_verifies() {
    init_png();
    let (record, photo, key) = sealed_sample();
    verify_sealed_record(record, key, &lookup(photo, record)).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_changed_byte_of_a_sealed_record_fails_verification(position in any::<prop::sample::Index>(), flip in 1u8..=255) {
        init_png();
        let (record, photo, key) = sealed_sample();
        let mut tampered = record.clone();
        let i = position.index(tampered.len());
        tampered[i] ^= flip;
        prop_assert!(verify_sealed_record(&tampered, key, &lookup(photo, record)).is_err(), "byte {} changed", i);
    }

    #[test]
    fn any_changed_byte_of_a_photo_fails_verification(position in any::<prop::sample::Index>(), flip in 1u8..=255) {
        init_png();
        let (record, photo, key) = sealed_sample();
        let mut tampered = photo.clone();
        let i = position.index(tampered.len());
        tampered[i] ^= flip;
        prop_assert!(verify_sealed_record(record, key, &lookup(&tampered, record)).is_err(), "photo byte {} changed", i);
    }

    #[test]
    fn random_bytes_are_never_a_valid_record(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let (_, photo, key) = sealed_sample();
        prop_assert!(verify_sealed_record(&bytes, key, &|_| Some(photo.clone())).is_err());
    }
}

/// One PIN entry in the lockout property: the right PIN, a wrong one, or
/// input that is not a PIN at all.
#[derive(Debug, Clone, Copy)]
enum PinEntry {
    Right,
    Wrong,
    Malformed,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any subset of the capture steps: finalize names exactly the steps
    /// left out, in the requirement order, or seals when none is.
    #[test]
    fn finalize_names_exactly_the_missing_requirements(done in proptest::collection::vec(any::<bool>(), STEPS.len())) {
        let pod = Pod::new();
        let job = pod.at_dropoff(STRICT);
        for (step, _) in STEPS.iter().zip(&done).filter(|(_, done)| **done) {
            capture(&pod, job, step);
        }
        let missing: Vec<String> = STEPS.iter().zip(&done).filter(|(_, done)| !**done).map(|(s, _)| s.to_string()).collect();
        match pod.session.finalize_pod(job, None) {
            Ok(sealed) => {
                prop_assert!(missing.is_empty());
                prop_assert_eq!(sealed.job.state, JobState::Delivered);
            }
            Err(CoreError::RequirementsNotMet { missing: named }) => {
                let mut named_sorted = named.clone();
                named_sorted.sort();
                let mut expected = missing.clone();
                expected.sort();
                prop_assert_eq!(named_sorted, expected);
                prop_assert_eq!(pod.session.job(job).unwrap().state, JobState::AtDropoff);
            }
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    /// The PIN check against a model: attempts count only real PINs, the
    /// right PIN verifies until the attempts run out, and a locked check
    /// stays locked.
    #[test]
    fn pin_attempts_follow_the_model(entries in proptest::collection::vec(
        prop_oneof![Just(PinEntry::Right), Just(PinEntry::Wrong), Just(PinEntry::Malformed)], 1..8)) {
        let pod = Pod::new();
        let job = pod.at_dropoff(STRICT);
        let (mut attempts, mut verified) = (0u32, false);
        for entry in entries {
            let pin = match entry { PinEntry::Right => "4711", PinEntry::Wrong => "1234", PinEntry::Malformed => "12 34" };
            let outcome = pod.session.enter_pin(job, pin);
            let locked = !verified && attempts >= 3;
            match (entry, outcome) {
                (_, Ok(draft)) if verified => prop_assert!(draft.pin.verified),
                (_, Err(CoreError::PinLockedOut)) if locked => {}
                (PinEntry::Malformed, Err(CoreError::InvalidInput { .. })) => {}
                (PinEntry::Right, Ok(draft)) => {
                    attempts += 1;
                    verified = true;
                    prop_assert!(draft.pin.verified);
                }
                (PinEntry::Wrong, Err(CoreError::WrongPin { attempts_left })) => {
                    attempts += 1;
                    prop_assert_eq!(attempts_left, 3 - attempts);
                }
                (PinEntry::Wrong, Err(CoreError::PinLockedOut)) => {
                    attempts += 1;
                    prop_assert_eq!(attempts, 3);
                }
                (entry, outcome) => prop_assert!(false, "{:?} gave {:?} after {} attempts", entry, outcome, attempts),
            }
            let draft = pod.session.pod_draft(job).unwrap();
            prop_assert_eq!((draft.pin.attempts, draft.pin.verified), (attempts, verified));
        }
    }
}
