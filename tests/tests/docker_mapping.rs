//! A network-aware mapping pays off end to end, on the real engine: two
//! emulated nodes that differ in CPU (0.25 against 1.0) and in link rate
//! (5 against 100 Mbit/s), `examples/mapping` (CPU-heavy tasks, MB-sized
//! edges) with its inputs one at a time. HEFT, over what DRUPE measured and
//! the execution profile, must make inputs finish at least twice as fast as
//! everything on the slow node, and predict its own makespan within 30%.
//! Without a Docker engine the test skips with a loud message.

use jupiter_common::app::App;
use jupiter_tests::docker::{backend, engine_or_skip, ensure_images};
use jupiter_tests::{example, scheduled, Sandbox};
use jupiterctl::deployment::Scheduler;
use jupiterctl::node_list::NodeSpec;
use jupiterctl::report::median;
use jupiterctl::run::RunOutcome;
use jupiterctl::session::Pace;
use std::path::PathBuf;
use std::time::Duration;

fn nodes() -> Vec<NodeSpec> {
    [("slow", 0.25, 5), ("fast", 1.0, 100)]
        .into_iter()
        .map(|(name, cpus, mbit)| NodeSpec {
            name: name.into(),
            cpus,
            memory_bytes: 384 << 20,
            bandwidth_bits_per_sec: Some(mbit * 1_000_000),
            delay: None,
        })
        .collect()
}

async fn run(sandbox: &Sandbox, app: &App, request: jupiterctl::deployment::PlacementRequest) -> RunOutcome {
    let inputs: Vec<PathBuf> = jupiterctl::session::expand_inputs(&app.sample_inputs)
        .expect("sample inputs")
        .into_iter()
        .take(3)
        .collect();
    let outcome = jupiterctl::run::run(
        backend(sandbox, app, nodes()).await,
        app,
        &request,
        &inputs,
        Pace::OneAtATime,
        Duration::from_secs(600),
        false,
    )
    .await
    .expect("the run completes");
    assert!(outcome.all_ok(), "every input ok: {:?}", outcome.results);
    outcome
}

fn median_ms(outcome: &RunOutcome) -> f64 {
    median(&outcome.results.iter().map(|r| r.makespan_ms).collect::<Vec<_>>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn heft_beats_everything_on_the_slowest_node_by_two() {
    if engine_or_skip("heft_beats_everything_on_the_slowest_node_by_two")
        .await
        .is_none()
    {
        return;
    }
    ensure_images().await;
    let app = App::load(&example("mapping")).expect("example app loads");

    let sandbox = Sandbox::new();
    let heft = run(&sandbox, &app, scheduled(Scheduler::Heft, 1)).await;
    let heft_ms = median_ms(&heft);
    let predicted_ms = heft.summary.predicted_makespan_secs * 1000.0;

    let sandbox = Sandbox::new();
    let mut slowest = scheduled(Scheduler::Static, 1);
    slowest.static_mapping = app
        .tasks
        .iter()
        .map(|t| (t.name.clone(), "slow".to_string()))
        .collect();
    let slow_ms = median_ms(&run(&sandbox, &app, slowest).await);

    eprintln!(
        "heft {heft_ms:.0} ms (predicted {predicted_ms:.0} ms, mapping {:?}); all on the slowest node {slow_ms:.0} ms",
        heft.summary.mapping
    );
    assert!(
        heft_ms * 2.0 <= slow_ms,
        "HEFT's median makespan {heft_ms:.0} ms is not half of the slowest node's {slow_ms:.0} ms"
    );
    assert!(
        (heft_ms / predicted_ms - 1.0).abs() <= 0.3,
        "HEFT measured {heft_ms:.0} ms against a prediction of {predicted_ms:.0} ms: more than 30% off"
    );
}
