//! WAVE-greedy's choice of a node for one task, shared by wave-home (the
//! ingress tasks) and every agent (their tasks' children): the node where
//! the task would finish first, as far as the chooser knows: the transfer
//! of the parent's output over DRUPE's measured link, the sibling work the
//! chooser already sent there, then the task at the node's speed.

use jupiter_common::proto::drupe::central::v1::{NetworkProfile, ResourceProfile};
use std::collections::BTreeMap;

/// The speed DRUPE measured for `node`, if it is reachable.
pub fn node_speed(resources: &ResourceProfile, node: &str) -> Option<f64> {
    resources
        .nodes
        .iter()
        .find(|n| n.node == node && n.reachable)
        .map(crate::network::speed)
}

/// The node where a task of `cost` would finish first. `here` is the node
/// holding its parent's `bytes` of output; `None` for an ingress task,
/// whose input comes from circe-home to whichever node (no link of the
/// profile models that). `busy` is the sibling work, in seconds, the chooser
/// already sent to each node: siblings start together, so a node given one
/// is busy for the next (the model HEFT uses too).
pub fn choose(
    here: Option<&str>,
    nodes: &[String],
    bytes: u64,
    cost: f64,
    busy: &BTreeMap<String, f64>,
    network: &NetworkProfile,
    resources: &ResourceProfile,
) -> Option<String> {
    let finish = |node: &String| -> f64 {
        let Some(speed) = node_speed(resources, node) else {
            return f64::INFINITY;
        };
        let transfer = match here {
            None => 0.0,
            Some(here) if here == node => 0.0,
            Some(here) => match network
                .links
                .iter()
                .find(|l| l.from == here && &l.to == node && l.reachable)
            {
                Some(l) => {
                    let m = l.model.unwrap_or_default();
                    m.constant + m.linear * bytes as f64
                }
                None => return f64::INFINITY,
            },
        };
        transfer + busy.get(node).copied().unwrap_or(0.0) + cost / speed
    };
    nodes
        .iter()
        .map(|n| (finish(n), n))
        .filter(|(f, _)| f.is_finite())
        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)))
        .map(|(_, n)| n.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_common::proto::drupe::central::v1::{LinkProfile, TransferModel};
    use jupiter_common::proto::drupe::droplet::v1::NodeResources;

    fn profile() -> (NetworkProfile, ResourceProfile) {
        let nodes = ["fast", "slow"];
        let node = |name: &str, speed: f64| NodeResources {
            node: name.into(),
            cpu_count: speed as u32,
            speed,
            reachable: true,
            ..Default::default()
        };
        let links = nodes
            .iter()
            .flat_map(|a| nodes.iter().map(move |b| (a, b)))
            .filter(|(a, b)| a != b)
            .map(|(a, b)| LinkProfile {
                from: a.to_string(),
                to: b.to_string(),
                reachable: true,
                bandwidth_bytes_per_sec: 1e9,
                model: Some(TransferModel {
                    linear: 1e-9,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect();
        (
            NetworkProfile {
                links,
                ..Default::default()
            },
            ResourceProfile {
                nodes: vec![node("fast", 2.0), node("slow", 1.0)],
            },
        )
    }

    #[test]
    fn greedy_takes_the_fastest_finish_and_spreads_siblings() {
        let (network, resources) = profile();
        let nodes = vec!["fast".to_string(), "slow".to_string()];
        let mut busy = BTreeMap::new();
        let pick = |busy: &BTreeMap<String, f64>| {
            choose(Some("fast"), &nodes, 1000, 1.0, busy, &network, &resources)
        };
        assert_eq!(pick(&busy).as_deref(), Some("fast"), "0.5 s beats 1 s");
        busy.insert("fast".to_string(), 0.5);
        assert_eq!(
            pick(&busy).as_deref(),
            Some("fast"),
            "1 s beats 1 s plus a transfer"
        );
        busy.insert("fast".to_string(), 1.0);
        assert_eq!(
            pick(&busy).as_deref(),
            Some("slow"),
            "fast is busy: 1.5 s against 1 s"
        );
    }

    #[test]
    fn an_ingress_task_goes_to_the_fastest_node_then_the_next() {
        let (network, resources) = profile();
        let nodes = vec!["fast".to_string(), "slow".to_string()];
        let mut busy = BTreeMap::new();
        let pick = |busy: &BTreeMap<String, f64>| choose(None, &nodes, 0, 1.0, busy, &network, &resources);
        assert_eq!(pick(&busy).as_deref(), Some("fast"));
        busy.insert("fast".to_string(), 1.0);
        assert_eq!(pick(&busy).as_deref(), Some("slow"), "1.5 s against 1 s");
    }

    #[test]
    fn an_unreachable_node_is_never_chosen() {
        let (network, mut resources) = profile();
        resources.nodes[0].reachable = false;
        let nodes = vec!["fast".to_string(), "slow".to_string()];
        let busy = BTreeMap::new();
        assert_eq!(
            choose(None, &nodes, 0, 1.0, &busy, &network, &resources).as_deref(),
            Some("slow")
        );
    }
}
