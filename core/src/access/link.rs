//! The transport to a lock: a [`BleLink`] carries ATT payloads (one
//! fragment each) between the phone and the lock's door characteristic.
//! Shells implement it over Android GATT or CoreBluetooth; [`InMemoryLink`]
//! reaches a [`ReferenceLock`](super::ReferenceLock) in-process.

use super::lock::{LockPeripheral, ReferenceLock};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Why the link could not do what was asked; each maps to an error the
/// driver can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Bluetooth is off, missing, or not permitted.
    #[error("Bluetooth unavailable: {reason}")]
    Unavailable { reason: String },
    /// No lock of that door was found within the timeout.
    #[error("lock not in range")]
    OutOfRange,
    /// The lock did not answer in time.
    #[error("timed out")]
    Timeout,
    /// The connection broke.
    #[error("link broken: {reason}")]
    Broken { reason: String },
}

/// One BLE connection to a lock at a time. Calls block; the core makes
/// them off the caller's thread.
pub trait BleLink: Send + Sync {
    /// Scans for a lock advertising the door service for `door_id`,
    /// connects, subscribes to its notifications and returns the ATT MTU.
    fn connect(&self, door_id: u32, timeout: Duration) -> Result<u16, LinkError>;
    /// Writes one ATT payload (at most MTU − 3 bytes) to the door characteristic.
    fn write(&self, payload: &[u8]) -> Result<(), LinkError>;
    /// The next notification, in order.
    fn receive(&self, timeout: Duration) -> Result<Vec<u8>, LinkError>;
    fn disconnect(&self);
}

/// What crossed an in-memory link, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    pub connections: u32,
    pub writes: u32,
    pub notifications: u32,
    pub bytes_written: u64,
    pub bytes_notified: u64,
}

impl LinkCounters {
    pub fn messages(&self) -> u32 {
        self.writes + self.notifications
    }

    pub fn bytes(&self) -> u64 {
        self.bytes_written + self.bytes_notified
    }
}

/// A link to a reference lock in the same process, at a chosen MTU.
pub struct InMemoryLink {
    peripheral: LockPeripheral,
    mtu: u16,
    inner: Mutex<LinkState>,
}

struct LinkState {
    in_range: bool,
    connected: bool,
    inbox: VecDeque<Vec<u8>>,
    counters: LinkCounters,
}

impl InMemoryLink {
    pub fn new(lock: Arc<ReferenceLock>, mtu: u16) -> InMemoryLink {
        InMemoryLink {
            peripheral: LockPeripheral::new(lock),
            mtu,
            inner: Mutex::new(LinkState { in_range: true, connected: false, inbox: VecDeque::new(), counters: LinkCounters::default() }),
        }
    }

    /// Walks the phone out of (or back into) the lock's range.
    pub fn set_in_range(&self, in_range: bool) {
        let mut state = self.state();
        state.in_range = in_range;
        if !in_range {
            state.connected = false;
            state.inbox.clear();
        }
    }

    pub fn counters(&self) -> LinkCounters {
        self.state().counters
    }

    pub fn reset_counters(&self) {
        self.state().counters = LinkCounters::default();
    }

    fn state(&self) -> MutexGuard<'_, LinkState> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn deliver(state: &mut LinkState, notifications: Vec<Vec<u8>>) {
        for payload in notifications {
            state.counters.notifications += 1;
            state.counters.bytes_notified += payload.len() as u64;
            state.inbox.push_back(payload);
        }
    }
}

impl BleLink for InMemoryLink {
    fn connect(&self, door_id: u32, _timeout: Duration) -> Result<u16, LinkError> {
        let mut state = self.state();
        if !state.in_range || self.peripheral.lock().config().door_id != door_id {
            return Err(LinkError::OutOfRange);
        }
        state.inbox.clear();
        let notifications = self.peripheral.subscribe(self.mtu).map_err(|e| LinkError::Broken { reason: e.to_string() })?;
        state.connected = true;
        state.counters.connections += 1;
        Self::deliver(&mut state, notifications);
        Ok(self.mtu)
    }

    fn write(&self, payload: &[u8]) -> Result<(), LinkError> {
        let mut state = self.state();
        if !state.connected {
            return Err(LinkError::Broken { reason: "not connected".into() });
        }
        if payload.len() > usize::from(self.mtu) - 3 {
            return Err(LinkError::Broken { reason: format!("{} bytes do not fit ATT MTU {}", payload.len(), self.mtu) });
        }
        state.counters.writes += 1;
        state.counters.bytes_written += payload.len() as u64;
        let notifications = self.peripheral.write(payload).map_err(|e| LinkError::Broken { reason: e.to_string() })?;
        Self::deliver(&mut state, notifications);
        Ok(())
    }

    fn receive(&self, _timeout: Duration) -> Result<Vec<u8>, LinkError> {
        let mut state = self.state();
        if !state.connected {
            return Err(LinkError::Broken { reason: "not connected".into() });
        }
        // Everything the lock sends is queued by the time the phone asks, so
        // an empty inbox means the lock has nothing more to say.
        state.inbox.pop_front().ok_or(LinkError::Timeout)
    }

    fn disconnect(&self) {
        let mut state = self.state();
        state.connected = false;
        state.inbox.clear();
        self.peripheral.disconnect();
    }
}
