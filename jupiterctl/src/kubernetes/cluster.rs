//! The cluster's nodes a deployment may use: Ready, not cordoned, and not
//! tainted against ordinary pods (Jupiter's pods carry no tolerations, so a
//! circe-worker mapped to such a node would stay Pending forever).

use super::KubeError;
use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::{Api, Client};

/// Names of the usable nodes of the cluster, sorted.
pub async fn nodes(client: &Client) -> Result<Vec<String>, KubeError> {
    let list = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(KubeError::api("list nodes"))?;
    let usable = usable(&list.items);
    if usable.is_empty() {
        return Err(KubeError::NoNodes);
    }
    Ok(usable)
}

/// The names of the nodes in `nodes` that are usable, sorted.
pub fn usable(nodes: &[Node]) -> Vec<String> {
    let mut names: Vec<String> = nodes
        .iter()
        .filter(|n| is_usable(n))
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    names.sort();
    names
}

/// Whether the node's kubelet reports it Ready.
pub fn is_ready(node: &Node) -> bool {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    ready_among(conditions.into_iter().flatten().map(|c| (&c.type_, &c.status)))
}

/// Whether the `(type, status)` conditions of a node or pod say Ready.
pub fn ready_among<'a>(mut conditions: impl Iterator<Item = (&'a String, &'a String)>) -> bool {
    conditions.any(|(kind, status)| kind == "Ready" && status == "True")
}

fn is_usable(node: &Node) -> bool {
    let spec = node.spec.clone().unwrap_or_default();
    let ready = is_ready(node);
    let cordoned = spec.unschedulable == Some(true);
    let tainted = spec
        .taints
        .iter()
        .flatten()
        .any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute");
    ready && !cordoned && !tainted
}

/// `wanted` (the user's `--nodes`) checked against `available`; all of
/// `available` when `wanted` is empty.
pub fn restrict(available: &[String], wanted: &[String]) -> Result<Vec<String>, KubeError> {
    if wanted.is_empty() {
        return Ok(available.to_vec());
    }
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|w| !available.contains(w))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(KubeError::UnknownNodes {
            missing: missing.join(", "),
            available: available.join(", "),
        });
    }
    Ok(wanted.to_vec())
}
