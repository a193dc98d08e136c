//! Store handoffs across the FFI: the staff device's `StoreSession`, the
//! driver's side as methods of `DriverSession`, and drawing handoff codes
//! as SVG and PNG for the screen.

use crate::keys::{DeviceSigner, ForeignSigner};
use crate::session::{DriverSession, ForeignTokens, TokenProvider};
use crate::types::{DeliveryJob, Timestamp};
use crate::{DoorstepError, guard, off_caller_thread};
use doorstep_core::handoff::{self, QrSymbol};
use doorstep_core::sync::SyncConfig;
use doorstep_core::{Package, SystemClock, TimeWindow};
use std::sync::Arc;
use uuid::Uuid;

/// Exposed as `HandoffDirection`: `Direction` alone is too vague a name in
/// a shell's namespace.
pub type HandoffDirection = handoff::Direction;

#[uniffi::remote(Enum)]
pub enum HandoffDirection {
    Pickup,
    Return,
}

pub type DiscrepancyKind = handoff::DiscrepancyKind;

#[uniffi::remote(Enum)]
pub enum DiscrepancyKind {
    Missing,
    Damaged,
    Extra,
}

pub type Discrepancy = handoff::Discrepancy;

#[uniffi::remote(Record)]
pub struct Discrepancy {
    pub kind: DiscrepancyKind,
    pub barcode: String,
    pub note: String,
}

pub type HandoffStatus = doorstep_core::store::HandoffStatus;

#[uniffi::remote(Enum)]
pub enum HandoffStatus {
    Open,
    Offered,
    Completed,
}

pub type HandoffJobView = handoff::HandoffJobView;

#[uniffi::remote(Record)]
pub struct HandoffJobView {
    pub job_id: Uuid,
    pub reference: String,
    pub expected: Vec<String>,
    pub confirmed: Vec<String>,
    pub unscanned: Vec<String>,
    pub discrepancies: Vec<Discrepancy>,
    pub partial_reason: Option<String>,
}

pub type HandoffView = handoff::HandoffView;

#[uniffi::remote(Record)]
pub struct HandoffView {
    pub handoff_id: Uuid,
    pub direction: HandoffDirection,
    pub status: HandoffStatus,
    pub driver_key_id: String,
    pub jobs: Vec<HandoffJobView>,
    pub extras: Vec<Discrepancy>,
}

pub type StoreOrder = handoff::StoreOrder;

#[uniffi::remote(Record)]
pub struct StoreOrder {
    pub job_id: Uuid,
    pub reference: String,
    pub pickup_window: TimeWindow,
    pub packages: Vec<Package>,
}

pub type JobCustody = handoff::receipt::JobCustody;

#[uniffi::remote(Record)]
pub struct JobCustody {
    pub job_id: Uuid,
    pub receipt_hash: String,
    pub handoff_id: Uuid,
    pub direction: HandoffDirection,
    pub store_id: Uuid,
    pub confirmed: Vec<String>,
    pub discrepancies: Vec<Discrepancy>,
    pub partial_reason: Option<String>,
    pub previous_receipt: Option<String>,
    pub staff_key_id: String,
    pub driver_key_id: String,
    pub offered_at: Timestamp,
    pub accepted_at: Timestamp,
}

pub type AcceptedHandoff = doorstep_core::session::AcceptedHandoff;

#[uniffi::remote(Record)]
pub struct AcceptedHandoff {
    pub acceptance_code: String,
    pub receipt_hash: String,
    pub direction: HandoffDirection,
    pub jobs: Vec<DeliveryJob>,
}

pub type ReceiptSendStatus = handoff::ReceiptSendStatus;

#[uniffi::remote(Enum)]
pub enum ReceiptSendStatus {
    Queued,
    Refused,
}

pub type PendingReceipt = handoff::PendingReceipt;

#[uniffi::remote(Record)]
pub struct PendingReceipt {
    pub receipt_hash: String,
    pub handoff_id: Uuid,
    pub direction: HandoffDirection,
    pub recorded_at: Timestamp,
    pub status: ReceiptSendStatus,
    pub last_error: Option<String>,
}

pub type ReceiptSyncReport = handoff::ReceiptSyncReport;

#[uniffi::remote(Record)]
pub struct ReceiptSyncReport {
    pub sent: u32,
    pub refused: u32,
    pub pending: u32,
}

/// The store staff's device: one store, its own database, its own key.
#[derive(uniffi::Object)]
pub struct StoreSession(Arc<handoff::StoreSession>);

#[uniffi::export]
impl StoreSession {
    /// Opens (creating if needed) the staff device's database at `path` for
    /// the store `store_id`; `signer` is the staff device's key.
    #[uniffi::constructor]
    pub fn open(path: String, store_id: Uuid, signer: Arc<dyn DeviceSigner>) -> Result<Arc<Self>, DoorstepError> {
        guard(|| {
            let session = handoff::StoreSession::open(path, store_id, Arc::new(ForeignSigner(signer)), Arc::new(SystemClock))?;
            Ok(Arc::new(StoreSession(Arc::new(session))))
        })
    }

    /// Imports a dispatch document, keeping this store's orders; returns
    /// how many there were.
    pub fn import_document(&self, json: String) -> Result<u32, DoorstepError> {
        guard(|| Ok(self.0.import_document(json.as_bytes())? as u32))
    }

    pub fn orders_awaiting_pickup(&self) -> Result<Vec<StoreOrder>, DoorstepError> {
        guard(|| self.0.orders_awaiting_pickup())
    }

    /// Starts a handoff with the driver whose check-in code was scanned.
    pub fn start_handoff(&self, direction: HandoffDirection, check_in_code: String, job_ids: Vec<Uuid>) -> Result<HandoffView, DoorstepError> {
        guard(|| self.0.start_handoff(direction, &check_in_code, &job_ids))
    }

    pub fn handoff(&self, handoff_id: Uuid) -> Result<HandoffView, DoorstepError> {
        guard(|| self.0.handoff(handoff_id))
    }

    /// Handoffs still open or offered, oldest first (after a restart, or
    /// when a driver left mid-handoff).
    pub fn handoffs_in_progress(&self) -> Result<Vec<HandoffView>, DoorstepError> {
        guard(|| self.0.handoffs_in_progress())
    }

    /// Drops a handoff still being scanned; throws `InvalidInput` once its
    /// offer was shown (the driver may have accepted it: scan the acceptance).
    pub fn cancel_handoff(&self, handoff_id: Uuid) -> Result<(), DoorstepError> {
        guard(|| self.0.cancel_handoff(handoff_id))
    }

    /// Confirms one package; unknown, duplicate and other-job barcodes are
    /// distinct errors.
    pub fn scan(&self, handoff_id: Uuid, barcode: String) -> Result<HandoffView, DoorstepError> {
        guard(|| self.0.scan(handoff_id, &barcode))
    }

    pub fn record_discrepancy(&self, handoff_id: Uuid, kind: DiscrepancyKind, barcode: String, note: String) -> Result<HandoffView, DoorstepError> {
        guard(|| self.0.record_discrepancy(handoff_id, kind, &barcode, &note))
    }

    pub fn set_partial_reason(&self, handoff_id: Uuid, job_id: Uuid, reason: Option<String>) -> Result<HandoffView, DoorstepError> {
        guard(|| self.0.set_partial_reason(handoff_id, job_id, reason.as_deref()))
    }

    /// The signed offer's text, for the QR code the driver scans (the staff
    /// key signs on the core's worker threads).
    pub async fn offer_code(&self, handoff_id: Uuid) -> Result<String, DoorstepError> {
        let session = self.0.clone();
        off_caller_thread(move || session.offer_code(handoff_id)).await
    }

    /// The blocking form of `offer_code`, for callers already off the main thread.
    pub fn offer_code_blocking(&self, handoff_id: Uuid) -> Result<String, DoorstepError> {
        guard(|| self.0.offer_code(handoff_id))
    }

    /// Scans the driver's acceptance; returns the receipt's hash (hex),
    /// the same the driver's device shows.
    pub async fn complete_handoff(&self, acceptance_code: String) -> Result<String, DoorstepError> {
        let session = self.0.clone();
        off_caller_thread(move || Ok(doorstep_core::keys::hex(&session.complete_handoff(&acceptance_code)?.hash()?))).await
    }

    /// The blocking form of `complete_handoff`, for callers already off the main thread.
    pub fn complete_handoff_blocking(&self, acceptance_code: String) -> Result<String, DoorstepError> {
        guard(|| Ok(doorstep_core::keys::hex(&self.0.complete_handoff(&acceptance_code)?.hash()?)))
    }

    /// Receipts waiting to go to dispatch, each a JSON record body.
    pub fn receipts_to_send(&self) -> Result<Vec<String>, DoorstepError> {
        guard(|| Ok(self.0.receipts_to_send()?.iter().map(|body| body.to_string()).collect()))
    }

    pub fn mark_receipt_sent(&self, receipt_hash: String) -> Result<(), DoorstepError> {
        guard(|| self.0.mark_receipt_sent(&receipt_hash))
    }

    /// The job's custody chain on this device, oldest first.
    pub fn custody(&self, job_id: Uuid) -> Result<Vec<JobCustody>, DoorstepError> {
        guard(|| self.0.custody(job_id))
    }

    /// Sends every queued receipt to dispatch; each leaves the queue only
    /// once dispatch acknowledged it. Network trouble ends the call with
    /// `Network` and leaves them queued; a receipt dispatch refuses is kept,
    /// refused, in `pending_receipts`.
    pub async fn sync_receipts(&self, config: SyncConfig, tokens: Arc<dyn TokenProvider>) -> Result<ReceiptSyncReport, DoorstepError> {
        let session = Arc::clone(&self.0);
        let tokens: Arc<dyn doorstep_core::sync::TokenProvider> = Arc::new(ForeignTokens(tokens));
        // HTTP runs on the core's runtime, whatever the caller's executor is.
        let task = doorstep_core::runtime::shared().spawn(async move { session.sync_receipts(&config, tokens).await });
        match task.await {
            Ok(outcome) => Ok(outcome?),
            Err(e) => Err(DoorstepError::Internal { reason: format!("receipt sync task failed: {e}") }),
        }
    }

    /// Receipts dispatch has not acknowledged: queued or refused, with the
    /// last error.
    pub fn pending_receipts(&self) -> Result<Vec<PendingReceipt>, DoorstepError> {
        guard(|| self.0.pending_receipts())
    }
}

#[uniffi::export]
impl DriverSession {
    /// The text of the QR code the driver shows staff on arrival.
    pub fn handoff_check_in_code(&self) -> Result<String, DoorstepError> {
        guard(|| self.0.handoff_check_in_code())
    }

    /// Accepts a scanned handoff offer and returns the acceptance to show
    /// back; the jobs move (picked up, or returned) with their mutations.
    pub async fn accept_handoff_offer(&self, offer_code: String) -> Result<AcceptedHandoff, DoorstepError> {
        let session = self.0.clone();
        off_caller_thread(move || session.accept_handoff_offer(&offer_code)).await
    }

    /// The blocking form of `accept_handoff_offer`, for callers already off the main thread.
    pub fn accept_handoff_offer_blocking(&self, offer_code: String) -> Result<AcceptedHandoff, DoorstepError> {
        guard(|| self.0.accept_handoff_offer(&offer_code))
    }

    /// The job's custody chain on this device: each handoff with the
    /// packages confirmed in it.
    pub fn handoff_custody(&self, job_id: Uuid) -> Result<Vec<JobCustody>, DoorstepError> {
        guard(|| self.0.handoff_custody(job_id))
    }
}

/// A handoff code drawn as SVG, `module_px` per module.
#[uniffi::export]
pub fn handoff_code_svg(code: String, module_px: u32) -> Result<String, DoorstepError> {
    guard(|| Ok(QrSymbol::new(&code)?.to_svg(module_px)))
}

/// A handoff code drawn as a greyscale PNG, `module_px` (1 to 32) per module.
#[uniffi::export]
pub fn handoff_code_png(code: String, module_px: u32) -> Result<Vec<u8>, DoorstepError> {
    guard(|| QrSymbol::new(&code)?.to_png(module_px))
}
