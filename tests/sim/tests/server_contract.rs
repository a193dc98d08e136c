//! The reference server against its contract, `docs/dispatch-api.yaml`,
//! checked by Schemathesis: generated valid and invalid requests for every
//! operation; every answer must be no server error, a documented status, the
//! documented content type, and match the response schema.
//!
//! Needs `SCHEMATHESIS` (the `st` executable): `source
//! tests/tools/schemathesis-env.sh` installs it and sets it. Without it this
//! test fails rather than passing unchecked.
//!
//! Knobs: `DOORSTEP_SCHEMATHESIS_SEED` (default fixed, so CI is repeatable),
//! `DOORSTEP_SCHEMATHESIS_EXAMPLES` (examples per operation, default 30).

use chrono::Utc;
use doorstep_sim::server::client::DispatchClient;
use doorstep_sim::server::wire::{Mutation, MutationBatch, MutationRecord};
use doorstep_sim::server::{ServerConfig, spawn};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";
const DEFAULT_SEED: &str = "20261122";
const DEFAULT_EXAMPLES: &str = "30";
/// Far above a normal run (well under a minute); a hung run fails instead of blocking CI.
const RUN_LIMIT: Duration = Duration::from_secs(900);

fn contract() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/dispatch-api.yaml");
    path.canonicalize().unwrap_or(path)
}

fn schemathesis() -> PathBuf {
    match std::env::var_os("SCHEMATHESIS") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "SCHEMATHESIS is not set: this contract test needs Schemathesis. \
             Run `source tests/tools/schemathesis-env.sh` (it installs it into a cached venv \
             and exports SCHEMATHESIS), then run the tests again."
        ),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Real data for the generated requests to hit, besides the random ids that
/// only ever find 404s: the sample day's jobs, a device that sent mutations,
/// one whole and one half-uploaded media file.
struct Seeded {
    token: String,
    job_ids: Vec<Uuid>,
    client_ids: Vec<Uuid>,
    media: Vec<String>,
}

fn seed(admin: &DispatchClient) -> Seeded {
    let driver = "contract-driver";
    let document = serde_json::from_str(doorstep_sim::demo::MALL_PICKUP_RUN).expect("the sample day is JSON");
    let job_ids = admin.assign_jobs(driver, document).expect("the sample day is assigned");
    let token = admin.issue_token(driver).expect("a token is issued");
    let device = admin.as_driver(token.clone());

    let client_id = Uuid::new_v4();
    // The last one carries only a record, so the admin view has one to show.
    let mutations = ["accept", "arrive_at_pickup", "record"]
        .iter()
        .enumerate()
        .map(|(i, action)| Mutation {
            mutation_id: i as u64 + 1,
            idempotency_key: format!("seed-{i}"),
            job_id: job_ids[0],
            action: (*action).to_owned(),
            failure_reason: None,
            record: (*action == "record").then(|| MutationRecord {
                kind: "door_audit".to_owned(),
                body: serde_json::json!({ "door": "lobby" }),
            }),
            occurred_at: Utc::now(),
        })
        .collect();
    device.post_mutations(&MutationBatch { client_id, mutations }).expect("seed mutations are processed");
    admin.cancel_job(job_ids[1]).expect("a job is cancelled");

    let whole = b"a whole photo".to_vec();
    let half = b"half of a photo, the rest never came".to_vec();
    device.put_media_chunk(&sha256_hex(&whole), 0, whole.len() as u64, &whole).expect("whole upload");
    device.put_media_chunk(&sha256_hex(&half), 0, half.len() as u64, &half[..10]).expect("partial upload");
    Seeded { token, job_ids, client_ids: vec![client_id], media: vec![sha256_hex(&whole), sha256_hex(&half)] }
}

/// Schemathesis configuration: path and body ids drawn, half of the time,
/// from the seeded data.
fn config(seeded: &Seeded) -> String {
    let list = |values: Vec<String>| values.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", ");
    format!(
        r#"[dictionaries.job_ids]
values = [{jobs}]

[dictionaries.client_ids]
values = [{clients}]

[dictionaries.media]
values = [{media}]

[parameters]
"path.job_id" = {{ dictionary = "job_ids", probability = 0.5 }}
"path.client_id" = {{ dictionary = "client_ids", probability = 0.5 }}
"path.sha256" = {{ dictionary = "media", probability = 0.5 }}
"body.mutations[*].job_id" = {{ dictionary = "job_ids", probability = 0.7 }}
"#,
        jobs = list(seeded.job_ids.iter().map(Uuid::to_string).collect()),
        clients = list(seeded.client_ids.iter().map(Uuid::to_string).collect()),
        media = list(seeded.media.clone()),
    )
}

#[test]
fn the_server_keeps_its_contract_under_schemathesis() {
    let st = schemathesis();
    let server = spawn(ServerConfig::ephemeral()).expect("the server starts");
    let admin = DispatchClient::new(server.base_url());
    let seeded = seed(&admin);

    // Schemathesis runs in a scratch folder: its caches and reports stay out of the repo.
    let scratch = tempfile::tempdir().expect("a scratch folder");
    let config_path = scratch.path().join("schemathesis.toml");
    std::fs::write(&config_path, config(&seeded)).expect("the config is written");
    let seed = std::env::var("DOORSTEP_SCHEMATHESIS_SEED").unwrap_or_else(|_| DEFAULT_SEED.to_owned());
    let examples = std::env::var("DOORSTEP_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| DEFAULT_EXAMPLES.to_owned());

    let mut command = Command::new(&st);
    command
        .current_dir(scratch.path())
        .arg("--config-file")
        .arg(&config_path)
        .arg("run")
        .arg(contract())
        .args(["--url", &server.base_url()])
        .args(["--header", &format!("Authorization: Bearer {}", seeded.token)])
        .args(["--checks", CHECKS])
        .args(["--max-examples", &examples])
        .args(["--seed", &seed])
        .args(["--generation-database", "none"])
        .args(["--request-timeout", "30"])
        .arg("--no-color")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let printable = format!("{command:?}");
    let mut child = command.spawn().unwrap_or_else(|err| panic!("cannot run {}: {err}", st.display()));

    // Read its output on threads so a chatty run cannot fill the pipes and stall.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for schemathesis") {
            break Some(status);
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = format!("{}\n{}", out.join().unwrap_or_default(), err.join().unwrap_or_default());
    match status {
        Some(status) if status.success() => println!("{output}"),
        Some(status) => panic!("schemathesis found contract violations ({status}):\n{printable}\n\n{output}"),
        None => panic!("schemathesis ran longer than {RUN_LIMIT:?} and was stopped:\n{printable}\n\n{output}"),
    }
}
