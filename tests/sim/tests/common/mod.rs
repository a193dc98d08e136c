#![allow(dead_code)]

use doorstep_core::{DriverSession, JobEvent, JobObserver, ManualClock, SessionOptions};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use doorstep_sim::demo::MALL_PICKUP_RUN;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
}

impl Fixture {
    pub fn new() -> Fixture {
        let start = "2026-11-23T16:50:00Z".parse().unwrap();
        Fixture { dir: tempfile::tempdir().unwrap(), clock: Arc::new(ManualClock::starting_at(start)) }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("driver.db")
    }

    pub fn open(&self) -> DriverSession {
        DriverSession::open_with(self.db(), SessionOptions { clock: self.clock.clone(), ..SessionOptions::default() }).unwrap()
    }

    pub fn open_with_sample(&self) -> DriverSession {
        let session = self.open();
        session.import_document(MALL_PICKUP_RUN.as_bytes()).unwrap();
        session
    }

    /// A store's staff device, its database `file` in this fixture's
    /// folder, on the fixture's clock, with a fresh software key.
    pub fn open_store(&self, file: &str, store_id: uuid::Uuid) -> doorstep_core::handoff::StoreSession {
        let signer = std::sync::Arc::new(doorstep_core::keys::SoftwareSigner::generate().unwrap());
        doorstep_core::handoff::StoreSession::open(self.dir.path().join(file), store_id, signer, self.clock.clone()).unwrap()
    }
}

/// Records what it is told and on which thread.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<(JobEvent, std::thread::ThreadId)>>,
}

impl JobObserver for Recorder {
    fn job_changed(&self, event: &JobEvent) -> Result<(), String> {
        self.events.lock().unwrap().push((event.clone(), std::thread::current().id()));
        Ok(())
    }
}

impl Recorder {
    pub fn wait_for(&self, count: usize) -> Vec<(JobEvent, std::thread::ThreadId)> {
        wait_until(|| self.events.lock().unwrap().len() >= count);
        self.events.lock().unwrap().clone()
    }
}

/// The sample document with one JSON value replaced, by pointer.
pub fn sample_with(pointer: &str, value: serde_json::Value) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(MALL_PICKUP_RUN).unwrap();
    *doc.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer} is not in the sample")) = value;
    doc.to_string()
}

pub fn sample_value(pointer: &str) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_str(MALL_PICKUP_RUN).unwrap();
    doc.pointer(pointer).unwrap_or_else(|| panic!("{pointer} is not in the sample")).clone()
}

/// Polls `done` for up to ten seconds; observers run on their own thread.
pub fn wait_until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A token provider that always answers with the same bearer token.
pub struct FixedToken(pub String);

impl doorstep_core::sync::TokenProvider for FixedToken {
    fn access_token(&self) -> Result<String, doorstep_core::sync::TokenError> {
        Ok(self.0.clone())
    }

    fn refresh_token(&self) -> Result<String, doorstep_core::sync::TokenError> {
        Ok(self.0.clone())
    }
}

/// Runs an async core call to completion on the core's own runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    doorstep_core::runtime::shared().block_on(future)
}
