//! Store handoffs: staff and driver confirm, package by package, what
//! changed hands, and both devices sign it, with no network needed.
//!
//! The staff device shows a QR code carrying the signed offer; the driver's
//! device checks it against its jobs, signs the acceptance and shows it as a
//! QR code; the staff device scans that. Both then hold the same
//! [`HandoffReceipt`] and queue it for dispatch.
//!
//! Owns the message format ([`codec`]), the signatures and the custody chain
//! ([`receipt`]), drawing codes ([`qr`]) and the staff side
//! ([`StoreSession`]). The driver's side is `DriverSession::accept_handoff_offer`
//! (in `session`); SQL lives in `store`. Must not touch proof of delivery or
//! door access.

pub mod base45;
pub mod codec;
pub mod qr;
pub mod receipt;
mod receipt_sync;
mod store_session;

pub use codec::{Acceptance, CheckIn, Direction, Discrepancy, DiscrepancyKind, OfferContent, OfferJob, SignedOffer};
pub use qr::QrSymbol;
pub use receipt::HandoffReceipt;
pub use receipt_sync::{PendingReceipt, ReceiptSendStatus, ReceiptSyncReport, Verdict, verdict};
pub use store_session::*;

/// How far an offer's time may be from the accepting device's clock. Two
/// offline phones can drift apart; an offer older than this is stale.
pub const OFFER_VALIDITY: chrono::Duration = chrono::Duration::minutes(30);
