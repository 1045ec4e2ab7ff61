//! The mapping algorithms: static (checked) and random (seeded).

use jupiter_common::proto::wave::home::v1::{Mapping, ScheduleRequest};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MappingError {
    #[error("no nodes to schedule on (no droplet has reported to drupe-central)")]
    NoNodes,
    #[error("the app has no tasks")]
    NoTasks,
    #[error("unknown algorithm {0:?}: expected static, random, heft or cpop")]
    UnknownAlgorithm(String),
    #[error("static mapping: task {task:?} has no node")]
    Unmapped { task: String },
    #[error("static mapping: task {task:?} is mapped to unknown node {node:?} (known nodes: {known})")]
    UnknownNode {
        task: String,
        node: String,
        known: String,
    },
    #[error("static mapping: {task:?} is not a task of the app")]
    UnknownTask { task: String },
}

/// Computes the mapping `request` asks for over `nodes`.
pub fn compute(request: &ScheduleRequest, nodes: &[String]) -> Result<Mapping, MappingError> {
    if nodes.is_empty() {
        return Err(MappingError::NoNodes);
    }
    if request.tasks.is_empty() {
        return Err(MappingError::NoTasks);
    }
    let assignments = match request.algorithm.as_str() {
        "static" => static_mapping(request, nodes)?,
        "random" => random_mapping(request, nodes),
        other => return Err(MappingError::UnknownAlgorithm(other.to_string())),
    };
    Ok(Mapping {
        algorithm: request.algorithm.clone(),
        assignments,
        nodes: nodes.to_vec(),
        predicted_makespan_secs: 0.0,
        current_makespan_secs: 0.0,
    })
}

fn static_mapping(
    request: &ScheduleRequest,
    nodes: &[String],
) -> Result<HashMap<String, String>, MappingError> {
    let known: BTreeSet<&str> = nodes.iter().map(String::as_str).collect();
    let tasks: BTreeSet<&str> = request.tasks.iter().map(|t| t.name.as_str()).collect();
    if let Some(task) = request
        .static_mapping
        .keys()
        .find(|t| !tasks.contains(t.as_str()))
    {
        return Err(MappingError::UnknownTask { task: task.clone() });
    }
    let mut out = HashMap::new();
    for task in &request.tasks {
        let node = request
            .static_mapping
            .get(&task.name)
            .ok_or_else(|| MappingError::Unmapped {
                task: task.name.clone(),
            })?;
        if !known.contains(node.as_str()) {
            return Err(MappingError::UnknownNode {
                task: task.name.clone(),
                node: node.clone(),
                known: nodes.join(", "),
            });
        }
        out.insert(task.name.clone(), node.clone());
    }
    Ok(out)
}

fn random_mapping(request: &ScheduleRequest, nodes: &[String]) -> HashMap<String, String> {
    let mut rng = if request.seed == 0 {
        StdRng::from_entropy()
    } else {
        StdRng::seed_from_u64(request.seed)
    };
    request
        .tasks
        .iter()
        .map(|t| {
            let node = nodes.choose(&mut rng).cloned().unwrap_or_default();
            (t.name.clone(), node)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_common::proto::wave::home::v1::TaskNode;

    fn request(algorithm: &str, mapping: &[(&str, &str)]) -> ScheduleRequest {
        ScheduleRequest {
            algorithm: algorithm.into(),
            tasks: ["a", "b", "c"]
                .iter()
                .map(|n| TaskNode {
                    name: n.to_string(),
                    ..Default::default()
                })
                .collect(),
            nodes: vec![],
            static_mapping: mapping
                .iter()
                .map(|(t, n)| (t.to_string(), n.to_string()))
                .collect(),
            seed: 7,
            ..Default::default()
        }
    }

    fn nodes() -> Vec<String> {
        vec!["node0".into(), "node1".into()]
    }

    #[test]
    fn random_is_seeded_and_uses_known_nodes() {
        let a = compute(&request("random", &[]), &nodes()).unwrap();
        let b = compute(&request("random", &[]), &nodes()).unwrap();
        assert_eq!(a.assignments, b.assignments);
        assert_eq!(a.assignments.len(), 3);
        assert!(a.assignments.values().all(|n| nodes().contains(n)));
    }

    #[test]
    fn static_is_checked() {
        let ok = compute(
            &request("static", &[("a", "node0"), ("b", "node1"), ("c", "node1")]),
            &nodes(),
        )
        .unwrap();
        assert_eq!(ok.assignments["b"], "node1");
        let missing = compute(&request("static", &[("a", "node0"), ("b", "node1")]), &nodes());
        assert_eq!(missing.unwrap_err(), MappingError::Unmapped { task: "c".into() });
        let bad_node = compute(
            &request("static", &[("a", "node9"), ("b", "node1"), ("c", "node1")]),
            &nodes(),
        );
        assert!(bad_node.unwrap_err().to_string().contains("node9"));
        let extra = compute(
            &request(
                "static",
                &[("a", "node0"), ("b", "node1"), ("c", "node1"), ("zz", "node0")],
            ),
            &nodes(),
        );
        assert!(extra.unwrap_err().to_string().contains("zz"));
    }

    #[test]
    fn no_nodes_is_an_error() {
        assert_eq!(
            compute(&request("random", &[]), &[]).unwrap_err(),
            MappingError::NoNodes
        );
    }
}
