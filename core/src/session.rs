//! [`DriverSession`]: the driver's handle on the core. Ties the store, the
//! clock and the observers together and is the one place a driver action
//! enters the core.
//!
//! Owns observer delivery: changes are committed first, then handed to a
//! background thread that calls the observers, so an observer can never
//! block or break an action, and is never called on the caller's thread.
//! Must not hold rules about jobs (that is `jobs`) or SQL (that is `store`).

use crate::clock::{Clock, SystemClock};
use crate::dispatch;
use crate::error::{CoreError, Result, panic_message};
use crate::jobs::*;
use crate::store::{Database, ImportOutcome};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
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
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions { clock: Arc::new(SystemClock) }
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
    observers: Arc<Observers>,
    // Dropping the last sender ends the delivery thread once it has drained.
    deliveries: Mutex<Sender<Vec<JobEvent>>>,
}

impl DriverSession {
    pub fn open(path: impl AsRef<Path>) -> Result<DriverSession> {
        DriverSession::open_with(path, SessionOptions::default())
    }

    #[tracing::instrument(skip_all, fields(path = %path.as_ref().display()))]
    pub fn open_with(path: impl AsRef<Path>, options: SessionOptions) -> Result<DriverSession> {
        let store = Database::open(path.as_ref())?;
        let observers = Arc::new(Observers::default());
        let (sender, receiver) = mpsc::channel();
        let delivery_observers = Arc::clone(&observers);
        std::thread::Builder::new()
            .name("doorstep-observers".into())
            .spawn(move || deliver(receiver, delivery_observers))
            .map_err(|e| CoreError::Internal { reason: format!("cannot start the observer thread: {e}") })?;
        tracing::info!("session opened");
        Ok(DriverSession {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                clock: options.clock,
                observers,
                deliveries: Mutex::new(sender),
            }),
        })
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
        let outcome = self.store().import(&document.jobs, at)?;
        tracing::info!(created = outcome.created(), updated = outcome.updated(), "document imported");
        self.notify(outcome.jobs.iter().map(|job| job.event.clone()).collect());
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
        let outcome = self.store().transition(job_id, transition, at).inspect_err(|e| tracing::info!(error = %e, "refused"))?;
        tracing::info!(to = %outcome.event.to_state, "applied");
        self.notify(vec![outcome.event]);
        Ok(outcome.job)
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

    /// Registers an observer until the returned [`Subscription`] is cancelled
    /// or dropped.
    pub fn subscribe(&self, observer: Arc<dyn JobObserver>) -> Subscription {
        let id = self.inner.observers.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.observers.list).push((id, observer));
        tracing::debug!(id, "observer subscribed");
        Subscription { id, observers: Arc::downgrade(&self.inner.observers) }
    }

    pub fn observer_health(&self) -> ObserverHealth {
        lock(&self.inner.observers.health).clone()
    }

    fn store(&self) -> MutexGuard<'_, Database> {
        // A panic while the store was held unwound its transaction (rusqlite
        // rolls back on drop), so the store behind a poisoned lock is sound.
        lock(&self.inner.store)
    }

    fn notify(&self, events: Vec<JobEvent>) {
        if events.is_empty() {
            return;
        }
        // The delivery thread only stops when every sender is gone, which
        // cannot happen while `self` is alive; a failed send loses nothing
        // that was committed.
        let _ = lock(&self.inner.deliveries).send(events);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Default)]
struct Observers {
    next_id: AtomicU64,
    list: Mutex<Vec<(u64, Arc<dyn JobObserver>)>>,
    health: Mutex<ObserverHealth>,
}

/// Keeps an observer registered; cancelling (or dropping) it unregisters.
pub struct Subscription {
    id: u64,
    observers: Weak<Observers>,
}

impl Subscription {
    pub fn cancel(&self) {
        if let Some(observers) = self.observers.upgrade() {
            lock(&observers.list).retain(|(id, _)| *id != self.id);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}

fn deliver(receiver: Receiver<Vec<JobEvent>>, observers: Arc<Observers>) {
    for batch in receiver {
        for event in &batch {
            // Snapshot so an observer may subscribe or cancel from inside.
            let current: Vec<_> = lock(&observers.list).iter().map(|(_, o)| Arc::clone(o)).collect();
            for observer in current {
                let outcome = catch_unwind(AssertUnwindSafe(|| observer.job_changed(event)));
                let mut health = lock(&observers.health);
                match outcome {
                    Ok(Ok(())) => health.delivered += 1,
                    Ok(Err(message)) => record_failure(&mut health, message),
                    Err(payload) => record_failure(&mut health, format!("observer panicked: {}", panic_message(&*payload))),
                }
            }
        }
    }
    tracing::debug!("observer thread finished");
}

fn record_failure(health: &mut ObserverHealth, message: String) {
    tracing::warn!(%message, "observer failed");
    health.failed += 1;
    health.last_error = Some(message);
}
