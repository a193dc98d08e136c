//! [`DriverSession`]: the driver's handle on the core. Ties the store, the
//! clock and the observers together and is the one place a driver action
//! enters the core.
//!
//! Owns observer delivery: changes are committed first, then handed to a
//! background thread that calls the observers, so an observer can never
//! block or break an action, and is never called on the caller's thread.
//! Must not hold rules about jobs (that is `jobs`) or SQL (that is `store`).

mod handoff;
mod access;
mod navigation;
mod pod;
mod syncing;

pub use handoff::AcceptedHandoff;
pub use access::UnlockOutcome;
pub use navigation::{ArrivalMode, NavSnapshot, NavigationOptions};
pub use pod::{DEFAULT_MEDIA_RETENTION, SealedPod};

use crate::clock::{Clock, SystemClock};
use crate::dispatch;
use crate::error::{CoreError, Result, panic_message};
use crate::jobs::*;
use crate::keys::DeviceSigner;
use crate::store::{Database, ImportOutcome};
use crate::sync::SyncStatus;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use uuid::Uuid;

/// Told of every change to the session's jobs, in commit order, on a core
/// background thread. An `Err` or a panic is recorded in
/// [`ObserverHealth`] and does not stop later deliveries.
pub trait JobObserver: Send + Sync {
    fn job_changed(&self, event: &JobEvent) -> std::result::Result<(), String>;
}

/// How observer deliveries have gone, for diagnostics screens and QA.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObserverHealth {
    pub delivered: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

pub struct SessionOptions {
    pub clock: Arc<dyn Clock>,
    /// The device key that signs proofs of delivery, handoff receipts and
    /// door requests; can also be set later with
    /// [`DriverSession::set_device_signer`].
    pub device_signer: Option<Arc<dyn DeviceSigner>>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions { clock: Arc::new(SystemClock), device_signer: None }
    }
}

/// A driver's session over one database file. Cheap to clone; clones share
/// the same store and observers.
#[derive(Clone)]
pub struct DriverSession {
    inner: Arc<Inner>,
}

struct Inner {
    store: Mutex<Database>,
    clock: Arc<dyn Clock>,
    next_subscription: AtomicU64,
    health: Arc<Mutex<ObserverHealth>>,
    // Sent to only while `store` is locked, so the delivery thread sees
    // subscriptions and commits in one total order. Dropping the last sender
    // ends the delivery thread once it has drained.
    deliveries: Sender<Delivery>,
    sync: syncing::SyncSlot,
    nav: navigation::NavSlot,
    device_signer: RwLock<Option<Arc<dyn DeviceSigner>>>,
}

enum Delivery {
    Events(Vec<JobEvent>),
    Sync(SyncStatus),
    Subscribe(u64, Observer),
    Cancel(u64),
}

#[derive(Clone)]
enum Observer {
    Jobs(Arc<dyn JobObserver>),
    Sync(Arc<dyn SyncObserver>),
}

/// Told of every change of the sync status, on a core background thread.
pub trait SyncObserver: Send + Sync {
    fn sync_status_changed(&self, status: &SyncStatus) -> std::result::Result<(), String>;
}

impl DriverSession {
    pub fn open(path: impl AsRef<Path>) -> Result<DriverSession> {
        DriverSession::open_with(path, SessionOptions::default())
    }

    #[tracing::instrument(skip_all, fields(path = %path.as_ref().display()))]
    pub fn open_with(path: impl AsRef<Path>, options: SessionOptions) -> Result<DriverSession> {
        let store = Database::open(path.as_ref())?;
        let health = Arc::new(Mutex::new(ObserverHealth::default()));
        let (sender, receiver) = mpsc::channel();
        let delivery_health = Arc::clone(&health);
        std::thread::Builder::new()
            .name("doorstep-observers".into())
            .spawn(move || deliver(receiver, delivery_health))
            .map_err(|e| CoreError::Internal { reason: format!("cannot start the observer thread: {e}") })?;
        tracing::info!("session opened");
        Ok(DriverSession {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                clock: options.clock,
                next_subscription: AtomicU64::new(1),
                health,
                deliveries: sender,
                sync: syncing::SyncSlot::default(),
                nav: navigation::NavSlot::default(),
                device_signer: RwLock::new(options.device_signer),
            }),
        })
    }

    /// Installs (or replaces) the device key used for everything this
    /// session signs.
    pub fn set_device_signer(&self, signer: Arc<dyn DeviceSigner>) {
        *self.inner.device_signer.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(signer);
    }

    /// The device key, or `KeyUnavailable` when the shell has not set one.
    pub(crate) fn device_signer(&self) -> Result<Arc<dyn DeviceSigner>> {
        self.inner
            .device_signer
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or_else(|| CoreError::KeyUnavailable { reason: "no device signer has been set".into() })
    }

    pub fn path(&self) -> PathBuf {
        self.store().path().to_owned()
    }

    /// Imports a dispatch document (`doorstep.dispatch/1` JSON). The whole
    /// document is checked before anything is written; a bad one changes
    /// nothing and names the offending field.
    #[tracing::instrument(skip_all, fields(bytes = json.len()))]
    pub fn import_document(&self, json: &[u8]) -> Result<ImportOutcome> {
        let document = dispatch::parse_document(json).inspect_err(|e| tracing::warn!(error = %e, "document rejected"))?;
        let at = self.inner.clock.now();
        let mut store = self.store();
        let outcome = store.import(&document.jobs, at)?;
        self.notify(outcome.jobs.iter().filter_map(|job| job.event.clone()).collect());
        drop(store);
        tracing::info!(created = outcome.created(), updated = outcome.updated(), "document imported");
        Ok(outcome)
    }

    /// [`import_document`](Self::import_document) on the core's runtime, for
    /// callers that must not block (a phone's main thread).
    pub async fn import_document_async(&self, json: Vec<u8>) -> Result<ImportOutcome> {
        let session = self.clone();
        crate::runtime::run_blocking(move || session.import_document(&json)).await
    }

    /// Moves a job through its state machine, durably; returns the job as it
    /// now is. An illegal move returns `InvalidTransition` and changes nothing.
    #[tracing::instrument(skip(self), fields(job = %job_id, transition = transition.name()))]
    pub fn apply(&self, job_id: Uuid, transition: Transition) -> Result<Job> {
        let at = self.inner.clock.now();
        let mut store = self.store();
        let outcome = store.transition(job_id, transition, at).inspect_err(|e| tracing::info!(error = %e, "refused"))?;
        self.notify(vec![outcome.event]);
        drop(store);
        self.inner.sync.wake();
        tracing::info!(to = %outcome.job.state, "applied");
        Ok(outcome.job)
    }

    /// Applies several driver actions atomically (one tap that accepts a
    /// whole run, a store handing over every order at once): either all are
    /// committed, or the first refusal is returned and nothing changes.
    /// Returns the committed events in order.
    #[tracing::instrument(skip_all, fields(actions = actions.len()))]
    pub fn apply_all(&self, actions: &[(Uuid, Transition)]) -> Result<Vec<JobEvent>> {
        let at = self.inner.clock.now();
        let mut store = self.store();
        let events = store.transition_all(actions, at).inspect_err(|e| tracing::info!(error = %e, "refused"))?;
        self.notify(events.clone());
        drop(store);
        self.inner.sync.wake();
        tracing::info!("applied");
        Ok(events)
    }

    pub async fn apply_async(&self, job_id: Uuid, transition: Transition) -> Result<Job> {
        let session = self.clone();
        crate::runtime::run_blocking(move || session.apply(job_id, transition)).await
    }

    /// The day's jobs in drop-off order, as the job list shows them.
    #[tracing::instrument(skip(self))]
    pub fn jobs(&self) -> Result<Vec<JobSummary>> {
        self.store().summaries()
    }

    #[tracing::instrument(skip(self))]
    pub fn job(&self, job_id: Uuid) -> Result<Job> {
        self.store().job(job_id)
    }

    /// A job's history, oldest first.
    #[tracing::instrument(skip(self))]
    pub fn history(&self, job_id: Uuid) -> Result<Vec<JobEvent>> {
        self.store().events(job_id)
    }

    /// Every event after `sequence` across all jobs, oldest first.
    #[tracing::instrument(skip(self))]
    pub fn events_after(&self, sequence: u64, limit: u32) -> Result<Vec<JobEvent>> {
        self.store().events_after(sequence, limit)
    }

    /// Registers an observer. It hears exactly the changes committed after
    /// this call returns and before the [`Subscription`] is cancelled or
    /// dropped.
    pub fn subscribe(&self, observer: Arc<dyn JobObserver>) -> Subscription {
        self.add_observer(Observer::Jobs(observer))
    }

    /// Registers an observer of the sync status; it hears the current status
    /// at once, then every change until the subscription ends.
    pub fn subscribe_sync(&self, observer: Arc<dyn SyncObserver>) -> Subscription {
        let subscription = self.add_observer(Observer::Sync(observer));
        if let Ok(status) = self.sync_status() {
            self.inner.send(Delivery::Sync(status));
        }
        subscription
    }

    fn add_observer(&self, observer: Observer) -> Subscription {
        let id = self.inner.next_subscription.fetch_add(1, Ordering::Relaxed);
        self.inner.send_in_commit_order(Delivery::Subscribe(id, observer));
        tracing::debug!(id, "observer subscribed");
        Subscription { id, session: Arc::downgrade(&self.inner) }
    }

    pub fn observer_health(&self) -> ObserverHealth {
        lock(&self.inner.health).clone()
    }

    fn store(&self) -> MutexGuard<'_, Database> {
        // A panic while the store was held unwound its transaction (rusqlite
        // rolls back on drop), so the store behind a poisoned lock is sound.
        lock(&self.inner.store)
    }

    /// Queues committed events for the observers; called with the store
    /// still locked so queue order is commit order.
    fn notify(&self, events: Vec<JobEvent>) {
        if !events.is_empty() {
            self.inner.nav.jobs_changed();
            self.inner.send(Delivery::Events(events));
        }
    }
}

impl Inner {
    fn send_in_commit_order(&self, delivery: Delivery) {
        let _store = lock(&self.store);
        self.send(delivery);
    }

    fn send(&self, delivery: Delivery) {
        // The delivery thread stops only once every sender is gone, which
        // cannot happen while `self` is alive; nothing committed is lost.
        let _ = self.deliveries.send(delivery);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Keeps an observer registered; cancelling (or dropping) it unregisters.
pub struct Subscription {
    id: u64,
    session: Weak<Inner>,
}

impl Subscription {
    /// After this returns, no change committed later reaches the observer.
    pub fn cancel(&self) {
        if let Some(session) = self.session.upgrade() {
            session.send_in_commit_order(Delivery::Cancel(self.id));
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}

fn deliver(receiver: Receiver<Delivery>, health: Arc<Mutex<ObserverHealth>>) {
    let mut observers: Vec<(u64, Observer)> = Vec::new();
    for delivery in receiver {
        match delivery {
            Delivery::Subscribe(id, observer) => observers.push((id, observer)),
            Delivery::Cancel(id) => observers.retain(|(known, _)| *known != id),
            Delivery::Events(events) => {
                for event in &events {
                    for (_, observer) in &observers {
                        if let Observer::Jobs(observer) = observer {
                            call_observer(&health, || observer.job_changed(event));
                        }
                    }
                }
            }
            Delivery::Sync(status) => {
                for (_, observer) in &observers {
                    if let Observer::Sync(observer) = observer {
                        call_observer(&health, || observer.sync_status_changed(&status));
                    }
                }
            }
        }
    }
    tracing::debug!("observer thread finished");
}

/// Calls one observer, recording how it went; a panic stays on this side.
fn call_observer(health: &Mutex<ObserverHealth>, call: impl FnOnce() -> std::result::Result<(), String>) {
    let outcome = catch_unwind(AssertUnwindSafe(call));
    let mut health = lock(health);
    match outcome {
        Ok(Ok(())) => health.delivered += 1,
        Ok(Err(message)) => record_failure(&mut health, message),
        Err(payload) => record_failure(&mut health, format!("observer panicked: {}", panic_message(&*payload))),
    }
}

fn record_failure(health: &mut ObserverHealth, message: String) {
    tracing::warn!(%message, "observer failed");
    health.failed += 1;
    health.last_error = Some(message);
}
