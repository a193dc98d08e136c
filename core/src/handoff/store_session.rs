//! [`StoreSession`]: the store staff's side of handoffs, for one store, on
//! its own database.
//!
//! Staff see the orders awaiting pickup, start a handoff when a driver checks
//! in (the driver's device shows its key as a QR code), scan package by
//! package, record what is missing, damaged or extra, give a reason for a
//! partial handoff, show the signed offer and scan the driver's acceptance.
//! Returns run the same way with the packages going back to the store.
//! Rules live here; SQL is in `store`.

use super::codec::{self, Direction, Discrepancy, DiscrepancyKind, Message, OfferContent, OfferJob};
use super::receipt::{self, HandoffReceipt, JobCustody};
use crate::clock::Clock;
use crate::dispatch;
use crate::error::{CoreError, Result};
use crate::jobs::{Job, Package, TimeWindow};
use crate::keys::{self, DeviceSigner, DevicePublicKey};
use crate::store::{Database, HandoffRow, HandoffStatus, StoredReceipt};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

/// An order of this store, as the staff's list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreOrder {
    pub job_id: Uuid,
    pub reference: String,
    pub pickup_window: TimeWindow,
    pub packages: Vec<Package>,
}

/// A handoff as the staff screen shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HandoffView {
    pub handoff_id: Uuid,
    pub direction: Direction,
    pub status: HandoffStatus,
    pub driver_key_id: String,
    pub jobs: Vec<HandoffJobView>,
    /// Packages that turned up on no manifest of this handoff.
    pub extras: Vec<Discrepancy>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HandoffJobView {
    pub job_id: Uuid,
    pub reference: String,
    /// The barcodes that should change hands.
    pub expected: Vec<String>,
    /// Scanned so far, in scan order.
    pub confirmed: Vec<String>,
    /// Expected, neither scanned nor reported missing yet.
    pub unscanned: Vec<String>,
    /// Missing and damaged packages with staff's notes.
    pub discrepancies: Vec<Discrepancy>,
    pub partial_reason: Option<String>,
}

/// The staff device's handle: one store, one database, one device key.
pub struct StoreSession {
    store_id: Uuid,
    db: Mutex<Database>,
    clock: Arc<dyn Clock>,
    signer: Arc<dyn DeviceSigner>,
}

impl StoreSession {
    /// Opens (creating if needed) the staff device's database for `store_id`.
    /// The signer is the staff device's key; it signs every offer.
    pub fn open(path: impl AsRef<Path>, store_id: Uuid, signer: Arc<dyn DeviceSigner>, clock: Arc<dyn Clock>) -> Result<StoreSession> {
        // A key that cannot sign is found now, not at the first handoff.
        keys::device_public_key(signer.as_ref())?;
        let db = Database::open(path.as_ref())?;
        Ok(StoreSession { store_id, db: Mutex::new(db), clock, signer })
    }

    pub fn store_id(&self) -> Uuid {
        self.store_id
    }

    /// Imports a dispatch document, keeping only this store's orders.
    /// Returns how many orders of this store it held.
    #[tracing::instrument(skip_all, fields(bytes = json.len()))]
    pub fn import_document(&self, json: &[u8]) -> Result<usize> {
        let document = dispatch::parse_document(json)?;
        let ours: Vec<_> = document.jobs.into_iter().filter(|job| job.pickup.store.id == self.store_id).collect();
        self.db().import(&ours, self.clock.now())?;
        Ok(ours.len())
    }

    /// This store's orders no driver has picked up yet, earliest pickup first.
    pub fn orders_awaiting_pickup(&self) -> Result<Vec<StoreOrder>> {
        let db = self.db();
        let mut orders = Vec::new();
        for summary in db.summaries()? {
            let job = db.job(summary.id)?;
            if job.pickup.store.id != self.store_id || latest_custody(&db, job.id, Direction::Pickup)?.is_some() {
                continue;
            }
            orders.push(StoreOrder { job_id: job.id, reference: job.reference, pickup_window: job.pickup.window, packages: job.packages });
        }
        orders.sort_by(|a, b| (a.pickup_window.start, &a.reference).cmp(&(b.pickup_window.start, &b.reference)));
        Ok(orders)
    }

    /// Starts handing `job_ids` to the driver whose check-in code was
    /// scanned (or, for a return, taking them back).
    #[tracing::instrument(skip(self, check_in_code))]
    pub fn start_handoff(&self, direction: Direction, check_in_code: &str, job_ids: &[Uuid]) -> Result<HandoffView> {
        let check_in = codec::expect_check_in(check_in_code)?;
        if job_ids.is_empty() || job_ids.len() > codec::MAX_JOBS {
            return Err(CoreError::invalid("job_ids", format!("a handoff holds 1 to {} jobs", codec::MAX_JOBS)));
        }
        if job_ids.iter().collect::<HashSet<_>>().len() != job_ids.len() {
            return Err(CoreError::invalid("job_ids", "a job is listed twice"));
        }
        let mut db = self.db();
        for &job_id in job_ids {
            let job = db.job(job_id)?;
            if job.pickup.store.id != self.store_id {
                return Err(CoreError::HandoffMismatch { reason: format!("job {} is not picked up at this store", job.reference) });
            }
            let picked_up = latest_custody(&db, job_id, Direction::Pickup)?;
            let returned = latest_custody(&db, job_id, Direction::Return)?;
            match direction {
                Direction::Pickup if picked_up.is_some() => {
                    return Err(CoreError::HandoffMismatch { reason: format!("job {} was already handed over", job.reference) });
                }
                Direction::Return if picked_up.is_none() => {
                    return Err(CoreError::HandoffMismatch {
                        reason: format!("this device holds no pickup receipt for job {}", job.reference),
                    });
                }
                Direction::Return if returned.is_some() => {
                    return Err(CoreError::HandoffMismatch { reason: format!("job {} was already returned", job.reference) });
                }
                _ => {}
            }
        }
        let id = Uuid::new_v4();
        db.insert_handoff(id, direction.as_str(), &check_in.driver_key.to_compressed(), job_ids, self.clock.now())?;
        tracing::info!(%id, "handoff started");
        view(&db, id)
    }

    pub fn handoff(&self, handoff_id: Uuid) -> Result<HandoffView> {
        view(&self.db(), handoff_id)
    }

    /// The handoffs still open or offered, oldest first: what the counter
    /// screen shows after the app was killed, or when a driver left.
    pub fn handoffs_in_progress(&self) -> Result<Vec<HandoffView>> {
        let db = self.db();
        db.handoffs_in_progress()?.into_iter().map(|id| view(&db, id)).collect()
    }

    /// Drops a handoff that is still being scanned (the driver left, the
    /// wrong orders were picked); its jobs can be handed over again. Once
    /// the signed offer was shown the driver may have accepted it offline,
    /// so it cannot be dropped: scan the acceptance to complete it.
    #[tracing::instrument(skip(self))]
    pub fn cancel_handoff(&self, handoff_id: Uuid) -> Result<()> {
        let mut db = self.db();
        let status = db.handoff(handoff_id)?.status;
        if status != HandoffStatus::Open || !db.delete_open_handoff(handoff_id)? {
            return Err(CoreError::invalid(
                "handoff_id",
                match status {
                    HandoffStatus::Completed => "the handoff is complete; its receipt stands",
                    _ => "the signed offer was shown and the driver may have accepted it: scan the acceptance instead",
                },
            ));
        }
        tracing::info!(%handoff_id, "handoff cancelled");
        Ok(())
    }

    /// Confirms one package by its barcode. Unknown barcodes, barcodes
    /// scanned before and barcodes of a job outside this handoff are
    /// distinct errors and change nothing.
    #[tracing::instrument(skip(self))]
    pub fn scan(&self, handoff_id: Uuid, barcode: &str) -> Result<HandoffView> {
        codec::check_barcode(barcode)?;
        let mut db = self.db();
        let current = open_view(&db, handoff_id)?;
        let Some(job) = current.jobs.iter().find(|job| job.expected.iter().any(|b| b == barcode)) else {
            return Err(outside_handoff(&db, &current, barcode));
        };
        db.add_handoff_package(handoff_id, barcode, Some(job.job_id), "confirmed", None)?;
        view(&db, handoff_id)
    }

    /// Records a discrepancy: a package of the handoff that is missing, a
    /// scanned one that is damaged (it still changes hands), or an extra one
    /// that is on no manifest of the handoff (it does not).
    #[tracing::instrument(skip(self, note))]
    pub fn record_discrepancy(&self, handoff_id: Uuid, kind: DiscrepancyKind, barcode: &str, note: &str) -> Result<HandoffView> {
        codec::check_barcode(barcode)?;
        codec::check_note(note)?;
        let mut db = self.db();
        let current = open_view(&db, handoff_id)?;
        let job = current.jobs.iter().find(|job| job.expected.iter().any(|b| b == barcode));
        match (kind, job) {
            (DiscrepancyKind::Missing, Some(job)) => db.add_handoff_package(handoff_id, barcode, Some(job.job_id), "missing", Some(note))?,
            (DiscrepancyKind::Damaged, Some(_)) => db.mark_handoff_package_damaged(handoff_id, barcode, note)?,
            (DiscrepancyKind::Extra, None) => db.add_handoff_package(handoff_id, barcode, None, "extra", Some(note))?,
            (DiscrepancyKind::Extra, Some(job)) => {
                return Err(CoreError::invalid("barcode", format!("{barcode} is on the manifest of {}; it is not extra", job.reference)));
            }
            (DiscrepancyKind::Missing | DiscrepancyKind::Damaged, None) => return Err(outside_handoff(&db, &current, barcode)),
        }
        view(&db, handoff_id)
    }

    /// Why a job goes with fewer packages than expected; `None` clears it.
    pub fn set_partial_reason(&self, handoff_id: Uuid, job_id: Uuid, reason: Option<&str>) -> Result<HandoffView> {
        if let Some(reason) = reason {
            codec::check_note(reason)?;
        }
        let mut db = self.db();
        open_view(&db, handoff_id)?;
        db.set_handoff_partial_reason(handoff_id, job_id, reason)?;
        view(&db, handoff_id)
    }

    /// Signs the offer and returns the text for the QR code the driver
    /// scans. Once offered, scans are frozen and the same code comes back
    /// on every call (after a restart too). Refused, naming what is
    /// missing, while a job has nothing scanned or lacks a partial reason.
    #[tracing::instrument(skip(self))]
    pub fn offer_code(&self, handoff_id: Uuid) -> Result<String> {
        let db = self.db();
        let row = db.handoff(handoff_id)?;
        match row.status {
            HandoffStatus::Offered => {
                let offer = row.offer.ok_or_else(|| db.corrupt("an offered handoff without its offer"))?;
                return Ok(format!("{}{}", codec::TEXT_PREFIX, super::base45::encode(&offer)));
            }
            HandoffStatus::Completed => return Err(CoreError::HandoffReplayed { handoff_id: handoff_id.to_string() }),
            HandoffStatus::Open => {}
        }
        let view = view(&db, handoff_id)?;
        let direction = view.direction;
        let mut missing = Vec::new();
        let mut jobs = Vec::with_capacity(view.jobs.len());
        for job in view.jobs {
            if job.confirmed.is_empty() {
                missing.push(format!("{}: no package scanned", job.reference));
            }
            let mut discrepancies = job.discrepancies.clone();
            if let Some(reason) = &job.partial_reason {
                discrepancies.extend(job.unscanned.iter().map(|barcode| Discrepancy {
                    kind: DiscrepancyKind::Missing,
                    barcode: barcode.clone(),
                    note: reason.clone(),
                }));
            }
            let short = !job.unscanned.is_empty() || discrepancies.iter().any(|d| d.kind == DiscrepancyKind::Missing);
            if short && job.partial_reason.is_none() {
                missing.push(format!("{}: a reason for handing over {} of {} packages", job.reference, job.confirmed.len(), job.expected.len()));
            }
            let previous_receipt = match direction {
                Direction::Pickup => None,
                Direction::Return => latest_custody(&db, job.job_id, Direction::Pickup)?.map(|c| receipt_hash_bytes(&c)),
            };
            jobs.push(OfferJob {
                job_id: job.job_id,
                confirmed: job.confirmed,
                discrepancies,
                partial_reason: if short { job.partial_reason } else { None },
                previous_receipt,
            });
        }
        if !missing.is_empty() {
            return Err(CoreError::RequirementsNotMet { missing });
        }
        let content = OfferContent {
            direction,
            handoff_id,
            store_id: self.store_id,
            staff_key: keys::device_public_key(self.signer.as_ref())?,
            driver_key: DevicePublicKey::parse(&row.driver_key).map_err(|_| db.corrupt("a stored driver key"))?,
            created_at: receipt::whole_millis(self.clock.now()),
            jobs,
            extras: view.extras,
        };
        // Signing may wait on the platform's key store: not under the lock.
        drop(db);
        let offer = receipt::sign_offer(content, self.signer.as_ref())?;
        let bytes = receipt::offer_bytes(&offer)?;
        let mut db = self.db();
        db.set_handoff_offer(handoff_id, &bytes, &keys::sha256(&bytes))?;
        let stored = db.handoff(handoff_id)?;
        // Another call may have offered first; its offer is the one shown.
        let shown = stored.offer.ok_or_else(|| db.corrupt("an offered handoff without its offer"))?;
        tracing::info!(%handoff_id, bytes = shown.len(), "handoff offered");
        Ok(format!("{}{}", codec::TEXT_PREFIX, super::base45::encode(&shown)))
    }

    /// Scans the driver's acceptance: checks it answers one of this
    /// device's offers and carries the driver's signature, then keeps the
    /// receipt and queues it to send.
    #[tracing::instrument(skip_all)]
    pub fn complete_handoff(&self, acceptance_code: &str) -> Result<HandoffReceipt> {
        let acceptance = codec::expect_acceptance(acceptance_code)?;
        let mut db = self.db();
        let handoff_id = db.handoff_by_offer_hash(&acceptance.offer_hash)?.ok_or_else(|| CoreError::HandoffMismatch {
            reason: "the acceptance answers no offer made on this device".into(),
        })?;
        let row = db.handoff(handoff_id)?;
        if row.status == HandoffStatus::Completed {
            return Err(CoreError::HandoffReplayed { handoff_id: handoff_id.to_string() });
        }
        let offer = match codec::decode(row.offer.as_deref().ok_or_else(|| db.corrupt("an offered handoff without its offer"))?)? {
            Message::Offer(offer) => offer,
            _ => return Err(db.corrupt("a stored offer is not an offer")),
        };
        let receipt = HandoffReceipt::verified(offer, acceptance)?;
        db.complete_handoff(handoff_id, &stored_receipt(&receipt, self.clock.now())?)?;
        tracing::info!(%handoff_id, "handoff completed");
        Ok(receipt)
    }

    /// Receipts waiting to go to dispatch, as record bodies, oldest first.
    pub fn receipts_to_send(&self) -> Result<Vec<serde_json::Value>> {
        let db = self.db();
        db.receipts_to_send()?.iter().map(|stored| to_receipt(&db, stored)?.to_record_body()).collect()
    }

    /// Dispatch has the receipt with this hash (hex).
    pub fn mark_receipt_sent(&self, receipt_hash: &str) -> Result<()> {
        let hash: [u8; 32] = keys::from_hex(receipt_hash)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| CoreError::invalid("receipt_hash", "64 hex digits"))?;
        self.db().mark_receipt_sent(&hash)
    }

    /// The job's custody chain on this device, oldest first.
    pub fn custody(&self, job_id: Uuid) -> Result<Vec<JobCustody>> {
        custody_of(&self.db(), job_id)
    }

    pub(super) fn db(&self) -> MutexGuard<'_, Database> {
        self.db.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A receipt's rows for either device's database.
pub(crate) fn stored_receipt(receipt: &HandoffReceipt, at: chrono::DateTime<chrono::Utc>) -> Result<StoredReceipt> {
    let (offer, acceptance) = receipt.to_bytes()?;
    let content = &receipt.offer.content;
    Ok(StoredReceipt {
        receipt_hash: receipt.hash()?,
        handoff_id: content.handoff_id,
        direction: content.direction.as_str().to_owned(),
        offer,
        acceptance,
        recorded_at: at,
        custody: content.jobs.iter().map(|job| (job.job_id, job.confirmed.clone())).collect(),
    })
}

/// Reads a stored receipt back, checking both signatures again: a receipt
/// edited in the database does not pass for a good one.
pub(crate) fn to_receipt(db: &Database, stored: &StoredReceipt) -> Result<HandoffReceipt> {
    HandoffReceipt::from_bytes(&stored.offer, &stored.acceptance)
        .map_err(|e| db.corrupt(format!("stored receipt {}: {e}", keys::hex(&stored.receipt_hash))))
}

pub(crate) fn custody_of(db: &Database, job_id: Uuid) -> Result<Vec<JobCustody>> {
    db.job(job_id)?;
    let mut chain = Vec::new();
    for stored in db.receipts_for_job(job_id)? {
        if let Some(custody) = JobCustody::of(&to_receipt(db, &stored)?, job_id)? {
            chain.push(custody);
        }
    }
    Ok(chain)
}

/// The job's last custody record in `direction`, if any.
pub(crate) fn latest_custody(db: &Database, job_id: Uuid, direction: Direction) -> Result<Option<JobCustody>> {
    Ok(custody_of(db, job_id)?.into_iter().rev().find(|c| c.direction == direction))
}

pub(crate) fn receipt_hash_bytes(custody: &JobCustody) -> [u8; 32] {
    keys::from_hex(&custody.receipt_hash).and_then(|bytes| bytes.try_into().ok()).unwrap_or([0; 32])
}

fn open_view(db: &Database, handoff_id: Uuid) -> Result<HandoffView> {
    let view = view(db, handoff_id)?;
    if view.status != HandoffStatus::Open {
        return Err(CoreError::invalid("handoff_id", "the offer was already shown; scans are frozen"));
    }
    Ok(view)
}

/// The error for a barcode that is not on this handoff's manifests.
fn outside_handoff(db: &Database, view: &HandoffView, barcode: &str) -> CoreError {
    let in_handoff = |job_id: Uuid| view.jobs.iter().any(|job| job.job_id == job_id);
    let holder = db.summaries().ok().into_iter().flatten().find_map(|summary| {
        let job = db.job(summary.id).ok()?;
        job.packages.iter().any(|p| p.barcode == barcode).then_some(job)
    });
    match holder {
        Some(job) if !in_handoff(job.id) => CoreError::BarcodeOfOtherJob { barcode: barcode.to_owned(), job_reference: job.reference },
        _ => CoreError::UnknownBarcode { barcode: barcode.to_owned() },
    }
}

fn view(db: &Database, handoff_id: Uuid) -> Result<HandoffView> {
    let row: HandoffRow = db.handoff(handoff_id)?;
    let direction = Direction::parse(&row.direction).ok_or_else(|| db.corrupt(format!("handoff direction {:?}", row.direction)))?;
    let driver_key = DevicePublicKey::parse(&row.driver_key).map_err(|_| db.corrupt("a stored driver key"))?;
    let mut jobs = Vec::with_capacity(row.jobs.len());
    for (job_id, partial_reason) in &row.jobs {
        let job: Job = db.job(*job_id)?;
        let expected: Vec<String> = match direction {
            Direction::Pickup => job.packages.iter().map(|p| p.barcode.clone()).collect(),
            Direction::Return => latest_custody(db, *job_id, Direction::Pickup)?.map(|c| c.confirmed).unwrap_or_default(),
        };
        let packages = &row.packages;
        let job_id = *job_id;
        let mine = move |kind: &'static str| packages.iter().filter(move |p| p.job_id == Some(job_id) && p.kind == kind);
        let confirmed: Vec<String> = mine("confirmed").map(|p| p.barcode.clone()).collect();
        let mut discrepancies: Vec<Discrepancy> = mine("missing")
            .map(|p| Discrepancy { kind: DiscrepancyKind::Missing, barcode: p.barcode.clone(), note: p.note.clone().unwrap_or_default() })
            .collect();
        discrepancies.extend(mine("confirmed").filter_map(|p| {
            p.damaged.as_ref().map(|note| Discrepancy { kind: DiscrepancyKind::Damaged, barcode: p.barcode.clone(), note: note.clone() })
        }));
        let recorded: HashSet<&str> = mine("confirmed").chain(mine("missing")).map(|p| p.barcode.as_str()).collect();
        let unscanned = expected.iter().filter(|b| !recorded.contains(b.as_str())).cloned().collect();
        jobs.push(HandoffJobView {
            job_id,
            reference: job.reference,
            expected,
            confirmed,
            unscanned,
            discrepancies,
            partial_reason: partial_reason.clone(),
        });
    }
    let extras = row
        .packages
        .iter()
        .filter(|p| p.kind == "extra")
        .map(|p| Discrepancy { kind: DiscrepancyKind::Extra, barcode: p.barcode.clone(), note: p.note.clone().unwrap_or_default() })
        .collect();
    Ok(HandoffView { handoff_id, direction, status: row.status, driver_key_id: driver_key.key_id(), jobs, extras })
}
