//! The local backend: every role a real gRPC server on a loopback port
//! over N emulated nodes, each configured by its binary's own flags
//! ([`commands`]). By default the roles are served inside this process
//! (through each crate's `serve`, the code its binary runs); with
//! `--processes` each role is its own OS process, `jupiterctl serve ROLE`,
//! kept running by a [`supervisor`]. From another process (`status`,
//! `submit`, `down`) a local deployment is the process that runs it, which
//! `down` asks to stop.

mod commands;
pub mod supervisor;

use crate::deployment::{
    self, wait_roles_healthy, Agent, Backend, BoxError, ControlPlane, DeployError, DeploymentState,
    Placement, ProbeOptions, RoleInstance, Summary, HEALTH_TIMEOUT,
};
use crate::deployment::{Inventory, Stopped};
use crate::process;
use commands::RoleCommand;
use futures::future::BoxFuture;
use jupiter_common::app::{App, TaskRunner};
use jupiter_common::cli::RunnerFlags;
use jupiter_common::role::{Role, RoleArgs};
use jupiter_common::serve::{url_of, wait_healthy};
use jupiter_common::sync::LockExt;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use supervisor::{Launch, RoleStop, Stops, Supervised};
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
    /// `--processes`: the `jupiterctl` binary that serves each role as its
    /// own process (None: every role inside this process).
    pub processes: Option<PathBuf>,
    /// `--otlp-endpoint`: where every role sends its spans (None: nowhere).
    pub otlp_endpoint: Option<String>,
    /// `--tls`: mutual TLS everywhere, certificates under WORKDIR/tls.
    pub tls: bool,
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
    #[error("{role}: {detail}")]
    Flags { role: Role, detail: String },
    #[error("restarting {role}: {source}")]
    Restart { role: String, source: std::io::Error },
}

/// A local deployment: run by this process, or by the `up` process `pid`.
pub struct Local {
    inventory: Inventory,
    pid: u32,
    /// The roles, when this process runs them.
    here: Option<Here>,
    /// How many of the roles' stops [`Backend::stopped`] has dealt with.
    seen: Mutex<usize>,
    /// Nodes lost and recovered from (`--processes`).
    lost_nodes: Mutex<BTreeSet<String>>,
    /// `--tls`: the certificates, once made.
    tls: Option<Tls>,
}

/// A local deployment's certificates: every role's and the user's, under
/// WORKDIR/tls.
struct Tls {
    /// The certificates; the user's are [`crate::tls::client_files`] of it.
    dir: PathBuf,
    /// What this process presents to the roles (its own calls and those
    /// of the roles it runs inside itself).
    identity: Arc<jupiter_common::tls::Identity>,
}

impl Local {
    /// A deployment this process will bring up and run.
    pub fn new(app_name: &str, config: LocalConfig) -> Self {
        let (stops, _) = watch::channel(Vec::new());
        Self {
            inventory: Inventory::new(deployment::new_id(app_name), config.output.clone()),
            pid: std::process::id(),
            here: Some(Here {
                config,
                shutdown: CancellationToken::new(),
                slots: BTreeMap::new(),
                stops: Arc::new(stops),
            }),
            seen: Mutex::new(0),
            lost_nodes: Mutex::default(),
            tls: None,
        }
    }

    /// The deployment that process `pid` runs, as its state file says.
    pub fn attach(pid: u32, summary: &Summary) -> Self {
        Self {
            inventory: Inventory::of(summary),
            pid,
            here: None,
            seen: Mutex::new(0),
            lost_nodes: Mutex::default(),
            tls: None,
        }
    }

    fn here(&mut self, what: &str) -> Result<&mut Here, DeployError> {
        let pid = self.pid;
        self.here.as_mut().ok_or_else(|| DeployError::Unsupported {
            what: what.to_string(),
            backend: "local",
            why: format!("its roles run inside process {pid}"),
        })
    }

    /// Binds a loopback port for a role and starts it there.
    async fn start(&mut self, instance: RoleInstance, command: RoleCommand) -> Result<(), DeployError> {
        let (listener, url) = bind().await?;
        self.serve_on(RoleInstance { url, ..instance }, listener, command)
    }

    /// Starts a role on a listener already bound (roles whose address must
    /// be known before they start).
    fn serve_on(
        &mut self,
        instance: RoleInstance,
        listener: TcpListener,
        command: RoleCommand,
    ) -> Result<(), DeployError> {
        let (metrics, metrics_addr) =
            metrics_socket().map_err(|e| DeployError::backend(LocalError::Bind(e)))?;
        let id = self.inventory.id.clone();
        let here = self.here("starting a role")?;
        let in_process = here.config.processes.is_none();
        let flag = match in_process {
            true => format!("fd:{}", metrics.as_raw_fd()),
            false => supervisor::metrics_flag(),
        };
        let command = command.telemetry(&flag, here.config.otlp_endpoint.as_deref(), &id);
        let command = with_tls(self.tls.as_ref(), command, &instance);
        let here = self.here("starting a role")?;
        here.start(&instance, listener, metrics, command)?;
        let instance = RoleInstance {
            metrics: Some(format!("http://{metrics_addr}/metrics")),
            ..instance
        };
        // A role in this process has this process's pid; a supervised one
        // has its own, which [`Backend::roles`] reads live.
        let instance = RoleInstance {
            pid: in_process.then_some(self.pid),
            ..instance
        };
        self.inventory.roles.push(instance);
        Ok(())
    }

    /// What stopped the deployment for good: a role of this process that
    /// ended, a supervised role in a crash loop, or the `up` process gone.
    /// With `--processes`, a role of a node that keeps crashing (its
    /// folder gone, its disk full) is the node lost: its tasks move.
    async fn first_stop(&self) -> Stopped {
        let Some(here) = &self.here else {
            while process::alive(self.pid) {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            return Stopped::Broken(format!(
                "the deployment's process {} is gone, and every role it ran with it",
                self.pid
            ));
        };
        let mut stops = here.stops.subscribe();
        loop {
            let new: Vec<RoleStop> = {
                let all = stops.borrow_and_update();
                let mut seen = self.seen.locked();
                let new = all[(*seen).min(all.len())..].to_vec();
                *seen = all.len();
                new
            };
            for stop in new {
                match stop.node {
                    Some(node) if here.config.processes.is_some() => {
                        // A stop of a node already recovered from (its
                        // roles kept crashing until they were stopped) is
                        // not news.
                        if self.lost_nodes.locked().insert(node.clone()) {
                            return Stopped::NodesLost {
                                report: format!("node {node} is lost: {}", stop.reason),
                                nodes: vec![node],
                            };
                        }
                    }
                    _ => {
                        return Stopped::Broken(format!("{}; `jupiterctl down` stops the rest", stop.reason))
                    }
                }
            }
            if stops.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

/// The roles this process runs, each in a slot it can be restarted from.
struct Here {
    config: LocalConfig,
    shutdown: CancellationToken,
    /// label -> slot.
    slots: BTreeMap<String, Slot>,
    /// Every role that stopped on its own (in this process) or keeps
    /// crashing (as its own process), and why.
    stops: Stops,
}

/// Starts a role on a listener: its crate's `serve` with its configuration.
type Starter = Arc<
    dyn Fn(TcpListener, WaitForCancellationFutureOwned) -> BoxFuture<'static, Result<(), BoxError>>
        + Send
        + Sync,
>;

enum Slot {
    /// A task of this process.
    /// `_metrics` is the socket its `--metrics-listen fd:N` names: held
    /// here (never read) so that every start of the role finds it open.
    Task {
        addr: SocketAddr,
        start: Starter,
        task: JoinHandle<()>,
        _metrics: OwnedFd,
    },
    /// A process of its own, and a copy of its listening and metrics
    /// sockets (a task that moves to another node keeps its ports).
    Process {
        process: Supervised,
        listener: OwnedFd,
        metrics: OwnedFd,
    },
}

impl Here {
    fn start(
        &mut self,
        instance: &RoleInstance,
        listener: TcpListener,
        metrics: OwnedFd,
        command: RoleCommand,
    ) -> Result<(), DeployError> {
        let label = instance.label();
        let slot = match &self.config.processes {
            Some(program) => {
                let listener: OwnedFd = listener
                    .into_std()
                    .map_err(|e| DeployError::backend(LocalError::Bind(e)))?
                    .into();
                let bind = |e| DeployError::backend(LocalError::Bind(e));
                let spare = listener.try_clone().map_err(bind)?;
                let handed = metrics.try_clone().map_err(bind)?;
                let process =
                    self.supervise(&label, instance.node.clone(), program, command, listener, handed)?;
                Slot::Process {
                    process,
                    listener: spare,
                    metrics,
                }
            }
            None => {
                let addr = listener
                    .local_addr()
                    .map_err(|e| DeployError::backend(LocalError::Bind(e)))?;
                let start = starter(&command)?;
                let task = self.spawn(label.clone(), &start, listener);
                Slot::Task {
                    addr,
                    start,
                    task,
                    _metrics: metrics,
                }
            }
        };
        self.slots.insert(label, slot);
        Ok(())
    }

    /// Starts `command` as a process of its own, logging to
    /// WORKDIR/logs/, on `listener`.
    fn supervise(
        &self,
        label: &str,
        node: Option<String>,
        program: &std::path::Path,
        command: RoleCommand,
        listener: OwnedFd,
        metrics: OwnedFd,
    ) -> Result<Supervised, DeployError> {
        let logs = self.config.workdir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|source| {
            DeployError::backend(LocalError::Workdir {
                dir: logs.clone(),
                source,
            })
        })?;
        let launch = Launch {
            label: label.to_string(),
            node,
            program: program.to_path_buf(),
            args: command.serve_args(),
            listener,
            metrics: Some(metrics),
            log: logs.join(format!("{}.log", label.replace(' ', "-"))),
        };
        Ok(Supervised::start(launch, &self.shutdown, self.stops.clone()))
    }

    /// Stops the process of role `label` and starts `command` in its
    /// place, on the same port (a task's worker moved to `node`).
    async fn replace(&mut self, label: &str, node: &str, command: RoleCommand) -> Result<(), DeployError> {
        let Some(program) = self.config.processes.clone() else {
            return Err(DeployError::Unsupported {
                what: format!("moving {label}"),
                backend: "local",
                why: "its roles run inside one process (--processes runs each on its own)".into(),
            });
        };
        let Some(Slot::Process {
            process,
            listener,
            metrics,
        }) = self.slots.get_mut(label)
        else {
            return Err(DeployError::NoSuchRole { what: label.into() });
        };
        process.stop().await;
        let bind = |e| DeployError::backend(LocalError::Bind(e));
        let handed = listener.try_clone().map_err(bind)?;
        let spare = listener.try_clone().map_err(bind)?;
        let metrics_handed = metrics.try_clone().map_err(bind)?;
        let metrics = metrics.try_clone().map_err(bind)?;
        let process = self.supervise(
            label,
            Some(node.to_string()),
            &program,
            command,
            handed,
            metrics_handed,
        )?;
        self.slots.insert(
            label.to_string(),
            Slot::Process {
                process,
                listener: spare,
                metrics,
            },
        );
        Ok(())
    }

    /// Stops the roles `labels` for good (a lost node's), and closes their
    /// ports: a caller is refused rather than left waiting in the backlog.
    async fn stop_roles(&mut self, labels: &[String]) {
        for label in labels {
            if let Some(Slot::Process { mut process, .. }) = self.slots.remove(label) {
                process.stop().await;
            }
        }
    }

    /// Runs a role until shutdown; a role that ends before is reported
    /// through `stops`.
    fn spawn(&self, label: String, start: &Starter, listener: TcpListener) -> JoinHandle<()> {
        let serving = start(listener, self.shutdown.clone().cancelled_owned());
        let shutdown = self.shutdown.clone();
        let stops = self.stops.clone();
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
            stops.send_modify(|stops| {
                stops.push(RoleStop {
                    label,
                    node: None,
                    reason,
                })
            });
        })
    }

    /// Kills a role as a crash would (its data stays), then starts it again
    /// on the same port: in this process, its task is aborted; as a
    /// process, it gets SIGKILL and its supervisor starts it again.
    async fn restart(&mut self, role: &RoleInstance) -> Result<(), DeployError> {
        let label = role.label();
        let Some(slot) = self.slots.get_mut(&label) else {
            return Err(DeployError::NoSuchRole { what: label });
        };
        match slot {
            Slot::Process { process, .. } => {
                process.kill_and_wait_restart().await.map_err(|source| {
                    DeployError::backend(LocalError::Restart {
                        role: label.clone(),
                        source,
                    })
                })?;
            }
            Slot::Task {
                addr, start, task, ..
            } => {
                task.abort();
                let _ = task.await;
                let (addr, start) = (*addr, start.clone());
                let listener = rebind(&label, addr).await?;
                let task = self.spawn(label.clone(), &start, listener);
                if let Some(Slot::Task { task: slot, .. }) = self.slots.get_mut(&label) {
                    *slot = task;
                }
            }
        }
        wait_healthy(&label, &role.url, HEALTH_TIMEOUT).await?;
        Ok(())
    }

    async fn stop(&mut self) {
        self.shutdown.cancel();
        let stopping = self.slots.values_mut().map(|slot| async move {
            match slot {
                Slot::Task { task, .. } => {
                    let _ = task.await;
                }
                Slot::Process { process, .. } => process.stopped().await,
            }
        });
        // Supervised processes get their own grace period (SIGTERM, then
        // SIGKILL) and are always waited for.
        let _ = tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(stopping)).await;
    }
}

impl Drop for Here {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// How a role's flags become a server in this process: parsed by the
/// role's own `Args`, as its binary would.
fn starter(command: &RoleCommand) -> Result<Starter, DeployError> {
    match command.role {
        Role::DrupeCentral => starter_of::<drupe_central::Args>(command),
        Role::DrupeDroplet => starter_of::<drupe_droplet::Args>(command),
        Role::WaveHome => starter_of::<wave_home::Args>(command),
        Role::WaveWorker => starter_of::<wave_worker::Args>(command),
        Role::CirceHome => starter_of::<circe_home::Args>(command),
        Role::CirceWorker => starter_of::<circe_worker::Args>(command),
    }
}

fn starter_of<A: RoleArgs>(command: &RoleCommand) -> Result<Starter, DeployError>
where
    A::Config: Clone + Sync,
{
    let flags = |detail: String| {
        DeployError::backend(LocalError::Flags {
            role: command.role,
            detail,
        })
    };
    let args =
        A::try_parse_from(std::iter::once(command.role.name().to_string()).chain(command.args.clone()))
            .map_err(|e| flags(e.to_string()))?;
    let config = args
        .config()
        .map_err(|e| flags(jupiter_common::error::explain(&e)))?;
    let tls = args.tls().load().map_err(|e| flags(e.to_string()))?.map(Arc::new);
    Ok(Arc::new(move |listener, shutdown| {
        let config = config.clone();
        // In process, the role's certificate is its listener's, not the
        // whole process's (other deployments may share it).
        if let (Some(identity), Ok(addr)) = (&tls, listener.local_addr()) {
            jupiter_common::tls::serve_as(addr, identity.clone());
        }
        Box::pin(async move {
            A::serve(config, listener, shutdown)
                .await
                .map_err(|e| Box::new(e) as BoxError)
        })
    }))
}

/// The deployment's certificates under WORKDIR/tls: the three home roles,
/// a droplet and a wave-worker per node, a worker per task, and the user.
fn make_tls(config: &LocalConfig, id: &str, app: &App) -> Result<Tls, DeployError> {
    let nodes: Vec<String> = (0..config.nodes).map(|i| format!("node{i}")).collect();
    let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let tasks: Vec<&str> = app.tasks.iter().map(|t| t.name.as_str()).collect();
    // Every role answers on loopback, which every certificate covers.
    let members = crate::tls::members_per_node(&nodes, &tasks, |_, _| Vec::new());
    let dir = config.workdir.join("tls");
    let (_, identity) = crate::tls::make_and_load(&dir, id, &members).map_err(DeployError::backend)?;
    Ok(Tls {
        dir,
        identity: Arc::new(identity),
    })
}

/// `command` with the role's certificate flags, under `--tls`; this
/// process then presents the user's certificate to the role.
fn with_tls(tls: Option<&Tls>, mut command: RoleCommand, role: &RoleInstance) -> RoleCommand {
    let Some(tls) = tls else {
        return command;
    };
    let of = role.task.as_deref().or(role.node.as_deref());
    let files = crate::tls::role_files(&tls.dir, role.role, of);
    command.args.extend(jupiter_common::tls::TlsFlags::args(&files));
    jupiter_common::tls::dial_as(&role.url, tls.identity.clone());
    command
}

/// A role's metrics socket on a fresh loopback port, and its address. It
/// stays bound for the role's life (the role is handed a copy each time it
/// starts): a port only reserved by number could be taken by anything that
/// binds port 0 before the role binds it.
fn metrics_socket() -> std::io::Result<(OwnedFd, SocketAddr)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    Ok((listener.into(), addr))
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
        let processes = match &self.here {
            Some(here) if here.config.processes.is_some() => ", each role its own process",
            _ if self.inventory.roles.iter().any(|r| r.restarts.is_some()) => ", each role its own process",
            _ => "",
        };
        format!(
            "local deployment {} in process {}{processes}",
            self.inventory.id, self.pid
        )
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
        if config.processes.is_none()
            && app
                .tasks
                .iter()
                .any(|t| matches!(t.runner, TaskRunner::Python { .. }))
        {
            let python = config.python.clone();
            tokio::task::spawn_blocking(move || circe_worker::runner::resolve_python(&python));
        }
        if config.tls {
            self.tls = Some(make_tls(&config, &self.inventory.id, app)?);
        }
        self.start(
            RoleInstance::new(Role::DrupeCentral, ""),
            commands::drupe_central(&config),
        )
        .await?;
        let central = self.inventory.url(Role::DrupeCentral);
        self.start(
            RoleInstance::new(Role::WaveHome, ""),
            commands::wave_home(&central),
        )
        .await?;
        for i in 0..config.nodes {
            let node = format!("node{i}");
            let (listener, url) = bind().await?;
            let droplet = commands::drupe_droplet(&config, &node, &central, &url);
            self.serve_on(
                RoleInstance::new(Role::DrupeDroplet, url).on(&node),
                listener,
                droplet,
            )?;
            self.start(
                RoleInstance::new(Role::WaveWorker, "").on(&node),
                commands::wave_worker(&node),
            )
            .await?;
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
        // Workers make their channels to each other and to circe-home as
        // they start: each address must be known as TLS before any starts.
        if let Some(tls) = &self.tls {
            for url in urls.values().chain([&home_url]) {
                jupiter_common::tls::dial_as(url, tls.identity.clone());
            }
        }
        let first_worker = self.inventory.roles.len();
        for task in &app.tasks {
            let node = placement.node_of(&task.name)?.to_string();
            let Some(listener) = listeners.remove(&task.name) else {
                continue;
            };
            let worker = commands::circe_worker(&config, app, &task.name, &node, &urls, &home_url);
            self.serve_on(
                RoleInstance::new(Role::CirceWorker, urls[&task.name].clone())
                    .on(node)
                    .running(&task.name),
                listener,
                worker,
            )?;
        }
        self.serve_on(
            RoleInstance::new(Role::CirceHome, home_url),
            home,
            commands::circe_home(&config, app, &urls),
        )?;
        wait_roles_healthy(&self.inventory.roles[first_worker..]).await?;
        Ok(())
    }

    async fn exists(&self) -> bool {
        self.here.is_some() || process::alive(self.pid)
    }

    async fn stopped(&self) -> Stopped {
        self.first_stop().await
    }

    /// `--processes`: each moved task's worker starts again on its new
    /// node's folder, on the same port (parents and circe-home push where
    /// they did); the lost node's other roles are stopped, so that DRUPE
    /// sees it gone.
    async fn move_tasks(&mut self, app: &App, moves: &BTreeMap<String, String>) -> Result<(), DeployError> {
        let urls: BTreeMap<String, String> = self
            .inventory
            .roles
            .iter()
            .filter(|r| r.role == Role::CirceWorker)
            .filter_map(|r| Some((r.task.clone()?, r.url.clone())))
            .collect();
        let home = self.inventory.url(Role::CirceHome);
        let lost = self.lost_nodes.locked().clone();
        let sick: Vec<String> = self
            .inventory
            .roles
            .iter()
            .filter(|r| r.role != Role::CirceWorker && r.node.as_ref().is_some_and(|n| lost.contains(n)))
            .map(RoleInstance::label)
            .collect();
        // Only the process that runs the roles can move them.
        self.here("moving tasks")?;
        let mut moved = Vec::new();
        for role in &mut self.inventory.roles {
            if let (Role::CirceWorker, Some(task)) = (role.role, &role.task) {
                if let Some(node) = moves.get(task) {
                    role.node = Some(node.clone());
                    moved.push(role.clone());
                }
            }
        }
        let id = self.inventory.id.clone();
        let tls = self.tls.as_ref();
        let Some(here) = self.here.as_mut() else {
            return Err(DeployError::Unsupported {
                what: "moving tasks".into(),
                backend: "local",
                why: format!("its roles run inside process {}", self.pid),
            });
        };
        let config = here.config.clone();
        here.stop_roles(&sick).await;
        for role in &moved {
            let (Some(task), Some(node)) = (&role.task, &role.node) else {
                continue;
            };
            // The moved worker serves metrics on the socket its slot holds.
            let command = commands::circe_worker(&config, app, task, node, &urls, &home).telemetry(
                &supervisor::metrics_flag(),
                config.otlp_endpoint.as_deref(),
                &id,
            );
            let command = with_tls(tls, command, role);
            here.replace(&role.label(), node, command).await?;
        }
        wait_roles_healthy(&moved).await?;
        Ok(())
    }

    async fn restart(&mut self, role: &RoleInstance) -> Result<(), DeployError> {
        self.here(&format!("restarting {}", role.label()))?
            .restart(role)
            .await
    }

    async fn down(&mut self) -> Result<String, DeployError> {
        if let Some(here) = &mut self.here {
            here.stop().await;
            if self.tls.is_some() {
                let urls: Vec<String> = self.inventory.roles.iter().map(|r| r.url.clone()).collect();
                jupiter_common::tls::forget(&urls);
            }
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

    fn client_tls(&self) -> Option<jupiter_common::tls::Files> {
        self.tls.as_ref().map(|tls| crate::tls::client_files(&tls.dir))
    }

    /// The roles with, for those that are processes of their own, the
    /// pid of the incarnation running now, how often each was restarted
    /// and where it logs.
    fn roles(&self) -> Vec<RoleInstance> {
        let mut roles = self.inventory.roles.clone();
        let Some(here) = &self.here else {
            return roles;
        };
        for role in &mut roles {
            if let Some(Slot::Process { process, .. }) = here.slots.get(&role.label()) {
                let state = process.state();
                role.pid = state.pid;
                role.restarts = Some(state.restarts);
                role.log = Some(process.log.clone());
            }
        }
        roles
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
