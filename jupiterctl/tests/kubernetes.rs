//! The Kubernetes backend against a stand-in API server (support/apiserver.rs):
//! the requests asserted here are exactly the HTTP jupiterctl would send.

#[path = "support/apiserver.rs"]
mod apiserver;
#[path = "support/pod_tls.rs"]
mod pod_tls;

use apiserver::{node, ApiServer, Behaviour, Request, NODES};
use clap::Parser;
use jupiter_common::app::App;
use jupiter_common::role::Role;
use jupiterctl::config::{BackendConfig, DeployArgs, DeployConfig, RenderArgs};
use jupiterctl::deployment::{Deployment, DeploymentState};
use jupiterctl::kubernetes::{self, KubeConfig, KubeError, KubeOptions, KubeTls, Kubernetes, MAX_APP_BYTES};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const NS: &str = "jupiter-dummy-app";
const SELECTOR: &str = "app.kubernetes.io/instance=dummy-app,app.kubernetes.io/managed-by=jupiterctl";

fn dummy_app() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/dummy_app")
}

/// A mapping file putting the dummy app's tasks on known nodes.
fn mapping_file(dir: &Path) -> (PathBuf, BTreeMap<String, String>) {
    let mapping: BTreeMap<String, String> = (0..7)
        .map(|i| (format!("task{i}"), NODES[i % 3].to_string()))
        .collect();
    let path = dir.join("mapping.yaml");
    std::fs::write(&path, serde_yaml::to_string(&mapping).unwrap()).unwrap();
    (path, mapping)
}

/// `render`'s flags for the dummy app, plus `extra`.
fn render_args(extra: &[&str]) -> RenderArgs {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: RenderArgs,
    }
    let app = dummy_app();
    let mut argv = vec!["jupiterctl", app.to_str().unwrap()];
    argv.extend_from_slice(extra);
    Cli::parse_from(argv).args
}

/// `jupiterctl render` of the dummy app with `extra` flags.
fn render_cmd(extra: &[&str]) -> Result<String, jupiterctl::config::ConfigError> {
    render_args(extra).render()
}

/// `up --backend kubernetes` of the dummy app with `extra` flags, against
/// the stand-in: the same flags, checks and steps as the binary's `up`.
async fn up(server: &ApiServer, extra: &[&str]) -> Deployment {
    up_with(server, extra, |_| {}).await
}

/// [`up`], with the backend's configuration changed by `edit` first.
async fn up_with(server: &ApiServer, extra: &[&str], edit: impl FnOnce(&mut KubeConfig)) -> Deployment {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: DeployArgs,
    }
    let app = dummy_app();
    let mut argv = vec!["jupiterctl", app.to_str().unwrap(), "--backend", "kubernetes"];
    // TLS is the default on Kubernetes; the tests of it ask for it.
    if !extra.contains(&"--tls") {
        argv.push("--no-tls");
    }
    argv.extend_from_slice(extra);
    let config = DeployConfig::try_from(&Cli::parse_from(argv).args).expect("flags");
    let BackendConfig::Kubernetes(mut kube) = config.backend.clone() else {
        panic!("a Kubernetes config");
    };
    edit(&mut kube);
    let backend = Kubernetes::with_client(server.client(), *kube);
    Deployment::up(Box::new(backend), &config.app, &config.placement)
        .await
        .expect("up")
}

fn applies(requests: &[Request]) -> Vec<&Request> {
    requests.iter().filter(|r| r.method == "PATCH").collect()
}

fn env_of(object: &Value) -> BTreeMap<String, Value> {
    object["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

fn env_value(object: &Value, name: &str) -> Option<String> {
    env_of(object)
        .get(name)
        .and_then(|e| e["value"].as_str().map(str::to_string))
}

#[tokio::test]
async fn up_applies_every_object_of_the_dummy_app_and_waits_until_ready() {
    let dir = tempfile::tempdir().unwrap();
    let (mapping_path, mapping) = mapping_file(dir.path());
    let server = ApiServer::new(Behaviour {
        ready_after_reads: 1,
        ..Default::default()
    });
    let deployment = up(&server, &["--mapping", mapping_path.to_str().unwrap()]).await;
    assert_eq!(deployment.summary.mapping, mapping);
    assert_eq!(deployment.summary.scheduler, "static");
    let requests = server.requests();

    // Nodes were read from the cluster first.
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/api/v1/nodes");

    // Every object by server-side apply, forced, as jupiterctl; nothing created by POST.
    let applied = applies(&requests);
    assert!(requests
        .iter()
        .all(|r| r.method != "POST" && r.method != "PUT" && r.method != "DELETE"));
    for r in &applied {
        assert_eq!(
            r.query.get("fieldManager").map(String::as_str),
            Some("jupiterctl"),
            "{}",
            r.path
        );
        assert_eq!(
            r.query.get("force").map(String::as_str),
            Some("true"),
            "{}",
            r.path
        );
        assert_eq!(r.content_type.as_deref(), Some("application/apply-patch+yaml"));
    }

    let mut expected: Vec<(String, String)> = vec![
        ("/api/v1/namespaces/jupiter-dummy-app".into(), "Namespace".into()),
        (
            format!("/api/v1/namespaces/{NS}/configmaps/jupiter-app"),
            "ConfigMap".into(),
        ),
    ];
    for (role, plural, kind) in [
        ("drupe-central", "statefulsets", "StatefulSet"),
        ("wave-home", "deployments", "Deployment"),
        ("circe-home", "statefulsets", "StatefulSet"),
    ] {
        expected.push((
            format!("/apis/apps/v1/namespaces/{NS}/{plural}/{role}"),
            kind.into(),
        ));
        expected.push((
            format!("/api/v1/namespaces/{NS}/services/{role}"),
            "Service".into(),
        ));
    }
    for role in ["drupe-droplet", "wave-worker"] {
        expected.push((
            format!("/apis/apps/v1/namespaces/{NS}/daemonsets/{role}"),
            "DaemonSet".into(),
        ));
        expected.push((
            format!("/api/v1/namespaces/{NS}/services/{role}"),
            "Service".into(),
        ));
    }
    for i in 0..7 {
        expected.push((
            format!("/apis/apps/v1/namespaces/{NS}/statefulsets/circe-worker-task{i}"),
            "StatefulSet".into(),
        ));
        expected.push((
            format!("/api/v1/namespaces/{NS}/services/circe-worker-task{i}"),
            "Service".into(),
        ));
    }
    let sent: Vec<(String, String)> = applied
        .iter()
        .map(|r| {
            (
                r.path.clone(),
                r.body.as_ref().unwrap()["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(sent, expected, "objects applied, in order");

    let bodies: Vec<&Value> = applied.iter().map(|r| r.body.as_ref().unwrap()).collect();
    every_object_is_labelled(&applied, &bodies);
    workloads_have_image_port_probes_and_services(&bodies);
    every_pod_can_be_scraped(&bodies);
    roles_know_where_the_others_are(&bodies);
    workers_are_pinned_and_wired(&bodies, &mapping);
    the_app_ships_in_a_config_map(&bodies);
    state_is_on_claims(&bodies, None, "1Gi");

    // The wait read each workload's status until it was ready (once not
    // ready, once ready), and nothing else.
    let reads = server.status_reads.lock().unwrap().clone();
    assert_eq!(reads.len(), 3 + 2 + 7, "{reads:?}");
    assert!(reads.values().all(|&n| n == 2), "{reads:?}");
    assert_eq!(requests.len(), 1 + expected.len() + 2 * reads.len());
}

/// The applied object of `kind` called `name`.
fn by_name<'a>(bodies: &[&'a Value], kind: &str, name: &str) -> &'a Value {
    bodies
        .iter()
        .find(|b| b["kind"] == kind && b["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} not applied"))
}

/// Labels on every object, namespaces, names, pod labels under selectors.
fn every_object_is_labelled(applied: &[&Request], bodies: &[&Value]) {
    // Labels on every object; namespace on every namespaced object; the
    // body's name matches the URL's.
    for (r, body) in applied.iter().zip(bodies.iter()) {
        let labels = &body["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/name"], "jupiter", "{}", r.path);
        assert_eq!(labels["app.kubernetes.io/instance"], "dummy-app", "{}", r.path);
        assert_eq!(labels["app.kubernetes.io/managed-by"], "jupiterctl", "{}", r.path);
        assert!(labels["app.kubernetes.io/component"].is_string(), "{}", r.path);
        assert!(r.path.ends_with(body["metadata"]["name"].as_str().unwrap()));
        if body["kind"] != "Namespace" {
            assert_eq!(body["metadata"]["namespace"], NS, "{}", r.path);
        }
        if let Some(template) = body["spec"]["template"].as_object() {
            // Pods carry the labels too, and the selector picks them.
            let pod_labels = template["metadata"]["labels"].as_object().unwrap();
            for (k, v) in body["spec"]["selector"]["matchLabels"].as_object().unwrap() {
                assert_eq!(pod_labels.get(k), Some(v), "{}: selector {k}", r.path);
            }
            assert_eq!(pod_labels["app.kubernetes.io/managed-by"], "jupiterctl");
        }
    }
}

/// Every workload: its image, gRPC port and probes, and its Service.
fn workloads_have_image_port_probes_and_services(bodies: &[&Value]) {
    // Every workload: its image, gRPC port and gRPC probes on that port.
    let ports = [
        ("drupe-central", 7100),
        ("wave-home", 7200),
        ("circe-home", 7300),
        ("drupe-droplet", 7101),
        ("wave-worker", 7201),
    ];
    for (role, port) in ports {
        let kind = if role.starts_with("drupe-d") || role == "wave-worker" {
            "DaemonSet"
        } else if role == "wave-home" {
            "Deployment"
        } else {
            "StatefulSet"
        };
        let c = &by_name(bodies, kind, role)["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], format!("jupiter/{role}:dev"));
        assert_eq!(c["ports"][0]["containerPort"], port);
        assert_eq!(c["readinessProbe"]["grpc"]["port"], port, "{role}");
        assert_eq!(c["livenessProbe"]["grpc"]["port"], port, "{role}");
        // No --otlp-endpoint given: no OTLP variable (the roles then export
        // no traces), rather than an empty one.
        assert_eq!(
            env_value(by_name(bodies, kind, role), "OTEL_EXPORTER_OTLP_ENDPOINT"),
            None
        );
        // Every gRPC endpoint has its Service, on the same named port.
        let svc = &by_name(bodies, "Service", role)["spec"];
        assert_eq!(svc["ports"][0]["port"], port, "{role}");
        assert_eq!(svc["ports"][0]["name"], "grpc", "{role}");
        assert_eq!(svc["ports"][0]["targetPort"], "grpc", "{role}");
        assert_eq!(svc["ports"][0]["appProtocol"], "kubernetes.io/h2c", "{role}");
        if kind == "DaemonSet" {
            // Headless, so each node's pod has its own DNS record, and it
            // selects exactly the DaemonSet's pods.
            assert_eq!(svc["clusterIP"], "None", "{role}");
            let ds = &by_name(bodies, kind, role)["spec"];
            assert_eq!(svc["selector"], ds["selector"]["matchLabels"], "{role}");
            let pod_labels = ds["template"]["metadata"]["labels"].as_object().unwrap();
            for (k, v) in svc["selector"].as_object().unwrap() {
                assert_eq!(pod_labels.get(k), Some(v), "{role}: selector {k}");
            }
        } else {
            assert!(svc["clusterIP"].is_null(), "{role}: a load-balancing ClusterIP");
        }
    }
}

/// Every workload (home roles, per-node roles, each task's worker): a
/// container port named `metrics` at its role's metrics port, the pod
/// annotations that point Prometheus' pod discovery at it, and the
/// deployment's name for its metrics' labels.
fn every_pod_can_be_scraped(bodies: &[&Value]) {
    let workloads: Vec<&&Value> = bodies
        .iter()
        .filter(|b| {
            ["Deployment", "StatefulSet", "DaemonSet"].contains(&b["kind"].as_str().unwrap_or_default())
        })
        .collect();
    assert_eq!(workloads.len(), 3 + 2 + 7);
    for w in workloads {
        let component = w["metadata"]["labels"]["app.kubernetes.io/component"]
            .as_str()
            .unwrap();
        let role = jupiter_common::role::Role::ALL
            .into_iter()
            .find(|r| r.name() == component)
            .unwrap();
        let port = role.metrics_port();
        let name = w["metadata"]["name"].as_str().unwrap();
        let template = &w["spec"]["template"];
        assert_eq!(
            template["metadata"]["annotations"],
            json!({
                "prometheus.io/scrape": "true",
                "prometheus.io/port": port.to_string(),
                "prometheus.io/path": "/metrics",
            }),
            "{name}"
        );
        // Named in its metrics and spans, as on the other backends.
        assert_eq!(
            env_value(w, "JUPITER_DEPLOYMENT").as_deref(),
            Some("dummy-app"),
            "{name}"
        );
        let ports = template["spec"]["containers"][0]["ports"].as_array().unwrap();
        assert!(
            ports.contains(&json!({"name": "metrics", "containerPort": port, "protocol": "TCP"})),
            "{name}: {ports:?}"
        );
    }
}

#[tokio::test]
async fn an_otlp_endpoint_reaches_every_role_container() {
    let dir = tempfile::tempdir().unwrap();
    let (mapping_path, _) = mapping_file(dir.path());
    let server = ApiServer::new(Behaviour {
        ready_after_reads: 1,
        ..Default::default()
    });
    let endpoint = "http://tempo.monitoring:4317";
    up(
        &server,
        &[
            "--mapping",
            mapping_path.to_str().unwrap(),
            "--otlp-endpoint",
            endpoint,
        ],
    )
    .await;
    let requests = server.requests();
    let bodies: Vec<&Value> = applies(&requests)
        .into_iter()
        .map(|r| r.body.as_ref().unwrap())
        .filter(|b| {
            ["Deployment", "StatefulSet", "DaemonSet"].contains(&b["kind"].as_str().unwrap_or_default())
        })
        .collect();
    assert_eq!(bodies.len(), 3 + 2 + 7);
    for body in bodies {
        assert_eq!(
            env_value(body, "OTEL_EXPORTER_OTLP_ENDPOINT").as_deref(),
            Some(endpoint),
            "{}",
            body["metadata"]["name"]
        );
    }
}

/// circe-home's ingress and the droplets' advertised pod IP.
fn roles_know_where_the_others_are(bodies: &[&Value]) {
    // circe-home feeds the ingress task through its Service.
    assert_eq!(
        env_value(by_name(bodies, "StatefulSet", "circe-home"), "JUPITER_INGRESS").as_deref(),
        Some("task0=http://circe-worker-task0:7301")
    );
    // Droplets advertise their pod IP, from the downward API.
    let droplet = env_of(by_name(bodies, "DaemonSet", "drupe-droplet"));
    assert_eq!(
        droplet["JUPITER_POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"],
        "status.podIP"
    );
    assert_eq!(
        droplet["JUPITER_NODE"]["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );
    assert_eq!(
        droplet["JUPITER_ADVERTISE"]["value"],
        "http://$(JUPITER_POD_IP):7101"
    );
}

/// Every circe-worker pinned to its node, labelled, pointed at its children.
fn workers_are_pinned_and_wired(bodies: &[&Value], mapping: &BTreeMap<String, String>) {
    // Every circe-worker pinned to its mapped node, labelled with task and
    // node, with its children's Service URLs.
    let app = App::load(&dummy_app()).unwrap();
    for task in &app.tasks {
        let name = format!("circe-worker-{}", task.name);
        let d = by_name(bodies, "StatefulSet", &name);
        let node = &mapping[&task.name];
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(
            d["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/hostname"],
            node.as_str()
        );
        assert_eq!(d["metadata"]["labels"]["jupiter.io/node"], node.as_str());
        assert_eq!(d["metadata"]["labels"]["jupiter.io/task"], task.name.as_str());
        assert_eq!(
            by_name(bodies, "Service", &name)["metadata"]["labels"]["jupiter.io/task"],
            task.name.as_str()
        );
        assert_eq!(env_value(d, "JUPITER_TASK").as_deref(), Some(task.name.as_str()));
        assert_eq!(env_value(d, "JUPITER_NODE").as_deref(), Some(node.as_str()));
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["readinessProbe"]["grpc"]["port"], 7301);
        let children: Vec<String> = task
            .children
            .iter()
            .map(|c| format!("{c}=http://circe-worker-{c}:7301"))
            .collect();
        assert_eq!(
            env_value(d, "JUPITER_CHILDREN"),
            (!children.is_empty()).then(|| children.join(",")),
            "{name}"
        );
    }
    assert_eq!(
        env_value(by_name(bodies, "StatefulSet", "circe-worker-task0"), "JUPITER_CHILDREN").as_deref(),
        Some("task1=http://circe-worker-task1:7301,task3=http://circe-worker-task3:7301,task2=http://circe-worker-task2:7301,task4=http://circe-worker-task4:7301")
    );
}

/// drupe-central's store, circe-home's records and every worker's queue on
/// a claim of their own (StatefulSets), of `class` (None: the cluster's
/// default) and, for the queues, `queue_size`; the claims go with their
/// StatefulSet, not with a pod.
fn state_is_on_claims(bodies: &[&Value], class: Option<&str>, queue_size: &str) {
    let mut claimed = vec![
        ("drupe-central", "/var/lib/jupiter/drupe", "256Mi".to_string()),
        ("circe-home", "/var/lib/jupiter/home", "1Gi".to_string()),
    ];
    for i in 0..7 {
        claimed.push(("", "/var/lib/jupiter/queue", format!("task{i}")));
    }
    for (name, dir, size) in claimed {
        let (name, size) = if name.is_empty() {
            (format!("circe-worker-{size}"), queue_size.to_string())
        } else {
            (name.to_string(), size)
        };
        let set = &by_name(bodies, "StatefulSet", &name)["spec"];
        assert_eq!(set["replicas"], 1, "{name}");
        assert_eq!(set["serviceName"], name.as_str());
        let claim = &set["volumeClaimTemplates"][0];
        assert_eq!(claim["metadata"]["name"], "data", "{name}");
        assert_eq!(
            claim["metadata"]["labels"]["app.kubernetes.io/instance"],
            "dummy-app"
        );
        assert_eq!(claim["spec"]["accessModes"], json!(["ReadWriteOnce"]));
        assert_eq!(
            claim["spec"]["resources"]["requests"]["storage"],
            size.as_str(),
            "{name}"
        );
        assert_eq!(claim["spec"]["storageClassName"].as_str(), class, "{name}");
        assert_eq!(
            set["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Delete", "whenScaled": "Retain"})
        );
        let pod = &set["template"]["spec"];
        let mount = pod["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "data")
            .unwrap_or_else(|| panic!("{name} mounts its claim"));
        assert_eq!(mount["mountPath"], dir);
        let volumes = pod["volumes"].as_array().cloned().unwrap_or_default();
        assert!(
            !volumes.iter().any(|v| v["name"] == "data"),
            "{name}: the claim, not an emptyDir: {volumes:?}"
        );
    }
    // A droplet's measurements are taken again in seconds: an emptyDir.
    let droplet = &by_name(bodies, "DaemonSet", "drupe-droplet")["spec"]["template"]["spec"];
    assert!(droplet["volumes"][0]["emptyDir"].is_object(), "{droplet}");
}

#[test]
fn storage_flags_set_the_claims_and_bad_ones_name_the_flag() {
    let yaml = render_cmd(&["--storage-class", "fast-ssd", "--queue-size", "2Gi"]).unwrap();
    let docs: Vec<Value> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml::from_str(d).unwrap())
        .collect();
    let bodies: Vec<&Value> = docs.iter().collect();
    state_is_on_claims(&bodies, Some("fast-ssd"), "2Gi");
    for (flag, value) in [
        ("--queue-size", "lots"),
        ("--home-size", "1Gb"),
        ("--drupe-size", ""),
        ("--storage-class", "Fast_SSD"),
    ] {
        let err = render_cmd(&[flag, value]).unwrap_err().to_string();
        assert!(err.contains(flag) && err.contains(&format!("{value:?}")), "{err}");
    }
}

/// The app's files, without sample_input/, mounted back at their paths.
fn the_app_ships_in_a_config_map(bodies: &[&Value]) {
    // The app's files, without sample_input/, back at their paths under /app.
    let cm = by_name(bodies, "ConfigMap", "jupiter-app");
    let keys: BTreeSet<&str> = cm["data"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(keys.contains("configuration.txt"));
    assert!(keys.contains("scripts_.task0.py"));
    assert!(!keys.iter().any(|k| k.contains("sample")), "{keys:?}");
    let volumes =
        &by_name(bodies, "StatefulSet", "circe-worker-task3")["spec"]["template"]["spec"]["volumes"];
    let app_volume = volumes
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "app")
        .unwrap();
    assert_eq!(app_volume["configMap"]["name"], "jupiter-app");
    assert!(app_volume["configMap"]["items"]
        .as_array()
        .unwrap()
        .contains(&json!({"key": "scripts_.task3.py", "path": "scripts/task3.py", "mode": 0o644})));
}

#[tokio::test]
async fn a_second_up_sends_the_same_applies() {
    let server = ApiServer::new(Behaviour::default());
    let flags = ["--scheduler", "random", "--seed", "7", "--ready-timeout", "0"];
    let first = up(&server, &flags).await.summary;
    let after_first = server.requests();
    let second = up(&server, &flags).await.summary;
    let all = server.requests();
    let (a, b) = all.split_at(after_first.len());
    assert_eq!(first.mapping, second.mapping, "the seeded mapping is stable");
    assert!(
        first.mapping.values().all(|n| NODES.contains(&n.as_str())),
        "only usable nodes"
    );
    let key = |r: &Request| (r.method.clone(), r.path.clone(), r.query.clone(), r.body.clone());
    assert_eq!(
        a.iter().map(key).collect::<Vec<_>>(),
        b.iter().map(key).collect::<Vec<_>>()
    );
    assert!(all
        .iter()
        .all(|r| r.method == "PATCH" || (r.method == "GET" && r.path == "/api/v1/nodes")));
    // --ready-timeout 0: no status reads.
    assert!(server.status_reads.lock().unwrap().is_empty());
}

#[tokio::test]
async fn up_names_what_is_not_ready_when_the_wait_times_out() {
    let server = ApiServer::new(Behaviour {
        ready_after_reads: usize::MAX,
        ..Default::default()
    });
    let app = App::load(&dummy_app()).unwrap();
    let mut options = KubeOptions::for_app(&app);
    options.mapping = app
        .tasks
        .iter()
        .map(|t| (t.name.clone(), "kind-a".to_string()))
        .collect();
    let objects = kubernetes::render(&app, &options).unwrap();
    let wait = kubernetes::Wait {
        timeout: std::time::Duration::from_millis(50),
        interval: std::time::Duration::from_millis(10),
    };
    let err = kubernetes::up(&server.client(), &objects, Some(&wait))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, KubeError::NotReady { .. }), "{text}");
    assert!(text.contains("StatefulSet/circe-worker-task6"), "{text}");
    assert!(text.contains("DaemonSet/drupe-droplet"), "{text}");
}

#[tokio::test]
async fn down_deletes_by_label_then_the_namespace_and_nothing_else() {
    let ours =
        json!({"app.kubernetes.io/instance": "dummy-app", "app.kubernetes.io/managed-by": "jupiterctl"});
    let server = ApiServer::new(Behaviour {
        namespace_labels: Some(ours),
        ..Default::default()
    });
    kubernetes::down(&server.client(), "dummy-app")
        .await
        .expect("down");
    let requests = server.requests();
    let deletes: Vec<&Request> = requests.iter().filter(|r| r.method != "GET").collect();
    let paths: Vec<&str> = deletes.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            format!("/apis/apps/v1/namespaces/{NS}/deployments"),
            format!("/apis/apps/v1/namespaces/{NS}/statefulsets"),
            format!("/apis/apps/v1/namespaces/{NS}/daemonsets"),
            format!("/api/v1/namespaces/{NS}/persistentvolumeclaims"),
            format!("/api/v1/namespaces/{NS}/services"),
            format!("/api/v1/namespaces/{NS}/configmaps"),
            format!("/api/v1/namespaces/{NS}/secrets"),
            format!("/api/v1/namespaces/{NS}"),
        ]
    );
    assert!(deletes.iter().all(|r| r.method == "DELETE"));
    for r in &deletes[..7] {
        assert_eq!(
            r.query.get("labelSelector").map(String::as_str),
            Some(SELECTOR),
            "{}",
            r.path
        );
    }
    // The namespace: only the one checked (uid precondition), no selector.
    assert_eq!(
        deletes[7].body.as_ref().unwrap()["preconditions"]["uid"],
        "ns-uid"
    );
    // The only read is the namespace's own labels.
    let reads: Vec<&str> = requests
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(reads, [format!("/api/v1/namespaces/{NS}")]);
}

#[tokio::test]
async fn down_leaves_a_namespace_jupiterctl_did_not_make() {
    let server = ApiServer::new(Behaviour {
        namespace_labels: Some(json!({"team": "someone-else"})),
        ..Default::default()
    });
    let err = kubernetes::down(&server.client(), "dummy-app").await.unwrap_err();
    assert!(matches!(err, KubeError::ForeignNamespace { .. }), "{err}");
    assert!(!server
        .requests()
        .iter()
        .any(|r| r.method == "DELETE" && r.path == format!("/api/v1/namespaces/{NS}")));

    // Already gone: nothing to do, no error.
    let gone = ApiServer::new(Behaviour::default());
    kubernetes::down(&gone.client(), "dummy-app")
        .await
        .expect("down of nothing");
}

#[test]
fn render_is_deterministic_yaml_over_the_default_nodes() {
    let yaml = render_cmd(&[]).expect("render");
    assert_eq!(yaml, render_cmd(&[]).unwrap(), "same seed, same YAML");
    let docs: Vec<Value> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml::from_str(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 2 + 6 + 4 + 14);
    for d in &docs {
        if d["kind"] == "StatefulSet"
            && d["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("circe-worker-")
        {
            let node = d["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/hostname"]
                .as_str()
                .unwrap();
            assert!(["node0", "node1", "node2"].contains(&node), "{node}");
        }
        // No --otlp-endpoint (render has none): no OTLP variable.
        assert!(!serde_yaml::to_string(d).unwrap().contains("OTEL_EXPORTER"));
    }
    // No --nodes: the DaemonSets are not restricted.
    let ds = docs.iter().find(|d| d["kind"] == "DaemonSet").unwrap();
    assert!(ds["spec"]["template"]["spec"]["affinity"].is_null());

    // With --nodes, they are, to exactly those nodes.
    let yaml = render_cmd(&["--nodes", "a,b"]).unwrap();
    assert!(yaml.contains("metadata.name"), "{yaml}");
}

#[test]
fn heft_and_unknown_nodes_are_refused_clearly() {
    let err = render_cmd(&["--scheduler", "heft"]).unwrap_err().to_string();
    assert!(
        err.contains("--scheduler random") && err.contains("--mapping FILE"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let (mapping, _) = mapping_file(dir.path());
    let err = render_cmd(&["--mapping", mapping.to_str().unwrap(), "--nodes", "x,y"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("kind-a"), "{err}");
    let err = render_cmd(&["--deployment", "Not_Valid"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("Not_Valid"), "{err}");
}

/// A legacy app in `dir` with `tasks` chained, plus `files`.
fn write_app(dir: &Path, tasks: &[&str], files: &[(&str, &[u8])]) -> App {
    let mut config = format!("{}\n", tasks.len());
    for (i, t) in tasks.iter().enumerate() {
        let child = tasks.get(i + 1).copied().unwrap_or("home");
        config.push_str(&format!("{t} 1 false {child}\n"));
    }
    std::fs::write(dir.join("configuration.txt"), config).unwrap();
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    for t in tasks {
        std::fs::write(
            dir.join(format!("scripts/{t}.py")),
            "def task(filename, pathin, pathout):\n    return []\n",
        )
        .unwrap();
    }
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    App::load(dir).unwrap()
}

fn options_on_one_node(app: &App) -> KubeOptions {
    let mut options = KubeOptions::for_app(app);
    options.mapping = app
        .tasks
        .iter()
        .map(|t| (t.name.clone(), "n0".to_string()))
        .collect();
    options
}

#[test]
fn task_names_that_collide_after_sanitising_are_an_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let app = write_app(dir.path(), &["Task_A", "task-a"], &[]);
    let err = kubernetes::render(&app, &options_on_one_node(&app)).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, KubeError::TaskNameCollision { .. }), "{text}");
    assert!(
        text.contains("\"Task_A\"") && text.contains("\"task-a\"") && text.contains("circe-worker-task-a"),
        "{text}"
    );
}

#[test]
fn an_oversize_app_is_refused_naming_the_folder_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![b'x'; MAX_APP_BYTES as usize];
    // Inputs are not shipped, so a big sample_input/ is fine...
    let app = write_app(dir.path(), &["t0"], &[("sample_input/big.txt", &big)]);
    kubernetes::render(&app, &options_on_one_node(&app)).expect("sample_input is not shipped");
    // ...but the same bytes among the app's files are not.
    std::fs::write(dir.path().join("scripts/model.bin"), &big).unwrap();
    let err = kubernetes::render(&app, &options_on_one_node(&app)).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, KubeError::AppTooLarge { .. }), "{text}");
    assert!(text.contains(&app.dir.display().to_string()), "{text}");
    assert!(text.contains(&format!("{MAX_APP_BYTES}")), "{text}");
}

#[test]
fn binary_files_go_to_binary_data_and_executables_keep_their_bit() {
    let dir = tempfile::tempdir().unwrap();
    let app = write_app(
        dir.path(),
        &["t0"],
        &[
            ("data/w.bin", &[0xff, 0x00, 0xfe]),
            ("bin/run it.sh", b"#!/bin/sh\n"),
        ],
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let script = dir.path().join("bin/run it.sh");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let objects = kubernetes::render(&app, &options_on_one_node(&app)).unwrap();
    let cm = objects
        .iter()
        .find(|o| o.kind() == "ConfigMap")
        .unwrap()
        .to_json();
    assert_eq!(cm["binaryData"]["data_.w.bin"], "/wD+");
    assert!(cm["data"].get("data_.w.bin").is_none());
    let worker = objects
        .iter()
        .find(|o| o.name() == "circe-worker-t0")
        .unwrap()
        .to_json();
    let items = worker["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "app")
        .unwrap()["configMap"]["items"]
        .clone();
    #[cfg(unix)]
    assert!(
        items
            .as_array()
            .unwrap()
            .contains(&json!({"key": "bin_.run_20it.sh", "path": "bin/run it.sh", "mode": 0o755})),
        "{items}"
    );
}

/// A pod of `component` on `node` (of `task`), ready or waiting for `why`.
fn pod(component: &str, node: &str, task: Option<&str>, why_not_ready: Option<&str>) -> Value {
    let mut labels = json!({
        "app.kubernetes.io/name": "jupiter",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/instance": "dummy-app",
        "app.kubernetes.io/managed-by": "jupiterctl",
    });
    if let Some(task) = task {
        labels["jupiter.io/task"] = json!(task);
    }
    let ready = if why_not_ready.is_none() { "True" } else { "False" };
    let waiting = why_not_ready.map(|reason| json!({"waiting": {"reason": reason}}));
    json!({
        "metadata": {"name": format!("{component}-{node}"), "namespace": NS, "labels": labels},
        "spec": {"nodeName": node, "containers": []},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": ready}],
            "containerStatuses": [{"name": component, "image": "i", "imageID": "", "ready": why_not_ready.is_none(),
                                   "restartCount": 0, "state": waiting.unwrap_or(json!({"running": {}}))}],
        },
    })
}

#[tokio::test]
async fn a_deployment_found_again_reads_pods_restarts_roles_and_notices_a_lost_node() {
    let dir = tempfile::tempdir().unwrap();
    let (mapping_path, _) = mapping_file(dir.path());
    let first = ApiServer::new(Behaviour::default());
    let deployed = up(
        &first,
        &[
            "--mapping",
            mapping_path.to_str().unwrap(),
            "--ready-timeout",
            "0",
        ],
    )
    .await;

    // What the state file keeps of it, read back.
    let json = serde_json::to_value(deployed.state()).unwrap();
    assert_eq!(json["backend"], "kubernetes");
    let state: DeploymentState = serde_json::from_value(json).unwrap();
    let DeploymentState::Kubernetes {
        namespace,
        nodes,
        summary,
    } = &state
    else {
        panic!("a Kubernetes state: {state:?}");
    };
    assert_eq!(namespace, NS);
    assert_eq!(nodes, &NODES);
    assert_eq!(summary.roles.len(), 3 + 2 * 3 + 7);

    // Later: node kind-b is NotReady and its droplet crash-loops; kind-c's
    // droplet has no pod; task3's worker is fine.
    let pods = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
        pod("drupe-central", "kind-a", None, None),
        pod("drupe-droplet", "kind-a", None, None),
        pod("drupe-droplet", "kind-b", None, Some("CrashLoopBackOff")),
        pod("circe-worker", "kind-a", Some("task3"), None),
    ]});
    let mut cluster = apiserver::node_list();
    cluster["items"][1] = node("kind-b", "False", false, None);
    let later = ApiServer::new(Behaviour {
        pods: Some(pods),
        nodes: Some(cluster),
        ..Default::default()
    });
    // The state file keeps the URLs the roles have inside the cluster;
    // found again, jupiterctl reaches each through a local port-forward.
    let central = summary
        .roles
        .iter()
        .find(|r| r.role == Role::DrupeCentral)
        .unwrap();
    assert_eq!(
        central.url,
        format!("http://drupe-central:{}", Role::DrupeCentral.port())
    );
    let backend = Kubernetes::attach_with(later.client(), nodes, summary)
        .await
        .unwrap();
    use jupiterctl::deployment::Backend;
    let reached = backend.roles();
    assert_eq!(reached.len(), summary.roles.len());
    assert!(
        reached.iter().all(|r| r.url.starts_with("http://127.0.0.1:")),
        "{reached:?}"
    );
    let again = serde_json::to_value(backend.state(jupiterctl::deployment::Summary {
        roles: reached,
        ..summary.clone()
    }))
    .unwrap();
    assert_eq!(
        again["roles"],
        serde_json::to_value(&summary.roles).unwrap(),
        "the state written again keeps the cluster's URLs"
    );
    let mut found = Deployment::attach(Box::new(backend), summary.clone());
    let checked = found.health().await;
    // `status` shows where the roles are in the cluster, not this
    // process's forwards.
    let shown = jupiterctl::status::report(&found, &checked, Default::default());
    let urls: Vec<&str> = shown.roles.iter().map(|r| r.instance.url.as_str()).collect();
    let recorded: Vec<&str> = summary.roles.iter().map(|r| r.url.as_str()).collect();
    assert_eq!(urls, recorded);
    let health: BTreeMap<String, _> = checked
        .into_iter()
        .map(|(role, health)| (role.label(), health))
        .collect();
    assert_eq!(health.len(), summary.roles.len());
    assert!(health["drupe-central"].healthy);
    assert!(health["drupe-droplet kind-a"].healthy);
    assert!(health["circe-worker task3"].healthy);
    assert_eq!(health["drupe-droplet kind-b"].detail, "Running: CrashLoopBackOff");
    assert_eq!(health["drupe-droplet kind-c"].detail, "no pod");
    assert!(!health["wave-home"].healthy);

    // Restarting a role deletes exactly its pods; their controller makes new ones.
    found.restart("circe-worker task3").await.expect("restart");
    found.restart("drupe-droplet kind-b").await.expect("restart");
    let deletes: Vec<Request> = later
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 2);
    for d in &deletes {
        assert_eq!(d.path, format!("/api/v1/namespaces/{NS}/pods"));
    }
    assert_eq!(
        deletes[0].query["labelSelector"],
        format!("{SELECTOR},app.kubernetes.io/component=circe-worker,jupiter.io/task=task3")
    );
    assert!(!deletes[0].query.contains_key("fieldSelector"));
    assert_eq!(
        deletes[1].query["labelSelector"],
        format!("{SELECTOR},app.kubernetes.io/component=drupe-droplet")
    );
    assert_eq!(deletes[1].query["fieldSelector"], "spec.nodeName=kind-b");

    // The lost node is noticed and named (moving its tasks needs circe-home
    // to replay, of which this stand-in lists no pod: the recovery fails,
    // saying why; kubernetes_cluster.rs recovers for real).
    let why = tokio::time::timeout(std::time::Duration::from_secs(10), found.stopped())
        .await
        .expect("the lost node is noticed");
    assert!(why.contains("kind-b") && !why.contains("kind-a"), "{why}");
}

/// Every workload among `bodies` with the role id whose keys it mounts:
/// its name (a circe-worker's is its Service's, `circe-worker-<task>`).
fn workloads<'a>(bodies: &[&'a Value]) -> Vec<(String, &'a Value)> {
    bodies
        .iter()
        .filter(|b| {
            ["Deployment", "StatefulSet", "DaemonSet"].contains(&b["kind"].as_str().unwrap_or_default())
        })
        .map(|b| (b["metadata"]["name"].as_str().unwrap().to_string(), *b))
        .collect()
}

/// The pod of `workload` mounts exactly role `id`'s keys of Secret
/// `secret` (see `support/pod_tls.rs`).
fn mounts_its_own_keys(id: &str, workload: &Value, secret: &str) {
    pod_tls::mounts_its_own_keys(&workload["spec"]["template"]["spec"], id, secret, id);
}

#[tokio::test]
async fn up_with_tls_sends_the_certificates_secret_before_any_pod_and_each_pod_mounts_its_own_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (mapping_path, _) = mapping_file(dir.path());
    let tls_dir = dir.path().join("state").join("dummy-app").join("tls");
    let server = ApiServer::new(Behaviour::default());
    let flags = [
        "--mapping",
        mapping_path.to_str().unwrap(),
        "--ready-timeout",
        "0",
        "--tls",
    ];
    let deployment = up_with(&server, &flags, |kube| {
        // --tls puts the certificates beside the state file...
        assert_eq!(
            kube.options.tls,
            Some(KubeTls::Make {
                dir: kubernetes::tls::dir("dummy-app").unwrap()
            })
        );
        assert!(kubernetes::tls::dir("dummy-app")
            .unwrap()
            .ends_with("dummy-app/tls"));
        // ...which here is a temporary folder.
        kube.options.tls = Some(KubeTls::Make { dir: tls_dir.clone() });
    })
    .await;
    // jupiterctl presents the user's certificate on every forwarded
    // connection (the roles' TLS runs through the port-forward).
    let user = deployment
        .summary
        .tls
        .as_ref()
        .expect("the user's files")
        .load()
        .unwrap();
    for role in &deployment.summary.roles {
        assert!(role.url.starts_with("http://127.0.0.1:"), "{}", role.url);
        let presented = jupiter_common::tls::for_server(&role.url).expect("an identity for the forward");
        assert!(
            *presented == user,
            "{} presents the user's certificate",
            role.label()
        );
    }
    let requests = server.requests();
    let applied = applies(&requests);
    let bodies: Vec<&Value> = applied.iter().map(|r| r.body.as_ref().unwrap()).collect();

    // The Secret right after the namespace, before the ConfigMap and any pod.
    assert_eq!(bodies[0]["kind"], "Namespace");
    assert_eq!(
        applied[1].path,
        format!("/api/v1/namespaces/{NS}/secrets/jupiter-tls")
    );
    assert_eq!(
        applied[1].query.get("fieldManager").map(String::as_str),
        Some("jupiterctl")
    );
    let secret = bodies[1];
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["metadata"]["namespace"], NS);
    assert_eq!(
        secret["metadata"]["labels"],
        json!({
            "app.kubernetes.io/name": "jupiter",
            "app.kubernetes.io/component": "tls",
            "app.kubernetes.io/instance": "dummy-app",
            "app.kubernetes.io/managed-by": "jupiterctl",
        })
    );
    assert_eq!(
        applied.iter().filter(|r| r.path.contains("/secrets/")).count(),
        1,
        "one Secret"
    );

    // Its keys: the CA, and a certificate and a key per role id.
    let mut ids: Vec<String> = [
        "drupe-central",
        "wave-home",
        "circe-home",
        "drupe-droplet",
        "wave-worker",
    ]
    .map(String::from)
    .to_vec();
    ids.extend((0..7).map(|i| format!("circe-worker-task{i}")));
    let mut expected_keys = BTreeSet::from(["ca.pem".to_string()]);
    for id in &ids {
        expected_keys.insert(format!("{id}.pem"));
        expected_keys.insert(format!("{id}-key.pem"));
    }
    let decoded: k8s_openapi::api::core::v1::Secret = serde_json::from_value(secret.clone()).unwrap();
    let data = decoded.data.unwrap();
    assert_eq!(data.keys().cloned().collect::<BTreeSet<_>>(), expected_keys);
    // The very files made for each role.
    assert_eq!(data["ca.pem"].0, std::fs::read(tls_dir.join("ca.pem")).unwrap());
    for id in &ids {
        let role = tls_dir.join("roles").join(id);
        assert_eq!(
            data[&format!("{id}.pem")].0,
            std::fs::read(role.join("cert.pem")).unwrap(),
            "{id}"
        );
        assert_eq!(
            data[&format!("{id}-key.pem")].0,
            std::fs::read(role.join("key.pem")).unwrap(),
            "{id}"
        );
        assert!(String::from_utf8_lossy(&data[&format!("{id}-key.pem")].0).contains("PRIVATE KEY"));
    }

    // Every pod: its own keys only, the variables, exec probes, and the
    // Secret's digest (a second `up` makes new certificates and so rolls
    // every pod onto them).
    let all = workloads(&bodies);
    assert_eq!(all.len(), 3 + 2 + 7);
    let checksum = &all[0].1["spec"]["template"]["metadata"]["annotations"]["jupiter.io/tls-checksum"];
    assert!(checksum.as_str().is_some_and(|c| c.len() == 16), "{checksum}");
    for (id, workload) in &all {
        mounts_its_own_keys(id, workload, "jupiter-tls");
        assert_eq!(
            &workload["spec"]["template"]["metadata"]["annotations"]["jupiter.io/tls-checksum"], checksum,
            "{id}"
        );
    }

    // The user's files stay, for status, submit and grpcurl.
    let client = deployment.backend().client_tls().expect("the user's files");
    assert_eq!(client.ca, tls_dir.join("ca.pem"));
    assert_eq!(client.cert, tls_dir.join("client.pem"));
    assert_eq!(client.key, tls_dir.join("client-key.pem"));
    client.load().expect("the user's identity loads");

    // `down` deletes the Secret with the rest (by label) and the files.
    deployment.down().await.expect("down");
    let deletes: Vec<Request> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert!(deletes
        .iter()
        .any(|r| r.path == format!("/api/v1/namespaces/{NS}/secrets")
            && r.query.get("labelSelector").map(String::as_str) == Some(SELECTOR)));
    assert!(!tls_dir.exists(), "the certificates are removed at down");
}

#[tokio::test]
async fn up_without_tls_sends_no_secret_and_keeps_grpc_probes() {
    let server = ApiServer::new(Behaviour::default());
    let deployment = up(
        &server,
        &["--scheduler", "random", "--seed", "7", "--ready-timeout", "0"],
    )
    .await;
    assert!(deployment.backend().client_tls().is_none());
    let requests = server.requests();
    let bodies: Vec<&Value> = applies(&requests)
        .iter()
        .map(|r| r.body.as_ref().unwrap())
        .collect();
    assert!(!bodies.iter().any(|b| b["kind"] == "Secret"));
    for (id, w) in workloads(&bodies) {
        let text = w.to_string();
        assert!(
            !text.contains("JUPITER_TLS") && !text.contains("tls-checksum"),
            "{id}"
        );
        assert!(w["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"].is_object());
    }
}

#[test]
fn render_with_a_tls_secret_mounts_it_in_every_pod_and_renders_no_secret() {
    let yaml = render_cmd(&["--tls-secret", "my-tls"]).expect("render");
    let docs: Vec<Value> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml::from_str(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 2 + 6 + 4 + 14, "the same objects, no Secret");
    assert!(!docs.iter().any(|d| d["kind"] == "Secret"));
    let docs: Vec<&Value> = docs.iter().collect();
    let all = workloads(&docs);
    assert_eq!(all.len(), 3 + 2 + 7);
    for (id, workload) in &all {
        mounts_its_own_keys(id, workload, "my-tls");
        // Nothing to digest: the Secret is someone else's.
        assert!(workload["spec"]["template"]["metadata"]["annotations"]["jupiter.io/tls-checksum"].is_null());
    }
    // Otherwise the same objects as without TLS.
    let plain = render_cmd(&[]).unwrap();
    assert_eq!(plain.matches("---\n").count(), yaml.matches("---\n").count());

    let err = render_cmd(&["--tls-secret", "Not_A_Name"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("Not_A_Name") && err.contains("Secret"), "{err}");
}

#[test]
fn tasks_whose_secret_keys_would_collide_are_refused_with_tls() {
    let dir = tempfile::tempdir().unwrap();
    let app = write_app(dir.path(), &["x", "x-key"], &[]);
    let mut options = options_on_one_node(&app);
    kubernetes::render(&app, &options).expect("no TLS, no keys");
    options.tls = Some(KubeTls::Existing { secret: "s".into() });
    let err = kubernetes::render(&app, &options).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, KubeError::TlsKeyCollision { .. }), "{text}");
    assert!(text.contains("circe-worker-x-key.pem"), "{text}");
}

/// A node list's sizes become the limits of the circe-workers pinned to
/// each node (only the sizes it gives), and a request above its limit is
/// lowered to it.
#[tokio::test]
async fn node_list_sizes_become_the_limits_of_the_workers_on_each_node() {
    let dir = tempfile::tempdir().unwrap();
    let (mapping_path, mapping) = mapping_file(dir.path());
    let list = dir.path().join("nodes.yaml");
    std::fs::write(
        &list,
        "nodes:\n  - {name: kind-a, cpus: 0.5, memory: 256MiB}\n  - {name: kind-b, cpus: 2}\n  - {name: kind-c}\n",
    )
    .unwrap();
    let server = ApiServer::new(Behaviour::default());
    up(
        &server,
        &[
            "--mapping",
            mapping_path.to_str().unwrap(),
            "--node-list",
            list.to_str().unwrap(),
            "--memory-request",
            "512Mi",
        ],
    )
    .await;
    let requests = server.requests();
    let applied = applies(&requests);
    let bodies: Vec<&Value> = applied.iter().map(|r| r.body.as_ref().unwrap()).collect();
    for (task, node) in &mapping {
        let set = by_name(&bodies, "StatefulSet", &format!("circe-worker-{task}"));
        let resources = &set["spec"]["template"]["spec"]["containers"][0]["resources"];
        let (limits, requests) = match node.as_str() {
            "kind-a" => (
                json!({"cpu": "500m", "memory": "268435456"}),
                json!({"cpu": "50m", "memory": "268435456"}),
            ),
            "kind-b" => (json!({"cpu": "2000m"}), json!({"cpu": "50m", "memory": "512Mi"})),
            _ => (Value::Null, json!({"cpu": "50m", "memory": "512Mi"})),
        };
        assert_eq!(resources["limits"], limits, "{task} on {node}");
        assert_eq!(resources["requests"], requests, "{task} on {node}");
    }
    // The per-node roles and the home roles keep the common resources.
    let droplet = by_name(&bodies, "DaemonSet", "drupe-droplet");
    assert!(droplet["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].is_null());
}
