//! The bytes on the air: frames of the door protocol and their
//! fragmentation into ATT payloads, for any ATT MTU from 23 to 517.
//!
//! Every ATT write or notification carries one fragment: a header byte
//! (bit 7 set on the last fragment of a frame, bits 0–6 the fragment's
//! index from 0) and up to MTU − 4 bytes of the frame. A frame is at most
//! [`MAX_FRAME_LEN`] bytes. Parsers here are strict: a frame is exactly its
//! fields, nothing missing, nothing after.

use super::grant::{Grant, GrantFormatError, REVOCATION_LEN, RevocationNotice};

pub const MIN_ATT_MTU: u16 = 23;
pub const MAX_ATT_MTU: u16 = 517;
pub const MAX_FRAME_LEN: usize = 512;
const ATT_HEADER: usize = 3;
const FINAL: u8 = 0x80;

pub const PROTOCOL_VERSION: u8 = 1;
pub const NONCE_LEN: usize = 16;

pub const TYPE_CHALLENGE: u8 = 0x01;
pub const TYPE_RESPONSE: u8 = 0x02;
pub const TYPE_RESULT: u8 = 0x03;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("ATT MTU {0} is outside 23 to 517")]
    BadMtu(u16),
    #[error("frame of {0} bytes is longer than 512")]
    TooLarge(usize),
    #[error("empty fragment")]
    EmptyFragment,
    #[error("fragment {got} arrived where {expected} was due")]
    OutOfOrder { expected: u8, got: u8 },
    #[error("frame is truncated")]
    Truncated,
    #[error("bytes after the end of the frame")]
    TrailingBytes,
    #[error("unknown frame type {0:#04x}")]
    UnknownType(u8),
    #[error("protocol version {0} is not supported")]
    UnsupportedVersion(u8),
    #[error("bad grant: {0}")]
    Grant(GrantFormatError),
    #[error("bad field: {0}")]
    BadField(&'static str),
}

/// Splits a frame into ATT payloads for `mtu`.
pub fn fragment(frame: &[u8], mtu: u16) -> Result<Vec<Vec<u8>>, FrameError> {
    if !(MIN_ATT_MTU..=MAX_ATT_MTU).contains(&mtu) {
        return Err(FrameError::BadMtu(mtu));
    }
    if frame.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(frame.len()));
    }
    let chunk = usize::from(mtu) - ATT_HEADER - 1;
    let pieces: Vec<&[u8]> = if frame.is_empty() { vec![&[][..]] } else { frame.chunks(chunk).collect() };
    let last = pieces.len() - 1;
    Ok(pieces
        .into_iter()
        .enumerate()
        .map(|(index, piece)| {
            let mut out = Vec::with_capacity(piece.len() + 1);
            out.push(index as u8 | if index == last { FINAL } else { 0 });
            out.extend_from_slice(piece);
            out
        })
        .collect())
}

/// Puts fragments back together, refusing gaps, reordering and oversize.
#[derive(Debug, Default)]
pub struct Reassembler {
    buffer: Vec<u8>,
    next_index: u8,
}

impl Reassembler {
    /// Takes one ATT payload; returns the frame once its last fragment is in.
    /// After an error the partial frame is dropped.
    pub fn push(&mut self, payload: &[u8]) -> Result<Option<Vec<u8>>, FrameError> {
        let outcome = self.accept(payload);
        if !matches!(outcome, Ok(None)) {
            self.buffer.clear();
            self.next_index = 0;
        }
        outcome
    }

    fn accept(&mut self, payload: &[u8]) -> Result<Option<Vec<u8>>, FrameError> {
        let (&header, body) = payload.split_first().ok_or(FrameError::EmptyFragment)?;
        let index = header & !FINAL;
        if index != self.next_index {
            return Err(FrameError::OutOfOrder { expected: self.next_index, got: index });
        }
        if self.buffer.len() + body.len() > MAX_FRAME_LEN {
            return Err(FrameError::TooLarge(self.buffer.len() + body.len()));
        }
        self.buffer.extend_from_slice(body);
        if header & FINAL != 0 {
            return Ok(Some(std::mem::take(&mut self.buffer)));
        }
        self.next_index = self.next_index.checked_add(1).filter(|i| *i <= 0x7f).ok_or(FrameError::TooLarge(MAX_FRAME_LEN + 1))?;
        Ok(None)
    }

    pub fn in_progress(&self) -> bool {
        self.next_index > 0
    }
}

/// Lock → phone: the fresh challenge sent when the phone subscribes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub version: u8,
    pub lock_id: u32,
    pub door_id: u32,
    pub nonce: [u8; NONCE_LEN],
    /// The lock's own time, Unix seconds: it judges grants by this.
    pub lock_time: u32,
    /// The newest revocation epoch the lock knows.
    pub epoch: u16,
}

pub const CHALLENGE_LEN: usize = 32;

impl Challenge {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CHALLENGE_LEN);
        out.push(TYPE_CHALLENGE);
        out.push(self.version);
        out.extend_from_slice(&self.lock_id.to_be_bytes());
        out.extend_from_slice(&self.door_id.to_be_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.lock_time.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out
    }

    pub fn parse(frame: &[u8]) -> Result<Challenge, FrameError> {
        expect_type(frame, TYPE_CHALLENGE)?;
        exact_len(frame, CHALLENGE_LEN)?;
        if frame[1] != PROTOCOL_VERSION {
            return Err(FrameError::UnsupportedVersion(frame[1]));
        }
        Ok(Challenge {
            version: frame[1],
            lock_id: be32(&frame[2..6]),
            door_id: be32(&frame[6..10]),
            nonce: frame[10..26].try_into().expect("16 bytes"),
            lock_time: be32(&frame[26..30]),
            epoch: u16::from_be_bytes([frame[30], frame[31]]),
        })
    }
}

/// What the phone asks the lock to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Action {
    Unlock = 1,
}

impl Action {
    fn from_code(code: u8) -> Option<Action> {
        match code {
            1 => Some(Action::Unlock),
            _ => None,
        }
    }
}

/// Phone → lock: the grant, the counter and action, the device's signature
/// (with the two recovery bits that let the lock recover the device key
/// from it), and optionally a revocation notice the lock has not seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub grant: Grant,
    pub counter: u32,
    pub action: Action,
    /// Bit 0: R's y is odd; bit 1: R's x was reduced mod n.
    pub recovery: u8,
    pub signature: [u8; 64],
    pub notice: Option<RevocationNotice>,
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.grant.encoded().len() + 69 + REVOCATION_LEN);
        out.push(TYPE_RESPONSE);
        out.extend_from_slice(self.grant.encoded());
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.push(self.action as u8 | (self.recovery & 0b11) << 6);
        out.extend_from_slice(&self.signature);
        if let Some(notice) = &self.notice {
            out.extend_from_slice(notice.encoded());
        }
        out
    }

    pub fn parse(frame: &[u8]) -> Result<Response, FrameError> {
        if frame.len() > MAX_FRAME_LEN {
            return Err(FrameError::TooLarge(frame.len()));
        }
        expect_type(frame, TYPE_RESPONSE)?;
        let (grant, used) = Grant::parse_prefix(&frame[1..]).map_err(|e| match e {
            GrantFormatError::Truncated => FrameError::Truncated,
            other => FrameError::Grant(other),
        })?;
        let rest = &frame[1 + used..];
        if rest.len() < 69 {
            return Err(FrameError::Truncated);
        }
        let action_byte = rest[4];
        let action = Action::from_code(action_byte & 0x3f).ok_or(FrameError::BadField("action"))?;
        let notice = match rest.len() - 69 {
            0 => None,
            REVOCATION_LEN => Some(RevocationNotice::parse(&rest[69..]).map_err(FrameError::Grant)?),
            n if n < REVOCATION_LEN => return Err(FrameError::Truncated),
            _ => return Err(FrameError::TrailingBytes),
        };
        Ok(Response {
            grant,
            counter: be32(&rest[..4]),
            action,
            recovery: action_byte >> 6,
            signature: rest[5..69].try_into().expect("64 bytes"),
            notice,
        })
    }
}

/// Lock → phone: the verdict and the lock's MAC'd audit record of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultFrame {
    /// 0 when the door opened, otherwise a [`super::Reason`] code.
    pub code: u8,
    pub audit: super::audit::AuditRecord,
}

pub const RESULT_LEN: usize = 2 + super::audit::AUDIT_RECORD_LEN;

impl ResultFrame {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RESULT_LEN);
        out.push(TYPE_RESULT);
        out.push(self.code);
        out.extend_from_slice(&self.audit.encode());
        out
    }

    pub fn parse(frame: &[u8]) -> Result<ResultFrame, FrameError> {
        expect_type(frame, TYPE_RESULT)?;
        exact_len(frame, RESULT_LEN)?;
        let audit = super::audit::AuditRecord::parse(&frame[2..]).ok_or(FrameError::BadField("audit record"))?;
        if audit.reason != frame[1] {
            return Err(FrameError::BadField("result code differs from the audit record"));
        }
        Ok(ResultFrame { code: frame[1], audit })
    }
}

fn expect_type(frame: &[u8], expected: u8) -> Result<(), FrameError> {
    match frame.first() {
        None => Err(FrameError::Truncated),
        Some(&t) if t == expected => Ok(()),
        Some(&(TYPE_CHALLENGE | TYPE_RESPONSE | TYPE_RESULT)) => Err(FrameError::BadField("unexpected frame type")),
        Some(&t) => Err(FrameError::UnknownType(t)),
    }
}

fn exact_len(frame: &[u8], len: usize) -> Result<(), FrameError> {
    match frame.len().cmp(&len) {
        std::cmp::Ordering::Less => Err(FrameError::Truncated),
        std::cmp::Ordering::Greater => Err(FrameError::TrailingBytes),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes.try_into().expect("4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_reassemble_at_every_mtu() {
        let frame: Vec<u8> = (0..=255u8).cycle().take(300).collect();
        for mtu in [23u16, 24, 100, 185, 247, 512, 517] {
            let pieces = fragment(&frame, mtu).unwrap();
            assert!(pieces.iter().all(|p| p.len() <= usize::from(mtu) - 3));
            let mut reassembler = Reassembler::default();
            let mut out = None;
            for (i, piece) in pieces.iter().enumerate() {
                out = reassembler.push(piece).unwrap();
                assert_eq!(out.is_some(), i == pieces.len() - 1);
            }
            assert_eq!(out.unwrap(), frame);
        }
        assert_eq!(fragment(&frame, 22), Err(FrameError::BadMtu(22)));
        assert_eq!(fragment(&[0; 513], 185), Err(FrameError::TooLarge(513)));
    }

    #[test]
    fn gaps_reorders_and_oversize_are_refused() {
        let pieces = fragment(&[1u8; 100], 23).unwrap();
        let mut reassembler = Reassembler::default();
        reassembler.push(&pieces[0]).unwrap();
        assert_eq!(reassembler.push(&pieces[2]), Err(FrameError::OutOfOrder { expected: 1, got: 2 }));
        assert!(!reassembler.in_progress());
        let mut reassembler = Reassembler::default();
        let mut last = Ok(None);
        for index in 0..40u8 {
            let mut piece = vec![index];
            piece.extend_from_slice(&[0u8; 19]);
            last = reassembler.push(&piece);
            if last.is_err() {
                break;
            }
        }
        assert!(matches!(last, Err(FrameError::TooLarge(_))));
        assert_eq!(Reassembler::default().push(&[]), Err(FrameError::EmptyFragment));
    }

    #[test]
    fn a_challenge_round_trips_and_its_truncations_fail() {
        let challenge = Challenge { version: 1, lock_id: 5, door_id: 9, nonce: [3; 16], lock_time: 1_800_000_000, epoch: 2 };
        let bytes = challenge.encode();
        assert_eq!(bytes.len(), CHALLENGE_LEN);
        assert_eq!(Challenge::parse(&bytes).unwrap(), challenge);
        for len in 0..bytes.len() {
            assert!(Challenge::parse(&bytes[..len]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Challenge::parse(&longer), Err(FrameError::TrailingBytes));
    }
}
