//! Profile drift on the real engine: `examples/mapping` mapped by HEFT
//! over two emulated nodes at 100 Mbit/s, inputs one after the other; mid
//! run node `b`'s link is shaped down to 4 Mbit/s (`tc qdisc replace` on
//! every container of the node, in place, as `tc change` would). DRUPE measures the
//! slow links, the run's watch sees the drift in two readings, wave-home
//! maps again, and new inputs take the new placement while the one in
//! flight finishes where it started. Every input completes; the inputs of
//! the new placement ran every task where the new mapping says, and faster
//! than those caught on the slowed link. Without a Docker engine the test
//! skips with a loud message.

use jupiter_common::app::App;
use jupiter_common::proto::circe::home::v1::{HomeStatusRequest, InputResult};
use jupiter_tests::docker::{
    backend_probing, engine_or_skip, ensure_images, inspect, node_containers, Teardown,
};
use jupiter_tests::{example, finished, scheduled, wait_finished, Sandbox};
use jupiterctl::deployment::{Deployment, ProbeOptions, Scheduler};
use jupiterctl::docker::engine::Engine;
use jupiterctl::docker::shaping;
use jupiterctl::node_list::NodeSpec;
use jupiterctl::report::median;
use jupiterctl::session::{self, Pace};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const INPUTS: usize = 30;
const FAST: u64 = 100_000_000;
const SLOW: u64 = 4_000_000;

fn nodes(b_bandwidth: u64) -> Vec<NodeSpec> {
    [("a", 1.0, FAST), ("b", 0.8, b_bandwidth)]
        .into_iter()
        .map(|(name, cpus, bits)| NodeSpec {
            name: name.into(),
            cpus,
            memory_bytes: 384 << 20,
            bandwidth_bits_per_sec: Some(bits),
            delay: None,
        })
        .collect()
}

/// Shapes every running container of node `node` of deployment `id` to
/// `bits` per second, both ways, keeping same-node traffic unshaped.
async fn reshape(engine: &Engine, id: &str, node: &str, bits: u64) {
    let nodes = nodes(bits);
    for container in node_containers(engine, id, node).await {
        let ip = inspect(
            engine,
            &container,
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        )
        .await;
        let local = ip.rsplit_once('.').map(|(net, _)| format!("{net}.0/24"));
        shaping::reshape(engine, &container, Some(node), &nodes, local.as_deref())
            .await
            .expect("reshaping the node's link");
    }
}

/// The node each task ran on for `result`.
fn nodes_of(result: &InputResult) -> BTreeMap<String, String> {
    result
        .tasks
        .iter()
        .map(|t| (t.task.clone(), t.node.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_link_shaped_down_mid_run_moves_new_inputs_to_a_better_mapping() {
    let Some(engine) =
        engine_or_skip("a_link_shaped_down_mid_run_moves_new_inputs_to_a_better_mapping").await
    else {
        return;
    };
    ensure_images().await;
    let sandbox = Sandbox::new();
    let inputs = sandbox.inputs(INPUTS, "in", ".txt");
    let app = App::load(&example("mapping")).expect("example app loads");
    let probe = ProbeOptions {
        interval: Duration::from_secs(3),
        ..Default::default()
    };
    let backend = backend_probing(&sandbox, &app, nodes(FAST), probe).await;
    let mut deployment = Deployment::up(backend, &app, &scheduled(Scheduler::Heft, 1))
        .await
        .expect("docker deployment comes up");
    let id = deployment.summary.deployment.clone();
    let _teardown = Teardown(id.clone());
    let before = deployment.summary.mapping.clone();
    assert!(
        before.values().any(|n| n == "a") && before.values().any(|n| n == "b"),
        "HEFT spreads the three analysis tasks over both equal-ish nodes: {before:?}"
    );
    let home = deployment.summary.endpoints().circe_home;
    let output = sandbox.path("output");

    let shaper = {
        let (engine, output, id) = (engine.clone(), output.clone(), id.clone());
        tokio::spawn(async move {
            wait_finished(&output, 3).await;
            reshape(&engine, &id, "b", SLOW).await;
            (Instant::now(), finished(&output))
        })
    };
    let files = session::expand_inputs(std::slice::from_ref(&inputs)).expect("inputs");
    let (results, _) = session::submit_paced(
        &home,
        &files,
        Pace::OneAtATime,
        Duration::from_secs(600),
        false,
        deployment.stopped(),
    )
    .await
    .expect("every input completes");
    let (shaped_at, done_at_shaping) = shaper.await.expect("shaper");

    // Every input once, each with its fused output.
    assert_eq!(results.len(), INPUTS);
    for r in &results {
        assert!(r.ok, "input {} failed: {}", r.input_id, r.error);
        let stem = r.input_id.split('.').next().unwrap_or_default();
        let files: Vec<String> = std::fs::read_dir(output.join(&r.input_id))
            .expect("output folder")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files, [format!("{stem}.fused")], "{}", r.input_id);
    }
    assert_eq!(finished(&output), INPUTS, "nothing extra");

    // Mapped again once, away from the slowed node's links.
    let replans = deployment.replans().to_vec();
    assert_eq!(replans.len(), 1, "one re-mapping: {replans:?}");
    let replan = &replans[0];
    assert_eq!(replan.placement, 1);
    assert!(!replan.moved.is_empty());
    assert!(
        replan.reason.contains("link a -> b bandwidth") || replan.reason.contains("link b -> a bandwidth"),
        "{}",
        replan.reason
    );
    let after = deployment.summary.mapping.clone();
    assert_ne!(after, before);
    assert!(
        !(after.values().any(|n| n == "a") && after.values().any(|n| n == "b")),
        "no edge crosses the slowed link any more: {after:?}"
    );

    // Inputs before the switch followed placement 0, every one after it
    // placement 1, with every task where the new mapping says.
    let switch = results
        .iter()
        .position(|r| r.placement == 1)
        .expect("inputs took the new placement");
    assert!(switch >= done_at_shaping, "no input took it before the drift");
    assert!(results[..switch].iter().all(|r| r.placement == 0));
    for r in &results[switch..] {
        assert_eq!(r.placement, 1, "{}", r.input_id);
        assert_eq!(nodes_of(r), after, "{} ran where placement 1 says", r.input_id);
    }
    let caught: Vec<f64> = results[done_at_shaping..switch]
        .iter()
        .map(|r| r.makespan_ms)
        .collect();
    let moved: Vec<f64> = results[switch..].iter().map(|r| r.makespan_ms).collect();
    assert!(!caught.is_empty(), "some inputs ran on the slowed link first");
    eprintln!(
        "node b shaped to {} Mbit/s with {done_at_shaping} inputs done; new inputs took placement 1 {:.1} s later ({:.1} s from noticing the drift), after {} more inputs; median makespan {:.0} ms on the slowed link, {:.0} ms on placement 1 ({} inputs); {}",
        SLOW / 1_000_000,
        replan.noticed.duration_since(shaped_at).as_secs_f64() + replan.took.as_secs_f64(),
        replan.took.as_secs_f64(),
        switch - done_at_shaping,
        median(&caught),
        median(&moved),
        moved.len(),
        replan.reason
    );
    assert!(
        median(&moved) < median(&caught),
        "the new placement is faster: {moved:?} against {caught:?}"
    );

    // circe-home shows the placement and why; the superseded workers went
    // once their last input was done.
    let status = session::client(&home)
        .await
        .expect("client")
        .status(HomeStatusRequest {})
        .await
        .expect("home status")
        .into_inner();
    assert_eq!(status.placements.len(), 1);
    assert_eq!(status.placements[0].reason, replan.reason);
    assert_eq!(
        (status.placements[0].inputs, status.placements[0].unfinished),
        ((INPUTS - switch) as u64, 0)
    );
    let superseded: Vec<String> = replan
        .moved
        .iter()
        .map(|(task, (old, _))| format!("{id}-{old}-{task}"))
        .collect();
    let left = engine
        .run(&[
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
            "--filter",
            &format!("label=io.jupiter.deployment={id}"),
        ])
        .await
        .expect("containers");
    for name in &superseded {
        assert!(!left.lines().any(|l| l == name), "{name} was removed: {left}");
    }
    deployment.down().await.expect("down");
}
