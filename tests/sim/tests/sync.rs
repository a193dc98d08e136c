//! Sync against the reference dispatch server: exactly once, offline first,
//! ownership and conflicts, token refresh, bad answers, and injected faults.

mod common;

use common::*;
use doorstep_core::sync::{SyncConfig, TokenProvider};
use doorstep_core::*;
use doorstep_sim::faults::{Fault, FaultProxy};
use doorstep_sim::server::client::DispatchClient;
use doorstep_sim::server::{RunningServer, ServerConfig, spawn};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DRIVER: &str = "driver-ana";

struct Tokens {
    current: Mutex<String>,
    fresh: Mutex<String>,
    refreshes: AtomicU32,
}

impl Tokens {
    fn new(current: &str, fresh: &str) -> Arc<Tokens> {
        Arc::new(Tokens { current: Mutex::new(current.into()), fresh: Mutex::new(fresh.into()), refreshes: AtomicU32::new(0) })
    }
}

impl TokenProvider for Tokens {
    fn access_token(&self) -> Result<String, doorstep_core::sync::TokenError> {
        Ok(self.current.lock().unwrap().clone())
    }

    fn refresh_token(&self) -> Result<String, doorstep_core::sync::TokenError> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        let fresh = self.fresh.lock().unwrap().clone();
        *self.current.lock().unwrap() = fresh.clone();
        Ok(fresh)
    }
}

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
        let sample: serde_json::Value = serde_json::from_str(MALL_PICKUP_RUN).unwrap();
        admin.assign_jobs(DRIVER, sample).unwrap();
        World { server, admin, token }
    }

    fn config(&self, base_url: &str) -> SyncConfig {
        let mut config = SyncConfig::new(base_url);
        // sync_now steps each test; one test turns the loop on.
        config.automatic = false;
        config.backoff_base = Duration::from_millis(20);
        config.request_timeout = Duration::from_secs(5);
        config
    }

    fn session(&self, fx: &Fixture) -> DriverSession {
        self.session_via(fx, &self.server.base_url())
    }

    fn session_via(&self, fx: &Fixture, base_url: &str) -> DriverSession {
        let session = fx.open();
        session.start_sync(self.config(base_url), Tokens::new(&self.token, &self.token)).unwrap();
        session
    }

    fn server_state(&self, job: uuid::Uuid) -> String {
        self.admin.job(job).unwrap().state
    }
}

fn job_by_reference(session: &DriverSession, reference: &str) -> uuid::Uuid {
    session.jobs().unwrap().into_iter().find(|j| j.reference == reference).unwrap().id
}

#[test]
fn a_first_sync_brings_the_days_jobs() {
    let world = World::new();
    let fx = Fixture::new();
    let session = world.session(&fx);
    let report = block_on(session.sync_now()).unwrap();
    assert_eq!(report.jobs_received, 10);
    assert_eq!(session.jobs().unwrap().len(), 10);
    let routed = session.job(job_by_reference(&session, "HPM-2401")).unwrap();
    assert_eq!(routed.route, Some(RouteGeometry { polyline: "_p~iF~ps|U_ulLnnqC_mqNvxq`@".into(), precision: 5 }));
    assert!(session.sync_status().unwrap().last_success_at.is_some());
    // A second pull brings nothing new.
    assert_eq!(block_on(session.sync_now()).unwrap().jobs_received, 0);
}

#[test]
fn actions_reach_dispatch_exactly_once_and_in_order() {
    let world = World::new();
    let fx = Fixture::new();
    let session = world.session(&fx);
    block_on(session.sync_now()).unwrap();
    let job = job_by_reference(&session, "HPM-2401");
    for t in [Transition::Accept, Transition::ArriveAtPickup, Transition::ConfirmPickup] {
        session.apply(job, t).unwrap();
    }
    let report = block_on(session.sync_now()).unwrap();
    assert_eq!((report.acknowledged, report.pending, report.wedged), (3, 0, 0));
    assert_eq!(world.server_state(job), "picked_up");
    let record = world.admin.client_record(session.client_id().unwrap()).unwrap();
    let ids: Vec<u64> = record.processed.iter().map(|p| p.mutation_id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert!(session.outbox().unwrap().is_empty());
}

#[test]
fn offline_actions_wait_and_go_when_the_network_returns() {
    let world = World::new();
    let fx = Fixture::new();
    let session = fx.open();
    let mut config = world.config(&world.server.base_url());
    config.automatic = true;
    session.start_sync(config, Tokens::new(&world.token, &world.token)).unwrap();
    wait_until(|| session.jobs().unwrap().len() == 10);
    let job = job_by_reference(&session, "HPM-2402");

    session.set_online(false);
    let accepted = session.apply(job, Transition::Accept).unwrap();
    assert_eq!(accepted.state, JobState::Accepted, "the driver sees the action at once");
    assert_eq!(block_on(session.sync_now()), Err(CoreError::Offline));
    assert_eq!(session.sync_status().unwrap().pending, 1);
    assert_eq!(world.server_state(job), "assigned");

    // Back online: the background loop sends it without being asked.
    session.set_online(true);
    wait_until(|| session.sync_status().unwrap().pending == 0);
    assert_eq!(world.server_state(job), "accepted");
}

#[test]
fn a_job_cancelled_after_an_offline_pickup_becomes_a_conflict_on_both_sides() {
    let world = World::new();
    let fx = Fixture::new();
    let session = world.session(&fx);
    block_on(session.sync_now()).unwrap();
    let job = job_by_reference(&session, "HPM-2403");
    session.apply(job, Transition::Accept).unwrap();
    block_on(session.sync_now()).unwrap();

    session.set_online(false);
    session.apply(job, Transition::ArriveAtPickup).unwrap();
    session.apply(job, Transition::ConfirmPickup).unwrap();
    world.admin.cancel_job(job).unwrap();
    session.set_online(true);
    let report = block_on(session.sync_now()).unwrap();
    assert_eq!(report.conflicts, 2);

    let local = session.job(job).unwrap();
    assert_eq!(local.state, JobState::PickedUp, "the driver's facts stay");
    let conflict = local.conflict.expect("a visible conflict");
    assert_eq!((conflict.kind, conflict.next_step), (ConflictKind::Cancelled, NextStep::ReturnToStore));
    assert_eq!(world.admin.job(job).unwrap().conflicts.len(), 2, "recorded on the server too");

    // The next step: the packages go back, and dispatch hears of it.
    session.apply(job, Transition::StartReturn).unwrap();
    session.apply(job, Transition::CompleteReturn).unwrap();
    block_on(session.sync_now()).unwrap();
    assert_eq!(session.job(job).unwrap().state, JobState::Returned);
    assert_eq!(session.sync_status().unwrap().pending, 0);
    assert_eq!(world.admin.job(job).unwrap().conflicts.len(), 4);
}

#[test]
fn a_job_cancelled_before_pickup_is_cancelled_on_the_device() {
    let world = World::new();
    let fx = Fixture::new();
    let session = world.session(&fx);
    block_on(session.sync_now()).unwrap();
    let job = job_by_reference(&session, "HPM-2404");
    session.apply(job, Transition::Accept).unwrap();
    block_on(session.sync_now()).unwrap();
    world.admin.cancel_job(job).unwrap();
    block_on(session.sync_now()).unwrap();
    let local = session.job(job).unwrap();
    assert_eq!((local.state, local.conflict), (JobState::Cancelled, None));
}

#[test]
fn dispatch_edits_arrive_without_undoing_the_drivers_pending_action() {
    let world = World::new();
    let fx = Fixture::new();
    let proxy = FaultProxy::start(&world.server.base_url()).unwrap();
    let session = world.session_via(&fx, &proxy.url());
    block_on(session.sync_now()).unwrap();
    let job = job_by_reference(&session, "HPM-2405");

    // The driver accepts; the answer is lost, so the action stays pending.
    session.apply(job, Transition::Accept).unwrap();
    proxy.script("/v1/mutations", [Fault::Status { status: 503, retry_after: Some(0) }]);
    assert!(matches!(block_on(session.sync_now()), Err(CoreError::Network { .. })));
    assert_eq!(session.sync_status().unwrap().pending, 1);

    // Meanwhile dispatch moves the drop-off window; the pull must not
    // revert the driver's accept even though the server still says assigned.
    let update = serde_json::json!({"access_notes": "Gate code 4711"});
    world.admin.update_job(job, &serde_json::from_value(update).unwrap()).unwrap();
    proxy.script("/v1/mutations", [Fault::ResetAfterForward]);
    let _ = block_on(session.sync_now());
    assert_eq!(session.job(job).unwrap().state, JobState::Accepted);

    let report = block_on(session.sync_now()).unwrap();
    assert_eq!(report.pending, 0);
    let local = session.job(job).unwrap();
    assert_eq!(local.state, JobState::Accepted);
    assert_eq!(local.dropoff.access_notes.as_deref(), Some("Gate code 4711"));
    let record = world.admin.client_record(session.client_id().unwrap()).unwrap();
    assert_eq!(record.processed.len(), 1, "applied once despite the lost answer");
}

#[test]
fn a_refused_action_is_wedged_blocks_only_its_job_and_can_be_abandoned() {
    let world = World::new();
    let phone = Fixture::new();
    let tablet = Fixture::new();
    let first = world.session(&phone);
    let second = world.session(&tablet);
    block_on(first.sync_now()).unwrap();
    block_on(second.sync_now()).unwrap();
    let job = job_by_reference(&first, "HPM-2406");
    let other = job_by_reference(&first, "HPM-2407");

    first.apply(job, Transition::Accept).unwrap();
    block_on(first.sync_now()).unwrap();
    // The second device never heard of the accept and declines: dispatch refuses.
    second.apply(job, Transition::Decline).unwrap();
    second.apply(other, Transition::Accept).unwrap();
    let report = block_on(second.sync_now()).unwrap();
    assert_eq!((report.rejected, report.acknowledged, report.wedged), (1, 1, 1));
    assert_eq!(second.job(job).unwrap().state, JobState::Declined, "not undone while wedged");
    assert_eq!(world.server_state(other), "accepted", "other jobs are not blocked");
    let wedged = second.outbox().unwrap();
    assert_eq!(wedged.len(), 1);
    assert!(wedged[0].last_error.as_deref().unwrap_or("").contains("accepted"), "{:?}", wedged[0].last_error);

    second.abandon_mutation(wedged[0].mutation_id).unwrap();
    block_on(second.sync_now()).unwrap();
    assert_eq!(second.job(job).unwrap().state, JobState::Accepted, "dispatch's view after abandoning");
    assert_eq!(second.sync_status().unwrap().wedged, 0);
}

#[test]
fn a_refused_token_is_refreshed_once() {
    let world = World::new();
    let fx = Fixture::new();
    let session = fx.open();
    let stale = world.admin.issue_token(DRIVER).unwrap();
    world.admin.revoke_token(&stale).unwrap();
    let tokens = Tokens::new(&stale, &world.token);
    session.start_sync(world.config(&world.server.base_url()), tokens.clone()).unwrap();
    assert_eq!(block_on(session.sync_now()).unwrap().jobs_received, 10);
    assert_eq!(tokens.refreshes.load(Ordering::SeqCst), 1);

    let fx = Fixture::new();
    let session = fx.open();
    let hopeless = Tokens::new(&stale, &stale);
    session.start_sync(world.config(&world.server.base_url()), hopeless.clone()).unwrap();
    assert!(matches!(block_on(session.sync_now()), Err(CoreError::Unauthorized { .. })));
    assert_eq!(hopeless.refreshes.load(Ordering::SeqCst), 1);
    assert!(session.jobs().unwrap().is_empty());
}

#[test]
fn faults_on_the_way_never_lose_or_double_an_action() {
    let world = World::new();
    let fx = Fixture::new();
    let proxy = FaultProxy::start(&world.server.base_url()).unwrap();
    let session = world.session_via(&fx, &proxy.url());
    block_on(session.sync_now()).unwrap();
    let jobs: Vec<_> = session.jobs().unwrap().iter().map(|j| j.id).collect();
    let faults = [
        Fault::Drop,
        Fault::Delay(Duration::from_millis(200)),
        Fault::Status { status: 500, retry_after: None },
        Fault::Status { status: 503, retry_after: Some(1) },
        Fault::ResetAfterForward,
        Fault::Duplicate,
    ];
    for (job, fault) in jobs.iter().zip(faults) {
        session.apply(*job, Transition::Accept).unwrap();
        proxy.script("/v1/mutations", [fault]);
        let _ = block_on(session.sync_now());
    }
    proxy.pass_everything();
    block_on(session.sync_now()).unwrap();
    let record = world.admin.client_record(session.client_id().unwrap()).unwrap();
    assert_eq!(record.processed.len(), 6, "each action processed exactly once");
    for job in &jobs[..6] {
        assert_eq!(world.server_state(*job), "accepted");
    }
    let counts = proxy.counts();
    assert_eq!((counts.dropped, counts.resets, counts.duplicated), (1, 1, 1));
}

#[test]
fn a_bad_answer_from_dispatch_changes_nothing() {
    let world = World::new();
    let fx = Fixture::new();
    let proxy = FaultProxy::start(&world.server.base_url()).unwrap();
    let session = world.session_via(&fx, &proxy.url());
    for body in [
        "not json",
        r#"{"format":"doorstep.delta/1","cursor":"7","has_more":false,"server_time":"2026-11-23T10:00:00Z","jobs":[{"id":"x"}]}"#,
        r#"{"format":"doorstep.delta/1","cursor":"-1","has_more":false,"server_time":"2026-11-23T10:00:00Z","jobs":[]}"#,
    ] {
        proxy.script("/v1/jobs/delta", [Fault::Respond { status: 200, body }]);
        assert!(matches!(block_on(session.sync_now()), Err(CoreError::BadResponse { .. })), "{body}");
        assert!(session.jobs().unwrap().is_empty());
    }
    proxy.pass_everything();
    assert_eq!(block_on(session.sync_now()).unwrap().jobs_received, 10);
}

#[test]
fn the_queue_resumes_by_itself_after_a_restart() {
    let world = World::new();
    let fx = Fixture::new();
    let jobs = {
        let session = world.session(&fx);
        block_on(session.sync_now()).unwrap();
        session.set_online(false);
        let jobs: Vec<_> = session.jobs().unwrap().iter().take(3).map(|j| j.id).collect();
        for job in &jobs {
            session.apply(*job, Transition::Accept).unwrap();
        }
        jobs
    }; // the app is killed with three actions unsent

    let session = fx.open();
    let mut config = world.config(&world.server.base_url());
    config.automatic = true;
    session.start_sync(config, Tokens::new(&world.token, &world.token)).unwrap();
    wait_until(|| session.sync_status().unwrap().pending == 0);
    for job in jobs {
        assert_eq!(world.server_state(job), "accepted");
    }
}

struct StatusRecorder(Mutex<Vec<doorstep_core::sync::SyncStatus>>);

impl SyncObserver for StatusRecorder {
    fn sync_status_changed(&self, status: &doorstep_core::sync::SyncStatus) -> Result<(), String> {
        self.0.lock().unwrap().push(status.clone());
        Ok(())
    }
}

#[test]
fn the_sync_observer_hears_pending_counts_successes_and_errors() {
    let world = World::new();
    let fx = Fixture::new();
    let proxy = FaultProxy::start(&world.server.base_url()).unwrap();
    let session = world.session_via(&fx, &proxy.url());
    let recorder = Arc::new(StatusRecorder(Mutex::new(Vec::new())));
    let _subscription = session.subscribe_sync(recorder.clone());
    block_on(session.sync_now()).unwrap();
    let job = job_by_reference(&session, "HPM-2408");
    session.apply(job, Transition::Accept).unwrap();
    proxy.script("/v1/mutations", [Fault::Status { status: 503, retry_after: Some(30) }]);
    assert!(block_on(session.sync_now()).is_err());
    wait_until(|| recorder.0.lock().unwrap().iter().any(|s| s.last_error.is_some()));
    let failed = session.sync_status().unwrap();
    assert_eq!(failed.pending, 1);
    assert!(failed.last_error.as_deref().unwrap_or("").contains("503"), "{failed:?}");
    let retry_at = failed.next_attempt_at.expect("a retry is scheduled");
    assert!(retry_at - fx.clock.now() >= chrono::Duration::seconds(30), "Retry-After honoured: {retry_at}");

    block_on(session.sync_now()).unwrap();
    wait_until(|| recorder.0.lock().unwrap().last().is_some_and(|s| s.pending == 0 && s.last_error.is_none()));
    let seen = recorder.0.lock().unwrap().clone();
    assert!(seen.iter().any(|s| s.syncing), "a round shows as syncing");
    assert!(seen.last().unwrap().last_success_at.is_some());
}

struct FlakyRefresh;

impl TokenProvider for FlakyRefresh {
    fn access_token(&self) -> Result<String, doorstep_core::sync::TokenError> {
        Err(doorstep_core::sync::TokenError::Unavailable("no network for the refresh".into()))
    }

    fn refresh_token(&self) -> Result<String, doorstep_core::sync::TokenError> {
        self.access_token()
    }
}

#[test]
fn a_token_provider_with_passing_trouble_is_retried_not_signed_out() {
    let world = World::new();
    let fx = Fixture::new();
    let session = fx.open();
    session.start_sync(world.config(&world.server.base_url()), Arc::new(FlakyRefresh)).unwrap();
    let err = block_on(session.sync_now()).unwrap_err();
    assert!(matches!(err, CoreError::Network { .. }), "{err:?}");
    assert!(session.sync_status().unwrap().next_attempt_at.is_some());
}

#[test]
fn sync_to_https_needs_no_system_certificates() {
    // The core ships its root certificates; building a client for an https
    // dispatch must not depend on the phone's trust store being readable.
    let fx = Fixture::new();
    let session = fx.open();
    let config = SyncConfig::new("https://dispatch.example.com");
    session.start_sync(config, Tokens::new("t", "t")).unwrap();
}
