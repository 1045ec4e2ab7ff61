//! Placing an app's tasks on nodes, the same way on every backend: wait
//! until DRUPE knows every node (and every link, for a network-aware
//! scheduler), profile the tasks, ask wave-home for the mapping, then tell
//! each node's wave-worker which tasks it hosts. Where jupiterctl cannot
//! reach the roles, the schedulers that need no profile run here instead.

use super::error::DeployError;
use super::health::HEALTH_TIMEOUT;

/// How long DRUPE may take to know every node and measure every link: a
/// first round over slow emulated links (5 Mbit/s) takes tens of seconds.
const PROFILE_WAIT: Duration = Duration::from_secs(180);
use super::model::{Agent, ControlPlane, Placement, PlacementRequest, Scheduler, Summary, TaskCost};
use super::Backend;
use crate::exec_profile::{self, ExecProfile, ProfileOptions};
use jupiter_common::app::App;
use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
use jupiter_common::proto::drupe::central::v1::ProfileRequest;
use jupiter_common::proto::wave::home::v1::wave_home_client::WaveHomeClient;
use jupiter_common::proto::wave::home::v1::{ScheduleRequest, TaskNode};
use jupiter_common::proto::wave::worker::v1::wave_worker_client::WaveWorkerClient;
use jupiter_common::proto::wave::worker::v1::HostTaskRequest;
use jupiter_common::serve;
use std::collections::BTreeMap;
use std::time::Duration;

/// Maps `app` as `request` asks, through the roles `control` offers;
/// `backend` takes the execution profile where its tasks run.
pub async fn place(
    app: &App,
    request: &PlacementRequest,
    control: &ControlPlane,
    backend: &dyn Backend,
) -> Result<Placement, DeployError> {
    match control {
        ControlPlane::Offline { nodes } => offline(app, request, nodes),
        ControlPlane::Reachable {
            central,
            wave_home,
            agents,
        } => through_wave_home(app, request, central, wave_home, agents, backend).await,
    }
}

/// The mapping computed here, over `nodes`' names: static or seeded random,
/// through wave-home's own code.
pub fn offline(app: &App, request: &PlacementRequest, nodes: &[String]) -> Result<Placement, DeployError> {
    if !request.scheduler.offline() {
        return Err(DeployError::SchedulerNeedsProfile(request.scheduler.name()));
    }
    let schedule = ScheduleRequest {
        algorithm: request.scheduler.name().to_string(),
        tasks: task_nodes(app, None),
        static_mapping: request.static_mapping.clone().into_iter().collect(),
        seed: request.seed,
        ..Default::default()
    };
    let mapping = wave_home::mapping::compute(&schedule, nodes)?;
    Ok(Placement {
        assignments: mapping.assignments.into_iter().collect(),
        algorithm: mapping.algorithm,
        predicted_makespan_secs: 0.0,
        costs: Default::default(),
    })
}

async fn through_wave_home(
    app: &App,
    request: &PlacementRequest,
    central: &str,
    wave_home: &str,
    agents: &[Agent],
    backend: &dyn Backend,
) -> Result<Placement, DeployError> {
    // Profiling the tasks needs no node: it runs while DRUPE measures.
    let (nodes, profile) = tokio::join!(
        wait_for_nodes(central, agents.len(), request.scheduler.network_aware()),
        execution_profile(app, request, backend)
    );
    nodes?;
    let tasks = task_nodes(app, profile.as_ref());
    let costs = costs_of(&tasks);
    let schedule = ScheduleRequest {
        algorithm: request.scheduler.name().to_string(),
        tasks,
        nodes: vec![],
        static_mapping: request.static_mapping.clone().into_iter().collect(),
        seed: request.seed,
        workers: agents
            .iter()
            .map(|a| (a.node.clone(), a.inner_url.clone()))
            .collect(),
        timeout_secs: HEALTH_TIMEOUT.as_secs_f64(),
        current: Default::default(),
    };
    let mapping = WaveHomeClient::new(serve::channel(wave_home)?)
        .schedule(schedule)
        .await
        .map_err(DeployError::Schedule)?
        .into_inner();
    let placement = Placement {
        assignments: mapping.assignments.into_iter().collect(),
        algorithm: mapping.algorithm,
        predicted_makespan_secs: mapping.predicted_makespan_secs,
        costs: if request.scheduler.network_aware() {
            costs
        } else {
            Default::default()
        },
    };
    host_tasks(app, &placement, agents).await?;
    Ok(placement)
}

/// The app's tasks as wave-home takes them, with their profiled cost and
/// output size (without a profile, as the schedulers that ignore them see
/// it: declared, else unit).
/// A mapping of `app` over the `survivors` of a node loss, with the
/// scheduler the deployment was mapped with: heft and cpop over the
/// current DRUPE profile (and the cached execution profile), the WAVE
/// schedulers through the survivors' agents; static and random draw at
/// random among the survivors (a static mapping names the lost node).
pub async fn remap(
    app: &App,
    summary: &Summary,
    survivors: &[String],
    backend: &dyn Backend,
) -> Result<Placement, DeployError> {
    let scheduler = super::recovery::scheduler_of(&summary.scheduler);
    if scheduler.offline() {
        let random = PlacementRequest {
            scheduler: Scheduler::Random,
            static_mapping: Default::default(),
            seed: 0,
            python: "python3".into(),
            profile: Default::default(),
            replan: Default::default(),
        };
        return offline(app, &random, survivors);
    }
    let endpoints = summary.endpoints();
    let schedule = ScheduleRequest {
        algorithm: scheduler.name().to_string(),
        tasks: tasks_again(app, summary, backend).await,
        nodes: survivors.to_vec(),
        static_mapping: Default::default(),
        seed: 0,
        workers: endpoints
            .nodes
            .iter()
            .filter(|n| survivors.contains(&n.name))
            .map(|n| (n.name.clone(), n.wave_worker.clone()))
            .collect(),
        timeout_secs: HEALTH_TIMEOUT.as_secs_f64(),
        current: Default::default(),
    };
    let mapping = WaveHomeClient::new(serve::channel(&endpoints.wave_home)?)
        .schedule(schedule)
        .await
        .map_err(DeployError::Schedule)?
        .into_inner();
    Ok(Placement {
        assignments: mapping.assignments.into_iter().collect(),
        algorithm: mapping.algorithm,
        predicted_makespan_secs: mapping.predicted_makespan_secs,
        costs: summary.costs.clone(),
    })
}

/// The app's tasks for mapping it again while it runs (after a node loss,
/// or the profile drifted): with the costs the deployment was mapped with,
/// else profiled again as `up` would (from the cache beside the state
/// file, or measured where the backend's tasks run).
pub(super) async fn tasks_again(app: &App, summary: &Summary, backend: &dyn Backend) -> Vec<TaskNode> {
    if app.tasks.iter().all(|t| summary.costs.contains_key(&t.name)) {
        return app
            .tasks
            .iter()
            .map(|t| {
                let c = summary.costs[&t.name];
                TaskNode {
                    name: t.name.clone(),
                    children: t.children.clone(),
                    cost: c.cost_secs,
                    output_bytes: c.output_bytes,
                }
            })
            .collect();
    }
    let request = PlacementRequest {
        scheduler: super::recovery::scheduler_of(&summary.scheduler),
        static_mapping: Default::default(),
        seed: 0,
        python: "python3".into(),
        profile: ProfileOptions {
            cache_dir: exec_profile::cache::default_dir(),
            ..Default::default()
        },
        replan: Default::default(),
    };
    let profile = execution_profile(app, &request, backend).await;
    task_nodes(app, profile.as_ref())
}

/// Each task's cost and output size, as the mapping weighed them.
fn costs_of(tasks: &[TaskNode]) -> BTreeMap<String, TaskCost> {
    tasks
        .iter()
        .map(|t| {
            let cost = TaskCost {
                cost_secs: t.cost,
                output_bytes: t.output_bytes,
            };
            (t.name.clone(), cost)
        })
        .collect()
}

fn task_nodes(app: &App, profile: Option<&ExecProfile>) -> Vec<TaskNode> {
    app.tasks
        .iter()
        .map(|t| {
            let (cost, output_bytes) = match profile.and_then(|p| p.tasks.get(&t.name)) {
                Some(p) => (p.cost_secs, p.output_bytes),
                None => (t.cost.unwrap_or(1.0), t.output_bytes.unwrap_or(0)),
            };
            TaskNode {
                name: t.name.clone(),
                children: t.children.clone(),
                cost,
                output_bytes,
            }
        })
        .collect()
}

/// Tells every task's node's agent that it hosts the task.
async fn host_tasks(app: &App, placement: &Placement, agents: &[Agent]) -> Result<(), DeployError> {
    for task in &app.tasks {
        let node = placement.node_of(&task.name)?;
        let agent = agents.iter().find(|a| a.node == node).ok_or_else(|| {
            DeployError::unknown_node(&task.name, node, agents.iter().map(|a| a.node.as_str()))
        })?;
        WaveWorkerClient::new(serve::channel(&agent.outer_url)?)
            .host_task(HostTaskRequest {
                task: task.name.clone(),
                children: task.children.clone(),
                ..Default::default()
            })
            .await
            .map_err(|status| DeployError::Host {
                node: node.to_string(),
                task: task.name.clone(),
                status,
            })?;
    }
    Ok(())
}

/// The execution profile for a network-aware scheduler (none otherwise):
/// declared, cached, or measured where `backend`'s tasks run; what could
/// not be measured is estimated, and `up` says so.
async fn execution_profile(
    app: &App,
    request: &PlacementRequest,
    backend: &dyn Backend,
) -> Option<ExecProfile> {
    if !request.scheduler.network_aware() {
        return None;
    }
    let options = ProfileOptions {
        python: request.python.clone(),
        ..request.profile.clone()
    };
    Some(exec_profile::obtain(app, &options, || backend.execution_profile(app, &options)).await)
}

/// Readiness, not a sleep: every droplet has registered with central and,
/// for a network-aware scheduler, every link has been measured.
pub async fn wait_for_nodes(central: &str, wanted: usize, links_too: bool) -> Result<(), DeployError> {
    let mut client = DrupeCentralClient::new(serve::channel(central)?);
    let started = std::time::Instant::now();
    let mut known = 0;
    // Nodes register within a health check's time; links may take longer.
    while started.elapsed()
        < if known >= wanted {
            PROFILE_WAIT
        } else {
            HEALTH_TIMEOUT
        }
    {
        if let Ok(profile) = client.get_resource_profile(ProfileRequest {}).await {
            known = profile.into_inner().nodes.len();
            let measured = !links_too
                || wanted < 2
                || client
                    .get_network_profile(ProfileRequest {})
                    .await
                    .is_ok_and(|p| p.get_ref().complete);
            if known >= wanted && measured {
                return Ok(());
            }
        }
        let pause = if started.elapsed() < Duration::from_secs(1) {
            2
        } else {
            50
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    Err(DeployError::NodesMissing {
        known,
        wanted,
        waited: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::model::Scheduler;
    use std::collections::BTreeMap;

    fn request(scheduler: Scheduler) -> PlacementRequest {
        PlacementRequest {
            scheduler,
            static_mapping: BTreeMap::new(),
            seed: 5,
            python: "python3".into(),
            profile: Default::default(),
            replan: Default::default(),
        }
    }

    fn app() -> App {
        App::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/chain"))
            .expect("example loads")
    }

    #[test]
    fn offline_maps_every_task_onto_the_named_nodes_and_refuses_profiles() {
        let nodes = vec!["a".to_string(), "b".to_string()];
        let placement = offline(&app(), &request(Scheduler::Random), &nodes).expect("random maps");
        assert_eq!(placement.assignments.len(), app().tasks.len());
        assert!(placement.assignments.values().all(|n| nodes.contains(n)));
        assert_eq!(placement.algorithm, "random");
        let again = offline(&app(), &request(Scheduler::Random), &nodes).expect("random maps");
        assert_eq!(again.assignments, placement.assignments, "seeded");
        let err = offline(&app(), &request(Scheduler::Heft), &nodes).unwrap_err();
        assert!(matches!(err, DeployError::SchedulerNeedsProfile("heft")), "{err}");
    }
}
