//! From the outcomes of a run to every task's profile. Declared numbers
//! win field by field; a task that ran is measured; any other gets an
//! estimate that says it is one: its declared cost if any, else the median
//! cost of the measured tasks (at least as long as it had already run when
//! time ran out), else 1 s.

use super::dag::Outcome;
use super::{Source, TaskProfile};
use jupiter_common::app::App;
use std::collections::BTreeMap;
use std::time::Duration;

/// The cost of a task when nothing at all was measured.
pub const FALLBACK_COST_SECS: f64 = 1.0;

/// Every task of `app` from `outcomes` (measured where it ran, at `speed`);
/// a task with no outcome is estimated for the reason `missing`.
pub fn profile_of(
    app: &App,
    outcomes: &BTreeMap<String, Outcome>,
    speed: f64,
    timeout: Duration,
    missing: &str,
) -> BTreeMap<String, TaskProfile> {
    // (cost, bytes to each child if it has children) of every task that ran.
    let ran: Vec<(f64, Option<u64>)> = outcomes
        .iter()
        .filter_map(|(name, o)| match o {
            Outcome::Ran {
                seconds,
                output_bytes,
            } => {
                let sends = app.task(name).is_some_and(|t| !t.children.is_empty());
                Some((seconds * speed, sends.then_some(*output_bytes)))
            }
            _ => None,
        })
        .collect();
    let typical_cost = median(ran.iter().map(|r| r.0).collect());
    let typical_bytes =
        median(ran.iter().filter_map(|r| r.1).map(|b| b as f64).collect()).map(|b| b.round() as u64);
    let mut profiles = BTreeMap::new();
    for task in &app.tasks {
        let outcome = outcomes.get(&task.name);
        let profile = match (task.cost, task.output_bytes, outcome) {
            (Some(cost_secs), Some(output_bytes), _) => TaskProfile {
                cost_secs,
                output_bytes,
                source: Source::Declared,
                seconds: None,
                note: None,
            },
            (
                _,
                _,
                Some(Outcome::Ran {
                    seconds,
                    output_bytes,
                }),
            ) => TaskProfile {
                cost_secs: task.cost.unwrap_or(seconds * speed),
                output_bytes: task.output_bytes.unwrap_or(*output_bytes),
                source: Source::Measured,
                seconds: Some(*seconds),
                note: None,
            },
            (_, _, other) => {
                // A task cut off by the timeout took at least that long.
                let lower_bound = match other {
                    Some(Outcome::OutOfTime { ran: Some(ran) }) => ran * speed,
                    _ => 0.0,
                };
                let (source, note) = match other {
                    Some(Outcome::Failed { error, .. }) => (Source::Failed, error.clone()),
                    Some(Outcome::OutOfTime { ran: Some(ran) }) => (
                        Source::Estimated,
                        format!(
                            "still running after {ran:.1} s when the {:.0} s timeout ran out",
                            timeout.as_secs_f64()
                        ),
                    ),
                    Some(Outcome::OutOfTime { ran: None }) => (
                        Source::Estimated,
                        format!("not reached within the {:.0} s timeout", timeout.as_secs_f64()),
                    ),
                    Some(Outcome::Skipped { parent }) => {
                        (Source::Estimated, format!("not run: task {parent} failed"))
                    }
                    _ => (Source::Estimated, missing.to_string()),
                };
                TaskProfile {
                    cost_secs: task
                        .cost
                        .unwrap_or_else(|| typical_cost.unwrap_or(FALLBACK_COST_SECS).max(lower_bound)),
                    // An egress task sends nothing to a child.
                    output_bytes: task.output_bytes.unwrap_or(match task.children.is_empty() {
                        true => 0,
                        false => typical_bytes.unwrap_or(0),
                    }),
                    source,
                    seconds: None,
                    note: Some(note),
                }
            }
        };
        profiles.insert(task.name.clone(), profile);
    }
    profiles
}

/// The median, or None of nothing.
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}
