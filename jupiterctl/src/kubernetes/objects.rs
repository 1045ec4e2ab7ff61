//! Builders of single objects (pod specs, Deployments, DaemonSets,
//! Services, headless for DaemonSets) with the labels and selectors every
//! object of a deployment shares. [`super::manifests`] puts them together.

use super::names::{self, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_NAME, LABEL_NODE, LABEL_TASK};
use super::roles::{claim_template, claimed, container, data_volume, metrics_annotations, Role, APP_VOLUME};
use super::KubeOptions;
use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, Deployment, DeploymentSpec, StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMapVolumeSource, EnvVar, KeyToPath, NodeAffinity, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, PodSpec, PodTemplateSpec, Service, ServicePort, ServiceSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The pod of `role`, with the app's ConfigMap mounted if `app_volume`.
pub fn pod_spec(
    role: Role,
    options: &KubeOptions,
    env: Vec<EnvVar>,
    app_volume: bool,
    items: &[KeyToPath],
) -> PodSpec {
    let mut volumes: Vec<Volume> = data_volume(role).into_iter().collect();
    if app_volume {
        volumes.push(Volume {
            name: APP_VOLUME.to_string(),
            config_map: Some(ConfigMapVolumeSource {
                name: names::APP_CONFIG_MAP.to_string(),
                items: Some(items.to_vec()),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    PodSpec {
        containers: vec![container(role, options, env)],
        volumes: (!volumes.is_empty()).then_some(volumes),
        ..Default::default()
    }
}

/// Only the listed nodes, when there is a list. matchFields on the node's
/// name, as the DaemonSet controller itself uses, not the hostname label.
pub fn node_affinity(nodes: &[String]) -> Option<Affinity> {
    (!nodes.is_empty()).then(|| Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_fields: Some(vec![NodeSelectorRequirement {
                        key: "metadata.name".to_string(),
                        operator: "In".to_string(),
                        values: Some(nodes.to_vec()),
                    }]),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The labels a role's pods are selected by: fixed at creation (a selector
/// is immutable), so only the identity labels, never the node.
pub fn selector_labels(deployment: &str, role: Role, task: Option<&String>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (LABEL_NAME.to_string(), names::PART_OF.to_string()),
        (LABEL_COMPONENT.to_string(), role.name().to_string()),
        (LABEL_INSTANCE.to_string(), deployment.to_string()),
    ]);
    if let Some(task) = task {
        labels.insert(LABEL_TASK.to_string(), task.clone());
    }
    labels
}

pub fn meta(name: &str, ns: &str, labels: &BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(ns.to_string()),
        labels: Some(labels.clone()),
        ..Default::default()
    }
}

pub fn all_labels(
    deployment: &str,
    role: Role,
    extra: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels = names::labels(deployment, role.name());
    labels.extend(extra.clone());
    labels
}

/// The pod template of `role`: its labels, and the annotations that tell
/// Prometheus where its metrics are (on the pods, where pod discovery
/// reads them, so every node's droplet and every task's worker is scraped
/// on its own).
pub fn template(labels: &BTreeMap<String, String>, role: Role, spec: PodSpec) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels.clone()),
            annotations: Some(metrics_annotations(role)),
            ..Default::default()
        }),
        spec: Some(spec),
    }
}

pub fn deployment_of(
    name: &str,
    ns: &str,
    deployment: &str,
    role: Role,
    extra: BTreeMap<String, String>,
    spec: PodSpec,
) -> Deployment {
    let labels = all_labels(deployment, role, &extra);
    Deployment {
        metadata: meta(name, ns, &labels),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(selector_labels(deployment, role, extra.get(LABEL_TASK))),
                ..Default::default()
            },
            template: template(&labels, role, spec),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The workload of a home role or a task's worker: a StatefulSet of one
/// pod on a claim of its own where the role keeps state ([`claimed`]),
/// else a Deployment.
pub fn workload_of(
    name: &str,
    ns: &str,
    deployment: &str,
    role: Role,
    extra: BTreeMap<String, String>,
    spec: PodSpec,
    options: &KubeOptions,
) -> super::Object {
    if claimed(role) {
        super::Object::StatefulSet(stateful_set_of(name, ns, deployment, role, extra, spec, options))
    } else {
        super::Object::Deployment(deployment_of(name, ns, deployment, role, extra, spec))
    }
}

/// One pod on one claim. A deleted pod comes back under the same name on
/// the same claim (its queue, its records); the claim goes with the
/// StatefulSet (`down`), not with a pod.
pub fn stateful_set_of(
    name: &str,
    ns: &str,
    deployment: &str,
    role: Role,
    extra: BTreeMap<String, String>,
    spec: PodSpec,
    options: &KubeOptions,
) -> StatefulSet {
    let labels = all_labels(deployment, role, &extra);
    StatefulSet {
        metadata: meta(name, ns, &labels),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(name.to_string()),
            selector: LabelSelector {
                match_labels: Some(selector_labels(deployment, role, extra.get(LABEL_TASK))),
                ..Default::default()
            },
            template: template(&labels, role, spec),
            volume_claim_templates: Some(vec![claim_template(role, options, &labels)]),
            persistent_volume_claim_retention_policy: Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some("Delete".to_string()),
                when_scaled: Some("Retain".to_string()),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn daemon_set(role: Role, ns: &str, deployment: &str, spec: PodSpec) -> DaemonSet {
    let labels = names::labels(deployment, role.name());
    DaemonSet {
        metadata: meta(role.name(), ns, &labels),
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(selector_labels(deployment, role, None)),
                ..Default::default()
            },
            template: template(&labels, role, spec),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn service(
    name: &str,
    ns: &str,
    deployment: &str,
    role: Role,
    extra: BTreeMap<String, String>,
) -> Service {
    Service {
        metadata: meta(name, ns, &all_labels(deployment, role, &extra)),
        spec: Some(ServiceSpec {
            selector: Some(selector_labels(deployment, role, extra.get(LABEL_TASK))),
            ports: Some(vec![ServicePort {
                name: Some("grpc".to_string()),
                port: i32::from(role.port()),
                target_port: Some(IntOrString::String("grpc".to_string())),
                protocol: Some("TCP".to_string()),
                // Tells meshes and ingresses the port speaks HTTP/2 in clear.
                app_protocol: Some("kubernetes.io/h2c".to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Service of a per-node DaemonSet: headless (`clusterIP: None`), so
/// DNS answers with each ready pod's own address (per-pod records) instead
/// of one virtual IP. Each node's agent is addressed individually; a
/// load-balancing ClusterIP would hand a call meant for one node's agent to
/// any node's.
pub fn headless_service(role: Role, ns: &str, deployment: &str) -> Service {
    let mut headless = service(role.name(), ns, deployment, role, BTreeMap::new());
    headless.spec.get_or_insert_with(Default::default).cluster_ip = Some("None".to_string());
    headless
}

/// A task's worker StatefulSet, as read from the cluster, moved to `node`
/// (after a node loss): named [`names::moved_workload`] (a fresh claim, as
/// the old one may be bound to storage of the lost node), pinned to `node`,
/// told `JUPITER_NODE`, labelled with it; the same Service, image,
/// resources and certificates. Only what apply takes is kept of the
/// metadata the server filled in.
pub fn moved_to(set: StatefulSet, node: &str) -> StatefulSet {
    let mut spec = set.spec.unwrap_or_default();
    let service = spec
        .service_name
        .clone()
        .or_else(|| set.metadata.name.clone())
        .unwrap_or_default();
    let relabel = |labels: Option<BTreeMap<String, String>>| {
        let mut labels = labels.unwrap_or_default();
        labels.insert(LABEL_NODE.to_string(), node.to_string());
        Some(labels)
    };
    let template_meta = spec.template.metadata.get_or_insert_with(Default::default);
    template_meta.labels = relabel(template_meta.labels.take());
    if let Some(pod) = spec.template.spec.as_mut() {
        pod.node_selector = Some(BTreeMap::from([(
            "kubernetes.io/hostname".to_string(),
            node.to_string(),
        )]));
        for container in &mut pod.containers {
            for var in container.env.iter_mut().flatten() {
                if var.name == jupiter_common::env::NODE {
                    var.value = Some(node.to_string());
                }
            }
        }
    }
    for claim in spec.volume_claim_templates.iter_mut().flatten() {
        claim.metadata = ObjectMeta {
            name: claim.metadata.name.take(),
            labels: relabel(claim.metadata.labels.take()),
            ..Default::default()
        };
        claim.status = None;
    }
    StatefulSet {
        metadata: ObjectMeta {
            name: Some(names::moved_workload(&service, node)),
            namespace: set.metadata.namespace,
            labels: relabel(set.metadata.labels),
            annotations: set.metadata.annotations,
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_worker_keeps_its_service_image_and_task_on_a_new_node_and_claim() {
        let options = KubeOptions::default();
        let env = vec![
            super::super::roles::env(jupiter_common::env::TASK, "task3"),
            super::super::roles::env(jupiter_common::env::NODE, "old"),
        ];
        let mut pod = pod_spec(Role::CirceWorker, &options, env, false, &[]);
        pod.node_selector = Some(BTreeMap::from([(
            "kubernetes.io/hostname".to_string(),
            "old".to_string(),
        )]));
        let extra = BTreeMap::from([
            (LABEL_TASK.to_string(), "task3".to_string()),
            (LABEL_NODE.to_string(), "old".to_string()),
        ]);
        let mut set = stateful_set_of(
            "circe-worker-task3",
            "ns",
            "app",
            Role::CirceWorker,
            extra,
            pod,
            &options,
        );
        // As read back from the API server.
        set.metadata.uid = Some("u".into());
        set.metadata.resource_version = Some("7".into());
        set.status = Some(Default::default());

        let moved = moved_to(set.clone(), "new");
        assert_eq!(
            moved.metadata.name.as_deref(),
            Some(names::moved_workload("circe-worker-task3", "new").as_str())
        );
        assert_eq!(
            (
                moved.metadata.uid.as_ref(),
                moved.metadata.resource_version.as_ref()
            ),
            (None, None)
        );
        assert!(moved.status.is_none());
        assert_eq!(moved.metadata.labels.as_ref().unwrap()[LABEL_NODE], "new");
        assert_eq!(moved.metadata.labels.as_ref().unwrap()[LABEL_TASK], "task3");
        let spec = moved.spec.as_ref().unwrap();
        assert_eq!(spec.service_name.as_deref(), Some("circe-worker-task3"));
        assert_eq!(
            spec.selector,
            set.spec.as_ref().unwrap().selector,
            "the same Service selects it"
        );
        let pod = spec.template.spec.as_ref().unwrap();
        assert_eq!(
            pod.node_selector.as_ref().unwrap()["kubernetes.io/hostname"],
            "new"
        );
        let container = &pod.containers[0];
        assert_eq!(
            container.image,
            set.spec
                .as_ref()
                .unwrap()
                .template
                .spec
                .as_ref()
                .unwrap()
                .containers[0]
                .image
        );
        let env: BTreeMap<&str, Option<&str>> = container
            .env
            .iter()
            .flatten()
            .map(|v| (v.name.as_str(), v.value.as_deref()))
            .collect();
        assert_eq!(env[jupiter_common::env::NODE], Some("new"));
        assert_eq!(env[jupiter_common::env::TASK], Some("task3"));
        let claim = &spec.volume_claim_templates.as_ref().unwrap()[0];
        assert_eq!(claim.metadata.name.as_deref(), Some("data"));
        assert_eq!(claim.metadata.labels.as_ref().unwrap()[LABEL_NODE], "new");
    }
}
