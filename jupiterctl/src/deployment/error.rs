//! What can go wrong bringing a deployment up, driving it or taking it
//! down, on any backend. A backend's own failures (the Docker engine, the
//! Kubernetes API, a port on loopback) come wrapped, with their cause.

use jupiter_common::serve::NotHealthy;
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    NotHealthy(#[from] NotHealthy),
    #[error(
        "drupe-central knows {known} of {wanted} nodes, or has not measured every link, after {waited:?}"
    )]
    NodesMissing {
        known: usize,
        wanted: usize,
        waited: Duration,
    },
    #[error("wave-home could not map the app: {}", .0.message())]
    Schedule(tonic::Status),
    #[error("wave-home left task {task} unmapped")]
    Unmapped { task: String },
    #[error("task {task} is mapped to node {node}, which is not a node of the deployment ({nodes})")]
    UnknownNode {
        task: String,
        node: String,
        nodes: String,
    },
    #[error(
        "--scheduler {0} needs the DRUPE network profile of a running deployment, which `render` has not; \
         use --scheduler random or --mapping FILE (`up` and `run` map with {0} on the cluster)"
    )]
    SchedulerNeedsProfile(&'static str),
    #[error("mapping: {0}")]
    Mapping(#[from] wave_home::mapping::MappingError),
    #[error("telling {node}'s wave-worker it hosts {task}: {}", .status.message())]
    Host {
        node: String,
        task: String,
        status: tonic::Status,
    },
    #[error("no role {what} in this deployment")]
    NoSuchRole { what: String },
    #[error("{what}: not possible on this {backend} deployment: {why}")]
    Unsupported {
        what: String,
        backend: &'static str,
        why: String,
    },
    #[error("address: {0}")]
    Address(#[from] tonic::transport::Error),
    #[error("the app: {0}")]
    App(#[from] jupiter_common::app::AppError),
    #[error("no node is left to move {tasks} to")]
    NoSurvivors { tasks: String },
    #[error("asking circe-home to replay the unfinished inputs: {}", .0.message())]
    Replay(tonic::Status),
    #[error("re-mapping: {what}: {}", .status.message())]
    Replan { what: String, status: tonic::Status },
    /// The backend's own failure (engine, API server, loopback ports).
    #[error(transparent)]
    Backend(BoxError),
}

impl DeployError {
    /// `task` mapped to `node`, which is none of `nodes`.
    pub fn unknown_node<'a>(task: &str, node: &str, nodes: impl IntoIterator<Item = &'a str>) -> Self {
        DeployError::UnknownNode {
            task: task.to_string(),
            node: node.to_string(),
            nodes: nodes.into_iter().collect::<Vec<_>>().join(", "),
        }
    }

    /// Wraps a backend's own error.
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        DeployError::Backend(Box::new(error))
    }
}
