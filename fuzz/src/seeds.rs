//! Seed inputs per target: real examples of each format (the sample day, a
//! delta page built from it, a check-in code, a signed grant, frames), so
//! the fuzzer starts from inputs that reach deep into each parser.

use crate::{sample_grant, sample_grant_terms};
use doorstep_core::access::frame::{Challenge, PROTOCOL_VERSION};
use doorstep_core::access::grant::GrantIssuer;
use doorstep_core::handoff::{CheckIn, codec};
use doorstep_core::keys::hex;
use serde_json::{Value, json};

const SAMPLE_DAY: &str = include_str!("../../tests/scenarios/mall-pickup-run.json");

/// The sample day as a page of the jobs delta: every job active and assigned.
fn delta_page() -> Vec<u8> {
    let day: Value = serde_json::from_str(SAMPLE_DAY).expect("the sample day is JSON");
    let jobs: Vec<Value> = day["jobs"]
        .as_array()
        .expect("the sample has jobs")
        .iter()
        .map(|job| {
            let mut job = job.clone();
            job["revision"] = json!(1);
            job["status"] = json!("active");
            job["state"] = json!("assigned");
            job
        })
        .collect();
    let page = json!({
        "format": doorstep_core::dispatch::DELTA_FORMAT,
        "cursor": "42",
        "has_more": false,
        "server_time": "2026-11-23T12:00:00Z",
        "stores": day["stores"],
        "jobs": jobs,
    });
    serde_json::to_vec(&page).expect("a delta page serializes")
}

fn check_in() -> codec::Message {
    codec::Message::CheckIn(CheckIn {
        driver_key: sample_grant_terms().device_key,
        at: "2026-11-23T12:00:00Z".parse().expect("a fixed time"),
    })
}

fn grants_answer() -> Vec<u8> {
    let grant = sample_grant();
    let notice = GrantIssuer::from_secret(&[3; 32]).expect("the issuer").revocation_notice(1, 1_800_000_000);
    let answer = json!({
        "grants": [{
            "grant_id": grant.grant_id_hex(),
            "job_id": sample_grant_terms().job_id,
            "door_ids": grant.door_ids,
            "not_before": doorstep_core::access::grant::seconds_to_time(grant.not_before),
            "not_after": doorstep_core::access::grant::seconds_to_time(grant.not_after()),
            "encoded": hex(grant.encoded()),
        }],
        "revocation": { "epoch": 1, "notice": hex(notice.encoded()) },
    });
    serde_json::to_vec(&answer).expect("a grants answer serializes")
}

fn challenge() -> Vec<u8> {
    Challenge { version: PROTOCOL_VERSION, lock_id: 1, door_id: 2, nonce: [9; 16], lock_time: 1_800_000_100, epoch: 0 }.encode()
}

/// The seeds of `target` (empty for an unknown name).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "dispatch_document" => vec![SAMPLE_DAY.as_bytes().to_vec()],
        "jobs_delta" => vec![delta_page()],
        "handoff_code" => vec![
            codec::to_text(&check_in()).expect("a check-in encodes").into_bytes(),
            codec::encode(&check_in()).expect("a check-in encodes"),
        ],
        "door_grant" => vec![sample_grant().encoded().to_vec(), grants_answer()],
        "door_frames" => vec![challenge()],
        "lock_writes" => {
            // MTU 185, then the grant as two writes.
            let grant = sample_grant().encoded().to_vec();
            let (first, second) = grant.split_at(60);
            let mut writes = vec![81u8, first.len() as u8];
            writes.extend_from_slice(first);
            writes.push(second.len() as u8);
            writes.extend_from_slice(second);
            vec![writes]
        }
        "sealed_record" => vec![br#"{"payload":{"job_id":"00000000-0000-0000-0000-000000000000"},"public_key":"02","signature":"00"}"#.to_vec()],
        "small_parsers" => vec![
            b"120".to_vec(),
            sample_grant_terms().device_key.to_compressed().to_vec(),
            [&[5u8][..], b"_p~iF~ps|U_ulLnnqC_mqNvxq`@"].concat(),
            vec![0xff, 0xd8, 0xff, 0xe0, 0, 16],
        ],
        _ => Vec::new(),
    }
}
