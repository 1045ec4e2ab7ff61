//! A stand-in Kubernetes cluster for end-to-end tests of the Kubernetes
//! backend: the stand-in API server (apiserver.rs) on a real socket, the
//! local backend's real role servers as its pods (on nodes node0..2), and a
//! kubelet that starts the circe-workers (and circe-home) where their
//! StatefulSets pin them once they are applied, starts a deleted pod's
//! role again on the same data folder (with `--processes`, after a real
//! SIGKILL of its process), as a StatefulSet brings a pod back on its claim,
//! and moves a task's worker to the node a newly applied StatefulSet of
//! the task pins it to (the local backend's move: same port, new queue).

// Each test binary uses part of it.
#![allow(dead_code)]

use crate::apiserver::{self, node, ApiServer, Behaviour};
use clap::Parser;
use jupiter_common::app::App;
use jupiterctl::config::{BackendConfig, DeployArgs, DeployConfig};
use jupiterctl::deployment::{Backend, Placement, RoleInstance};
use jupiterctl::kubernetes::{self, KubeConfig};
use jupiterctl::local::{Local, LocalConfig};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The cluster's nodes (the local backend's names).
pub const NODES: [&str; 3] = ["node0", "node1", "node2"];

/// A role the kubelet started again after its pod was deleted.
#[derive(Debug, Clone)]
pub struct Restart {
    pub label: String,
    pub pid_before: Option<u32>,
    pub pid_after: Option<u32>,
}

pub struct StandIn {
    pub server: ApiServer,
    pub client: kube::Client,
    pub restarts: Arc<Mutex<Vec<Restart>>>,
    /// The cluster's roles as they run now (pids with `--processes`).
    pub roles: Arc<Mutex<Vec<RoleInstance>>>,
    /// With `tls`: the certificate the cluster's roles accept from a user.
    pub client_tls: Option<jupiter_common::tls::Files>,
    stop: Arc<Notify>,
    kubelet: tokio::task::JoinHandle<Local>,
}

impl StandIn {
    /// DRUPE and WAVE up on three nodes as real servers (each role its own
    /// process with `processes`, the `jupiterctl` binary; speaking only
    /// mutual TLS with `tls`), listed as pods.
    pub async fn start(app: &App, work: &Path, processes: Option<PathBuf>, tls: bool) -> StandIn {
        let mut cluster = Local::new(
            &app.name,
            LocalConfig {
                nodes: NODES.len(),
                workdir: work.join("cluster"),
                output: work.join("output"),
                python: "python3".into(),
                runner: Default::default(),
                probe: Default::default(),
                processes,
                otlp_endpoint: None,
                tls,
            },
        );
        cluster.deploy_roles(app).await.expect("the cluster's roles");
        let client_tls = cluster.client_tls();
        let items: Vec<_> = NODES.iter().map(|n| node(n, "True", false, None)).collect();
        let server = ApiServer::new(Behaviour {
            nodes: Some(json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": items})),
            kubelet: true,
            ..Default::default()
        });
        server.add_pods(pods_of(&cluster.roles(), &BTreeMap::new()));
        let client = server.serve().await;
        let stop = Arc::new(Notify::new());
        let restarts = Arc::new(Mutex::new(Vec::new()));
        let roles = Arc::new(Mutex::new(cluster.roles()));
        let kubelet = tokio::spawn(kubelet(
            server.clone(),
            app.clone(),
            cluster,
            stop.clone(),
            restarts.clone(),
            roles.clone(),
        ));
        StandIn {
            server,
            client,
            restarts,
            roles,
            client_tls,
            stop,
            kubelet,
        }
    }

    /// Stops every role of the cluster.
    pub async fn stop(self) {
        self.stop.notify_one();
        let mut cluster = self.kubelet.await.expect("kubelet");
        cluster.down().await.expect("the cluster's roles stop");
    }
}

/// Starts the workers once every circe-worker StatefulSet is applied, then
/// starts deleted pods' roles again until told to stop.
async fn kubelet(
    server: ApiServer,
    app: App,
    mut cluster: Local,
    stop: Arc<Notify>,
    restarts: Arc<Mutex<Vec<Restart>>>,
    roles: Arc<Mutex<Vec<RoleInstance>>>,
) -> Local {
    let mut deletions = server.watch_deletions();
    let mut applied = loop {
        let applied = workers_applied(&server);
        if applied.len() == app.tasks.len() {
            break applied;
        }
        tokio::select! {
            () = stop.notified() => return cluster,
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    };
    let before = cluster.roles().len();
    let placement = Placement {
        assignments: applied
            .iter()
            .map(|(t, (node, _))| (t.clone(), node.clone()))
            .collect(),
        algorithm: "applied".into(),
        predicted_makespan_secs: 0.0,
        costs: Default::default(),
    };
    cluster.start_workers(&app, &placement).await.expect("workers");
    let workloads = |applied: &BTreeMap<String, (String, String)>| -> BTreeMap<String, String> {
        applied
            .iter()
            .map(|(t, (_, name))| (t.clone(), name.clone()))
            .collect()
    };
    server.add_pods(pods_of(&cluster.roles()[before..], &workloads(&applied)));
    *roles.lock().unwrap() = cluster.roles();
    loop {
        let pod = tokio::select! {
            () = stop.notified() => return cluster,
            pod = deletions.recv() => match pod {
                Some(pod) => pod,
                None => return cluster,
            },
            () = tokio::time::sleep(Duration::from_millis(50)) => {
                // A task's worker applied anew, elsewhere: it moves there.
                let now = workers_applied(&server);
                let moves: BTreeMap<String, String> = now
                    .iter()
                    .filter(|(task, spec)| applied.get(*task) != Some(*spec))
                    .map(|(task, (node, _))| (task.clone(), node.clone()))
                    .collect();
                if !moves.is_empty() {
                    cluster.move_tasks(&app, &moves).await.expect("the moved workers start");
                    let moved: Vec<RoleInstance> = cluster
                        .roles()
                        .into_iter()
                        .filter(|r| r.task.as_ref().is_some_and(|t| moves.contains_key(t)))
                        .collect();
                    let fresh = pods_of(&moved, &workloads(&now));
                    server.retain_pods(|p| !fresh.iter().any(|f| f.labels.get("jupiter.io/task") == p.labels.get("jupiter.io/task") && f.labels.contains_key("jupiter.io/task")));
                    server.add_pods(fresh);
                    *roles.lock().unwrap() = cluster.roles();
                    applied = now;
                }
                continue;
            }
        };
        let running = cluster.roles();
        let Some(role) = running.iter().find(|r| runs(r, &pod)) else {
            continue;
        };
        cluster
            .restart(role)
            .await
            .expect("the deleted pod's role starts again");
        let pid_after = cluster
            .roles()
            .iter()
            .find(|r| r.label() == role.label())
            .and_then(|r| r.pid);
        restarts.lock().unwrap().push(Restart {
            label: role.label(),
            pid_before: role.pid,
            pid_after,
        });
        *roles.lock().unwrap() = cluster.roles();
    }
}

fn workload(role: &RoleInstance) -> String {
    match &role.task {
        Some(task) => format!("circe-worker-{}", kubernetes::names::task_label_of(task)),
        None => role.role.name().to_string(),
    }
}

/// Whether `pod` is `role`'s: its component, task and node.
fn runs(role: &RoleInstance, pod: &apiserver::Pod) -> bool {
    let task = role.task.as_deref().map(kubernetes::names::task_label_of);
    pod.labels.get("app.kubernetes.io/component").map(String::as_str) == Some(role.role.name())
        && pod.labels.get("jupiter.io/task") == task.as_ref()
        && pod.node == role.node.as_deref().unwrap_or("node0")
}

/// The local backend's role servers as pods: labelled as jupiterctl's pods
/// are, on their node, named after their workload (a task's: from
/// `workloads`, task -> StatefulSet, else its Service's name).
pub fn pods_of(roles: &[RoleInstance], workloads: &BTreeMap<String, String>) -> Vec<apiserver::Pod> {
    roles
        .iter()
        .map(|r| {
            let mut labels = BTreeMap::from([
                ("app.kubernetes.io/name".to_string(), "jupiter".to_string()),
                (
                    "app.kubernetes.io/component".to_string(),
                    r.role.name().to_string(),
                ),
                ("app.kubernetes.io/instance".to_string(), "dummy-app".to_string()),
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    "jupiterctl".to_string(),
                ),
            ]);
            if let Some(task) = &r.task {
                labels.insert(
                    "jupiter.io/task".to_string(),
                    kubernetes::names::task_label_of(task),
                );
            }
            let workload = r
                .task
                .as_ref()
                .and_then(|t| workloads.get(t).cloned())
                .unwrap_or_else(|| workload(r));
            apiserver::Pod {
                name: format!("{workload}-{}", r.node.as_deref().unwrap_or("node0")),
                workload,
                labels,
                node: r.node.clone().unwrap_or_else(|| "node0".to_string()),
                addr: r
                    .url
                    .trim_start_matches("http://")
                    .parse()
                    .expect("a loopback address"),
            }
        })
        .collect()
}

/// What the circe-worker StatefulSets applied so far ask for, the last of
/// each task: task -> (node, StatefulSet).
pub fn workers_applied(server: &ApiServer) -> BTreeMap<String, (String, String)> {
    server
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/statefulsets/circe-worker-"))
        .map(|r| {
            let body = r.body.as_ref().expect("a body");
            let pod = &body["spec"]["template"]["spec"];
            let node = pod["nodeSelector"]["kubernetes.io/hostname"]
                .as_str()
                .expect("pinned");
            let task = pod["containers"][0]["env"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["name"] == "JUPITER_TASK")
                .and_then(|e| e["value"].as_str())
                .expect("JUPITER_TASK");
            let name = body["metadata"]["name"].as_str().expect("named");
            (task.to_string(), (node.to_string(), name.to_string()))
        })
        .collect()
}

/// The dummy app's `up --backend kubernetes --no-tls` flags plus `extra`,
/// with a short readiness poll.
pub fn kube_config(app_dir: &Path, extra: &[&str]) -> (DeployConfig, KubeConfig) {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: DeployArgs,
    }
    let mut argv = vec!["jupiterctl", app_dir.to_str().expect("a UTF-8 path")];
    argv.extend(["--backend", "kubernetes", "--no-tls"]);
    argv.extend_from_slice(extra);
    let config = DeployConfig::try_from(&Cli::parse_from(argv).args).expect("flags");
    let BackendConfig::Kubernetes(mut kube) = config.backend.clone() else {
        panic!("a Kubernetes config");
    };
    kube.wait = Some(kubernetes::Wait {
        timeout: Duration::from_secs(120),
        interval: Duration::from_millis(100),
    });
    (config, *kube)
}

/// Streams the app's sample inputs through circe-home at `home` and checks
/// that each finished ok, once.
pub async fn run_samples(app: &App, home: &str) {
    let files = jupiterctl::session::expand_inputs(&app.sample_inputs).expect("sample inputs");
    let (results, _) = jupiterctl::session::submit_and_collect(
        home,
        &files,
        Duration::from_secs(120),
        false,
        std::future::pending(),
    )
    .await
    .expect("every result");
    each_once_and_ok(&results, files.len());
}

/// `n` results, each ok, each input once.
pub fn each_once_and_ok(results: &[jupiter_common::proto::circe::home::v1::InputResult], n: usize) {
    assert_eq!(results.len(), n);
    for r in results {
        assert!(r.ok, "input {} failed: {}", r.input_id, r.error);
    }
    let unique: std::collections::BTreeSet<&str> = results.iter().map(|r| r.input_id.as_str()).collect();
    assert_eq!(unique.len(), n, "each input once");
}
