//! `/v1/media/{sha256}` over HTTP: resumable upload in ordered chunks,
//! checked against its hash, deduplicated.

mod server_support;

use doorstep_sim::server::client::DispatchClient;
use reqwest::StatusCode;
use server_support::start;
use sha2::{Digest, Sha256};

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A made-up photo: bytes that differ from test to test.
fn photo(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn device() -> (doorstep_sim::server::RunningServer, DispatchClient) {
    let (server, admin) = start();
    let device = admin.driver("driver-a").unwrap();
    (server, device)
}

#[test]
fn a_file_uploaded_in_three_chunks_is_complete_and_verified() {
    let (_server, device) = device();
    let file = photo(300_000, 1);
    let sha = sha256_hex(&file);
    assert_eq!(device.media_status(&sha).unwrap().received, 0);

    let chunks = [&file[..100_000], &file[100_000..200_000], &file[200_000..]];
    let mut offset = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        let status = device.put_media_chunk(&sha, offset, file.len() as u64, chunk).unwrap();
        offset += chunk.len() as u64;
        assert_eq!((status.received, status.size, status.complete), (offset, Some(file.len() as u64), i == 2));
    }
    let status = device.media_status(&sha).unwrap();
    assert!(status.complete);
    assert_eq!(status.received, file.len() as u64);
}

#[test]
fn an_upload_resumes_where_the_server_stands_and_a_gap_is_416() {
    let (_server, device) = device();
    let file = photo(90_000, 2);
    let sha = sha256_hex(&file);
    let total = file.len() as u64;
    device.put_media_chunk(&sha, 0, total, &file[..30_000]).unwrap();

    // The device lost track and skips ahead: refused, nothing stored.
    let gap = device.put_media_chunk(&sha, 60_000, total, &file[60_000..]).unwrap_err();
    assert_eq!(gap.status(), Some(StatusCode::RANGE_NOT_SATISFIABLE));
    // It asks where to resume and carries on from there.
    let held = device.media_status(&sha).unwrap();
    assert_eq!((held.received, held.complete), (30_000, false));
    device.put_media_chunk(&sha, held.received, total, &file[30_000..60_000]).unwrap();
    let done = device.put_media_chunk(&sha, 60_000, total, &file[60_000..]).unwrap();
    assert!(done.complete);

    // A chunk resent after its answer was lost is out of place too; the
    // device learns from the status where to go on.
    let other = photo(20_000, 9);
    let other_sha = sha256_hex(&other);
    device.put_media_chunk(&other_sha, 0, 20_000, &other[..10_000]).unwrap();
    let resent = device.put_media_chunk(&other_sha, 0, 20_000, &other[..10_000]).unwrap_err();
    assert_eq!(resent.status(), Some(StatusCode::RANGE_NOT_SATISFIABLE));
    assert_eq!(device.media_status(&other_sha).unwrap().received, 10_000);
}

#[test]
fn bytes_that_do_not_match_the_hash_are_discarded_with_409() {
    let (_server, device) = device();
    let file = photo(50_000, 3);
    let sha = sha256_hex(&file);
    let mut corrupted = file.clone();
    corrupted[49_999] ^= 0xff;
    device.put_media_chunk(&sha, 0, 50_000, &corrupted[..25_000]).unwrap();
    let err = device.put_media_chunk(&sha, 25_000, 50_000, &corrupted[25_000..]).unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::CONFLICT));
    let status = device.media_status(&sha).unwrap();
    assert_eq!((status.received, status.complete), (0, false), "the upload starts over");

    assert!(device.put_media_chunk(&sha, 0, 50_000, &file).unwrap().complete, "the right bytes then go through");
}

#[test]
fn a_file_the_server_holds_completes_at_once() {
    let (_server, device) = device();
    let file = photo(20_000, 4);
    let sha = sha256_hex(&file);
    device.put_media_chunk(&sha, 0, 20_000, &file).unwrap();

    let again = device.put_media_chunk(&sha, 0, 20_000, &file[..1_000]).unwrap();
    assert_eq!((again.complete, again.received), (true, 20_000));
}

#[test]
fn malformed_chunks_are_refused() {
    let (_server, device) = device();
    let file = photo(1_000, 5);
    let sha = sha256_hex(&file);
    let short_body = device
        .request(reqwest::Method::PUT, &format!("/v1/media/{sha}"))
        .header("content-range", "bytes 0-999/1000")
        .body(file[..500].to_vec())
        .send()
        .unwrap();
    assert_eq!(short_body.status(), StatusCode::BAD_REQUEST);
    assert_eq!(short_body.headers()["content-type"], "application/problem+json");

    let no_range = device.request(reqwest::Method::PUT, &format!("/v1/media/{sha}")).body(file.clone()).send().unwrap();
    assert_eq!(no_range.status(), StatusCode::BAD_REQUEST);

    let huge = device.put_media_chunk(&sha, 0, 50 * 1024 * 1024 + 1, &file).unwrap_err();
    assert_eq!(huge.status(), Some(StatusCode::PAYLOAD_TOO_LARGE));

    let not_a_hash = device.put_media_chunk("ABC", 0, 1_000, &file).unwrap_err();
    assert_eq!(not_a_hash.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(device.media_status("ABC").unwrap_err().status(), Some(StatusCode::BAD_REQUEST));
}
