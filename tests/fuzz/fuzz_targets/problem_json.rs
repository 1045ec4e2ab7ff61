//! A scheduling problem (`jupiterctl schedule --problem`): parsed or
//! refused, never a panic; one that parses is scheduled by HEFT and CPoP,
//! and the schedules are valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wave_home::offline::{schedule, Algorithm, Problem};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(problem) = Problem::parse("problem.json", text) else {
        return;
    };
    // Keep runs short: the scheduler is O(tasks² · nodes).
    if problem.tasks() > 64 || problem.nodes() > 16 {
        return;
    }
    for algorithm in [Algorithm::Heft, Algorithm::Cpop] {
        let s = schedule(&problem, algorithm);
        if let Err(e) = s.validate(&problem) {
            panic!("{algorithm:?} made an invalid schedule: {e}");
        }
    }
});
