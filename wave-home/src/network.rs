//! Network-aware mappings: HEFT or CPoP over what DRUPE measured. A node's
//! speed is its free CPU capacity (CPUs × (1 − load), at least 5% of a
//! CPU); a link's cost is the DRUPE model's time for the bytes moved (its
//! fixed part is added to each transfer via the bandwidth it implies).

use crate::offline::{self, Algorithm, Problem};
use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
use jupiter_common::proto::drupe::central::v1::{NetworkProfile, ProfileRequest, ResourceProfile};
use jupiter_common::proto::wave::home::v1::{Mapping, ScheduleRequest};
use serde_json::json;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NetworkError {
    #[error("no reachable nodes in the DRUPE profile")]
    NoNodes,
    #[error("the DRUPE profile has no measurement of the link {from} -> {to} yet")]
    MissingLink { from: String, to: String },
    #[error("building the scheduling problem: {0}")]
    Problem(String),
}

/// The current network and resource profile from drupe-central.
pub async fn drupe_profile(
    central: &mut DrupeCentralClient<tonic::transport::Channel>,
) -> Result<(NetworkProfile, ResourceProfile), tonic::Status> {
    let unavailable =
        |e: tonic::Status| tonic::Status::unavailable(format!("asking drupe-central: {}", e.message()));
    let network = central
        .get_network_profile(ProfileRequest {})
        .await
        .map_err(unavailable)?
        .into_inner();
    let resources = central
        .get_resource_profile(ProfileRequest {})
        .await
        .map_err(unavailable)?
        .into_inner();
    Ok((network, resources))
}

/// Speed of a node from its resources.
pub fn speed(cpu_count: u32, cpu_load: f64) -> f64 {
    let free = 1.0 - cpu_load.clamp(0.0, 1.0);
    (cpu_count.max(1) as f64 * free).max(0.05)
}

/// The scheduling problem of the request over the profile's reachable nodes.
fn problem_of(
    request: &ScheduleRequest,
    network: &NetworkProfile,
    resources: &ResourceProfile,
) -> Result<Problem, NetworkError> {
    let nodes: Vec<_> = resources
        .nodes
        .iter()
        .filter(|n| n.reachable && (request.nodes.is_empty() || request.nodes.contains(&n.node)))
        .collect();
    if nodes.is_empty() {
        return Err(NetworkError::NoNodes);
    }
    let mut links = Vec::new();
    for a in &nodes {
        for b in &nodes {
            if a.node == b.node {
                continue;
            }
            let link = network
                .links
                .iter()
                .find(|l| {
                    l.from == a.node && l.to == b.node && l.reachable && l.bandwidth_bytes_per_sec > 0.0
                })
                .ok_or_else(|| NetworkError::MissingLink {
                    from: a.node.clone(),
                    to: b.node.clone(),
                })?;
            links.push(json!({"from": a.node, "to": b.node, "bandwidth": link.bandwidth_bytes_per_sec}));
        }
    }
    let mut edges = Vec::new();
    for t in &request.tasks {
        for c in &t.children {
            edges.push(json!({"from": t.name, "to": c, "data": t.output_bytes as f64}));
        }
    }
    let problem = json!({
        "nodes": nodes.iter().map(|n| json!({"name": n.node, "speed": speed(n.cpu_count, n.cpu_load)})).collect::<Vec<_>>(),
        "links": links,
        "tasks": request.tasks.iter().map(|t| json!({"name": t.name, "cost": t.cost})).collect::<Vec<_>>(),
        "edges": edges,
    });
    Problem::parse("the DRUPE profile", &problem.to_string())
        .map_err(|e| NetworkError::Problem(e.to_string()))
}

/// Schedules the request's tasks over the reachable nodes of the profile.
pub fn schedule(
    request: &ScheduleRequest,
    algorithm: Algorithm,
    network: &NetworkProfile,
    resources: &ResourceProfile,
) -> Result<Mapping, NetworkError> {
    let problem = problem_of(request, network, resources)?;
    let schedule = offline::schedule(&problem, algorithm);
    Ok(Mapping {
        algorithm: request.algorithm.clone(),
        assignments: schedule
            .schedule
            .iter()
            .map(|a| (a.task.clone(), a.node.clone()))
            .collect(),
        nodes: problem.node_names.clone(),
        predicted_makespan_secs: schedule.makespan,
    })
}

/// The expected makespan of one input under `mapping` (made by any
/// algorithm), on the same model as HEFT's.
pub fn predict(
    request: &ScheduleRequest,
    mapping: &Mapping,
    network: &NetworkProfile,
    resources: &ResourceProfile,
) -> Result<f64, NetworkError> {
    let problem = problem_of(request, network, resources)?;
    let nodes = problem
        .task_names
        .iter()
        .map(|task| {
            let node = mapping.assignments.get(task);
            node.and_then(|n| problem.node_names.iter().position(|x| x == n))
                .ok_or_else(|| NetworkError::Problem(format!("task {task} is mapped to no reachable node")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(offline::heuristics::evaluate(&problem, &nodes).makespan)
}
