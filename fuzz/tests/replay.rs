//! Every fuzz target over its seeds and over every input saved under
//! `fuzz/corpus/<target>/` (findings of past fuzzing runs are kept there,
//! so each stays fixed), in the normal test suite.

use doorstep_fuzz::TARGETS;
use std::path::Path;

#[test]
fn every_target_accepts_its_seeds_and_saved_inputs() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (target, run) in TARGETS {
        let seeds = doorstep_fuzz::seeds::seeds(target);
        assert!(!seeds.is_empty(), "{target} has seeds");
        for seed in &seeds {
            run(seed);
        }
        let Ok(saved) = std::fs::read_dir(corpus.join(target)) else { continue };
        for entry in saved {
            let path = entry.unwrap().path();
            run(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
        }
    }
}

#[test]
fn the_seeds_are_real_examples_of_their_formats() {
    use doorstep_core::dispatch::{parse_delta, parse_document};
    let seed = |target: &str| doorstep_fuzz::seeds::seeds(target).remove(0);
    let day = parse_document(&seed("dispatch_document")).unwrap();
    assert_eq!(parse_delta(&seed("jobs_delta")).unwrap().jobs.len(), day.jobs.len());
    assert!(doorstep_core::handoff::codec::expect_check_in(std::str::from_utf8(&seed("handoff_code")).unwrap()).is_ok());
    assert!(doorstep_core::access::grant::Grant::parse(&seed("door_grant")).is_ok());
    assert!(doorstep_core::access::frame::Challenge::parse(&seed("door_frames")).is_ok());
}
