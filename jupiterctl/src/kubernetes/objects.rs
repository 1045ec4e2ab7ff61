//! Builders of single objects (pod specs, Deployments, DaemonSets,
//! Services, headless for DaemonSets) with the labels and selectors every
//! object of a deployment shares. [`super::manifests`] puts them together.

use super::names::{self, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_NAME, LABEL_TASK};
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
