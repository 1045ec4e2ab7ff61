//! The Kubernetes backend as a [`Backend`]: step 1 applies the long-lived
//! objects (namespace, app ConfigMap, home roles, per-node DaemonSets) and
//! waits until they are ready; placement reaches drupe-central, wave-home
//! and the nodes' wave-workers through port-forwards ([`forward`]), as on
//! the other backends; step 3 applies one pinned circe-worker per task and
//! waits again.
//!
//! In this process every role's URL is its forwarded local address; the
//! state file keeps the URLs the roles have inside the cluster, and a
//! deployment found again forwards them anew.

use super::apply::{self, Wait};
use super::forward::{Forwards, Target};
use super::{
    cluster, names, objects, pods, render_roles, render_workers, roles, tls, KubeError, KubeOptions, KubeTls,
    Object,
};
use crate::deployment::{
    Agent, Backend, ControlPlane, DeployError, DeploymentState, Health, Placement, RoleInstance, Summary,
};
use crate::deployment::{Inventory, Stopped};
use jupiter_common::app::App;
use jupiter_common::role::Role;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::ListParams;
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where and how a Kubernetes deployment runs.
#[derive(Debug, Clone)]
pub struct KubeConfig {
    /// What the objects are rendered from; placement fills in the mapping.
    pub options: KubeOptions,
    /// How long to wait for the pods to be ready (None: do not wait).
    pub wait: Option<Wait>,
    /// The scheduler needs no profile (static, random): map over the
    /// nodes' names here, without waiting for DRUPE or asking wave-home.
    pub map_offline: bool,
}

impl From<KubeError> for DeployError {
    fn from(e: KubeError) -> Self {
        DeployError::backend(e)
    }
}

/// A Kubernetes deployment: being brought up by this process, or found
/// again by its name.
pub struct Kubernetes {
    client: Client,
    options: KubeOptions,
    wait: Option<Wait>,
    map_offline: bool,
    /// The cluster nodes the deployment uses.
    nodes: Vec<String>,
    inventory: Inventory,
    /// `--tls`: the user's certificate, key and CA, once made (or found
    /// again beside the state file).
    client_tls: Option<jupiter_common::tls::Files>,
    /// The same, loaded: presented on every forwarded connection.
    identity: Option<std::sync::Arc<jupiter_common::tls::Identity>>,
    /// `--tls`: the digest of the certificates' Secret, on every pod
    /// template (see [`tls::CHECKSUM_ANNOTATION`]).
    tls_checksum: Option<String>,
    /// The port-forwards to the roles, open while this value lives.
    forwards: Forwards,
    /// Forwarded URL -> the role's URL inside the cluster.
    cluster_urls: BTreeMap<String, String>,
    /// Nodes found not Ready and recovered from (not reported again).
    lost: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Kubernetes {
    /// A deployment to bring up on the cluster of the current kubeconfig
    /// context (KUBECONFIG or ~/.kube/config), or the in-cluster account.
    pub async fn new(config: KubeConfig) -> Result<Self, DeployError> {
        Ok(Self::with_client(client().await?, config))
    }

    /// The same with a given client (tests pass one that answers in-process).
    pub fn with_client(client: Client, config: KubeConfig) -> Self {
        let inventory = Inventory::new(&config.options.deployment, PathBuf::from(roles::OUTPUT_DIR));
        Self {
            client,
            options: config.options,
            wait: config.wait,
            map_offline: config.map_offline,
            nodes: Vec::new(),
            inventory,
            client_tls: None,
            identity: None,
            tls_checksum: None,
            forwards: Forwards::default(),
            cluster_urls: BTreeMap::new(),
            lost: Default::default(),
        }
    }

    /// The deployment the state file describes, on the current context's
    /// cluster, its roles forwarded to local ports.
    pub async fn attach(nodes: &[String], summary: &Summary) -> Result<Self, DeployError> {
        Self::attach_with(client().await?, nodes, summary).await
    }

    /// The same with a given client.
    pub async fn attach_with(
        client: Client,
        nodes: &[String],
        summary: &Summary,
    ) -> Result<Self, DeployError> {
        let mut found = Self::named(client, &summary.deployment)?;
        found.nodes = nodes.to_vec();
        found.inventory = Inventory::of(summary);
        found.options.mapping = summary.mapping.clone();
        // `up --tls` left the user's files beside the state file; `down`
        // removes them with the deployment, so there are files only while
        // a deployment with TLS is up.
        if let Some(files) = tls::dir(&summary.deployment)
            .ok()
            .map(|dir| crate::tls::client_files(&dir))
            .filter(|files| files.cert.is_file())
        {
            found.present(files)?;
        }
        let roles = std::mem::take(&mut found.inventory.roles);
        for role in roles {
            let reached = found.reach(role).await?;
            found.inventory.roles.push(reached);
        }
        Ok(found)
    }

    /// Deployment `name`, known by nothing but its name (`down --kubernetes NAME`).
    pub fn named(client: Client, name: &str) -> Result<Self, DeployError> {
        names::check_deployment(name)?;
        let options = KubeOptions {
            deployment: name.to_string(),
            ..KubeOptions::default()
        };
        let config = KubeConfig {
            options,
            wait: None,
            map_offline: true,
        };
        Ok(Self::with_client(client, config))
    }

    /// Deployment `name` on the current context's cluster; a name that
    /// cannot be one is refused before any cluster is asked.
    pub async fn by_name(name: &str) -> Result<Self, DeployError> {
        names::check_deployment(name)?;
        Self::named(client().await?, name)
    }

    fn namespace(&self) -> String {
        names::namespace(&self.options.deployment)
    }

    /// `--tls`: makes the CA and every role's certificate (the user's
    /// stay in `dir`), and returns the Secret that carries them.
    fn make_certificates(&mut self, app: &App, dir: &std::path::Path) -> Result<Object, KubeError> {
        let ns = self.namespace();
        let members = tls::members(app, &ns)?;
        // Certificates of an earlier deployment of this name are of another
        // CA; none of them may linger beside the new ones.
        remove_dir(dir);
        let client = crate::tls::make(dir, &self.options.deployment, &members)?;
        let secret = tls::secret(dir, &members, &self.options.deployment, &ns)?;
        self.tls_checksum = Some(tls::checksum(&secret));
        self.present(client)?;
        Ok(Object::Secret(secret))
    }

    /// Presents the user's certificate `files` on every forwarded
    /// connection from now on.
    fn present(&mut self, files: jupiter_common::tls::Files) -> Result<(), KubeError> {
        let identity = files.load().map_err(crate::tls::TlsError::Load)?;
        self.identity = Some(std::sync::Arc::new(identity));
        self.client_tls = Some(files);
        Ok(())
    }

    /// The certificates' folder, if this deployment keeps one.
    fn tls_dir(&self) -> Option<std::path::PathBuf> {
        match &self.options.tls {
            Some(KubeTls::Make { dir }) => Some(dir.clone()),
            Some(KubeTls::Existing { .. }) => None,
            // Found again by name: the folder `up --tls` would have used.
            None => tls::dir(&self.options.deployment).ok(),
        }
    }

    /// `role` (its URL inside the cluster) with its URL replaced by a
    /// local port forwarded to its pods.
    async fn reach(&mut self, mut role: RoleInstance) -> Result<RoleInstance, KubeError> {
        let (labels, fields) = pods::selectors(&self.options.deployment, &role);
        let target = Target {
            namespace: self.namespace(),
            labels,
            fields,
            port: role.role.port(),
            what: role.label(),
        };
        let local = self
            .forwards
            .open(&self.client, target)
            .await
            .map_err(|source| KubeError::Forward {
                what: role.label(),
                source,
            })?;
        // The forward carries bytes: the roles' mutual TLS runs end to end.
        if let Some(identity) = &self.identity {
            jupiter_common::tls::dial_as(&local, identity.clone());
        }
        self.cluster_urls.insert(local.clone(), role.url);
        role.url = local;
        Ok(role)
    }

    /// The URL wave-home (inside the cluster) calls `node`'s wave-worker
    /// at: its pod's address, as the headless Service has no name per pod.
    async fn agent_url(&self, node: &str) -> Result<String, KubeError> {
        let role = RoleInstance::new(Role::WaveWorker, roles::url(Role::WaveWorker)).on(node);
        let (labels, fields) = pods::selectors(&self.options.deployment, &role);
        let api = Api::<Pod>::namespaced(self.client.clone(), &self.namespace());
        let found = pods::running(&api, &labels, fields.as_deref())
            .await
            .map_err(KubeError::api(format!("list the pods of {}", role.label())))?;
        found
            .iter()
            .find_map(|pod| {
                let ip = pod.status.as_ref()?.pod_ip.as_ref()?;
                let port = pods::grpc_port(pod).unwrap_or(Role::WaveWorker.port());
                Some(format!("http://{}:{port}", host(ip)))
            })
            .ok_or_else(|| KubeError::NoPod { what: role.label() })
    }

    async fn apply(&self, objects: &[super::Object]) -> Result<(), DeployError> {
        eprintln!(
            "applying {} objects in namespace {}",
            objects.len(),
            self.namespace()
        );
        apply::up(&self.client, objects, self.wait.as_ref()).await?;
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no Kubernetes cluster configured (KUBECONFIG, ~/.kube/config or in-cluster): {0}")]
pub struct NoCluster(#[source] kube::Error);

/// Removes a certificates folder; one that cannot be removed is said, not
/// fatal (the deployment itself is what matters).
fn remove_dir(dir: &std::path::Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => eprintln!("warning: could not remove {}: {e}", dir.display()),
    }
}

async fn client() -> Result<Client, DeployError> {
    Client::try_default()
        .await
        .map_err(|e| DeployError::backend(NoCluster(e)))
}

#[async_trait::async_trait]
impl Backend for Kubernetes {
    fn describe(&self) -> String {
        format!(
            "Kubernetes deployment {} in namespace {}",
            self.options.deployment,
            self.namespace()
        )
    }

    async fn deploy_roles(&mut self, app: &App) -> Result<ControlPlane, DeployError> {
        let available = cluster::nodes(&self.client).await?;
        self.nodes = cluster::restrict(&available, &self.options.nodes)?;
        let mut objects = render_roles(app, &self.options)?;
        if let Some(KubeTls::Make { dir }) = self.options.tls.clone() {
            let secret = self.make_certificates(app, &dir)?;
            // Right after the namespace: before any pod that mounts it.
            objects.insert(1, secret);
        }
        if let Some(checksum) = &self.tls_checksum {
            tls::annotate(&mut objects, checksum);
        }
        self.apply(&objects).await?;
        for role in [Role::DrupeCentral, Role::WaveHome, Role::CirceHome] {
            let reached = self.reach(RoleInstance::new(role, roles::url(role))).await?;
            self.inventory.roles.push(reached);
        }
        let mut agents = Vec::new();
        for node in self.nodes.clone() {
            for role in [Role::DrupeDroplet, Role::WaveWorker] {
                // The headless Service's URL: inside the cluster it names
                // every pod of the DaemonSet; the forward picks this node's.
                let reached = self
                    .reach(RoleInstance::new(role, roles::url(role)).on(&node))
                    .await?;
                if role == Role::WaveWorker && !self.map_offline {
                    agents.push(Agent {
                        inner_url: self.agent_url(&node).await?,
                        outer_url: reached.url.clone(),
                        node: node.clone(),
                    });
                }
                self.inventory.roles.push(reached);
            }
        }
        if self.map_offline {
            return Ok(ControlPlane::Offline {
                nodes: self.nodes.clone(),
            });
        }
        Ok(ControlPlane::Reachable {
            central: self.inventory.url(Role::DrupeCentral),
            wave_home: self.inventory.url(Role::WaveHome),
            agents,
        })
    }

    async fn start_workers(&mut self, app: &App, placement: &Placement) -> Result<(), DeployError> {
        self.options.mapping = placement.assignments.clone();
        let mut objects = render_workers(app, &self.options)?;
        if let Some(checksum) = &self.tls_checksum {
            tls::annotate(&mut objects, checksum);
        }
        self.apply(&objects).await?;
        let services = names::task_services(app)?;
        for task in &app.tasks {
            let url = names::service_url(&services[&task.name], Role::CirceWorker.port());
            let node = self.options.mapping.get(&task.name).cloned().unwrap_or_default();
            let worker = RoleInstance::new(Role::CirceWorker, url)
                .on(node)
                .running(&task.name);
            let reached = self.reach(worker).await?;
            self.inventory.roles.push(reached);
        }
        Ok(())
    }

    async fn health(&self) -> Vec<Health> {
        pods::health(&self.client, &self.options.deployment, &self.inventory.roles).await
    }

    async fn exists(&self) -> bool {
        let namespace = self.namespace();
        // A cluster that does not answer may still hold it.
        Api::<Namespace>::all(self.client.clone())
            .get_opt(&namespace)
            .await
            .map_or(true, |found| found.is_some())
    }

    async fn stopped(&self) -> Stopped {
        // Pods that die come back by themselves; a node that goes does not
        // bring its pods back, and a StatefulSet never moves a pinned one.
        let nodes = pods::lost_nodes(&self.client, &self.nodes, &self.lost).await;
        Stopped::NodesLost {
            report: format!("node(s) {} of the deployment are not Ready", nodes.join(", ")),
            nodes,
        }
    }

    /// Each moved task's worker as a new StatefulSet pinned to its new node
    /// on a fresh claim (the old claim may be bound to storage of the lost
    /// node; circe-home replays what was in flight), selected by the same
    /// Service, so parents and circe-home reach it at its old name. The old
    /// StatefulSet goes, and its pod is force-deleted: on a node that is
    /// gone it would otherwise stay Terminating.
    async fn move_tasks(&mut self, app: &App, moves: &BTreeMap<String, String>) -> Result<(), DeployError> {
        let _ = app;
        let ns = self.namespace();
        let sets = Api::<StatefulSet>::namespaced(self.client.clone(), &ns);
        let mut moved = Vec::new();
        let mut objects = Vec::new();
        for (task, node) in moves {
            let role = self
                .inventory
                .roles
                .iter()
                .find(|r| r.role == Role::CirceWorker && r.task.as_ref() == Some(task))
                .cloned()
                .ok_or_else(|| DeployError::NoSuchRole {
                    what: format!("circe-worker {task}"),
                })?;
            // The worker as it runs (its image, resources, certificates'
            // digest), whatever process brought it up, only elsewhere.
            let (labels, _) = pods::selectors(&self.options.deployment, &role);
            let current = sets
                .list(&ListParams::default().labels(&labels))
                .await
                .map_err(KubeError::api(format!(
                    "list the StatefulSet of {}",
                    role.label()
                )))?
                .items
                .into_iter()
                .next()
                .ok_or_else(|| KubeError::NoWorkload { what: role.label() })?;
            objects.push(Object::StatefulSet(objects::moved_to(current, node)));
            moved.push(role);
        }
        for role in &moved {
            apply::delete_workloads(&self.client, &self.options.deployment, role).await?;
            pods::force_delete(&self.client, &self.options.deployment, role).await?;
        }
        self.apply(&objects).await?;
        for role in &mut self.inventory.roles {
            if let (Role::CirceWorker, Some(task)) = (role.role, &role.task) {
                if let Some(node) = moves.get(task) {
                    role.node = Some(node.clone());
                    self.options.mapping.insert(task.clone(), node.clone());
                }
            }
        }
        Ok(())
    }

    async fn restart(&mut self, role: &RoleInstance) -> Result<(), DeployError> {
        pods::delete(&self.client, &self.options.deployment, role).await?;
        Ok(())
    }

    async fn down(&mut self) -> Result<String, DeployError> {
        apply::down(&self.client, &self.options.deployment).await?;
        // The CA's key is gone: with the deployment, its certificates are
        // of no use to anyone.
        if let Some(dir) = self.tls_dir() {
            remove_dir(&dir);
        }
        self.client_tls = None;
        if self.identity.take().is_some() {
            let forwarded: Vec<String> = self.cluster_urls.keys().cloned().collect();
            jupiter_common::tls::forget(&forwarded);
        }
        Ok(format!(
            "deployment {} deleted (namespace {})",
            self.options.deployment,
            self.namespace()
        ))
    }

    fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    fn client_tls(&self) -> Option<jupiter_common::tls::Files> {
        self.client_tls.clone()
    }

    /// The state file keeps the roles' URLs inside the cluster: the
    /// forwards end with this process.
    fn state(&self, mut summary: Summary) -> DeploymentState {
        for role in &mut summary.roles {
            if let Some(url) = self.cluster_urls.get(&role.url) {
                role.url = url.clone();
            }
        }
        DeploymentState::Kubernetes {
            namespace: self.namespace(),
            nodes: self.nodes.clone(),
            summary,
        }
    }
}

/// An IP as a URL's host (IPv6 in brackets).
fn host(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}
