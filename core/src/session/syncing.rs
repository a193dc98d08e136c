//! The session's side of sync: a background loop on the core's runtime that
//! drains the outbox and pulls job changes whenever the device is online,
//! plus the calls a shell makes about sync.

use super::{Delivery, DriverSession, Inner, lock};
use crate::error::{CoreError, Result};
use crate::jobs::JobEvent;
use crate::store::{Mutation, MutationOutcome};
use crate::sync::http::DispatchClient;
use crate::sync::{SyncConfig, SyncFailure, SyncReport, SyncStatus, TokenProvider, backoff_delay, jitter};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// Where a session keeps its sync engine, once started.
pub(super) struct SyncSlot {
    engine: Mutex<Option<Arc<Engine>>>,
    online: AtomicBool,
}

impl Default for SyncSlot {
    fn default() -> Self {
        SyncSlot { engine: Mutex::new(None), online: AtomicBool::new(true) }
    }
}

impl Drop for SyncSlot {
    /// A session that is gone has nothing left to sync.
    fn drop(&mut self) {
        if let Some(engine) = lock(&self.engine).take() {
            engine.stop();
        }
    }
}

impl SyncSlot {
    /// Prompts the loop to sync soon (a new action, back online).
    pub(super) fn wake(&self) {
        if let Some(engine) = lock(&self.engine).as_ref() {
            engine.wake.notify_one();
        }
    }

    fn engine(&self) -> Option<Arc<Engine>> {
        lock(&self.engine).clone()
    }
}

impl Engine {
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

struct Engine {
    client: DispatchClient,
    config: SyncConfig,
    wake: Notify,
    stopped: AtomicBool,
    /// Rounds never overlap: the loop and `sync_now` take turns.
    round: tokio::sync::Mutex<()>,
    batch_size: AtomicU32,
    failures: AtomicU32,
    status: Mutex<SyncStatus>,
}

impl DriverSession {
    /// Starts syncing with dispatch in the background: every driver action
    /// is sent as soon as the device is online, and job changes are pulled
    /// regularly. Replaces a sync started before.
    #[tracing::instrument(skip_all, fields(base_url = %config.base_url))]
    pub fn start_sync(&self, config: SyncConfig, tokens: Arc<dyn TokenProvider>) -> Result<()> {
        if config.batch_size == 0 || config.page_size == 0 {
            return Err(CoreError::invalid("config", "batch and page sizes must be at least 1"));
        }
        let client = DispatchClient::new(&config, tokens)?;
        let engine = Arc::new(Engine {
            client,
            batch_size: AtomicU32::new(config.batch_size.min(500)),
            config,
            wake: Notify::new(),
            stopped: AtomicBool::new(false),
            round: tokio::sync::Mutex::new(()),
            failures: AtomicU32::new(0),
            status: Mutex::new(SyncStatus::default()),
        });
        if let Some(previous) = lock(&self.inner.sync.engine).replace(Arc::clone(&engine)) {
            previous.stop();
        }
        if engine.config.automatic {
            let session = Arc::downgrade(&self.inner);
            let looping = Arc::clone(&engine);
            crate::runtime::shared().spawn(run(session, looping));
            engine.wake.notify_one();
        }
        tracing::info!("sync started");
        Ok(())
    }

    /// Stops background sync; queued actions stay queued for the next start.
    pub fn stop_sync(&self) {
        if let Some(engine) = lock(&self.inner.sync.engine).take() {
            engine.stop();
        }
    }

    /// The shell's word on connectivity. Going online prompts a sync at once.
    #[tracing::instrument(skip(self))]
    pub fn set_online(&self, online: bool) {
        self.inner.sync.online.store(online, Ordering::SeqCst);
        if let Some(engine) = self.inner.sync.engine() {
            if online {
                engine.failures.store(0, Ordering::SeqCst);
            }
            engine.wake.notify_one();
        }
        self.publish_sync_status();
    }

    /// Runs one sync round now (send everything sendable, then pull) and
    /// reports what it did; `Offline` when the shell said so.
    #[tracing::instrument(skip(self))]
    pub async fn sync_now(&self) -> Result<SyncReport> {
        let engine = self.inner.sync.engine().ok_or_else(|| CoreError::invalid("sync", "sync has not been started"))?;
        if !self.inner.sync.online.load(Ordering::SeqCst) {
            return Err(CoreError::Offline);
        }
        let outcome = self.round(&engine).await;
        self.after_round(&engine, &outcome);
        outcome.map_err(SyncFailure::into_error)
    }

    /// How sync is doing right now.
    pub fn sync_status(&self) -> Result<SyncStatus> {
        let (pending, wedged) = self.store().outbox_counts()?;
        let last_success_at = self.store().sync_state()?.last_sync_at;
        let mut status = self.inner.sync.engine().map(|e| lock(&e.status).clone()).unwrap_or_default();
        status.online = self.inner.sync.online.load(Ordering::SeqCst);
        status.pending = pending;
        status.wedged = wedged;
        status.last_success_at = last_success_at;
        Ok(status)
    }

    /// Every action not yet acknowledged by dispatch, oldest first.
    pub fn outbox(&self) -> Result<Vec<Mutation>> {
        self.store().outbox()
    }

    /// Sends a wedged action again (with the actions on its job behind it).
    #[tracing::instrument(skip(self))]
    pub fn retry_mutation(&self, mutation_id: u64) -> Result<()> {
        self.store().retry_wedged(mutation_id)?;
        self.inner.sync.wake();
        self.publish_sync_status();
        Ok(())
    }

    /// Gives up on a wedged action (and the actions on its job behind it);
    /// the job takes dispatch's view at the next pull.
    #[tracing::instrument(skip(self))]
    pub fn abandon_mutation(&self, mutation_id: u64) -> Result<()> {
        self.store().abandon_wedged(mutation_id)?;
        self.inner.sync.wake();
        self.publish_sync_status();
        Ok(())
    }

    /// This device's id in dispatch's records.
    pub fn client_id(&self) -> Result<uuid::Uuid> {
        Ok(self.store().sync_state()?.client_id)
    }

    /// Server time minus device time, learned at the last pull.
    pub fn server_offset(&self) -> Result<chrono::Duration> {
        Ok(chrono::Duration::milliseconds(self.store().sync_state()?.server_offset_ms))
    }

    fn publish_sync_status(&self) {
        if let Ok(status) = self.sync_status() {
            self.inner.send(Delivery::Sync(status));
        }
    }

    async fn round(&self, engine: &Engine) -> std::result::Result<SyncReport, SyncFailure> {
        let _turn = engine.round.lock().await;
        self.set_syncing(engine, true);
        let outcome = async {
            let mut report = SyncReport::default();
            let device_key = self.register_device_key(&engine.client).await?;
            self.push_all(engine, &mut report).await?;
            self.purge_media_after_sync().await;
            self.pull_all(engine, &mut report).await?;
            if let Some(device_key) = &device_key {
                self.sync_door_access(&engine.client, device_key).await?;
            }
            let (pending, wedged) = self.blocking(|s| s.store().outbox_counts()).await.map_err(SyncFailure::Permanent)?;
            report.pending = pending;
            report.wedged = wedged;
            Ok(report)
        }
        .await;
        self.set_syncing(engine, false);
        outcome
    }

    async fn push_all(&self, engine: &Engine, report: &mut SyncReport) -> std::result::Result<(), SyncFailure> {
        let client_id = self.blocking(|s| s.client_id()).await.map_err(SyncFailure::Permanent)?;
        loop {
            let size = engine.batch_size.load(Ordering::SeqCst);
            let batch = self.blocking(move |s| s.store().sendable(size)).await.map_err(SyncFailure::Permanent)?;
            if batch.is_empty() {
                return Ok(());
            }
            // Uploads go to the media endpoint after the actions queued with
            // them; the records waiting on them become sendable next pass.
            let (uploads, batch): (Vec<Mutation>, Vec<Mutation>) =
                batch.into_iter().partition(|m| matches!(m.body, crate::store::MutationBody::Upload(_)));
            if batch.is_empty() {
                for upload in uploads {
                    self.upload_media_mutation(&engine.client, &upload, report).await?;
                    self.publish_sync_status();
                }
                continue;
            }
            let ids: Vec<u64> = batch.iter().map(|m| m.mutation_id).collect();
            report.sent += batch.len() as u32;
            let outcomes = match engine.client.push(client_id, &batch).await {
                Ok(outcomes) => outcomes,
                Err(SyncFailure::Permanent(CoreError::Rejected { status: 413, .. })) if size > 1 => {
                    engine.batch_size.store((size / 2).max(1), Ordering::SeqCst);
                    continue;
                }
                Err(SyncFailure::Permanent(CoreError::Rejected { status, reason })) => {
                    // Dispatch refused the batch itself: none of it can go as is.
                    let reason = format!("{status}: {reason}");
                    ids.iter().map(|&id| (id, MutationOutcome::Rejected { reason: reason.clone() })).collect()
                }
                Err(failure) => {
                    let reason = failure.clone().into_error().to_string();
                    self.blocking(move |s| s.store().record_attempt(&ids, &reason)).await.map_err(SyncFailure::Permanent)?;
                    return Err(failure);
                }
            };
            for (_, outcome) in &outcomes {
                match outcome {
                    MutationOutcome::Acknowledged => report.acknowledged += 1,
                    MutationOutcome::Conflict { .. } => report.conflicts += 1,
                    MutationOutcome::Rejected { .. } => report.rejected += 1,
                }
            }
            let at = self.inner.clock.now();
            self.blocking(move |s| s.commit_events(|db| db.record_outcomes(&outcomes, at)))
                .await
                .map_err(SyncFailure::Permanent)?;
            self.publish_sync_status();
        }
    }

    async fn pull_all(&self, engine: &Engine, report: &mut SyncReport) -> std::result::Result<(), SyncFailure> {
        let page_size = engine.config.page_size;
        loop {
            let cursor = self.blocking(|s| Ok(s.store().sync_state()?.delta_cursor)).await.map_err(SyncFailure::Permanent)?;
            let delta = engine.client.pull(cursor.as_deref(), page_size).await?;
            let at = self.inner.clock.now();
            let offset_ms = (delta.server_time - at).num_milliseconds();
            report.jobs_received += delta.jobs.len() as u32;
            let has_more = delta.has_more && !delta.jobs.is_empty();
            self.blocking(move |s| s.commit_events(|db| db.apply_delta(&delta.jobs, &delta.cursor, offset_ms, at)))
                .await
                .map_err(SyncFailure::Permanent)?;
            if !has_more {
                return Ok(());
            }
        }
    }

    /// Runs a store write that produced job events and tells the observers,
    /// in commit order.
    fn commit_events(&self, write: impl FnOnce(&mut crate::store::Database) -> Result<Vec<JobEvent>>) -> Result<()> {
        let mut store = self.store();
        let events = write(&mut store)?;
        self.notify(events);
        Ok(())
    }

    async fn blocking<T: Send + 'static>(&self, work: impl FnOnce(&DriverSession) -> Result<T> + Send + 'static) -> Result<T> {
        let session = self.clone();
        crate::runtime::run_blocking(move || work(&session)).await
    }

    fn set_syncing(&self, engine: &Engine, syncing: bool) {
        lock(&engine.status).syncing = syncing;
        self.publish_sync_status();
    }

    fn after_round(&self, engine: &Engine, outcome: &std::result::Result<SyncReport, SyncFailure>) {
        let now = self.inner.clock.now();
        let delay = match outcome {
            Ok(report) => {
                engine.failures.store(0, Ordering::SeqCst);
                tracing::info!(?report, "sync round done");
                lock(&engine.status).last_error = None;
                engine.config.pull_interval
            }
            Err(failure) => {
                let attempt = engine.failures.fetch_add(1, Ordering::SeqCst) + 1;
                let retry_after = match failure {
                    SyncFailure::Transient { retry_after, .. } => *retry_after,
                    SyncFailure::Permanent(_) => None,
                };
                let error = failure.clone().into_error();
                tracing::warn!(%error, attempt, "sync round failed");
                lock(&engine.status).last_error = Some(error.to_string());
                backoff_delay(&engine.config, attempt, retry_after, jitter())
            }
        };
        lock(&engine.status).next_attempt_at = chrono::Duration::from_std(delay).ok().map(|d| now + d);
        self.publish_sync_status();
    }
}

/// The background loop: wait for a prompt or the next due time, then sync
/// if online. Holds the session weakly so dropping the session ends it.
async fn run(session: Weak<Inner>, engine: Arc<Engine>) {
    let mut delay = Duration::ZERO;
    loop {
        tokio::select! {
            _ = engine.wake.notified() => {}
            _ = tokio::time::sleep(delay) => {}
        }
        if engine.stopped.load(Ordering::SeqCst) {
            break;
        }
        let Some(inner) = session.upgrade() else { break };
        let session = DriverSession { inner };
        if !session.inner.sync.online.load(Ordering::SeqCst) {
            delay = engine.config.pull_interval;
            continue;
        }
        let outcome = session.round(&engine).await;
        session.after_round(&engine, &outcome);
        let now = session.inner.clock.now();
        delay = lock(&engine.status)
            .next_attempt_at
            .and_then(|at| (at - now).to_std().ok())
            .unwrap_or(engine.config.pull_interval);
    }
    tracing::debug!("sync loop finished");
}
