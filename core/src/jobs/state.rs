use super::model::FailureReason;
use crate::error::CoreError;
use std::fmt;

/// Where a job is in the driver's day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
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

impl Transition {
    /// The transition a stored or received action name stands for; `fail`
    /// needs its reason.
    pub fn from_name(name: &str, failure: Option<FailureReason>) -> Option<Transition> {
        Some(match name {
            "accept" => Transition::Accept,
            "decline" => Transition::Decline,
            "arrive_at_pickup" => Transition::ArriveAtPickup,
            "confirm_pickup" => Transition::ConfirmPickup,
            "arrive_at_dropoff" => Transition::ArriveAtDropoff,
            "deliver" => Transition::Deliver,
            "fail" => Transition::Fail { reason: failure? },
            "reattempt" => Transition::Reattempt,
            "start_return" => Transition::StartReturn,
            "complete_return" => Transition::CompleteReturn,
            "cancel" => Transition::Cancel,
            _ => return None,
        })
    }

    /// Whether a driver may make this move; cancelling belongs to dispatch.
    pub fn is_driver_action(self) -> bool {
        self != Transition::Cancel
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

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn any_state() -> impl Strategy<Value = JobState> {
        proptest::sample::select(JobState::ALL.to_vec())
    }

    fn any_failure() -> impl Strategy<Value = FailureReason> {
        proptest::sample::select(vec![
            FailureReason::RecipientUnavailable,
            FailureReason::NoAccessToBuilding,
            FailureReason::UnsafeLocation,
            FailureReason::Refused,
            FailureReason::Damaged,
            FailureReason::WrongAddress,
            FailureReason::BusinessClosed,
            FailureReason::IdCheckFailed,
        ])
    }

    pub(crate) fn any_transition() -> impl Strategy<Value = Transition> {
        prop_oneof![
            Just(Transition::Accept),
            Just(Transition::Decline),
            Just(Transition::ArriveAtPickup),
            Just(Transition::ConfirmPickup),
            Just(Transition::ArriveAtDropoff),
            Just(Transition::Deliver),
            any_failure().prop_map(|reason| Transition::Fail { reason }),
            Just(Transition::Reattempt),
            Just(Transition::StartReturn),
            Just(Transition::CompleteReturn),
            Just(Transition::Cancel),
        ]
    }

    proptest! {
        #[test]
        fn a_move_is_legal_exactly_when_its_table_says_so(from in any_state(), t in any_transition()) {
            match next_step(from, None, t) {
                Ok(step) => {
                    prop_assert!(t.sources().contains(&from));
                    prop_assert_eq!(step.state, t.target());
                }
                Err(err) => {
                    prop_assert!(!t.sources().contains(&from));
                    prop_assert_eq!(err, CoreError::InvalidTransition { from, to: t.target() });
                }
            }
        }

        #[test]
        fn terminal_states_never_move(from in any_state(), t in any_transition()) {
            if from.is_terminal() {
                prop_assert!(next_step(from, None, t).is_err());
            }
        }

        #[test]
        fn any_walk_keeps_the_failure_reason_only_while_it_matters(walk in proptest::collection::vec(any_transition(), 0..40)) {
            let mut state = JobState::Assigned;
            let mut failure = None;
            for t in walk {
                if let Ok(step) = next_step(state, failure, t) {
                    state = step.state;
                    failure = step.failure;
                }
                let reason_expected = matches!(state, JobState::Failed | JobState::Returning | JobState::Returned);
                prop_assert!(failure.is_none() || reason_expected, "{state} carries {failure:?}");
                if state == JobState::Failed {
                    prop_assert!(failure.is_some());
                }
            }
        }
    }
}
