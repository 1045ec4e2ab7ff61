//! Real container crashes on the Docker backend: while 60 inputs run
//! through the fan-out/join example, `docker kill` the join task's
//! circe-worker and then circe-home. Docker does not restart a container
//! killed from outside; the run's watch starts each again on its volume,
//! and every input still finishes exactly once with byte-exact outputs.
//! Without a Docker engine the test skips with a loud message.

use jupiter_common::app::App;
use jupiter_tests::docker::{backend, engine_or_skip, ensure_images, three_nodes, Teardown};
use jupiter_tests::{assert_outputs, example, expected, expected_for, random, Sandbox};
use jupiterctl::deployment::Deployment;
use jupiterctl::docker::engine::Engine;
use jupiterctl::session;
use std::path::Path;
use std::time::Duration;

const INPUTS: usize = 60;

/// Output folders of finished inputs (circe-home's own data is hidden).
fn finished(output: &Path) -> usize {
    std::fs::read_dir(output).map_or(0, |d| {
        d.filter(|e| {
            e.as_ref()
                .is_ok_and(|e| !e.file_name().to_string_lossy().starts_with('.'))
        })
        .count()
    })
}

async fn restart_count(engine: &Engine, container: &str) -> String {
    engine
        .run(&[
            "inspect",
            "--format",
            "{{.State.Running}} {{.RestartCount}}",
            container,
        ])
        .await
        .expect("docker inspect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_killed_worker_and_home_come_back_and_nothing_is_lost() {
    let Some(engine) = engine_or_skip("docker_killed_worker_and_home_come_back_and_nothing_is_lost").await
    else {
        return;
    };
    ensure_images().await;
    let sandbox = Sandbox::new();
    let inputs = sandbox.inputs(INPUTS, "in", ".txt");
    let app = App::load(&example("fanjoin")).expect("example app loads");
    let deployment = Deployment::up(backend(&sandbox, &app, three_nodes()).await, &app, &random(3))
        .await
        .expect("docker deployment comes up");
    let _teardown = Teardown(deployment.summary.deployment.clone());
    let container_of = |label: &str| {
        deployment
            .summary
            .roles
            .iter()
            .find(|r| r.label() == label)
            .and_then(|r| r.container.clone())
            .unwrap_or_else(|| panic!("{label} has a container"))
    };
    let (join, home) = (container_of("circe-worker join"), container_of("circe-home"));
    let output = sandbox.path("output");
    let killer = {
        let (engine, output, join, home) = (engine.clone(), output.clone(), join.clone(), home.clone());
        async move {
            // Mid-run: once the first inputs are out, then again later.
            while finished(&output) < 3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            engine.run(&["kill", &join]).await.expect("docker kill join");
            let at_first = finished(&output);
            while finished(&output) < at_first + 3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            engine
                .run(&["kill", &home])
                .await
                .expect("docker kill circe-home");
            finished(&output)
        }
    };
    let killer = tokio::spawn(killer);
    let files = session::expand_inputs(std::slice::from_ref(&inputs)).expect("inputs");
    let (results, _) = session::submit_and_collect(
        &deployment.summary.endpoints().circe_home,
        &files,
        Duration::from_secs(240),
        false,
        deployment.stopped(),
    )
    .await
    .expect("every input finishes despite the kills");
    let at_home_kill = killer.await.expect("killer");
    assert!(
        at_home_kill < INPUTS,
        "circe-home was killed mid-run ({at_home_kill} of {INPUTS} done)"
    );
    assert_eq!(results.len(), INPUTS);
    for r in &results {
        assert!(r.ok, "input {} failed: {}", r.input_id, r.error);
    }
    for (input, files) in expected_for(&inputs, expected::fanjoin) {
        assert_outputs(&output, &input, &files);
    }
    assert_eq!(
        finished(&output),
        INPUTS,
        "one output folder per input, nothing extra"
    );
    for container in [&join, &home] {
        let state = restart_count(&engine, container).await;
        assert!(state.starts_with("true"), "{container} runs again: {state}");
    }
    deployment.down().await.expect("down");
}
