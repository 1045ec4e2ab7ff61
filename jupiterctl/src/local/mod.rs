//! The local backend: every role a real gRPC server on a loopback port
//! inside this process, over N emulated nodes, each started through its
//! crate's own `serve` (the same code its binary runs). From another
//! process (`status`, `submit`, `down`) a local deployment is the process
//! that runs it, which `down` asks to stop.

use crate::deployment::Inventory;
use crate::deployment::{
    self, wait_roles_healthy, Agent, Backend, BoxError, ControlPlane, DeployError, DeploymentState,
    Placement, ProbeOptions, RoleInstance, Summary, HEALTH_TIMEOUT,
};
use crate::process;
use futures::future::BoxFuture;
use jupiter_common::app::{App, TaskRunner};
use jupiter_common::cli::RunnerFlags;
use jupiter_common::role::{Role, RoleArgs};
use jupiter_common::serve::{url_of, wait_healthy};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Where and how a local deployment runs.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Emulated nodes, named `node0…`.
    pub nodes: usize,
    /// Queues, home data and DRUPE's database live here.
    pub workdir: PathBuf,
    /// Outputs land here.
    pub output: PathBuf,
    /// Python of original Jupiter tasks.
    pub python: String,
    /// Fresh interpreters, timeouts and interpreter lifetimes for tasks
    /// that do not set their own.
    pub runner: RunnerFlags,
    pub probe: ProbeOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("--nodes must be at least 1")]
    NoNodes,
    #[error("work folder {dir}: {source}")]
    Workdir { dir: PathBuf, source: std::io::Error },
    #[error("binding a loopback port: {0}")]
    Bind(std::io::Error),
    #[error("binding {addr} again for {role}: {source}")]
    Rebind {
        role: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("signalling the deployment's process {pid}: {source}")]
    Signal { pid: u32, source: std::io::Error },
    #[error("the deployment's process {pid} did not stop within 20 s")]
    DidNotStop { pid: u32 },
}

/// A local deployment: run by this process, or by the `up` process `pid`.
pub struct Local {
    inventory: Inventory,
    pid: u32,
    /// The roles, when this process runs them.
    here: Option<InProcess>,
}

impl Local {
    /// A deployment this process will bring up and run.
    pub fn new(app_name: &str, config: LocalConfig) -> Self {
        let (stopped, _) = watch::channel(None);
        Self {
            inventory: Inventory::new(deployment::new_id(app_name), config.output.clone()),
            pid: std::process::id(),
            here: Some(InProcess {
                config,
                shutdown: CancellationToken::new(),
                slots: BTreeMap::new(),
                stopped: Arc::new(stopped),
            }),
        }
    }

    /// The deployment that process `pid` runs, as its state file says.
    pub fn attach(pid: u32, summary: &Summary) -> Self {
        Self {
            inventory: Inventory::of(summary),
            pid,
            here: None,
        }
    }

    fn here(&mut self, what: &str) -> Result<&mut InProcess, DeployError> {
        let pid = self.pid;
        self.here.as_mut().ok_or_else(|| DeployError::Unsupported {
            what: what.to_string(),
            backend: "local",
            why: format!("its roles run inside process {pid}"),
        })
    }

    /// Binds a loopback port for a role and starts it there.
    async fn start<A: RoleArgs>(
        &mut self,
        instance: RoleInstance,
        config: A::Config,
    ) -> Result<(), DeployError>
    where
        A::Config: Clone + Sync,
    {
        let (listener, url) = bind().await?;
        self.serve_on::<A>(RoleInstance { url, ..instance }, listener, config)
    }

    /// Starts a role on a listener already bound (roles whose address must
    /// be known before they start).
    fn serve_on<A: RoleArgs>(
        &mut self,
        instance: RoleInstance,
        listener: TcpListener,
        config: A::Config,
    ) -> Result<(), DeployError>
    where
        A::Config: Clone + Sync,
    {
        let instance = RoleInstance {
            pid: Some(self.pid),
            ..instance
        };
        self.here("starting a role")?
            .start::<A>(&instance, listener, config)?;
        self.inventory.roles.push(instance);
        Ok(())
    }
}

/// The roles this process runs, each in a slot it can be restarted from.
struct InProcess {
    config: LocalConfig,
    shutdown: CancellationToken,
    /// label -> slot.
    slots: BTreeMap<String, Slot>,
    /// The first role that stopped on its own, and why.
    stopped: Arc<watch::Sender<Option<String>>>,
}

/// Starts a role on a listener: its crate's `serve` with its configuration.
type Starter = Arc<
    dyn Fn(TcpListener, WaitForCancellationFutureOwned) -> BoxFuture<'static, Result<(), BoxError>>
        + Send
        + Sync,
>;

struct Slot {
    addr: SocketAddr,
    start: Starter,
    task: JoinHandle<()>,
}

impl InProcess {
    fn start<A: RoleArgs>(
        &mut self,
        instance: &RoleInstance,
        listener: TcpListener,
        config: A::Config,
    ) -> Result<(), DeployError>
    where
        A::Config: Clone + Sync,
    {
        let addr = listener
            .local_addr()
            .map_err(|e| DeployError::backend(LocalError::Bind(e)))?;
        let start: Starter = Arc::new(move |listener, shutdown| {
            let config = config.clone();
            Box::pin(async move {
                A::serve(config, listener, shutdown)
                    .await
                    .map_err(|e| Box::new(e) as BoxError)
            })
        });
        let label = instance.label();
        let task = self.spawn(label.clone(), &start, listener);
        self.slots.insert(label, Slot { addr, start, task });
        Ok(())
    }

    /// Runs a role until shutdown; a role that ends before is reported
    /// through `stopped`.
    fn spawn(&self, label: String, start: &Starter, listener: TcpListener) -> JoinHandle<()> {
        let serving = start(listener, self.shutdown.clone().cancelled_owned());
        let shutdown = self.shutdown.clone();
        let stopped = self.stopped.clone();
        tokio::spawn(async move {
            let result = serving.await;
            if shutdown.is_cancelled() {
                if let Err(e) = result {
                    tracing::debug!(role = %label, error = %e, "role ended with an error while stopping");
                }
                return;
            }
            let reason = match result {
                Ok(()) => format!("{label} stopped"),
                Err(e) => format!("{label} stopped: {}", jupiter_common::error::explain(e.as_ref())),
            };
            tracing::error!("{reason}");
            stopped.send_if_modified(|first| first.is_none() && first.replace(reason).is_none());
        })
    }

    /// Kills a role as a crash would (its data stays), then starts it again
    /// on the same port.
    async fn restart(&mut self, role: &RoleInstance) -> Result<(), DeployError> {
        let label = role.label();
        let Some(slot) = self.slots.get_mut(&label) else {
            return Err(DeployError::NoSuchRole { what: label });
        };
        slot.task.abort();
        let _ = (&mut slot.task).await;
        let listener = rebind(&label, slot.addr).await?;
        let start = slot.start.clone();
        let task = self.spawn(label.clone(), &start, listener);
        if let Some(slot) = self.slots.get_mut(&label) {
            slot.task = task;
        }
        wait_healthy(&label, &role.url, HEALTH_TIMEOUT).await?;
        Ok(())
    }

    async fn stop(&mut self) {
        self.shutdown.cancel();
        let tasks = self.slots.values_mut().map(|s| &mut s.task);
        let _ = tokio::time::timeout(Duration::from_secs(5), futures::future::join_all(tasks)).await;
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A fresh loopback port and its URL.
async fn bind() -> Result<(TcpListener, String), DeployError> {
    let bound = async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = url_of(&listener)?;
        Ok((listener, url))
    };
    bound.await.map_err(|e| DeployError::backend(LocalError::Bind(e)))
}

/// Binds `addr` again: a killed listener's port may take a moment to be free.
async fn rebind(role: &str, addr: SocketAddr) -> Result<TcpListener, DeployError> {
    let mut delay = Duration::from_millis(5);
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(source) if delay > Duration::from_secs(2) => {
                return Err(DeployError::backend(LocalError::Rebind {
                    role: role.to_string(),
                    addr,
                    source,
                }))
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
}

#[async_trait::async_trait]
impl Backend for Local {
    fn describe(&self) -> String {
        format!("local deployment {} in process {}", self.inventory.id, self.pid)
    }

    fn in_process(&self) -> bool {
        self.here.is_some()
    }

    async fn deploy_roles(&mut self, app: &App) -> Result<ControlPlane, DeployError> {
        let config = self.here("deploying")?.config.clone();
        if config.nodes == 0 {
            return Err(DeployError::backend(LocalError::NoNodes));
        }
        std::fs::create_dir_all(&config.workdir).map_err(|source| {
            DeployError::backend(LocalError::Workdir {
                dir: config.workdir.clone(),
                source,
            })
        })?;
        // Finding the real Python behind a shim takes a while: done now,
        // beside DRUPE, rather than when the first worker starts.
        if app
            .tasks
            .iter()
            .any(|t| matches!(t.runner, TaskRunner::Python { .. }))
        {
            let python = config.python.clone();
            tokio::task::spawn_blocking(move || circe_worker::runner::resolve_python(&python));
        }
        let mut central = drupe_central::Config::new(config.workdir.join("drupe").join("central.redb"));
        central.probe_sizes = config.probe.sizes.clone();
        central.probe_interval = config.probe.interval;
        central.probe_min_secs = config.probe.min_secs;
        central.probe_max_bytes = config.probe.max_bytes;
        // Every node is on this host's CPU: parallel probes would share it.
        central.probe_sequential = true;
        self.start::<drupe_central::Args>(RoleInstance::new(Role::DrupeCentral, ""), central)
            .await?;
        let central_url = self.inventory.url(Role::DrupeCentral);
        let wave = wave_home::Config {
            central: central_url.clone(),
            advertise: None,
        };
        self.start::<wave_home::Args>(RoleInstance::new(Role::WaveHome, ""), wave)
            .await?;
        for i in 0..config.nodes {
            let node = format!("node{i}");
            // Droplets probe each other: each advertises the port it got.
            let (listener, url) = bind().await?;
            let droplet = drupe_droplet::Config {
                node: node.clone(),
                central: central_url.clone(),
                report_interval: Duration::from_secs(5),
                advertise: Some(url.clone()),
                data_dir: Some(config.workdir.clone()),
            };
            let instance = RoleInstance::new(Role::DrupeDroplet, url).on(&node);
            self.serve_on::<drupe_droplet::Args>(instance, listener, droplet)?;
            let agent = wave_worker::Config { node: node.clone() };
            let instance = RoleInstance::new(Role::WaveWorker, "").on(&node);
            self.start::<wave_worker::Args>(instance, agent).await?;
        }
        wait_roles_healthy(&self.inventory.roles).await?;
        Ok(control_plane(&self.inventory))
    }

    async fn start_workers(&mut self, app: &App, placement: &Placement) -> Result<(), DeployError> {
        let config = self.here("starting workers")?.config.clone();
        // Every worker's port first: they address each other.
        let mut listeners = BTreeMap::new();
        let mut urls = BTreeMap::new();
        for task in &app.tasks {
            let (listener, url) = bind().await?;
            listeners.insert(task.name.clone(), listener);
            urls.insert(task.name.clone(), url);
        }
        let (home, home_url) = bind().await?;
        let first_worker = self.inventory.roles.len();
        for task in &app.tasks {
            let node = placement.node_of(&task.name)?.to_string();
            let mut task = task.clone();
            config.runner.apply(&mut task);
            let worker = circe_worker::Config {
                task: task.clone(),
                app_dir: app.dir.clone(),
                queue_dir: config
                    .workdir
                    .join("nodes")
                    .join(&node)
                    .join("queues")
                    .join(&task.name),
                node: node.clone(),
                children: task
                    .children
                    .iter()
                    .map(|c| circe_worker::ChildEndpoint {
                        task: c.clone(),
                        address: urls.get(c).cloned().unwrap_or_default(),
                    })
                    .collect(),
                home: home_url.clone(),
                python: config.python.clone(),
                fresh_interpreter: false,
            };
            let Some(listener) = listeners.remove(&task.name) else {
                continue;
            };
            self.serve_on::<circe_worker::Args>(
                RoleInstance::new(Role::CirceWorker, urls[&task.name].clone())
                    .on(node)
                    .running(&task.name),
                listener,
                worker,
            )?;
        }
        let home_config = circe_home::Config {
            data_dir: config.workdir.join("home"),
            output_dir: config.output.clone(),
            ingress: app
                .ingress()
                .iter()
                .map(|t| circe_home::Ingress {
                    task: t.name.clone(),
                    address: urls.get(&t.name).cloned().unwrap_or_default(),
                })
                .collect(),
            egress: app.egress().iter().map(|t| t.name.clone()).collect(),
            tasks: app.tasks.iter().map(|t| t.name.clone()).collect(),
        };
        self.serve_on::<circe_home::Args>(RoleInstance::new(Role::CirceHome, home_url), home, home_config)?;
        wait_roles_healthy(&self.inventory.roles[first_worker..]).await?;
        Ok(())
    }

    async fn exists(&self) -> bool {
        self.here.is_some() || process::alive(self.pid)
    }

    async fn stopped(&self) -> String {
        match &self.here {
            Some(here) => {
                let mut first = here.stopped.subscribe();
                loop {
                    if let Some(reason) = first.borrow_and_update().clone() {
                        return format!("{reason}; `jupiterctl down` stops the rest");
                    }
                    if first.changed().await.is_err() {
                        return std::future::pending().await;
                    }
                }
            }
            None => {
                while process::alive(self.pid) {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                format!(
                    "the deployment's process {} is gone, and every role it ran with it",
                    self.pid
                )
            }
        }
    }

    async fn restart(&mut self, role: &RoleInstance) -> Result<(), DeployError> {
        self.here(&format!("restarting {}", role.label()))?
            .restart(role)
            .await
    }

    async fn down(&mut self) -> Result<String, DeployError> {
        if let Some(here) = &mut self.here {
            here.stop().await;
            return Ok("stopped".into());
        }
        let pid = self.pid;
        if !process::alive(pid) {
            return Ok(format!("the deployment (pid {pid}) was not running"));
        }
        process::signal_stop(pid)
            .map_err(|source| DeployError::backend(LocalError::Signal { pid, source }))?;
        if !process::wait_gone(pid, Duration::from_secs(20)).await {
            return Err(DeployError::backend(LocalError::DidNotStop { pid }));
        }
        Ok("stopped".into())
    }

    fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    fn state(&self, summary: Summary) -> DeploymentState {
        DeploymentState::Local {
            pid: self.pid,
            summary,
        }
    }
}

/// What placement may use: drupe-central, wave-home and every node's agent.
fn control_plane(inventory: &Inventory) -> ControlPlane {
    ControlPlane::Reachable {
        central: inventory.url(Role::DrupeCentral),
        wave_home: inventory.url(Role::WaveHome),
        agents: inventory
            .roles
            .iter()
            .filter(|r| r.role == Role::WaveWorker)
            .map(|r| Agent {
                node: r.node.clone().unwrap_or_default(),
                inner_url: r.url.clone(),
                outer_url: r.url.clone(),
            })
            .collect(),
    }
}
