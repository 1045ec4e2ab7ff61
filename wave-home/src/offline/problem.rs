//! The problem file of `jupiterctl schedule`: nodes with speeds, links with
//! bandwidths, tasks with costs and edges with data sizes, read from JSON
//! and checked, every error naming the field.

use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProblem {
    nodes: Vec<RawNode>,
    #[serde(default)]
    links: Vec<RawLink>,
    tasks: Vec<RawTask>,
    #[serde(default)]
    edges: Vec<RawEdge>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: String,
    speed: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    from: String,
    to: String,
    bandwidth: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    name: String,
    cost: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdge {
    from: String,
    to: String,
    data: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProblemError {
    #[error("{file}: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}: line {line} column {column}: {message}")]
    Json {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {field}: {message}")]
    Invalid {
        file: String,
        field: String,
        message: String,
    },
}

/// A checked problem, indexed: tasks and nodes by position.
#[derive(Debug, Clone)]
pub struct Problem {
    pub node_names: Vec<String>,
    pub speeds: Vec<f64>,
    /// `inverse_bandwidth[a * n + b]`: seconds per unit of data from a to b; 0 on the diagonal.
    pub inverse_bandwidth: Vec<f64>,
    pub task_names: Vec<String>,
    pub costs: Vec<f64>,
    /// Per task, (successor, data).
    pub succ: Vec<Vec<(usize, f64)>>,
    /// Per task, (predecessor, data).
    pub pred: Vec<Vec<(usize, f64)>>,
    /// Tasks in a topological order.
    pub topo: Vec<usize>,
}

impl Problem {
    pub fn load(path: &Path) -> Result<Self, ProblemError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ProblemError::Read {
            file: file.clone(),
            source,
        })?;
        Self::parse(&file, &text)
    }

    /// Parses and checks `text`; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, ProblemError> {
        let raw: RawProblem = serde_json::from_str(text).map_err(|e| ProblemError::Json {
            file: file.to_string(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        let invalid = |field: String, message: String| ProblemError::Invalid {
            file: file.to_string(),
            field,
            message,
        };
        let positive = |field: String, value: f64, what: &str| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(invalid(
                    field,
                    format!("{what} must be a positive number, got {value}"),
                ))
            }
        };
        let non_negative = |field: String, value: f64, what: &str| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(invalid(
                    field,
                    format!("{what} must be a number >= 0, got {value}"),
                ))
            }
        };
        if raw.nodes.is_empty() {
            return Err(invalid("nodes".into(), "at least one node is needed".into()));
        }
        if raw.tasks.is_empty() {
            return Err(invalid("tasks".into(), "at least one task is needed".into()));
        }
        let mut node_index = HashMap::new();
        for (i, node) in raw.nodes.iter().enumerate() {
            positive(format!("nodes[{i}].speed"), node.speed, "speed")?;
            if node_index.insert(node.name.as_str(), i).is_some() {
                return Err(invalid(
                    format!("nodes[{i}].name"),
                    format!("node {:?} is listed twice", node.name),
                ));
            }
        }
        let n = raw.nodes.len();
        let mut bandwidth = vec![f64::NAN; n * n];
        for (i, link) in raw.links.iter().enumerate() {
            positive(format!("links[{i}].bandwidth"), link.bandwidth, "bandwidth")?;
            let end = |name: &str, side: &str| {
                node_index
                    .get(name)
                    .copied()
                    .ok_or_else(|| invalid(format!("links[{i}].{side}"), format!("unknown node {name:?}")))
            };
            let (a, b) = (end(&link.from, "from")?, end(&link.to, "to")?);
            if a == b {
                return Err(invalid(
                    format!("links[{i}]"),
                    format!("a link from {:?} to itself", link.from),
                ));
            }
            if !bandwidth[a * n + b].is_nan() {
                return Err(invalid(
                    format!("links[{i}]"),
                    format!("the link {} -> {} is listed twice", link.from, link.to),
                ));
            }
            bandwidth[a * n + b] = link.bandwidth;
        }
        let mut inverse_bandwidth = vec![0.0; n * n];
        for a in 0..n {
            for b in 0..n {
                if a == b {
                    continue;
                }
                // Symmetric when only one direction is listed.
                let bw = if bandwidth[a * n + b].is_nan() {
                    bandwidth[b * n + a]
                } else {
                    bandwidth[a * n + b]
                };
                if bw.is_nan() {
                    return Err(invalid(
                        "links".into(),
                        format!(
                            "no link between {:?} and {:?}",
                            raw.nodes[a].name, raw.nodes[b].name
                        ),
                    ));
                }
                inverse_bandwidth[a * n + b] = 1.0 / bw;
            }
        }
        let mut task_index = HashMap::new();
        for (i, task) in raw.tasks.iter().enumerate() {
            non_negative(format!("tasks[{i}].cost"), task.cost, "cost")?;
            if task_index.insert(task.name.as_str(), i).is_some() {
                return Err(invalid(
                    format!("tasks[{i}].name"),
                    format!("task {:?} is listed twice", task.name),
                ));
            }
        }
        let t = raw.tasks.len();
        let mut succ = vec![Vec::new(); t];
        let mut pred = vec![Vec::new(); t];
        let mut seen = std::collections::HashSet::new();
        for (i, edge) in raw.edges.iter().enumerate() {
            non_negative(format!("edges[{i}].data"), edge.data, "data")?;
            let end = |name: &str, side: &str| {
                task_index
                    .get(name)
                    .copied()
                    .ok_or_else(|| invalid(format!("edges[{i}].{side}"), format!("unknown task {name:?}")))
            };
            let (a, b) = (end(&edge.from, "from")?, end(&edge.to, "to")?);
            if a == b || !seen.insert((a, b)) {
                return Err(invalid(
                    format!("edges[{i}]"),
                    format!(
                        "the edge {} -> {} is a self-loop or listed twice",
                        edge.from, edge.to
                    ),
                ));
            }
            succ[a].push((b, edge.data));
            pred[b].push((a, edge.data));
        }
        let topo = topological_order(&succ, &pred).ok_or_else(|| {
            invalid(
                "edges".into(),
                "the edges form a cycle (a task graph must be acyclic)".into(),
            )
        })?;
        Ok(Problem {
            node_names: raw.nodes.iter().map(|n| n.name.clone()).collect(),
            speeds: raw.nodes.iter().map(|n| n.speed).collect(),
            inverse_bandwidth,
            task_names: raw.tasks.iter().map(|t| t.name.clone()).collect(),
            costs: raw.tasks.iter().map(|t| t.cost).collect(),
            succ,
            pred,
            topo,
        })
    }

    pub fn nodes(&self) -> usize {
        self.speeds.len()
    }

    pub fn tasks(&self) -> usize {
        self.costs.len()
    }

    /// Run time of `task` on `node`.
    pub fn exec(&self, task: usize, node: usize) -> f64 {
        self.costs[task] / self.speeds[node]
    }

    /// Transfer time of `data` from node `a` to node `b`.
    pub fn comm(&self, data: f64, a: usize, b: usize) -> f64 {
        data * self.inverse_bandwidth[a * self.nodes() + b]
    }
}

/// Kahn's algorithm, lowest index first among ready tasks; `None` on a cycle.
fn topological_order(succ: &[Vec<(usize, f64)>], pred: &[Vec<(usize, f64)>]) -> Option<Vec<usize>> {
    let mut indegree: Vec<usize> = pred.iter().map(Vec::len).collect();
    let mut ready: std::collections::BTreeSet<usize> =
        (0..succ.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(succ.len());
    while let Some(task) = ready.pop_first() {
        order.push(task);
        for &(s, _) in &succ[task] {
            indegree[s] -= 1;
            if indegree[s] == 0 {
                ready.insert(s);
            }
        }
    }
    (order.len() == succ.len()).then_some(order)
}
