//! Sync benchmark: drain 10,000 queued driver actions to the local reference
//! server, and the bytes each action costs on the wire. Prints
//! `bench <name>: <value> <unit>` lines (run by tests/bench.sh).

use doorstep_core::sync::{SyncConfig, TokenProvider};
use doorstep_core::{DriverSession, Transition};
use doorstep_sim::faults::FaultProxy;
use doorstep_sim::server::client::DispatchClient;
use doorstep_sim::server::{ServerConfig, spawn};
use doorstep_sim::synthetic::{self, HAPPY_PATH};
use std::sync::Arc;
use std::time::Instant;

const JOBS: usize = 2_000; // x 5 actions each = 10,000 mutations

struct Token(String);

impl TokenProvider for Token {
    fn access_token(&self) -> Result<String, doorstep_core::sync::TokenError> {
        Ok(self.0.clone())
    }

    fn refresh_token(&self) -> Result<String, doorstep_core::sync::TokenError> {
        Ok(self.0.clone())
    }
}

/// A device holding 10,000 unsent actions, pointed at `url`.
fn loaded_device(dir: &std::path::Path, admin: &DispatchClient, name: &str, url: &str) -> DriverSession {
    let token = admin.issue_token(name).unwrap();
    let day = "2026-11-23T16:00:00Z".parse().unwrap();
    admin.assign_jobs(name, serde_json::from_str(&synthetic::document(JOBS, 3, day)).unwrap()).unwrap();
    let session = DriverSession::open(dir.join(format!("{name}.db"))).unwrap();
    let mut config = SyncConfig::new(url);
    config.automatic = false;
    config.batch_size = 500;
    session.start_sync(config, Arc::new(Token(token))).unwrap();
    doorstep_core::runtime::shared().block_on(session.sync_now()).unwrap();
    let ids: Vec<_> = session.jobs().unwrap().iter().map(|j| j.id).collect();
    for step in HAPPY_PATH {
        let actions: Vec<(uuid::Uuid, Transition)> = ids.iter().map(|&id| (id, step)).collect();
        session.apply_all(&actions).unwrap();
    }
    assert_eq!(session.sync_status().unwrap().pending as usize, JOBS * HAPPY_PATH.len());
    session
}

fn main() {
    // `cargo test --benches` runs bench targets as tests; only measure when
    // asked to (`cargo bench` passes --bench).
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let server = spawn(ServerConfig::ephemeral()).unwrap();
    let admin = DispatchClient::new(server.base_url());
    let dir = tempfile::tempdir().unwrap();
    let mutations = (JOBS * HAPPY_PATH.len()) as f64;

    let mut times = Vec::new();
    for run in 0..3 {
        let session = loaded_device(dir.path(), &admin, &format!("drain-{run}"), &server.base_url());
        let start = Instant::now();
        let report = doorstep_core::runtime::shared().block_on(session.sync_now()).unwrap();
        times.push(start.elapsed());
        assert_eq!(report.acknowledged as f64, mutations);
    }
    times.sort();

    let proxy = FaultProxy::start(&server.base_url()).unwrap();
    let session = loaded_device(dir.path(), &admin, "bytes", &proxy.url());
    let before = proxy.counts();
    doorstep_core::runtime::shared().block_on(session.sync_now()).unwrap();
    let after = proxy.counts();
    let sent = (after.request_bytes - before.request_bytes) as f64 / mutations;
    let received = (after.response_bytes - before.response_bytes) as f64 / mutations;

    println!("bench sync/drain_10000_mutations: {:.1} ms", times[1].as_secs_f64() * 1e3);
    println!("bench sync/request_bytes_per_mutation: {sent:.1} bytes");
    println!("bench sync/response_bytes_per_mutation: {received:.1} bytes");
}
