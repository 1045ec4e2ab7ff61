//! Pure rendering: an app, its mapping and the options in, the Kubernetes
//! objects of one deployment out, in the order they are applied. Nothing
//! here talks to a cluster, so `jupiterctl render` needs none.

use super::app_files::app_files;
use super::names::{self, LABEL_NODE, LABEL_TASK};
use super::objects::{daemon_set, headless_service, node_affinity, pod_spec, service, workload_of};
use super::roles::{self, base_env, Role};
use super::tls;
use super::{KubeError, KubeOptions};
use jupiter_common::app::App;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// One object of a deployment.
#[derive(Debug, Clone)]
pub enum Object {
    Namespace(Namespace),
    ConfigMap(ConfigMap),
    /// Only `up --tls` makes one (the certificates); render never does.
    Secret(Secret),
    Service(Service),
    Deployment(Deployment),
    StatefulSet(StatefulSet),
    DaemonSet(DaemonSet),
}

impl Object {
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Namespace(_) => "Namespace",
            Object::ConfigMap(_) => "ConfigMap",
            Object::Secret(_) => "Secret",
            Object::Service(_) => "Service",
            Object::Deployment(_) => "Deployment",
            Object::StatefulSet(_) => "StatefulSet",
            Object::DaemonSet(_) => "DaemonSet",
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::Namespace(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::StatefulSet(o) => &o.metadata,
            Object::DaemonSet(o) => &o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// `Kind/name`, as progress lines and errors show it.
    pub fn display(&self) -> String {
        format!("{}/{}", self.kind(), self.name())
    }

    /// The object as the API server would receive it (with apiVersion and
    /// kind, which k8s-openapi adds when serialising).
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            Object::Namespace(o) => serde_json::to_value(o),
            Object::ConfigMap(o) => serde_json::to_value(o),
            Object::Secret(o) => serde_json::to_value(o),
            Object::Service(o) => serde_json::to_value(o),
            Object::Deployment(o) => serde_json::to_value(o),
            Object::StatefulSet(o) => serde_json::to_value(o),
            Object::DaemonSet(o) => serde_json::to_value(o),
        };
        // These types serialise to JSON objects by construction; Null would
        // only stand for an impossible failure.
        value.unwrap_or_default()
    }
}

/// The objects of the deployment of `app`, in apply order: Namespace,
/// ConfigMap, the home roles, the per-node DaemonSets (each followed by its
/// headless Service), one circe-worker per task. `options.mapping` must map
/// every task.
pub fn render(app: &App, options: &KubeOptions) -> Result<Vec<Object>, KubeError> {
    let mut objects = render_roles(app, options)?;
    objects.extend(render_workers(app, options)?);
    Ok(objects)
}

/// The long-lived part, which needs no mapping: Namespace, ConfigMap, the
/// home roles and the per-node DaemonSets.
pub fn render_roles(app: &App, options: &KubeOptions) -> Result<Vec<Object>, KubeError> {
    names::check_deployment(&options.deployment)?;
    let services = names::task_services(app)?;
    let deployment = options.deployment.as_str();
    let ns = names::namespace(deployment);
    let files = app_files(app, deployment, &ns)?;
    check_tls(app, options)?;

    let mut objects = vec![
        Object::Namespace(Namespace {
            metadata: ObjectMeta {
                name: Some(ns.clone()),
                labels: Some(names::labels(deployment, "namespace")),
                ..Default::default()
            },
            ..Default::default()
        }),
        Object::ConfigMap(files.config_map),
    ];

    let ingress = app
        .ingress()
        .iter()
        .map(|t| task_url(&t.name, &services))
        .collect::<Vec<_>>()
        .join(",");
    for role in [Role::DrupeCentral, Role::WaveHome, Role::CirceHome] {
        let mut env = base_env(role, options);
        if role == Role::CirceHome {
            env.insert(1, roles::env(jupiter_common::env::INGRESS, ingress.clone()));
        }
        let mut pod = pod_spec(role, options, env, role == Role::CirceHome, &files.items);
        tls::mount(&mut pod, options, role.name());
        objects.push(workload_of(
            role.name(),
            &ns,
            deployment,
            role,
            BTreeMap::new(),
            pod,
            options,
        ));
        objects.push(Object::Service(service(
            role.name(),
            &ns,
            deployment,
            role,
            BTreeMap::new(),
        )));
    }

    for role in [Role::DrupeDroplet, Role::WaveWorker] {
        let mut pod = pod_spec(role, options, base_env(role, options), false, &[]);
        pod.affinity = node_affinity(&options.nodes);
        tls::mount(&mut pod, options, role.name());
        objects.push(Object::DaemonSet(daemon_set(role, &ns, deployment, pod)));
        objects.push(Object::Service(headless_service(role, &ns, deployment)));
    }
    Ok(objects)
}

/// One circe-worker StatefulSet (its queue on a claim) and Service per
/// task, each pinned to the node `options.mapping` gives it.
pub fn render_workers(app: &App, options: &KubeOptions) -> Result<Vec<Object>, KubeError> {
    names::check_deployment(&options.deployment)?;
    let services = names::task_services(app)?;
    check_mapping(app, options)?;
    let deployment = options.deployment.as_str();
    let ns = names::namespace(deployment);
    let files = app_files(app, deployment, &ns)?;
    check_tls(app, options)?;
    let mut objects = Vec::new();
    for task in &app.tasks {
        let service_name = &services[&task.name];
        // check_mapping has seen every task mapped.
        let node = options.mapping.get(&task.name).cloned().unwrap_or_default();
        let children = task
            .children
            .iter()
            .map(|c| task_url(c, &services))
            .collect::<Vec<_>>()
            .join(",");
        let mut env = base_env(Role::CirceWorker, options);
        env.insert(1, roles::env(jupiter_common::env::TASK, task.name.clone()));
        env.insert(2, roles::env(jupiter_common::env::NODE, node.clone()));
        // An egress task has no children: the variable is left out rather
        // than set empty, which the worker would read as one empty TASK=URL.
        if !children.is_empty() {
            env.insert(3, roles::env(jupiter_common::env::CHILDREN, children));
        }
        let mut pod = pod_spec(Role::CirceWorker, options, env, true, &files.items);
        if let Some(limits) = options.node_limits.get(&node) {
            for container in &mut pod.containers {
                roles::limit(container, limits);
            }
        }
        pod.node_selector = Some(BTreeMap::from([(
            "kubernetes.io/hostname".to_string(),
            node.clone(),
        )]));
        tls::mount(&mut pod, options, service_name);
        let extra = BTreeMap::from([
            (
                LABEL_TASK.to_string(),
                names::task_label(service_name).to_string(),
            ),
            (LABEL_NODE.to_string(), node),
        ]);
        objects.push(workload_of(
            service_name,
            &ns,
            deployment,
            Role::CirceWorker,
            extra.clone(),
            pod,
            options,
        ));
        objects.push(Object::Service(service(
            service_name,
            &ns,
            deployment,
            Role::CirceWorker,
            extra,
        )));
    }
    Ok(objects)
}

/// A usable Secret name, and one key per role in it.
fn check_tls(app: &App, options: &KubeOptions) -> Result<(), KubeError> {
    match &options.tls {
        None => Ok(()),
        Some(choice) => {
            tls::check_secret(choice.secret())?;
            tls::check_keys(app)
        }
    }
}

/// Every task mapped, to a node that carries a droplet and a wave-worker,
/// and every node name usable as a label value.
fn check_mapping(app: &App, options: &KubeOptions) -> Result<(), KubeError> {
    for task in &app.tasks {
        let node = options
            .mapping
            .get(&task.name)
            .ok_or_else(|| KubeError::Unmapped {
                task: task.name.clone(),
            })?;
        names::check_label_value("node name", node)?;
        if !options.nodes.is_empty() && !options.nodes.contains(node) {
            return Err(KubeError::MappedOffNodes {
                task: task.name.clone(),
                node: node.clone(),
                nodes: options.nodes.join(", "),
            });
        }
    }
    Ok(())
}

fn task_url(task: &str, services: &BTreeMap<String, String>) -> String {
    // Children are tasks of the app (the loader checks), so named.
    let service = services.get(task).map(String::as_str).unwrap_or(task);
    format!("{task}={}", names::service_url(service, Role::CirceWorker.port()))
}

/// The objects as one multi-document YAML stream (`---` separated), what
/// `jupiterctl render` prints and `kubectl apply -f -` takes.
pub fn to_yaml(objects: &[Object]) -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&object.to_json())?);
    }
    Ok(out)
}
