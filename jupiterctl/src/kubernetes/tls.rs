//! Mutual TLS on Kubernetes: one Secret holds the deployment's CA and every
//! role's certificate and key, and each pod mounts only its own three keys
//! of it at [`MOUNT`].
//!
//! The Secret's keys: `ca.pem`, and per role id `<id>.pem` and
//! `<id>-key.pem`. The ids are the objects' names: `drupe-central`,
//! `wave-home`, `circe-home`, `drupe-droplet`, `wave-worker` (one identity
//! per DaemonSet: its pods share one template, so they cannot mount
//! different keys), and `circe-worker-<task>` (the worker's Service name,
//! the task's name made a DNS label, so always a valid Secret key).
//!
//! `up --tls` makes the certificates ([`crate::tls::make`]) and the Secret
//! [`SECRET`]; `render --tls-secret NAME` and the chart's
//! `tls.existingSecret` mount a Secret made beforehand with the same keys.

use super::names;
use super::{KubeError, KubeOptions, Object};
use crate::tls::Member;
use jupiter_common::app::App;
use jupiter_common::env as var;
use jupiter_common::role::Role;
use k8s_openapi::api::core::v1::{
    ExecAction, KeyToPath, PodSpec, Probe, Secret, SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// The Secret `up --tls` makes in the deployment's namespace.
pub const SECRET: &str = "jupiter-tls";
/// Where every pod finds its `ca.pem`, `cert.pem` and `key.pem`.
pub const MOUNT: &str = "/etc/jupiter/tls";
/// The pod volume that mounts the Secret.
pub const VOLUME: &str = "tls";
/// The CA's key in the Secret.
pub const CA_KEY: &str = "ca.pem";
/// Only the owner (the container's user: the images run as root) reads
/// the files; a private key readable by all would be no better than none.
pub const DEFAULT_MODE: i32 = 0o400;
/// Pod template annotation of `up --tls`: a digest of the Secret, so that
/// certificates made again by a second `up` roll every pod onto them (a
/// role reads its files once, at start).
pub const CHECKSUM_ANNOTATION: &str = "jupiter.io/tls-checksum";

/// How a deployment gets its certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeTls {
    /// `up --tls`: jupiterctl makes a CA and every certificate into `dir`
    /// (the user's `ca.pem`, `client.pem`, `client-key.pem` stay there;
    /// see [`dir`]) and applies them as Secret [`SECRET`] before any pod.
    Make { dir: PathBuf },
    /// `render --tls-secret NAME`: the pods mount Secret `secret`, which
    /// someone made in the namespace beforehand with the same keys.
    Existing { secret: String },
}

impl KubeTls {
    /// The Secret the pods mount.
    pub fn secret(&self) -> &str {
        match self {
            KubeTls::Make { .. } => SECRET,
            KubeTls::Existing { secret } => secret,
        }
    }
}

/// Where `up --tls` keeps a deployment's certificates: beside the state
/// file, `<state folder>/<deployment>/tls/`, so that the user's files
/// outlive the `up` process (`status`, `submit` and grpcurl need them).
pub fn dir(deployment: &str) -> Result<PathBuf, KubeError> {
    crate::tls::beside_state(deployment).map_err(KubeError::TlsDir)
}

/// The keys of role `id` in the Secret: its certificate and its key.
pub fn keys(id: &str) -> (String, String) {
    (format!("{id}.pem"), format!("{id}-key.pem"))
}

/// Every role of the deployment of `app` that gets a certificate, with the
/// names its Service answers at in namespace `ns`.
pub fn members(app: &App, ns: &str) -> Result<Vec<Member>, KubeError> {
    let mut members = Vec::new();
    for role in [
        Role::DrupeCentral,
        Role::WaveHome,
        Role::CirceHome,
        Role::DrupeDroplet,
        Role::WaveWorker,
    ] {
        members.push(Member {
            names: service_names(role.name(), ns),
            ..Member::new(role, None)
        });
    }
    for service in names::task_services(app)?.values() {
        // `of` is the sanitised task, so the id is the Service's name.
        members.push(Member {
            names: service_names(service, ns),
            ..Member::new(Role::CirceWorker, Some(names::task_label(service)))
        });
    }
    Ok(members)
}

/// The DNS names a Service answers at inside the cluster.
fn service_names(service: &str, ns: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{ns}"),
        format!("{service}.{ns}.svc"),
        format!("{service}.{ns}.svc.cluster.local"),
    ]
}

/// Refuses a deployment whose Secret keys would be ambiguous: tasks `x`
/// and `x-key` would both have a `circe-worker-x-key.pem`.
pub fn check_keys(app: &App) -> Result<(), KubeError> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let services = names::task_services(app)?;
    let ids = [
        Role::DrupeCentral,
        Role::WaveHome,
        Role::CirceHome,
        Role::DrupeDroplet,
        Role::WaveWorker,
    ]
    .map(|r| r.name().to_string())
    .into_iter()
    .chain(services.into_values());
    for id in ids {
        let (cert, key) = keys(&id);
        for k in [cert, key] {
            if let Some(first) = seen.insert(k.clone(), id.clone()) {
                return Err(KubeError::TlsKeyCollision {
                    first,
                    second: id,
                    key: k,
                });
            }
        }
    }
    Ok(())
}

/// A Secret name the user gave: a DNS subdomain.
pub fn check_secret(name: &str) -> Result<(), KubeError> {
    if names::is_subdomain(name) {
        Ok(())
    } else {
        Err(KubeError::InvalidSecretName {
            name: name.to_string(),
        })
    }
}

/// The Secret of `members`' certificates, as [`crate::tls::make`] wrote
/// them under `dir`, in namespace `ns`.
pub fn secret(dir: &Path, members: &[Member], deployment: &str, ns: &str) -> Result<Secret, KubeError> {
    let read = |path: PathBuf| {
        std::fs::read(&path)
            .map(ByteString)
            .map_err(|source| KubeError::TlsRead { path, source })
    };
    let mut data = BTreeMap::new();
    data.insert(CA_KEY.to_string(), read(dir.join("ca.pem"))?);
    for member in members {
        let id = member.id();
        let files = crate::tls::role_files(dir, member.role, member.of.as_deref());
        let (cert, key) = keys(&id);
        data.insert(cert, read(files.cert)?);
        data.insert(key, read(files.key)?);
    }
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(SECRET.to_string()),
            namespace: Some(ns.to_string()),
            labels: Some(names::labels(deployment, "tls")),
            ..Default::default()
        },
        type_: Some("Opaque".to_string()),
        data: Some(data),
        ..Default::default()
    })
}

/// A digest of the Secret's data, for [`CHECKSUM_ANNOTATION`]: it changes
/// whenever a certificate does (each `up --tls` makes a new CA).
pub fn checksum(secret: &Secret) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for (key, value) in secret.data.iter().flatten() {
        key.hash(&mut hasher);
        value.0.hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

/// Puts `checksum` on the pod template of every workload among `objects`.
pub fn annotate(objects: &mut [Object], checksum: &str) {
    for object in objects {
        let template = match object {
            Object::Deployment(d) => d.spec.as_mut().map(|s| &mut s.template),
            Object::StatefulSet(d) => d.spec.as_mut().map(|s| &mut s.template),
            Object::DaemonSet(d) => d.spec.as_mut().map(|s| &mut s.template),
            _ => None,
        };
        if let Some(template) = template {
            template
                .metadata
                .get_or_insert_with(Default::default)
                .annotations
                .get_or_insert_with(Default::default)
                .insert(CHECKSUM_ANNOTATION.to_string(), checksum.to_string());
        }
    }
}

/// Gives the pod of role `id` its three keys of the Secret (read-only at
/// [`MOUNT`]), the `JUPITER_TLS_*` variables naming them, and probes that
/// still work once the role refuses plaintext.
pub fn mount(pod: &mut PodSpec, options: &KubeOptions, id: &str) {
    let Some(tls) = &options.tls else {
        return;
    };
    let (cert, key) = keys(id);
    let item = |key: &str, path: &str| KeyToPath {
        key: key.to_string(),
        path: path.to_string(),
        mode: None,
    };
    pod.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: VOLUME.to_string(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(tls.secret().to_string()),
            // Only its own keys: no pod holds another role's private key.
            items: Some(vec![
                item(CA_KEY, "ca.pem"),
                item(&cert, "cert.pem"),
                item(&key, "key.pem"),
            ]),
            default_mode: Some(DEFAULT_MODE),
            optional: None,
        }),
        ..Default::default()
    });
    for container in &mut pod.containers {
        container
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .push(VolumeMount {
                name: VOLUME.to_string(),
                mount_path: MOUNT.to_string(),
                read_only: Some(true),
                ..Default::default()
            });
        let env = container.env.get_or_insert_with(Vec::new);
        env.push(super::roles::env(var::TLS_CA, format!("{MOUNT}/ca.pem")));
        env.push(super::roles::env(var::TLS_CERT, format!("{MOUNT}/cert.pem")));
        env.push(super::roles::env(var::TLS_KEY, format!("{MOUNT}/key.pem")));
        // The kubelet's gRPC probe speaks plaintext and presents no client
        // certificate, so a role that speaks only mutual TLS would fail it
        // and never be Ready. The role's own binary asks instead (`ROLE
        // probe`): the same health check, over TLS with the pod's own
        // certificate, from inside the pod.
        for probe in [&mut container.readiness_probe, &mut container.liveness_probe]
            .into_iter()
            .flatten()
        {
            exec_probe(probe);
        }
    }
}

/// The command of [`exec_probe`]: the image's role binary, asked for the
/// health of the role it serves (see `jupiter_common::role::probe`).
pub const PROBE_COMMAND: [&str; 2] = ["/usr/local/bin/jupiter-role", "probe"];
/// Seconds a probe may take: a TLS handshake and one call, from a process
/// started for it.
const PROBE_TIMEOUT: i32 = 5;

/// `probe` run as the role binary's own health check, over mutual TLS.
fn exec_probe(probe: &mut Probe) {
    if probe.grpc.take().is_some() {
        probe.exec = Some(ExecAction {
            command: Some(PROBE_COMMAND.iter().map(|s| s.to_string()).collect()),
        });
        probe.timeout_seconds = Some(PROBE_TIMEOUT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_and_checksums() {
        assert!(check_secret("jupiter-tls").is_ok() && check_secret("a.b-c").is_ok());
        for bad in ["", "Tls", "a_b", "-a", "a..b", &"a".repeat(254)] {
            assert!(check_secret(bad).is_err(), "{bad:?}");
        }
        let mut secret = Secret {
            data: Some(BTreeMap::from([(
                "ca.pem".to_string(),
                ByteString(b"one".to_vec()),
            )])),
            ..Default::default()
        };
        let first = checksum(&secret);
        assert_eq!(first, checksum(&secret.clone()), "stable");
        secret.data = Some(BTreeMap::from([(
            "ca.pem".to_string(),
            ByteString(b"two".to_vec()),
        )]));
        assert_ne!(first, checksum(&secret), "a new certificate rolls the pods");
    }
}
