//! Resumable media upload (`/v1/media/{sha256}`, docs/dispatch-api.yaml):
//! ask how much dispatch holds, then send the rest in chunks with
//! `Content-Range`. A file dispatch already holds whole is done at once
//! (deduplicated by hash); an upload cut off mid-way resumes where dispatch
//! stands, not from the start.

use super::{DispatchClient, parse_json, read_body};
use crate::error::CoreError;
use crate::sync::SyncFailure;
use reqwest::{Method, StatusCode, header};
use serde::Deserialize;

/// Bytes per chunk: small enough that a dropped chunk on a weak signal
/// costs little, large enough that a photo takes a handful of requests.
pub const MEDIA_CHUNK_BYTES: usize = 256 * 1024;

/// How often in a row dispatch may say "wrong offset" before the upload is
/// left for the next round.
const MAX_OFFSET_CORRECTIONS: u32 = 3;

#[derive(Debug, Deserialize)]
struct MediaStatus {
    sha256: String,
    received: u64,
    #[serde(default)]
    size: Option<u64>,
    complete: bool,
}

impl DispatchClient {
    /// Uploads `bytes` (whose SHA-256 is `sha256`, lower-case hex) until
    /// dispatch holds them whole and verified.
    pub async fn upload_media(&self, sha256: &str, bytes: &[u8]) -> Result<(), SyncFailure> {
        let total = bytes.len() as u64;
        if total == 0 {
            return Err(SyncFailure::Permanent(CoreError::invalid("media", "an empty file cannot be uploaded")));
        }
        let path = format!("/v1/media/{sha256}");
        let mut offset = self.media_status(&path, sha256, total).await?;
        let mut corrections = 0;
        while let Some(start) = offset {
            let end = (start as usize + MEDIA_CHUNK_BYTES).min(bytes.len());
            let chunk = bytes[start as usize..end].to_vec();
            let range = format!("bytes {start}-{}/{total}", end - 1);
            let sent = self
                .send(Method::PUT, &path, |request| {
                    request
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .header(header::CONTENT_RANGE, &range)
                        .body(chunk.clone())
                })
                .await;
            match sent {
                Ok(response) => {
                    let status: MediaStatus = parse_json(&read_body(response).await?)?;
                    let next = next_offset(&status, sha256, total)?;
                    if next.is_some_and(|next| next <= start) {
                        return Err(bad(format!("dispatch took the chunk at {start} but holds only {}", status.received)));
                    }
                    offset = next;
                    corrections = 0;
                }
                Err(SyncFailure::Permanent(CoreError::Rejected { status: 416, .. })) if corrections < MAX_OFFSET_CORRECTIONS => {
                    corrections += 1;
                    offset = self.media_status(&path, sha256, total).await?;
                }
                Err(failure) => return Err(failure),
            }
        }
        Ok(())
    }

    /// Where to continue: `None` when dispatch holds the file whole.
    async fn media_status(&self, path: &str, sha256: &str, total: u64) -> Result<Option<u64>, SyncFailure> {
        let response = self.send(Method::GET, path, |request| request).await?;
        let status: MediaStatus = parse_json(&read_body(response).await?)?;
        next_offset(&status, sha256, total)
    }
}

fn next_offset(status: &MediaStatus, sha256: &str, total: u64) -> Result<Option<u64>, SyncFailure> {
    if status.sha256 != sha256 {
        return Err(bad(format!("status for {} when {sha256} was asked", status.sha256)));
    }
    if status.complete {
        return Ok(None);
    }
    if status.size.is_some_and(|size| size != total) {
        // Same hash, another size: the upload under way is not this file.
        return Err(SyncFailure::Permanent(CoreError::Rejected {
            status: StatusCode::CONFLICT.as_u16(),
            reason: format!("dispatch expects {} bytes for {sha256}; the file has {total}", status.size.unwrap_or_default()),
        }));
    }
    if status.received >= total {
        return Err(bad(format!("dispatch holds {} of {total} bytes but not the whole file", status.received)));
    }
    Ok(Some(status.received))
}

fn bad(reason: String) -> SyncFailure {
    SyncFailure::Permanent(CoreError::BadResponse { reason })
}
