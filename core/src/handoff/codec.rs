//! The handoff messages as bytes and as the text a QR code carries.
//!
//! Layout (version 1), every integer big-endian:
//!
//! ```text
//! message    = version:u8 (1) kind:u8 body
//! check-in   = kind 1: driver_key:33 at_ms:i64
//! offer      = kind 2: direction:u8 handoff_id:16 store_id:16 staff_key:33 driver_key:33
//!              created_ms:i64 job_count:u8 job* extra_count:u8 extra* signature:64
//! job        = job_id:16 flags:u8 [previous_receipt:32 if flags&1]
//!              confirmed_count:u8 text8* discrepancy_count:u8 discrepancy*
//!              [partial_reason:text8 if flags&2]
//! discrepancy= kind:u8 (0 missing, 1 damaged) barcode:text8 note:text8
//! extra      = barcode:text8 note:text8   (a package on no manifest of the offer)
//! acceptance = kind 3: offer_hash:32 accepted_ms:i64 signature:64
//! text8      = length:u8 UTF-8 bytes
//! ```
//!
//! Keys are compressed SEC1 P-256 points; signatures raw `r || s`. The text
//! form is `DH1:` followed by the Base45 of the bytes, all in the QR
//! alphanumeric set. The parser is strict: every length is bounded, every
//! enum value known, no byte left over; it never panics on any input.
//! Signatures are not checked here (that is `receipt`).

use super::base45;
use crate::keys::DevicePublicKey;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub const FORMAT_VERSION: u8 = 1;
/// What every handoff QR text starts with.
pub const TEXT_PREFIX: &str = "DH1:";

pub const MAX_JOBS: usize = 32;
pub const MAX_PACKAGES_PER_JOB: usize = 64;
pub const MAX_BARCODE_BYTES: usize = 64;
pub const MAX_NOTE_BYTES: usize = 140;
/// The largest message: its text (1,354 characters) still fits a version-25
/// QR code (117×117 modules) at error correction level M; anything denser
/// is hard for a phone camera to read off another phone's screen. A
/// realistic ten-package offer is about 430 bytes (version 16).
pub const MAX_MESSAGE_BYTES: usize = 900;

const KIND_CHECK_IN: u8 = 1;
const KIND_OFFER: u8 = 2;
const KIND_ACCEPTANCE: u8 = 3;
const FLAG_PREVIOUS: u8 = 1;
const FLAG_PARTIAL: u8 = 2;

/// Why scanned bytes or text are not a handoff message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("not a Doorstep handoff code (it must start with {TEXT_PREFIX})")]
    NotAHandoffCode,
    #[error("not Base45: {0}")]
    NotBase45(#[from] base45::Base45Error),
    #[error("handoff format version {0} is not supported")]
    UnsupportedVersion(u8),
    #[error("unknown handoff message kind {0}")]
    UnknownKind(u8),
    #[error("expected a handoff {expected}, found a {found}")]
    WrongKind { expected: &'static str, found: &'static str },
    #[error("the message ends inside {0}")]
    Truncated(&'static str),
    #[error("{0} bytes follow the end of the message")]
    TrailingBytes(usize),
    #[error("{field}: {reason}")]
    BadValue { field: &'static str, reason: String },
    #[error("the message is {0} bytes; a handoff code holds at most {MAX_MESSAGE_BYTES}")]
    TooLarge(usize),
}

impl From<CodecError> for crate::CoreError {
    fn from(err: CodecError) -> Self {
        crate::CoreError::invalid("handoff_code", err.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Store to driver, at pickup.
    Pickup,
    /// Driver back to store: a failed delivery or a withdrawn job.
    Return,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Pickup => "pickup",
            Direction::Return => "return",
        }
    }

    pub fn parse(text: &str) -> Option<Direction> {
        [Direction::Pickup, Direction::Return].into_iter().find(|d| d.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscrepancyKind {
    /// On the manifest, not handed over.
    Missing,
    /// Handed over, but damaged.
    Damaged,
    /// Physically there but on no manifest of this handoff; not handed over.
    Extra,
}

impl DiscrepancyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiscrepancyKind::Missing => "missing",
            DiscrepancyKind::Damaged => "damaged",
            DiscrepancyKind::Extra => "extra",
        }
    }

    pub fn parse(text: &str) -> Option<DiscrepancyKind> {
        [DiscrepancyKind::Missing, DiscrepancyKind::Damaged, DiscrepancyKind::Extra].into_iter().find(|k| k.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Discrepancy {
    pub kind: DiscrepancyKind,
    pub barcode: String,
    pub note: String,
}

/// One job's part of a handoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferJob {
    pub job_id: Uuid,
    /// The barcodes that changed hands, in scan order.
    pub confirmed: Vec<String>,
    pub discrepancies: Vec<Discrepancy>,
    /// Why not every package of the job changed hands.
    pub partial_reason: Option<String>,
    /// The hash of the receipt under which the giver got these packages
    /// (none at the store, where custody starts).
    pub previous_receipt: Option<[u8; 32]>,
}

/// What staff offer to hand over (or take back), before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferContent {
    pub direction: Direction,
    /// Random per handoff: also the nonce that makes every offer unique.
    pub handoff_id: Uuid,
    pub store_id: Uuid,
    pub staff_key: DevicePublicKey,
    pub driver_key: DevicePublicKey,
    /// Millisecond precision: what the bytes hold.
    pub created_at: DateTime<Utc>,
    pub jobs: Vec<OfferJob>,
    /// Packages that turned up but belong to no job of this handoff; each
    /// is a discrepancy of kind `Extra` and does not change hands.
    pub extras: Vec<Discrepancy>,
}

/// A driver's device announcing its key to the staff device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIn {
    pub driver_key: DevicePublicKey,
    pub at: DateTime<Utc>,
}

/// An offer with its staff signature, and the exact bytes that were signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedOffer {
    pub content: OfferContent,
    pub signature: [u8; 64],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptance {
    pub offer_hash: [u8; 32],
    pub accepted_at: DateTime<Utc>,
    pub signature: [u8; 64],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    CheckIn(CheckIn),
    Offer(SignedOffer),
    Acceptance(Acceptance),
}

impl Message {
    fn name(&self) -> &'static str {
        match self {
            Message::CheckIn(_) => "check-in",
            Message::Offer(_) => "offer",
            Message::Acceptance(_) => "acceptance",
        }
    }
}

// ---- encoding ----

/// The offer's bytes up to (not including) the signature: what staff sign.
pub fn offer_content_bytes(content: &OfferContent) -> Result<Vec<u8>, CodecError> {
    check_content(content)?;
    let mut out = vec![FORMAT_VERSION, KIND_OFFER, direction_byte(content.direction)];
    out.extend_from_slice(content.handoff_id.as_bytes());
    out.extend_from_slice(content.store_id.as_bytes());
    out.extend_from_slice(&content.staff_key.to_compressed());
    out.extend_from_slice(&content.driver_key.to_compressed());
    out.extend_from_slice(&content.created_at.timestamp_millis().to_be_bytes());
    out.push(content.jobs.len() as u8);
    for job in &content.jobs {
        out.extend_from_slice(job.job_id.as_bytes());
        let flags = if job.previous_receipt.is_some() { FLAG_PREVIOUS } else { 0 }
            | if job.partial_reason.is_some() { FLAG_PARTIAL } else { 0 };
        out.push(flags);
        if let Some(previous) = &job.previous_receipt {
            out.extend_from_slice(previous);
        }
        out.push(job.confirmed.len() as u8);
        for barcode in &job.confirmed {
            push_text(&mut out, barcode);
        }
        out.push(job.discrepancies.len() as u8);
        for discrepancy in &job.discrepancies {
            out.push(discrepancy_byte(discrepancy.kind));
            push_text(&mut out, &discrepancy.barcode);
            push_text(&mut out, &discrepancy.note);
        }
        if let Some(reason) = &job.partial_reason {
            push_text(&mut out, reason);
        }
    }
    out.push(content.extras.len() as u8);
    for extra in &content.extras {
        push_text(&mut out, &extra.barcode);
        push_text(&mut out, &extra.note);
    }
    if out.len() + 64 > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge(out.len() + 64));
    }
    Ok(out)
}

pub fn encode(message: &Message) -> Result<Vec<u8>, CodecError> {
    match message {
        Message::CheckIn(check_in) => {
            let mut out = vec![FORMAT_VERSION, KIND_CHECK_IN];
            out.extend_from_slice(&check_in.driver_key.to_compressed());
            out.extend_from_slice(&check_in.at.timestamp_millis().to_be_bytes());
            Ok(out)
        }
        Message::Offer(offer) => {
            let mut out = offer_content_bytes(&offer.content)?;
            out.extend_from_slice(&offer.signature);
            Ok(out)
        }
        Message::Acceptance(acceptance) => Ok(acceptance_bytes(acceptance).to_vec()),
    }
}

/// The acceptance's bytes before its signature: what the driver signs.
pub fn acceptance_content_bytes(offer_hash: &[u8; 32], accepted_at: DateTime<Utc>) -> [u8; 42] {
    let mut out = [0u8; 42];
    out[0] = FORMAT_VERSION;
    out[1] = KIND_ACCEPTANCE;
    out[2..34].copy_from_slice(offer_hash);
    out[34..42].copy_from_slice(&accepted_at.timestamp_millis().to_be_bytes());
    out
}

fn acceptance_bytes(acceptance: &Acceptance) -> [u8; 106] {
    let mut out = [0u8; 106];
    out[..42].copy_from_slice(&acceptance_content_bytes(&acceptance.offer_hash, acceptance.accepted_at));
    out[42..].copy_from_slice(&acceptance.signature);
    out
}

/// The text a QR code carries.
pub fn to_text(message: &Message) -> Result<String, CodecError> {
    Ok(format!("{TEXT_PREFIX}{}", base45::encode(&encode(message)?)))
}

fn check_content(content: &OfferContent) -> Result<(), CodecError> {
    let bad = |field, reason: String| Err(CodecError::BadValue { field, reason });
    if content.jobs.is_empty() || content.jobs.len() > MAX_JOBS {
        return bad("jobs", format!("an offer holds 1 to {MAX_JOBS} jobs, not {}", content.jobs.len()));
    }
    for job in &content.jobs {
        if job.confirmed.len() > MAX_PACKAGES_PER_JOB || job.discrepancies.len() > MAX_PACKAGES_PER_JOB {
            return bad("packages", format!("a job holds at most {MAX_PACKAGES_PER_JOB} packages"));
        }
        for barcode in job.confirmed.iter().chain(job.discrepancies.iter().map(|d| &d.barcode)) {
            check_barcode(barcode)?;
        }
        for note in job.discrepancies.iter().map(|d| &d.note).chain(job.partial_reason.iter()) {
            check_note(note)?;
        }
        if job.discrepancies.iter().any(|d| d.kind == DiscrepancyKind::Extra) {
            return bad("discrepancies", "an extra package belongs to no job; list it among the offer's extras".into());
        }
    }
    if content.extras.len() > MAX_PACKAGES_PER_JOB {
        return bad("extras", format!("at most {MAX_PACKAGES_PER_JOB} extra packages"));
    }
    for extra in &content.extras {
        if extra.kind != DiscrepancyKind::Extra {
            return bad("extras", "only packages of kind extra are listed there".into());
        }
        check_barcode(&extra.barcode)?;
        check_note(&extra.note)?;
    }
    Ok(())
}

pub fn check_barcode(barcode: &str) -> Result<(), CodecError> {
    if barcode.is_empty() || barcode.len() > MAX_BARCODE_BYTES || barcode.chars().any(char::is_control) {
        return Err(CodecError::BadValue {
            field: "barcode",
            reason: format!("a barcode is 1 to {MAX_BARCODE_BYTES} bytes of printable text"),
        });
    }
    Ok(())
}

pub fn check_note(note: &str) -> Result<(), CodecError> {
    if note.trim().is_empty() || note.len() > MAX_NOTE_BYTES || note.chars().any(char::is_control) {
        return Err(CodecError::BadValue {
            field: "note",
            reason: format!("a reason or note is 1 to {MAX_NOTE_BYTES} bytes of printable text"),
        });
    }
    Ok(())
}

fn push_text(out: &mut Vec<u8>, text: &str) {
    out.push(text.len() as u8);
    out.extend_from_slice(text.as_bytes());
}

fn direction_byte(direction: Direction) -> u8 {
    match direction {
        Direction::Pickup => 0,
        Direction::Return => 1,
    }
}

fn discrepancy_byte(kind: DiscrepancyKind) -> u8 {
    match kind {
        DiscrepancyKind::Missing => 0,
        DiscrepancyKind::Damaged => 1,
        DiscrepancyKind::Extra => 2,
    }
}

// ---- decoding ----

/// Parses scanned text: the prefix, Base45, then the bytes.
pub fn from_text(text: &str) -> Result<Message, CodecError> {
    // Scanners sometimes keep a trailing newline; nothing else is forgiven.
    let text = text.strip_suffix('\n').unwrap_or(text);
    let body = text.strip_prefix(TEXT_PREFIX).ok_or(CodecError::NotAHandoffCode)?;
    // Base45 grows bytes by 3/2; refuse oversized texts before decoding.
    if body.len() > MAX_MESSAGE_BYTES * 3 / 2 + 2 {
        return Err(CodecError::TooLarge(body.len() * 2 / 3));
    }
    decode(&base45::decode(body)?)
}

/// Parses scanned text that must be a message of one kind.
pub fn expect_offer(text: &str) -> Result<SignedOffer, CodecError> {
    match from_text(text)? {
        Message::Offer(offer) => Ok(offer),
        other => Err(CodecError::WrongKind { expected: "offer", found: other.name() }),
    }
}

pub fn expect_acceptance(text: &str) -> Result<Acceptance, CodecError> {
    match from_text(text)? {
        Message::Acceptance(acceptance) => Ok(acceptance),
        other => Err(CodecError::WrongKind { expected: "acceptance", found: other.name() }),
    }
}

pub fn expect_check_in(text: &str) -> Result<CheckIn, CodecError> {
    match from_text(text)? {
        Message::CheckIn(check_in) => Ok(check_in),
        other => Err(CodecError::WrongKind { expected: "check-in", found: other.name() }),
    }
}

pub fn decode(bytes: &[u8]) -> Result<Message, CodecError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge(bytes.len()));
    }
    let mut reader = Reader { bytes, at: 0 };
    let version = reader.u8("version")?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnsupportedVersion(version));
    }
    let message = match reader.u8("kind")? {
        KIND_CHECK_IN => Message::CheckIn(CheckIn { driver_key: reader.key("driver key")?, at: reader.time("check-in time")? }),
        KIND_OFFER => Message::Offer(read_offer(&mut reader)?),
        KIND_ACCEPTANCE => Message::Acceptance(Acceptance {
            offer_hash: reader.array("offer hash")?,
            accepted_at: reader.time("acceptance time")?,
            signature: reader.array("acceptance signature")?,
        }),
        other => return Err(CodecError::UnknownKind(other)),
    };
    match bytes.len() - reader.at {
        0 => Ok(message),
        extra => Err(CodecError::TrailingBytes(extra)),
    }
}

fn read_offer(reader: &mut Reader<'_>) -> Result<SignedOffer, CodecError> {
    let direction = match reader.u8("direction")? {
        0 => Direction::Pickup,
        1 => Direction::Return,
        other => return Err(CodecError::BadValue { field: "direction", reason: format!("unknown value {other}") }),
    };
    let handoff_id = Uuid::from_bytes(reader.array("handoff id")?);
    let store_id = Uuid::from_bytes(reader.array("store id")?);
    let staff_key = reader.key("staff key")?;
    let driver_key = reader.key("driver key")?;
    let created_at = reader.time("offer time")?;
    let job_count = reader.u8("job count")? as usize;
    if job_count == 0 || job_count > MAX_JOBS {
        return Err(CodecError::BadValue { field: "jobs", reason: format!("an offer holds 1 to {MAX_JOBS} jobs, not {job_count}") });
    }
    let mut jobs = Vec::with_capacity(job_count);
    for _ in 0..job_count {
        let job_id = Uuid::from_bytes(reader.array("job id")?);
        let flags = reader.u8("job flags")?;
        if flags & !(FLAG_PREVIOUS | FLAG_PARTIAL) != 0 {
            return Err(CodecError::BadValue { field: "job flags", reason: format!("unknown flags {flags:#04x}") });
        }
        let previous_receipt = if flags & FLAG_PREVIOUS != 0 { Some(reader.array("previous receipt")?) } else { None };
        let confirmed = (0..reader.count("confirmed count")?).map(|_| reader.barcode()).collect::<Result<_, _>>()?;
        let discrepancies = (0..reader.count("discrepancy count")?)
            .map(|_| {
                let kind = match reader.u8("discrepancy kind")? {
                    0 => DiscrepancyKind::Missing,
                    1 => DiscrepancyKind::Damaged,
                    other => {
                        return Err(CodecError::BadValue { field: "discrepancy kind", reason: format!("unknown value {other}") });
                    }
                };
                Ok(Discrepancy { kind, barcode: reader.barcode()?, note: reader.note()? })
            })
            .collect::<Result<_, _>>()?;
        let partial_reason = if flags & FLAG_PARTIAL != 0 { Some(reader.note()?) } else { None };
        jobs.push(OfferJob { job_id, confirmed, discrepancies, partial_reason, previous_receipt });
    }
    let extras: Vec<Discrepancy> = (0..reader.count("extra count")?)
        .map(|_| Ok(Discrepancy { kind: DiscrepancyKind::Extra, barcode: reader.barcode()?, note: reader.note()? }))
        .collect::<Result<_, CodecError>>()?;
    let signature = reader.array("offer signature")?;
    Ok(SignedOffer {
        content: OfferContent { direction, handoff_id, store_id, staff_key, driver_key, created_at, jobs, extras },
        signature,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], CodecError> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len()).ok_or(CodecError::Truncated(what))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.take(1, what)?[0])
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn count(&mut self, what: &'static str) -> Result<usize, CodecError> {
        let count = self.u8(what)? as usize;
        if count > MAX_PACKAGES_PER_JOB {
            return Err(CodecError::BadValue { field: what, reason: format!("at most {MAX_PACKAGES_PER_JOB}, not {count}") });
        }
        Ok(count)
    }

    fn key(&mut self, what: &'static str) -> Result<DevicePublicKey, CodecError> {
        let bytes: [u8; 33] = self.array(what)?;
        // Only the compressed form is written; accepting others would let
        // two encodings stand for one signed offer.
        if bytes[0] != 2 && bytes[0] != 3 {
            return Err(CodecError::BadValue { field: what, reason: "not a compressed P-256 point".into() });
        }
        DevicePublicKey::parse(&bytes).map_err(|_| CodecError::BadValue { field: what, reason: "not a P-256 public key".into() })
    }

    fn time(&mut self, what: &'static str) -> Result<DateTime<Utc>, CodecError> {
        let millis = i64::from_be_bytes(self.array(what)?);
        // 2020-01-01 to 2200-01-01: anything else is a broken clock or junk.
        if !(1_577_836_800_000..=7_258_118_400_000).contains(&millis) {
            return Err(CodecError::BadValue { field: what, reason: format!("{millis} ms is not a plausible time") });
        }
        DateTime::from_timestamp_millis(millis).ok_or(CodecError::BadValue { field: what, reason: "out of range".into() })
    }

    fn text(&mut self, what: &'static str) -> Result<String, CodecError> {
        let length = self.u8(what)? as usize;
        let bytes = self.take(length, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CodecError::BadValue { field: what, reason: "not UTF-8".into() })
    }

    fn barcode(&mut self) -> Result<String, CodecError> {
        let barcode = self.text("barcode")?;
        check_barcode(&barcode)?;
        Ok(barcode)
    }

    fn note(&mut self) -> Result<String, CodecError> {
        let note = self.text("note")?;
        check_note(&note)?;
        Ok(note)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keys::SoftwareSigner;
    use proptest::prelude::*;

    pub(crate) fn sample_content(packages: usize) -> OfferContent {
        let staff = SoftwareSigner::from_secret(&[7u8; 32]).unwrap().device_public_key();
        let driver = SoftwareSigner::from_secret(&[9u8; 32]).unwrap().device_public_key();
        let jobs = (0..packages.div_ceil(4).max(1))
            .map(|j| OfferJob {
                job_id: Uuid::from_u128(j as u128 + 1),
                confirmed: (0..packages.saturating_sub(j * 4).min(4)).map(|p| format!("PKG-{j:03}-{p:05}")).collect(),
                discrepancies: Vec::new(),
                partial_reason: None,
                previous_receipt: None,
            })
            .collect();
        OfferContent {
            direction: Direction::Pickup,
            handoff_id: Uuid::from_u128(0xfeed),
            store_id: Uuid::from_u128(0x5702e),
            staff_key: staff,
            driver_key: driver,
            created_at: "2026-11-23T17:05:00.123Z".parse().unwrap(),
            jobs,
            extras: Vec::new(),
        }
    }

    #[test]
    fn every_message_kind_round_trips_through_text() {
        let mut content = sample_content(10);
        content.jobs[0].discrepancies.push(Discrepancy {
            kind: DiscrepancyKind::Missing,
            barcode: "PKG-000-00009".into(),
            note: "not found on the shelf".into(),
        });
        content.jobs[0].partial_reason = Some("customer agreed to a split delivery".into());
        content.jobs[1].previous_receipt = Some([0xab; 32]);
        content.extras.push(Discrepancy { kind: DiscrepancyKind::Extra, barcode: "XX-1".into(), note: "no label".into() });
        let messages = [
            Message::Offer(SignedOffer { content, signature: [3u8; 64] }),
            Message::Acceptance(Acceptance {
                offer_hash: [5u8; 32],
                accepted_at: "2026-11-23T17:06:00Z".parse().unwrap(),
                signature: [6u8; 64],
            }),
            Message::CheckIn(CheckIn {
                driver_key: SoftwareSigner::from_secret(&[9u8; 32]).unwrap().device_public_key(),
                at: "2026-11-23T17:04:00Z".parse().unwrap(),
            }),
        ];
        for message in messages {
            let text = to_text(&message).unwrap();
            assert!(text.starts_with(TEXT_PREFIX));
            assert_eq!(from_text(&text).unwrap(), message);
            assert_eq!(from_text(&format!("{text}\n")).unwrap(), message, "a scanner's trailing newline");
        }
    }

    #[test]
    fn malformed_messages_are_refused_by_kind() {
        let offer = encode(&Message::Offer(SignedOffer { content: sample_content(3), signature: [1; 64] })).unwrap();
        assert_eq!(decode(&offer[..offer.len() - 1]), Err(CodecError::Truncated("offer signature")));
        let mut longer = offer.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(CodecError::TrailingBytes(1)));
        let mut version = offer.clone();
        version[0] = 2;
        assert_eq!(decode(&version), Err(CodecError::UnsupportedVersion(2)));
        let mut kind = offer.clone();
        kind[1] = 9;
        assert_eq!(decode(&kind), Err(CodecError::UnknownKind(9)));
        let mut direction = offer.clone();
        direction[2] = 7;
        assert!(matches!(decode(&direction), Err(CodecError::BadValue { field: "direction", .. })));
        assert_eq!(from_text("HELLO"), Err(CodecError::NotAHandoffCode));
        assert!(matches!(from_text("DH1:abc"), Err(CodecError::NotBase45(_))));
        assert!(matches!(
            expect_acceptance(&to_text(&Message::Offer(SignedOffer { content: sample_content(1), signature: [1; 64] })).unwrap()),
            Err(CodecError::WrongKind { expected: "acceptance", found: "offer" })
        ));
    }

    #[test]
    fn offers_that_would_not_fit_a_readable_code_are_refused_when_built() {
        let mut content = sample_content(4);
        content.jobs[0].confirmed = (0..40).map(|p| format!("{p:0>60}")).collect();
        assert!(matches!(offer_content_bytes(&content), Err(CodecError::TooLarge(_))));
        content.jobs.clear();
        assert!(matches!(offer_content_bytes(&content), Err(CodecError::BadValue { field: "jobs", .. })));
    }

    fn any_offer() -> impl Strategy<Value = SignedOffer> {
        let job = (
            any::<u128>(),
            proptest::collection::vec("[A-Z0-9-]{1,20}", 0..6),
            proptest::collection::vec((0u8..2, "[A-Z0-9]{1,12}", "[a-z ]{0,20}[a-z]"), 0..3),
            proptest::option::of("[a-z]{1,30}"),
            proptest::option::of(any::<[u8; 32]>()),
        )
            .prop_map(|(id, confirmed, discrepancies, partial_reason, previous_receipt)| OfferJob {
                job_id: Uuid::from_u128(id),
                confirmed,
                discrepancies: discrepancies
                    .into_iter()
                    .map(|(kind, barcode, note)| Discrepancy {
                        kind: [DiscrepancyKind::Missing, DiscrepancyKind::Damaged][kind as usize],
                        barcode,
                        note,
                    })
                    .collect(),
                partial_reason,
                previous_receipt,
            });
        let extras = proptest::collection::vec(("[A-Z0-9]{1,12}", "[a-z]{1,20}"), 0..3);
        (proptest::collection::vec(job, 1..5), extras, any::<bool>(), any::<u128>(), 1_600_000_000_000i64..4_000_000_000_000, any::<[u8; 64]>())
            .prop_map(|(jobs, extras, returning, id, millis, signature)| {
                let mut content = sample_content(1);
                content.jobs = jobs;
                content.extras = extras
                    .into_iter()
                    .map(|(barcode, note)| Discrepancy { kind: DiscrepancyKind::Extra, barcode, note })
                    .collect();
                content.direction = if returning { Direction::Return } else { Direction::Pickup };
                content.handoff_id = Uuid::from_u128(id);
                content.created_at = DateTime::from_timestamp_millis(millis).unwrap();
                SignedOffer { content, signature }
            })
    }

    proptest! {
        #[test]
        fn offers_round_trip(offer in any_offer()) {
            let message = Message::Offer(offer);
            let bytes = encode(&message).unwrap();
            prop_assert_eq!(decode(&bytes).unwrap(), message.clone());
            prop_assert_eq!(from_text(&to_text(&message).unwrap()).unwrap(), message);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn random_bytes_behind_a_valid_header_never_panic(kind in 1u8..4, bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut message = vec![FORMAT_VERSION, kind];
            message.extend(bytes);
            let _ = decode(&message);
        }

        #[test]
        fn random_text_never_panics(text in "(DH1:)?[0-9A-Z $%*+./:-]{0,300}") {
            let _ = from_text(&text);
        }

        #[test]
        fn any_changed_byte_of_an_offer_is_refused_or_decodes_to_something_else(offer in any_offer(), index in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let message = Message::Offer(offer);
            let mut bytes = encode(&message).unwrap();
            let at = index.index(bytes.len());
            bytes[at] ^= flip;
            if let Ok(decoded) = decode(&bytes) {
                prop_assert_ne!(decoded, message);
            }
        }
    }
}
