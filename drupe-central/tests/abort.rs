//! A drupe-central whose serve task is aborted (how jupiterctl kills a
//! role) lets go of its database at once: a new one serves on the same
//! file right away, with what the first one stored.

use drupe_central::Config;
use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
use jupiter_common::proto::drupe::central::v1::ProfileRequest;
use jupiter_common::proto::drupe::droplet::v1::NodeResources;
use jupiter_common::serve::{channel, url_of, wait_healthy};
use std::future::pending;
use std::time::Duration;
use tokio::net::TcpListener;

/// Serves a central on `db`; fails the test if serve ends before it is healthy.
async fn start(db: &std::path::Path) -> (tokio::task::JoinHandle<drupe_central::Result<()>>, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = url_of(&listener).expect("url");
    let mut task = tokio::spawn(drupe_central::serve(
        Config::new(db.to_path_buf()),
        listener,
        pending(),
    ));
    tokio::select! {
        ended = &mut task => panic!("drupe-central ended before it was healthy: {ended:?}"),
        healthy = wait_healthy("drupe-central", &url, Duration::from_secs(10)) => healthy.expect("healthy"),
    }
    (task, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_central_frees_its_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("central.redb");

    let (first, url) = start(&db).await;
    let mut client = DrupeCentralClient::new(channel(&url).expect("channel"));
    client
        .report_resources(NodeResources {
            node: "n1".into(),
            address: "http://127.0.0.1:1".into(),
            cpu_count: 2,
            ..Default::default()
        })
        .await
        .expect("report");
    first.abort();
    assert!(first.await.expect_err("aborted").is_cancelled());

    let (second, url) = start(&db).await;
    let nodes = DrupeCentralClient::new(channel(&url).expect("channel"))
        .get_resource_profile(ProfileRequest {})
        .await
        .expect("profile")
        .into_inner()
        .nodes;
    assert_eq!(nodes.iter().map(|n| n.node.as_str()).collect::<Vec<_>>(), ["n1"]);
    second.abort();
}
