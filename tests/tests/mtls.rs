//! `--tls`: every role speaks only mutual TLS with the deployment's own CA.
//! Seen as a user would: `jupiterctl up --tls` (each role its own process),
//! `status --json` naming the user's files, the real grpcurl with them
//! listing and health-checking every role, and `submit` finishing inputs;
//! plaintext, a client without a certificate and one from another CA
//! (a stranger) all refused. In process too, with tonic clients.

use jupiter_common::app::App;
use jupiter_tests::cli::{down, Up};
use jupiter_tests::grpcurl::{self, listed, served, text};
use jupiter_tests::{assert_outputs, example, expected, expected_for, Sandbox};
use jupiterctl::deployment::{Deployment, DeploymentState};
use jupiterctl::local::Local;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// A certificate and key from a CA of another deployment: a stranger's.
fn stranger(dir: &Path) -> jupiter_common::tls::Files {
    jupiterctl::tls::make(dir, "stranger", &[]).expect("a stranger's certificates")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

fn path_of(value: &serde_json::Value) -> PathBuf {
    PathBuf::from(value.as_str().expect("a path"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_needs_the_users_certificate_and_strangers_are_refused() {
    let sandbox = Sandbox::new();
    let up = Up::start_with(&sandbox, &example("fanjoin"), 5, &["--tls"]).await;
    let status = up.cli.status().await.expect("status --json");
    let tls = &status["tls"];
    let (ca, cert, key) = (path_of(&tls["ca"]), path_of(&tls["cert"]), path_of(&tls["key"]));
    for file in [&ca, &cert, &key] {
        assert_eq!(mode(file), 0o600, "{} is private", file.display());
    }
    assert_eq!(mode(ca.parent().expect("folder")), 0o700);
    let state: DeploymentState =
        serde_json::from_slice(&std::fs::read(&up.cli.state).expect("state")).expect("state parses");
    let roles = jupiter_tests::role_services(&state.summary().endpoints());
    let tasks = App::load(&example("fanjoin")).expect("example loads").tasks.len();
    assert_eq!(roles.len(), 3 + 2 * 3 + tasks, "every role of fanjoin on 3 nodes");

    let other = stranger(&sandbox.path("stranger"));
    let (ca, cert, key) = (
        ca.display().to_string(),
        cert.display().to_string(),
        key.display().to_string(),
    );
    let user = ["-cacert", &ca, "-cert", &cert, "-key", &key];
    for (url, service) in &roles {
        let address = url.trim_start_matches("http://");
        let with =
            |args: &[&str]| -> Vec<String> { user.iter().chain(args).map(|s| s.to_string()).collect() };
        let run = |args: Vec<String>| async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            grpcurl::call(&args, None).await
        };
        let out = run(with(&[address, "list"])).await;
        assert!(out.status.success(), "{address} list over TLS: {}", text(&out));
        assert_eq!(listed(&out), served(service), "{address}: exactly its services");
        let request = format!("{{\"service\":\"{service}\"}}");
        let out = run(with(&["-d", &request, address, "grpc.health.v1.Health/Check"])).await;
        assert!(
            out.status.success() && text(&out).contains("SERVING"),
            "{address} health over TLS: {}",
            text(&out)
        );
    }

    // Refused, every role at once: grpc-go redials a refused connection
    // until its deadline (3 s here), so one after another would take long.
    let (s_cert, s_key) = (other.cert.display().to_string(), other.key.display().to_string());
    let mut refusals = Vec::new();
    for (url, _) in &roles {
        let address = url.trim_start_matches("http://").to_string();
        let cases: [(&str, Vec<&str>); 3] = [
            ("plaintext", vec!["-plaintext"]),
            ("a client without a certificate", vec!["-cacert", &ca]),
            (
                "a stranger (a certificate of another CA)",
                vec!["-cacert", &ca, "-cert", &s_cert, "-key", &s_key],
            ),
        ];
        for (who, flags) in cases {
            let mut args: Vec<String> = ["-connect-timeout", "3"].iter().map(|s| s.to_string()).collect();
            args.extend(flags.iter().map(|s| s.to_string()));
            args.extend([address.clone(), "list".to_string()]);
            let address = address.clone();
            refusals.push(async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                (address, who, grpcurl::call(&args, None).await)
            });
        }
    }
    for (address, who, out) in futures::future::join_all(refusals).await {
        assert!(!out.status.success(), "{address} answered {who}: {}", text(&out));
    }

    // `ROLE probe`, Kubernetes' exec probe under --tls: the role's own
    // binary asks its health with the role's certificate, and without one
    // it is refused like anyone.
    let wave_home = state
        .summary()
        .roles
        .iter()
        .find(|r| r.role == jupiter_common::role::Role::WaveHome)
        .expect("wave-home")
        .url
        .trim_start_matches("http://")
        .to_string();
    let binary = jupiter_tests::release_bin("wave-home").await;
    let own = jupiterctl::tls::role_files(&up.work.join("tls"), jupiter_common::role::Role::WaveHome, None);
    let probe = |tls: bool| {
        let mut command = std::process::Command::new(&binary);
        command.args(["probe", "--listen", &wave_home]);
        if tls {
            command.args(jupiter_common::tls::TlsFlags::args(&own));
        }
        command.output().expect("the probe runs")
    };
    let ok = probe(true);
    assert!(ok.status.success(), "probe with the role's certificate: {ok:?}");
    let refused = probe(false);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("wave-home is not healthy"),
        "probe without a certificate: {said}"
    );

    // The user's own jupiterctl talks TLS from the state file.
    let inputs = sandbox.inputs(6, "in", ".txt");
    let submit = up
        .cli
        .command(&["submit", &inputs.display().to_string(), "--timeout", "120"])
        .output()
        .await
        .expect("submit runs");
    assert!(
        submit.status.success(),
        "submit over TLS: {}",
        String::from_utf8_lossy(&submit.stderr)
    );
    for (input, files) in expected_for(&inputs, expected::fanjoin) {
        assert_outputs(&up.output, &input, &files);
    }
    let mut process = up.process;
    down(&up.cli, &mut process).await;
}

async fn health(endpoint: Endpoint) -> Result<(), String> {
    let channel = endpoint
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn tls_endpoint(url: &str, files: &jupiter_common::tls::Files, ca: &Path) -> Endpoint {
    let read = |p: &Path| std::fs::read(p).expect("pem");
    let config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(ca)))
        .identity(Identity::from_pem(read(&files.cert), read(&files.key)))
        .domain_name(jupiter_common::tls::SERVER_NAME);
    Endpoint::from_shared(url.replacen("http://", "https://", 1))
        .expect("url")
        .tls_config(config)
        .expect("tls config")
}

/// In process: inputs finish over TLS, and a tonic client gets in only with
/// a certificate of the deployment's CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_roles_refuse_plaintext_and_strangers() {
    let sandbox = Sandbox::new();
    let app = App::load(&example("fanjoin")).expect("example loads");
    let mut config = sandbox.local_config(2);
    config.tls = true;
    let mut deployment = Deployment::up(
        Box::new(Local::new(&app.name, config)),
        &app,
        &jupiter_tests::random(3),
    )
    .await
    .expect("a TLS deployment comes up");
    let user = deployment.summary.tls.clone().expect("the user's files");
    assert!(user.ca.starts_with(sandbox.path("work").join("tls")));
    let inputs = sandbox.inputs(4, "in", ".txt");
    let files = jupiterctl::session::expand_inputs(std::slice::from_ref(&inputs)).expect("inputs");
    let (results, _) = jupiterctl::session::submit_and_collect(
        &deployment.summary.endpoints().circe_home,
        &files,
        Duration::from_secs(120),
        false,
        deployment.stopped(),
    )
    .await
    .expect("inputs finish over TLS");
    assert!(results.iter().all(|r| r.ok), "{results:?}");
    for (input, files) in expected_for(&inputs, expected::fanjoin) {
        assert_outputs(&sandbox.path("output"), &input, &files);
    }

    let other = stranger(&sandbox.path("stranger"));
    for role in deployment.backend().roles() {
        let url = &role.url;
        health(tls_endpoint(url, &user, &user.ca))
            .await
            .unwrap_or_else(|e| panic!("{} with the user's certificate: {e}", role.label()));
        let plain = health(Endpoint::from_shared(url.clone()).expect("url")).await;
        assert!(plain.is_err(), "{} answered plaintext", role.label());
        let strange = health(tls_endpoint(url, &other, &user.ca)).await;
        assert!(strange.is_err(), "{} answered a stranger", role.label());
        // Nor does a client trust a server of another CA.
        let wrong_ca = health(tls_endpoint(url, &user, &other.ca)).await;
        assert!(
            wrong_ca.is_err(),
            "{} passed for a server of another CA",
            role.label()
        );
    }
    deployment.down().await.expect("down");
}
