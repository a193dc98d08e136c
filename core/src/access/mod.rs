//! Door access: opening a building's lobby door over BLE with a short-lived
//! grant signed by dispatch, with no network needed at the door.
//!
//! - [`grant`]: the grant's binary format, its issuer (Ed25519) and the
//!   issuer's revocation notices;
//! - [`frame`]: the frames of the door protocol and their fragmentation
//!   into ATT payloads (MTU 23 to 517);
//! - [`protocol`]: the phone's side of the exchange: what it signs with the
//!   device key, and the exchange over a [`link::BleLink`];
//! - [`lock`]: the reference lock, for tests, the simulator and door
//!   controller makers: every check a lock must make, rate limiting, and
//!   its audit log;
//! - [`audit`]: the lock's MAC'd audit records;
//! - [`link`]: the transport trait and an in-memory link to a reference
//!   lock; `ble` (feature `ble`): the btleplug link.
//!
//! The wire protocol is written down in `docs/door-protocol.md`. Pure apart
//! from the link: time comes in as an input. Must not touch the store or
//! the job state machine; the session records results and queues audits.

pub mod audit;
#[cfg(feature = "ble")]
pub mod ble;
pub mod frame;
pub mod grant;
pub mod link;
pub mod lock;
pub mod protocol;
pub mod wire;

pub use frame::{Action, Challenge, ResultFrame};
pub use grant::{Grant, GrantIssuer, GrantTerms, RevocationNotice};
pub use link::{BleLink, InMemoryLink, LinkCounters, LinkError};
pub use lock::{LockConfig, LockPeripheral, ReferenceLock};

/// Why a lock refused to open, as the result frame and the audit record
/// carry it. Codes are part of the protocol; never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Reason {
    /// The response could not be read (truncated, bad field, bad fragment).
    Malformed = 1,
    /// The response was longer than a frame may be.
    FrameTooLarge = 2,
    UnsupportedVersion = 3,
    /// No configured issuer signed the grant (or the grant was altered).
    UnknownIssuer = 4,
    /// The grant's epoch is below the lock's revocation epoch.
    Revoked = 5,
    /// The grant does not name this lock's door.
    WrongDoor = 6,
    NotYetValid = 7,
    Expired = 8,
    /// The counter is not above the last one seen for the grant: a replay
    /// or a rolled-back phone.
    CounterReused = 9,
    /// The device signature does not come from the grant's device key
    /// (another device's grant, or an altered response).
    DeviceSignature = 10,
    UseLimitReached = 11,
    /// No challenge is open (none was sent, or it was already answered).
    NoChallenge = 12,
    /// The response came after the challenge's time to live.
    ChallengeExpired = 13,
    /// Too many failures lately; the lock refuses everything for a while.
    RateLimited = 14,
}

impl Reason {
    pub const ALL: [Reason; 14] = [
        Reason::Malformed,
        Reason::FrameTooLarge,
        Reason::UnsupportedVersion,
        Reason::UnknownIssuer,
        Reason::Revoked,
        Reason::WrongDoor,
        Reason::NotYetValid,
        Reason::Expired,
        Reason::CounterReused,
        Reason::DeviceSignature,
        Reason::UseLimitReached,
        Reason::NoChallenge,
        Reason::ChallengeExpired,
        Reason::RateLimited,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The stable name used in audit records, errors and logs.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::FrameTooLarge => "frame_too_large",
            Reason::UnsupportedVersion => "unsupported_version",
            Reason::UnknownIssuer => "unknown_issuer",
            Reason::Revoked => "revoked",
            Reason::WrongDoor => "wrong_door",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Expired => "expired",
            Reason::CounterReused => "counter_reused",
            Reason::DeviceSignature => "device_signature",
            Reason::UseLimitReached => "use_limit_reached",
            Reason::NoChallenge => "no_challenge",
            Reason::ChallengeExpired => "challenge_expired",
            Reason::RateLimited => "rate_limited",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Clamps a time to the protocol's Unix-seconds field.
pub fn unix_seconds(at: chrono::DateTime<chrono::Utc>) -> u32 {
    at.timestamp().clamp(0, i64::from(u32::MAX)) as u32
}
