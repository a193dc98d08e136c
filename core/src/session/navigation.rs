//! The session's side of navigation: plans the route from the driver's jobs,
//! feeds location fixes to the pure controller (`nav`), persists its state
//! so navigation resumes after the app is killed, and turns arrivals into
//! job changes (automatically, or as suggestions for the driver to confirm).

use super::{DriverSession, lock};
use crate::error::{CoreError, Result};
use crate::jobs::{GeoPoint, Job, JobAction, JobEvent, JobState, Transition};
use crate::nav::sequence::{SequenceRequest, SequenceStop, resequence};
use crate::nav::{self, CompletionCheck, Fix, Geofence, NavConfig, NavEvent, NavState, Route, StopInput, StopKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use uuid::Uuid;

/// What an arrival does to its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrivalMode {
    /// The job moves to "at pickup" / "at drop-off" by itself.
    Automatic,
    /// The move is offered; the driver confirms it with `apply`.
    Suggest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NavigationOptions {
    pub config: NavConfig,
    pub arrival_mode: ArrivalMode,
    /// Assumed travel speed for planning the order of stops, m/s.
    pub planning_speed_mps: f64,
    /// Time at a stop, for planning and ETAs, seconds.
    pub service_time_s: f64,
}

impl Default for NavigationOptions {
    fn default() -> Self {
        NavigationOptions {
            config: NavConfig::default(),
            arrival_mode: ArrivalMode::Automatic,
            planning_speed_mps: 8.3,
            service_time_s: 180.0,
        }
    }
}

/// Everything the navigation screen needs after a fix, in one value.
#[derive(Debug, Clone, PartialEq)]
pub struct NavSnapshot {
    pub state: NavState,
    /// The stops in driving order.
    pub stops: Vec<StopInput>,
    /// What this fix caused (none for a snapshot not made by a fix).
    pub events: Vec<NavEvent>,
    /// Job changes arrivals made (automatic mode).
    pub job_events: Vec<JobEvent>,
    /// Job changes arrivals suggest (suggest mode), for the driver to apply.
    pub suggestions: Vec<JobAction>,
}

#[derive(Serialize, Deserialize)]
struct Plan {
    origin: Option<GeoPoint>,
    stops: Vec<StopInput>,
    options: NavigationOptions,
}

pub(super) struct Active {
    plan: Plan,
    route: Route,
    state: NavState,
}

#[derive(Default)]
pub(super) struct NavSlot(Mutex<Option<Active>>, AtomicBool);

impl NavSlot {
    /// Some job changed: the next fix checks whether the stops still fit.
    pub(super) fn jobs_changed(&self) {
        self.1.store(true, Ordering::SeqCst);
    }
}

impl DriverSession {
    /// Plans the route over the driver's open jobs (pickups before their
    /// drop-offs, time windows respected as far as possible) from `origin`
    /// at `now`, and starts navigating it. Replaces a navigation in progress.
    #[tracing::instrument(skip(self, options))]
    pub fn start_navigation(&self, origin: GeoPoint, options: NavigationOptions) -> Result<NavSnapshot> {
        options.config.validate()?;
        if !(options.planning_speed_mps > 0.0) || !(options.service_time_s >= 0.0) {
            return Err(CoreError::invalid("options", "planning speed must be above zero and service time not negative"));
        }
        let jobs = self.open_jobs()?;
        let active = self.plan_route(&jobs, origin, options)?;
        let snapshot = snapshot(&active.plan, &active.state, Vec::new(), Vec::new(), Vec::new());
        *lock(&self.inner.nav.0) = Some(active);
        Ok(snapshot)
    }

    /// Feeds one location fix; returns the whole navigation state. Arrivals
    /// move their jobs (or are suggested) in the same transaction that
    /// stores the new state.
    #[tracing::instrument(skip_all)]
    pub fn push_fix(&self, fix: Fix) -> Result<NavSnapshot> {
        let mut slot = self.navigation_slot()?;
        if slot.is_none() {
            return Err(CoreError::invalid("navigation", "no navigation has been started"));
        }
        fix.validate()?;
        if self.inner.nav.1.swap(false, Ordering::SeqCst) {
            self.replan_if_stops_changed(&mut slot, &fix)?;
        }
        let active = slot.as_mut().ok_or_else(|| CoreError::invalid("jobs", "no accepted job needs a stop any more"))?;
        let update = nav::update(&active.route, &active.state, &fix, &active.plan.options.config)?;
        let arrivals: Vec<(Uuid, Transition)> = update.events.iter().filter_map(arrival_action).collect();
        let (actions, suggestions) = match active.plan.options.arrival_mode {
            ArrivalMode::Automatic => (arrivals, Vec::new()),
            ArrivalMode::Suggest => {
                (Vec::new(), arrivals.into_iter().map(|(job_id, transition)| JobAction { job_id, transition }).collect())
            }
        };
        let at = self.inner.clock.now();
        let state_json = to_json(&update.state)?;
        let job_events = {
            let mut store = self.store();
            let events = store.record_fix(&state_json, &actions, at)?;
            self.notify(events.clone());
            events
        };
        if !job_events.is_empty() {
            self.inner.sync.wake();
        }
        active.state = update.state;
        Ok(snapshot(&active.plan, &active.state, update.events, job_events, suggestions))
    }

    /// The navigation in progress, if any (restored after a restart).
    pub fn navigation(&self) -> Result<Option<NavSnapshot>> {
        let slot = self.navigation_slot()?;
        Ok(slot.as_ref().map(|a| snapshot(&a.plan, &a.state, Vec::new(), Vec::new(), Vec::new())))
    }

    /// Takes the road a routing service drew after a reroute request: the
    /// leg to stop `stop_index` follows `geometry` from now on, and progress
    /// on that leg starts again from the next fix.
    #[tracing::instrument(skip(self, geometry))]
    pub fn accept_reroute(&self, stop_index: u32, geometry: crate::jobs::RouteGeometry) -> Result<NavSnapshot> {
        let mut slot = self.navigation_slot()?;
        let active = slot.as_mut().ok_or_else(|| CoreError::invalid("navigation", "no navigation has been started"))?;
        let mut route = active.route.clone();
        route.replace_leg_geometry(stop_index, Some(&geometry))?;
        let mut plan_stops = active.plan.stops.clone();
        plan_stops[stop_index as usize].leg = Some(geometry);
        let plan = Plan { origin: active.plan.origin, stops: plan_stops, options: active.plan.options.clone() };
        self.store().save_navigation(&to_json(&plan)?, &to_json(&active.state)?)?;
        active.plan = plan;
        active.route = route;
        Ok(snapshot(&active.plan, &active.state, Vec::new(), Vec::new(), Vec::new()))
    }

    pub fn stop_navigation(&self) -> Result<()> {
        self.store().clear_navigation()?;
        *lock(&self.inner.nav.0) = None;
        Ok(())
    }

    /// May proof of delivery be taken here for this job's drop-off: within
    /// the geofence, with a warning, or only with an override and a reason.
    pub fn completion_check(&self, job_id: Uuid, fix: &Fix) -> Result<CompletionCheck> {
        let job = self.job(job_id)?;
        let config = {
            self.navigation_slot()?
                .as_ref().map(|a| a.plan.options.config.clone()).unwrap_or_default()
        };
        let stop = nav::RouteStop::new(&dropoff_stop(&job, 0.0))?;
        nav::completion_check(&stop, fix, &config)
    }

    /// Jobs were added, withdrawn, failed or finished since the plan was
    /// made: re-sequence the remaining stops from where the driver is now.
    /// Progress restarts on the new route; the plan is kept when the stops
    /// are the same.
    fn replan_if_stops_changed(&self, slot: &mut Option<Active>, fix: &Fix) -> Result<()> {
        let Some(active) = slot.as_ref() else { return Ok(()) };
        let jobs = self.open_jobs()?;
        let wanted: HashSet<(Uuid, StopKind)> = stop_keys_for(&jobs).into_iter().collect();
        // Stops already passed on this route are done, whatever their jobs say.
        let remaining: HashSet<(Uuid, StopKind)> =
            active.plan.stops.iter().skip(active.state.current_stop as usize).map(|s| (s.job_id, s.kind)).collect();
        if remaining == wanted {
            return Ok(());
        }
        if jobs.is_empty() {
            self.store().clear_navigation()?;
            *slot = None;
            return Ok(());
        }
        let replanned = self.plan_route(&jobs, fix.position(), active.plan.options.clone())?;
        tracing::info!(stops = replanned.plan.stops.len(), "route re-planned after job changes");
        *slot = Some(replanned);
        Ok(())
    }

    /// Orders the stops of `jobs` from `origin`, prepares the route and
    /// stores the new plan with a fresh state.
    fn plan_route(&self, jobs: &[Job], origin: GeoPoint, options: NavigationOptions) -> Result<Active> {
        let stops = plan_stops(jobs, origin, self.inner.clock.now(), &options)?;
        let route = Route::new(Some(origin), stops.clone())?;
        let state = NavState::new(&route);
        let plan = Plan { origin: Some(origin), stops, options };
        self.store().save_navigation(&to_json(&plan)?, &to_json(&state)?)?;
        Ok(Active { plan, route, state })
    }

    /// The navigation slot, with a navigation saved before a restart loaded
    /// into it.
    fn navigation_slot(&self) -> Result<std::sync::MutexGuard<'_, Option<Active>>> {
        let mut slot = lock(&self.inner.nav.0);
        if slot.is_none() {
            *slot = self.restore_navigation()?;
        }
        Ok(slot)
    }

    fn open_jobs(&self) -> Result<Vec<Job>> {
        let summaries = self.jobs()?;
        summaries.iter().filter(|s| needs_stop(s.state)).map(|s| self.job(s.id)).collect()
    }

    fn restore_navigation(&self) -> Result<Option<Active>> {
        let Some((plan, state)) = self.store().navigation()? else { return Ok(None) };
        let corrupt = |what: &str, e: serde_json::Error| CoreError::Storage { reason: format!("stored navigation {what}: {e}") };
        let plan: Plan = serde_json::from_str(&plan).map_err(|e| corrupt("plan", e))?;
        let state: NavState = serde_json::from_str(&state).map_err(|e| corrupt("state", e))?;
        let route = Route::new(plan.origin, plan.stops.clone())?;
        Ok(Some(Active { plan, route, state }))
    }
}

/// Jobs the driver still has to drive somewhere for.
fn needs_stop(state: JobState) -> bool {
    matches!(state, JobState::Accepted | JobState::AtPickup | JobState::PickedUp | JobState::AtDropoff)
}

/// Which stops the driver's open jobs need.
fn stop_keys_for(jobs: &[Job]) -> Vec<(Uuid, StopKind)> {
    let mut keys = Vec::new();
    for job in jobs {
        if matches!(job.state, JobState::Accepted | JobState::AtPickup) {
            keys.push((job.id, StopKind::Pickup));
        }
        keys.push((job.id, StopKind::Dropoff));
    }
    keys
}

/// The driver's remaining stops in the order re-sequencing gives.
fn plan_stops(jobs: &[Job], origin: GeoPoint, now: DateTime<Utc>, options: &NavigationOptions) -> Result<Vec<StopInput>> {
    let mut inputs = Vec::new();
    for job in jobs {
        if matches!(job.state, JobState::Accepted | JobState::AtPickup) {
            inputs.push(pickup_stop(job, options.service_time_s));
        }
        inputs.push(dropoff_stop(job, options.service_time_s));
    }
    if inputs.is_empty() {
        return Err(CoreError::invalid("jobs", "no accepted job needs a stop"));
    }
    let request = SequenceRequest {
        position: origin,
        now,
        speed_mps: options.planning_speed_mps,
        stops: inputs
            .iter()
            .map(|s| SequenceStop {
                job_id: s.job_id,
                kind: s.kind,
                location: s.location,
                window: s.window,
                service_time: chrono::Duration::milliseconds((s.service_time_s * 1000.0) as i64),
            })
            .collect(),
    };
    let order = resequence(&request)?.order;
    let mut ordered: Vec<StopInput> = order.into_iter().map(|i| inputs[i].clone()).collect();
    // The server's road geometry runs from a job's pickup to its drop-off;
    // it fits only where the drop-off directly follows that pickup.
    for i in 1..ordered.len() {
        let follows_own_pickup = ordered[i - 1].kind == StopKind::Pickup && ordered[i - 1].job_id == ordered[i].job_id;
        if !follows_own_pickup {
            ordered[i].leg = None;
        }
    }
    if let Some(first) = ordered.first_mut() {
        first.leg = None;
    }
    Ok(ordered)
}

fn pickup_stop(job: &Job, service_time_s: f64) -> StopInput {
    StopInput {
        job_id: job.id,
        kind: StopKind::Pickup,
        location: job.pickup.store.location,
        geofence: Geofence::default(),
        window: job.pickup.window,
        service_time_s,
        leg: None,
    }
}

fn dropoff_stop(job: &Job, service_time_s: f64) -> StopInput {
    StopInput {
        job_id: job.id,
        kind: StopKind::Dropoff,
        location: job.dropoff.location,
        geofence: Geofence::default(),
        window: job.dropoff.window,
        service_time_s,
        leg: job.route.clone(),
    }
}

/// The job change an arrival implies.
fn arrival_action(event: &NavEvent) -> Option<(Uuid, Transition)> {
    match event {
        NavEvent::Arrived { job_id, kind: StopKind::Pickup, .. } => Some((*job_id, Transition::ArriveAtPickup)),
        NavEvent::Arrived { job_id, kind: StopKind::Dropoff, .. } => Some((*job_id, Transition::ArriveAtDropoff)),
        _ => None,
    }
}

fn snapshot(
    plan: &Plan,
    state: &NavState,
    events: Vec<NavEvent>,
    job_events: Vec<JobEvent>,
    suggestions: Vec<JobAction>,
) -> NavSnapshot {
    NavSnapshot { state: state.clone(), stops: plan.stops.clone(), events, job_events, suggestions }
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| CoreError::Internal { reason: format!("cannot encode navigation: {e}") })
}
