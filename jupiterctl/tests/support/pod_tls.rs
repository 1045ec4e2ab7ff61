//! What a pod of a `--tls` deployment must carry, the same whether
//! `up` sent it, `render` printed it or the chart made it.

use serde_json::{json, Value};

/// The pod `spec` mounts exactly role `id`'s keys of Secret `secret`
/// read-only at /etc/jupiter/tls, names its three files in
/// `JUPITER_TLS_*` and is probed by its own binary (`jupiter-role probe`,
/// over TLS: the kubelet's gRPC probe has no client certificate). `what`
/// names the pod in failures.
pub fn mounts_its_own_keys(spec: &Value, id: &str, secret: &str, what: &str) {
    let volumes: Vec<&Value> = spec["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter(|v| v["name"] == "tls")
        .collect();
    assert_eq!(
        volumes,
        [&json!({"name": "tls", "secret": {
            "secretName": secret,
            "defaultMode": 0o400,
            "items": [
                {"key": "ca.pem", "path": "ca.pem"},
                {"key": format!("{id}.pem"), "path": "cert.pem"},
                {"key": format!("{id}-key.pem"), "path": "key.pem"},
            ],
        }})],
        "{what}"
    );
    let container = &spec["containers"][0];
    assert!(
        container["volumeMounts"]
            .as_array()
            .expect("volumeMounts")
            .contains(&json!({"name": "tls", "mountPath": "/etc/jupiter/tls", "readOnly": true})),
        "{what}"
    );
    let env: Vec<&Value> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with("JUPITER_TLS_")))
        .collect();
    assert_eq!(
        env,
        [
            &json!({"name": "JUPITER_TLS_CA", "value": "/etc/jupiter/tls/ca.pem"}),
            &json!({"name": "JUPITER_TLS_CERT", "value": "/etc/jupiter/tls/cert.pem"}),
            &json!({"name": "JUPITER_TLS_KEY", "value": "/etc/jupiter/tls/key.pem"}),
        ],
        "{what}"
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            container[probe]["exec"],
            json!({"command": ["/usr/local/bin/jupiter-role", "probe"]}),
            "{what} {probe}"
        );
        assert_eq!(container[probe]["timeoutSeconds"], json!(5), "{what} {probe}");
        assert!(container[probe]["grpc"].is_null(), "{what} {probe}");
    }
}
