//! The staff device sending its handoff receipts to dispatch, exactly once
//! and offline-first: a receipt leaves the queue only when dispatch has
//! acknowledged it; network trouble leaves it queued for the next call; a
//! receipt dispatch refuses for good stays on the device, marked refused
//! with dispatch's reason, and is not sent again.
//!
//! Owns deciding what each answer means for a receipt ([`verdict`], pure)
//! and the round over the queue. HTTP is `sync::http`'s, SQL `store`'s.

use super::codec::Direction;
use super::store_session::{StoreSession, to_receipt};
use crate::error::{CoreError, Result};
use crate::keys;
use crate::sync::http::DispatchClient;
use crate::sync::{SyncConfig, SyncFailure, TokenProvider};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;

/// Where a receipt not yet acknowledged by dispatch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptSendStatus {
    /// Waiting to be sent (again, after `last_error` if any).
    Queued,
    /// Dispatch refused it for good; `last_error` says why. Not resent.
    Refused,
}

/// A receipt the staff device still holds for dispatch.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingReceipt {
    pub receipt_hash: String,
    pub handoff_id: Uuid,
    pub direction: Direction,
    pub recorded_at: DateTime<Utc>,
    pub status: ReceiptSendStatus,
    pub last_error: Option<String>,
}

/// What one call of [`StoreSession::sync_receipts`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiptSyncReport {
    /// Acknowledged by dispatch in this call (first time or as a duplicate).
    pub sent: u32,
    /// Refused for good in this call.
    pub refused: u32,
    /// Still queued after this call.
    pub pending: u32,
}

/// What an attempt to send one receipt means for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Dispatch holds it: leave the queue.
    Sent,
    /// Dispatch will never take it: keep it, refused, with the reason.
    Refused(String),
    /// Not the receipt's fault (network, the token, the server): keep it
    /// queued and end the round with this error.
    Stop(CoreError),
}

/// Sorts dispatch's answer for one receipt. Only a refusal of the receipt
/// itself (malformed, a bad signature, another store's) is permanent for
/// it; a 401 or 403 is about the device's credentials, and a 404 about
/// where it is sending, so the receipt waits for those to be fixed.
pub fn verdict(outcome: std::result::Result<(), SyncFailure>) -> Verdict {
    match outcome {
        Ok(()) => Verdict::Sent,
        Err(SyncFailure::Permanent(CoreError::Rejected { status: status @ (400 | 409 | 413 | 422), reason })) => {
            Verdict::Refused(format!("{status} {reason}"))
        }
        Err(failure) => Verdict::Stop(failure.into_error()),
    }
}

impl StoreSession {
    /// Sends every queued receipt to dispatch (`POST
    /// /v1/stores/{store_id}/receipts`), oldest first. Each is marked sent
    /// only once dispatch acknowledged it; one dispatch refuses is marked
    /// refused (see [`pending_receipts`](Self::pending_receipts)) and the
    /// round goes on. Network trouble, a refused token or a bad answer ends
    /// the round with that error and leaves the rest queued, each with the
    /// error noted. A receipt no longer intact on this device is refused
    /// here without being sent.
    #[tracing::instrument(skip_all, fields(base_url = %config.base_url, store_id = %self.store_id()))]
    pub async fn sync_receipts(&self, config: &SyncConfig, tokens: Arc<dyn TokenProvider>) -> Result<ReceiptSyncReport> {
        let client = DispatchClient::new(config, tokens)?;
        let mut report = ReceiptSyncReport::default();
        let queued: Vec<[u8; 32]> =
            self.db().unsent_receipts()?.into_iter().filter(|row| !row.refused).map(|row| row.receipt_hash).collect();
        for (index, hash) in queued.iter().enumerate() {
            let body = {
                let db = self.db();
                let stored = db.stored_receipt(hash)?;
                to_receipt(&db, &stored).and_then(|receipt| receipt.to_record_body())
            };
            let body = match body {
                Ok(body) => body.to_string().into_bytes(),
                Err(err) => {
                    tracing::error!(receipt = %keys::hex(hash), error = %err, "receipt damaged on this device; not sent");
                    self.db().record_receipt_send_error(hash, &format!("damaged on this device: {err}"), true)?;
                    report.refused += 1;
                    continue;
                }
            };
            let hex = keys::hex(hash);
            // No lock is held while waiting for dispatch.
            let outcome = client.send_store_receipt(self.store_id(), &hex, &body).await;
            match verdict(outcome) {
                Verdict::Sent => {
                    self.db().mark_receipt_sent(hash)?;
                    report.sent += 1;
                }
                Verdict::Refused(reason) => {
                    tracing::warn!(receipt = %hex, %reason, "dispatch refused the receipt");
                    self.db().record_receipt_send_error(hash, &reason, true)?;
                    report.refused += 1;
                }
                Verdict::Stop(err) => {
                    tracing::info!(receipt = %hex, error = %err, left = queued.len() - index, "receipt sync stopped");
                    let mut db = self.db();
                    for waiting in &queued[index..] {
                        db.record_receipt_send_error(waiting, &err.to_string(), false)?;
                    }
                    return Err(err);
                }
            }
        }
        report.pending = self.db().unsent_receipts()?.iter().filter(|row| !row.refused).count() as u32;
        tracing::info!(sent = report.sent, refused = report.refused, pending = report.pending, "receipts synced");
        Ok(report)
    }

    /// Receipts dispatch has not acknowledged, oldest first: queued ones
    /// (with the last send's error, if any) and refused ones (with
    /// dispatch's reason).
    pub fn pending_receipts(&self) -> Result<Vec<PendingReceipt>> {
        let db = self.db();
        db.unsent_receipts()?
            .into_iter()
            .map(|row| {
                Ok(PendingReceipt {
                    receipt_hash: keys::hex(&row.receipt_hash),
                    handoff_id: row.handoff_id,
                    direction: Direction::parse(&row.direction)
                        .ok_or_else(|| db.corrupt(format!("receipt direction {:?}", row.direction)))?,
                    recorded_at: row.recorded_at,
                    status: if row.refused { ReceiptSendStatus::Refused } else { ReceiptSendStatus::Queued },
                    last_error: row.send_error,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_a_refusal_of_the_receipt_itself_is_permanent() {
        assert_eq!(verdict(Ok(())), Verdict::Sent);
        let rejected = |status| Err(SyncFailure::Permanent(CoreError::Rejected { status, reason: "bad signature".into() }));
        assert_eq!(verdict(rejected(422)), Verdict::Refused("422 bad signature".into()));
        assert_eq!(verdict(rejected(400)), Verdict::Refused("400 bad signature".into()));
        for status in [403, 404, 405] {
            assert!(matches!(verdict(rejected(status)), Verdict::Stop(CoreError::Rejected { .. })), "{status}");
        }
        let offline = Err(SyncFailure::Transient { reason: "connection refused".into(), retry_after: Some(Duration::from_secs(1)) });
        assert!(matches!(verdict(offline), Verdict::Stop(CoreError::Network { .. })));
        let signed_out = Err(SyncFailure::Permanent(CoreError::Unauthorized { reason: "revoked".into() }));
        assert!(matches!(verdict(signed_out), Verdict::Stop(CoreError::Unauthorized { .. })));
        let garbled = Err(SyncFailure::Permanent(CoreError::BadResponse { reason: "not JSON".into() }));
        assert!(matches!(verdict(garbled), Verdict::Stop(CoreError::BadResponse { .. })));
    }
}
