//! What the server tests share: a fresh in-process server per test, jobs
//! assigned to a driver, and mutations built the way a device sends them.
#![allow(dead_code)]

use chrono::Utc;
use doorstep_sim::server::client::DispatchClient;
use doorstep_sim::server::wire::{Mutation, MutationBatch};
use doorstep_sim::server::{RunningServer, ServerConfig, spawn};
use uuid::Uuid;

/// A running in-memory server on a free loopback port, and an admin client
/// of it. Keep the server alive for the test: dropping it stops the server.
pub fn start() -> (RunningServer, DispatchClient) {
    let server = spawn(ServerConfig::ephemeral()).expect("the server starts");
    let admin = DispatchClient::new(server.base_url());
    (server, admin)
}

/// Assigns `count` fresh synthetic jobs to `driver_id`; returns their ids.
pub fn assign(admin: &DispatchClient, driver_id: &str, count: usize) -> Vec<Uuid> {
    let document = doorstep_sim::synthetic::document(count, 2, Utc::now());
    let document = serde_json::from_str(&document).expect("synthetic documents are JSON");
    admin.assign_jobs(driver_id, document).expect("the jobs are assigned")
}

pub fn mutation(mutation_id: u64, job_id: Uuid, action: &str) -> Mutation {
    Mutation {
        mutation_id,
        idempotency_key: format!("key-{mutation_id}"),
        job_id,
        action: action.to_owned(),
        failure_reason: None,
        record: None,
        occurred_at: Utc::now(),
    }
}

pub fn batch(client_id: Uuid, mutations: Vec<Mutation>) -> MutationBatch {
    MutationBatch { client_id, mutations }
}
