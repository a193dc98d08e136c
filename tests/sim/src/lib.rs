//! Headless QA for Doorstep: drives the core the way a phone would, with no
//! phone. Owns the demo shift, synthetic job documents, the churn loop used
//! by crash and soak tests, and the reference dispatch server (`server`) the
//! sync tests talk to. Must not reach into the core's internals: everything
//! here goes through the public `doorstep-core` API.

pub mod demo;
pub mod faults;
pub mod pod_churn;
pub mod server;
pub mod synthetic;
pub mod traces;
