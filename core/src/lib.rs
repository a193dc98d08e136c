//! Doorstep core: everything a delivery driver's app must do the same way on
//! Android and iOS, as a plain Rust API.
//!
//! Modules own one capability each:
//! - [`jobs`]: the job model and its state machine (pure, no I/O);
//! - [`dispatch`]: reading the dispatch server's job documents (outside bytes);
//! - [`store`]: the SQLite database, its schema and migrations;
//! - [`session`]: [`DriverSession`], the driver's handle tying store, clock and
//!   observers together;
//! - [`runtime`]: the one tokio runtime the core owns;
//! - [`nav`]: navigation along the route: progress, arrivals, off-route,
//!   ETA, completion policy and on-device re-sequencing (pure);
//! - [`sync`]: draining the outbox to dispatch and pulling job changes;
//! - [`pod`]: proof of delivery: requirements, drafts, media, sealed
//!   records and failed deliveries;
//! - [`access`]: door access: grants, the BLE door protocol, the reference
//!   lock and the links to locks;
//! - [`keys`]: the device key (a shell's [`keys::DeviceSigner`] or the
//!   software one), signature checks and hashing;
//! - [`handoff`]: store handoffs: signed offers, acceptances and receipts,
//!   their QR codes, and the store staff's [`handoff::StoreSession`];
//! - [`clock`]: time as an input, so tests and the simulator control it.
//!
//! Nothing here knows about UniFFI; `doorstep-ffi` wraps this API.

pub mod access;
pub mod clock;
pub mod dispatch;
pub mod error;
pub mod handoff;
pub mod jobs;
pub mod keys;
pub mod nav;
pub mod pod;
pub mod runtime;
pub mod session;
pub mod store;
pub mod sync;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{CoreError, Result};
pub use jobs::*;
pub use session::{UnlockOutcome, ArrivalMode, NavSnapshot, NavigationOptions, DriverSession, JobObserver, ObserverHealth, SessionOptions, Subscription, SyncObserver};
