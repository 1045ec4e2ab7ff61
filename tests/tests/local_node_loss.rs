//! A lost node on the local backend with `--processes`: every role its own
//! process. Mid-run the join task's node freezes, loses its folder
//! (replaced by a file, as a failed disk would leave it) and its
//! circe-workers are SIGKILLed: restarted, they cannot open their queues
//! and keep exiting.
//! That crash loop is the node lost: its tasks move to the surviving nodes
//! on the same ports, its other roles are stopped, circe-home replays every
//! unfinished input, and all 60 finish exactly once, byte-exact.

use jupiter_common::app::App;
use jupiter_common::role::Role;
use jupiter_tests::{assert_outputs, example, expected, expected_for, jupiterctl_bin, random, Sandbox};
use jupiterctl::deployment::Deployment;
use jupiterctl::local::Local;
use jupiterctl::session;
use std::path::Path;
use std::time::{Duration, Instant};

const INPUTS: usize = 60;

/// Output folders of finished inputs (circe-home's own data is hidden).
fn finished(output: &Path) -> usize {
    std::fs::read_dir(output).map_or(0, |d| {
        d.flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_whose_workers_cannot_come_back_is_lost_and_its_tasks_move() {
    let sandbox = Sandbox::new();
    let inputs = sandbox.inputs(INPUTS, "in", ".txt");
    let app = App::load(&example("fanjoin")).expect("example app loads");
    let mut config = sandbox.local_config(3);
    config.processes = Some(jupiterctl_bin().await);
    let backend = Box::new(Local::new(&app.name, config));
    let mut deployment = Deployment::up(backend, &app, &random(3))
        .await
        .expect("local deployment comes up");
    let victim = deployment.summary.mapping["join"].clone();
    let roles = deployment.backend().roles();
    let on_victim: Vec<u32> = roles
        .iter()
        .filter(|r| r.role == Role::CirceWorker && r.node.as_deref() == Some(victim.as_str()))
        .filter_map(|r| r.pid)
        .collect();
    assert!(!on_victim.is_empty(), "join's worker runs on {victim}");
    let node_dir = sandbox.path("work").join("nodes").join(&victim);
    assert!(node_dir.is_dir(), "{} is the node's folder", node_dir.display());
    let home = deployment.summary.endpoints().circe_home;
    let output = sandbox.path("output");

    let breaker = {
        let output = output.clone();
        tokio::spawn(async move {
            while finished(&output) < 3 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // The node freezes, its disk is gone (a file where its folder
            // was), and it dies: frozen first, so that no task of it meets
            // the missing folder while alive (that input would fail, not
            // be replayed: see README, Faults).
            for pid in &on_victim {
                jupiterctl::process::signal(*pid, libc::SIGSTOP).expect("SIGSTOP");
            }
            let aside = node_dir.with_extension("gone");
            std::fs::rename(&node_dir, &aside).expect("move the node's folder aside");
            std::fs::write(&node_dir, b"not a folder").expect("a file in its place");
            for pid in &on_victim {
                jupiterctl::process::signal(*pid, libc::SIGKILL).expect("SIGKILL");
            }
            (Instant::now(), finished(&output))
        })
    };
    let files = session::expand_inputs(std::slice::from_ref(&inputs)).expect("inputs");
    let (results, _) = session::submit_and_collect(
        &home,
        &files,
        Duration::from_secs(240),
        false,
        deployment.stopped(),
    )
    .await
    .expect("every input finishes on the surviving nodes");
    let (broken_at, done_then) = breaker.await.expect("breaker");
    assert!(done_then < INPUTS, "lost mid-run ({done_then} of {INPUTS} done)");

    assert_eq!(results.len(), INPUTS);
    for r in &results {
        assert!(r.ok, "input {} failed: {}", r.input_id, r.error);
    }
    for (input, files) in expected_for(&inputs, expected::fanjoin) {
        assert_outputs(&output, &input, &files);
    }
    assert_eq!(finished(&output), INPUTS, "one output folder per input");

    let recoveries = deployment.recoveries().to_vec();
    assert_eq!(recoveries.len(), 1, "one recovery: {recoveries:?}");
    let recovery = &recoveries[0];
    let (from, to) = recovery.moved["join"].clone();
    assert_eq!(from, victim);
    assert_ne!(to, victim);
    assert!(
        recovery.reason.contains(&format!("node {victim} is lost"))
            && recovery.reason.contains("keeps exiting"),
        "{}",
        recovery.reason
    );
    assert!(!recovery.replayed.is_empty(), "inputs were replayed");
    // Every role of the lost node is stopped; the moved workers run on
    // their new nodes, on their old ports.
    let now = deployment.backend().roles();
    for role in &now {
        if role.role == Role::CirceWorker {
            assert_ne!(role.node.as_deref(), Some(victim.as_str()), "{}", role.label());
            assert!(role.pid.is_some(), "{} runs", role.label());
            let before = roles
                .iter()
                .find(|r| r.label() == role.label())
                .expect("same role");
            assert_eq!(before.url, role.url, "{} kept its port", role.label());
        } else if role.node.as_deref() == Some(victim.as_str()) {
            assert_eq!(role.pid, None, "{} of the lost node is stopped", role.label());
        }
    }
    // `status` says so at once: the lost node's ports are closed.
    let asked = Instant::now();
    for (role, health) in deployment.health().await {
        let lost = role.node.as_deref() == Some(victim.as_str());
        assert_eq!(health.healthy, !lost, "{}: {:?}", role.label(), health.detail);
    }
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "health took {:?}",
        asked.elapsed()
    );
    eprintln!(
        "node {victim} lost with {done_then} of {INPUTS} done: noticed {:.1} s after its workers were killed, {} moved and {} inputs replayed {:.0} ms later",
        recovery.noticed.duration_since(broken_at).as_secs_f64(),
        recovery.moved.keys().cloned().collect::<Vec<_>>().join(", "),
        recovery.replayed.len(),
        recovery.took.as_secs_f64() * 1000.0,
    );
    deployment.down().await.expect("down");
}
