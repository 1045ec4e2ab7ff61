//! The Docker backend end to end, on the real engine: the legacy app on
//! three nodes with different CPU and memory limits, every output
//! byte-exact, `down` removing exactly what `up` made; and the CLI across
//! processes. (Containers and nodes lost mid-run: `docker_faults.rs`.)
//! Without a Docker engine both tests skip with a loud message.

use jupiter_common::app::App;
use jupiter_common::role::Role;
use jupiter_tests::docker::{
    assert_no_node_cgroups, assert_node_cgroups, backend, engine_or_skip, ensure_images, inspect,
    three_nodes, Teardown,
};
use jupiter_tests::{assert_outputs, example, expected, expected_for, random, Sandbox};
use jupiterctl::deployment::Deployment;
use jupiterctl::docker::engine::{Engine, Kind};
use jupiterctl::docker::spec::DEPLOYMENT_LABEL;
use jupiterctl::session;
use std::time::Duration;

/// The objects of `kind` labelled with deployment `id`.
async fn labelled(engine: &Engine, kind: Kind, id: &str) -> Vec<String> {
    engine
        .ids_with_label(kind, &format!("{DEPLOYMENT_LABEL}={id}"))
        .await
        .expect("docker ls")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_backend_runs_the_legacy_app_on_three_limited_nodes() {
    let Some(engine) = engine_or_skip("docker_backend_runs_the_legacy_app_on_three_limited_nodes").await
    else {
        return;
    };
    ensure_images().await;
    // Something that is not ours but looks alike: down must leave it alone.
    let bystander = format!("jupiter-bystander-{}", std::process::id());
    engine
        .run(&[
            "volume",
            "create",
            "--label",
            "io.jupiter.deployment=someone-else",
            &bystander,
        ])
        .await
        .expect("bystander volume");

    let sandbox = Sandbox::new();
    let inputs = sandbox.inputs(12, "", "botnet.ipsum");
    let app = App::load(&example("dummy_app")).expect("example app loads");
    let nodes = three_nodes();
    let mut deployment = Deployment::up(backend(&sandbox, &app, nodes.clone()).await, &app, &random(11))
        .await
        .expect("docker deployment comes up");
    let id = deployment.summary.deployment.clone();
    let _teardown = Teardown(id.clone());
    eprintln!(
        "up in {:?}: {:?}",
        deployment.summary.startup, deployment.summary.mapping
    );

    // Every role is a container; every node's containers carry the node's
    // limits; there is one circe-worker per task on its mapped node.
    let roles = deployment.summary.roles.clone();
    let container = |r: &jupiterctl::deployment::RoleInstance| r.container.clone().expect("a container");
    for role in &roles {
        let Some(node) = &role.node else { continue };
        let want = nodes.iter().find(|n| &n.name == node).expect("known node");
        let limits = inspect(
            &engine,
            &container(role),
            "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}",
        )
        .await;
        assert_eq!(
            limits,
            format!("{} {}", (want.cpus * 1e9) as u64, want.memory_bytes),
            "limits of {}",
            role.label()
        );
    }
    for (task, node) in &deployment.summary.mapping {
        let worker = roles
            .iter()
            .find(|r| r.role == Role::CirceWorker && r.task.as_deref() == Some(task.as_str()))
            .unwrap_or_else(|| panic!("a worker container for {task}"));
        assert_eq!(
            worker.node.as_deref(),
            Some(node.as_str()),
            "{task} runs on its node"
        );
        assert_eq!(
            inspect(&engine, &container(worker), "{{.State.Status}}").await,
            "running"
        );
    }
    let distinct: std::collections::BTreeSet<_> = deployment.summary.mapping.values().collect();
    assert!(
        distinct.len() > 1,
        "the app spreads over nodes: {:?}",
        deployment.summary.mapping
    );

    let files = session::expand_inputs(std::slice::from_ref(&inputs)).expect("inputs");
    let (first, rest) = files.split_at(8);
    let (mut results, _) = session::submit_and_collect(
        &deployment.summary.endpoints().circe_home,
        first,
        Duration::from_secs(180),
        false,
        deployment.stopped(),
    )
    .await
    .expect("every input finishes");
    // A worker's container restarted through the backend comes back on its
    // volume, and the next inputs go through it.
    deployment
        .restart("circe-worker task4")
        .await
        .expect("the worker of task4 restarts");
    let (more, _) = session::submit_and_collect(
        &deployment.summary.endpoints().circe_home,
        rest,
        Duration::from_secs(180),
        false,
        deployment.stopped(),
    )
    .await
    .expect("every input after the restart finishes");
    results.extend(more);
    assert_eq!(results.len(), 12);
    for result in &results {
        assert!(result.ok, "input {} failed: {}", result.input_id, result.error);
        assert!(result.makespan_ms > 0.0, "makespan of {}", result.input_id);
        assert_eq!(
            result.tasks.len(),
            7,
            "every task reported for {}",
            result.input_id
        );
    }
    for (input, expected) in expected_for(&inputs, expected::dummy_app) {
        assert_outputs(&sandbox.path("output"), &input, &expected);
    }

    let made = (
        labelled(&engine, Kind::Container, &id).await.len(),
        labelled(&engine, Kind::Network, &id).await.len(),
        labelled(&engine, Kind::Volume, &id).await.len(),
    );
    assert_eq!(
        made,
        (roles.len(), 1, 3),
        "containers, network, a volume per node"
    );
    // Each node's containers share one CPU budget: its parent cgroup holds
    // the node's quota (where root and the cgroupfs driver allow it).
    let cgroups_checked = assert_node_cgroups(&engine, &id, &nodes).await;
    let removed = deployment.down().await.expect("down");
    assert!(
        removed.contains(&format!("{} containers, 1 networks, 3 volumes", made.0)),
        "{removed}"
    );
    // The nodes' shared cgroups go with the containers.
    if cgroups_checked {
        assert!(
            removed.contains(&format!("{} node cgroups", nodes.len())),
            "{removed}"
        );
        assert_no_node_cgroups(&id);
    }
    for kind in [Kind::Container, Kind::Network, Kind::Volume] {
        assert!(
            labelled(&engine, kind, &id).await.is_empty(),
            "no {kind:?} of {id} left"
        );
    }
    let still = engine
        .run(&["volume", "inspect", "--format", "{{.Name}}", &bystander])
        .await;
    engine.run(&["volume", "rm", &bystander]).await.ok();
    assert_eq!(still.expect("the bystander volume survives down"), bystander);
}

/// What a user types, across processes: `up` returns once healthy and the
/// containers stay; `status`, `submit` and a refused second `up` find the
/// deployment through the state file; `down` removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_drives_a_docker_deployment_across_processes() {
    let Some(engine) = engine_or_skip("the_cli_drives_a_docker_deployment_across_processes").await else {
        return;
    };
    ensure_images().await;
    let sandbox = Sandbox::new();
    let nodes = sandbox.path("nodes.yaml");
    std::fs::write(
        &nodes,
        "nodes:\n  - {name: small, cpus: 0.5, memory: 256MiB}\n  - {name: big, cpus: 1.5, memory: 768MiB}\n",
    )
    .expect("node list");
    let cli = |args: &[&str]| jupiter_tests::docker::cli(&sandbox, args);
    let app = example("dummy_app");
    let app = app.to_str().expect("utf-8 path");
    let output = sandbox.path("output");
    let output = output.to_str().expect("utf-8 path");
    let nodes = nodes.to_str().expect("utf-8 path");

    let (ok, text) = cli(&[
        "up",
        app,
        "--backend",
        "docker",
        "--node-list",
        nodes,
        "--scheduler",
        "random",
        "--output",
        output,
    ]);
    assert!(ok, "up: {text}");
    let id = text
        .split_whitespace()
        .find(|w| w.starts_with("jupiter-dummy-app-"))
        .unwrap_or_else(|| panic!("up names the deployment: {text}"))
        .to_string();
    let _teardown = Teardown(id.clone());
    {
        let (ok, status) = cli(&["status"]);
        assert!(ok, "status: {status}");
        assert!(
            status.contains("backend docker") && status.contains(&id),
            "{status}"
        );
        assert_eq!(
            status.matches("SERVING").count(),
            2 + 1 + 2 * 2 + 7,
            "every role serving: {status}"
        );
        let (ok, json) = cli(&["status", "--json"]);
        assert!(ok, "status --json: {json}");
        let report: serde_json::Value = serde_json::from_str(&json).expect("status --json prints JSON");
        assert_eq!(
            (&report["backend"], &report["deployment"]),
            (&"docker".into(), &id.clone().into())
        );
        let roles = report["roles"].as_array().expect("roles");
        assert_eq!(roles.len(), 2 + 1 + 2 * 2 + 7, "{report}");
        for role in roles {
            let container = role["container"]
                .as_str()
                .unwrap_or_else(|| panic!("a container: {role}"));
            assert!(container.starts_with(&id), "{role}");
            assert!(role.get("pid").is_none(), "{role}");
            assert_eq!(role["healthy"], true, "{role}");
        }
        let (ok, again) = cli(&["up", app, "--backend", "docker", "--output", output]);
        assert!(
            !ok && again.contains("already up") && again.contains(&id),
            "{again}"
        );
        let inputs = example("dummy_app").join("sample_input");
        let (ok, submitted) = cli(&["submit", inputs.to_str().expect("utf-8")]);
        assert!(ok, "submit: {submitted}");
        assert!(submitted.contains("3/3 inputs ok"), "{submitted}");
    }
    let (ok, down) = cli(&["down"]);
    assert!(
        ok && down.contains(&format!("removed Docker deployment {id}")),
        "down: {down}"
    );
    assert!(
        labelled(&engine, Kind::Container, &id).await.is_empty(),
        "nothing left of {id}"
    );
    assert!(!sandbox.path("state.json").exists(), "state file removed");
}
