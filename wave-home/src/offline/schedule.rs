//! A schedule: every task on a node with a start and an end, and the check
//! that it obeys the model (used by the tests and available to callers).

use super::Problem;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Assignment {
    pub task: String,
    pub node: String,
    pub start: f64,
    pub end: f64,
}

/// What `jupiterctl schedule` prints.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Schedule {
    pub makespan: f64,
    /// In task order of the problem file.
    pub schedule: Vec<Assignment>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScheduleError {
    #[error("task {0} is scheduled {1} times")]
    Count(String, usize),
    #[error("task {task} runs {got} on {node}, but its cost needs {want}")]
    Duration {
        task: String,
        node: String,
        got: f64,
        want: f64,
    },
    #[error("task {task} starts at {start} before its input from {parent} can be there ({ready})")]
    Precedence {
        task: String,
        parent: String,
        start: f64,
        ready: f64,
    },
    #[error("tasks {a} and {b} overlap on {node}")]
    Overlap { a: String, b: String, node: String },
    #[error("makespan {got} is not the latest end {want}")]
    Makespan { got: f64, want: f64 },
}

/// Builds the printed schedule from per-task (node, start, end).
pub fn build(problem: &Problem, placed: &[(usize, f64, f64)]) -> Schedule {
    let schedule: Vec<Assignment> = placed
        .iter()
        .enumerate()
        .map(|(task, &(node, start, end))| Assignment {
            task: problem.task_names[task].clone(),
            node: problem.node_names[node].clone(),
            start,
            end,
        })
        .collect();
    let makespan = schedule.iter().map(|a| a.end).fold(0.0, f64::max);
    Schedule { makespan, schedule }
}

fn close(a: f64, b: f64) -> bool {
    close_at(a, b, 0.0)
}

/// [`close`] for quantities computed from times around `at`: a duration
/// taken between two times near 1e28 is only as exact as those times (the
/// fuzzer found a cost of 1 lost next to one of 1.1e28).
fn close_at(a: f64, b: f64, at: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()).max(at.abs()))
}

impl Schedule {
    /// Checks the schedule against the model of `problem`.
    pub fn validate(&self, problem: &Problem) -> Result<(), ScheduleError> {
        let task_of = |name: &str| problem.task_names.iter().position(|t| t == name);
        let node_of = |name: &str| problem.node_names.iter().position(|n| n == name);
        let mut placed = vec![None; problem.tasks()];
        let mut counts = vec![0usize; problem.tasks()];
        for a in &self.schedule {
            let (Some(t), Some(n)) = (task_of(&a.task), node_of(&a.node)) else {
                return Err(ScheduleError::Count(a.task.clone(), 0));
            };
            counts[t] += 1;
            placed[t] = Some((n, a.start, a.end));
            let want = problem.exec(t, n);
            if !close_at(a.end - a.start, want, a.end) || a.start < -1e-12 {
                return Err(ScheduleError::Duration {
                    task: a.task.clone(),
                    node: a.node.clone(),
                    got: a.end - a.start,
                    want,
                });
            }
        }
        for (t, &c) in counts.iter().enumerate() {
            if c != 1 {
                return Err(ScheduleError::Count(problem.task_names[t].clone(), c));
            }
        }
        let placed: Vec<(usize, f64, f64)> = placed.into_iter().flatten().collect();
        for (t, &(n, start, _)) in placed.iter().enumerate() {
            for &(p, data) in &problem.pred[t] {
                let (pn, _, pend) = placed[p];
                let ready = pend + problem.comm(data, pn, n);
                if start < ready && !close(start, ready) {
                    return Err(ScheduleError::Precedence {
                        task: problem.task_names[t].clone(),
                        parent: problem.task_names[p].clone(),
                        start,
                        ready,
                    });
                }
            }
        }
        let mut by_node: Vec<Vec<(f64, f64, usize)>> = vec![Vec::new(); problem.nodes()];
        for (t, &(n, s, e)) in placed.iter().enumerate() {
            by_node[n].push((s, e, t));
        }
        for (n, slots) in by_node.iter_mut().enumerate() {
            slots.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
            for pair in slots.windows(2) {
                let ((_, e1, t1), (s2, e2, t2)) = (pair[0], pair[1]);
                // Zero-length tasks may share an instant.
                if s2 < e1 && !close(s2, e1) && e2 > s2 {
                    return Err(ScheduleError::Overlap {
                        a: problem.task_names[t1].clone(),
                        b: problem.task_names[t2].clone(),
                        node: problem.node_names[n].clone(),
                    });
                }
            }
        }
        let latest = placed.iter().map(|p| p.2).fold(0.0, f64::max);
        if !close(latest, self.makespan) {
            return Err(ScheduleError::Makespan {
                got: self.makespan,
                want: latest,
            });
        }
        Ok(())
    }
}
