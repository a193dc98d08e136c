//! Bearer tokens over HTTP: every `/v1` call needs a live token of a driver.

mod server_support;

use reqwest::StatusCode;
use server_support::start;

fn assert_unauthorized(response: reqwest::blocking::Response) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let problem: serde_json::Value = response.json().unwrap();
    assert_eq!(problem["status"], 401);
}

const DEVICE_CALLS: [(&str, &str); 5] = [
    ("GET", "/v1/jobs/delta"),
    ("POST", "/v1/mutations"),
    ("GET", "/v1/media/0000000000000000000000000000000000000000000000000000000000000000"),
    ("PUT", "/v1/media/0000000000000000000000000000000000000000000000000000000000000000"),
    ("GET", "/v1/grants"),
];

#[test]
fn every_device_call_needs_a_token() {
    let (_server, admin) = start();
    for (method, path) in DEVICE_CALLS {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        assert_unauthorized(admin.request(method, path).send().unwrap());
    }
    let not_bearer =
        admin.request(reqwest::Method::GET, "/v1/grants").header("authorization", "Basic ZHJpdmVyOnB3").send().unwrap();
    assert_unauthorized(not_bearer);
}

#[test]
fn an_unknown_or_revoked_token_is_refused() {
    let (_server, admin) = start();
    let device = admin.driver("driver-a").unwrap();
    assert_eq!(device.grants().unwrap().grants.len(), 0, "a live token works");

    let stranger = admin.as_driver("not-a-token-we-issued");
    assert_eq!(stranger.grants().unwrap_err().status(), Some(StatusCode::UNAUTHORIZED));

    admin.revoke_token(device.token().unwrap()).unwrap();
    for (method, path) in DEVICE_CALLS {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        assert_unauthorized(device.request(method, path).send().unwrap());
    }
    admin.revoke_token(device.token().unwrap()).expect("revoking twice is fine");
}

#[test]
fn tokens_are_per_driver_and_unique() {
    let (_server, admin) = start();
    let first = admin.issue_token("driver-a").unwrap();
    let second = admin.issue_token("driver-a").unwrap();
    assert_ne!(first, second);
    admin.revoke_token(&first).unwrap();
    assert!(admin.as_driver(second).grants().is_ok(), "revoking one token leaves the driver's others");
    let err = admin.issue_token("not%20a%20driver").unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
}
