//! `up --backend docker --tls` through the CLI on the real engine: each
//! container mounts only its own certificate folder, read-only; every role
//! answers the user's certificate (real grpcurl, as `status --json` names
//! the files) and refuses plaintext; `submit` finishes the inputs over TLS;
//! `down` removes the certificates. Skips loudly without a Docker engine.

use jupiter_tests::docker::{engine_or_skip, ensure_images, inspect, Teardown};
use jupiter_tests::grpcurl::{self, text};
use jupiter_tests::{example, Sandbox};
use std::path::PathBuf;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_docker_deployment_speaks_only_mutual_tls() {
    let Some(engine) = engine_or_skip("a_docker_deployment_speaks_only_mutual_tls").await else {
        return;
    };
    ensure_images().await;
    let sandbox = Sandbox::new();
    let cli = |args: &[&str]| jupiter_tests::docker::cli(&sandbox, args);
    let app = example("dummy_app");
    let output = sandbox.path("output");
    let (ok, up) = cli(&[
        "up",
        app.to_str().expect("utf-8"),
        "--backend",
        "docker",
        "--nodes",
        "2",
        "--scheduler",
        "random",
        "--tls",
        "--output",
        output.to_str().expect("utf-8"),
    ]);
    assert!(ok, "up --tls: {up}");
    let id = up
        .split_whitespace()
        .find(|w| w.starts_with("jupiter-dummy-app-"))
        .unwrap_or_else(|| panic!("up names the deployment: {up}"))
        .to_string();
    let _teardown = Teardown(id.clone());

    let (ok, json) = cli(&["status", "--json"]);
    assert!(ok, "status --json: {json}");
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let file = |key: &str| PathBuf::from(report["tls"][key].as_str().expect("a path"));
    let (ca, cert, key) = (file("ca"), file("cert"), file("key"));
    let tls_dir = sandbox.path(&id).join("tls");
    assert_eq!(ca, tls_dir.join("ca.pem"), "beside the state file");
    let roles = report["roles"].as_array().expect("roles").clone();
    assert_eq!(roles.len(), 3 + 2 * 2 + 7, "{report}");

    let (ca, cert, key) = (
        ca.display().to_string(),
        cert.display().to_string(),
        key.display().to_string(),
    );
    for role in &roles {
        let container = role["container"].as_str().expect("a container");
        // Its own folder, and nothing of any other role's.
        let mounts = inspect(
            &engine,
            container,
            "{{range .Mounts}}{{.Source}}>{{.Destination}}>{{.RW}};{{end}}",
        )
        .await;
        let tls_mounts: Vec<&str> = mounts
            .split(';')
            .filter(|m| m.contains("/etc/jupiter/tls"))
            .collect();
        assert_eq!(tls_mounts.len(), 1, "{container}: {mounts}");
        let (source, rest) = tls_mounts[0].split_once('>').expect("source");
        assert!(
            source.starts_with(&tls_dir.join("roles").display().to_string()) && rest.ends_with(">false"),
            "{container} mounts its own folder read-only: {}",
            tls_mounts[0]
        );
        let env = inspect(&engine, container, "{{range .Config.Env}}{{.}};{{end}}").await;
        assert!(
            env.contains("JUPITER_TLS_CERT=/etc/jupiter/tls/cert.pem"),
            "{container}: {env}"
        );

        let address = role["url"].as_str().expect("url").trim_start_matches("http://");
        let out = grpcurl::call(
            &[
                "-cacert",
                &ca,
                "-cert",
                &cert,
                "-key",
                &key,
                // Reached at a container address: the certificate's name.
                "-servername",
                jupiter_common::tls::SERVER_NAME,
                address,
                "list",
            ],
            None,
        )
        .await;
        assert!(
            out.status.success() && text(&out).contains("grpc.health.v1.Health"),
            "{container} over TLS: {}",
            text(&out)
        );
        let out = grpcurl::call(&["-connect-timeout", "3", "-plaintext", address, "list"], None).await;
        assert!(
            !out.status.success(),
            "{container} answered plaintext: {}",
            text(&out)
        );
    }

    let inputs = example("dummy_app").join("sample_input");
    let (ok, submitted) = cli(&["submit", inputs.to_str().expect("utf-8")]);
    assert!(
        ok && submitted.contains("3/3 inputs ok"),
        "submit over TLS: {submitted}"
    );
    let (ok, down) = cli(&["down"]);
    assert!(ok, "down: {down}");
    assert!(!tls_dir.exists(), "down removes the certificates");
}
