//! The Kubernetes backend: one namespace per deployment, the home roles
//! with Services (drupe-central and circe-home as StatefulSets on claims of
//! their own, wave-home a Deployment), droplets and wave-workers as
//! DaemonSets (each with a headless Service), one circe-worker StatefulSet
//! (its queue on a claim) and Service per task pinned to its mapped node,
//! the app's files in a ConfigMap.
//!
//! [`render`] is pure (no cluster needed); [`up`] applies what it rendered
//! with server-side apply and waits for readiness; [`down`] deletes by label.
//! jupiterctl reaches the roles through port-forwards of the API server.
//! [`Kubernetes`] is the backend `up`, `status` and `down` drive.

mod app_files;
mod apply;
mod backend;
pub mod cluster;
mod error;
mod forward;
mod manifests;
pub mod names;
mod objects;
mod pods;
pub mod roles;
pub mod tls;

use jupiter_common::app::App;
use std::collections::BTreeMap;

pub use app_files::{encode_key, MAX_APP_BYTES};
pub use apply::{apply, down, up, wait_ready, Wait};
pub use backend::{KubeConfig, Kubernetes};
pub use error::KubeError;
pub use manifests::{render, render_roles, render_workers, to_yaml, Object};
pub use tls::KubeTls;

/// What a deployment is rendered from, besides the app.
#[derive(Debug, Clone)]
pub struct KubeOptions {
    /// Deployment name (a DNS label); the namespace is `jupiter-<deployment>`.
    pub deployment: String,
    /// Images are `<image_prefix>/<role>:<image_tag>`.
    pub image_prefix: String,
    pub image_tag: String,
    pub image_pull_policy: String,
    /// Nodes the droplets and wave-workers run on; empty: every node.
    pub nodes: Vec<String>,
    /// Task -> node; must map every task.
    pub mapping: BTreeMap<String, String>,
    /// RUST_LOG of every role.
    pub rust_log: String,
    /// Requests and limits of every container.
    pub resources: Resources,
    /// Limits (`cpu`, `memory`) of the circe-workers pinned to a node, from
    /// the sizes the node list gives it: node -> limits.
    pub node_limits: BTreeMap<String, BTreeMap<String, String>>,
    /// Fresh interpreters, timeouts and interpreter lifetimes for tasks
    /// that do not set their own (given to every circe-worker).
    pub runner: jupiter_common::cli::RunnerFlags,
    /// `--otlp-endpoint`: where every role sends its spans (None: nowhere).
    pub otlp_endpoint: Option<String>,
    /// Mutual TLS: the certificates jupiterctl makes (`up --tls`) or an
    /// existing Secret (`render --tls-secret`); None: plaintext.
    pub tls: Option<KubeTls>,
    /// The claims of the queues, circe-home's records and DRUPE's store.
    pub storage: Storage,
}

/// The PersistentVolumeClaims of the roles that keep state: their storage
/// class and sizes (Kubernetes quantities).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// None: the cluster's default StorageClass.
    pub class: Option<String>,
    /// Each circe-worker's queue.
    pub queue_size: String,
    /// circe-home's records of every input (and the outputs).
    pub home_size: String,
    /// drupe-central's profile store.
    pub drupe_size: String,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            class: None,
            queue_size: "1Gi".to_string(),
            home_size: "1Gi".to_string(),
            drupe_size: "256Mi".to_string(),
        }
    }
}

/// Resource quantities by name (`cpu`, `memory`), as Kubernetes writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub requests: BTreeMap<String, String>,
    pub limits: BTreeMap<String, String>,
}

impl Resources {
    /// Small requests so the scheduler accounts for the pods, no limits: a
    /// task's needs are the app's business.
    pub fn modest() -> Resources {
        Resources {
            requests: BTreeMap::from([
                ("cpu".to_string(), "50m".to_string()),
                ("memory".to_string(), "64Mi".to_string()),
            ]),
            limits: BTreeMap::new(),
        }
    }
}

impl Default for KubeOptions {
    /// The defaults, for a deployment called `app`.
    fn default() -> Self {
        KubeOptions {
            deployment: "app".to_string(),
            image_prefix: "jupiter".to_string(),
            image_tag: "dev".to_string(),
            image_pull_policy: "IfNotPresent".to_string(),
            nodes: Vec::new(),
            mapping: BTreeMap::new(),
            rust_log: "info".to_string(),
            resources: Resources::modest(),
            node_limits: BTreeMap::new(),
            runner: Default::default(),
            otlp_endpoint: None,
            tls: None,
            storage: Storage::default(),
        }
    }
}

impl KubeOptions {
    /// Defaults for `app`: deployment named after it, `jupiter/<role>:dev`
    /// images, no mapping yet.
    pub fn for_app(app: &App) -> KubeOptions {
        KubeOptions {
            deployment: names::default_deployment(app),
            ..KubeOptions::default()
        }
    }
}
