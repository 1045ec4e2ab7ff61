//! The files of docker/observability, checked without pulling an image:
//! Prometheus' config passes `promtool check config` (with targets.sh's
//! output as its file_sd targets too), the dashboard's queries name only
//! the metrics the roles export (support/prometheus.rs has the list), the
//! data sources it uses are provisioned, and every file compose.yaml
//! mounts exists, with the ports the services' configs agree on.
//! prometheus_scrape.rs runs a real Prometheus against a real deployment.

#[path = "support/prometheus.rs"]
mod prometheus;

use prometheus::{
    dashboard, dashboard_queries, metric_names, observability_dir, panels, promtool_check_config,
    series_names,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn promtool_accepts_the_prometheus_config() {
    let (ok, said) = promtool_check_config(&observability_dir().join("prometheus.yml"));
    assert!(ok, "promtool check config prometheus.yml:\n{said}");
}

/// targets.sh turns a `status --json` into file_sd targets that promtool
/// accepts (it validates every file the config's globs find), one per
/// role with a metrics URL, with the labels the dashboard groups by.
#[test]
fn targets_sh_writes_file_sd_targets_promtool_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let status = serde_json::json!({
        "deployment": "jupiter-dummy-app-00c0de",
        "backend": "local",
        "roles": [
            {"role": "drupe-central", "node": null, "task": null, "url": "http://127.0.0.1:7100",
             "metrics": "http://127.0.0.1:9100/metrics", "healthy": true},
            {"role": "drupe-droplet", "node": "node0", "task": null, "url": "http://127.0.0.1:40101",
             "metrics": "http://127.0.0.1:40102/metrics", "healthy": true},
            {"role": "circe-worker", "node": "node1", "task": "task0", "url": "http://127.0.0.1:40301",
             "metrics": "http://127.0.0.1:40302/custom", "healthy": true},
            // No metrics URL (metrics off): left out.
            {"role": "wave-home", "node": null, "task": null, "url": "http://127.0.0.1:7200", "healthy": true},
        ],
    });
    let status_file = dir.path().join("status.json");
    std::fs::write(&status_file, status.to_string()).unwrap();
    std::fs::create_dir(dir.path().join("targets")).unwrap();
    let out_file = dir.path().join("targets/jupiter.json");
    let run = Command::new("bash")
        .arg(observability_dir().join("targets.sh"))
        .arg("--from")
        .arg(&status_file)
        .arg("--out")
        .arg(&out_file)
        .output()
        .expect("bash runs");
    assert!(
        run.status.success(),
        "targets.sh: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let groups: Value = serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(
        groups,
        serde_json::json!([
            {"targets": ["127.0.0.1:9100"], "labels": {"role": "drupe-central",
              "deployment": "jupiter-dummy-app-00c0de", "__scheme__": "http", "__metrics_path__": "/metrics"}},
            {"targets": ["127.0.0.1:40102"], "labels": {"role": "drupe-droplet", "node": "node0",
              "deployment": "jupiter-dummy-app-00c0de", "__scheme__": "http", "__metrics_path__": "/metrics"}},
            {"targets": ["127.0.0.1:40302"], "labels": {"role": "circe-worker", "node": "node1", "task": "task0",
              "deployment": "jupiter-dummy-app-00c0de", "__scheme__": "http", "__metrics_path__": "/custom"}},
        ])
    );
    // The repository's config, beside that targets folder: promtool reads
    // the file through the config's own glob.
    std::fs::copy(
        observability_dir().join("prometheus.yml"),
        dir.path().join("prometheus.yml"),
    )
    .unwrap();
    let (ok, said) = promtool_check_config(&dir.path().join("prometheus.yml"));
    // No warning: the glob found the file (with none, promtool warns).
    assert!(ok && !said.contains("WARNING"), "{said}");
    // And promtool did read it: a bad label in it fails the check.
    std::fs::write(
        dir.path().join("targets/broken.json"),
        r#"[{"targets": ["127.0.0.1:1"], "labels": {"0bad": "x"}}]"#,
    )
    .unwrap();
    let (ok, said) = promtool_check_config(&dir.path().join("prometheus.yml"));
    assert!(!ok && said.contains("0bad"), "{said}");

    // A deployment that lists no metrics URL is an error, not an empty file.
    let bare = dir.path().join("bare.json");
    std::fs::write(
        &bare,
        serde_json::json!({"deployment": "d", "backend": "local", "roles": [
            {"role": "wave-home", "url": "http://127.0.0.1:7200"}]})
        .to_string(),
    )
    .unwrap();
    let run = Command::new("bash")
        .arg(observability_dir().join("targets.sh"))
        .args(["--from", bare.to_str().unwrap(), "--out", "-"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("no role with a metrics URL"));
}

#[test]
fn metric_names_finds_the_selected_series_only() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.95, sum by (le, task) (rate(jupiter_task_run_seconds_bucket{deployment=~"$deployment", task=~"a{b}"}[1m])))"#
        ),
        ["jupiter_task_run_seconds_bucket"]
    );
    assert_eq!(
        names("max by (node) (a_used) / on(node) group_left max by (node) (b_total) > bool 0.5"),
        ["a_used", "b_total"]
    );
    assert_eq!(
        names("sum(rate(x_total[5m] offset 1h)) or vector(0)"),
        ["x_total"]
    );
    assert_eq!(
        names("max(time() - jupiter_role_start_time_seconds) without (instance)"),
        ["jupiter_role_start_time_seconds"]
    );
    assert!(names("1e3 + 0x1f").is_empty());
}

/// Every PromQL query of the dashboard (panels and variables) names at
/// least one metric, and only metrics the roles export.
#[test]
fn dashboard_queries_name_only_exported_metrics() {
    let dashboard = dashboard();
    let known = series_names();
    let mut queries = dashboard_queries(&dashboard);
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        let query = variable["query"].as_str().unwrap();
        // label_values(SELECTOR, label): the selector is PromQL.
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.rsplit_once(','))
            .map(|(selector, _)| selector)
            .unwrap_or_else(|| panic!("variable {}: {query}", variable["name"]));
        queries.push((format!("variable {}", variable["name"]), inner.to_string()));
    }
    assert!(queries.len() >= 20, "{queries:?}");
    let mut used = BTreeSet::new();
    for (title, expr) in &queries {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{title}: {expr} names no metric");
        for name in &names {
            assert!(
                known.contains(name),
                "{title}: {expr} names {name}, which no role exports (interface: support/prometheus.rs)"
            );
        }
        used.extend(names);
    }
    // The panels this dashboard is for.
    for wanted in [
        "jupiter_inputs_done_total",
        "jupiter_input_makespan_seconds_bucket",
        "jupiter_task_run_seconds_bucket",
        "jupiter_queue_depth",
        "jupiter_link_bandwidth_bytes_per_second",
        "jupiter_link_rtt_seconds",
        "jupiter_inputs_failed_total",
        "jupiter_push_retries_total",
        "jupiter_node_cpu_utilization",
        "jupiter_node_memory_used_bytes",
        "jupiter_trace_spans_dropped_total",
    ] {
        assert!(used.contains(wanted), "no panel shows {wanted}");
    }
    let all = panels(&dashboard);
    let exprs = |title: &str| -> Vec<String> {
        let panel = all
            .iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("no panel {title:?}"));
        panel["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["expr"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(exprs("Inputs per second")
        .iter()
        .any(|e| e.starts_with("sum(rate(jupiter_inputs_done_total{") && e.ends_with("}[1m]))")));
    let makespan = exprs("Makespan p50 / p95");
    for q in ["0.5", "0.95"] {
        assert!(
            makespan.iter().any(|e| e.starts_with(&format!(
                "histogram_quantile({q}, sum by (le) (rate(jupiter_input_makespan_seconds_bucket"
            ))),
            "{makespan:?}"
        );
    }
    assert!(exprs("Task run time p50 by task")[0].contains("sum by (le, task)"));
    // The bandwidth matrix: one instant table query, by from and to, made
    // a matrix in Grafana.
    let matrix = all
        .iter()
        .find(|p| p["title"] == "Link bandwidth (from → to)")
        .unwrap();
    assert!(matches!(matrix["type"].as_str(), Some("table" | "heatmap")));
    assert!(matrix["targets"][0]["expr"]
        .as_str()
        .unwrap()
        .starts_with("max by (from, to) (jupiter_link_bandwidth_bytes_per_second"));
    assert_eq!(matrix["transformations"][0]["id"], "groupingToMatrix");
}

/// Panels have unique ids and a place; every data source the dashboard
/// names is one the provisioning creates.
#[test]
fn dashboard_is_well_formed_and_its_data_sources_are_provisioned() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "jupiter");
    let provisioned = yaml(&observability_dir().join("grafana/provisioning/datasources/datasources.yaml"));
    let uids: BTreeSet<(String, String)> = provisioned["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["type"].as_str().unwrap().to_string(),
                d["uid"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        uids.contains(&("prometheus".into(), "prometheus".into())),
        "{uids:?}"
    );
    assert!(uids.contains(&("tempo".into(), "tempo".into())), "{uids:?}");
    let mut ids = BTreeSet::new();
    let mut sources = Vec::new();
    for panel in panels(&dashboard) {
        assert!(
            ids.insert(panel["id"].as_u64().expect("panel id")),
            "duplicate id {}",
            panel["id"]
        );
        for key in ["h", "w", "x", "y"] {
            assert!(
                panel["gridPos"][key].is_u64(),
                "{}: gridPos.{key}",
                panel["title"]
            );
        }
        if panel["type"] != "row" {
            sources.push(&panel["datasource"]);
            for target in panel["targets"].as_array().unwrap() {
                sources.push(&target["datasource"]);
            }
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        sources.push(&variable["datasource"]);
    }
    for source in sources {
        let key = (
            source["type"].as_str().unwrap_or_default().to_string(),
            source["uid"].as_str().unwrap_or_default().to_string(),
        );
        assert!(uids.contains(&key), "data source {source} is not provisioned");
    }
    // Grafana's provider reads the folder compose.yaml mounts the
    // dashboards at.
    let providers = yaml(&observability_dir().join("grafana/provisioning/dashboards/dashboards.yaml"));
    let path = providers["providers"][0]["options"]["path"].as_str().unwrap();
    let compose = yaml(&observability_dir().join("compose.yaml"));
    let mounts = compose["services"]["grafana"]["volumes"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m.as_str().unwrap().starts_with(&format!("./dashboards:{path}"))),
        "{mounts:?}"
    );
}

/// compose.yaml parses, has the three services, and every file or folder
/// of this checkout it mounts exists; the ports it publishes are the ones
/// Tempo's and Grafana's configs use.
#[test]
fn compose_file_mounts_existing_files_and_agrees_on_ports() {
    let dir = observability_dir();
    let compose = yaml(&dir.join("compose.yaml"));
    let services = compose["services"].as_object().expect("services");
    for name in ["tempo", "prometheus", "grafana"] {
        let service = services.get(name).unwrap_or_else(|| panic!("no service {name}"));
        assert!(service["image"].is_string(), "{name}: image");
    }
    assert!(services["tempo"]["image"]
        .as_str()
        .unwrap()
        .starts_with("grafana/tempo:"));
    assert!(services["prometheus"]["image"]
        .as_str()
        .unwrap()
        .starts_with("prom/prometheus:"));
    assert!(services["grafana"]["image"]
        .as_str()
        .unwrap()
        .starts_with("grafana/grafana:"));
    let volumes: BTreeSet<&str> = compose["volumes"]
        .as_object()
        .map(|v| v.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut checked = 0;
    for (name, service) in services {
        for mount in service["volumes"].as_array().into_iter().flatten() {
            let mount = mount.as_str().expect("short volume syntax");
            let source = mount.split(':').next().unwrap();
            if let Some(relative) = source.strip_prefix("./") {
                let path = dir.join(relative);
                assert!(
                    path.exists(),
                    "{name} mounts {} which does not exist",
                    path.display()
                );
                checked += 1;
            } else if !source.starts_with('/') {
                assert!(
                    volumes.contains(source),
                    "{name}: volume {source} is not declared"
                );
            }
        }
    }
    assert!(checked >= 5, "{checked} mounts checked");

    // Tempo receives OTLP/gRPC on 4317 and serves Grafana on 3200, both
    // published.
    let tempo = yaml(&dir.join("tempo.yaml"));
    assert_eq!(
        tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"],
        "0.0.0.0:4317"
    );
    assert_eq!(tempo["server"]["http_listen_port"], 3200);
    let published: Vec<&str> = services["tempo"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for port in ["4317:4317", "3200:3200"] {
        assert!(published.contains(&port), "{published:?}");
    }
    // Prometheus and Grafana on the host's network: Grafana's data sources
    // on localhost at the ports the services listen on.
    assert_eq!(services["prometheus"]["network_mode"], "host");
    assert_eq!(services["grafana"]["network_mode"], "host");
    let prometheus_args: Vec<&str> = services["prometheus"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(prometheus_args.contains(&"--web.listen-address=0.0.0.0:9090"));
    assert!(prometheus_args.contains(&"--config.file=/etc/prometheus/prometheus.yml"));
    let sources = yaml(&dir.join("grafana/provisioning/datasources/datasources.yaml"));
    let url = |t: &str| {
        sources["datasources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["type"] == t)
            .unwrap()["url"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(url("prometheus"), "http://localhost:9090");
    assert_eq!(url("tempo"), "http://localhost:3200");
    // prometheus.yml's file_sd glob, relative to the config, is the
    // folder compose mounts targets.sh's output at.
    let mounts = services["prometheus"]["volumes"].as_array().unwrap();
    assert!(mounts.iter().any(|m| m == "./targets:/etc/prometheus/targets:ro"));
    assert!(mounts
        .iter()
        .any(|m| m == "./prometheus.yml:/etc/prometheus/prometheus.yml:ro"));
    let config = yaml(&dir.join("prometheus.yml"));
    let files = config["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job_name"] == "jupiter-files")
        .unwrap()["file_sd_configs"][0]["files"][0]
        .clone();
    assert_eq!(files, "targets/*.json");
}

/// The Kubernetes job (not checkable by Debian's promtool, which is built
/// without Kubernetes discovery) reads the annotations the pods carry.
#[test]
fn kubernetes_job_reads_the_annotations_jupiter_puts_on_pods() {
    let config = yaml(&observability_dir().join("prometheus-kubernetes.yml"));
    let job = &config["scrape_configs"][0];
    assert_eq!(job["kubernetes_sd_configs"][0]["role"], "pod");
    let sources: BTreeSet<String> = job["relabel_configs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["source_labels"].as_array().unwrap().clone())
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    // prometheus.io/scrape, /port, /path as Prometheus names them.
    for annotation in ["scrape", "port", "path"] {
        let label = format!("__meta_kubernetes_pod_annotation_prometheus_io_{annotation}");
        assert!(sources.contains(&label), "{label}");
    }
    assert!(sources.contains("__meta_kubernetes_pod_label_app_kubernetes_io_component"));
}
