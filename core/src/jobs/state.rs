use super::model::FailureReason;
use crate::error::CoreError;
use std::fmt;

/// Where a job is in the driver's day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobState {
    Assigned,
    Accepted,
    AtPickup,
    PickedUp,
    AtDropoff,
    Delivered,
    Declined,
    Failed,
    Returning,
    Returned,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 11] = [
        JobState::Assigned,
        JobState::Accepted,
        JobState::AtPickup,
        JobState::PickedUp,
        JobState::AtDropoff,
        JobState::Delivered,
        JobState::Declined,
        JobState::Failed,
        JobState::Returning,
        JobState::Returned,
        JobState::Cancelled,
    ];

    /// The stable name stored in the database and sent to the server.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Assigned => "assigned",
            JobState::Accepted => "accepted",
            JobState::AtPickup => "at_pickup",
            JobState::PickedUp => "picked_up",
            JobState::AtDropoff => "at_dropoff",
            JobState::Delivered => "delivered",
            JobState::Declined => "declined",
            JobState::Failed => "failed",
            JobState::Returning => "returning",
            JobState::Returned => "returned",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|state| state.as_str() == text)
    }

    /// No transition leaves a terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Delivered | JobState::Declined | JobState::Returned | JobState::Cancelled)
    }

    /// The driver physically holds the job's packages in this state.
    pub fn driver_has_packages(self) -> bool {
        matches!(self, JobState::PickedUp | JobState::AtDropoff | JobState::Failed | JobState::Returning)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every legal move of a job, by name. Which states each may start from is
/// [`Transition::sources`]; where it leads is [`Transition::target`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    /// The driver takes an offered job.
    Accept,
    /// The driver turns an offered job down.
    Decline,
    ArriveAtPickup,
    /// Staff handed the packages over.
    ConfirmPickup,
    ArriveAtDropoff,
    Deliver,
    /// Delivery could not be made; the driver still has the packages.
    Fail { reason: FailureReason },
    /// Try a failed delivery again later on the route.
    Reattempt,
    /// Head back to the store with the packages (after a failure, or when the
    /// job was cancelled after pickup).
    StartReturn,
    /// Staff took the packages back.
    CompleteReturn,
    /// Dispatch withdrew the job before the driver had the packages.
    Cancel,
}

impl Transition {
    pub fn target(self) -> JobState {
        match self {
            Transition::Accept => JobState::Accepted,
            Transition::Decline => JobState::Declined,
            Transition::ArriveAtPickup => JobState::AtPickup,
            Transition::ConfirmPickup => JobState::PickedUp,
            Transition::ArriveAtDropoff => JobState::AtDropoff,
            Transition::Deliver => JobState::Delivered,
            Transition::Fail { .. } => JobState::Failed,
            Transition::Reattempt => JobState::PickedUp,
            Transition::StartReturn => JobState::Returning,
            Transition::CompleteReturn => JobState::Returned,
            Transition::Cancel => JobState::Cancelled,
        }
    }

    pub fn sources(self) -> &'static [JobState] {
        use JobState::*;
        match self {
            Transition::Accept | Transition::Decline => &[Assigned],
            Transition::ArriveAtPickup => &[Accepted],
            Transition::ConfirmPickup => &[AtPickup],
            Transition::ArriveAtDropoff => &[PickedUp],
            Transition::Deliver => &[AtDropoff],
            Transition::Fail { .. } => &[PickedUp, AtDropoff],
            Transition::Reattempt => &[Failed],
            Transition::StartReturn => &[PickedUp, AtDropoff, Failed],
            Transition::CompleteReturn => &[Returning],
            Transition::Cancel => &[Assigned, Accepted, AtPickup],
        }
    }

    /// The stable name stored in the event log and used in documents.
    pub fn name(self) -> &'static str {
        match self {
            Transition::Accept => "accept",
            Transition::Decline => "decline",
            Transition::ArriveAtPickup => "arrive_at_pickup",
            Transition::ConfirmPickup => "confirm_pickup",
            Transition::ArriveAtDropoff => "arrive_at_dropoff",
            Transition::Deliver => "deliver",
            Transition::Fail { .. } => "fail",
            Transition::Reattempt => "reattempt",
            Transition::StartReturn => "start_return",
            Transition::CompleteReturn => "complete_return",
            Transition::Cancel => "cancel",
        }
    }
}

/// The outcome of a legal transition: the new state and the failure reason
/// the job carries afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub state: JobState,
    pub failure: Option<FailureReason>,
}

/// The state machine itself: where `transition` takes a job that is in
/// `from` and carries `failure`, or why it cannot.
pub fn next_step(from: JobState, failure: Option<FailureReason>, transition: Transition) -> Result<Step, CoreError> {
    if !transition.sources().contains(&from) {
        return Err(CoreError::InvalidTransition { from, to: transition.target() });
    }
    let failure = match transition {
        Transition::Fail { reason } => Some(reason),
        // The reason stays with the job while the packages go back, so the
        // store sees why; a reattempt clears it.
        Transition::StartReturn | Transition::CompleteReturn => failure,
        _ => None,
    };
    Ok(Step { state: transition.target(), failure })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_reaches_delivered() {
        let path = [
            Transition::Accept,
            Transition::ArriveAtPickup,
            Transition::ConfirmPickup,
            Transition::ArriveAtDropoff,
            Transition::Deliver,
        ];
        let end = path.iter().try_fold(JobState::Assigned, |state, t| next_step(state, None, *t).map(|s| s.state));
        assert_eq!(end, Ok(JobState::Delivered));
    }

    #[test]
    fn an_illegal_move_names_both_ends() {
        assert_eq!(
            next_step(JobState::Assigned, None, Transition::Deliver),
            Err(CoreError::InvalidTransition { from: JobState::Assigned, to: JobState::Delivered })
        );
    }

    #[test]
    fn state_names_round_trip() {
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
        }
        assert_eq!(JobState::parse("teleported"), None);
    }
}
