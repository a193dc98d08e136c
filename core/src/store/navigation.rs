//! The navigation in progress: its plan (stops and settings) and the
//! controller's state, written with the job changes arrivals cause.

use super::Database;
use super::jobs::{TxError, driver_transition_if_legal_in};
use crate::error::Result;
use crate::jobs::{JobEvent, Transition};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

impl Database {
    /// The stored plan and state, as JSON written by the session.
    pub fn navigation(&self) -> Result<Option<(String, String)>> {
        self.conn
            .query_row("SELECT plan, state FROM navigation", [], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
            .map_err(|e| self.classify(e))
    }

    pub fn save_navigation(&mut self, plan: &str, state: &str) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO navigation (singleton, plan, state) VALUES (1, ?1, ?2) \
                 ON CONFLICT(singleton) DO UPDATE SET plan = ?1, state = ?2",
            )?
            .execute(params![plan, state])?;
            Ok(())
        })
    }

    pub fn clear_navigation(&mut self) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM navigation", [])?;
            Ok(())
        })
    }

    /// Stores the controller's new state together with the driver actions
    /// its arrivals imply, in one transaction. An action that is no longer
    /// legal (the driver already tapped it) is skipped, not an error.
    pub fn record_fix(&mut self, state: &str, actions: &[(Uuid, Transition)], at: DateTime<Utc>) -> Result<Vec<JobEvent>> {
        self.write(|tx| {
            let mut events = Vec::new();
            for &(job, transition) in actions {
                if let Some(event) = driver_transition_if_legal_in(tx, job, transition, at)? {
                    events.push(event);
                }
            }
            tx.prepare_cached("UPDATE navigation SET state = ?1")?.execute([state])?;
            Ok::<_, TxError>(events)
        })
    }
}
