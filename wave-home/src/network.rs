//! Network-aware mappings: HEFT or CPoP over what DRUPE measured.
//!
//! The model: a task runs single-threaded at its node's per-thread speed,
//! so its time there is `cost / speed`, where a task's cost is its seconds
//! on one full core of the reference machine (speed 1.0). A node's speed
//! is the droplet's benchmark reading (its core's rate times its share of
//! one core) scaled down by what the node's own work already takes (see
//! [`speed`]). A link's cost is the DRUPE model's time for the bytes moved
//! (its fixed part is added to each transfer via the bandwidth it implies).

use crate::offline::{self, Algorithm, Problem};
use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
use jupiter_common::proto::drupe::central::v1::{NetworkProfile, ProfileRequest, ResourceProfile};
use jupiter_common::proto::drupe::droplet::v1::NodeResources;
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
    central: &mut DrupeCentralClient<jupiter_common::serve::Channel>,
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

/// Speed of one task on a node, from its resources: its per-thread speed
/// times the free part of its CPU share (`cpu_load` is the node's own use,
/// not the host's), at least 5% of its speed.
///
/// A node of more than one CPU runs a new task at full per-thread speed as
/// long as a whole CPU of its share is free, so the free share is that of
/// all its threads (`capacity`), capped at one thread's speed; for a node
/// of one CPU or less that is exactly `speed × (1 − load)`.
///
/// A droplet that has not measured yet (or an old one) reports speed 0;
/// then the old estimate stands: its CPUs × (1 − load), at least 0.05.
pub fn speed(node: &NodeResources) -> f64 {
    let free = 1.0 - finite_or(node.cpu_load, 0.0).clamp(0.0, 1.0);
    let per_thread = finite_or(node.speed, 0.0);
    if per_thread <= 0.0 {
        return (node.cpu_count.max(1) as f64 * free).max(0.05);
    }
    let capacity = finite_or(node.capacity, 0.0).max(per_thread);
    (capacity * free).min(per_thread).max(0.05 * per_thread)
}

fn finite_or(x: f64, fallback: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        fallback
    }
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
            // An untrusted link's bandwidth is a lower bound (the largest
            // probe's throughput), still the best figure there is: used as
            // is. The model's fixed cost per transfer (≈ latency) is left
            // out because `offline::Problem` takes only a bandwidth per link.
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
        "nodes": nodes.iter().map(|n| json!({"name": n.node, "speed": speed(n)})).collect::<Vec<_>>(),
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
        current_makespan_secs: 0.0,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn node(speed: f64, capacity: f64, cpu_limit: f64, load: f64) -> NodeResources {
        NodeResources {
            node: "n".into(),
            cpu_count: cpu_limit.ceil() as u32,
            cpu_load: load,
            speed,
            capacity,
            cpu_limit,
            reachable: true,
            ..Default::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn an_idle_node_runs_a_task_at_its_per_thread_speed() {
        assert!(close(speed(&node(0.25, 0.25, 0.25, 0.0)), 0.25));
        assert!(close(speed(&node(1.0, 1.0, 1.0, 0.0)), 1.0));
        // One task cannot use more than one thread of a 1.5-CPU node.
        assert!(close(speed(&node(1.0, 1.5, 1.5, 0.0)), 1.0));
    }

    #[test]
    fn a_quarter_cpu_node_is_slower_than_a_full_one() {
        // The bug this replaces: both read as 1 CPU under the host's load.
        assert!(speed(&node(0.25, 0.25, 0.25, 0.0)) < speed(&node(1.0, 1.0, 1.0, 0.0)) / 3.0);
    }

    #[test]
    fn own_load_takes_its_share() {
        assert!(close(speed(&node(1.0, 1.0, 1.0, 0.5)), 0.5));
        assert!(close(speed(&node(0.5, 0.5, 0.5, 0.25)), 0.375));
        // Half of 1.5 CPUs busy leaves 0.75 of a CPU for a new task.
        assert!(close(speed(&node(1.0, 1.5, 1.5, 0.5)), 0.75));
        // A third busy leaves a whole CPU: full speed.
        assert!(close(speed(&node(1.0, 1.5, 1.5, 1.0 / 3.0)), 1.0));
    }

    #[test]
    fn a_busy_node_keeps_five_percent_of_its_speed() {
        assert!(close(speed(&node(0.5, 0.5, 0.5, 1.0)), 0.025));
        assert!(close(speed(&node(0.5, 0.5, 0.5, 7.0)), 0.025), "load clamped");
        assert!(close(speed(&node(0.5, 0.5, 0.5, -1.0)), 0.5), "load clamped");
        assert!(close(speed(&node(0.5, 0.5, 0.5, f64::NAN)), 0.5));
    }

    #[test]
    fn an_unmeasured_node_falls_back_to_its_cpu_count() {
        assert!(close(speed(&node(0.0, 0.0, 2.0, 0.25)), 1.5));
        assert!(close(speed(&node(0.0, 0.0, 1.0, 1.0)), 0.05));
        let mut old = node(0.0, 0.0, 0.0, 0.0);
        old.cpu_count = 0;
        assert!(close(speed(&old), 1.0));
    }
}
