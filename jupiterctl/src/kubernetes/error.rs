//! The errors of the Kubernetes backend: each says what is wrong and, where
//! the user can do something about it, what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("deployment name {name:?} is not usable in Kubernetes: {why}")]
    InvalidDeploymentName { name: String, why: String },
    #[error(
        "tasks {first:?} and {second:?} both become the Kubernetes name {name:?} \
         (names are lower-cased, other characters than letters and digits become '-'); rename one of them"
    )]
    TaskNameCollision {
        first: String,
        second: String,
        name: String,
    },
    #[error("task {task:?} has no letter or digit to make a Kubernetes name from")]
    UnnameableTask { task: String },
    #[error("{what} {value:?} is not a valid Kubernetes label value (at most 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit)")]
    InvalidLabelValue { what: &'static str, value: String },
    #[error(
        "app folder {dir}: its files take {size} bytes, over the {limit} bytes one ConfigMap can carry; \
         move large data out of the app folder (sample_input/ is not shipped)"
    )]
    AppTooLarge { dir: PathBuf, size: u64, limit: u64 },
    #[error("app folder {path}: {source}")]
    AppRead { path: PathBuf, source: std::io::Error },
    #[error("task {task:?} has no node in the mapping")]
    Unmapped { task: String },
    #[error("task {task:?} is mapped to node {node:?}, which is not one of the nodes used ({nodes})")]
    MappedOffNodes {
        task: String,
        node: String,
        nodes: String,
    },
    #[error("the cluster has no Ready, schedulable node (cordoned nodes and nodes tainted NoSchedule/NoExecute do not count)")]
    NoNodes,
    #[error("node(s) {missing} are not Ready, schedulable nodes of the cluster (those are: {available})")]
    UnknownNodes { missing: String, available: String },
    #[error("Kubernetes API: {action}: {source}")]
    Api {
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error("{flag} {value:?}: {why}")]
    InvalidFlag {
        flag: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("port-forwarding to {what}: no local port: {source}")]
    Forward {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} has no StatefulSet in the cluster (deleted by hand?)")]
    NoWorkload { what: String },
    #[error("{what} has no running pod with an IP yet (wait for it: --ready-timeout)")]
    NoPod { what: String },
    #[error("not ready after {secs} s: {pending}")]
    NotReady { secs: u64, pending: String },
    #[error(
        "namespace {namespace} exists but is not labelled as made by jupiterctl for deployment {deployment}; \
         not deleting it"
    )]
    ForeignNamespace { namespace: String, deployment: String },
    #[error("where to keep the deployment's certificates: {0}")]
    TlsDir(#[source] crate::state::StateError),
    #[error(transparent)]
    TlsMake(#[from] crate::tls::TlsError),
    #[error("reading certificate {path}: {source}")]
    TlsRead { path: PathBuf, source: std::io::Error },
    #[error("--tls-secret {name:?} is not a Kubernetes Secret name (lower-case letters, digits, '-' and '.', at most 253)")]
    InvalidSecretName { name: String },
    #[error(
        "the TLS Secret would hold key {key:?} for both {first} and {second}; rename one of their tasks"
    )]
    TlsKeyCollision {
        first: String,
        second: String,
        key: String,
    },
}

impl KubeError {
    /// Wraps an API error with what was being done, so the message names the
    /// object and not only the HTTP status.
    pub(crate) fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> KubeError {
        let action = action.into();
        move |source| KubeError::Api { action, source }
    }
}
