//! A real `kill -9` of a process in the middle of syncing: after reopening
//! the same database, every action reaches dispatch exactly once, in order.

mod common;

use common::{FixedToken, block_on};

use doorstep_core::sync::SyncConfig;
use doorstep_core::*;
use doorstep_sim::server::client::DispatchClient;
use doorstep_sim::server::{ServerConfig, spawn};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn start_sync(session: &DriverSession, url: &str, token: &str, automatic: bool) {
    let mut config = SyncConfig::new(url);
    config.automatic = automatic;
    config.backoff_base = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(200);
    session.start_sync(config, Arc::new(FixedToken(token.to_owned()))).unwrap();
}

/// The child: walks every job through the happy path with background sync
/// on, printing each committed action, until it is killed.
#[test]
#[ignore = "run as a child process by a_process_killed_mid_sync_loses_and_doubles_nothing"]
fn sync_churn_child() {
    let (Ok(db), Ok(url), Ok(token)) =
        (std::env::var("CHILD_DB"), std::env::var("CHILD_DISPATCH_URL"), std::env::var("CHILD_TOKEN"))
    else {
        return;
    };
    let session = DriverSession::open(&db).unwrap();
    start_sync(&session, &url, &token, true);
    let deadline = Instant::now() + Duration::from_secs(60);
    while session.jobs().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    for step in doorstep_sim::synthetic::HAPPY_PATH {
        for job in session.jobs().unwrap() {
            session.apply(job.id, step).unwrap();
            println!("committed {} {}", job.id, step.name());
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_process_killed_mid_sync_loses_and_doubles_nothing() {
    let server = spawn(ServerConfig::ephemeral()).unwrap();
    let admin = DispatchClient::new(server.base_url());
    let token = admin.issue_token("killed-driver").unwrap();
    let day = "2026-11-23T16:00:00Z".parse().unwrap();
    let document = serde_json::from_str(&doorstep_sim::synthetic::document(40, 3, day)).unwrap();
    admin.assign_jobs("killed-driver", document).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("driver.db");

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "sync_churn_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env("CHILD_DB", &db)
        .env("CHILD_DISPATCH_URL", server.base_url())
        .env("CHILD_TOKEN", &token)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut committed = 0;
    while committed < 90 {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("committed ") => committed += 1,
            Some(_) => {}
            None => break,
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(committed >= 90, "the child stopped after {committed} actions");

    // Reopen what the killed process left and finish syncing.
    let session = DriverSession::open(&db).unwrap();
    start_sync(&session, &server.base_url(), &token, false);
    block_on(session.sync_now()).unwrap();
    assert_eq!(session.sync_status().unwrap().pending, 0);

    let record = admin.client_record(session.client_id().unwrap()).unwrap();
    let processed: Vec<u64> = record.processed.iter().map(|p| p.mutation_id).collect();
    let actions: usize = session
        .jobs()
        .unwrap()
        .iter()
        .map(|job| session.history(job.id).unwrap().iter().filter(|e| e.kind == JobEventKind::Transitioned).count())
        .sum();
    assert!(actions >= committed, "an acknowledged action was lost");
    assert_eq!(processed, (1..=actions as u64).collect::<Vec<_>>(), "every action exactly once, in order");
    for job in session.jobs().unwrap() {
        assert_eq!(admin.job(job.id).unwrap().state, job.state.as_str());
    }
}
