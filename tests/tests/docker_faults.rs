//! Real container crashes and a lost node on the Docker backend, while 60
//! inputs run through the fan-out/join example:
//!
//! - `docker kill` of the join task's circe-worker, then of circe-home:
//!   Docker does not restart a container killed from outside; the run's
//!   watch starts each again on its volume;
//! - `docker stop` of every container of the join task's node: the join
//!   task moves to a surviving node and circe-home replays every
//!   unfinished input.
//!
//! Either way every input finishes exactly once with byte-exact outputs.
//! Without a Docker engine the tests skip with a loud message.

use jupiter_common::app::App;
use jupiter_common::proto::circe::home::v1::{HomeStatus, HomeStatusRequest, InputResult};
use jupiter_tests::docker::{
    backend, engine_or_skip, ensure_images, inspect, node_containers, three_nodes, Teardown,
};
use jupiter_tests::{
    assert_outputs, example, expected, expected_for, finished, random, wait_finished, Sandbox,
};
use jupiterctl::deployment::Deployment;
use jupiterctl::session;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const INPUTS: usize = 60;

/// Every input ok, once: byte-exact outputs and no folder for anything else.
fn assert_each_input_once(results: &[InputResult], inputs: &Path, output: &Path) {
    assert_eq!(results.len(), INPUTS);
    for r in results {
        assert!(r.ok, "input {} failed: {}", r.input_id, r.error);
    }
    for (input, files) in expected_for(inputs, expected::fanjoin) {
        assert_outputs(output, &input, &files);
    }
    assert_eq!(
        finished(output),
        INPUTS,
        "one output folder per input, nothing extra"
    );
}

async fn home_status(url: &str) -> HomeStatus {
    session::client(url)
        .await
        .expect("client")
        .status(HomeStatusRequest {})
        .await
        .expect("home status")
        .into_inner()
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
    let mut deployment = Deployment::up(backend(&sandbox, &app, three_nodes()).await, &app, &random(3))
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
    let home_url = deployment.summary.endpoints().circe_home;
    let output = sandbox.path("output");
    let killer = {
        let (engine, output, join, home) = (engine.clone(), output.clone(), join.clone(), home.clone());
        async move {
            // Mid-run: once the first inputs are out, then again later.
            wait_finished(&output, 3).await;
            engine.run(&["kill", &join]).await.expect("docker kill join");
            wait_finished(&output, finished(&output) + 3).await;
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
        &home_url,
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
    assert_each_input_once(&results, &inputs, &output);
    for container in [&join, &home] {
        let state = inspect(&engine, container, "{{.State.Running}} {{.RestartCount}}").await;
        assert!(state.starts_with("true"), "{container} runs again: {state}");
    }
    deployment.down().await.expect("down");
}

/// When each input's join output appeared in the output folder.
fn watch_outputs(output: std::path::PathBuf) -> std::sync::Arc<std::sync::Mutex<BTreeMap<String, Instant>>> {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            if let Ok(dirs) = std::fs::read_dir(&output) {
                for dir in dirs.flatten() {
                    let input = dir.file_name().to_string_lossy().into_owned();
                    let stem = input.split('.').next().unwrap_or_default().to_string();
                    if dir.path().join(format!("{stem}.joined")).exists() {
                        record
                            .lock()
                            .expect("lock")
                            .entry(input)
                            .or_insert_with(Instant::now);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_the_join_node_moves_its_task_and_replays_unfinished_inputs() {
    let Some(engine) =
        engine_or_skip("losing_the_join_node_moves_its_task_and_replays_unfinished_inputs").await
    else {
        return;
    };
    ensure_images().await;
    let sandbox = Sandbox::new();
    let inputs = sandbox.inputs(INPUTS, "in", ".txt");
    let app = App::load(&example("fanjoin")).expect("example app loads");
    let mut deployment = Deployment::up(backend(&sandbox, &app, three_nodes()).await, &app, &random(3))
        .await
        .expect("docker deployment comes up");
    let id = deployment.summary.deployment.clone();
    let _teardown = Teardown(id.clone());
    let victim = deployment.summary.mapping["join"].clone();
    let home_url = deployment.summary.endpoints().circe_home;
    let output = sandbox.path("output");
    let appeared = watch_outputs(output.clone());
    let stopper = {
        let (engine, output, victim, id) = (engine.clone(), output.clone(), victim.clone(), id.clone());
        async move {
            // Mid-run: once the first inputs are out.
            wait_finished(&output, 3).await;
            let mut args = vec!["stop".to_string(), "--time".into(), "0".into()];
            args.extend(node_containers(&engine, &id, &victim).await);
            engine.run(&args).await.expect("docker stop");
            (Instant::now(), finished(&output))
        }
    };
    let stopper = tokio::spawn(stopper);
    let files = session::expand_inputs(std::slice::from_ref(&inputs)).expect("inputs");
    let (results, _) = session::submit_and_collect(
        &home_url,
        &files,
        Duration::from_secs(240),
        false,
        deployment.stopped(),
    )
    .await
    .expect("every input finishes on the surviving nodes");
    let (stopped_at, done_at_stop) = stopper.await.expect("stopper");
    assert!(
        done_at_stop < INPUTS,
        "the node was lost mid-run ({done_at_stop} of {INPUTS} done)"
    );
    assert_each_input_once(&results, &inputs, &output);

    // The join task moved off the lost node, and the unfinished inputs
    // were replayed.
    let recoveries = deployment.recoveries().to_vec();
    assert_eq!(recoveries.len(), 1, "one recovery: {recoveries:?}");
    let recovery = &recoveries[0];
    let (from, to) = recovery.moved["join"].clone();
    assert_eq!(from, victim);
    assert_ne!(to, victim, "join runs on a survivor");
    assert_eq!(deployment.summary.mapping["join"], to);
    assert!(
        !recovery.replayed.is_empty(),
        "inputs were replayed: {recovery:?}"
    );
    assert!(
        recovery.reason.contains(&format!("node {victim} is down")),
        "{}",
        recovery.reason
    );
    let first_replayed = {
        let appeared = appeared.lock().expect("lock");
        recovery
            .replayed
            .iter()
            .filter_map(|input| appeared.get(input))
            // Outputs delivered before the stop count as the first pass's.
            .filter(|at| **at > stopped_at)
            .min()
            .copied()
            .expect("a replayed input completed")
    };
    eprintln!(
        "node {victim} lost with {done_at_stop} of {INPUTS} inputs done: noticed after {:.1} s, join moved to {to} and {} inputs replayed {:.1} s later; first replayed input done {:.1} s after the stop",
        recovery.noticed.duration_since(stopped_at).as_secs_f64(),
        recovery.replayed.len(),
        recovery.took.as_secs_f64(),
        first_replayed.duration_since(stopped_at).as_secs_f64()
    );
    // circe-home's status shows the replay and why.
    let status = home_status(&home_url).await;
    assert_eq!(status.recoveries.len(), 1);
    assert_eq!(status.recoveries[0].inputs, recovery.replayed);
    assert_eq!((status.done, status.failed), (INPUTS as u64, 0));
    deployment.down().await.expect("down");
}

/// Whether drupe-central at `central` sees `node` as reachable, and every
/// link from or to it (as far as measured) as reachable too.
async fn drupe_sees(central: &str, node: &str) -> Option<(bool, bool)> {
    use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
    use jupiter_common::proto::drupe::central::v1::ProfileRequest;
    let mut client = DrupeCentralClient::new(jupiter_common::serve::channel(central).ok()?);
    let resources = client
        .get_resource_profile(ProfileRequest {})
        .await
        .ok()?
        .into_inner();
    let reachable = resources.nodes.iter().find(|n| n.node == node)?.reachable;
    let network = client
        .get_network_profile(ProfileRequest {})
        .await
        .ok()?
        .into_inner();
    let links: Vec<_> = network
        .links
        .iter()
        .filter(|l| l.from == node || l.to == node)
        .collect();
    Some((reachable, !links.is_empty() && links.iter().all(|l| l.reachable)))
}

/// A partition: every container of the join task's node is disconnected
/// from the deployment's network for 25 s mid-run, then connected again on
/// its address. Pushes to and from it retry (capped backoff with jitter;
/// HTTP/2 pings give up dead connections), nothing is lost or duplicated,
/// and DRUPE marks the node and its links unreachable, then reachable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_cut_off_for_25_s_loses_and_duplicates_nothing() {
    const CUT: Duration = Duration::from_secs(25);
    let Some(engine) = engine_or_skip("a_node_cut_off_for_25_s_loses_and_duplicates_nothing").await else {
        return;
    };
    ensure_images().await;
    let sandbox = Sandbox::new();
    let inputs = sandbox.inputs(INPUTS, "in", ".txt");
    let app = App::load(&example("fanjoin")).expect("example app loads");
    let probe = jupiterctl::deployment::ProbeOptions {
        interval: Duration::from_secs(3),
        ..Default::default()
    };
    let backend = jupiter_tests::docker::backend_probing(&sandbox, &app, three_nodes(), probe).await;
    let mut deployment = Deployment::up(backend, &app, &random(3))
        .await
        .expect("docker deployment comes up");
    let id = deployment.summary.deployment.clone();
    let _teardown = Teardown(id.clone());
    let victim = deployment.summary.mapping["join"].clone();
    let endpoints = deployment.summary.endpoints();
    let (home_url, central) = (endpoints.circe_home.clone(), endpoints.drupe_central.clone());
    let network = match deployment.state() {
        jupiterctl::deployment::DeploymentState::Docker { network, .. } => network,
        other => panic!("a Docker deployment: {other:?}"),
    };
    let output = sandbox.path("output");
    let cutter = {
        let (engine, output, victim) = (engine.clone(), output.clone(), victim.clone());
        async move {
            wait_finished(&output, 3).await;
            let mut cut = Vec::new();
            for name in node_containers(&engine, &id, &victim).await {
                let format = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
                let ip = inspect(&engine, &name, &format).await;
                engine
                    .run(&["network", "disconnect", &network, &name])
                    .await
                    .expect("docker network disconnect");
                cut.push((name, ip.trim().to_string()));
            }
            let cut_at = Instant::now();
            let done_at_cut = finished(&output);
            let mut marked_down = None;
            while cut_at.elapsed() < CUT {
                if marked_down.is_none() && drupe_sees(&central, &victim).await.is_some_and(|(up, _)| !up) {
                    marked_down = Some(cut_at.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            for (name, ip) in &cut {
                engine
                    .run(&["network", "connect", "--ip", ip, &network, name])
                    .await
                    .expect("docker network connect");
            }
            let healed_at = Instant::now();
            // Counted at the heal itself, not after DRUPE saw the node back
            // (by then the rest may well have finished).
            let done_at_heal = finished(&output);
            let mut back = None;
            while healed_at.elapsed() < Duration::from_secs(40) {
                if drupe_sees(&central, &victim).await == Some((true, true)) {
                    back = Some(healed_at.elapsed());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (done_at_cut, done_at_heal, marked_down, back)
        }
    };
    let cutter = tokio::spawn(cutter);
    let files = session::expand_inputs(std::slice::from_ref(&inputs)).expect("inputs");
    let (results, wall) = session::submit_and_collect(
        &home_url,
        &files,
        Duration::from_secs(300),
        false,
        deployment.stopped(),
    )
    .await
    .expect("every input finishes once the partition heals");
    let (done_at_cut, done_at_heal, marked_down, back) = cutter.await.expect("cutter");
    eprintln!(
        "node {victim} cut off for {CUT:?} with {done_at_cut} of {INPUTS} inputs out ({done_at_heal} at the heal): \
         DRUPE marked it unreachable after {marked_down:?}, reachable with its links {back:?} after the heal; \
         all {INPUTS} done in {wall:?}"
    );
    assert!(
        done_at_heal < INPUTS,
        "inputs were still in flight at the heal ({done_at_heal} done)"
    );
    assert!(
        marked_down.is_some(),
        "DRUPE marked node {victim} unreachable during the cut"
    );
    assert!(
        back.is_some(),
        "DRUPE marked node {victim} and its links reachable again after the heal"
    );
    assert_each_input_once(&results, &inputs, &output);
    let status = home_status(&home_url).await;
    assert_eq!((status.done, status.failed), (INPUTS as u64, 0));
    assert!(
        status.recoveries.is_empty(),
        "a partition is not a lost node: {:?}",
        status.recoveries
    );
    deployment.down().await.expect("down");
}
