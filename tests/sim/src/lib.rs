//! Headless QA for Doorstep: drives the core the way a phone would, with no
//! phone. Owns the demo shift, synthetic job documents and the churn loop
//! used by crash and soak tests. Must not reach into the core's internals:
//! everything here goes through the public `doorstep-core` API.

pub mod demo;
pub mod synthetic;
