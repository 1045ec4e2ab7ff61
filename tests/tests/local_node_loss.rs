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
use jupiter_tests::cli::{down, roles, Up};
use jupiter_tests::{
    assert_outputs, example, expected, expected_for, finished, jupiterctl_bin, random, wait_finished, Sandbox,
};
use jupiterctl::deployment::Deployment;
use jupiterctl::local::Local;
use jupiterctl::session;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const INPUTS: usize = 60;

/// Freezes the processes `pids` of a node, replaces its folder `dir` by a
/// file (a failed disk), then kills them: frozen first, so that no task of
/// theirs meets the missing folder while alive (that input would fail, not
/// be replayed: see README, Faults).
fn lose_node(dir: &Path, pids: &[u32]) {
    for pid in pids {
        jupiterctl::process::signal(*pid, libc::SIGSTOP).expect("SIGSTOP");
    }
    for pid in pids {
        wait_stopped(*pid);
    }
    let aside = dir.with_extension("gone");
    std::fs::rename(dir, &aside).expect("move the node's folder aside");
    std::fs::write(dir, b"not a folder").expect("a file in its place");
    for pid in pids {
        jupiterctl::process::signal(*pid, libc::SIGKILL).expect("SIGKILL");
    }
}

/// Waits until every thread of `pid` is stopped: `kill` only queues
/// SIGSTOP, and a thread running on another core goes on for a moment
/// (long enough, once in CI, to meet the missing folder).
fn wait_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let all_stopped = || {
        let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return true; // gone already
        };
        threads.flatten().all(|t| {
            std::fs::read_to_string(t.path().join("stat"))
                .map(|stat| {
                    // The state follows the parenthesised command name.
                    let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
                    matches!(state, Some(Some('T' | 't' | 'Z' | 'X')))
                })
                .unwrap_or(true)
        })
    };
    while !all_stopped() {
        assert!(Instant::now() < deadline, "process {pid} did not stop within 5 s");
        std::thread::sleep(Duration::from_millis(1));
    }
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
            wait_finished(&output, 3).await;
            lose_node(&node_dir, &on_victim);
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

/// The same through the CLI, as a user runs it: `jupiterctl up
/// --processes` in one process, `jupiterctl submit` in another. The `up`
/// process notices and recovers (the roles are its children), rewrites
/// the state file, and `submit` just sees every input finish; `status
/// --json` then shows the recovery, the new mapping and the lost node's
/// roles down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_recovers_a_lost_node_while_submit_waits() {
    let sandbox = Sandbox::new();
    let inputs = sandbox.inputs(INPUTS, "in", ".txt");
    let Up {
        cli,
        process: mut up,
        work,
        output,
    } = Up::start(&sandbox, &example("fanjoin"), 3).await;
    let status = cli.status().await.expect("status --json answers");
    let victim = status["mapping"]["join"]
        .as_str()
        .expect("join is mapped")
        .to_string();
    let on_victim: Vec<u32> = roles(&status)
        .iter()
        .filter(|r| r["role"] == "circe-worker" && r["node"] == victim.as_str())
        .filter_map(|r| r["pid"].as_u64().map(|p| p as u32))
        .collect();
    assert!(!on_victim.is_empty());

    let submit = cli
        .command(&["submit", &inputs.display().to_string(), "--timeout", "120"])
        .stdin(Stdio::null())
        .output();
    let breaker = async {
        wait_finished(&output, 3).await;
        lose_node(&work.join("nodes").join(&victim), &on_victim);
        finished(&output)
    };
    let (submitted, done_then) = tokio::join!(submit, breaker);
    let submitted = submitted.expect("submit ran");
    let stdout = String::from_utf8_lossy(&submitted.stdout);
    assert!(done_then < INPUTS, "lost mid-run ({done_then} of {INPUTS} done)");
    assert!(
        submitted.status.success() && stdout.contains(&format!("{INPUTS}/{INPUTS} inputs ok")),
        "every input ok, each once:\n{stdout}\n{}",
        String::from_utf8_lossy(&submitted.stderr)
    );
    for (input, files) in expected_for(&inputs, expected::fanjoin) {
        assert_outputs(&output, &input, &files);
    }

    let status = cli.status().await.expect("status --json answers");
    let recoveries = status["recoveries"].as_array().cloned().unwrap_or_default();
    assert_eq!(recoveries.len(), 1, "{status}");
    let reason = recoveries[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&format!("node {victim} is lost")), "{reason}");
    assert_ne!(
        status["mapping"]["join"],
        victim.as_str(),
        "the state file has the new mapping"
    );
    for role in roles(&status) {
        let lost = role["node"] == victim.as_str();
        assert_eq!(role["healthy"], !lost, "{role}");
    }
    down(&cli, &mut up).await;
}
