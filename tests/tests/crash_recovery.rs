//! Kill circe-workers while inputs are in flight and start them again on
//! the same queue folder: every input still yields exactly one set of outputs.

use jupiter_common::app::App;
use jupiter_common::proto::circe::home::v1::HomeStatusRequest;
use jupiter_tests::{assert_outputs, example, expected, expected_for, Sandbox};
use jupiterctl::session;
use std::time::Duration;

async fn wait_done(client: &session_client::Client, at_least: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let status = client
            .clone()
            .status(HomeStatusRequest {})
            .await
            .expect("home status")
            .into_inner();
        if status.done + status.failed >= at_least || tokio::time::Instant::now() > deadline {
            return status.done;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

mod session_client {
    pub type Client = jupiter_common::proto::circe::home::v1::circe_home_client::CirceHomeClient<
        jupiter_common::serve::Channel,
    >;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_workers_restart_on_their_queue_and_lose_nothing() {
    const INPUTS: usize = 40;
    let sandbox = Sandbox::new();
    let inputs = sandbox.inputs(INPUTS, "", "botnet.ipsum");
    let app = App::load(&example("dummy_app")).expect("example loads");
    let mut deployment = sandbox.deploy_local(&app, 3, 11).await;

    let client = session::client(&deployment.summary.endpoints().circe_home)
        .await
        .expect("client");
    let watch = session::watch(&client).await.expect("watch");
    let files = session::expand_inputs(std::slice::from_ref(&inputs)).expect("inputs");
    let ids = session::submit_all(&client, &files).await.expect("submitted");

    // A join with four parents, killed once the first inputs are through
    // and started again on its queue.
    wait_done(&client, 3).await;
    deployment
        .restart("circe-worker task4")
        .await
        .expect("task4 restarts");

    // A fan-out task, killed a little later.
    let done_before = wait_done(&client, 10).await;
    deployment
        .restart("circe-worker task2")
        .await
        .expect("task2 restarts");
    assert!(
        (done_before as usize) < INPUTS,
        "the kill happened while inputs were in flight"
    );

    let results = session::collect(
        watch,
        &ids,
        Duration::from_secs(240),
        false,
        std::future::pending(),
    )
    .await
    .expect("all results");
    assert_eq!(results.len(), INPUTS);
    for r in &results {
        assert!(r.ok, "input {} failed: {}", r.input_id, r.error);
    }
    let status = client
        .clone()
        .status(HomeStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(
        (status.done, status.failed, status.in_flight),
        (INPUTS as u64, 0, 0)
    );
    for (input, files) in expected_for(&inputs, expected::dummy_app) {
        assert_outputs(&sandbox.path("output"), &input, &files);
    }
    deployment.down().await.expect("down");
}

/// The body of `GET /metrics` at `url` (`http://HOST:PORT/metrics`), over a
/// plain socket: the exporter speaks HTTP/1.1.
async fn scrape(url: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or(url);
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

/// A role's metrics port is held by jupiterctl for the deployment's life,
/// not only reserved by number: nothing else can bind it, and a role
/// killed and started again serves metrics on it at once (a port given
/// back between two starts was once taken by a parallel test's bind to
/// port 0, and the role never started).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_role_serves_metrics_on_the_port_jupiterctl_holds() {
    let sandbox = Sandbox::new();
    let app = App::load(&example("dummy_app")).expect("example loads");
    let mut deployment = sandbox.deploy_local(&app, 3, 5).await;
    let roles = deployment.summary.roles.clone();
    assert!(roles.len() > 10, "roles: {roles:?}");
    for role in &roles {
        let url = role
            .metrics
            .as_deref()
            .unwrap_or_else(|| panic!("{} has no metrics URL", role.label()));
        let address = url.trim_start_matches("http://").trim_end_matches("/metrics");
        let taken = std::net::TcpListener::bind(address)
            .map(|_| ())
            .map_err(|e| e.kind());
        assert_eq!(
            taken,
            Err(std::io::ErrorKind::AddrInUse),
            "{}'s metrics port {address} is free for anyone",
            role.label()
        );
        let body = scrape(url).await.expect("scrape");
        assert!(body.contains("jupiter_role_info"), "{}: {body}", role.label());
    }

    let worker = roles
        .iter()
        .find(|r| r.label() == "circe-worker task4")
        .expect("task4's worker");
    deployment
        .restart("circe-worker task4")
        .await
        .expect("task4 restarts");
    let url = worker.metrics.as_deref().expect("metrics URL");
    let body = scrape(url).await.expect("scrape after the restart");
    assert!(body.contains("jupiter_role_info"), "{body}");
    deployment.down().await.expect("down");
}
