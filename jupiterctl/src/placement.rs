//! Placing an app's tasks on nodes, the same way on every backend: wait
//! until DRUPE knows every node (and link, for a network-aware scheduler),
//! profile the tasks, ask wave-home for the mapping, then tell each node's
//! wave-worker which tasks it hosts.
//!
//! Addresses come in two flavours because on Docker the roles reach each
//! other by container name while jupiterctl reaches them by IP.

use crate::local::{DeployError, Scheduler};
use jupiter_common::app::App;
use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
use jupiter_common::proto::drupe::central::v1::ProfileRequest;
use jupiter_common::proto::wave::home::v1::wave_home_client::WaveHomeClient;
use jupiter_common::proto::wave::home::v1::{ScheduleRequest, TaskNode};
use jupiter_common::proto::wave::worker::v1::wave_worker_client::WaveWorkerClient;
use jupiter_common::proto::wave::worker::v1::HostTaskRequest;
use jupiter_common::serve::{self, wait_healthy, NotHealthy};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a role may take to answer its health check.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(20);

/// One node's WAVE agent, as wave-home reaches it and as jupiterctl does.
pub struct Agent {
    pub node: String,
    /// The URL wave-home uses (inside the deployment's network).
    pub inner_url: String,
    /// The URL jupiterctl uses.
    pub outer_url: String,
}

/// What the scheduler decided.
pub struct Placement {
    /// task -> node.
    pub assignments: BTreeMap<String, String>,
    pub algorithm: String,
    /// What the scheduler expects one input's makespan to be (0: no model).
    pub predicted_makespan_secs: f64,
}

/// The scheduling choices a user makes.
pub struct PlacementRequest<'a> {
    pub scheduler: Scheduler,
    pub static_mapping: &'a BTreeMap<String, String>,
    pub seed: u64,
    pub python: &'a str,
}

/// Maps `app` over `agents` with wave-home at `wave_home` (jupiterctl's view)
/// and tells every agent which tasks it hosts.
pub async fn place(
    app: &App,
    request: &PlacementRequest<'_>,
    central: &str,
    wave_home: &str,
    agents: &[Agent],
) -> Result<Placement, DeployError> {
    // Profiling the tasks needs no node: it runs while DRUPE measures.
    let (nodes, profiles) = tokio::join!(
        wait_for_nodes(central, agents.len(), request.scheduler.network_aware()),
        execution_profile(app, request)
    );
    nodes?;

    let schedule = ScheduleRequest {
        algorithm: request.scheduler.name().to_string(),
        tasks: app
            .tasks
            .iter()
            .map(|t| {
                let profile = profiles
                    .get(&t.name)
                    .copied()
                    .unwrap_or(crate::exec_profile::TaskProfile {
                        cost_secs: t.cost.unwrap_or(1.0),
                        output_bytes: t.output_bytes.unwrap_or(0),
                    });
                TaskNode {
                    name: t.name.clone(),
                    children: t.children.clone(),
                    cost: profile.cost_secs,
                    output_bytes: profile.output_bytes,
                }
            })
            .collect(),
        nodes: vec![],
        static_mapping: request.static_mapping.clone().into_iter().collect(),
        seed: request.seed,
        workers: agents
            .iter()
            .map(|a| (a.node.clone(), a.inner_url.clone()))
            .collect(),
        timeout_secs: HEALTH_TIMEOUT.as_secs_f64(),
    };
    let mapping = WaveHomeClient::new(serve::channel(wave_home)?)
        .schedule(schedule)
        .await
        .map_err(|s| DeployError::Schedule(s.message().to_string()))?
        .into_inner();
    let assignments: BTreeMap<String, String> = mapping.assignments.into_iter().collect();
    for task in &app.tasks {
        let node = assignments
            .get(&task.name)
            .ok_or_else(|| DeployError::Schedule(format!("wave-home left task {} unmapped", task.name)))?;
        let agent = agents.iter().find(|a| &a.node == node).ok_or_else(|| {
            DeployError::Schedule(format!("wave-home mapped {} to unknown node {node}", task.name))
        })?;
        WaveWorkerClient::new(serve::channel(&agent.outer_url)?)
            .host_task(HostTaskRequest {
                task: task.name.clone(),
                children: task.children.clone(),
                ..Default::default()
            })
            .await
            .map_err(|s| DeployError::Host {
                node: node.clone(),
                task: task.name.clone(),
                message: s.message().to_string(),
            })?;
    }
    Ok(Placement {
        assignments,
        algorithm: mapping.algorithm,
        predicted_makespan_secs: mapping.predicted_makespan_secs,
    })
}

/// The measured execution profile for a network-aware scheduler (none
/// otherwise, or when the app cannot be profiled).
async fn execution_profile(
    app: &App,
    request: &PlacementRequest<'_>,
) -> BTreeMap<String, crate::exec_profile::TaskProfile> {
    if !request.scheduler.network_aware() {
        return BTreeMap::new();
    }
    // Measured on this machine once and normalised by its speed as DRUPE
    // sees it; the scheduler scales it by each node's speed.
    let here = drupe_droplet::resources::measure(None);
    let speed = wave_home::network::speed(here.cpu_count, here.cpu_load);
    match crate::exec_profile::profile(app, request.python, speed).await {
        Ok(profiles) => profiles.into_iter().collect(),
        // The run itself will show what fails, input by input.
        Err(e) => {
            tracing::warn!(error = %e, "no execution profile: every task counts as 1 s");
            eprintln!("warning: {e}; scheduling with every task at 1 s");
            BTreeMap::new()
        }
    }
}

/// Waits until every (role, URL) answers its health check.
pub async fn wait_all_healthy(checks: &[(String, String)]) -> Result<(), NotHealthy> {
    let results = futures::future::join_all(
        checks
            .iter()
            .map(|(what, url)| wait_healthy(what, url, HEALTH_TIMEOUT)),
    )
    .await;
    results.into_iter().collect()
}

/// Readiness, not a sleep: every droplet has registered with central and,
/// for a network-aware scheduler, every link has been measured.
async fn wait_for_nodes(central: &str, wanted: usize, links_too: bool) -> Result<(), DeployError> {
    let mut client = DrupeCentralClient::new(serve::channel(central)?);
    let started = std::time::Instant::now();
    let mut known = 0;
    while started.elapsed() < HEALTH_TIMEOUT {
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
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Err(DeployError::NodesMissing {
        known,
        wanted,
        waited: started.elapsed(),
    })
}
