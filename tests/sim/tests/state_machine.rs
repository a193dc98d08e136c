//! Random driver actions on several jobs, with the session closed and
//! reopened at random: the stored jobs always equal a fold of the pure state
//! machine over the actions, and nothing refused left a trace.

mod common;

use common::*;
use doorstep_core::*;
use proptest::prelude::*;

fn any_transition() -> impl Strategy<Value = Transition> {
    prop_oneof![
        3 => Just(Transition::Accept),
        1 => Just(Transition::Decline),
        3 => Just(Transition::ArriveAtPickup),
        3 => Just(Transition::ConfirmPickup),
        3 => Just(Transition::ArriveAtDropoff),
        3 => Just(Transition::Deliver),
        1 => Just(Transition::Fail { reason: FailureReason::Refused }),
        1 => Just(Transition::Reattempt),
        1 => Just(Transition::StartReturn),
        1 => Just(Transition::CompleteReturn),
        1 => Just(Transition::Cancel),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    Act { job: usize, transition: Transition },
    Reopen,
}

fn any_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (0usize..10, any_transition()).prop_map(|(job, transition)| Step::Act { job, transition }),
        1 => Just(Step::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_store_follows_the_state_machine(steps in proptest::collection::vec(any_step(), 1..60)) {
        let fx = Fixture::new();
        let mut session = fx.open_with_sample();
        let ids: Vec<_> = session.jobs().unwrap().iter().map(|j| j.id).collect();
        let mut model: Vec<(JobState, Option<FailureReason>, u64)> = vec![(JobState::Assigned, None, 0); ids.len()];
        // Each job's history, as the states it moved to; actions on the
        // jobs interleave, and each history must hold only its own.
        let mut histories: Vec<Vec<JobState>> = vec![vec![JobState::Assigned]; ids.len()];
        for step in steps {
            match step {
                Step::Reopen => {
                    drop(session);
                    session = fx.open();
                }
                Step::Act { job, transition } => {
                    let (state, failure, version) = model[job];
                    let expected = if transition.is_driver_action() {
                        next_step(state, failure, transition)
                    } else {
                        Err(CoreError::invalid("transition", "cancel comes from dispatch, not the driver"))
                    };
                    let got = session.apply(ids[job], transition);
                    match (expected, got) {
                        (Ok(step), Ok(stored)) => {
                            prop_assert_eq!((stored.state, stored.failure, stored.version), (step.state, step.failure, version + 1));
                            model[job] = (step.state, step.failure, version + 1);
                            histories[job].push(step.state);
                        }
                        (Err(expected), Err(got)) => prop_assert_eq!(expected, got),
                        (expected, got) => prop_assert!(false, "model {expected:?} but store {got:?}"),
                    }
                }
            }
        }
        for ((id, (state, failure, version)), expected_history) in ids.iter().zip(&model).zip(&histories) {
            let job = session.job(*id).unwrap();
            prop_assert_eq!((job.state, job.failure, job.version), (*state, *failure, *version));
            let history = session.history(*id).unwrap();
            prop_assert_eq!(history.len() as u64, version + 1);
            prop_assert!(history.iter().all(|event| event.job_id == *id));
            prop_assert!(history.windows(2).all(|pair| pair[0].sequence < pair[1].sequence));
            let moved_to: Vec<JobState> = history.iter().map(|event| event.to_state).collect();
            prop_assert_eq!(&moved_to, expected_history);
        }
    }
}
