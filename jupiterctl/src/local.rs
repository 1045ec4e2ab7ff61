//! The local backend: every role a real gRPC server on a loopback port
//! inside this process, over N emulated nodes. Roles are started in
//! dependency order and each is health-checked before its dependants start.

use crate::placement::{self, wait_all_healthy, Agent, PlacementRequest, HEALTH_TIMEOUT};
use circe_worker::{ChildEndpoint, Config as WorkerConfig};
use jupiter_common::app::App;
use jupiter_common::serve::{url_of, wait_healthy, NotHealthy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
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
}

#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub nodes: usize,
    pub scheduler: Scheduler,
    pub static_mapping: BTreeMap<String, String>,
    pub seed: u64,
    /// Queues and home data live here.
    pub workdir: PathBuf,
    /// Outputs land here.
    pub output: PathBuf,
    pub python: String,
    /// DRUPE probing of the emulated links.
    pub probe: ProbeOptions,
}

/// How drupe-central probes on the local backend. Loopback links are fast:
/// small payloads measure them well enough.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    pub interval: Duration,
    pub sizes: Vec<u64>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            sizes: vec![16 * 1024, 128 * 1024],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("--nodes must be at least 1")]
    NoNodes,
    #[error("work folder {dir}: {source}")]
    Workdir { dir: PathBuf, source: std::io::Error },
    #[error("binding a loopback port: {0}")]
    Bind(std::io::Error),
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
    #[error(transparent)]
    ExecProfile(#[from] crate::exec_profile::ProfileError),
    #[error("scheduling: {0}")]
    Schedule(String),
    #[error("telling {node}'s wave-worker it hosts {task}: {message}")]
    Host {
        node: String,
        task: String,
        message: String,
    },
    #[error("starting the worker of {task}: {source}")]
    Worker {
        task: String,
        source: circe_worker::Error,
    },
    #[error("starting circe-home: {0}")]
    Home(#[from] circe_home::Error),
    #[error("address: {0}")]
    Address(#[from] tonic::transport::Error),
}

/// What every backend's deployment knows of itself once it is up.
#[derive(Debug, Clone)]
pub struct Summary {
    pub endpoints: Endpoints,
    /// task -> node.
    pub mapping: BTreeMap<String, String>,
    pub algorithm: String,
    /// What the scheduler expects one input's makespan to be (0: no model).
    pub predicted_makespan_secs: f64,
    pub output: PathBuf,
    /// From the start of `up` to every role healthy.
    pub startup: Duration,
}

/// Where every role of a deployment answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoints {
    pub drupe_central: String,
    pub wave_home: String,
    pub circe_home: String,
    pub nodes: Vec<NodeEndpoints>,
    /// task -> its worker.
    pub workers: BTreeMap<String, WorkerEndpoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeEndpoints {
    pub name: String,
    pub drupe_droplet: String,
    pub wave_worker: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerEndpoint {
    pub node: String,
    pub address: String,
}

struct WorkerSlot {
    config: WorkerConfig,
    addr: SocketAddr,
    handle: Option<AbortOnDropHandle<circe_worker::Result<()>>>,
}

/// A running local deployment. Dropping it stops every role.
pub struct Deployment {
    pub app: App,
    pub summary: Summary,
    shutdown: CancellationToken,
    servers: JoinSet<()>,
    workers: BTreeMap<String, WorkerSlot>,
}

async fn bind() -> Result<TcpListener, DeployError> {
    TcpListener::bind("127.0.0.1:0").await.map_err(DeployError::Bind)
}

fn spawn_role<E: std::fmt::Display>(
    servers: &mut JoinSet<()>,
    what: String,
    fut: impl std::future::Future<Output = Result<(), E>> + Send + 'static,
) {
    servers.spawn(async move {
        if let Err(e) = fut.await {
            tracing::error!(role = %what, error = %e, "role stopped with an error");
        }
    });
}

impl Deployment {
    /// Deploys `app` on `options.nodes` emulated nodes and returns once every
    /// role answers its health check.
    pub async fn up(app: App, options: LocalOptions) -> Result<Self, DeployError> {
        if options.nodes == 0 {
            return Err(DeployError::NoNodes);
        }
        let started = std::time::Instant::now();
        std::fs::create_dir_all(&options.workdir).map_err(|source| DeployError::Workdir {
            dir: options.workdir.clone(),
            source,
        })?;
        let shutdown = CancellationToken::new();
        let mut servers = JoinSet::new();
        // Finding the real Python behind a shim takes a while: done now,
        // beside DRUPE, rather than when the first worker starts.
        if app
            .tasks
            .iter()
            .any(|t| matches!(t.runner, jupiter_common::app::TaskRunner::LegacyPython { .. }))
        {
            let python = options.python.clone();
            tokio::task::spawn_blocking(move || circe_worker::runner::resolve_python(&python));
        }

        // 1. DRUPE and WAVE: central, home, and per node a droplet and an agent.
        let central = bind().await?;
        let central_url = url_of(&central).map_err(DeployError::Bind)?;
        let mut central_config =
            drupe_central::Config::new(options.workdir.join("drupe").join("central.redb"));
        // Loopback links are fast: small payloads measure them well enough.
        central_config.probe_sizes = options.probe.sizes.clone();
        central_config.probe_interval = options.probe.interval;
        spawn_role(
            &mut servers,
            "drupe-central".into(),
            drupe_central::serve(central_config, central, shutdown.clone().cancelled_owned()),
        );
        let wave = bind().await?;
        let wave_url = url_of(&wave).map_err(DeployError::Bind)?;
        spawn_role(&mut servers, "wave-home".into(), {
            let central_url = central_url.clone();
            let stop = shutdown.clone().cancelled_owned();
            let config = wave_home::Config {
                central: central_url,
                advertise: None,
            };
            async move { wave_home::serve(config, wave, stop).await }
        });
        let mut nodes = Vec::new();
        for i in 0..options.nodes {
            let name = format!("node{i}");
            let droplet = bind().await?;
            let droplet_url = url_of(&droplet).map_err(DeployError::Bind)?;
            let config = drupe_droplet::Config {
                node: name.clone(),
                central: central_url.clone(),
                report_interval: Duration::from_secs(5),
                advertise: Some(droplet_url.clone()),
                data_dir: Some(options.workdir.clone()),
            };
            spawn_role(
                &mut servers,
                format!("drupe-droplet {name}"),
                drupe_droplet::serve(config, droplet, shutdown.clone().cancelled_owned()),
            );
            let agent = bind().await?;
            let agent_url = url_of(&agent).map_err(DeployError::Bind)?;
            spawn_role(
                &mut servers,
                format!("wave-worker {name}"),
                wave_worker::serve(
                    wave_worker::Config { node: name.clone() },
                    agent,
                    shutdown.clone().cancelled_owned(),
                ),
            );
            nodes.push(NodeEndpoints {
                name,
                drupe_droplet: droplet_url,
                wave_worker: agent_url,
            });
        }
        let mut checks: Vec<(String, String)> = vec![
            ("drupe-central".into(), central_url.clone()),
            ("wave-home".into(), wave_url.clone()),
        ];
        for n in &nodes {
            checks.push((format!("drupe-droplet {}", n.name), n.drupe_droplet.clone()));
            checks.push((format!("wave-worker {}", n.name), n.wave_worker.clone()));
        }
        wait_all_healthy(&checks).await?;

        // 2. The mapping, from wave-home over the nodes DRUPE knows.
        let agents: Vec<Agent> = nodes
            .iter()
            .map(|n| Agent {
                node: n.name.clone(),
                inner_url: n.wave_worker.clone(),
                outer_url: n.wave_worker.clone(),
            })
            .collect();
        let placement = placement::place(
            &app,
            &PlacementRequest {
                scheduler: options.scheduler,
                static_mapping: &options.static_mapping,
                seed: options.seed,
                python: &options.python,
            },
            &central_url,
            &wave_url,
            &agents,
        )
        .await?;
        let assignments = placement.assignments;

        // 3. CIRCE: every worker's port first (they address each other), then home.
        let mut listeners = BTreeMap::new();
        for task in &app.tasks {
            listeners.insert(task.name.clone(), bind().await?);
        }
        let home_listener = bind().await?;
        let home_url = url_of(&home_listener).map_err(DeployError::Bind)?;
        let mut worker_endpoints = BTreeMap::new();
        for (task, listener) in &listeners {
            worker_endpoints.insert(
                task.clone(),
                WorkerEndpoint {
                    node: assignments[task].clone(),
                    address: url_of(listener).map_err(DeployError::Bind)?,
                },
            );
        }
        let mut workers = BTreeMap::new();
        for task in &app.tasks {
            let node = assignments[&task.name].clone();
            let config = WorkerConfig {
                task: task.clone(),
                app_dir: app.dir.clone(),
                queue_dir: options
                    .workdir
                    .join("nodes")
                    .join(&node)
                    .join("queues")
                    .join(&task.name),
                node,
                children: task
                    .children
                    .iter()
                    .map(|c| ChildEndpoint {
                        task: c.clone(),
                        address: worker_endpoints[c].address.clone(),
                    })
                    .collect(),
                home: home_url.clone(),
                python: options.python.clone(),
            };
            let Some(listener) = listeners.remove(&task.name) else {
                continue;
            };
            let addr = listener.local_addr().map_err(DeployError::Bind)?;
            let handle = AbortOnDropHandle::new(tokio::spawn(circe_worker::serve(
                config.clone(),
                listener,
                shutdown.clone().cancelled_owned(),
            )));
            workers.insert(
                task.name.clone(),
                WorkerSlot {
                    config,
                    addr,
                    handle: Some(handle),
                },
            );
        }
        let home_config = circe_home::Config {
            data_dir: options.workdir.join("home"),
            output_dir: options.output.clone(),
            ingress: app
                .ingress()
                .iter()
                .map(|t| circe_home::Ingress {
                    task: t.name.clone(),
                    address: worker_endpoints[&t.name].address.clone(),
                })
                .collect(),
            egress: app.egress().iter().map(|t| t.name.clone()).collect(),
            tasks: app.tasks.iter().map(|t| t.name.clone()).collect(),
        };
        // Built here so a bad folder is reported before anything runs.
        circe_home::Home::new(home_config.clone())?;
        spawn_role(
            &mut servers,
            "circe-home".into(),
            circe_home::serve(home_config, home_listener, shutdown.clone().cancelled_owned()),
        );
        let mut checks: Vec<(String, String)> = vec![("circe-home".into(), home_url.clone())];
        for (task, w) in &worker_endpoints {
            checks.push((format!("circe-worker {task}"), w.address.clone()));
        }
        wait_all_healthy(&checks).await?;

        Ok(Self {
            summary: Summary {
                endpoints: Endpoints {
                    drupe_central: central_url,
                    wave_home: wave_url,
                    circe_home: home_url,
                    nodes,
                    workers: worker_endpoints,
                },
                mapping: assignments,
                algorithm: placement.algorithm,
                predicted_makespan_secs: placement.predicted_makespan_secs,
                output: options.output,
                startup: started.elapsed(),
            },
            app,
            shutdown,
            servers,
            workers,
        })
    }

    /// Kills the worker of `task` as a crash would (its queue stays on disk).
    pub fn kill_worker(&mut self, task: &str) -> bool {
        match self.workers.get_mut(task).and_then(|w| w.handle.take()) {
            Some(handle) => {
                handle.abort();
                true
            }
            None => false,
        }
    }

    /// Starts the worker of `task` again, same port, same queue.
    pub async fn restart_worker(&mut self, task: &str) -> Result<(), DeployError> {
        let Some(slot) = self.workers.get_mut(task) else {
            return Err(DeployError::Schedule(format!("no worker for task {task}")));
        };
        if let Some(old) = slot.handle.take() {
            old.abort();
            let _ = old.await;
        }
        // The killed listener's port may take a moment to be free again.
        let mut delay = Duration::from_millis(5);
        let listener = loop {
            match TcpListener::bind(slot.addr).await {
                Ok(l) => break l,
                Err(e) if delay > Duration::from_secs(2) => return Err(DeployError::Bind(e)),
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        };
        let handle = AbortOnDropHandle::new(tokio::spawn(circe_worker::serve(
            slot.config.clone(),
            listener,
            self.shutdown.clone().cancelled_owned(),
        )));
        slot.handle = Some(handle);
        wait_healthy(
            &format!("circe-worker {task}"),
            &format!("http://{}", slot.addr),
            HEALTH_TIMEOUT,
        )
        .await?;
        Ok(())
    }

    /// Stops every role gracefully and waits for them.
    pub async fn down(mut self) {
        self.shutdown.cancel();
        for slot in self.workers.values_mut() {
            if let Some(handle) = slot.handle.take() {
                let _ = tokio::time::timeout(Duration::from_secs(5), handle).await;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while self.servers.join_next().await.is_some() {}
        })
        .await;
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
