use crate::types::ImportSummary;
use crate::{DoorstepError, guard};
use crate::types::DeliveryJob;
use doorstep_core::store::Mutation;
use doorstep_core::sync::{SyncConfig, SyncReport, SyncStatus, TokenError};
use doorstep_core::nav::{CompletionCheck, Fix};
use doorstep_core::{GeoPoint, JobAction, RouteGeometry, JobEvent, JobSummary, NavSnapshot, NavigationOptions, ObserverHealth, Transition};
use std::sync::Arc;
use uuid::Uuid;

/// Told of every change to the session's jobs, in commit order, on a core
/// background thread (never the thread that made the change). Throwing is
/// recorded in `DriverSession.observer_health()`; later changes still arrive.
#[uniffi::export(with_foreign)]
pub trait JobObserver: Send + Sync {
    fn on_job_changed(&self, event: JobEvent) -> Result<(), DoorstepError>;
}

struct ForeignObserver(Arc<dyn JobObserver>);

impl doorstep_core::JobObserver for ForeignObserver {
    fn job_changed(&self, event: &JobEvent) -> Result<(), String> {
        self.0.on_job_changed(event.clone()).map_err(|e| e.to_string())
    }
}

/// The shell's source of the driver's bearer token for dispatch. Called on a
/// core background thread; may block (keychain, refresh over the network).
/// Throw `Offline` or `Network` for passing trouble (sync retries later),
/// `Unauthorized` when the driver must sign in again.
#[uniffi::export(with_foreign)]
pub trait TokenProvider: Send + Sync {
    fn access_token(&self) -> Result<String, DoorstepError>;
    /// A fresh token after dispatch refused the current one.
    fn refresh_token(&self) -> Result<String, DoorstepError>;
}

pub(crate) struct ForeignTokens(pub(crate) Arc<dyn TokenProvider>);

impl doorstep_core::sync::TokenProvider for ForeignTokens {
    fn access_token(&self) -> Result<String, TokenError> {
        self.0.access_token().map_err(token_error)
    }

    fn refresh_token(&self) -> Result<String, TokenError> {
        self.0.refresh_token().map_err(token_error)
    }
}

/// A shell that throws `Offline` or `Network` from its token provider had
/// passing trouble (sync retries); anything else means signed out.
fn token_error(error: DoorstepError) -> TokenError {
    match error {
        DoorstepError::Offline => TokenError::Unavailable("offline".into()),
        DoorstepError::Network { reason } => TokenError::Unavailable(reason),
        DoorstepError::Unauthorized { reason } => TokenError::Refused(reason),
        other => TokenError::Refused(other.to_string()),
    }
}

/// Told of every change of the sync status (pending count, last success,
/// errors), on a core background thread.
#[uniffi::export(with_foreign)]
pub trait SyncObserver: Send + Sync {
    fn on_sync_status(&self, status: SyncStatus) -> Result<(), DoorstepError>;
}

struct ForeignSyncObserver(Arc<dyn SyncObserver>);

impl doorstep_core::SyncObserver for ForeignSyncObserver {
    fn sync_status_changed(&self, status: &SyncStatus) -> Result<(), String> {
        self.0.on_sync_status(status.clone()).map_err(|e| e.to_string())
    }
}

/// Keeps an observer registered until cancelled or closed.
#[derive(uniffi::Object)]
pub struct Subscription(doorstep_core::Subscription);

#[uniffi::export]
impl Subscription {
    pub fn cancel(&self) {
        self.0.cancel();
    }
}

/// A driver's session over one database file on the phone.
#[derive(uniffi::Object)]
pub struct DriverSession(pub(crate) doorstep_core::DriverSession);

#[uniffi::export]
impl DriverSession {
    /// Opens (creating if needed) the database at `path`.
    #[uniffi::constructor]
    pub fn open(path: String) -> Result<Arc<Self>, DoorstepError> {
        guard(|| doorstep_core::DriverSession::open(path).map(|session| Arc::new(DriverSession(session))))
    }

    /// Imports a dispatch document (JSON). A bad document changes nothing and
    /// the error names the field that is wrong.
    pub async fn import_document(&self, json: String) -> Result<ImportSummary, DoorstepError> {
        let session = self.0.clone();
        let outcome = session.import_document_async(json.into_bytes()).await?;
        Ok(outcome.into())
    }

    /// Applies a driver action durably and returns the job as it now is.
    pub async fn apply(&self, job_id: Uuid, transition: Transition) -> Result<DeliveryJob, DoorstepError> {
        Ok(self.0.apply_async(job_id, transition).await?)
    }

    /// The blocking form of `apply`, for callers already off the main thread.
    pub fn apply_blocking(&self, job_id: Uuid, transition: Transition) -> Result<DeliveryJob, DoorstepError> {
        guard(|| self.0.apply(job_id, transition))
    }

    /// Applies several actions atomically: all, or none and the first refusal.
    pub async fn apply_all(&self, actions: Vec<JobAction>) -> Result<Vec<JobEvent>, DoorstepError> {
        let session = self.0.clone();
        let actions: Vec<_> = actions.into_iter().map(|a| (a.job_id, a.transition)).collect();
        Ok(doorstep_core::runtime::run_blocking(move || session.apply_all(&actions)).await?)
    }

    /// The day's jobs in drop-off order.
    pub fn jobs(&self) -> Result<Vec<JobSummary>, DoorstepError> {
        guard(|| self.0.jobs())
    }

    pub fn job(&self, job_id: Uuid) -> Result<DeliveryJob, DoorstepError> {
        guard(|| self.0.job(job_id))
    }

    /// A job's history, oldest first.
    pub fn history(&self, job_id: Uuid) -> Result<Vec<JobEvent>, DoorstepError> {
        guard(|| self.0.history(job_id))
    }

    pub fn subscribe(&self, observer: Arc<dyn JobObserver>) -> Arc<Subscription> {
        Arc::new(Subscription(self.0.subscribe(Arc::new(ForeignObserver(observer)))))
    }

    pub fn observer_health(&self) -> ObserverHealth {
        self.0.observer_health()
    }

    /// Starts syncing with dispatch in the background.
    pub fn start_sync(&self, config: SyncConfig, tokens: Arc<dyn TokenProvider>) -> Result<(), DoorstepError> {
        guard(|| self.0.start_sync(config, Arc::new(ForeignTokens(tokens))))
    }

    pub fn stop_sync(&self) {
        self.0.stop_sync();
    }

    /// The shell's word on connectivity; going online syncs at once.
    pub fn set_online(&self, online: bool) {
        self.0.set_online(online);
    }

    /// One sync round now: send what is queued, then pull job changes.
    pub async fn sync_now(&self) -> Result<SyncReport, DoorstepError> {
        let session = self.0.clone();
        // The round awaits HTTP on the core's runtime, whatever the caller's
        // executor is.
        let task = doorstep_core::runtime::shared().spawn(async move { session.sync_now().await });
        match task.await {
            Ok(outcome) => Ok(outcome?),
            Err(e) => Err(DoorstepError::Internal { reason: format!("sync task failed: {e}") }),
        }
    }

    pub fn sync_status(&self) -> Result<SyncStatus, DoorstepError> {
        guard(|| self.0.sync_status())
    }

    pub fn subscribe_sync(&self, observer: Arc<dyn SyncObserver>) -> Arc<Subscription> {
        Arc::new(Subscription(self.0.subscribe_sync(Arc::new(ForeignSyncObserver(observer)))))
    }

    /// Actions not yet acknowledged by dispatch, oldest first.
    pub fn outbox(&self) -> Result<Vec<Mutation>, DoorstepError> {
        guard(|| self.0.outbox())
    }

    pub fn retry_mutation(&self, mutation_id: u64) -> Result<(), DoorstepError> {
        guard(|| self.0.retry_mutation(mutation_id))
    }

    pub fn abandon_mutation(&self, mutation_id: u64) -> Result<(), DoorstepError> {
        guard(|| self.0.abandon_mutation(mutation_id))
    }

    pub fn client_id(&self) -> Result<Uuid, DoorstepError> {
        guard(|| self.0.client_id())
    }

    /// Plans the route over the driver's accepted jobs from `origin` and
    /// starts navigating it.
    pub fn start_navigation(&self, origin: GeoPoint, options: NavigationOptions) -> Result<NavSnapshot, DoorstepError> {
        guard(|| self.0.start_navigation(origin, options))
    }

    /// One location fix in, the whole navigation state out: progress, ETA,
    /// events, and the job changes arrivals made or suggest.
    pub fn push_fix(&self, fix: Fix) -> Result<NavSnapshot, DoorstepError> {
        guard(|| self.0.push_fix(fix))
    }

    /// The navigation in progress, restored after a restart.
    pub fn navigation(&self) -> Result<Option<NavSnapshot>, DoorstepError> {
        guard(|| self.0.navigation())
    }

    /// Follows the road a routing service drew after a reroute request.
    pub fn accept_reroute(&self, stop_index: u32, geometry: RouteGeometry) -> Result<NavSnapshot, DoorstepError> {
        guard(|| self.0.accept_reroute(stop_index, geometry))
    }

    pub fn stop_navigation(&self) -> Result<(), DoorstepError> {
        guard(|| self.0.stop_navigation())
    }

    /// Whether proof of delivery may be taken at `fix` for this job.
    pub fn completion_check(&self, job_id: Uuid, fix: Fix) -> Result<CompletionCheck, DoorstepError> {
        guard(|| self.0.completion_check(job_id, &fix))
    }
}
