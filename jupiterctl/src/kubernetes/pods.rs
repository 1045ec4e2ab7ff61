//! A deployment's pods as the API server reports them: which role each pod
//! runs, whether it is ready (the kubelet's gRPC readiness probe), deleting
//! one role's pods so that their controller starts them again, and noticing
//! a node of the deployment that is no longer Ready.

use super::cluster;
use super::names::{self, LABEL_COMPONENT, LABEL_TASK};
use super::KubeError;
use crate::deployment::{Health, RoleInstance};
use jupiter_common::role::Scope;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client};
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

/// How often the nodes are looked at during a run.
const NODE_WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// The health of each of `roles`, from their pods' readiness.
pub async fn health(client: &Client, deployment: &str, roles: &[RoleInstance]) -> Vec<Health> {
    let api = Api::<Pod>::namespaced(client.clone(), &names::namespace(deployment));
    let listed = api
        .list(&ListParams::default().labels(&names::selector(deployment)))
        .await;
    match listed {
        Ok(list) => roles.iter().map(|r| role_health(&list.items, r)).collect(),
        Err(e) => {
            let why = format!("listing the pods: {e}");
            roles.iter().map(|_| Health::down(why.clone())).collect()
        }
    }
}

fn role_health(pods: &[Pod], role: &RoleInstance) -> Health {
    let mine: Vec<&Pod> = pods.iter().filter(|p| runs(p, role)).collect();
    if mine.iter().any(|p| ready(p)) {
        return Health::serving();
    }
    match mine.first() {
        None => Health::down("no pod"),
        Some(pod) => Health::down(not_ready_reason(pod)),
    }
}

/// Whether `pod` runs `role`: its component, and its node or task.
fn runs(pod: &Pod, role: &RoleInstance) -> bool {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    if labels.get(LABEL_COMPONENT).map(String::as_str) != Some(role.role.name()) {
        return false;
    }
    match role.role.scope() {
        Scope::Home => true,
        Scope::Node => pod.spec.as_ref().and_then(|s| s.node_name.as_ref()) == role.node.as_ref(),
        Scope::Task => {
            let task = role.task.as_deref().map(names::task_label_of);
            labels.get(LABEL_TASK) == task.as_ref()
        }
    }
}

fn ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    cluster::ready_among(conditions.into_iter().flatten().map(|c| (&c.type_, &c.status)))
}

/// Why a pod is not ready, as `kubectl get pods` would say it.
fn not_ready_reason(pod: &Pod) -> String {
    let status = pod.status.clone().unwrap_or_default();
    let waiting = status
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
    let phase = status.phase.unwrap_or_else(|| "Unknown".into());
    match waiting {
        Some(reason) => format!("{phase}: {reason}"),
        None => format!("{phase}, not ready"),
    }
}

/// The label and field selectors of the pods that run `role`.
pub fn selectors(deployment: &str, role: &RoleInstance) -> (String, Option<String>) {
    let mut labels = format!(
        "{},{LABEL_COMPONENT}={}",
        names::selector(deployment),
        role.role.name()
    );
    if let (Scope::Task, Some(task)) = (role.role.scope(), &role.task) {
        labels.push_str(&format!(",{LABEL_TASK}={}", names::task_label_of(task)));
    }
    let fields = match (role.role.scope(), &role.node) {
        (Scope::Node, Some(node)) => Some(format!("spec.nodeName={node}")),
        _ => None,
    };
    (labels, fields)
}

fn params(labels: &str, fields: Option<&str>) -> ListParams {
    let params = ListParams::default().labels(labels);
    match fields {
        Some(fields) => params.fields(fields),
        None => params,
    }
}

/// Deletes the pods that run `role`; their DaemonSet or Deployment starts
/// new ones, on the same Service name.
pub async fn delete(client: &Client, deployment: &str, role: &RoleInstance) -> Result<(), KubeError> {
    delete_with(client, deployment, role, &DeleteParams::default(), "delete").await
}

/// Deletes the pods that run `role` with `how`; `verb` names it in errors.
async fn delete_with(
    client: &Client,
    deployment: &str,
    role: &RoleInstance,
    how: &DeleteParams,
    verb: &str,
) -> Result<(), KubeError> {
    let ns = names::namespace(deployment);
    let (labels, fields) = selectors(deployment, role);
    Api::<Pod>::namespaced(client.clone(), &ns)
        .delete_collection(how, &params(&labels, fields.as_deref()))
        .await
        .map_err(KubeError::api(format!(
            "{verb} the pods of {} in {ns}",
            role.label()
        )))?;
    Ok(())
}

/// The pods the selectors match that are running and not being deleted,
/// ready ones first.
pub async fn running(api: &Api<Pod>, labels: &str, fields: Option<&str>) -> Result<Vec<Pod>, kube::Error> {
    let mut found: Vec<Pod> = api
        .list(&params(labels, fields))
        .await?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .collect();
    found.sort_by_key(|p| !ready(p));
    Ok(found)
}

/// The port a role's pod serves gRPC on (its container port named `grpc`).
pub fn grpc_port(pod: &Pod) -> Option<u16> {
    let containers = &pod.spec.as_ref()?.containers;
    containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some("grpc"))
        .and_then(|p| u16::try_from(p.container_port).ok())
}

/// The name of a running pod the selectors match, a ready one if any.
pub async fn pick(api: &Api<Pod>, labels: &str, fields: Option<&str>) -> Result<Option<String>, kube::Error> {
    Ok(running(api, labels, fields)
        .await?
        .into_iter()
        .find_map(|p| p.metadata.name))
}

/// Resolves with the nodes of `nodes` that are no longer Ready nodes of
/// the cluster (their pods are cut off, and nothing moves a pinned
/// worker), leaving out those in `known`: lost before and already
/// recovered from. `known` forgets a node that is Ready again.
pub async fn lost_nodes(client: &Client, nodes: &[String], known: &Mutex<BTreeSet<String>>) -> Vec<String> {
    let api = Api::<Node>::all(client.clone());
    loop {
        if let Ok(list) = api.list(&ListParams::default()).await {
            let down: BTreeSet<String> = nodes
                .iter()
                .filter(|wanted| {
                    !list
                        .items
                        .iter()
                        .any(|n| n.metadata.name.as_ref() == Some(*wanted) && cluster::is_ready(n))
                })
                .cloned()
                .collect();
            let mut known = known.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            known.retain(|n| down.contains(n));
            let new: Vec<String> = down.difference(&known).cloned().collect();
            if !new.is_empty() {
                known.extend(new.iter().cloned());
                return new;
            }
        }
        tokio::time::sleep(NODE_WATCH_INTERVAL).await;
    }
}

/// Force-deletes the pods that run `role` (grace period 0), as
/// `kubectl delete pod --force` does for a pod on a node that is gone:
/// until then its controller will not start another under that identity.
pub async fn force_delete(client: &Client, deployment: &str, role: &RoleInstance) -> Result<(), KubeError> {
    let force = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::background()
    };
    delete_with(client, deployment, role, &force, "force-delete").await
}
