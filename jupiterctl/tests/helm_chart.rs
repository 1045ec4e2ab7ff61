//! The Helm chart in helm/jupiter against `jupiterctl render`: the chart's
//! objects must be the very objects render makes for the same roles (kind,
//! name, labels, selectors, image, ports, env, probes, resources, volumes),
//! with one deliberate difference: `app.kubernetes.io/managed-by` is
//! `Helm` in the chart, so `jupiterctl down` never deletes a Helm release.
//! The observability fields are compared too: the `metrics` port and the
//! `prometheus.io/*` pod annotations (chart `metrics.enabled`, on by
//! default as in render), and `OTEL_EXPORTER_OTLP_ENDPOINT` with and
//! without an endpoint (chart `otlp.endpoint`, render's `otlp_endpoint`),
//! and mutual TLS from an existing Secret (chart `tls.existingSecret`,
//! render's `--tls-secret`): volumes, items, mounts, env and probes.
//! drupe-central and circe-home keep state: on both sides they are
//! StatefulSets (`serviceName`, a `data` claim template with its access
//! mode, size and storage class, the claim retention policy) with no
//! emptyDir for their data, and the chart's `storage.className`,
//! `storage.homeSize` and `storage.drupeSize` are render's
//! `KubeOptions.storage` (`--storage-class`, `--home-size`, `--drupe-size`).
//!
//! No `helm` binary can be installed here, so the templates are rendered by
//! a small renderer for exactly the subset helm/README.md documents; it
//! fails on anything outside it, so the chart cannot quietly grow past what
//! this test checks.

#[path = "support/pod_tls.rs"]
mod pod_tls;

use jupiter_common::app::App;
use jupiter_common::role::Role;
use jupiterctl::kubernetes::{self, KubeOptions, KubeTls};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROLES: [&str; 5] = [
    "drupe-central",
    "wave-home",
    "circe-home",
    "drupe-droplet",
    "wave-worker",
];

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../helm/jupiter")
}

// ---- the template subset -------------------------------------------------

/// Renders one template: text and `{{ }}` actions with `-` trimming;
/// actions are `if PIPELINE` / `else` / `end` or a pipeline of a `.Values...` /
/// `.Release...` term or a literal through `quote`, `default X`, `toYaml`,
/// `nindent N`.
fn render_template(src: &str, context: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut active: Vec<bool> = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while !rest.is_empty() {
        let (text, action) = match rest.find("{{") {
            Some(i) => (&rest[..i], Some(&rest[i + 2..])),
            None => (rest, None),
        };
        let mut text = if trim_next { text.trim_start() } else { text };
        let Some(after) = action else {
            if active.iter().all(|a| *a) {
                out.push_str(text);
            }
            break;
        };
        let (mut inner, trim_left) = match after.strip_prefix("- ") {
            Some(inner) => (inner, true),
            None => (after, false),
        };
        if trim_left {
            text = text.trim_end();
        }
        if active.iter().all(|a| *a) {
            out.push_str(text);
        }
        let close = inner.find("}}").ok_or("unclosed {{")?;
        rest = &inner[close + 2..];
        inner = &inner[..close];
        trim_next = inner.ends_with(" -");
        let action = inner.trim_end_matches(" -").trim();
        if let Some(cond) = action.strip_prefix("if ") {
            active.push(truthy(&eval(cond, context)?));
        } else if action == "else" {
            let last = active.last_mut().ok_or("{{ else }} without {{ if }}")?;
            *last = !*last;
        } else if action == "end" {
            active.pop().ok_or("{{ end }} without {{ if }}")?;
        } else if active.iter().all(|a| *a) {
            out.push_str(&text_of(&eval(action, context)?)?);
        }
    }
    if !active.is_empty() {
        return Err("{{ if }} without {{ end }}".into());
    }
    Ok(out)
}

fn eval(pipeline: &str, context: &Value) -> Result<Value, String> {
    let mut stages: Vec<&str> = pipeline.split('|').map(str::trim).collect();
    // `fn ARGS X` is `X | fn ARGS`, as in Go templates.
    let first: Vec<&str> = stages.remove(0).split_whitespace().collect();
    let (last, call) = first.split_last().ok_or("empty action")?;
    let mut value = term(last, context)?;
    let call = call.join(" ");
    if !call.is_empty() {
        stages.insert(0, &call);
    }
    for stage in stages {
        let words: Vec<&str> = stage.split_whitespace().collect();
        value = match words.as_slice() {
            ["quote"] => Value::String(serde_json::to_string(&text_of(&value)?).map_err(|e| e.to_string())?),
            ["default", fallback] => {
                if truthy(&value) {
                    value
                } else {
                    term(fallback, context)?
                }
            }
            ["toYaml"] => Value::String(
                serde_yaml::to_string(&value)
                    .map_err(|e| e.to_string())?
                    .trim_end()
                    .to_string(),
            ),
            ["nindent", n] => {
                let pad = " ".repeat(n.parse::<usize>().map_err(|e| format!("nindent {n}: {e}"))?);
                let text = text_of(&value)?;
                Value::String(text.lines().map(|l| format!("\n{pad}{l}")).collect())
            }
            _ => return Err(format!("unsupported pipeline stage {stage:?}")),
        };
    }
    Ok(value)
}

fn term(word: &str, context: &Value) -> Result<Value, String> {
    if let Some(path) = word.strip_prefix('.') {
        let mut value = context;
        for key in path.split('.') {
            value = value
                .get(key)
                .ok_or_else(|| format!("{word}: no value {key:?} (typo in the chart or values.yaml?)"))?;
        }
        return Ok(value.clone());
    }
    serde_json::from_str(word).map_err(|_| format!("unsupported term {word:?}"))
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn text_of(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("cannot print {other} in place; use toYaml")),
    }
}

/// Every object of the chart's templates, rendered with `values` over
/// values.yaml; `edit` may change a template's text first.
fn chart_objects(values: &Value, release: &Value, edit: impl Fn(&str, String) -> String) -> Vec<Value> {
    let dir = chart_dir();
    let defaults: Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("values.yaml")).unwrap()).unwrap();
    let mut merged = defaults;
    merge(&mut merged, values);
    let context = json!({"Values": merged, "Release": release});
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("templates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut objects = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let src = edit(&name, std::fs::read_to_string(&file).unwrap());
        let text = render_template(&src, &context).unwrap_or_else(|e| panic!("{name}: {e}"));
        for doc in text.split("\n---\n") {
            let value: Value = serde_yaml::from_str(doc).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
            if !value.is_null() {
                objects.push(value);
            }
        }
    }
    objects
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

// ---- the comparison ------------------------------------------------------

/// The JSON paths at which `a` and `b` differ.
fn diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                diff(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &format!("{path}.{k}"),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff(p, q, &format!("{path}[{i}]"), out);
            }
        }
        (p, q) if p != q => out.push(format!("{path}: chart {p} vs render {q}")),
        _ => {}
    }
}

/// The render side: the objects of the chart's roles.
fn rendered(options: &KubeOptions) -> BTreeMap<(String, String), Value> {
    let app = App::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/dummy_app")).unwrap();
    kubernetes::render(&app, options)
        .unwrap()
        .iter()
        .filter(|o| ROLES.contains(&o.name()))
        .map(|o| ((o.kind().to_string(), o.name().to_string()), o.to_json()))
        .collect()
}

/// The chart side with the deliberate managed-by difference checked and
/// taken out.
fn comparable(mut chart: Vec<Value>) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for object in &mut chart {
        let claims = object
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let mut pointers = vec![
            "/metadata/labels".to_string(),
            "/spec/template/metadata/labels".to_string(),
        ];
        pointers.extend((0..claims).map(|i| format!("/spec/volumeClaimTemplates/{i}/metadata/labels")));
        for pointer in pointers {
            if let Some(labels) = object.pointer_mut(&pointer) {
                let label = &mut labels["app.kubernetes.io/managed-by"];
                assert_eq!(*label, "Helm", "managed-by at {pointer}");
                *label = json!("jupiterctl");
            }
        }
        let key = (
            object["kind"].as_str().unwrap().to_string(),
            object["metadata"]["name"].as_str().unwrap().to_string(),
        );
        out.insert(key, object.clone());
    }
    out
}

fn differences(
    chart: &BTreeMap<(String, String), Value>,
    render: &BTreeMap<(String, String), Value>,
) -> Vec<String> {
    let mut out = Vec::new();
    let chart_keys: BTreeSet<_> = chart.keys().collect();
    let render_keys: BTreeSet<_> = render.keys().collect();
    if chart_keys != render_keys {
        out.push(format!("objects: chart {chart_keys:?} vs render {render_keys:?}"));
    }
    for (key, object) in chart {
        if let Some(other) = render.get(key) {
            diff(object, other, &format!("{}/{}", key.0, key.1), &mut out);
        }
    }
    out
}

/// Chart values equivalent to `options` (and the app-specific circe-home
/// values, taken from render's circe-home), and the release.
fn values_for(options: &KubeOptions, render: &BTreeMap<(String, String), Value>) -> (Value, Value) {
    let home = &render[&("StatefulSet".to_string(), "circe-home".to_string())]["spec"]["template"]["spec"];
    let ingress = home["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "JUPITER_INGRESS")
        .unwrap()["value"]
        .clone();
    let items = home["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "app")
        .unwrap()["configMap"]["items"]
        .clone();
    let values = json!({
        "image": {"prefix": options.image_prefix, "tag": options.image_tag, "pullPolicy": options.image_pull_policy},
        "rustLog": options.rust_log,
        "resources": {"requests": options.resources.requests, "limits": options.resources.limits},
        "nodes": options.nodes,
        "circeHome": {"ingress": ingress, "appItems": items},
        "otlp": {"endpoint": options.otlp_endpoint.clone().unwrap_or_default()},
        "tls": {"existingSecret": options.tls.as_ref().map(|t| t.secret().to_string()).unwrap_or_default()},
        "storage": {
            "className": options.storage.class.clone().unwrap_or_default(),
            "homeSize": options.storage.home_size,
            "drupeSize": options.storage.drupe_size,
        },
    });
    let release = json!({
        "Name": options.deployment,
        "Namespace": format!("jupiter-{}", options.deployment),
        "Service": "Helm",
    });
    (values, release)
}

fn dummy_options() -> KubeOptions {
    let app = App::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/dummy_app")).unwrap();
    let mut options = KubeOptions::for_app(&app);
    options.mapping = app
        .tasks
        .iter()
        .map(|t| (t.name.clone(), "node1".to_string()))
        .collect();
    options
}

/// Everything set away from the defaults, so each value visibly lands.
fn custom_options() -> KubeOptions {
    let mut options = dummy_options();
    options.deployment = "demo".into();
    options.image_prefix = "registry.example:5000/jupiter".into();
    options.image_tag = "v9".into();
    options.image_pull_policy = "Always".into();
    options.nodes = vec!["node0".into(), "node1".into()];
    options.rust_log = "debug,h2=info".into();
    options.resources.limits.insert("memory".into(), "1Gi".into());
    options.otlp_endpoint = Some("http://tempo.monitoring:4317".into());
    options.storage = custom_storage();
    options
}

/// Storage away from the defaults (a class, other sizes).
fn custom_storage() -> kubernetes::Storage {
    kubernetes::Storage {
        class: Some("fast-ssd".into()),
        home_size: "5Gi".into(),
        drupe_size: "512Mi".into(),
        ..kubernetes::Storage::default()
    }
}

fn no_edit(_: &str, src: String) -> String {
    src
}

#[test]
fn chart_renders_what_jupiterctl_renders_with_custom_values() {
    let options = custom_options();
    let render = rendered(&options);
    assert_eq!(
        render.len(),
        10,
        "2 StatefulSets, a Deployment, 2 DaemonSets, a Service each (headless for the DaemonSets)"
    );
    for role in ROLES {
        let key = (kind_of(role).to_string(), role.to_string());
        assert!(render.contains_key(&key), "render has no {key:?}");
    }
    for role in ["drupe-droplet", "wave-worker"] {
        let key = ("Service".to_string(), role.to_string());
        assert_eq!(render[&key]["spec"]["clusterIP"], "None", "{role}");
    }
    let (values, release) = values_for(&options, &render);
    let chart = comparable(chart_objects(&values, &release, no_edit));
    let diffs = differences(&chart, &render);
    assert!(diffs.is_empty(), "chart and render differ:\n{}", diffs.join("\n"));
}

#[test]
fn chart_defaults_are_render_defaults() {
    let options = dummy_options();
    let render = rendered(&options);
    let (values, release) = values_for(&options, &render);
    // Only the app-specific circe-home values; everything else from values.yaml.
    let values = json!({"circeHome": values["circeHome"]});
    let chart = comparable(chart_objects(&values, &release, no_edit));
    let diffs = differences(&chart, &render);
    assert!(
        diffs.is_empty(),
        "chart defaults and render defaults differ:\n{}",
        diffs.join("\n")
    );
}

/// The pod template of the object `kind/name` in `objects`.
fn pod_of<'a>(objects: &'a BTreeMap<(String, String), Value>, kind: &str, name: &str) -> &'a Value {
    &objects[&(kind.to_string(), name.to_string())]["spec"]["template"]
}

/// The metrics port of the role named `role`.
fn metrics_port(role: &str) -> u16 {
    Role::ALL
        .iter()
        .find(|r| r.name() == role)
        .unwrap_or_else(|| panic!("no role {role}"))
        .metrics_port()
}

fn kind_of(role: &str) -> &'static str {
    match role {
        "drupe-droplet" | "wave-worker" => "DaemonSet",
        "drupe-central" | "circe-home" => "StatefulSet",
        _ => "Deployment",
    }
}

/// What the comparisons above rely on, said outright: render (and so the
/// chart) gives every role its metrics port, the scrape annotations, and
/// the OTLP variable exactly when there is an endpoint.
#[test]
fn both_sides_carry_metrics_and_the_otlp_endpoint_only_when_set() {
    for (options, endpoint) in [
        (custom_options(), Some("http://tempo.monitoring:4317")),
        (dummy_options(), None),
    ] {
        let render = rendered(&options);
        let (values, release) = values_for(&options, &render);
        let chart = comparable(chart_objects(&values, &release, no_edit));
        for role in ROLES {
            let port = metrics_port(role);
            for (side, objects) in [("render", &render), ("chart", &chart)] {
                let pod = pod_of(objects, kind_of(role), role);
                let annotations = &pod["metadata"]["annotations"];
                assert_eq!(annotations["prometheus.io/scrape"], "true", "{side} {role}");
                assert_eq!(
                    annotations["prometheus.io/port"],
                    port.to_string(),
                    "{side} {role}"
                );
                assert_eq!(annotations["prometheus.io/path"], "/metrics", "{side} {role}");
                let container = &pod["spec"]["containers"][0];
                let metrics = container["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"] == "metrics")
                    .unwrap_or_else(|| panic!("{side} {role}: no metrics port"));
                assert_eq!(metrics["containerPort"], port, "{side} {role}");
                let otlp: Vec<&Value> = container["env"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| e["name"] == "OTEL_EXPORTER_OTLP_ENDPOINT")
                    .collect();
                match endpoint {
                    Some(url) => assert_eq!(
                        otlp,
                        [&json!({"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": url})]
                    ),
                    None => assert!(otlp.is_empty(), "{side} {role}: {otlp:?}"),
                }
            }
        }
    }
}

/// `metrics.enabled: false` takes out exactly the metrics port and the
/// annotations (render has no such switch: its roles always serve metrics).
#[test]
fn metrics_disabled_drops_the_port_and_the_annotations_only() {
    let options = dummy_options();
    let render = rendered(&options);
    let (values, release) = values_for(&options, &render);
    // values.yaml's defaults but for the switch (as chart_defaults_are_render_defaults).
    let values = json!({"circeHome": values["circeHome"], "metrics": {"enabled": false}});
    let chart = comparable(chart_objects(&values, &release, no_edit));
    let mut diffs = differences(&chart, &render);
    diffs.sort();
    let mut expected = Vec::new();
    for role in ROLES {
        let port = metrics_port(role);
        let at = format!("{}/{role}.spec.template", kind_of(role));
        // The chart's single port against render's two is a length
        // mismatch: reported for the whole list.
        let grpc = json!({"name": "grpc", "containerPort": port - 2000, "protocol": "TCP"});
        let both = json!([grpc.clone(), {"name": "metrics", "containerPort": port, "protocol": "TCP"}]);
        expected.push(format!(
            "{at}.metadata.annotations: chart null vs render {}",
            json!({"prometheus.io/path": "/metrics", "prometheus.io/port": port.to_string(), "prometheus.io/scrape": "true"})
        ));
        expected.push(format!(
            "{at}.spec.containers[0].ports: chart {} vs render {both}",
            json!([grpc])
        ));
    }
    expected.sort();
    assert_eq!(diffs, expected);
}

#[test]
fn drift_on_either_side_is_caught() {
    let options = custom_options();
    let render = rendered(&options);
    let (values, release) = values_for(&options, &render);

    // The differences found once `file` of the chart has `from` (which it
    // must hold) replaced by `to`, the render left as it is.
    let edit_chart = |file: &str, from: &str, to: &str| {
        let edited = comparable(chart_objects(&values, &release, |name, src| {
            if name == file {
                assert!(src.contains(from), "{file} has no {from:?}: {src}");
                src.replace(from, to)
            } else {
                src
            }
        }));
        differences(&edited, &render)
    };
    let caught = |diffs: Vec<String>, all: &[&str]| {
        assert!(
            diffs.iter().any(|d| all.iter().all(|part| d.contains(part))),
            "{all:?} not in {diffs:?}"
        );
    };

    // A port changed in the chart only (the chart's ports are the roles' own).
    let port = Role::WaveWorker.port();
    caught(
        edit_chart(
            "wave-worker.yaml",
            &format!("containerPort: {port}"),
            "containerPort: 7209",
        ),
        &["DaemonSet/wave-worker", "containerPort"],
    );
    // A metrics port changed in the chart only (Prometheus would scrape a
    // port nothing listens on).
    let metrics = Role::CirceHome.metrics_port();
    caught(
        edit_chart(
            "circe-home.yaml",
            &format!("prometheus.io/port: \"{metrics}\""),
            "prometheus.io/port: \"9399\"",
        ),
        &["StatefulSet/circe-home.spec.template.metadata.annotations.prometheus.io/port"],
    );
    // The OTLP variable left out of one role in the chart only.
    caught(
        edit_chart(
            "wave-home.yaml",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ),
        &["Deployment/wave-home", "OTLP"],
    );
    // A headless Service turned into a load-balancing one in the chart only.
    caught(
        edit_chart("drupe-droplet.yaml", "  clusterIP: None\n", ""),
        &["Service/drupe-droplet.spec.clusterIP"],
    );
    // A home role back to a Deployment in the chart only.
    caught(
        edit_chart("drupe-central.yaml", "kind: StatefulSet\n", "kind: Deployment\n"),
        &["objects:", "(\"Deployment\", \"drupe-central\")"],
    );
    // Another governing Service named in the chart only.
    caught(
        edit_chart(
            "circe-home.yaml",
            "serviceName: circe-home\n",
            "serviceName: circe-home-pods\n",
        ),
        &["StatefulSet/circe-home.spec.serviceName"],
    );
    // A claim of the other role's size in the chart only.
    caught(
        edit_chart(
            "drupe-central.yaml",
            ".Values.storage.drupeSize",
            ".Values.storage.homeSize",
        ),
        &["StatefulSet/drupe-central.spec.volumeClaimTemplates[0].spec.resources.requests.storage"],
    );
    // A storage class of its own in the chart only.
    caught(
        edit_chart(
            "circe-home.yaml",
            "storageClassName: {{ .Values.storage.className | quote }}",
            "storageClassName: standard",
        ),
        &["StatefulSet/circe-home.spec.volumeClaimTemplates[0].spec.storageClassName"],
    );
    // Claims kept after uninstall in the chart only.
    caught(
        edit_chart(
            "circe-home.yaml",
            "whenDeleted: Delete\n",
            "whenDeleted: Retain\n",
        ),
        &["StatefulSet/circe-home.spec.persistentVolumeClaimRetentionPolicy.whenDeleted"],
    );
    // The data back on an emptyDir beside the claim in the chart only.
    caught(
        edit_chart(
            "circe-home.yaml",
            "      volumes:\n        - name: app\n",
            "      volumes:\n        - name: data\n          emptyDir: {}\n        - name: app\n",
        ),
        &["StatefulSet/circe-home.spec.template.spec.volumes"],
    );

    // A label changed in render only.
    let chart = comparable(chart_objects(&values, &release, no_edit));
    let mut drifted = render.clone();
    let key = ("Service".to_string(), "drupe-central".to_string());
    drifted.get_mut(&key).unwrap()["metadata"]["labels"]["app.kubernetes.io/component"] = json!("drupe");
    let diffs = differences(&chart, &drifted);
    assert!(
        diffs
            .iter()
            .any(|d| d.contains("Service/drupe-central.metadata.labels")),
        "{diffs:?}"
    );

    // An env variable dropped from render only.
    let mut drifted = render.clone();
    let key = ("Deployment".to_string(), "wave-home".to_string());
    drifted.get_mut(&key).unwrap()["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    assert!(!differences(&chart, &drifted).is_empty());

    // A claim template's label changed in render only.
    let mut drifted = render.clone();
    let key = ("StatefulSet".to_string(), "drupe-central".to_string());
    drifted.get_mut(&key).unwrap()["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"]
        ["app.kubernetes.io/component"] = json!("drupe");
    let diffs = differences(&chart, &drifted);
    assert!(
        diffs.iter().any(|d| d.contains(
            "StatefulSet/drupe-central.spec.volumeClaimTemplates[0].metadata.labels.app.kubernetes.io/component"
        )),
        "{diffs:?}"
    );

    // The retention policy dropped from render only.
    let mut drifted = render.clone();
    let key = ("StatefulSet".to_string(), "circe-home".to_string());
    drifted.get_mut(&key).unwrap()["spec"]
        .as_object_mut()
        .unwrap()
        .remove("persistentVolumeClaimRetentionPolicy");
    let diffs = differences(&chart, &drifted);
    assert!(
        diffs
            .iter()
            .any(|d| d.contains("StatefulSet/circe-home.spec.persistentVolumeClaimRetentionPolicy")),
        "{diffs:?}"
    );
}

/// Where each home role that keeps state has its data.
fn data_path(role: &str) -> &'static str {
    match role {
        "drupe-central" => "/var/lib/jupiter/drupe",
        "circe-home" => "/var/lib/jupiter/home",
        other => panic!("{other} keeps no state on a claim"),
    }
}

/// `storage.className`, `storage.homeSize` and `storage.drupeSize` against
/// render's `KubeOptions.storage`: the same objects, and on both sides
/// drupe-central and circe-home are StatefulSets of one pod whose `data`
/// is a claim of that size and class (none named: the cluster's default),
/// deleted with the set, not an emptyDir.
#[test]
fn storage_values_give_render_storage_claims() {
    let sized = kubernetes::Storage {
        class: None,
        home_size: "2Gi".into(),
        drupe_size: "128Mi".into(),
        ..kubernetes::Storage::default()
    };
    for (storage, defaults) in [
        (kubernetes::Storage::default(), true),
        (custom_storage(), false),
        (sized, false),
    ] {
        let mut options = dummy_options();
        options.storage = storage.clone();
        let render = rendered(&options);
        let (values, release) = values_for(&options, &render);
        // values.yaml's defaults but for the app's and, unless the defaults
        // are under test, the storage values.
        let values = if defaults {
            json!({"circeHome": values["circeHome"]})
        } else {
            json!({"circeHome": values["circeHome"], "storage": values["storage"]})
        };
        let chart = comparable(chart_objects(&values, &release, no_edit));
        let diffs = differences(&chart, &render);
        assert!(
            diffs.is_empty(),
            "chart and render differ with {storage:?}:\n{}",
            diffs.join("\n")
        );
        for (role, size) in [
            ("drupe-central", &storage.drupe_size),
            ("circe-home", &storage.home_size),
        ] {
            for (side, objects) in [("render", &render), ("chart", &chart)] {
                let what = format!("{side} {role} {storage:?}");
                let key = ("StatefulSet".to_string(), role.to_string());
                let object = objects
                    .get(&key)
                    .unwrap_or_else(|| panic!("{what}: no StatefulSet"));
                let spec = &object["spec"];
                assert_eq!(spec["replicas"], 1, "{what}");
                assert_eq!(spec["serviceName"], role, "{what}");
                assert_eq!(
                    spec["persistentVolumeClaimRetentionPolicy"],
                    json!({"whenDeleted": "Delete", "whenScaled": "Retain"}),
                    "{what}"
                );
                let mut claim = json!({
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data", "labels": object["metadata"]["labels"]},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": size}},
                    },
                });
                if let Some(class) = &storage.class {
                    claim["spec"]["storageClassName"] = json!(class);
                }
                assert_eq!(spec["volumeClaimTemplates"], json!([claim]), "{what}");
                let pod = &spec["template"]["spec"];
                let volumes = pod["volumes"].as_array().map_or(&[][..], Vec::as_slice);
                assert!(
                    volumes.iter().all(|v| v["name"] != "data"),
                    "{what}: a pod volume named data beside the claim: {volumes:?}"
                );
                assert!(
                    pod["containers"][0]["volumeMounts"]
                        .as_array()
                        .unwrap()
                        .contains(&json!({"name": "data", "mountPath": data_path(role)})),
                    "{what}"
                );
            }
        }
    }
}

/// `tls.existingSecret` against `render --tls-secret`: the same objects,
/// and on both sides every role mounts exactly its own three keys of the
/// Secret, gets the variables naming them, and is probed by its own binary
/// over TLS (the kubelet's gRPC probe cannot present a client certificate).
#[test]
fn chart_with_an_existing_tls_secret_renders_what_render_renders() {
    for (mut options, defaults) in [(custom_options(), false), (dummy_options(), true)] {
        options.tls = Some(KubeTls::Existing {
            secret: "demo-tls".into(),
        });
        let render = rendered(&options);
        let (mut values, release) = values_for(&options, &render);
        assert_eq!(values["tls"]["existingSecret"], "demo-tls");
        if defaults {
            // values.yaml's defaults but for the app's and the Secret's
            // (as chart_defaults_are_render_defaults).
            values = json!({"circeHome": values["circeHome"], "tls": values["tls"]});
        }
        let chart = comparable(chart_objects(&values, &release, no_edit));
        let diffs = differences(&chart, &render);
        assert!(
            diffs.is_empty(),
            "chart and render differ with TLS:\n{}",
            diffs.join("\n")
        );
        for role in ROLES {
            let port = metrics_port(role) - 2000;
            for (side, objects) in [("render", &render), ("chart", &chart)] {
                let spec = &pod_of(objects, kind_of(role), role)["spec"];
                pod_tls::mounts_its_own_keys(spec, role, "demo-tls", &format!("{side} {role}"));
                assert_eq!(
                    spec["containers"][0]["ports"][0]["containerPort"],
                    json!(port),
                    "{side} {role}: the probed port is the role's"
                );
            }
        }

        // One role given another's key in the chart only is caught.
        let edited = comparable(chart_objects(&values, &release, |name, src| {
            if name == "wave-worker.yaml" {
                assert!(src.contains("key: wave-worker-key.pem"));
                src.replace("key: wave-worker-key.pem", "key: wave-home-key.pem")
            } else {
                src
            }
        }));
        let diffs = differences(&edited, &render);
        assert!(
            diffs
                .iter()
                .any(|d| d.contains("DaemonSet/wave-worker") && d.contains("items[2].key")),
            "{diffs:?}"
        );
    }
}

/// Without `tls.existingSecret` (values.yaml's default) no pod has a TLS
/// volume, variable or exec probe: the comparisons above then hold with
/// render's plaintext objects, and this says it outright.
#[test]
fn without_a_tls_secret_nothing_of_tls_is_rendered() {
    let options = dummy_options();
    let render = rendered(&options);
    let (values, release) = values_for(&options, &render);
    let values = json!({"circeHome": values["circeHome"]});
    let chart = comparable(chart_objects(&values, &release, no_edit));
    for (side, objects) in [("render", &render), ("chart", &chart)] {
        for object in objects.values() {
            let text = object.to_string();
            assert!(
                !text.contains("JUPITER_TLS")
                    && !text.contains("jupiter-role")
                    && !text.contains("/etc/jupiter/tls"),
                "{side}: {text}"
            );
        }
    }
}

#[test]
fn the_renderer_refuses_what_it_does_not_know() {
    let context = json!({"Values": {"a": {"b": "x"}, "empty": ""}, "Release": {"Name": "r"}});
    assert_eq!(
        render_template("k: {{ .Values.a.b | quote }}", &context).unwrap(),
        "k: \"x\""
    );
    assert_eq!(
        render_template("k: {{- toYaml .Values.a | nindent 2 }}", &context).unwrap(),
        "k:\n  b: x"
    );
    assert_eq!(
        render_template("a\n  {{- if .Values.empty }}\nno\n  {{- end }}\nb", &context).unwrap(),
        "a\nb"
    );
    assert_eq!(
        render_template("{{- if .Values.empty }}no{{- else }} yes{{- end }}", &context).unwrap(),
        " yes"
    );
    assert_eq!(
        render_template("{{- if .Values.a.b }} yes{{- else }}no{{- end }}", &context).unwrap(),
        " yes"
    );
    assert!(
        render_template("{{ else }}", &context).is_err(),
        "else without if"
    );
    assert!(
        render_template("{{ .Values.a.c }}", &context).is_err(),
        "missing value"
    );
    assert!(
        render_template("{{ include \"x\" . }}", &context).is_err(),
        "unknown action"
    );
    assert!(
        render_template("{{ .Values.a.b | upper }}", &context).is_err(),
        "unknown function"
    );
    assert!(
        render_template("{{ if .Values.a.b }}", &context).is_err(),
        "unclosed if"
    );
}
