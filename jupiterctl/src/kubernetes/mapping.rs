//! The task -> node mapping for Kubernetes. Only the algorithms that need no
//! network profile run here (static and random, through wave-home's own
//! code); the profile-driven ones need drupe-central inside the cluster.

use super::KubeError;
use crate::local::Scheduler;
use jupiter_common::app::App;
use jupiter_common::proto::wave::home::v1::{ScheduleRequest, TaskNode};
use std::collections::BTreeMap;

/// Maps every task of `app` onto `nodes` with `scheduler` (`static_mapping`
/// for static, `seed` for random; 0 picks a fresh seed).
pub fn compute(
    app: &App,
    scheduler: Scheduler,
    static_mapping: &BTreeMap<String, String>,
    seed: u64,
    nodes: &[String],
) -> Result<BTreeMap<String, String>, KubeError> {
    if !matches!(scheduler, Scheduler::Static | Scheduler::Random) {
        return Err(KubeError::SchedulerNeedsProfile(scheduler.name().to_string()));
    }
    let request = ScheduleRequest {
        algorithm: scheduler.name().to_string(),
        tasks: app
            .tasks
            .iter()
            .map(|t| TaskNode {
                name: t.name.clone(),
                children: t.children.clone(),
                cost: t.cost.unwrap_or(1.0),
                output_bytes: t.output_bytes.unwrap_or(0),
            })
            .collect(),
        static_mapping: static_mapping.clone().into_iter().collect(),
        seed,
        ..Default::default()
    };
    let mapping = wave_home::mapping::compute(&request, nodes)?;
    Ok(mapping.assignments.into_iter().collect())
}

/// The scheduler when none is named: static if there is a mapping to follow
/// (a file or the app's own), else random (HEFT, the other backends'
/// default, is not available here).
pub fn default_scheduler(static_mapping: &BTreeMap<String, String>) -> Scheduler {
    if static_mapping.is_empty() {
        Scheduler::Random
    } else {
        Scheduler::Static
    }
}
