//! Runs a DAG of tasks as a deployment would: a task starts as soon as all
//! its parents are done, so independent tasks run side by side, at most
//! `slots` at once, until a deadline. How one task runs is the caller's
//! (a closure), so the order can be tested without processes.

use futures::stream::{FuturesUnordered, StreamExt};
use jupiter_common::app::TaskSpec;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What one task of a run gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It ran in `seconds` and sent `output_bytes` to each child.
    Ran { seconds: f64, output_bytes: u64 },
    /// It failed after `seconds`.
    Failed { seconds: f64, error: String },
    /// Time ran out: it had run `ran` seconds, or had not started (None).
    OutOfTime { ran: Option<f64> },
    /// Not run: `parent` (or an ancestor through it) failed.
    Skipped { parent: String },
}

/// What a task that ran left for its children.
#[derive(Debug, Clone, Default)]
pub struct Produced {
    /// child -> the files it receives.
    pub per_child: Vec<(String, Vec<PathBuf>)>,
    /// Bytes sent to each child (the mean over children).
    pub output_bytes: u64,
}

/// Runs `tasks` (topologically ordered; a parent outside the list counts
/// as done) with `start(task, inputs)`, where an ingress task's input is
/// `sample` and any other's are the files its parents produced for it,
/// sorted. Returns every task's outcome.
pub async fn run<'a, F, Fut>(
    tasks: &[&'a TaskSpec],
    sample: &Path,
    slots: usize,
    timeout: Duration,
    mut start: F,
) -> BTreeMap<String, Outcome>
where
    F: FnMut(&'a TaskSpec, Vec<PathBuf>) -> Fut,
    Fut: Future<Output = Result<Produced, String>>,
{
    let names: BTreeSet<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    let mut waiting: BTreeMap<&str, usize> = tasks
        .iter()
        .map(|t| {
            let parents = t.parents.iter().filter(|p| names.contains(p.as_str())).count();
            (t.name.as_str(), parents)
        })
        .collect();
    let mut ready: VecDeque<&'a TaskSpec> = tasks
        .iter()
        .copied()
        .filter(|t| waiting[t.name.as_str()] == 0)
        .collect();
    let mut received: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut started: BTreeMap<&'a str, Instant> = BTreeMap::new();
    let mut running = FuturesUnordered::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        while running.len() < slots.max(1) && !timeout.is_zero() {
            let Some(task) = ready.pop_front() else { break };
            let inputs = if task.parents.iter().any(|p| names.contains(p.as_str())) {
                let mut files = received.remove(&task.name).unwrap_or_default();
                files.sort();
                files
            } else {
                vec![sample.to_path_buf()]
            };
            started.insert(task.name.as_str(), Instant::now());
            let run = start(task, inputs);
            running.push(async move {
                let began = Instant::now();
                let result = run.await;
                (task, began.elapsed().as_secs_f64(), result)
            });
        }
        if running.is_empty() {
            break;
        }
        let Ok(Some((task, seconds, result))) = tokio::time::timeout_at(deadline, running.next()).await
        else {
            // Out of time: dropping the runs kills their processes.
            for (name, began) in std::mem::take(&mut started) {
                outcomes.insert(
                    name.to_string(),
                    Outcome::OutOfTime {
                        ran: Some(began.elapsed().as_secs_f64()),
                    },
                );
            }
            break;
        };
        started.remove(task.name.as_str());
        match result {
            Ok(produced) => {
                for (child, files) in produced.per_child {
                    received.entry(child).or_default().extend(files);
                }
                outcomes.insert(
                    task.name.clone(),
                    Outcome::Ran {
                        seconds,
                        output_bytes: produced.output_bytes,
                    },
                );
                // Children in the caller's order, so that runs are repeatable.
                for child in tasks.iter().filter(|t| task.children.contains(&t.name)) {
                    if let Some(count) = waiting.get_mut(child.name.as_str()) {
                        *count -= 1;
                        if *count == 0 {
                            ready.push_back(child);
                        }
                    }
                }
            }
            Err(error) => {
                outcomes.insert(task.name.clone(), Outcome::Failed { seconds, error });
            }
        }
    }
    // What never ran: because an ancestor failed, or because time ran out.
    for task in tasks {
        if outcomes.contains_key(&task.name) {
            continue;
        }
        let failed_parent = task.parents.iter().find(|p| {
            matches!(
                outcomes.get(p.as_str()),
                Some(Outcome::Failed { .. } | Outcome::Skipped { .. })
            )
        });
        let outcome = match failed_parent {
            Some(parent) => Outcome::Skipped {
                parent: match &outcomes[parent.as_str()] {
                    Outcome::Skipped { parent } => parent.clone(),
                    _ => parent.clone(),
                },
            },
            None => Outcome::OutOfTime { ran: None },
        };
        outcomes.insert(task.name.clone(), outcome);
    }
    outcomes
}
