//! Distributed WAVE, agent side: this node hosts a task; for each of its
//! children the agent picks a node (at random, or greedily: the lowest
//! expected finish of the child, i.e. moving this task's output there over
//! the measured link plus running the child at that node's speed), reports
//! it to wave-home, and if its report decided the child, tells that node.

use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
use jupiter_common::proto::drupe::central::v1::{NetworkProfile, ResourceProfile};
use jupiter_common::proto::wave::home::v1::wave_home_client::WaveHomeClient;
use jupiter_common::proto::wave::home::v1::{AssignmentReport, FailureReport};
use jupiter_common::proto::wave::worker::v1::HostTaskRequest;
use jupiter_common::serve;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::time::Duration;
use tonic::Status;
use wave_home::greedy;
use wave_home::wave::HostError;

/// Why an agent could not appoint its task's children; reported to
/// wave-home, which fails the round with it.
#[derive(Debug, thiserror::Error)]
pub enum AppointError {
    #[error("wave-home's address {url}: {source}")]
    Home {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("drupe-central's address {url}: {source}")]
    Central {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("drupe-central at {url}: {}", status.message())]
    Profile { url: String, status: Status },
    #[error("no node to appoint")]
    NoNode,
    #[error("reporting {child} to wave-home: {}", status.message())]
    Report { child: String, status: Status },
    #[error("no wave-worker known for {0}")]
    UnknownWorker(String),
    #[error(transparent)]
    Host(#[from] HostError),
}

/// Appoints nodes for every child of `request.task`, hosted on `node`.
pub async fn appoint_children(node: String, request: HostTaskRequest) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(request.timeout_secs.max(0.1));
    if let Err(error) = appoint(&node, &request, deadline).await {
        if let Ok(channel) = serve::channel(&request.home) {
            let report = FailureReport {
                round: request.round,
                task: request.task.clone(),
                error: error.to_string(),
            };
            let _ = WaveHomeClient::new(channel).report_failure(report).await;
        }
    }
}

async fn appoint(
    node: &str,
    request: &HostTaskRequest,
    deadline: tokio::time::Instant,
) -> Result<(), AppointError> {
    if request.children.is_empty() {
        return Ok(());
    }
    let channel = serve::channel(&request.home).map_err(|source| AppointError::Home {
        url: request.home.clone(),
        source,
    })?;
    let mut home = WaveHomeClient::new(channel);
    let mut nodes: Vec<String> = request.workers.keys().cloned().collect();
    nodes.sort();
    let profile = if request.mode == "greedy" {
        Some(drupe_profile(&request.central).await?)
    } else {
        None
    };
    // Seeded per (round seed, task) so a run can be repeated.
    let seed = request.seed
        ^ request
            .task
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let mut rng = if request.seed == 0 {
        StdRng::from_entropy()
    } else {
        StdRng::seed_from_u64(seed)
    };
    let output_bytes = request
        .tasks
        .iter()
        .find(|t| t.name == request.task)
        .map_or(0, |t| t.output_bytes);
    // Seconds of sibling work this agent already appointed per node: the
    // children of one task start together, so a node given one sibling is
    // busy for the next (the model HEFT uses too).
    let mut busy: BTreeMap<String, f64> = BTreeMap::new();
    for child in &request.children {
        let cost = request
            .tasks
            .iter()
            .find(|t| &t.name == child)
            .map_or(0.0, |t| t.cost);
        let choice = match &profile {
            Some((network, resources)) => {
                let choice =
                    greedy::choose(Some(node), &nodes, output_bytes, cost, &busy, network, resources);
                if let Some(n) = &choice {
                    let speed = greedy::node_speed(resources, n).unwrap_or(1.0);
                    *busy.entry(n.clone()).or_default() += cost / speed;
                }
                choice
            }
            None => nodes.choose(&mut rng).cloned(),
        }
        .ok_or(AppointError::NoNode)?;
        let reply = home
            .report_assignment(AssignmentReport {
                round: request.round,
                parent: request.task.clone(),
                task: child.clone(),
                node: choice,
            })
            .await
            .map_err(|status| AppointError::Report {
                child: child.clone(),
                status,
            })?
            .into_inner();
        if !reply.appointed {
            continue;
        }
        let grandchildren = request
            .tasks
            .iter()
            .find(|t| &t.name == child)
            .map(|t| t.children.clone());
        let url = request
            .workers
            .get(&reply.node)
            .cloned()
            .ok_or_else(|| AppointError::UnknownWorker(reply.node.clone()))?;
        let next = HostTaskRequest {
            task: child.clone(),
            children: grandchildren.unwrap_or_default(),
            ..request.clone()
        };
        wave_home::wave::host_task(url, reply.node.clone(), next, deadline).await?;
    }
    Ok(())
}

async fn drupe_profile(central: &str) -> Result<(NetworkProfile, ResourceProfile), AppointError> {
    let url = || central.to_string();
    let channel = serve::channel(central).map_err(|source| AppointError::Central { url: url(), source })?;
    wave_home::network::drupe_profile(&mut DrupeCentralClient::new(channel))
        .await
        .map_err(|status| AppointError::Profile { url: url(), status })
}
