//! Offline scheduling, for research and comparison: a task graph, a network
//! of nodes and links, and the classic list schedulers (HEFT, CPoP) on the
//! model of SAGA (PyPI `anrg-saga`): a task of cost c runs c / speed on a
//! node; an edge carrying d between two different nodes takes
//! d / bandwidth; on the same node it is free.

pub mod heuristics;
pub mod problem;
pub mod schedule;

pub use problem::{Problem, ProblemError};
pub use schedule::{Assignment, Schedule, ScheduleError};

/// The algorithms `jupiterctl schedule` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Heft,
    Cpop,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown algorithm {0:?}: expected heft or cpop")]
pub struct UnknownAlgorithm(pub String);

impl std::str::FromStr for Algorithm {
    type Err = UnknownAlgorithm;
    fn from_str(s: &str) -> Result<Self, UnknownAlgorithm> {
        match s.to_ascii_lowercase().as_str() {
            "heft" => Ok(Algorithm::Heft),
            "cpop" => Ok(Algorithm::Cpop),
            other => Err(UnknownAlgorithm(other.to_string())),
        }
    }
}

/// Schedules `problem` with `algorithm`.
pub fn schedule(problem: &Problem, algorithm: Algorithm) -> Schedule {
    match algorithm {
        Algorithm::Heft => heuristics::heft(problem),
        Algorithm::Cpop => heuristics::cpop(problem),
    }
}
