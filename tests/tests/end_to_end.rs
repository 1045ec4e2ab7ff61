//! 100 inputs through the legacy 7-task app and the join app on 3 local
//! nodes: every output byte-exact, every makespan recorded.

use jupiter_common::app::App;
use jupiter_tests::{assert_outputs, example, expected, expected_for, random, Expected, Sandbox};
use std::time::Duration;

async fn run_hundred(app: &str, prefix: &str, suffix: &str, model: fn(&str, &[u8]) -> Expected, seed: u64) {
    let sandbox = Sandbox::new();
    let inputs = sandbox.inputs(100, prefix, suffix);
    let app = App::load(&example(app)).expect("example app loads");
    let tasks = app.tasks.len();
    let outcome = jupiterctl::run::run(
        sandbox.local(&app, 3),
        &app,
        &random(seed),
        std::slice::from_ref(&inputs),
        jupiterctl::session::Pace::AllAtOnce,
        Duration::from_secs(300),
        false,
    )
    .await
    .expect("run completes");
    assert_eq!(outcome.results.len(), 100);
    for result in &outcome.results {
        assert!(result.ok, "input {} failed: {}", result.input_id, result.error);
        assert!(
            result.makespan_ms > 0.0,
            "makespan of {} recorded",
            result.input_id
        );
        assert_eq!(
            result.tasks.len(),
            tasks,
            "every task reported for {}",
            result.input_id
        );
    }
    // The mapping really spreads the app over the nodes.
    let nodes: std::collections::BTreeSet<_> = outcome.summary.mapping.values().collect();
    assert!(
        nodes.len() > 1,
        "random mapping uses several nodes: {:?}",
        outcome.summary.mapping
    );
    for (input, files) in expected_for(&inputs, model) {
        assert_outputs(&sandbox.path("output"), &input, &files);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_inputs_through_the_legacy_dummy_app() {
    run_hundred("dummy_app", "", "botnet.ipsum", expected::dummy_app, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_inputs_through_the_join_app() {
    run_hundred("fanjoin", "in", ".txt", expected::fanjoin, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_chain_example_runs_its_sample_inputs() {
    let sandbox = Sandbox::new();
    let app = App::load(&example("chain")).expect("example app loads");
    let samples = app.sample_inputs.clone();
    assert!(!samples.is_empty());
    let outcome = sandbox.run_samples(&app, 2, 9).await;
    assert_eq!(outcome.results.len(), samples.len());
    let inputs = samples[0].parent().expect("inputs folder");
    for (input, files) in expected_for(inputs, expected::chain) {
        assert_outputs(&sandbox.path("output"), &input, &files);
    }
}
