//! The Kubernetes backend end to end against a stand-in cluster
//! (support/kube_cluster.rs): the stand-in API server on a real socket,
//! real role servers as its pods, and jupiterctl reaching them only through
//! the API server's port-forward WebSockets, as it does on a cluster.

#[path = "support/apiserver.rs"]
mod apiserver;
#[path = "support/kube_cluster.rs"]
mod kube_cluster;

use jupiter_common::app::App;
use jupiter_common::proto::circe::home::v1::circe_home_client::CirceHomeClient;
use jupiter_common::proto::circe::home::v1::HomeStatusRequest;
use jupiter_common::role::Role;
use jupiterctl::deployment::{Backend, Deployment, DeploymentState, Summary};
use jupiterctl::kubernetes::Kubernetes;
use jupiterctl::session;
use kube_cluster::{each_once_and_ok, kube_config, run_samples, StandIn, NODES};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

type HomeClient = CirceHomeClient<jupiter_common::serve::Channel>;

fn dummy_app() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/dummy_app")
}

/// `run --backend kubernetes --scheduler heft`: DRUPE's profile and the
/// mapping through drupe-central and wave-home, each node's agent told
/// which tasks it hosts, the inputs and results through circe-home.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_maps_with_heft_and_streams_inputs_through_port_forwards() {
    let app = App::load(&dummy_app()).expect("dummy app");
    let work = tempfile::tempdir().unwrap();
    let cluster = StandIn::start(&app, work.path(), None, false).await;
    let (config, kube) = kube_config(&dummy_app(), &["--scheduler", "heft"]);
    assert!(!kube.map_offline, "heft maps through the roles");
    let backend = Kubernetes::with_client(cluster.client.clone(), kube);
    let outcome = jupiterctl::run::run(
        Box::new(backend),
        &config.app,
        &config.placement,
        &[],
        session::Pace::default(),
        Duration::from_secs(120),
        false,
    )
    .await
    .expect("run on Kubernetes");

    let summary = &outcome.summary;
    assert_eq!(summary.scheduler, "heft");
    assert!(summary.predicted_makespan_secs > 0.0, "HEFT's model of one input");
    assert_eq!(summary.mapping.len(), app.tasks.len());
    assert!(
        summary.mapping.values().all(|n| NODES.contains(&n.as_str())),
        "{:?}",
        summary.mapping
    );
    let inputs = session::expand_inputs(&app.sample_inputs).expect("inputs").len();
    assert_eq!(outcome.results.len(), inputs, "every sample input has a result");
    assert!(outcome.all_ok(), "{:?}", outcome.results);
    // jupiterctl called circe-home at this machine's end of a forward.
    let home = summary.endpoints().circe_home;
    assert!(home.starts_with("http://127.0.0.1:"), "{home}");

    // Each role it reached, through the API server, at the pod's port.
    let forwarded: BTreeSet<String> = cluster.server.forwarded().into_iter().collect();
    let mut wanted: Vec<String> = [Role::DrupeCentral, Role::WaveHome, Role::CirceHome]
        .iter()
        .map(|r| format!("{}-node0:{}", r.name(), r.port()))
        .collect();
    wanted.extend(
        NODES
            .iter()
            .map(|n| format!("wave-worker-{n}:{}", Role::WaveWorker.port())),
    );
    for w in &wanted {
        assert!(forwarded.contains(w), "{w} in {forwarded:?}");
    }
    cluster.stop().await;
}

/// `up --scheduler cpop` and `wave-greedy`: CPoP through wave-home, and
/// WAVE through each node's agent, which wave-home (inside the cluster)
/// calls at its pod's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpop_and_wave_greedy_map_through_the_forwards() {
    let app = App::load(&dummy_app()).expect("dummy app");
    for scheduler in ["cpop", "wave-greedy"] {
        let work = tempfile::tempdir().unwrap();
        let cluster = StandIn::start(&app, work.path(), None, false).await;
        let (config, kube) = kube_config(&dummy_app(), &["--scheduler", scheduler]);
        let backend = Kubernetes::with_client(cluster.client.clone(), kube);
        let deployment = Deployment::up(Box::new(backend), &app, &config.placement)
            .await
            .unwrap_or_else(|e| panic!("up with {scheduler}: {e}"));
        assert_eq!(deployment.summary.scheduler, scheduler);
        assert_eq!(deployment.summary.mapping.len(), app.tasks.len());
        assert!(deployment
            .summary
            .mapping
            .values()
            .all(|n| NODES.contains(&n.as_str())));
        run_samples(&app, &deployment.summary.endpoints().circe_home).await;
        deployment.down().await.expect("down");
        cluster.stop().await;
    }
}

/// The `jupiterctl` binary, as a user runs it after the README: the
/// cluster from a kubeconfig (the stand-in's), `run --backend kubernetes`,
/// HEFT by default, every input's makespan printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jupiterctl_binary_runs_on_kubernetes_from_a_kubeconfig() {
    let app = App::load(&dummy_app()).expect("dummy app");
    let work = tempfile::tempdir().unwrap();
    let cluster = StandIn::start(&app, work.path(), None, false).await;
    let kubeconfig = work.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.server.kubeconfig()).unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_jupiterctl"))
        .arg("run")
        .arg(dummy_app())
        .args([
            "--backend",
            "kubernetes",
            "--no-tls",
            "--quiet",
            "--ready-timeout",
            "120",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("JUPITER_STATE", work.path().join("state.json"))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("run finishes")
        .expect("jupiterctl starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("mapping (heft):"), "{stdout}");
    let inputs = session::expand_inputs(&app.sample_inputs).unwrap().len();
    assert!(
        stdout.contains(&format!("{inputs}/{inputs} inputs ok")),
        "{stdout}"
    );
    assert!(stdout.contains("went with the deployment"), "{stdout}");
    // What it applied went again, the claims too.
    let deleted: Vec<String> = cluster
        .server
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path)
        .collect();
    for kind in ["statefulsets", "daemonsets", "persistentvolumeclaims", "services"] {
        assert!(deleted.iter().any(|p| p.ends_with(kind)), "{kind} in {deleted:?}");
    }
    cluster.stop().await;
}

/// The binary's `up`, `submit`, `status` and `down` on Kubernetes, each
/// its own process as in separate shells: the state file carries the
/// deployment from one to the next, and each command forwards anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_submit_status_and_down_are_separate_processes_on_kubernetes() {
    let app = App::load(&dummy_app()).expect("dummy app");
    let work = tempfile::tempdir().unwrap();
    let cluster = StandIn::start(&app, work.path(), None, false).await;
    let kubeconfig = work.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.server.kubeconfig()).unwrap();
    let state = work.path().join("state.json");
    let jupiterctl = |args: Vec<std::ffi::OsString>| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_jupiterctl"));
        command
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .env("JUPITER_STATE", &state)
            .kill_on_drop(true);
        async move {
            let out = tokio::time::timeout(Duration::from_secs(180), command.output())
                .await
                .expect("finishes")
                .expect("starts");
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(out.status.success(), "{stdout}\n{stderr}");
            (stdout, stderr)
        }
    };
    let os = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
    let mut up = os(&["up"]);
    up.push(dummy_app().into());
    up.extend(os(&[
        "--backend",
        "kubernetes",
        "--no-tls",
        "--ready-timeout",
        "120",
    ]));
    let (_, stderr) = jupiterctl(up).await;
    assert!(stderr.contains("is up on 3 nodes"), "{stderr}");
    let recorded = std::fs::read_to_string(&state).unwrap();
    assert!(
        recorded.contains("http://circe-home:7300"),
        "the state keeps the Service's URL: {recorded}"
    );

    let mut submit = os(&["submit"]);
    submit.push(dummy_app().join("sample_input").into());
    let (stdout, _) = jupiterctl(submit).await;
    let inputs = session::expand_inputs(&app.sample_inputs).unwrap().len();
    assert!(
        stdout.contains(&format!("{inputs}/{inputs} inputs ok")),
        "{stdout}"
    );
    assert!(
        stdout.contains("kubectl -n jupiter-dummy-app cp circe-home-0:"),
        "{stdout}"
    );

    let (stdout, _) = jupiterctl(os(&["status"])).await;
    assert!(stdout.contains("MAPPING (heft"), "{stdout}");
    assert!(stdout.contains("http://circe-home:7300"), "{stdout}");
    for node in NODES {
        assert!(stdout.contains(node), "{node} in {stdout}");
    }

    let (stdout, stderr) = jupiterctl(os(&["down"])).await;
    let said = format!("{stdout}{stderr}");
    assert!(said.contains("deployment dummy-app deleted"), "{said}");
    assert!(!state.exists(), "down removes the state file");
    cluster.stop().await;
}

async fn wait_done(home: &HomeClient, at_least: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let status = home
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

/// A circe-worker's pod deleted while inputs are in flight: jupiterctl
/// deletes it through the API server (`restart`), its process is
/// SIGKILLed and started again on the same queue folder (its claim), and
/// every input still finishes, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_worker_pod_comes_back_on_its_queue_and_loses_nothing() {
    const INPUTS: usize = 24;
    let app = App::load(&dummy_app()).expect("dummy app");
    let work = tempfile::tempdir().unwrap();
    let roles = PathBuf::from(env!("CARGO_BIN_EXE_jupiterctl"));
    let cluster = StandIn::start(&app, work.path(), Some(roles), false).await;
    let (config, kube) = kube_config(&dummy_app(), &["--scheduler", "random"]);
    let backend = Kubernetes::with_client(cluster.client.clone(), kube);
    let mut deployment = Deployment::up(Box::new(backend), &app, &config.placement)
        .await
        .expect("up");

    let inputs = work.path().join("inputs");
    std::fs::create_dir(&inputs).unwrap();
    let sample = std::fs::read(app.dir.join("sample_input/1botnet.ipsum")).unwrap();
    for i in 0..INPUTS {
        std::fs::write(inputs.join(format!("{i}botnet.ipsum")), &sample).unwrap();
    }
    let home = session::client(&deployment.summary.endpoints().circe_home)
        .await
        .expect("circe-home through its forward");
    let watch = session::watch(&home).await.expect("watch");
    let files = session::expand_inputs(std::slice::from_ref(&inputs)).expect("inputs");
    let ids = session::submit_all(&home, &files).await.expect("submitted");

    // A join with four parents, deleted once the first inputs are through.
    let done_before = wait_done(&home, 3).await;
    deployment
        .restart("circe-worker task4")
        .await
        .expect("task4's pod deleted");
    assert!(
        (done_before as usize) < INPUTS,
        "deleted while inputs were in flight"
    );

    let results = session::collect(
        watch,
        &ids,
        Duration::from_secs(240),
        false,
        std::future::pending(),
    )
    .await
    .expect("every result");
    each_once_and_ok(&results, INPUTS);

    // The deletion went to the API server by label, and the kubelet killed
    // the worker's process and started another on the same queue.
    let deleted: Vec<_> = cluster
        .server
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.path.ends_with("/pods"))
        .collect();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    let selector = deleted[0].query.get("labelSelector").cloned().unwrap_or_default();
    assert!(
        selector.contains("app.kubernetes.io/component=circe-worker")
            && selector.contains("jupiter.io/task=task4"),
        "{selector}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let restart = loop {
        if let Some(r) = cluster.restarts.lock().unwrap().first().cloned() {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the kubelet restarted nothing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(restart.label, "circe-worker task4");
    assert!(
        restart.pid_before.is_some() && restart.pid_before != restart.pid_after,
        "{restart:?}"
    );

    deployment.down().await.expect("down");
    cluster.stop().await;
}

/// A node lost while inputs are in flight: the stand-in reports it
/// NotReady and its workers' processes freeze (cut off, as a partitioned
/// node's pods are). jupiterctl notices, maps its tasks again over the
/// surviving nodes, replaces each moved worker's StatefulSet by one pinned
/// to its new node (force-deleting the old pod, as nothing else frees a
/// StatefulSet pod on a gone node), and circe-home replays the unfinished
/// inputs: every input finishes, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_node_moves_its_workers_and_replays_what_was_in_flight() {
    const INPUTS: usize = 24;
    let app = App::load(&dummy_app()).expect("dummy app");
    let work = tempfile::tempdir().unwrap();
    let roles = PathBuf::from(env!("CARGO_BIN_EXE_jupiterctl"));
    let cluster = StandIn::start(&app, work.path(), Some(roles), false).await;
    let (config, kube) = kube_config(&dummy_app(), &["--scheduler", "random", "--seed", "7"]);
    let backend = Kubernetes::with_client(cluster.client.clone(), kube);
    let up = Deployment::up(Box::new(backend), &app, &config.placement)
        .await
        .expect("up");
    // `submit` in another shell: the deployment found again from its state
    // file (its forwards opened anew) is the one that recovers.
    let state: DeploymentState = serde_json::from_value(serde_json::to_value(up.state()).unwrap()).unwrap();
    drop(up);
    let DeploymentState::Kubernetes { nodes, summary, .. } = &state else {
        panic!("a Kubernetes state: {state:?}");
    };
    let backend = Kubernetes::attach_with(cluster.client.clone(), nodes, summary)
        .await
        .expect("found again");
    let summary = Summary {
        roles: backend.roles(),
        ..summary.clone()
    };
    let mut deployment = Deployment::attach(Box::new(backend), summary);
    let lost = deployment.summary.mapping["task4"].clone();
    let moving: BTreeSet<String> = deployment
        .summary
        .mapping
        .iter()
        .filter(|(_, n)| **n == lost)
        .map(|(t, _)| t.clone())
        .collect();

    // Two batches: the second goes in once the node is lost, so inputs
    // need the join's worker there whatever the first batch's pace.
    let sample = std::fs::read(app.dir.join("sample_input/1botnet.ipsum")).unwrap();
    let batch = |name: &str, from: usize| {
        let dir = work.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        for i in from..from + INPUTS / 2 {
            std::fs::write(dir.join(format!("{i}botnet.ipsum")), &sample).unwrap();
        }
        session::expand_inputs(std::slice::from_ref(&dir)).expect("inputs")
    };
    let home = session::client(&deployment.summary.endpoints().circe_home)
        .await
        .expect("circe-home through its forward");
    let watch = session::watch(&home).await.expect("watch");
    let mut ids = session::submit_all(&home, &batch("first", 0))
        .await
        .expect("submitted");
    wait_done(&home, 3).await;

    // The node goes: its workers freeze, the API server says NotReady.
    let frozen: Vec<u32> = cluster
        .roles
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.role == Role::CirceWorker && r.node.as_deref() == Some(lost.as_str()))
        .filter_map(|r| r.pid)
        .collect();
    assert_eq!(frozen.len(), moving.len(), "every worker there is a process");
    for pid in &frozen {
        jupiterctl::process::signal(*pid, libc::SIGSTOP).expect("SIGSTOP");
    }
    let items: Vec<_> = NODES
        .iter()
        .map(|n| apiserver::node(n, if *n == lost { "False" } else { "True" }, false, None))
        .collect();
    cluster.server.set_nodes(
        serde_json::json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": items}),
    );
    ids.extend(
        session::submit_all(&home, &batch("second", INPUTS / 2))
            .await
            .expect("submitted"),
    );

    let results = session::collect(watch, &ids, Duration::from_secs(240), false, deployment.stopped())
        .await
        .expect("every result, after the recovery");
    each_once_and_ok(&results, INPUTS);

    // Moved off the lost node (the mapping changes before the replay, and
    // the frozen workers could not have finished the inputs in flight), to
    // new StatefulSets, the old ones deleted and their pods force-deleted.
    for task in &moving {
        assert_ne!(deployment.summary.mapping[task], lost, "{task} moved");
    }
    let requests = cluster.server.requests();
    for task in &moving {
        let selector = format!("jupiter.io/task={task}");
        let deleted_set = requests.iter().any(|r| {
            r.method == "DELETE"
                && r.path.ends_with("/statefulsets")
                && r.query
                    .get("labelSelector")
                    .is_some_and(|s| s.contains(&selector))
        });
        assert!(deleted_set, "{task}'s StatefulSet deleted");
        let forced = requests.iter().any(|r| {
            r.method == "DELETE"
                && r.path.ends_with("/pods")
                && r.query
                    .get("labelSelector")
                    .is_some_and(|s| s.contains(&selector))
                && r.body.as_ref().is_some_and(|b| b["gracePeriodSeconds"] == 0)
        });
        assert!(forced, "{task}'s pod force-deleted");
        let new_node = &deployment.summary.mapping[task];
        let name = jupiterctl::kubernetes::names::moved_workload(&format!("circe-worker-{task}"), new_node);
        let applied = requests
            .iter()
            .rev()
            .find(|r| r.method == "PATCH" && r.path.ends_with(&format!("/statefulsets/{name}")))
            .unwrap_or_else(|| panic!("{name} applied"));
        let body = applied.body.as_ref().unwrap();
        assert_eq!(
            body["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/hostname"],
            new_node.as_str()
        );
        assert_eq!(body["spec"]["serviceName"], format!("circe-worker-{task}"));
    }
    deployment.down().await.expect("down");
    cluster.stop().await;
}
