//! Kubernetes names and labels of a deployment's objects: DNS-1123/1035
//! sanitising of app and task names, the namespace, the Service names every
//! URL points at, and the labels `down` later selects by.

use super::KubeError;
use jupiter_common::app::App;
use std::collections::BTreeMap;

pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_TASK: &str = "jupiter.io/task";
pub const LABEL_NODE: &str = "jupiter.io/node";
/// The value of `app.kubernetes.io/name` on every object.
pub const PART_OF: &str = "jupiter";
/// The value of `app.kubernetes.io/managed-by`, and the server-side apply
/// field manager.
pub const MANAGER: &str = "jupiterctl";
/// Name of the ConfigMap holding the app's files.
pub const APP_CONFIG_MAP: &str = "jupiter-app";

/// Longest deployment name: the namespace `jupiter-<deployment>` must stay a
/// 63-character DNS label.
const MAX_DEPLOYMENT: usize = 63 - "jupiter-".len();
/// Longest sanitised task name: `circe-worker-<task>` must stay a 63-character
/// DNS-1035 label (it is a Service name).
const MAX_TASK: usize = 63 - "circe-worker-".len();

/// Lower-cases and turns every character other than `[a-z0-9]` into '-',
/// then trims '-' from both ends after cutting to `max`. The result may be
/// empty when `name` has no letter or digit.
pub fn sanitize(name: &str, max: usize) -> String {
    let mapped: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .take(max)
        .collect();
    mapped.trim_matches('-').to_string()
}

/// The default deployment name of an app: its name as a DNS label, so
/// `dummy_app` deploys as `dummy-app` in namespace `jupiter-dummy-app`.
pub fn default_deployment(app: &App) -> String {
    let name = sanitize(&app.name, MAX_DEPLOYMENT);
    if name.is_empty() {
        "app".to_string()
    } else {
        name
    }
}

/// Checks a deployment name the user chose. It is not silently rewritten:
/// `down NAME` must find what `up --deployment NAME` made.
pub fn check_deployment(name: &str) -> Result<(), KubeError> {
    let why = if name.is_empty() {
        Some("it is empty".to_string())
    } else if name.len() > MAX_DEPLOYMENT {
        Some(format!("longer than {MAX_DEPLOYMENT} characters"))
    } else if sanitize(name, MAX_DEPLOYMENT) != name {
        Some(format!(
            "use lower-case letters, digits and '-', starting and ending with a letter or digit (for example {:?})",
            sanitize(name, MAX_DEPLOYMENT)
        ))
    } else {
        None
    };
    match why {
        Some(why) => Err(KubeError::InvalidDeploymentName {
            name: name.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

pub fn namespace(deployment: &str) -> String {
    format!("jupiter-{deployment}")
}

/// The label selector matching every object one deployment is made of.
pub fn selector(deployment: &str) -> String {
    format!("{LABEL_INSTANCE}={deployment},{LABEL_MANAGED_BY}={MANAGER}")
}

/// The gRPC URL of a Service in the deployment's namespace. Short names
/// resolve within the namespace, and keep the URLs the same as the Helm
/// chart's, whatever the cluster domain.
pub fn service_url(service: &str, port: u16) -> String {
    format!("http://{service}:{port}")
}

/// Task name -> the DNS-1035 name of its circe-worker (Service and
/// Deployment), checked to be one-to-one.
pub fn task_services(app: &App) -> Result<BTreeMap<String, String>, KubeError> {
    let mut by_service: BTreeMap<String, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for task in &app.tasks {
        let short = sanitize(&task.name, MAX_TASK);
        if short.is_empty() {
            return Err(KubeError::UnnameableTask {
                task: task.name.clone(),
            });
        }
        let service = format!("circe-worker-{short}");
        if let Some(first) = by_service.insert(service.clone(), task.name.clone()) {
            return Err(KubeError::TaskNameCollision {
                first,
                second: task.name.clone(),
                name: service,
            });
        }
        out.insert(task.name.clone(), service);
    }
    Ok(out)
}

/// The value of `jupiter.io/task`: the sanitised name, which is always a
/// valid label value (the task's own name may not be, e.g. `_x`).
pub fn task_label(service: &str) -> &str {
    service.trim_start_matches("circe-worker-")
}

/// The value of `jupiter.io/task` of the worker of `task`.
pub fn task_label_of(task: &str) -> String {
    sanitize(task, MAX_TASK)
}

/// The name of the StatefulSet of a task's worker moved to `node` (after
/// a node loss): the Service's name with a digest of the node's, so that
/// the new StatefulSet never meets the old one's claim, whatever the
/// process that moves it.
pub fn moved_workload(service: &str, node: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, node.as_bytes());
    let hex: String = digest.as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect();
    // A label of at most 63, with "-" and 8 hex digits after it.
    let head = service.get(..54).unwrap_or(service).trim_end_matches('-');
    format!("{head}-{hex}")
}

/// Whether `name` is a DNS subdomain (Secret and StorageClass names):
/// dot-separated labels of lower-case letters, digits and '-', at most 253.
pub fn is_subdomain(name: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    name.len() <= 253 && name.split('.').all(label_ok)
}

/// A flag naming an object (`--storage-class`): a DNS subdomain.
pub fn check_subdomain(flag: &'static str, value: &str) -> Result<(), KubeError> {
    if is_subdomain(value) {
        return Ok(());
    }
    Err(KubeError::InvalidFlag {
        flag,
        value: value.to_string(),
        why: "use lower-case letters, digits, '-' and '.' (a DNS subdomain)",
    })
}

/// A size flag (`--queue-size 2Gi`): a Kubernetes quantity of bytes, a
/// number with an optional binary (Ki..Ei) or decimal (k..E) suffix.
pub fn check_quantity(flag: &'static str, value: &str) -> Result<(), KubeError> {
    if !value.ends_with('m') && quantity_value(value).is_some() {
        return Ok(());
    }
    Err(KubeError::InvalidFlag {
        flag,
        value: value.to_string(),
        why: "give a size such as 512Mi, 1Gi or 10G",
    })
}

/// A Kubernetes quantity's value (`50m` is 0.05, `64Mi` 67108864), None
/// when it is not one: a decimal number with an optional suffix.
pub fn quantity_value(value: &str) -> Option<f64> {
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let number_ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
        && digits.bytes().any(|b| b.is_ascii_digit());
    if !number_ok {
        return None;
    }
    let factor = match &value[digits.len()..] {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    digits.parse::<f64>().ok().map(|n| n * factor)
}

/// Node names are DNS subdomains of up to 253 characters; labels take 63.
pub fn check_label_value(what: &'static str, value: &str) -> Result<(), KubeError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(KubeError::InvalidLabelValue {
            what,
            value: value.to_string(),
        })
    }
}

/// The labels of every object of `deployment` with `component`.
pub fn labels(deployment: &str, component: &str) -> BTreeMap<String, String> {
    [
        (LABEL_NAME, PART_OF),
        (LABEL_COMPONENT, component),
        (LABEL_INSTANCE, deployment),
        (LABEL_MANAGED_BY, MANAGER),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_makes_dns_labels() {
        assert_eq!(sanitize("Dummy_App", 55), "dummy-app");
        assert_eq!(sanitize("-a.b-", 55), "a-b");
        assert_eq!(sanitize("___", 55), "");
        assert_eq!(sanitize("abcdef", 3), "abc");
        assert_eq!(sanitize("ab-cd", 3), "ab");
    }

    #[test]
    fn explicit_deployment_names_are_checked_not_rewritten() {
        assert!(check_deployment("demo-1").is_ok());
        assert!(check_deployment("Demo").is_err());
        assert!(check_deployment("").is_err());
        assert!(check_deployment(&"a".repeat(56)).is_err());
    }

    #[test]
    fn label_values() {
        assert!(check_label_value("node", "kind-worker2").is_ok());
        assert!(check_label_value("node", "-x").is_err());
        assert!(check_label_value("node", &"a".repeat(64)).is_err());
    }

    #[test]
    fn quantities_are_read_as_kubernetes_writes_them() {
        assert_eq!(quantity_value("50m"), Some(0.05));
        assert_eq!(quantity_value("64Mi"), Some(64.0 * 1024.0 * 1024.0));
        assert_eq!(quantity_value("1.5G"), Some(1.5e9));
        assert_eq!(quantity_value("2"), Some(2.0));
        for bad in ["", "Gi", "1Gb", "1..5", "-1", "lots"] {
            assert_eq!(quantity_value(bad), None, "{bad}");
        }
        assert!(check_quantity("--queue-size", "2Gi").is_ok());
        // A size in milli-bytes is no size.
        assert!(check_quantity("--queue-size", "500m").is_err());
    }

    #[test]
    fn a_moved_worker_is_named_by_its_service_and_new_node() {
        let a = moved_workload("circe-worker-task3", "kind-b");
        assert!(
            a.starts_with("circe-worker-task3-") && a.len() == "circe-worker-task3-".len() + 8,
            "{a}"
        );
        assert_eq!(
            a,
            moved_workload("circe-worker-task3", "kind-b"),
            "the same in every process"
        );
        assert_ne!(a, moved_workload("circe-worker-task3", "kind-c"));
        let long = moved_workload(&format!("circe-worker-{}", "t".repeat(50)), "n");
        assert!(long.len() <= 63, "{long}");
    }
}
