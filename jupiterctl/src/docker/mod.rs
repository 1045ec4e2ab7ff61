//! The Docker backend: every role in its own container, on a private
//! network per deployment. Per emulated node a droplet, a wave-worker and
//! the circe-workers of the tasks mapped there, all limited to the node's
//! CPU and memory; the home roles beside them. Roles reach each other by
//! container name; jupiterctl reaches them by their addresses on the
//! network's bridge. Every object carries the deployment's label, which is
//! all `down` removes by.

pub mod engine;
pub mod spec;

use crate::local::{DeployError, Endpoints, LocalOptions, NodeEndpoints, Summary, WorkerEndpoint};
use crate::node_list::NodeSpec;
use crate::placement::{self, wait_all_healthy, Agent, PlacementRequest};
use engine::{Engine, EngineError, Kind};
use jupiter_common::app::App;
use jupiter_common::serve::NotHealthy;
use spec::{port, sanitize, ContainerSpec, DEPLOYMENT_LABEL, NODE_LABEL};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The roles that have an image.
pub const ROLES: [&str; 6] = [
    "drupe-central",
    "drupe-droplet",
    "wave-home",
    "wave-worker",
    "circe-home",
    "circe-worker",
];

/// Where the app folder appears inside the containers.
const APP_MOUNT: &str = "/app";
/// Where the output folder appears inside circe-home.
const OUTPUT_MOUNT: &str = "/output";

#[derive(Debug, Clone)]
pub struct DockerOptions {
    /// Scheduler, mapping, seed, output folder, probing (its `nodes` and
    /// `workdir` are not used: the node list below rules).
    pub common: LocalOptions,
    pub nodes: Vec<NodeSpec>,
    /// Images are `<prefix>/<role>:<tag>`.
    pub image_prefix: String,
    pub image_tag: String,
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
    #[error(transparent)]
    Deploy(#[from] DeployError),
}

/// A running Docker deployment. It lives in the engine, not in this
/// process: dropping this value leaves it running; [`down`] removes it.
pub struct DockerDeployment {
    pub id: String,
    pub summary: Summary,
    /// Container name of every role.
    pub containers: Vec<ContainerSpec>,
    engine: Engine,
}

/// What `down` removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
}

impl std::fmt::Display for Removed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} containers, {} networks, {} volumes",
            self.containers, self.networks, self.volumes
        )
    }
}

/// A fresh deployment id: the app's name and a suffix unique on this host.
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

impl DockerDeployment {
    /// Deploys `app` as containers and returns once every role is healthy.
    /// On failure everything made so far is removed again.
    pub async fn up(app: App, options: DockerOptions) -> Result<Self, DockerError> {
        let engine = Engine::connect().await?;
        for role in ROLES {
            let image = image(&options, role);
            if !engine.has_image(&image).await {
                return Err(DockerError::MissingImage {
                    image,
                    tag: options.image_tag.clone(),
                });
            }
        }
        let id = new_id(&app.name);
        match Self::build(&engine, &id, app, &options).await {
            Ok(deployment) => Ok(deployment),
            Err(e) => {
                if let Err(cleanup) = remove(&engine, &id).await {
                    tracing::warn!(error = %cleanup, deployment = %id, "cleaning up after a failed up");
                }
                Err(e)
            }
        }
    }

    async fn build(
        engine: &Engine,
        id: &str,
        app: App,
        options: &DockerOptions,
    ) -> Result<Self, DockerError> {
        let started = Instant::now();
        let app_dir = app.dir.canonicalize().map_err(|source| DockerError::AppDir {
            dir: app.dir.clone(),
            source,
        })?;
        let network = id.to_string();
        let label = format!("{DEPLOYMENT_LABEL}={id}");
        engine
            .run(&["network", "create", "--label", &label, &network])
            .await?;
        for node in &options.nodes {
            engine
                .run(&[
                    "volume",
                    "create",
                    "--label",
                    &label,
                    "--label",
                    &format!("{NODE_LABEL}={}", node.name),
                    &node_volume(id, &node.name),
                ])
                .await?;
        }

        // 1. DRUPE and WAVE.
        let central = ContainerSpec::new(
            id,
            "drupe-central",
            image(options, "drupe-central"),
            port::DRUPE_CENTRAL,
            None,
        )
        .env(
            "JUPITER_PROBE_INTERVAL",
            options.common.probe.interval.as_secs_f64().to_string(),
        )
        .env(
            "JUPITER_PROBE_SIZES",
            options
                .common
                .probe
                .sizes
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
        );
        let wave = ContainerSpec::new(
            id,
            "wave-home",
            image(options, "wave-home"),
            port::WAVE_HOME,
            None,
        )
        .env("JUPITER_DRUPE_CENTRAL", central.inner_url());
        let wave = {
            let url = wave.inner_url();
            wave.env("JUPITER_ADVERTISE", url)
        };
        let mut first = vec![central.clone(), wave.clone()];
        let mut node_roles = Vec::new();
        for node in &options.nodes {
            let droplet = ContainerSpec::new(
                id,
                "drupe-droplet",
                image(options, "drupe-droplet"),
                port::DRUPE_DROPLET,
                Some(node),
            )
            .env("JUPITER_NODE", node.name.clone())
            .env("JUPITER_DRUPE_CENTRAL", central.inner_url())
            .env("JUPITER_DATA_DIR", "/var/lib/jupiter")
            .mount(format!("{}:/var/lib/jupiter", node_volume(id, &node.name)));
            let droplet = {
                let url = droplet.inner_url();
                droplet.env("JUPITER_ADVERTISE", url)
            };
            let agent = ContainerSpec::new(
                id,
                "wave-worker",
                image(options, "wave-worker"),
                port::WAVE_WORKER,
                Some(node),
            )
            .env("JUPITER_NODE", node.name.clone());
            node_roles.push((node.name.clone(), droplet.clone(), agent.clone()));
            first.push(droplet);
            first.push(agent);
        }
        start_all(engine, id, &network, &first).await?;
        let first_addresses = addresses(engine, &network, &first).await?;
        let outer = |c: &ContainerSpec| format!("http://{}:{}", first_addresses[&c.name], c.port);
        wait_healthy(engine, &first, &outer).await?;

        // 2. The mapping.
        let agents: Vec<Agent> = node_roles
            .iter()
            .map(|(node, _, agent)| Agent {
                node: node.clone(),
                inner_url: agent.inner_url(),
                outer_url: outer(agent),
            })
            .collect();
        let placement = placement::place(
            &app,
            &PlacementRequest {
                scheduler: options.common.scheduler,
                static_mapping: &options.common.static_mapping,
                seed: options.common.seed,
                python: &options.common.python,
            },
            &outer(&central),
            &outer(&wave),
            &agents,
        )
        .await?;

        // 3. CIRCE: one worker per task on its node, then home.
        let home_name = format!("{id}-circe-home");
        let home_url = format!("http://{home_name}:{}", port::CIRCE_HOME);
        let mut workers: BTreeMap<String, ContainerSpec> = BTreeMap::new();
        for task in &app.tasks {
            let node_name = &placement.assignments[&task.name];
            let node = options
                .nodes
                .iter()
                .find(|n| &n.name == node_name)
                .ok_or_else(|| {
                    DeployError::Schedule(format!("{} mapped to unknown node {node_name}", task.name))
                })?;
            let mut worker = ContainerSpec::new(
                id,
                "circe-worker",
                image(options, "circe-worker"),
                port::CIRCE_WORKER,
                Some(node),
            );
            worker.name = format!("{id}-{}-{}", node.name, sanitize(&task.name));
            worker.task = Some(task.name.clone());
            workers.insert(task.name.clone(), worker);
        }
        // Two tasks whose names sanitise alike would share a container name.
        let mut seen = BTreeMap::new();
        for (task, worker) in &workers {
            if let Some(other) = seen.insert(worker.name.clone(), task.clone()) {
                return Err(DeployError::Schedule(format!(
                    "tasks {other:?} and {task:?} give the same container name {}; rename one",
                    worker.name
                ))
                .into());
            }
        }
        let urls: BTreeMap<String, String> =
            workers.iter().map(|(t, w)| (t.clone(), w.inner_url())).collect();
        let mut second = Vec::new();
        for task in &app.tasks {
            let worker = workers[&task.name].clone();
            let children = task
                .children
                .iter()
                .map(|c| format!("{c}={}", urls[c]))
                .collect::<Vec<_>>()
                .join(",");
            let node = worker.node.clone().unwrap_or_default();
            // An egress task has no children: no variable rather than an empty one.
            let worker = if children.is_empty() {
                worker
            } else {
                worker.env("JUPITER_CHILDREN", children)
            };
            second.push(
                worker
                    .env("JUPITER_APP", APP_MOUNT)
                    .env("JUPITER_TASK", task.name.clone())
                    .env("JUPITER_NODE", node.clone())
                    .env(
                        "JUPITER_QUEUE_DIR",
                        format!("/var/lib/jupiter/queues/{}", task.name),
                    )
                    .env("JUPITER_CIRCE_HOME", home_url.clone())
                    .env("JUPITER_PYTHON", "python3")
                    .mount(format!("{}:{APP_MOUNT}:ro", app_dir.display()))
                    .mount(format!("{}:/var/lib/jupiter", node_volume(id, &node))),
            );
        }
        let ingress = app
            .ingress()
            .iter()
            .map(|t| format!("{}={}", t.name, urls[&t.name]))
            .collect::<Vec<_>>()
            .join(",");
        let mut home = ContainerSpec::new(
            id,
            "circe-home",
            image(options, "circe-home"),
            port::CIRCE_HOME,
            None,
        )
        .env("JUPITER_APP", APP_MOUNT)
        .env("JUPITER_INGRESS", ingress)
        .env("JUPITER_OUTPUT_DIR", OUTPUT_MOUNT)
        // Inside the output folder so that it belongs to the user, as
        // the outputs do, and outlives the containers.
        .env("JUPITER_DATA_DIR", format!("{OUTPUT_MOUNT}/.circe-home/{id}"))
        .mount(format!("{}:{APP_MOUNT}:ro", app_dir.display()))
        .mount(format!("{}:{OUTPUT_MOUNT}", options.common.output.display()));
        // The outputs belong to whoever ran jupiterctl, not to root.
        home.user = Some(format!("{}:{}", unsafe { libc::getuid() }, unsafe {
            libc::getgid()
        }));
        second.push(home.clone());
        start_all(engine, id, &network, &second).await?;
        let more = addresses(engine, &network, &second).await?;
        let all_addresses: BTreeMap<String, String> = first_addresses.into_iter().chain(more).collect();
        let outer = |c: &ContainerSpec| format!("http://{}:{}", all_addresses[&c.name], c.port);
        wait_healthy(engine, &second, &outer).await?;
        let startup = started.elapsed();

        let endpoints = Endpoints {
            drupe_central: outer(&central),
            wave_home: outer(&wave),
            circe_home: outer(&home),
            nodes: node_roles
                .iter()
                .map(|(name, droplet, agent)| NodeEndpoints {
                    name: name.clone(),
                    drupe_droplet: outer(droplet),
                    wave_worker: outer(agent),
                })
                .collect(),
            workers: workers
                .iter()
                .map(|(task, w)| {
                    (
                        task.clone(),
                        WorkerEndpoint {
                            node: w.node.clone().unwrap_or_default(),
                            address: outer(w),
                        },
                    )
                })
                .collect(),
        };
        Ok(Self {
            id: id.to_string(),
            summary: Summary {
                endpoints,
                mapping: placement.assignments,
                algorithm: placement.algorithm,
                predicted_makespan_secs: placement.predicted_makespan_secs,
                output: options.common.output.clone(),
                startup,
            },
            containers: first.into_iter().chain(second).collect(),
            engine: engine.clone(),
        })
    }

    /// Removes every container, network and volume of this deployment.
    pub async fn down(self) -> Result<Removed, DockerError> {
        remove(&self.engine, &self.id).await
    }

    /// Resolves with a description of the first role that stopped running.
    pub async fn first_stopped(&self) -> String {
        first_stopped(&self.engine, &self.id).await
    }
}

fn image(options: &DockerOptions, role: &str) -> String {
    format!("{}/{role}:{}", options.image_prefix, options.image_tag)
}

fn node_volume(id: &str, node: &str) -> String {
    format!("{id}-{node}")
}

/// Starts every container at once: `docker run` is slow and mostly waiting.
async fn start_all(
    engine: &Engine,
    id: &str,
    network: &str,
    specs: &[ContainerSpec],
) -> Result<(), DockerError> {
    let runs = specs.iter().map(|spec| {
        let args = spec.run_args(id, network);
        async move { engine.run(&args).await }
    });
    for result in futures::future::join_all(runs).await {
        result?;
    }
    Ok(())
}

/// Each container's address on `network`, by container name.
async fn addresses(
    engine: &Engine,
    network: &str,
    specs: &[ContainerSpec],
) -> Result<BTreeMap<String, String>, DockerError> {
    let format = format!("{{{{.Name}}}} {{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
    let mut args = vec!["inspect".to_string(), "--format".into(), format];
    args.extend(specs.iter().map(|s| s.name.clone()));
    let text = engine.run(&args).await?;
    let mut found = BTreeMap::new();
    for line in text.lines() {
        if let Some((name, ip)) = line.split_once(' ') {
            if !ip.is_empty() && ip != "<no value>" {
                found.insert(name.trim_start_matches('/').to_string(), ip.to_string());
            }
        }
    }
    for spec in specs {
        if !found.contains_key(&spec.name) {
            return Err(DockerError::NoAddress {
                container: spec.name.clone(),
                network: network.into(),
                logs: engine.tail_logs(&spec.name, 20).await,
            });
        }
    }
    Ok(found)
}

/// Health-gates `specs`; a role that never answers is reported with the
/// last lines it logged.
async fn wait_healthy(
    engine: &Engine,
    specs: &[ContainerSpec],
    outer: &impl Fn(&ContainerSpec) -> String,
) -> Result<(), DockerError> {
    let checks: Vec<(String, String)> = specs.iter().map(|s| (s.name.clone(), outer(s))).collect();
    match wait_all_healthy(&checks).await {
        Ok(()) => Ok(()),
        Err(NotHealthy { what, last, .. }) => Err(DockerError::NotHealthy {
            logs: engine.tail_logs(&what, 20).await,
            container: what.clone(),
            what: role_of(specs, &what),
            last,
        }),
    }
}

fn role_of(specs: &[ContainerSpec], container: &str) -> String {
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

/// Removes every container, network and volume labelled with deployment `id`.
pub async fn remove(engine: &Engine, id: &str) -> Result<Removed, DockerError> {
    let label = format!("{DEPLOYMENT_LABEL}={id}");
    let mut removed = Removed::default();
    let containers = engine.ids_with_label(Kind::Container, &label).await?;
    if !containers.is_empty() {
        let mut args = vec!["rm".to_string(), "--force".into(), "--volumes".into()];
        args.extend(containers.iter().cloned());
        engine.run(&args).await?;
        removed.containers = containers.len();
    }
    let networks = engine.ids_with_label(Kind::Network, &label).await?;
    if !networks.is_empty() {
        let mut args = vec!["network".to_string(), "rm".into()];
        args.extend(networks.iter().cloned());
        engine.run(&args).await?;
        removed.networks = networks.len();
    }
    let volumes = engine.ids_with_label(Kind::Volume, &label).await?;
    if !volumes.is_empty() {
        let mut args = vec!["volume".to_string(), "rm".into(), "--force".into()];
        args.extend(volumes.iter().cloned());
        engine.run(&args).await?;
        removed.volumes = volumes.len();
    }
    Ok(removed)
}

/// Whether any container of deployment `id` exists.
pub async fn exists(engine: &Engine, id: &str) -> Result<bool, DockerError> {
    Ok(!engine
        .ids_with_label(Kind::Container, &format!("{DEPLOYMENT_LABEL}={id}"))
        .await?
        .is_empty())
}

/// How often the deployment's containers are looked at during a run.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// How long, at most, to wait for the rest of a failing node's containers
/// to go down before telling the user.
const SETTLE_LIMIT: Duration = Duration::from_secs(5);

/// Polls the deployment's containers and resolves, with what the user
/// should know, once any of them is no longer running. A node going down
/// takes its containers one by one, so the report waits until no more go
/// down between two looks (at most [`SETTLE_LIMIT`]) and names them all.
pub async fn first_stopped(engine: &Engine, id: &str) -> String {
    let mut down = BTreeMap::new();
    let mut first_seen = None;
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        let Ok(now) = stopped_containers(engine, id).await else {
            continue;
        };
        let started = *first_seen.get_or_insert_with(Instant::now);
        let settled = !down.is_empty() && now.len() <= down.len();
        if !now.is_empty() {
            down = now;
        }
        if down.is_empty() {
            first_seen = None;
            continue;
        }
        if settled || started.elapsed() >= SETTLE_LIMIT {
            return describe_stopped(&down);
        }
    }
}

/// Every container of deployment `id` that is not running: name ->
/// (where it ran, its status).
async fn stopped_containers(
    engine: &Engine,
    id: &str,
) -> Result<BTreeMap<String, (String, String)>, EngineError> {
    let filter = format!("label={DEPLOYMENT_LABEL}={id}");
    let format = format!("{{{{.Names}}}}\t{{{{.State}}}}\t{{{{.Status}}}}\t{{{{.Label \"{NODE_LABEL}\"}}}}");
    let text = engine
        .run(&["ps", "-a", "--filter", &filter, "--format", &format])
        .await?;
    let mut down = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        if let [name, state, status, node] = fields[..] {
            if state != "running" {
                let place = if node.is_empty() {
                    "home".to_string()
                } else {
                    format!("node {node}")
                };
                down.insert(name.to_string(), (place, status.to_string()));
            }
        }
    }
    Ok(down)
}

fn describe_stopped(down: &BTreeMap<String, (String, String)>) -> String {
    let mut by_place: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, (place, status)) in down {
        by_place
            .entry(place)
            .or_default()
            .push(format!("{name} ({status})"));
    }
    let parts: Vec<String> = by_place
        .into_iter()
        .map(|(place, containers)| format!("{place} is down: {}", containers.join(", ")))
        .collect();
    format!(
        "{}. Inputs that pass through it cannot finish (recovering from a lost node is not implemented yet); \
         `jupiterctl down` removes the deployment, or `docker start` the containers to resume",
        parts.join("; ")
    )
}
