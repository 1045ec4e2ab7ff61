//! `jupiterctl status`: every role of a deployment with its health, and
//! where jupiterctl reaches the roles, the nodes DRUPE sees, each worker's
//! queue and circe-home's counters, recoveries and re-mappings. As text for people, or as one JSON
//! object ([`Report`]) for scripts.

use crate::deployment::{Deployment, Health, RoleInstance};
use jupiter_common::proto::circe::home::v1::circe_home_client::CirceHomeClient;
use jupiter_common::proto::circe::home::v1::{HomeStatus, HomeStatusRequest};
use jupiter_common::proto::circe::worker::v1::circe_worker_client::CirceWorkerClient;
use jupiter_common::proto::circe::worker::v1::{StatusRequest, WorkerStatus};
use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
use jupiter_common::proto::drupe::central::v1::{ProfileRequest, ResourceProfile};
use jupiter_common::serve;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

/// `status --json`: one object a script can rely on.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The deployment's id.
    pub deployment: String,
    pub backend: &'static str,
    pub app: PathBuf,
    pub scheduler: String,
    pub predicted_makespan_secs: f64,
    /// task -> node.
    pub mapping: BTreeMap<String, String>,
    pub roles: Vec<RoleReport>,
    /// Which placement new inputs take: 0 the first mapping, one more each
    /// time the tasks were mapped again after the profile drifted.
    pub placement: u32,
    /// Every lost node recovered from: why, what moved where, and the
    /// inputs replayed (from circe-home; empty when it cannot be asked).
    pub recoveries: Vec<RecoveryReport>,
    /// Every re-mapping after the profile drifted, oldest first (from
    /// circe-home; empty when it cannot be asked).
    pub replans: Vec<ReplanReport>,
    /// Under `--tls`: the user's CA, certificate and key files (`ca`,
    /// `cert`, `key`), as grpcurl's -cacert, -cert and -key take them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<jupiter_common::tls::Files>,
}

/// One recovery: `reason` (the node lost and where its tasks went),
/// `at_unix_nanos`, and the `inputs` replayed.
#[derive(Debug, Serialize)]
pub struct RecoveryReport {
    pub reason: String,
    pub at_unix_nanos: i64,
    pub inputs: Vec<String>,
}

/// One re-mapping: its `placement`, `reason` (what drifted, what moved
/// where, the predicted makespans), `at_unix_nanos`, how many `inputs`
/// took it so far and how many of those are `unfinished`.
#[derive(Debug, Serialize)]
pub struct ReplanReport {
    pub placement: u32,
    pub reason: String,
    pub at_unix_nanos: i64,
    pub inputs: u64,
    pub unfinished: u64,
}

/// What circe-home went through: recoveries and re-mappings.
#[derive(Debug, Default)]
pub struct History {
    pub recoveries: Vec<RecoveryReport>,
    pub replans: Vec<ReplanReport>,
}

impl From<&HomeStatus> for History {
    fn from(home: &HomeStatus) -> Self {
        History {
            recoveries: home
                .recoveries
                .iter()
                .map(|r| RecoveryReport {
                    reason: r.reason.clone(),
                    at_unix_nanos: r.at_unix_nanos,
                    inputs: r.inputs.clone(),
                })
                .collect(),
            replans: home
                .placements
                .iter()
                .map(|p| ReplanReport {
                    placement: p.placement,
                    reason: p.reason.clone(),
                    at_unix_nanos: p.at_unix_nanos,
                    inputs: p.inputs,
                    unfinished: p.unfinished,
                })
                .collect(),
        }
    }
}

/// What circe-home went through, as far as it can be asked.
pub async fn history(deployment: &Deployment) -> History {
    match home_status(&deployment.summary.endpoints().circe_home).await {
        Ok(home) => History::from(&home),
        Err(_) => History::default(),
    }
}

/// A role with its health: `role`, `node`, `task`, `url`, `healthy`, and
/// `pid` or `container` where there is one; with `--processes` also
/// `restarts` and its `log` file.
#[derive(Debug, Serialize)]
pub struct RoleReport {
    #[serde(flatten)]
    pub instance: RoleInstance,
    pub healthy: bool,
}

/// Each role's URL as the state file records it, by label: on Kubernetes
/// the Service's, not this process's port-forward, which ends with it.
fn recorded_urls(deployment: &Deployment) -> BTreeMap<String, String> {
    deployment
        .state()
        .summary()
        .roles
        .iter()
        .map(|r| (r.label(), r.url.clone()))
        .collect()
}

pub fn report(deployment: &Deployment, health: &[(RoleInstance, Health)], history: History) -> Report {
    let s = &deployment.summary;
    let urls = recorded_urls(deployment);
    Report {
        deployment: s.deployment.clone(),
        backend: deployment.backend_name(),
        app: s.app.clone(),
        scheduler: s.scheduler.clone(),
        predicted_makespan_secs: s.predicted_makespan_secs,
        mapping: s.mapping.clone(),
        roles: health
            .iter()
            .map(|(instance, h)| RoleReport {
                instance: RoleInstance {
                    url: urls.get(&instance.label()).unwrap_or(&instance.url).clone(),
                    ..instance.clone()
                },
                healthy: h.healthy,
            })
            .collect(),
        placement: s.placement,
        recoveries: history.recoveries,
        replans: history.replans,
        tls: s.tls.clone(),
    }
}

/// Why a role could not be asked.
#[derive(Debug, thiserror::Error)]
enum AskError {
    #[error("{0}")]
    Address(#[from] tonic::transport::Error),
    #[error("{}", .0.message())]
    Call(#[from] tonic::Status),
}

/// The status as text.
pub async fn render(deployment: &Deployment, health: &[(RoleInstance, Health)]) -> String {
    let s = &deployment.summary;
    let backend = deployment.backend();
    let mut out = format!(
        "app {} (backend {}, {})\n",
        s.app.display(),
        deployment.backend_name(),
        backend.describe()
    );
    if let Some(tls) = &s.tls {
        let _ = writeln!(
            out,
            "mutual TLS: every role; your certificate {} (key {}, CA {})",
            tls.cert.display(),
            tls.key.display(),
            tls.ca.display()
        );
    }
    out.push_str("\nROLES\n");
    let urls = recorded_urls(deployment);
    for (role, h) in health {
        let url = urls.get(&role.label()).unwrap_or(&role.url);
        let state = if h.healthy {
            "SERVING".to_string()
        } else {
            format!("DOWN ({})", h.detail)
        };
        let _ = write!(out, "  {:<28} {:<24} {state}", role.label(), url);
        if let Some(restarts) = role.restarts {
            let pid = role.pid.map_or("-".to_string(), |p| p.to_string());
            let _ = write!(out, "  pid {pid}, restarts {restarts}");
        }
        out.push('\n');
    }
    let e = s.endpoints();
    out.push_str("\nNODES\n");
    match node_table(&e.drupe_central).await {
        Ok(table) => out.push_str(&table),
        Err(err) => {
            let _ = writeln!(out, "  drupe-central: {err}");
        }
    }
    let _ = write!(out, "\nMAPPING ({}", s.scheduler);
    if s.predicted_makespan_secs > 0.0 {
        let _ = write!(
            out,
            ", predicted makespan of one input {:.1} ms",
            s.predicted_makespan_secs * 1000.0
        );
    }
    out.push_str(")\n");
    out.push_str("  TASK                 NODE      WAITING  RUNNING  SENDING     DONE   FAILED\n");
    for (task, w) in &e.workers {
        let (line, storage_full) = match worker_status(&w.address).await {
            Ok(s) => (
                format!(
                    "{:>7}  {:>7}  {:>7}  {:>7}  {:>7}",
                    s.waiting, s.running, s.sending, s.done, s.failed
                ),
                Some(s.storage_full),
            ),
            Err(err) => (format!("unreachable: {err}"), None),
        };
        let _ = writeln!(out, "  {task:<20} {:<8}  {line}", w.node);
        if let Some(full) = storage_full.filter(|f| !f.is_empty()) {
            let _ = writeln!(out, "  ! {task} on {} is out of space: {full}", w.node);
        }
    }
    out.push_str("\nINPUTS\n");
    match home_status(&e.circe_home).await {
        Ok(h) => {
            let _ = writeln!(
                out,
                "  submitted {}  done {}  failed {}  in flight {}",
                h.submitted, h.done, h.failed, h.in_flight
            );
            for r in &h.recoveries {
                let _ = writeln!(
                    out,
                    "  recovered: {}; replayed {} inputs",
                    r.reason,
                    r.inputs.len()
                );
            }
            for p in &h.placements {
                let _ = writeln!(
                    out,
                    "  mapped again (placement {}): {}; {} inputs took it, {} unfinished",
                    p.placement, p.reason, p.inputs, p.unfinished
                );
            }
        }
        Err(err) => {
            let _ = writeln!(out, "  circe-home: {err}");
        }
    }
    let _ = writeln!(out, "  outputs in {}", s.output.display());
    out
}

async fn node_table(central: &str) -> Result<String, AskError> {
    let profile: ResourceProfile = DrupeCentralClient::new(serve::channel(central)?)
        .get_resource_profile(ProfileRequest {})
        .await?
        .into_inner();
    // SPEED: one task's speed (1.0 = a reference core; "-" not measured
    // yet); CPUS: the node's CPU limit; LOAD: its own use of that limit.
    let mut out = "  NODE      SPEED   CPUS   LOAD   MEM FREE / TOTAL\n".to_string();
    for n in profile.nodes {
        let _ = writeln!(
            out,
            "  {:<8}  {:>5}  {:>5}  {:>5.2}   {:.1} / {:.1} GiB",
            n.node,
            speed_cell(n.speed),
            cpus_cell(n.cpu_limit, n.cpu_count),
            n.cpu_load,
            n.memory_free_bytes as f64 / (1u64 << 30) as f64,
            n.memory_total_bytes as f64 / (1u64 << 30) as f64
        );
    }
    Ok(out)
}

/// A node's speed for a table: "-" when not measured yet.
pub(crate) fn speed_cell(speed: f64) -> String {
    if speed > 0.0 {
        format!("{speed:.2}")
    } else {
        "-".into()
    }
}

/// A node's CPU limit for a table (0.25, 1.5, 2), or its count from a
/// droplet that does not report a limit.
pub(crate) fn cpus_cell(cpu_limit: f64, cpu_count: u32) -> String {
    if cpu_limit > 0.0 {
        let text = format!("{cpu_limit:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        cpu_count.to_string()
    }
}

async fn worker_status(address: &str) -> Result<WorkerStatus, AskError> {
    Ok(CirceWorkerClient::new(serve::channel(address)?)
        .status(StatusRequest {})
        .await?
        .into_inner())
}

async fn home_status(address: &str) -> Result<HomeStatus, AskError> {
    Ok(CirceHomeClient::new(serve::channel(address)?)
        .status(HomeStatusRequest {})
        .await?
        .into_inner())
}

#[cfg(test)]
mod tests {
    use super::{cpus_cell, report, speed_cell, History, RecoveryReport, ReplanReport};
    use crate::deployment::{Deployment, Health, RoleInstance, Summary};
    use jupiter_common::role::Role;

    /// `status --json` as scripts read it: every role with its pid, and
    /// with `--processes` its restarts and log; every recovery.
    #[test]
    fn the_json_report_names_pids_restarts_and_recoveries() {
        let mut worker = RoleInstance::new(Role::CirceWorker, "http://127.0.0.1:2")
            .on("node1")
            .running("join");
        worker.pid = Some(4242);
        worker.restarts = Some(3);
        worker.log = Some("/w/logs/circe-worker-join.log".into());
        let summary = Summary {
            deployment: "jupiter-x-1".into(),
            scheduler: "heft".into(),
            roles: vec![
                RoleInstance::new(Role::CirceHome, "http://127.0.0.1:1"),
                worker.clone(),
            ],
            ..Default::default()
        };
        let deployment = Deployment::attach(Box::new(crate::local::Local::attach(1, &summary)), summary);
        let health = vec![(worker, Health::serving())];
        let history = History {
            recoveries: vec![RecoveryReport {
                reason: "node node2 is down: ...; moved join node2 -> node1 (heft)".into(),
                at_unix_nanos: 7,
                inputs: vec!["in1.txt".into()],
            }],
            replans: vec![ReplanReport {
                placement: 1,
                reason: "link a -> b bandwidth 100 Mbit/s -> 1 Mbit/s drifted; moved join b -> a".into(),
                at_unix_nanos: 9,
                inputs: 12,
                unfinished: 2,
            }],
        };
        let json = serde_json::to_value(report(&deployment, &health, history)).expect("serialises");
        let role = &json["roles"][0];
        assert_eq!(role["role"], "circe-worker");
        assert_eq!(role["task"], "join");
        assert_eq!(role["pid"], 4242);
        assert_eq!(role["restarts"], 3);
        assert_eq!(role["log"], "/w/logs/circe-worker-join.log");
        assert_eq!(role["healthy"], true);
        assert_eq!(json["backend"], "local");
        assert_eq!(json["recoveries"][0]["inputs"][0], "in1.txt");
        assert!(json["recoveries"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("moved join node2 -> node1")));
        assert_eq!(json["placement"], 0);
        assert_eq!(json["replans"][0]["placement"], 1);
        assert_eq!(json["replans"][0]["inputs"], 12);
        assert_eq!(json["replans"][0]["unfinished"], 2);
        assert!(json["replans"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("moved join b -> a")));
    }

    #[test]
    fn node_cells_show_fractional_limits_and_unmeasured_speed() {
        assert_eq!(cpus_cell(0.25, 1), "0.25");
        assert_eq!(cpus_cell(1.5, 2), "1.5");
        assert_eq!(cpus_cell(2.0, 2), "2");
        assert_eq!(cpus_cell(0.0, 4), "4", "an old droplet: its count");
        assert_eq!(speed_cell(0.0), "-");
        assert_eq!(speed_cell(0.994), "0.99");
    }
}
