//! The job a driver's day is made of, and its state machine.
//!
//! Owns the data model and the rules for moving a job between states. Pure:
//! no storage, no clock, no network; those live in `store` and `session`.

mod model;
mod ownership;
mod state;

pub use model::*;
pub use ownership::*;
pub use state::*;
