//! Resumable media upload (`/v1/media/{sha256}`): photos and signatures of
//! proof of delivery, addressed by the SHA-256 of their bytes.
//!
//! Owns the upload rules: chunks arrive in order (`Content-Range: bytes
//! a-b/total`, `a` = bytes already held, else 416), a file is at most
//! [`MAX_MEDIA_BYTES`], the hash is checked when the last byte arrives (a
//! mismatch discards the upload, 409) and a file held whole is never taken
//! twice. Storage of the bytes is [`super::storage::media`]'s.

use super::AppState;
use super::problem::Problem;
use super::storage::media::{self as stored, MediaRecord};
use super::wire::MediaStatus;
use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode};
use sha2::{Digest, Sha256};

/// The largest media file the server takes.
pub const MAX_MEDIA_BYTES: u64 = 50 * 1024 * 1024;

/// A checked `bytes first-last/total` header (both ends inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    pub first: u64,
    pub last: u64,
    pub total: u64,
}

impl ContentRange {
    pub fn chunk_len(&self) -> u64 {
        self.last - self.first + 1
    }
}

/// Reads `Content-Range`, exactly as the contract's pattern has it.
pub fn parse_content_range(header: Option<&HeaderValue>) -> Result<ContentRange, Problem> {
    let bad = |detail: &str| Problem::bad_request(detail.to_owned()).with_field("Content-Range");
    let text = header
        .ok_or_else(|| bad("the Content-Range header is required"))?
        .to_str()
        .map_err(|_| bad("Content-Range is not ASCII"))?;
    let number = |digits: &str| -> Option<u64> {
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
    };
    let parsed = text.strip_prefix("bytes ").and_then(|rest| {
        let (range, total) = rest.split_once('/')?;
        let (first, last) = range.split_once('-')?;
        Some(ContentRange { first: number(first)?, last: number(last)?, total: number(total)? })
    });
    let range = parsed.ok_or_else(|| bad("Content-Range must be `bytes FIRST-LAST/TOTAL`"))?;
    if range.last < range.first {
        return Err(bad("the range ends before it starts"));
    }
    Ok(range)
}

/// Whether `text` is a SHA-256 as the contract writes it (64 lowercase hex digits).
pub fn check_sha256(text: &str) -> Result<(), Problem> {
    if text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(Problem::bad_request("the path must end in a SHA-256: 64 lowercase hex digits").with_field("sha256"))
    }
}

fn status_of(sha256: &str, record: Option<MediaRecord>) -> MediaStatus {
    match record {
        Some(record) => MediaStatus {
            sha256: sha256.to_owned(),
            received: record.received,
            size: Some(record.size),
            complete: record.complete,
        },
        None => MediaStatus { sha256: sha256.to_owned(), received: 0, size: None, complete: false },
    }
}

/// How much of the file the server holds.
pub async fn status(state: &AppState, sha256: String) -> Result<MediaStatus, Problem> {
    check_sha256(&sha256)?;
    Ok(state.db.call(move |tx| Ok(status_of(&sha256, stored::get(tx, &sha256)?))).await?)
}

/// Takes one chunk of the file; see the module's rules.
pub async fn put_chunk(
    state: &AppState,
    sha256: String,
    range: ContentRange,
    chunk: Bytes,
) -> Result<MediaStatus, Problem> {
    check_sha256(&sha256)?;
    state
        .db
        .call(move |tx| {
            let record = stored::get(tx, &sha256)?;
            if record.is_some_and(|record| record.complete) {
                return Ok(Ok(status_of(&sha256, record)));
            }
            if let Err(problem) = check_chunk(record, range, chunk.len()) {
                return Ok(Err(problem));
            }
            let record = stored::append_chunk(tx, &sha256, range.total, range.first, &chunk)?;
            if record.received < record.size {
                return Ok(Ok(status_of(&sha256, Some(record))));
            }
            let mut hasher = Sha256::new();
            stored::read_chunks(tx, &sha256, |bytes| hasher.update(bytes))?;
            let actual = hex(&hasher.finalize());
            if actual != sha256 {
                stored::discard(tx, &sha256)?;
                return Ok(Err(Problem::new(
                    StatusCode::CONFLICT,
                    "hash-mismatch",
                    "The file does not match its hash",
                )
                .with_detail(format!(
                    "the {} bytes received hash to {actual}; the upload was discarded",
                    record.size
                ))));
            }
            stored::mark_complete(tx, &sha256)?;
            Ok(Ok(status_of(&sha256, Some(MediaRecord { complete: true, ..record }))))
        })
        .await?
}

/// The chunk fits the upload in progress (or starts a new one).
fn check_chunk(record: Option<MediaRecord>, range: ContentRange, chunk_len: usize) -> Result<(), Problem> {
    let bad = |detail: String| Err(Problem::bad_request(detail).with_field("Content-Range"));
    if range.total > MAX_MEDIA_BYTES {
        return Err(Problem::too_large(format!("a media file is at most {MAX_MEDIA_BYTES} bytes")));
    }
    if range.last >= range.total {
        return bad(format!("the range ends at byte {} of a {}-byte file", range.last, range.total));
    }
    if chunk_len as u64 != range.chunk_len() {
        return bad(format!("the body has {chunk_len} bytes; the range announces {}", range.chunk_len()));
    }
    let received = match record {
        Some(record) if record.size != range.total => {
            return bad(format!("the file was announced as {} bytes, now as {}", record.size, range.total));
        }
        Some(record) => record.received,
        None => 0,
    };
    if range.first != received {
        return Err(Problem::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "wrong-offset",
            "The chunk does not start where the upload stands",
        )
        .with_detail(format!("the server holds {received} bytes; the next chunk must start at byte {received}")));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> HeaderValue {
        HeaderValue::from_str(text).expect("test header")
    }

    #[test]
    fn content_range_is_read_as_the_contract_writes_it() {
        assert_eq!(
            parse_content_range(Some(&header("bytes 0-9/100"))).ok(),
            Some(ContentRange { first: 0, last: 9, total: 100 })
        );
        for bad in [
            "bytes 9-0/100",
            "bytes 0-9",
            "bytes=0-9/100",
            "bytes -9/100",
            "bytes 0-9/*",
            "bytes 0-99999999999999999999/1",
        ] {
            assert!(parse_content_range(Some(&header(bad))).is_err(), "{bad}");
        }
        assert!(parse_content_range(None).is_err());
    }

    #[test]
    fn chunks_must_continue_the_upload() {
        let range = |first, last, total| ContentRange { first, last, total };
        assert!(check_chunk(None, range(0, 3, 10), 4).is_ok());
        assert_eq!(check_chunk(None, range(4, 7, 10), 4).map_err(|p| p.status), Err(416));
        assert_eq!(check_chunk(None, range(0, 3, 10), 3).map_err(|p| p.status), Err(400));
        assert_eq!(check_chunk(None, range(0, 10, 10), 11).map_err(|p| p.status), Err(400));
        assert_eq!(check_chunk(None, range(0, 3, MAX_MEDIA_BYTES + 1), 4).map_err(|p| p.status), Err(413));
        let held = MediaRecord { size: 10, received: 4, complete: false };
        assert!(check_chunk(Some(held), range(4, 9, 10), 6).is_ok());
        assert_eq!(check_chunk(Some(held), range(4, 9, 11), 6).map_err(|p| p.status), Err(400));
    }
}
