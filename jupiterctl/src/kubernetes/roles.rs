//! The six roles as containers: image, ports (gRPC and Prometheus
//! metrics), probes, environment, data volumes and the annotations that let
//! a cluster's Prometheus find them. The Helm chart mirrors this file
//! (tests/helm_chart.rs checks it).

use super::KubeOptions;
use jupiter_common::env as var;
pub use jupiter_common::role::Role;
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, GRPCAction, ObjectFieldSelector,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, Probe, ResourceRequirements, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// The URL other pods reach a home role at (its Service).
pub fn url(role: Role) -> String {
    super::names::service_url(role.name(), role.port())
}

/// Where a role keeps state. drupe-central's store, circe-home's records
/// and every circe-worker's queue are on a PersistentVolumeClaim of their
/// own ([`claimed`]): a deleted pod comes back on its claim. A droplet's
/// (its last measurements, taken again in seconds) is on an emptyDir.
fn data_dir(role: Role) -> Option<&'static str> {
    match role {
        Role::DrupeCentral => Some("/var/lib/jupiter/drupe"),
        Role::CirceHome => Some("/var/lib/jupiter/home"),
        Role::DrupeDroplet => Some("/var/lib/jupiter/droplet"),
        Role::CirceWorker => Some("/var/lib/jupiter/queue"),
        Role::WaveHome | Role::WaveWorker => None,
    }
}

/// Whether `role` keeps its data on a PersistentVolumeClaim (runs as a
/// StatefulSet with a claim template) rather than an emptyDir.
pub fn claimed(role: Role) -> bool {
    matches!(role, Role::DrupeCentral | Role::CirceHome | Role::CirceWorker)
}

/// The claim template of a [`claimed`] role: one ReadWriteOnce volume of
/// the size `options.storage` gives it, of its storage class (the
/// cluster's default when none is given).
pub fn claim_template(
    role: Role,
    options: &KubeOptions,
    labels: &BTreeMap<String, String>,
) -> PersistentVolumeClaim {
    let size = match role {
        Role::DrupeCentral => &options.storage.drupe_size,
        Role::CirceHome => &options.storage.home_size,
        _ => &options.storage.queue_size,
    };
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.to_string()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_string()]),
            storage_class_name: options.storage.class.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), Quantity(size.clone()))])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Where the app's ConfigMap is mounted.
pub const APP_MOUNT: &str = "/app";
const DATA_VOLUME: &str = "data";
pub const APP_VOLUME: &str = "app";
/// circe-home writes the egress outputs next to its data, on the same volume.
pub const OUTPUT_DIR: &str = "/var/lib/jupiter/home/output";

/// The path every role serves Prometheus text at, on its metrics port.
pub const METRICS_PATH: &str = "/metrics";

/// A plain `NAME=value` variable.
pub fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.into()),
        value_from: None,
    }
}

/// A variable from the downward API (`spec.nodeName`, `status.podIP`).
pub fn env_field(name: &str, field: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: field.to_string(),
            }),
            ..Default::default()
        }),
    }
}

/// The environment of `role` besides the role-specific variables the caller
/// adds (`JUPITER_TASK`, `JUPITER_INGRESS`, ...).
pub fn base_env(role: Role, options: &KubeOptions) -> Vec<EnvVar> {
    let mut vars = Vec::new();
    match role {
        Role::DrupeCentral => {
            vars.push(env(var::LISTEN, role.default_listen()));
            vars.push(env(var::DRUPE_DB, "/var/lib/jupiter/drupe/central.redb"));
        }
        Role::WaveHome => {
            vars.push(env(var::DRUPE_CENTRAL, url(Role::DrupeCentral)));
            vars.push(env(var::ADVERTISE, url(role)));
        }
        Role::CirceHome => {
            vars.push(env(var::APP, APP_MOUNT));
            vars.push(env(var::DATA_DIR, "/var/lib/jupiter/home"));
            vars.push(env(var::OUTPUT_DIR, OUTPUT_DIR));
        }
        Role::DrupeDroplet => {
            vars.push(env_field(var::NODE, "spec.nodeName"));
            // Droplets probe each other pod to pod; the pod IP must come
            // before the variable that expands it.
            vars.push(env_field(var::POD_IP, "status.podIP"));
            vars.push(env(
                var::ADVERTISE,
                format!("http://$({}):{}", var::POD_IP, role.port()),
            ));
            vars.push(env(var::DRUPE_CENTRAL, url(Role::DrupeCentral)));
            vars.push(env(var::DATA_DIR, "/var/lib/jupiter/droplet"));
        }
        Role::WaveWorker => vars.push(env_field(var::NODE, "spec.nodeName")),
        Role::CirceWorker => {
            vars.push(env(var::APP, APP_MOUNT));
            vars.push(env(var::QUEUE_DIR, "/var/lib/jupiter/queue"));
            vars.push(env(var::CIRCE_HOME, url(Role::CirceHome)));
            vars.push(env(var::PYTHON, "python3"));
            vars.extend(options.runner.env().into_iter().map(|(k, v)| env(k, v)));
        }
    }
    vars.push(env("RUST_LOG", options.rust_log.clone()));
    // The deployment every role names in its metrics (jupiter_role_info)
    // and spans, as on the other backends: the dashboard filters by it.
    vars.push(env(var::DEPLOYMENT, options.deployment.clone()));
    // Only when asked: a role told an endpoint that answers nothing would
    // only count dropped spans, so unset means "no export" (the roles'
    // own default), not an empty value.
    if let Some(endpoint) = options.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
        vars.push(env(var::OTLP_ENDPOINT, endpoint));
    }
    vars
}

/// The pod annotations by which a cluster's Prometheus (the usual
/// `kubernetes_sd_configs` pod job, or the community chart's default)
/// finds the role's metrics: no ServiceMonitor CRD needed.
pub fn metrics_annotations(role: Role) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("prometheus.io/scrape".to_string(), "true".to_string()),
        ("prometheus.io/port".to_string(), role.metrics_port().to_string()),
        ("prometheus.io/path".to_string(), METRICS_PATH.to_string()),
    ])
}

/// gRPC health (`grpc.health.v1`, service "") on the role's port: the same
/// check jupiterctl's other backends wait on.
fn probe(role: Role, period: i32, failures: i32) -> Probe {
    Probe {
        grpc: Some(GRPCAction {
            port: i32::from(role.port()),
            service: None,
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

fn resources(options: &KubeOptions) -> Option<ResourceRequirements> {
    let quantities = |m: &BTreeMap<String, String>| {
        (!m.is_empty()).then(|| m.iter().map(|(k, v)| (k.clone(), Quantity(v.clone()))).collect())
    };
    let requests = quantities(&options.resources.requests);
    let limits = quantities(&options.resources.limits);
    (requests.is_some() || limits.is_some()).then(|| ResourceRequirements {
        requests,
        limits,
        ..Default::default()
    })
}

/// The role's container with `env` (from [`base_env`] plus extras).
pub fn container(role: Role, options: &KubeOptions, env: Vec<EnvVar>) -> Container {
    let mut mounts = Vec::new();
    if let Some(dir) = data_dir(role) {
        mounts.push(VolumeMount {
            name: DATA_VOLUME.to_string(),
            mount_path: dir.to_string(),
            ..Default::default()
        });
    }
    if matches!(role, Role::CirceHome | Role::CirceWorker) {
        mounts.push(VolumeMount {
            name: APP_VOLUME.to_string(),
            mount_path: APP_MOUNT.to_string(),
            read_only: Some(true),
            ..Default::default()
        });
    }
    Container {
        name: role.name().to_string(),
        image: Some(role.image(&options.image_prefix, &options.image_tag)),
        image_pull_policy: Some(options.image_pull_policy.clone()),
        ports: Some(vec![
            ContainerPort {
                name: Some("grpc".to_string()),
                container_port: i32::from(role.port()),
                protocol: Some("TCP".to_string()),
                ..Default::default()
            },
            // Named, so a PodMonitor or a relabelling can pick it by name;
            // the role listens there by default (`--metrics-listen`).
            ContainerPort {
                name: Some("metrics".to_string()),
                container_port: i32::from(role.metrics_port()),
                protocol: Some("TCP".to_string()),
                ..Default::default()
            },
        ]),
        env: Some(env),
        readiness_probe: Some(probe(role, 2, 3)),
        // Generous: a busy worker must not be killed for a slow answer.
        liveness_probe: Some(Probe {
            initial_delay_seconds: Some(10),
            ..probe(role, 10, 6)
        }),
        resources: resources(options),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        ..Default::default()
    }
}

/// Gives `container` the `limits` of the node it is pinned to (the node
/// list's sizes), lowering a request above its limit to the limit (the API
/// server refuses a request over a limit).
pub fn limit(container: &mut Container, limits: &BTreeMap<String, String>) {
    let resources = container.resources.get_or_insert_with(Default::default);
    let requests = resources.requests.get_or_insert_with(Default::default);
    for (key, limit) in limits {
        let over = requests.get(key).is_some_and(|request| {
            match (
                super::names::quantity_value(&request.0),
                super::names::quantity_value(limit),
            ) {
                (Some(request), Some(limit)) => request > limit,
                _ => true,
            }
        });
        if over {
            requests.insert(key.clone(), Quantity(limit.clone()));
        }
    }
    resources
        .limits
        .get_or_insert_with(Default::default)
        .extend(limits.iter().map(|(k, v)| (k.clone(), Quantity(v.clone()))));
}

/// The data volume of `role`, if it keeps state on an emptyDir (a
/// [`claimed`] role's comes from its claim template).
pub fn data_volume(role: Role) -> Option<Volume> {
    data_dir(role).filter(|_| !claimed(role)).map(|_| Volume {
        name: DATA_VOLUME.to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    })
}
