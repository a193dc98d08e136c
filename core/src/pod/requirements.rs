//! Which of the server's proof-of-delivery requirements a draft does not
//! yet meet. Pure: a job and a draft in, the unmet requirements out.

use super::draft::PodDraft;
use crate::jobs::{DeliveryMethod, Job, PackageFlag};

/// One unmet requirement. [`Requirement::code`] is the stable name that
/// `CoreError::RequirementsNotMet` carries and shells switch on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Photos { have: u32, need: u32 },
    Signature,
    RecipientName,
    /// Packages of the manifest not scanned yet, by barcode.
    PackageScans { missing: Vec<String> },
    Pin,
    /// The PIN was entered wrong too often; this delivery cannot be proven.
    PinLockedOut,
    AgeCheck,
    /// No delivery method chosen yet.
    DeliveryMethod,
    /// The chosen method is not among the job's allowed methods.
    MethodNotAllowed { method: DeliveryMethod },
    /// PIN, age-checked and age-restricted deliveries go to a person, never
    /// left unattended (at the door, in a locker).
    MethodUnattended { method: DeliveryMethod },
}

impl Requirement {
    pub fn code(&self) -> &'static str {
        match self {
            Requirement::Photos { .. } => "photos",
            Requirement::Signature => "signature",
            Requirement::RecipientName => "recipient_name",
            Requirement::PackageScans { .. } => "package_scans",
            Requirement::Pin => "pin",
            Requirement::PinLockedOut => "pin_locked_out",
            Requirement::AgeCheck => "age_check",
            Requirement::DeliveryMethod => "delivery_method",
            Requirement::MethodNotAllowed { .. } => "method_not_allowed",
            Requirement::MethodUnattended { .. } => "method_unattended",
        }
    }
}

/// Methods that leave the packages with nobody.
pub fn is_unattended(method: DeliveryMethod) -> bool {
    matches!(method, DeliveryMethod::LeftAtDoor | DeliveryMethod::Locker)
}

/// A job whose packages must reach a person: a PIN, an age check, or an
/// age-restricted package.
pub fn needs_attended_handover(job: &Job) -> bool {
    job.pod.pin.is_some()
        || job.pod.minimum_age.is_some()
        || job.packages.iter().any(|p| p.has_flag(PackageFlag::AgeRestricted))
}

/// Every requirement of `job` that `draft` does not meet, in a fixed order;
/// empty when the delivery can be sealed.
pub fn unmet_requirements(job: &Job, draft: &PodDraft) -> Vec<Requirement> {
    let pod = &job.pod;
    let mut unmet = Vec::new();
    match draft.method {
        None => unmet.push(Requirement::DeliveryMethod),
        Some(method) if !pod.allowed_methods.contains(&method) => unmet.push(Requirement::MethodNotAllowed { method }),
        Some(method) if is_unattended(method) && needs_attended_handover(job) => {
            unmet.push(Requirement::MethodUnattended { method })
        }
        Some(_) => {}
    }
    let have = draft.photos.len() as u32;
    if have < pod.min_photos {
        unmet.push(Requirement::Photos { have, need: pod.min_photos });
    }
    if pod.signature && draft.signature.is_none() {
        unmet.push(Requirement::Signature);
    }
    if pod.recipient_name && draft.recipient_name.is_none() {
        unmet.push(Requirement::RecipientName);
    }
    if pod.scan_all_packages {
        let missing: Vec<String> = job
            .packages
            .iter()
            .filter(|p| !draft.scans.iter().any(|s| s.barcode == p.barcode))
            .map(|p| p.barcode.clone())
            .collect();
        if !missing.is_empty() {
            unmet.push(Requirement::PackageScans { missing });
        }
    }
    if let Some(pin) = &pod.pin {
        if draft.pin.locked_out(pin.max_attempts) {
            unmet.push(Requirement::PinLockedOut);
        } else if !draft.pin.verified {
            unmet.push(Requirement::Pin);
        }
    }
    if let Some(minimum_age) = pod.minimum_age {
        let passed = draft
            .age_check
            .is_some_and(|check| check.id_checked && check.meets_minimum && check.minimum_age >= minimum_age);
        if !passed {
            unmet.push(Requirement::AgeCheck);
        }
    }
    unmet
}
