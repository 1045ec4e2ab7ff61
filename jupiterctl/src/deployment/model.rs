//! The data of a deployment, the same on every backend: the scheduling a
//! user asked for, every running role and where it answers, the mapping,
//! and the state file's record of all of it.

use super::error::DeployError;
use crate::exec_profile::ProfileOptions;
use jupiter_common::role::Role;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheduler {
    /// The mapping from --mapping (or the app's own `mapping:`).
    Static,
    /// Each task on a node drawn at random (seeded by --seed).
    Random,
    /// HEFT over the DRUPE profile and the execution profile.
    Heft,
    /// CPoP over the DRUPE profile and the execution profile.
    Cpop,
    /// Distributed WAVE: each node's agent appoints the nodes of its task's
    /// children greedily (lowest expected finish on the DRUPE profile).
    WaveGreedy,
    /// Distributed WAVE with random appointments (seeded by --seed).
    WaveRandom,
}

impl Scheduler {
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Static => "static",
            Scheduler::Random => "random",
            Scheduler::Heft => "heft",
            Scheduler::Cpop => "cpop",
            Scheduler::WaveGreedy => "wave-greedy",
            Scheduler::WaveRandom => "wave-random",
        }
    }

    /// Whether the algorithm needs the measured network and execution profile.
    pub fn network_aware(self) -> bool {
        matches!(self, Scheduler::Heft | Scheduler::Cpop | Scheduler::WaveGreedy)
    }

    /// Whether jupiterctl can compute the mapping by itself, from the
    /// nodes' names alone (no DRUPE, no agents).
    pub fn offline(self) -> bool {
        matches!(self, Scheduler::Static | Scheduler::Random)
    }
}

/// The scheduling choices a user makes.
#[derive(Debug, Clone)]
pub struct PlacementRequest {
    pub scheduler: Scheduler,
    /// task -> node, for `static`.
    pub static_mapping: BTreeMap<String, String>,
    /// Seed of the random algorithms (0: a fresh one each time).
    pub seed: u64,
    /// Python that runs original Jupiter tasks when they are profiled.
    pub python: String,
    /// How the execution profile is taken (network-aware schedulers);
    /// its `python` is the one above.
    pub profile: ProfileOptions,
    /// When the tasks are mapped again after the profile drifted.
    pub replan: ReplanOptions,
}

/// When a deployment mapped by heft or cpop is mapped again while inputs
/// run: once a node's speed or a link's bandwidth has changed by more than
/// `factor` (either way) in two DRUPE readings in a row, wave-home maps the
/// app again over the current profile; the new mapping is taken if its
/// predicted makespan is lower by more than `gain` (a fraction).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReplanOptions {
    /// 0 turns re-mapping off.
    pub factor: f64,
    pub gain: f64,
}

impl Default for ReplanOptions {
    fn default() -> Self {
        Self {
            factor: 2.0,
            gain: 0.2,
        }
    }
}

impl ReplanOptions {
    pub fn enabled(&self) -> bool {
        self.factor > 1.0
    }
}

/// How drupe-central probes the links of a deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeOptions {
    pub interval: Duration,
    pub sizes: Vec<u64>,
    /// Adaptive probing: the largest payload doubles until it lasts this
    /// many seconds (0 turns it off).
    pub min_secs: f64,
    /// The largest payload adaptive probing sends.
    pub max_bytes: u64,
}

impl Default for ProbeOptions {
    /// What `run` and `up` use unless told: small fixed payloads, grown
    /// per link until a transfer lasts 20 ms (emulated links are fast, and
    /// a small payload on them times only the per-call overhead).
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            sizes: vec![16 * 1024, 128 * 1024],
            min_secs: 0.02,
            max_bytes: 64 << 20,
        }
    }
}

/// One node's WAVE agent, as wave-home reaches it and as jupiterctl does
/// (on Docker the roles reach each other by container name, jupiterctl by
/// address).
#[derive(Debug, Clone)]
pub struct Agent {
    pub node: String,
    /// The URL wave-home uses (inside the deployment's network).
    pub inner_url: String,
    /// The URL jupiterctl uses.
    pub outer_url: String,
}

/// What the long-lived roles offer the placement phase.
#[derive(Debug, Clone)]
pub enum ControlPlane {
    /// jupiterctl reaches drupe-central and wave-home: the deployment maps
    /// its tasks itself, with any scheduler.
    Reachable {
        central: String,
        wave_home: String,
        agents: Vec<Agent>,
    },
    /// The scheduler needs no profile and the backend asks for no round
    /// trip through the roles (Kubernetes with static or random): the
    /// mapping is computed here over the nodes' names.
    Offline { nodes: Vec<String> },
}

/// What the scheduler decided.
#[derive(Debug, Clone)]
pub struct Placement {
    /// task -> node.
    pub assignments: BTreeMap<String, String>,
    pub algorithm: String,
    /// What the scheduler expects one input's makespan to be (0: no model).
    pub predicted_makespan_secs: f64,
    /// The tasks' costs it mapped with (network-aware schedulers).
    pub costs: BTreeMap<String, TaskCost>,
}

/// A task as a network-aware scheduler weighs it: seconds on a reference
/// core, and bytes sent to each child per input.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TaskCost {
    pub cost_secs: f64,
    pub output_bytes: u64,
}

impl Placement {
    /// The node `task` is mapped to.
    pub fn node_of(&self, task: &str) -> Result<&str, DeployError> {
        self.assignments
            .get(task)
            .map(String::as_str)
            .ok_or_else(|| DeployError::Unmapped {
                task: task.to_string(),
            })
    }
}

/// One running instance of a role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleInstance {
    pub role: Role,
    /// The node it runs on (per-node roles and workers).
    pub node: Option<String>,
    /// The task it runs (workers).
    pub task: Option<String>,
    /// Where jupiterctl reaches it; on Kubernetes, where the other roles do.
    pub url: String,
    /// The process it runs in, where this machine can signal it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Its container, on Docker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// How many times it was started again after it died, where something
    /// restarts it (`--processes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u32>,
    /// Its Prometheus endpoint (`http://HOST:PORT/metrics`), where this
    /// machine can reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    /// Where its output goes, when it has a log file of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
}

impl RoleInstance {
    pub fn new(role: Role, url: impl Into<String>) -> Self {
        Self {
            role,
            node: None,
            task: None,
            url: url.into(),
            pid: None,
            container: None,
            restarts: None,
            metrics: None,
            log: None,
        }
    }

    pub fn on(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    pub fn running(mut self, task: impl Into<String>) -> Self {
        self.task = Some(task.into());
        self
    }

    /// How tables and errors name it: `circe-home`, `drupe-droplet node1`,
    /// `circe-worker task3`.
    pub fn label(&self) -> String {
        match (&self.task, &self.node) {
            (Some(task), _) => format!("{} {task}", self.role),
            (None, Some(node)) => format!("{} {node}", self.role),
            (None, None) => self.role.to_string(),
        }
    }
}

/// What every backend keeps of the deployment it drives.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// The deployment's id: unique on this machine or cluster.
    pub id: String,
    /// Where circe-home writes the outputs.
    pub output: PathBuf,
    /// Every role instance, as it runs now.
    pub roles: Vec<RoleInstance>,
}

impl Inventory {
    pub fn new(id: impl Into<String>, output: PathBuf) -> Self {
        Self {
            id: id.into(),
            output,
            roles: Vec::new(),
        }
    }

    /// What a state file's summary says the deployment has.
    pub fn of(summary: &Summary) -> Self {
        Self {
            id: summary.deployment.clone(),
            output: summary.output.clone(),
            roles: summary.roles.clone(),
        }
    }

    /// The URL of the first instance of `role`.
    pub fn url(&self, role: Role) -> String {
        self.roles
            .iter()
            .find(|r| r.role == role)
            .map(|r| r.url.clone())
            .unwrap_or_default()
    }
}

/// A role's health, as its backend can tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub healthy: bool,
    /// Why not, when not.
    pub detail: String,
}

impl Health {
    pub fn serving() -> Self {
        Self {
            healthy: true,
            detail: String::new(),
        }
    }

    pub fn down(detail: impl Into<String>) -> Self {
        Self {
            healthy: false,
            detail: detail.into(),
        }
    }
}

/// What a deployment that is up knows of itself, on every backend; the
/// state file keeps it between commands.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// The deployment's id.
    pub deployment: String,
    /// The app folder.
    pub app: PathBuf,
    /// Where the outputs land (on Kubernetes: inside circe-home's pod).
    pub output: PathBuf,
    /// The scheduler that made the mapping.
    pub scheduler: String,
    /// What it expects one input's makespan to be (0: no model).
    pub predicted_makespan_secs: f64,
    /// task -> node.
    pub mapping: BTreeMap<String, String>,
    pub roles: Vec<RoleInstance>,
    /// Which placement the mapping is: 0 the first, one more each time the
    /// tasks were mapped again after the profile drifted.
    #[serde(default)]
    pub placement: u32,
    /// When to map again (from `up`'s flags, so that `submit` does the same).
    #[serde(default)]
    pub replan: ReplanOptions,
    /// The tasks' costs the mapping was made with, for mapping again the
    /// same way (empty for the schedulers that take none).
    #[serde(default)]
    pub costs: BTreeMap<String, TaskCost>,
    /// Under `--tls`: the user's certificate, key and the deployment's CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<jupiter_common::tls::Files>,
    /// From the start of `up` to every role healthy.
    #[serde(skip)]
    pub startup: Duration,
}

impl Summary {
    /// Where the roles answer, by kind.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints::of(&self.roles)
    }

    /// The nodes of the deployment, in the order they were made.
    pub fn nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = Vec::new();
        for role in &self.roles {
            if let (Role::DrupeDroplet, Some(node)) = (role.role, &role.node) {
                if !nodes.contains(node) {
                    nodes.push(node.clone());
                }
            }
        }
        nodes
    }
}

/// Where every role of a deployment answers, by kind: a view of its
/// [`RoleInstance`]s.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub drupe_central: String,
    pub wave_home: String,
    pub circe_home: String,
    pub nodes: Vec<NodeEndpoints>,
    /// task -> its worker.
    pub workers: BTreeMap<String, WorkerEndpoint>,
}

#[derive(Debug, Clone)]
pub struct NodeEndpoints {
    pub name: String,
    pub drupe_droplet: String,
    pub wave_worker: String,
}

#[derive(Debug, Clone)]
pub struct WorkerEndpoint {
    pub node: String,
    pub address: String,
}

impl Endpoints {
    pub fn of(roles: &[RoleInstance]) -> Self {
        let mut endpoints = Endpoints::default();
        for r in roles {
            let url = r.url.clone();
            let node = r.node.clone().unwrap_or_default();
            match r.role {
                Role::DrupeCentral => endpoints.drupe_central = url,
                Role::WaveHome => endpoints.wave_home = url,
                Role::CirceHome => endpoints.circe_home = url,
                Role::DrupeDroplet | Role::WaveWorker => {
                    let entry = match endpoints.nodes.iter().position(|n| n.name == node) {
                        Some(i) => &mut endpoints.nodes[i],
                        None => {
                            endpoints.nodes.push(NodeEndpoints {
                                name: node,
                                drupe_droplet: String::new(),
                                wave_worker: String::new(),
                            });
                            let last = endpoints.nodes.len() - 1;
                            &mut endpoints.nodes[last]
                        }
                    };
                    if r.role == Role::DrupeDroplet {
                        entry.drupe_droplet = url;
                    } else {
                        entry.wave_worker = url;
                    }
                }
                Role::CirceWorker => {
                    let task = r.task.clone().unwrap_or_default();
                    endpoints
                        .workers
                        .insert(task, WorkerEndpoint { node, address: url });
                }
            }
        }
        endpoints
    }
}

/// The state file's record of a deployment that is up: what every backend
/// knows ([`Summary`]) and, per backend, what finds it again from another
/// process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum DeploymentState {
    /// Every role inside the `jupiterctl up` process `pid`.
    Local {
        pid: u32,
        #[serde(flatten)]
        summary: Summary,
    },
    /// Containers of the local Docker engine on network `network`, all
    /// labelled with the deployment's id.
    Docker {
        network: String,
        #[serde(flatten)]
        summary: Summary,
        /// How it was deployed (node list, images, addresses), so that
        /// another process can start workers on its nodes: recovery from a
        /// lost node during `submit`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        setup: Option<serde_json::Value>,
    },
    /// Objects in `namespace` of the current kubeconfig context's cluster.
    Kubernetes {
        namespace: String,
        /// The cluster nodes the deployment uses.
        nodes: Vec<String>,
        #[serde(flatten)]
        summary: Summary,
    },
}

impl DeploymentState {
    pub fn summary(&self) -> &Summary {
        match self {
            DeploymentState::Local { summary, .. }
            | DeploymentState::Docker { summary, .. }
            | DeploymentState::Kubernetes { summary, .. } => summary,
        }
    }

    /// The backend's name, as `--backend` takes it.
    pub fn backend(&self) -> &'static str {
        match self {
            DeploymentState::Local { .. } => "local",
            DeploymentState::Docker { .. } => "docker",
            DeploymentState::Kubernetes { .. } => "kubernetes",
        }
    }
}

/// A fresh deployment id: the app's name and a suffix unique on this host,
/// usable as a Docker object name.
pub fn new_id(app_name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let mixed = nanos ^ std::process::id().rotate_left(16);
    format!(
        "jupiter-{}-{:06x}",
        sanitize(app_name).chars().take(20).collect::<String>(),
        mixed & 0xff_ffff
    )
}

/// A name part made of what Docker accepts: lower-case letters, digits, '-'.
pub fn sanitize(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches('-');
    if trimmed.is_empty() {
        "x".into()
    } else {
        trimmed.chars().take(40).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            deployment: "jupiter-x-1".into(),
            app: "app".into(),
            output: "out".into(),
            scheduler: "heft".into(),
            predicted_makespan_secs: 1.5,
            mapping: BTreeMap::from([("t".into(), "n0".into())]),
            roles: vec![
                RoleInstance::new(Role::CirceHome, "http://h:1"),
                RoleInstance::new(Role::DrupeDroplet, "http://d:2").on("n0"),
                RoleInstance::new(Role::WaveWorker, "http://w:3").on("n0"),
                RoleInstance::new(Role::CirceWorker, "http://c:4")
                    .on("n0")
                    .running("t"),
            ],
            placement: 0,
            replan: Default::default(),
            costs: Default::default(),
            tls: None,
            startup: Duration::ZERO,
        }
    }

    #[test]
    fn ids_and_names_are_docker_safe() {
        assert_eq!(sanitize("My App_1"), "my-app-1");
        assert_eq!(sanitize("__"), "x");
        let id = new_id("dummy_app");
        assert!(id.starts_with("jupiter-dummy-app-"), "{id}");
    }

    #[test]
    fn endpoints_are_a_view_of_the_roles() {
        let e = summary().endpoints();
        assert_eq!(e.circe_home, "http://h:1");
        assert_eq!(e.nodes.len(), 1);
        assert_eq!(
            (e.nodes[0].drupe_droplet.as_str(), e.nodes[0].wave_worker.as_str()),
            ("http://d:2", "http://w:3")
        );
        assert_eq!(e.workers["t"].address, "http://c:4");
        assert_eq!(summary().nodes(), ["n0"]);
    }

    #[test]
    fn the_state_is_tagged_by_backend_and_reads_back() {
        let state = DeploymentState::Docker {
            network: "net".into(),
            summary: summary(),
            setup: None,
        };
        let json = serde_json::to_value(&state).expect("serialises");
        assert_eq!(json["backend"], "docker");
        assert_eq!(json["network"], "net");
        assert_eq!(json["deployment"], "jupiter-x-1");
        assert_eq!(json["roles"][3]["role"], "circe-worker");
        let back: DeploymentState = serde_json::from_value(json).expect("reads back");
        assert_eq!(back.summary().roles, summary().roles);
        assert_eq!(back.backend(), "docker");
    }
}
