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
