//! The Docker backend: every role in its own container, on a private
//! network per deployment. Per emulated node a droplet, a wave-worker and
//! the circe-workers of the tasks mapped there, all limited to the node's
//! CPU and memory; the home roles beside them. Roles reach each other by
//! container name; jupiterctl reaches them by their addresses on the
//! network's bridge. Every object carries the deployment's label, which is
//! all `down` removes by. A deployment lives in the engine, not in this
//! process: `status`, `submit` and `down` find it again by its id.

pub mod engine;
pub mod node_cgroup;
mod objects;
pub mod profile;
pub mod shaping;
pub mod spec;
mod watch;

pub use objects::{exists, remove, Removed};

use crate::deployment::{
    self, wait_all_healthy, Agent, Backend, ControlPlane, DeployError, DeploymentState, Placement,
    ProbeOptions, RoleInstance, Summary, HEALTH_TIMEOUT,
};
use crate::deployment::{Inventory, Stopped};
use crate::node_list::NodeSpec;
use engine::{Engine, EngineError};
use jupiter_common::app::App;
use jupiter_common::cli::RunnerFlags;
use jupiter_common::env;
use jupiter_common::role::Role;
use jupiter_common::serve::{wait_healthy, NotHealthy};
use jupiter_common::sync::LockExt;
use spec::{ContainerSpec, DEPLOYMENT_LABEL, NODE_LABEL};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the app folder appears inside the containers.
const APP_MOUNT: &str = "/app";
/// Where the output folder appears inside circe-home.
const OUTPUT_MOUNT: &str = "/output";
/// Where a node's volume appears inside its containers.
const NODE_MOUNT: &str = "/var/lib/jupiter";
/// Where a role's certificate folder appears inside its container.
const TLS_MOUNT: &str = "/etc/jupiter/tls";

/// Where and how a Docker deployment runs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DockerConfig {
    /// The emulated nodes and each one's CPU and memory.
    pub nodes: Vec<NodeSpec>,
    pub images: Images,
    /// Outputs land here (bind-mounted into circe-home); an absolute path.
    pub output: PathBuf,
    pub probe: ProbeOptions,
    /// Fresh interpreters, timeouts and interpreter lifetimes for tasks
    /// that do not set their own (given to every circe-worker).
    pub runner: RunnerFlags,
    /// `--otlp-endpoint`: where every role sends its spans (None: nowhere).
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// `--tls`: mutual TLS everywhere; each container gets its own
    /// certificate folder, bind-mounted read-only.
    #[serde(default)]
    pub tls: bool,
}

/// What the state file keeps of how a deployment was made.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Setup {
    config: DockerConfig,
    cgroup_parents: BTreeMap<String, String>,
    subnet: Option<u8>,
    worker_names: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    draining: BTreeMap<u32, Vec<String>>,
    #[serde(default)]
    placement: u32,
}

/// The role images: `<prefix>/<role>:<tag>`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Images {
    pub prefix: String,
    pub tag: String,
}

impl Images {
    pub fn of(&self, role: Role) -> String {
        role.image(&self.prefix, &self.tag)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("image {image} is not present; build the images first with `docker/build-images.sh {tag}`")]
    MissingImage { image: String, tag: String },
    #[error("app folder {dir}: {source}")]
    AppDir { dir: PathBuf, source: std::io::Error },
    #[error("{what} did not become healthy: {last}\n--- last lines of container {container} ---\n{logs}")]
    NotHealthy {
        what: String,
        last: String,
        container: String,
        logs: String,
    },
    #[error("container {container} has no address on network {network} (it stopped?)\n--- last lines of container {container} ---\n{logs}")]
    NoAddress {
        container: String,
        network: String,
        logs: String,
    },
    #[error("tasks {first:?} and {second:?} give the same container name {name}; rename one")]
    NameCollision {
        first: String,
        second: String,
        name: String,
    },
}

impl From<DockerError> for DeployError {
    fn from(e: DockerError) -> Self {
        DeployError::backend(e)
    }
}

impl From<EngineError> for DeployError {
    fn from(e: EngineError) -> Self {
        DeployError::backend(DockerError::Engine(e))
    }
}

/// A Docker deployment: being brought up by this process, or found again.
pub struct Docker {
    engine: Engine,
    inventory: Inventory,
    network: String,
    /// How to deploy; None for a deployment found again.
    config: Option<DockerConfig>,
    /// The app folder as the containers mount it (absolute).
    app_dir: PathBuf,
    /// Each node's `--cgroup-parent`, where the engine allows one.
    cgroup_parents: BTreeMap<String, String>,
    /// The second octet of the network's subnet `10.X.0.0/16`, when the
    /// engine took one: home roles in `10.X.0.0/24`, node i's containers in
    /// `10.X.(i+1).0/24`, so that shaping can tell same-node traffic apart.
    subnet: Option<u8>,
    /// Nodes lost (every container down) and recovered from: their
    /// containers are left as they are, for the operator to inspect.
    lost_nodes: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// task -> every container name its worker had before it moved.
    worker_names: BTreeMap<String, Vec<String>>,
    /// placement -> the workers it superseded, finishing the inputs of
    /// earlier placements (removed once none is left).
    draining: BTreeMap<u32, Vec<String>>,
    /// The latest placement: a task moved after a node loss gets a worker
    /// of this placement.
    placement: u32,
    /// `--tls`: the certificates' folder (beside the state file), and what
    /// this process presents to the roles.
    tls: Option<(PathBuf, Arc<jupiter_common::tls::Identity>)>,
}

impl Docker {
    /// A deployment of an app called `app_name` this process will bring up.
    pub async fn new(app_name: &str, config: DockerConfig) -> Result<Self, DeployError> {
        let id = deployment::new_id(app_name);
        Ok(Self {
            engine: Engine::connect().await?,
            network: id.clone(),
            inventory: Inventory::new(id, config.output.clone()),
            config: Some(config),
            app_dir: PathBuf::new(),
            cgroup_parents: BTreeMap::new(),
            subnet: None,
            lost_nodes: Default::default(),
            worker_names: BTreeMap::new(),
            draining: BTreeMap::new(),
            placement: 0,
            tls: None,
        })
    }

    /// The deployment on `network` that the state file describes, with
    /// how it was deployed when the state file says (an older one does
    /// not: such a deployment can be driven, not recovered).
    pub async fn attach(
        network: &str,
        summary: &Summary,
        setup: Option<&serde_json::Value>,
    ) -> Result<Self, DeployError> {
        let setup: Option<Setup> = setup.and_then(|s| serde_json::from_value(s.clone()).ok());
        let setup = setup.map(|s| {
            let kept = (s.worker_names, s.draining, s.placement);
            (Some(s.config), s.cgroup_parents, s.subnet, kept)
        });
        let (config, cgroup_parents, subnet, (worker_names, draining, placement)) = setup.unwrap_or_default();
        // Workers started from here (a moved task) mount the certificates
        // `up` made; this process is then the user (see `config::attach`).
        let tls = match &summary.tls {
            Some(files) => {
                let identity = files
                    .load()
                    .map_err(|e| DeployError::backend(crate::tls::TlsError::Load(e)))?;
                let dir = files.ca.parent().map(Path::to_path_buf).unwrap_or_default();
                Some((dir, Arc::new(identity)))
            }
            None => None,
        };
        Ok(Self {
            engine: Engine::connect().await?,
            inventory: Inventory::of(summary),
            network: network.to_string(),
            config,
            app_dir: summary.app.clone(),
            cgroup_parents,
            subnet,
            lost_nodes: Default::default(),
            worker_names,
            draining,
            placement,
            tls,
        })
    }

    fn config(&self) -> Result<DockerConfig, DeployError> {
        self.config.clone().ok_or_else(|| DeployError::Unsupported {
            what: "deploying again".into(),
            backend: "docker",
            why: format!("deployment {} is up already", self.inventory.id),
        })
    }

    /// Starts a stopped role container again, on its volume and its
    /// address. A start makes a new veth pair without the old qdiscs, so
    /// its node's link is shaped again (a deployment found again from the
    /// state file has no node list, and cannot).
    async fn start_again(&self, container: &str) -> Result<(), DeployError> {
        self.engine.run(&["start", container]).await?;
        let Some(config) = &self.config else {
            return Ok(());
        };
        let node = self
            .inventory
            .roles
            .iter()
            .find(|r| r.container.as_deref() == Some(container))
            .and_then(|r| r.node.as_deref());
        let local = node.and_then(|n| self.node_subnet(config, n));
        shaping::shape(&self.engine, container, node, &config.nodes, local.as_deref())
            .await
            .map_err(DeployError::backend)
    }

    fn spec(&self, config: &DockerConfig, role: Role, node: Option<&NodeSpec>) -> ContainerSpec {
        let mut spec = ContainerSpec::new(&self.inventory.id, role, config.images.of(role), node)
            .env(jupiter_common::env::DEPLOYMENT, self.inventory.id.clone());
        if let Some(endpoint) = &config.otlp_endpoint {
            spec = spec.env(jupiter_common::env::OTLP_ENDPOINT, endpoint.clone());
        }
        spec.cgroup_parent = node.and_then(|n| self.cgroup_parents.get(&n.name).cloned());
        let host = match role {
            Role::DrupeCentral | Role::DrupeDroplet => Some(2),
            Role::WaveHome | Role::WaveWorker => Some(3),
            Role::CirceHome => Some(4),
            // Per task: see `worker_specs`.
            Role::CirceWorker => None,
        };
        spec.ip = host.and_then(|h| self.address(config, node.map(|n| n.name.as_str()), h));
        spec.local_subnet = node.and_then(|n| self.node_subnet(config, &n.name));
        spec
    }

    /// The third octet of `node`'s subnet (0 for the home roles).
    fn octet(config: &DockerConfig, node: Option<&str>) -> Option<u8> {
        match node {
            None => Some(0),
            Some(name) => {
                let index = config.nodes.iter().position(|n| n.name == name)?;
                u8::try_from(index + 1).ok().filter(|&o| o < 255)
            }
        }
    }

    /// Address `host` (2..=254) in `node`'s subnet.
    fn address(&self, config: &DockerConfig, node: Option<&str>, host: usize) -> Option<String> {
        let x = self.subnet?;
        let host = u8::try_from(host).ok().filter(|h| (2..255).contains(h))?;
        Some(format!("10.{x}.{}.{host}", Self::octet(config, node)?))
    }

    /// `node`'s subnet, `10.X.N.0/24`.
    fn node_subnet(&self, config: &DockerConfig, node: &str) -> Option<String> {
        Some(format!(
            "10.{}.{}.0/24",
            self.subnet?,
            Self::octet(config, Some(node))?
        ))
    }

    /// Creates the deployment's network, on a subnet of its own where one
    /// is free (see `subnet`); else wherever the engine puts it.
    async fn create_network(&mut self, label: &str) -> Result<(), DeployError> {
        let seed = self
            .inventory
            .id
            .bytes()
            .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
        for attempt in 0..12u32 {
            let x = (64 + (seed.wrapping_add(attempt.wrapping_mul(37))) % 186) as u8;
            let subnet = format!("10.{x}.0.0/16");
            let gateway = format!("10.{x}.0.1");
            // Addresses the engine picks by itself (a role we gave none)
            // come from the last /24, never from a node's.
            let range = format!("10.{x}.255.0/24");
            let created = self
                .engine
                .run(&[
                    "network",
                    "create",
                    "--label",
                    label,
                    "--subnet",
                    &subnet,
                    "--gateway",
                    &gateway,
                    "--ip-range",
                    &range,
                    &self.network,
                ])
                .await;
            match created {
                Ok(_) => {
                    self.subnet = Some(x);
                    return Ok(());
                }
                // Taken by another network (or a route): try the next.
                Err(e) if e.to_string().contains("overlap") => continue,
                Err(e) => return Err(e.into()),
            }
        }
        eprintln!(
            "note: no free 10.X.0.0/16 for the deployment's network: traffic between containers of \
             one node crosses its shaped link"
        );
        self.engine
            .run(&["network", "create", "--label", label, &self.network])
            .await?;
        Ok(())
    }

    /// A shared CPU and memory budget per node, where the engine's cgroup
    /// driver and our permissions allow it (see `node_cgroup`).
    async fn node_budgets(&mut self, config: &DockerConfig) {
        let driver = self
            .engine
            .run(&["info", "--format", "{{.CgroupDriver}}"])
            .await
            .unwrap_or_default();
        if driver.trim() != "cgroupfs" {
            eprintln!(
                "note: the engine's cgroup driver is {:?}, not cgroupfs: each container of a node gets \
                 the node's CPU and memory by itself, not shared",
                driver.trim()
            );
            return;
        }
        let root = std::path::Path::new(node_cgroup::CGROUP_ROOT);
        for node in &config.nodes {
            match node_cgroup::create(root, &self.inventory.id, node) {
                Ok(parent) => {
                    self.cgroup_parents.insert(node.name.clone(), parent);
                }
                Err(e) => {
                    eprintln!(
                        "note: {e}; each container of a node gets the node's CPU and memory by itself, \
                         not shared (run as root to share them)"
                    );
                    node_cgroup::remove(root, &self.inventory.id);
                    self.cgroup_parents.clear();
                    return;
                }
            }
        }
    }

    /// Starts `specs` at once (`docker run` is slow and mostly waiting),
    /// finds their addresses, waits until each answers its health check,
    /// and records them as roles; returns their outer URLs by name.
    async fn launch(&mut self, specs: Vec<ContainerSpec>) -> Result<BTreeMap<String, String>, DeployError> {
        let specs: Vec<ContainerSpec> = specs.into_iter().map(|spec| self.with_tls(spec)).collect();
        let nodes = self
            .config
            .as_ref()
            .map(|c| c.nodes.as_slice())
            .unwrap_or_default();
        let runs = specs.iter().map(|spec| {
            let args = spec.run_args(&self.inventory.id, &self.network);
            let engine = &self.engine;
            async move {
                engine.run(&args).await?;
                // At once, not after the batch: DRUPE probes a droplet about
                // 200 ms after it registers, and must see the shaped link.
                shaping::shape(
                    engine,
                    &spec.name,
                    spec.node.as_deref(),
                    nodes,
                    spec.local_subnet.as_deref(),
                )
                .await
                .map_err(DeployError::backend)
            }
        });
        for result in futures::future::join_all(runs).await {
            result?;
        }
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        let addresses = addresses(&self.engine, &self.network, &names).await?;
        let urls: BTreeMap<String, String> = specs
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    format!("http://{}:{}", addresses[&s.name], s.port),
                )
            })
            .collect();
        if let Some((_, identity)) = &self.tls {
            for url in urls.values() {
                jupiter_common::tls::dial_as(url, identity.clone());
            }
        }
        let checks: Vec<(String, String)> = urls.iter().map(|(n, u)| (n.clone(), u.clone())).collect();
        if let Err(NotHealthy { what, last, .. }) = wait_all_healthy(&checks).await {
            return Err(DockerError::NotHealthy {
                logs: self.engine.tail_logs(&what, 20).await,
                what: describe_container(&specs, &what),
                container: what,
                last,
            }
            .into());
        }
        for spec in specs {
            self.inventory.roles.push(RoleInstance {
                role: spec.role,
                node: spec.node.clone(),
                task: spec.task.clone(),
                url: urls[&spec.name].clone(),
                pid: None,
                // Each role serves metrics on its default port.
                metrics: Some(format!(
                    "http://{}:{}/metrics",
                    addresses[&spec.name],
                    spec.role.metrics_port()
                )),
                container: Some(spec.name),
                restarts: None,
                log: None,
            });
        }
        Ok(urls)
    }

    /// The deployment's certificates beside the state file: the home roles,
    /// a droplet and a wave-worker per node, a worker per task, the user.
    fn make_tls(
        &self,
        config: &DockerConfig,
        app: &App,
    ) -> Result<(PathBuf, Arc<jupiter_common::tls::Identity>), DeployError> {
        let nodes: Vec<&str> = config.nodes.iter().map(|n| n.name.as_str()).collect();
        let tasks: Vec<&str> = app.tasks.iter().map(|t| t.name.as_str()).collect();
        // Each valid also for its container's name.
        let container = |role: Role, node: Option<&str>| {
            let node = node.and_then(|name| config.nodes.iter().find(|n| n.name == name));
            vec![ContainerSpec::new(&self.inventory.id, role, String::new(), node).name]
        };
        let members = crate::tls::members_per_node(&nodes, &tasks, container);
        let dir = crate::tls::beside_state(&self.inventory.id).map_err(DeployError::backend)?;
        let (_, identity) =
            crate::tls::make_and_load(&dir, &self.inventory.id, &members).map_err(DeployError::backend)?;
        Ok((dir, Arc::new(identity)))
    }

    /// `spec` with its role's certificate folder mounted read-only at
    /// TLS_MOUNT and the variables that name its files, under `--tls`.
    fn with_tls(&self, spec: ContainerSpec) -> ContainerSpec {
        let Some((dir, _)) = &self.tls else {
            return spec;
        };
        let of = spec.task.clone().or(spec.node.clone());
        let files = crate::tls::role_files(dir, spec.role, of.as_deref());
        let folder = files.ca.parent().map(Path::to_path_buf).unwrap_or_default();
        let inside = jupiter_common::tls::Files::in_dir(Path::new(TLS_MOUNT));
        spec.mount(format!("{}:{TLS_MOUNT}:ro", folder.display()))
            .env(jupiter_common::env::TLS_CA, inside.ca.display().to_string())
            .env(jupiter_common::env::TLS_CERT, inside.cert.display().to_string())
            .env(jupiter_common::env::TLS_KEY, inside.key.display().to_string())
    }

    /// drupe-central, wave-home, and per node a droplet and a wave-worker.
    fn control_specs(&self, config: &DockerConfig) -> Vec<ContainerSpec> {
        let sizes: Vec<String> = config.probe.sizes.iter().map(u64::to_string).collect();
        let central = self
            .spec(config, Role::DrupeCentral, None)
            .env(
                env::PROBE_INTERVAL,
                config.probe.interval.as_secs_f64().to_string(),
            )
            .env(env::PROBE_SIZES, sizes.join(","))
            .env(env::PROBE_MIN_SECS, config.probe.min_secs.to_string())
            .env(env::PROBE_MAX_BYTES, config.probe.max_bytes.to_string())
            // The bridge is the engine host's CPU: parallel probes would share it.
            .env(env::PROBE_SEQUENTIAL, "true");
        let wave = self.spec(config, Role::WaveHome, None);
        let wave_url = wave.inner_url();
        let wave = wave
            .env(env::DRUPE_CENTRAL, central.inner_url())
            .env(env::ADVERTISE, wave_url);
        let mut specs = vec![central.clone(), wave];
        for node in &config.nodes {
            let droplet = self.spec(config, Role::DrupeDroplet, Some(node));
            let droplet_url = droplet.inner_url();
            specs.push(
                droplet
                    .env(env::NODE, node.name.clone())
                    .env(env::DRUPE_CENTRAL, central.inner_url())
                    .env(env::DATA_DIR, NODE_MOUNT)
                    .env(env::ADVERTISE, droplet_url)
                    .mount(format!(
                        "{}:{NODE_MOUNT}",
                        node_volume(&self.inventory.id, &node.name)
                    )),
            );
            specs.push(
                self.spec(config, Role::WaveWorker, Some(node))
                    .env(env::NODE, node.name.clone()),
            );
        }
        specs
    }

    /// One circe-worker per task on its node, pointed at its children.
    fn worker_specs(
        &self,
        config: &DockerConfig,
        app: &App,
        placement: &Placement,
        home_url: &str,
    ) -> Result<Vec<ContainerSpec>, DeployError> {
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        let mut urls: BTreeMap<String, String> = BTreeMap::new();
        for task in &app.tasks {
            let name = self.worker_name(placement.node_of(&task.name)?, &task.name, 0);
            // Two tasks whose names sanitise alike would share a container name.
            if let Some(first) = names.insert(name.clone(), task.name.clone()) {
                return Err(DockerError::NameCollision {
                    first,
                    second: task.name.clone(),
                    name,
                }
                .into());
            }
            urls.insert(task.name.clone(), worker_url(&name));
        }
        app.tasks
            .iter()
            .map(|task| {
                let node = placement.node_of(&task.name)?;
                self.worker_spec(config, app, &task.name, node, 0, &urls, home_url)
            })
            .collect()
    }

    /// The container of `task`'s worker on `node` for `placement`: one name
    /// per placement, as the old worker of a moved task keeps running.
    fn worker_name(&self, node: &str, task: &str, placement: u32) -> String {
        let name = format!("{}-{node}-{}", self.inventory.id, deployment::sanitize(task));
        match placement {
            0 => name,
            p => format!("{name}-p{p}"),
        }
    }

    /// Where each task's current worker answers, as the other roles reach it.
    fn current_urls(&self) -> BTreeMap<String, String> {
        self.inventory
            .roles
            .iter()
            .filter(|r| r.role == Role::CirceWorker)
            .filter_map(|r| Some((r.task.clone()?, worker_url(r.container.as_ref()?))))
            .collect()
    }

    /// The container of `task`'s worker on `node` for `placement` (named
    /// by [`Docker::worker_name`]), pushing to its children at `urls` (task
    /// -> URL).
    #[allow(clippy::too_many_arguments)]
    fn worker_spec(
        &self,
        config: &DockerConfig,
        app: &App,
        task: &str,
        node: &str,
        placement: u32,
        urls: &BTreeMap<String, String>,
        home_url: &str,
    ) -> Result<ContainerSpec, DeployError> {
        let spec = config.nodes.iter().find(|n| n.name == node).ok_or_else(|| {
            DeployError::unknown_node(task, node, config.nodes.iter().map(|n| n.name.as_str()))
        })?;
        let index = app.tasks.iter().position(|t| t.name == task).unwrap_or(0);
        let children = app
            .tasks
            .get(index)
            .map(|t| t.children.clone())
            .unwrap_or_default();
        let mut worker = self.spec(config, Role::CirceWorker, Some(spec));
        worker.name = self.worker_name(node, task, placement);
        worker.task = Some(task.to_string());
        // Tasks from host 10 up, in the app's order, a block per placement:
        // fixed, unique per node.
        let host = 10 + index + placement as usize * app.tasks.len();
        worker.ip = self.address(config, Some(node), host);
        let children: Vec<String> = children
            .iter()
            .filter_map(|c| urls.get(c).map(|url| format!("{c}={url}")))
            .collect();
        // An egress task has no children: no variable rather than an empty one.
        let worker = if children.is_empty() {
            worker
        } else {
            worker.env(env::CHILDREN, children.join(","))
        };
        let worker = config
            .runner
            .env()
            .into_iter()
            .fold(worker, |w, (k, v)| w.env(k, v));
        Ok(worker
            .env(env::APP, APP_MOUNT)
            .env(env::TASK, task)
            .env(env::NODE, node)
            .env(env::QUEUE_DIR, queue_dir(task, placement))
            .env(env::CIRCE_HOME, home_url)
            .env(env::PYTHON, "python3")
            .mount(format!("{}:{APP_MOUNT}:ro", self.app_dir.display()))
            .mount(format!("{}:{NODE_MOUNT}", node_volume(&self.inventory.id, node))))
    }

    /// circe-home, feeding the ingress workers, writing into the output folder.
    fn home_spec(&self, config: &DockerConfig, app: &App, workers: &[ContainerSpec]) -> ContainerSpec {
        let ingress: Vec<String> = app
            .ingress()
            .iter()
            .filter_map(|t| {
                workers
                    .iter()
                    .find(|w| w.task.as_deref() == Some(t.name.as_str()))
                    .map(|w| format!("{}={}", t.name, w.inner_url()))
            })
            .collect();
        let mut home = self
            .spec(config, Role::CirceHome, None)
            .env(env::APP, APP_MOUNT)
            .env(env::INGRESS, ingress.join(","))
            .env(env::OUTPUT_DIR, OUTPUT_MOUNT)
            // Inside the output folder so that it belongs to the user, as
            // the outputs do, and outlives the containers.
            .env(
                env::DATA_DIR,
                format!("{OUTPUT_MOUNT}/.circe-home/{}", self.inventory.id),
            )
            .mount(format!("{}:{APP_MOUNT}:ro", self.app_dir.display()))
            .mount(format!("{}:{OUTPUT_MOUNT}", config.output.display()));
        // The outputs belong to whoever ran jupiterctl, not to root.
        home.user = Some(format!("{}:{}", unsafe { libc::getuid() }, unsafe {
            libc::getgid()
        }));
        home
    }
}

#[async_trait::async_trait]
impl Backend for Docker {
    fn describe(&self) -> String {
        format!(
            "Docker deployment {} ({} containers)",
            self.inventory.id,
            self.inventory.roles.len()
        )
    }

    async fn deploy_roles(&mut self, app: &App) -> Result<ControlPlane, DeployError> {
        let config = self.config()?;
        shaping::preflight(&config.nodes)
            .await
            .map_err(DeployError::backend)?;
        for role in Role::ALL {
            let image = config.images.of(role);
            if !self.engine.has_image(&image).await {
                return Err(DockerError::MissingImage {
                    image,
                    tag: config.images.tag.clone(),
                }
                .into());
            }
        }
        self.app_dir = app.dir.canonicalize().map_err(|source| DockerError::AppDir {
            dir: app.dir.clone(),
            source,
        })?;
        if config.tls {
            self.tls = Some(self.make_tls(&config, app)?);
        }
        let label = format!("{DEPLOYMENT_LABEL}={}", self.inventory.id);
        self.create_network(&label).await?;
        for node in &config.nodes {
            let node_label = format!("{NODE_LABEL}={}", node.name);
            let volume = node_volume(&self.inventory.id, &node.name);
            self.engine
                .run(&[
                    "volume",
                    "create",
                    "--label",
                    &label,
                    "--label",
                    &node_label,
                    &volume,
                ])
                .await?;
        }
        self.node_budgets(&config).await;
        let specs = self.control_specs(&config);
        let inner: BTreeMap<String, String> = specs.iter().map(|s| (s.name.clone(), s.inner_url())).collect();
        let outer = self.launch(specs).await?;
        Ok(ControlPlane::Reachable {
            central: self.inventory.url(Role::DrupeCentral),
            wave_home: self.inventory.url(Role::WaveHome),
            agents: self
                .inventory
                .roles
                .iter()
                .filter(|r| r.role == Role::WaveWorker)
                .filter_map(|r| {
                    let name = r.container.as_ref()?;
                    Some(Agent {
                        node: r.node.clone().unwrap_or_default(),
                        inner_url: inner.get(name)?.clone(),
                        outer_url: outer.get(name)?.clone(),
                    })
                })
                .collect(),
        })
    }

    async fn execution_profile(
        &self,
        app: &App,
        options: &crate::exec_profile::ProfileOptions,
    ) -> Result<crate::exec_profile::ExecProfile, crate::exec_profile::ProfileError> {
        let config = self
            .config()
            .map_err(|e| crate::exec_profile::ProfileError::Elsewhere {
                place: "a Docker container".into(),
                detail: e.to_string(),
            })?;
        profile::in_container(&self.engine, &self.inventory.id, &config, app, options).await
    }

    async fn start_workers(&mut self, app: &App, placement: &Placement) -> Result<(), DeployError> {
        let config = self.config()?;
        let home_url = self.spec(&config, Role::CirceHome, None).inner_url();
        let mut specs = self.worker_specs(&config, app, placement, &home_url)?;
        let home = self.home_spec(&config, app, &specs);
        specs.push(home);
        self.launch(specs).await?;
        Ok(())
    }

    /// Each moved task's worker on its new node, in its new node's cgroup
    /// and subnet, on its new node's volume (a fresh queue: circe-home
    /// replays what was in flight), answering also to every name the task's
    /// worker had before (a network alias), so that its parents and
    /// circe-home reach it where they always did.
    async fn move_tasks(&mut self, app: &App, moves: &BTreeMap<String, String>) -> Result<(), DeployError> {
        let config = self.config()?;
        let home_url = self.spec(&config, Role::CirceHome, None).inner_url();
        // Children are reached where they are now; a moved child answers
        // to its old name too.
        let urls = self.current_urls();
        let mut specs = Vec::new();
        for (task, node) in moves {
            let mut spec = self.worker_spec(&config, app, task, node, self.placement, &urls, &home_url)?;
            let old = self
                .inventory
                .roles
                .iter()
                .find(|r| r.role == Role::CirceWorker && r.task.as_ref() == Some(task))
                .and_then(|r| r.container.clone());
            let names = self.worker_names.entry(task.clone()).or_default();
            names.extend(old);
            spec.aliases
                .extend(names.iter().filter(|n| **n != spec.name).cloned());
            specs.push(spec);
        }
        let moving = |task: Option<&String>| task.is_some_and(|t| moves.contains_key(t));
        self.inventory
            .roles
            .retain(|r| !(r.role == Role::CirceWorker && moving(r.task.as_ref())));
        self.launch(specs).await?;
        Ok(())
    }

    fn adds_placements(&self) -> bool {
        self.config.is_some()
    }

    /// Each moved task's new worker on its new node, named after the
    /// placement (the old one keeps its name and queue until its inputs are
    /// done), with its own queue folder on the node's volume.
    async fn add_placement(
        &mut self,
        app: &App,
        moves: &BTreeMap<String, String>,
        placement: u32,
    ) -> Result<BTreeMap<String, String>, DeployError> {
        let config = self.config()?;
        let home_url = self.spec(&config, Role::CirceHome, None).inner_url();
        // Where each task's worker of this placement answers: the current
        // one's, unless the task moves.
        let mut urls = self.current_urls();
        for (task, node) in moves {
            urls.insert(task.clone(), worker_url(&self.worker_name(node, task, placement)));
        }
        let specs = moves
            .iter()
            .map(|(task, node)| self.worker_spec(&config, app, task, node, placement, &urls, &home_url))
            .collect::<Result<Vec<_>, _>>()?;
        let moving = |task: Option<&String>| task.is_some_and(|t| moves.contains_key(t));
        let superseded: Vec<String> = self
            .inventory
            .roles
            .iter()
            .filter(|r| r.role == Role::CirceWorker && moving(r.task.as_ref()))
            .filter_map(|r| r.container.clone())
            .collect();
        self.launch(specs).await?;
        self.inventory.roles.retain(|r| {
            !(r.role == Role::CirceWorker && r.container.as_ref().is_some_and(|c| superseded.contains(c)))
        });
        self.draining.entry(placement).or_default().extend(superseded);
        self.placement = placement;
        Ok(moves.keys().map(|t| (t.clone(), urls[t].clone())).collect())
    }

    async fn retire(&mut self, placement: u32) -> Result<Vec<String>, DeployError> {
        let done: Vec<u32> = self.draining.range(..=placement).map(|(p, _)| *p).collect();
        let mut gone = Vec::new();
        for p in done {
            let containers = self.draining.remove(&p).unwrap_or_default();
            if containers.is_empty() {
                continue;
            }
            let mut args = vec!["rm", "-f"];
            args.extend(containers.iter().map(String::as_str));
            self.engine.run(&args).await?;
            gone.extend(containers);
        }
        Ok(gone)
    }

    async fn exists(&self) -> bool {
        // An engine that does not answer may still hold it.
        exists(&self.engine, &self.inventory.id).await.unwrap_or(true)
    }

    /// Starts again, on their volumes, role containers stopped from
    /// outside (Docker's restart policy covers crashes inside, not
    /// `docker kill`); resolves once a whole node is down, or a container
    /// cannot be started again.
    async fn stopped(&self) -> Stopped {
        loop {
            let known_lost = self.lost_nodes.locked().clone();
            match watch::next_loss(&self.engine, &self.inventory.id, &known_lost).await {
                watch::Seen::Lost { nodes, report } if nodes.is_empty() || self.config.is_none() => {
                    let why = if nodes.is_empty() {
                        "home's roles are gone"
                    } else {
                        "this process found the deployment in the state file, without its node list, so it cannot start the lost tasks elsewhere"
                    };
                    return Stopped::Broken(format!(
                        "{report}. Inputs that pass through it cannot finish ({why}); \
                         `jupiterctl down` removes the deployment, or `docker start` the containers to resume"
                    ));
                }
                watch::Seen::Lost { nodes, report } => {
                    self.lost_nodes.locked().extend(nodes.iter().cloned());
                    return Stopped::NodesLost { nodes, report };
                }
                watch::Seen::Killed(containers) => {
                    for container in containers {
                        eprintln!("{container} stopped; starting it again on its volume");
                        if let Err(e) = self.start_again(&container).await {
                            return Stopped::Broken(format!(
                                "{container} stopped and could not be started again: {e}"
                            ));
                        }
                    }
                }
            }
        }
    }

    async fn restart(&mut self, role: &RoleInstance) -> Result<(), DeployError> {
        let container = role
            .container
            .clone()
            .ok_or_else(|| DeployError::NoSuchRole { what: role.label() })?;
        self.engine.run(&["kill", &container]).await?;
        self.start_again(&container).await?;
        // A restarted container may come back on another address.
        let address = addresses(&self.engine, &self.network, &[container.as_str()]).await?;
        let now = RoleInstance {
            url: format!("http://{}:{}", address[&container], role.role.port()),
            ..role.clone()
        };
        if let Some((_, identity)) = &self.tls {
            jupiter_common::tls::dial_as(&now.url, identity.clone());
        }
        wait_healthy(&role.label(), &now.url, HEALTH_TIMEOUT).await?;
        for r in &mut self.inventory.roles {
            if r.container.as_deref() == Some(container.as_str()) {
                *r = now.clone();
            }
        }
        Ok(())
    }

    async fn down(&mut self) -> Result<String, DeployError> {
        // A container that Docker is restarting under its policy, or that
        // a recovery just started, can hold the network or a volume for a
        // moment: removal is idempotent, so it is tried again.
        let mut attempt = 1;
        let removed = loop {
            match remove(&self.engine, &self.inventory.id).await {
                Ok(removed) => break removed,
                Err(e) if attempt < 3 => {
                    tracing::warn!(deployment = %self.inventory.id, error = %e, attempt, "removing the deployment; trying again");
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        // The certificates are worthless now; the user's go too.
        if let Some(dir) = self.tls.as_ref().map(|(dir, _)| dir) {
            let _ = std::fs::remove_dir_all(dir);
            let urls: Vec<String> = self.inventory.roles.iter().map(|r| r.url.clone()).collect();
            jupiter_common::tls::forget(&urls);
        }
        Ok(format!(
            "removed Docker deployment {}: {removed}",
            self.inventory.id
        ))
    }

    fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    fn client_tls(&self) -> Option<jupiter_common::tls::Files> {
        self.tls.as_ref().map(|(dir, _)| crate::tls::client_files(dir))
    }

    fn state(&self, summary: Summary) -> DeploymentState {
        let setup = self.config.clone().map(|config| Setup {
            config,
            cgroup_parents: self.cgroup_parents.clone(),
            subnet: self.subnet,
            worker_names: self.worker_names.clone(),
            draining: self.draining.clone(),
            placement: self.placement,
        });
        DeploymentState::Docker {
            network: self.network.clone(),
            summary,
            setup: setup.and_then(|s| serde_json::to_value(s).ok()),
        }
    }
}

/// A worker container's URL on the deployment's network.
fn worker_url(container: &str) -> String {
    format!("http://{container}:{}", Role::CirceWorker.port())
}

/// A worker's queue on its node's volume: one per task, and per
/// placement after the first (a task may come back to a node whose volume
/// still holds its earlier queue).
fn queue_dir(task: &str, placement: u32) -> String {
    match placement {
        0 => format!("{NODE_MOUNT}/queues/{task}"),
        p => format!("{NODE_MOUNT}/queues/{task}.p{p}"),
    }
}

fn node_volume(id: &str, node: &str) -> String {
    format!("{id}-{node}")
}

/// Each container's address on `network`, by container name.
async fn addresses(
    engine: &Engine,
    network: &str,
    names: &[&str],
) -> Result<BTreeMap<String, String>, DockerError> {
    let format = format!("{{{{.Name}}}} {{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
    let mut args = vec!["inspect".to_string(), "--format".into(), format];
    args.extend(names.iter().map(|n| n.to_string()));
    let text = engine.run(&args).await?;
    let mut found = BTreeMap::new();
    for line in text.lines() {
        if let Some((name, ip)) = line.split_once(' ') {
            if !ip.is_empty() && ip != "<no value>" {
                found.insert(name.trim_start_matches('/').to_string(), ip.to_string());
            }
        }
    }
    for name in names {
        if !found.contains_key(*name) {
            return Err(DockerError::NoAddress {
                container: name.to_string(),
                network: network.into(),
                logs: engine.tail_logs(name, 20).await,
            });
        }
    }
    Ok(found)
}

/// A container in words: `circe-worker of task t on node n`.
fn describe_container(specs: &[ContainerSpec], container: &str) -> String {
    match specs.iter().find(|s| s.name == container) {
        Some(ContainerSpec {
            role,
            node: Some(node),
            task,
            ..
        }) => match task {
            Some(task) => format!("{role} of task {task} on node {node}"),
            None => format!("{role} on node {node}"),
        },
        Some(spec) => spec.role.to_string(),
        None => container.to_string(),
    }
}
