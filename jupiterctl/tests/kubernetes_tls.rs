//! Mutual TLS through the API server's port-forward: the stand-in
//! cluster's roles speak only mutual TLS, and jupiterctl's calls reach
//! them through the forwarded WebSockets, the handshake end to end (the
//! API server sees ciphertext). Its own binary: this process presents the
//! cluster's user certificate to every server it dials.

#[path = "support/apiserver.rs"]
mod apiserver;
#[path = "support/kube_cluster.rs"]
mod kube_cluster;

use jupiter_common::app::App;
use jupiterctl::deployment::Deployment;
use jupiterctl::kubernetes::Kubernetes;
use kube_cluster::{kube_config, run_samples, StandIn};
use std::path::Path;
use std::time::Duration;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_through_port_forwards_to_roles_that_speak_only_mutual_tls() {
    let app_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/dummy_app");
    let app = App::load(&app_dir).expect("dummy app");
    let work = tempfile::tempdir().unwrap();
    let cluster = StandIn::start(&app, work.path(), None, true).await;
    let user = cluster
        .client_tls
        .as_ref()
        .expect("the cluster's user files")
        .load()
        .unwrap();
    jupiter_common::tls::use_everywhere(user);

    let (config, kube) = kube_config(&app_dir, &["--scheduler", "heft"]);
    let backend = Kubernetes::with_client(cluster.client.clone(), kube);
    let deployment = Deployment::up(Box::new(backend), &config.app, &config.placement)
        .await
        .expect("up, mapped with HEFT through TLS over the forwards");
    assert_eq!(deployment.summary.scheduler, "heft");
    let home = deployment.summary.endpoints().circe_home;
    assert!(home.starts_with("http://127.0.0.1:"), "{home}");

    // In plaintext, the same forward reaches a server that speaks only TLS.
    let plain = tonic::transport::Endpoint::from_shared(home.clone())
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await;
    let refused = match plain {
        Err(_) => true,
        Ok(channel) => HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .is_err(),
    };
    assert!(refused, "circe-home answered plaintext through the forward");

    // Through TLS over the forward.
    run_samples(&app, &home).await;
    assert!(!cluster.server.forwarded().is_empty());
    deployment.down().await.expect("down");
    cluster.stop().await;
}
