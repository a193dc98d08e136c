//! `pod-churn`: proofs of delivery captured and sealed in a loop, for the
//! kill test: every line printed names a state the database must still
//! hold after the process is killed at any instant.

use crate::synthetic;
use doorstep_core::keys::SoftwareSigner;
use doorstep_core::{DeliveryMethod, DriverSession, SessionOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// Imports `batch` synthetic jobs at a time; for each, walks it to the
/// drop-off, captures a photo and the scans (printing `drafted <job>`), then
/// finalizes (printing `sealed <job>`). Runs until killed or `limit` seals.
pub fn run(db: &Path, batch: usize, limit: Option<u64>) -> Result<(), String> {
    let signer = Arc::new(SoftwareSigner::generate().map_err(|e| e.to_string())?);
    let options = SessionOptions { device_signer: Some(signer), ..SessionOptions::default() };
    let session = DriverSession::open_with(db, options).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let mut sealed = 0u64;
    loop {
        let document = synthetic::document(batch.max(1), 2, chrono::Utc::now());
        let imported = session.import_document(document.as_bytes()).map_err(|e| e.to_string())?;
        for job in &imported.jobs {
            let id = job.job_id;
            for step in &synthetic::HAPPY_PATH[..4] {
                session.apply(id, *step).map_err(|e| e.to_string())?;
            }
            session.start_pod(id).map_err(|e| e.to_string())?;
            let mut photo = vec![0u8; 64 * 1024];
            photo[..4].copy_from_slice(b"\xFF\xD8\xFF\xE0");
            photo[4..20].copy_from_slice(id.as_bytes());
            session.add_photo_bytes(id, &photo).map_err(|e| e.to_string())?;
            session.set_method(id, DeliveryMethod::LeftAtDoor).map_err(|e| e.to_string())?;
            for package in session.job(id).map_err(|e| e.to_string())?.packages {
                session.scan_package(id, &package.barcode).map_err(|e| e.to_string())?;
            }
            writeln!(out, "drafted {id}").and_then(|()| out.flush()).map_err(|e| e.to_string())?;
            session.finalize_pod(id, Some("no GPS fix in the soak test")).map_err(|e| e.to_string())?;
            writeln!(out, "sealed {id}").and_then(|()| out.flush()).map_err(|e| e.to_string())?;
            sealed += 1;
            if limit.is_some_and(|limit| sealed >= limit) {
                return Ok(());
            }
        }
    }
}

