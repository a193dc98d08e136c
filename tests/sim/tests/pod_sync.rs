//! Proof of delivery against the reference server: media uploaded before
//! the record that cites it, resumed after a dropped chunk, deduplicated by
//! hash; the server verifies the sealed record; local media purged only
//! after dispatch has it and the retention period has passed.

mod common;

use common::*;
use doorstep_core::keys::{SoftwareSigner, hex, sha256};
use doorstep_core::nav::Fix;
use doorstep_core::store::MutationBody;
use doorstep_core::sync::SyncConfig;
use doorstep_core::*;
use doorstep_sim::faults::{Fault, FaultProxy};
use doorstep_sim::server::client::DispatchClient;
use doorstep_sim::server::wire::{Mutation as WireMutation, MutationBatch, MutationRecord, MutationResult, Outcome};
use doorstep_sim::server::{RunningServer, ServerConfig, spawn};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const DRIVER: &str = "driver-ana";

struct World {
    server: RunningServer,
    admin: DispatchClient,
    token: String,
}

impl World {
    fn new() -> World {
        let server = spawn(ServerConfig::ephemeral()).expect("start the reference server");
        let admin = DispatchClient::new(server.base_url());
        let token = admin.issue_token(DRIVER).unwrap();
        admin.assign_jobs(DRIVER, serde_json::from_str(MALL_PICKUP_RUN).unwrap()).unwrap();
        World { server, admin, token }
    }

    fn driver(&self) -> DispatchClient {
        self.admin.as_driver(self.token.clone())
    }

    fn session(&self, fx: &Fixture, base_url: &str) -> DriverSession {
        let signer: Arc<dyn keys::DeviceSigner> = Arc::new(SoftwareSigner::generate().unwrap());
        let session =
            DriverSession::open_with(fx.db(), SessionOptions { clock: fx.clock.clone(), device_signer: Some(signer) }).unwrap();
        let mut config = SyncConfig::new(base_url);
        config.automatic = false;
        config.backoff_base = Duration::from_millis(20);
        config.request_timeout = Duration::from_secs(5);
        session.start_sync(config, Arc::new(FixedToken(self.token.clone()))).unwrap();
        block_on(session.sync_now()).unwrap();
        session
    }
}

fn job(session: &DriverSession, reference: &str) -> Job {
    let id = session.jobs().unwrap().into_iter().find(|j| j.reference == reference).unwrap().id;
    session.job(id).unwrap()
}

/// A JPEG-headed photo of `len` bytes, different for each `seed`.
fn photo(len: usize, seed: u8) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
    bytes[..4].copy_from_slice(b"\xFF\xD8\xFF\xE0");
    bytes
}

/// Takes HPM-2401 or another simple job to the door and captures a
/// complete proof with `photo`.
fn deliverable(session: &DriverSession, reference: &str, photo: &[u8]) -> Uuid {
    let job = job(session, reference);
    for t in [Transition::Accept, Transition::ArriveAtPickup, Transition::ConfirmPickup, Transition::ArriveAtDropoff] {
        session.apply(job.id, t).unwrap();
    }
    session.start_pod(job.id).unwrap();
    session.set_method(job.id, DeliveryMethod::LeftAtDoor).unwrap();
    session.add_photo_bytes(job.id, photo).unwrap();
    for package in &job.packages {
        session.scan_package(job.id, &package.barcode).unwrap();
    }
    let at = job.dropoff.location;
    let fix = Fix { latitude: at.latitude, longitude: at.longitude, horizontal_accuracy_m: 5.0, speed_mps: None, course_deg: None, at: chrono::Utc::now() };
    session.attach_fix(job.id, &fix, 42).unwrap();
    job.id
}

#[test]
fn media_goes_up_before_the_record_and_the_server_verifies_it() {
    let world = World::new();
    let fx = Fixture::new();
    let session = world.session(&fx, &world.server.base_url());
    let picture = photo(700_000, 1);
    let job = deliverable(&session, "HPM-2401", &picture);
    // Another job's action queued after the proof: it may go first, the
    // record must still reach dispatch.
    let other = job_by(&session, "HPM-2402");
    let sealed = session.finalize_pod(job, None).unwrap();
    session.apply(other, Transition::Accept).unwrap();

    let outbox = session.outbox().unwrap();
    let uploads: Vec<_> = outbox.iter().filter(|m| matches!(m.body, MutationBody::Upload(_))).collect();
    assert_eq!(uploads.len(), 1);
    let deliver = outbox.iter().find(|m| m.body.transition() == Some(Transition::Deliver)).unwrap();
    assert_eq!(deliver.depends_on, Some(uploads[0].mutation_id), "the record waits on its photo");
    assert_eq!(deliver.body.record().unwrap().body.as_bytes(), sealed.record.as_slice(), "queued byte for byte");

    let report = block_on(session.sync_now()).unwrap();
    assert_eq!((report.pending, report.wedged), (0, 0), "{report:?}");
    let sha = hex(&sha256(&picture));
    let held = world.driver().media_status(&sha).unwrap();
    assert!(held.complete && held.received == picture.len() as u64);
    let server = world.admin.job(job).unwrap();
    assert_eq!(server.state, "delivered");
    assert_eq!(server.records.len(), 1, "the sealed record is kept");
    assert_eq!(world.admin.job(other).unwrap().state, "accepted");

    // Retention: kept while young, removed once dispatch has had it long enough.
    let media = session.media_store();
    assert_eq!(session.purge_media(session::DEFAULT_MEDIA_RETENTION).unwrap(), 0);
    assert!(media.contains(&sha));
    fx.clock.advance(chrono::Duration::days(8));
    assert_eq!(session.purge_media(session::DEFAULT_MEDIA_RETENTION).unwrap(), 1);
    assert!(!media.contains(&sha));
}

fn job_by(session: &DriverSession, reference: &str) -> Uuid {
    job(session, reference).id
}

#[test]
fn an_upload_cut_off_mid_way_resumes_where_the_server_stands() {
    let world = World::new();
    let proxy = FaultProxy::start(&world.server.base_url()).unwrap();
    let fx = Fixture::new();
    let session = world.session(&fx, &proxy.url());
    let picture = photo(3 * 256 * 1024 + 1000, 2);
    let sha = hex(&sha256(&picture));
    let job = deliverable(&session, "HPM-2401", &picture);
    session.finalize_pod(job, None).unwrap();

    // Status, first chunk through, second chunk dropped on the way.
    proxy.script("/v1/media/", [Fault::Pass, Fault::Pass, Fault::Drop]);
    assert!(matches!(block_on(session.sync_now()), Err(CoreError::Network { .. })));
    assert_eq!(world.driver().media_status(&sha).unwrap().received, 256 * 1024, "one chunk held");
    assert_eq!(world.admin.job(job).unwrap().state, "at_dropoff", "no record before its photo");
    let upload = session.outbox().unwrap().into_iter().find(|m| matches!(m.body, MutationBody::Upload(_))).unwrap();
    assert_eq!(upload.attempts, 1);

    // A reset after the server took a chunk: the answer is lost, the chunk is not.
    proxy.script("/v1/media/", [Fault::Pass, Fault::ResetAfterForward]);
    assert!(block_on(session.sync_now()).is_err());
    assert_eq!(world.driver().media_status(&sha).unwrap().received, 2 * 256 * 1024);

    let before = proxy.counts().request_bytes;
    proxy.pass_everything();
    let report = block_on(session.sync_now()).unwrap();
    assert_eq!(report.pending, 0);
    let resent = proxy.counts().request_bytes - before;
    assert!(resent < picture.len() as u64 / 2, "resumed, not restarted: {resent} bytes sent");
    assert!(world.driver().media_status(&sha).unwrap().complete);
    assert_eq!(world.admin.job(job).unwrap().state, "delivered");
}

#[test]
fn a_file_the_server_already_holds_is_not_sent_again() {
    let world = World::new();
    let proxy = FaultProxy::start(&world.server.base_url()).unwrap();
    let fx = Fixture::new();
    let session = world.session(&fx, &proxy.url());
    let picture = photo(300_000, 3);
    let first = deliverable(&session, "HPM-2401", &picture);
    session.finalize_pod(first, None).unwrap();
    block_on(session.sync_now()).unwrap();

    let second = deliverable(&session, "HPM-2404", &picture);
    session.finalize_pod(second, None).unwrap();
    let before = proxy.counts().request_bytes;
    block_on(session.sync_now()).unwrap();
    assert!(proxy.counts().request_bytes - before < 100_000, "only the status was asked");
    assert_eq!(world.admin.job(second).unwrap().state, "delivered");
}

#[test]
fn a_local_photo_gone_before_upload_wedges_the_upload_not_the_others() {
    let world = World::new();
    let fx = Fixture::new();
    let session = world.session(&fx, &world.server.base_url());
    let picture = photo(10_000, 4);
    let job = deliverable(&session, "HPM-2401", &picture);
    session.finalize_pod(job, None).unwrap();
    std::fs::remove_file(session.media_store().path_of(&hex(&sha256(&picture)))).unwrap();
    let other = job_by(&session, "HPM-2402");
    session.apply(other, Transition::Accept).unwrap();
    let report = block_on(session.sync_now()).unwrap();
    assert_eq!(report.wedged, 1, "{report:?}");
    assert_eq!(world.admin.job(other).unwrap().state, "accepted");
    assert_eq!(world.admin.job(job).unwrap().state, "at_dropoff");
    let wedged = session.outbox().unwrap().into_iter().find(|m| m.status == store::MutationStatus::Wedged).unwrap();
    assert!(matches!(wedged.body, MutationBody::Upload(_)));
    assert!(wedged.last_error.unwrap().contains("media"));
}

/// Sends a sealed proof straight to dispatch as mutation `id` of
/// `client_id`, bypassing the device's outbox; returns dispatch's answer.
fn post_proof(driver: &DispatchClient, client_id: Uuid, job: Uuid, id: u64, record: &[u8]) -> MutationResult {
    let mutation = WireMutation {
        mutation_id: id,
        idempotency_key: format!("k{id}"),
        job_id: job,
        action: "record".into(),
        failure_reason: None,
        record: Some(MutationRecord { kind: "proof_of_delivery".into(), body: serde_json::from_slice(record).unwrap() }),
        occurred_at: chrono::Utc::now(),
    };
    driver.post_mutations(&MutationBatch { client_id, mutations: vec![mutation] }).unwrap().results.remove(0)
}

#[test]
fn the_server_rejects_a_record_whose_photo_it_does_not_hold_or_that_was_changed() {
    let world = World::new();
    let fx = Fixture::new();
    let session = world.session(&fx, &world.server.base_url());
    let picture = photo(5_000, 5);
    let job = deliverable(&session, "HPM-2401", &picture);
    let sealed = session.finalize_pod(job, None).unwrap();
    let driver = world.driver();
    let client_id = Uuid::new_v4();
    let send = |id: u64, body: &[u8]| post_proof(&driver, client_id, job, id, body);
    let missing = send(1, &sealed.record);
    assert_eq!(missing.outcome, Outcome::Rejected, "the photo is not there yet");
    let detail = missing.problem.and_then(|p| p.detail).unwrap_or_default();
    assert!(detail.contains("missing"), "{detail}");

    driver.put_media_chunk(&hex(&sha256(&picture)), 0, picture.len() as u64, &picture).unwrap();
    let text = String::from_utf8(sealed.record.clone()).unwrap().replace("left_at_door", "handed_to_recipient");
    assert_eq!(send(2, text.as_bytes()).outcome, Outcome::Rejected, "a changed record");
    assert_eq!(send(3, &sealed.record).outcome, Outcome::Applied);
}

#[test]
fn a_record_sealed_by_a_key_the_driver_never_registered_is_refused_and_an_older_key_still_counts() {
    let world = World::new();
    let fx = Fixture::new();
    let session = world.session(&fx, &world.server.base_url());
    let picture = photo(5_000, 9);
    let job = deliverable(&session, "HPM-2401", &picture);
    let stranger: Arc<dyn keys::DeviceSigner> = Arc::new(SoftwareSigner::generate().unwrap());
    session.set_device_signer(stranger);
    let forged = session.finalize_pod(job, None).unwrap();

    let driver = world.driver();
    driver.put_media_chunk(&hex(&sha256(&picture)), 0, picture.len() as u64, &picture).unwrap();
    let client_id = Uuid::new_v4();
    let send = |id: u64, body: &[u8]| post_proof(&driver, client_id, job, id, body);
    let refused = send(1, &forged.record);
    assert_eq!(refused.outcome, Outcome::Rejected, "a key none of the driver's devices registered");
    let detail = refused.problem.and_then(|p| p.detail).unwrap_or_default();
    assert!(detail.contains("registered"), "{detail}");

    // The new key is registered by the next sync round, before anything is
    // pushed; the record it sealed is then kept.
    let report = block_on(session.sync_now()).unwrap();
    assert_eq!((report.pending, report.wedged), (0, 0), "{report:?}");
    assert_eq!(world.admin.job(job).unwrap().state, "delivered");
    assert_eq!(send(2, &forged.record).outcome, Outcome::Applied, "now one of the driver's keys");
}

#[test]
fn proofs_and_their_media_all_arrive_whole_through_random_faults() {
    for seed in [7u64, 1_234, 99_001] {
        let world = World::new();
        let proxy = FaultProxy::start(&world.server.base_url()).unwrap();
        let fx = Fixture::new();
        let session = world.session(&fx, &proxy.url());
        proxy.set_plan(doorstep_sim::faults::FaultPlan::Random { seed, rate: 0.45 });
        let mut delivered = Vec::new();
        for (i, reference) in ["HPM-2401", "HPM-2404", "HPM-2407"].iter().enumerate() {
            let picture = photo(256 * 1024 * (i + 1) + 77, 10 + i as u8);
            let job = deliverable(&session, reference, &picture);
            session.finalize_pod(job, None).unwrap();
            delivered.push((job, hex(&sha256(&picture))));
            let _ = block_on(session.sync_now());
        }
        let mut rounds = 0;
        while session.sync_status().unwrap().pending > 0 && rounds < 80 {
            let _ = block_on(session.sync_now());
            rounds += 1;
        }
        let counts = proxy.counts();
        assert!(counts.dropped + counts.statuses + counts.resets + counts.duplicated >= 3, "seed {seed}: {counts:?}");
        let status = session.sync_status().unwrap();
        assert_eq!((status.pending, status.wedged), (0, 0), "seed {seed}: {:?}", session.outbox().unwrap());
        for (job, sha) in &delivered {
            let server = world.admin.job(*job).unwrap();
            assert_eq!(server.state, "delivered", "seed {seed}");
            assert_eq!(server.records.len(), 1, "seed {seed}: one record, kept once");
            assert!(world.driver().media_status(sha).unwrap().complete, "seed {seed}");
        }
    }
}
