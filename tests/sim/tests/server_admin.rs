//! The admin API over HTTP: assigning jobs from documents the core
//! validates, reading the server's view, and answers for what does not exist.

mod server_support;

use chrono::Utc;
use doorstep_sim::server::wire::JobStatus;
use reqwest::StatusCode;
use server_support::{assign, start};
use uuid::Uuid;

fn sample_document() -> serde_json::Value {
    serde_json::from_str(doorstep_sim::demo::MALL_PICKUP_RUN).unwrap()
}

#[test]
fn the_sample_day_is_assigned_and_read_back_canonical() {
    let (_server, admin) = start();
    let document = sample_document();
    let ids = admin.assign_jobs("driver-a", document.clone()).unwrap();
    assert_eq!(ids.len(), document["jobs"].as_array().unwrap().len());

    let job = admin.job(ids[0]).unwrap();
    assert_eq!(
        (job.driver_id.as_str(), job.status, job.state.as_str(), job.revision),
        ("driver-a", JobStatus::Active, "assigned", 1)
    );
    assert!(job.conflicts.is_empty());
    assert_eq!(serde_json::to_value(&job.job).unwrap()["reference"], document["jobs"][0]["reference"]);

    // What the server sends back is itself a document the core accepts.
    let device = admin.driver("driver-a").unwrap();
    let delta = device.delta(None, None).unwrap();
    let round_trip = serde_json::json!({ "format": "doorstep.dispatch/1", "stores": delta.stores, "jobs": delta.jobs.iter().map(|j| &j.job).collect::<Vec<_>>() });
    let parsed = doorstep_core::dispatch::parse_document(round_trip.to_string().as_bytes()).unwrap();
    assert_eq!(parsed.jobs.len(), ids.len());
}

#[test]
fn a_job_id_that_exists_is_409_and_nothing_is_written() {
    let (_server, admin) = start();
    let document = doorstep_sim::synthetic::document(2, 1, Utc::now());
    let mut document: serde_json::Value = serde_json::from_str(&document).unwrap();
    admin.assign_jobs("driver-a", document.clone()).unwrap();

    // Same jobs again, plus a fresh one at the front: refused whole.
    let mut fresh = document["jobs"][0].clone();
    fresh["id"] = serde_json::json!(Uuid::new_v4());
    fresh["packages"][0]["id"] = serde_json::json!(Uuid::new_v4());
    fresh["packages"][0]["barcode"] = serde_json::json!("FRESH-1");
    let fresh_id: Uuid = serde_json::from_value(fresh["id"].clone()).unwrap();
    document["jobs"].as_array_mut().unwrap().insert(0, fresh);
    let err = admin.assign_jobs("driver-b", document).unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::CONFLICT));
    assert_eq!(err.problem().and_then(|p| p.field.as_deref()), Some("document.jobs[1].id"));
    assert_eq!(admin.job(fresh_id).unwrap_err().status(), Some(StatusCode::NOT_FOUND));
}

#[test]
fn an_invalid_document_is_422_naming_the_field() {
    let (_server, admin) = start();
    let mut document = sample_document();
    document["jobs"][2]["dropoff"]["location"]["lat"] = serde_json::json!(123.0);
    let err = admin.assign_jobs("driver-a", document).unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNPROCESSABLE_ENTITY));
    assert_eq!(err.problem().and_then(|p| p.field.as_deref()), Some("document.jobs[2].dropoff.location.lat"));

    let err = admin.assign_jobs("driver-a", serde_json::json!({"format": "something/else", "jobs": []})).unwrap_err();
    assert_eq!(err.problem().and_then(|p| p.field.as_deref()), Some("document.format"));

    let err = admin.assign_jobs("no spaces allowed", sample_document()).unwrap_err();
    assert_eq!(err.problem().and_then(|p| p.field.as_deref()), Some("driver_id"));
}

#[test]
fn cancelling_keeps_the_state_and_is_idempotent() {
    let (_server, admin) = start();
    let jobs = assign(&admin, "driver-a", 1);
    let cancelled = admin.cancel_job(jobs[0]).unwrap();
    assert_eq!((cancelled.status, cancelled.state.as_str(), cancelled.revision), (JobStatus::Cancelled, "assigned", 2));
    assert_eq!(admin.cancel_job(jobs[0]).unwrap().revision, 2, "cancelling again changes nothing");
    let err = admin.reassign_job(jobs[0], "driver-b").unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNPROCESSABLE_ENTITY), "a cancelled job stays withdrawn");

    let device = admin.driver("driver-a").unwrap();
    let delta = device.delta(None, None).unwrap();
    assert_eq!(delta.jobs.iter().map(|j| j.status).collect::<Vec<_>>(), [JobStatus::Cancelled]);
}

#[test]
fn what_does_not_exist_is_a_404_problem() {
    let (_server, admin) = start();
    let unknown = Uuid::new_v4();
    assert_eq!(admin.job(unknown).unwrap_err().status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(admin.cancel_job(unknown).unwrap_err().status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(admin.reassign_job(unknown, "driver-b").unwrap_err().status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(admin.client_record(unknown).unwrap_err().status(), Some(StatusCode::NOT_FOUND));
    for path in ["/admin/jobs/not-a-uuid", "/admin/clients/not-a-uuid", "/no/such/route", "/v2/jobs"] {
        let response = admin.request(reqwest::Method::GET, path).send().unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{path}");
    }
    let wrong_method = admin.request(reqwest::Method::DELETE, "/admin/jobs").send().unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.headers()["content-type"], "application/problem+json");
}
