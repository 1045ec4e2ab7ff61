//! The deployment model: what a deployment is ([`model`]), what every
//! backend can do to one ([`Backend`]), and [`Deployment`], which brings one
//! up the same way on every backend and drives it afterwards:
//!
//! 1. the backend starts the long-lived roles (DRUPE and WAVE) and waits
//!    until each answers its health check;
//! 2. [`placement`] maps the tasks (wait for DRUPE, profile, map, host);
//! 3. the backend starts a circe-worker per task on its node, then
//!    circe-home, health-gated again.
//!
//! `run`, `up`, `submit`, `status` and `down` are written once, against
//! [`Deployment`]; a backend only says how to do each step where it runs.

pub mod drift;
mod error;
mod health;
mod model;
pub mod placement;
mod recovery;

pub use error::{BoxError, DeployError};
pub use health::{check_all, wait_all_healthy, wait_roles_healthy, HEALTH_TIMEOUT};
pub use model::{
    new_id, sanitize, Agent, ControlPlane, DeploymentState, Endpoints, Health, Inventory, NodeEndpoints,
    Placement, PlacementRequest, ProbeOptions, ReplanOptions, RoleInstance, Scheduler, Summary,
    WorkerEndpoint,
};

use crate::exec_profile::{ExecProfile, ProfileError, ProfileOptions};
use jupiter_common::app::App;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often [`Deployment::stopped_with`] ticks.
pub const TICK: Duration = Duration::from_millis(250);

/// Where and how a deployment's roles run: the local process, Docker, a
/// Kubernetes cluster. A value is either a deployment being brought up
/// (the `up` steps are called in order) or one that is up, found again
/// from its state file.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// The deployment's id, outputs and roles.
    fn inventory(&self) -> &Inventory;

    /// The user's certificate, key and CA, where the deployment speaks
    /// mutual TLS (`--tls`).
    fn client_tls(&self) -> Option<jupiter_common::tls::Files> {
        None
    }

    /// The deployment's id: unique on this machine or cluster.
    fn id(&self) -> &str {
        &self.inventory().id
    }

    /// Where circe-home writes the outputs.
    fn output(&self) -> PathBuf {
        self.inventory().output.clone()
    }

    /// Every role instance of the deployment.
    fn roles(&self) -> Vec<RoleInstance> {
        self.inventory().roles.clone()
    }

    /// The deployment in a few words, for messages: what it is and where.
    fn describe(&self) -> String;

    /// Whether the roles live in this process, so that `up` must stay in
    /// the foreground for them to keep running.
    fn in_process(&self) -> bool {
        false
    }

    /// Step 1: starts drupe-central, wave-home, and on every node a
    /// droplet and a wave-worker; returns once each answers, with what
    /// placement may use.
    async fn deploy_roles(&mut self, app: &App) -> Result<ControlPlane, DeployError>;

    /// The execution profile of `app`, taken where the deployment's tasks
    /// would run: by default in this process on this machine (the local
    /// backend's nodes are processes here), normalised by its speed.
    async fn execution_profile(
        &self,
        app: &App,
        options: &ProfileOptions,
    ) -> Result<ExecProfile, ProfileError> {
        crate::exec_profile::measure_here(app, options).await
    }

    /// Step 3: starts the circe-worker of every task on its node, then
    /// circe-home; returns once each answers.
    async fn start_workers(&mut self, app: &App, placement: &Placement) -> Result<(), DeployError>;

    /// The health of each of [`Backend::roles`], in the same order.
    async fn health(&self) -> Vec<Health> {
        check_all(&self.roles()).await
    }

    /// Whether anything of the deployment is still there.
    async fn exists(&self) -> bool;

    /// Resolves once a role or a node has stopped and will not come back
    /// by itself: with the nodes lost (which [`Deployment::stopped`]
    /// recovers from), or with what the user should know.
    async fn stopped(&self) -> Stopped;

    /// After a node loss: starts the workers of the tasks in `moves`
    /// (task -> its new node) on their new nodes, reached by their parents
    /// and circe-home at their old names, and records them in
    /// [`Backend::roles`] in place of the lost ones.
    async fn move_tasks(&mut self, app: &App, moves: &BTreeMap<String, String>) -> Result<(), DeployError> {
        let _ = app;
        Err(DeployError::Unsupported {
            what: format!(
                "moving {} to surviving nodes",
                moves.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            backend: self.state(Summary::default()).backend(),
            why: "this backend cannot start a task's worker on another node yet".into(),
        })
    }

    /// Whether [`Backend::add_placement`] can run a new mapping beside the
    /// current one (the profile drifted: new inputs take the new mapping,
    /// inputs in flight finish on the old).
    fn adds_placements(&self) -> bool {
        false
    }

    /// After the profile drifted: starts a worker for each task in `moves`
    /// (task -> its new node) for placement `placement`, pushing to its
    /// children's workers of that placement, while the task's current
    /// worker keeps running for the inputs in flight. Returns each new
    /// worker's URL, as the other roles reach it (task -> URL); the new
    /// workers replace the old ones in [`Backend::roles`].
    async fn add_placement(
        &mut self,
        app: &App,
        moves: &BTreeMap<String, String>,
        placement: u32,
    ) -> Result<BTreeMap<String, String>, DeployError> {
        let _ = (app, moves, placement);
        Err(DeployError::Unsupported {
            what: "mapping the tasks again while inputs run".into(),
            backend: self.state(Summary::default()).backend(),
            why: "this backend cannot run two placements side by side yet".into(),
        })
    }

    /// Stops and removes the workers that placement `placement` superseded
    /// (no input of an earlier placement is left); says which went.
    async fn retire(&mut self, placement: u32) -> Result<Vec<String>, DeployError> {
        let _ = placement;
        Ok(Vec::new())
    }

    /// Kills `role` and starts it again on the same data (its entry in
    /// [`Backend::roles`] says where it answers now).
    async fn restart(&mut self, role: &RoleInstance) -> Result<(), DeployError>;

    /// Stops and removes everything of the deployment; says what went.
    async fn down(&mut self) -> Result<String, DeployError>;

    /// The state file's record of this deployment.
    fn state(&self, summary: Summary) -> DeploymentState;
}

/// A deployment that is up, on any backend.
pub struct Deployment {
    pub summary: Summary,
    backend: Box<dyn Backend>,
    recoveries: Vec<recovery::Recovered>,
    replans: Vec<drift::Replanned>,
    watch: drift::Watch,
}

/// How a deployment stopped being able to finish its inputs by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// Every role of these nodes is gone; `report` says which and how.
    NodesLost { nodes: Vec<String>, report: String },
    /// Anything else, said for the user.
    Broken(String),
}

impl Deployment {
    /// Brings `app` up on `backend` (the three steps above) and returns
    /// once every role is healthy. A failed `up` removes what it made.
    pub async fn up(
        mut backend: Box<dyn Backend>,
        app: &App,
        request: &PlacementRequest,
    ) -> Result<Self, DeployError> {
        let started = Instant::now();
        let placement = match steps(backend.as_mut(), app, request).await {
            Ok(placement) => placement,
            Err(e) => {
                if let Err(cleanup) = backend.down().await {
                    tracing::warn!(error = %cleanup, deployment = backend.id(), "cleaning up after a failed up");
                }
                return Err(e);
            }
        };
        let summary = Summary {
            deployment: backend.id().to_string(),
            app: app.dir.clone(),
            output: backend.output(),
            scheduler: placement.algorithm,
            predicted_makespan_secs: placement.predicted_makespan_secs,
            mapping: placement.assignments,
            roles: backend.roles(),
            placement: 0,
            replan: request.replan,
            costs: placement.costs,
            tls: backend.client_tls(),
            startup: started.elapsed(),
        };
        Ok(Self::attach(backend, summary))
    }

    /// A deployment that is up already (its state file read back).
    pub fn attach(backend: Box<dyn Backend>, summary: Summary) -> Self {
        Self {
            summary,
            backend,
            recoveries: Vec::new(),
            replans: Vec::new(),
            watch: drift::Watch::default(),
        }
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The backend's name, as `--backend` takes it.
    pub fn backend_name(&self) -> &'static str {
        self.state().backend()
    }

    /// What the state file keeps of it.
    pub fn state(&self) -> DeploymentState {
        self.backend.state(self.summary.clone())
    }

    /// Every role with its health.
    pub async fn health(&self) -> Vec<(RoleInstance, Health)> {
        self.backend
            .roles()
            .into_iter()
            .zip(self.backend.health().await)
            .collect()
    }

    /// Resolves, with what the user should know, once the deployment can
    /// no longer finish its inputs. A lost node is recovered from on the
    /// way (its tasks move to surviving nodes, the unfinished inputs are
    /// replayed: [`recovery`]), which the caller sees only as a delay.
    ///
    /// Meanwhile, on a deployment mapped by heft or cpop, a drift of the
    /// profile may give new inputs a new mapping ([`drift`]).
    pub async fn stopped(&mut self) -> String {
        self.stopped_with(|_, _| {}).await
    }

    /// [`Deployment::stopped`], calling `tick` with the deployment as it is
    /// now every [`TICK`] and after each recovery or re-mapping (`up`
    /// keeps the state file current with it).
    pub async fn stopped_with(&mut self, mut tick: impl FnMut(&Summary, &dyn Backend)) -> String {
        loop {
            let event = {
                // Neither future is dropped between ticks: the backend's
                // watch keeps its own timers.
                let backend = self.backend.stopped();
                let watch = self.watch.next(&self.summary, self.backend.as_ref());
                tokio::pin!(backend, watch);
                loop {
                    tokio::select! {
                        stopped = &mut backend => break Ok(stopped),
                        event = &mut watch => break Err(event),
                        () = tokio::time::sleep(TICK) => tick(&self.summary, self.backend.as_ref()),
                    }
                }
            };
            match event {
                Ok(Stopped::Broken(reason)) => return reason,
                Ok(Stopped::NodesLost { nodes, report }) => {
                    if let Err(e) = recovery::recover(self, &nodes, &report).await {
                        return format!("{report}; recovering failed: {e}");
                    }
                }
                Err(drift::Event::Move(plan)) => match drift::apply(self, plan).await {
                    Ok(replanned) => {
                        self.watch.draining.insert(replanned.placement);
                        self.replans.push(replanned);
                    }
                    // The current placement still works: inputs go on there.
                    Err(e) => eprintln!("mapping again failed: {e}; inputs keep the current mapping"),
                },
                Err(drift::Event::Drained(placement)) => match self.backend.retire(placement).await {
                    Ok(gone) if !gone.is_empty() => eprintln!(
                        "no input of an earlier placement is left: removed {}",
                        gone.join(", ")
                    ),
                    Ok(_) => {}
                    Err(e) => eprintln!("removing the workers placement {placement} superseded: {e}"),
                },
            }
            tick(&self.summary, self.backend.as_ref());
        }
    }

    /// Every time the deployment was mapped again after the profile drifted.
    pub fn replans(&self) -> &[drift::Replanned] {
        &self.replans
    }

    /// What the deployment recovered from so far.
    pub fn recoveries(&self) -> &[recovery::Recovered] {
        &self.recoveries
    }

    /// Kills the role [`RoleInstance::label`] names (`circe-worker task4`,
    /// `drupe-droplet node1`, `circe-home`) and starts it again.
    pub async fn restart(&mut self, label: &str) -> Result<(), DeployError> {
        let role = self
            .backend
            .roles()
            .into_iter()
            .find(|r| r.label() == label)
            .ok_or_else(|| DeployError::NoSuchRole { what: label.into() })?;
        self.backend.restart(&role).await?;
        self.summary.roles = self.backend.roles();
        Ok(())
    }

    /// Stops and removes everything; says what went.
    pub async fn down(mut self) -> Result<String, DeployError> {
        self.backend.down().await
    }
}

async fn steps(
    backend: &mut dyn Backend,
    app: &App,
    request: &PlacementRequest,
) -> Result<Placement, DeployError> {
    let control = backend.deploy_roles(app).await?;
    let placement = placement::place(app, request, &control, &*backend).await?;
    backend.start_workers(app, &placement).await?;
    Ok(placement)
}
