//! The worker's push protocol from a raw gRPC client: a file is
//! acknowledged once, a repeat is a duplicate, a short or foreign file is
//! refused and leaves nothing behind.

use jupiter_common::app::App;
use jupiter_common::proto::circe::worker::v1::circe_worker_client::CirceWorkerClient;
use jupiter_common::proto::circe::worker::v1::file_chunk::Kind;
use jupiter_common::proto::circe::worker::v1::{FileChunk, FileHeader, StatusRequest, WorkerStatus};
use jupiter_tests::{example, Sandbox};
use tonic::Code;

fn chunks(header: FileHeader, data: &[u8]) -> Vec<FileChunk> {
    let mut all = vec![FileChunk {
        kind: Some(Kind::Header(header)),
    }];
    all.push(FileChunk {
        kind: Some(Kind::Data(data.to_vec().into())),
    });
    all
}

fn header(input: &str, from: &str, size: u64) -> FileHeader {
    FileHeader {
        input_id: input.into(),
        from_task: from.into(),
        file_name: format!("{input}_left.txt"),
        file_count: 1,
        size,
        produced_at_unix_nanos: 0,
        attempt: 0,
        placement: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_is_durable_idempotent_and_checked() {
    let sandbox = Sandbox::new();
    let app = App::load(&example("fanjoin")).expect("example loads");
    let deployment = sandbox.deploy_local(&app, 2, 4).await;
    let endpoints = deployment.summary.endpoints();
    let left = &endpoints.workers["left"].address;
    let mut client = CirceWorkerClient::new(jupiter_common::serve::channel(left).expect("channel"));

    // Not a parent of `left`: refused.
    let err = client
        .push(tokio_stream::iter(chunks(header("a", "right", 3), b"abc")))
        .await
        .expect_err("right is not left's parent");
    assert_eq!(err.code(), Code::InvalidArgument);

    // Fewer bytes than announced: refused, nothing queued, not run.
    let err = client
        .push(tokio_stream::iter(chunks(header("b", "split", 10), b"abc")))
        .await
        .expect_err("short file");
    assert_eq!(err.code(), Code::DataLoss);

    // A path in the file name: refused.
    let mut evil = header("c", "split", 3);
    evil.file_name = "../../escape".into();
    let err = client
        .push(tokio_stream::iter(chunks(evil, b"abc")))
        .await
        .expect_err("path traversal");
    assert_eq!(err.code(), Code::InvalidArgument);

    // A good file is acknowledged with its size, a repeat as a duplicate.
    let ack = client
        .push(tokio_stream::iter(chunks(header("d.txt", "split", 4), b"x\ny\n")))
        .await
        .expect("accepted")
        .into_inner();
    assert_eq!((ack.duplicate, ack.bytes), (false, 4));
    let again = client
        .push(tokio_stream::iter(chunks(header("d.txt", "split", 4), b"x\ny\n")))
        .await
        .expect("accepted again")
        .into_inner();
    assert!(again.duplicate);

    // `left` ran once for d.txt and for nothing else.
    let status = wait_for_runs(&mut client, 1).await;
    assert_eq!((status.done, status.failed), (1, 0), "{status:?}");
    let queue = sandbox.path("work").join("nodes");
    let leftovers: Vec<_> = jupiter_tests::files_under(&queue)
        .into_iter()
        .filter(|p| p.parent().and_then(|d| d.file_name()) == Some("tmp".as_ref()))
        .collect();
    assert!(leftovers.is_empty(), "no partial files left: {leftovers:?}");
    // Retired: its inputs and outputs are gone, only the marker stays.
    let left_queue = queue.join(&endpoints.workers["left"].node).join("queues/left");
    assert!(left_queue.join("finished/d.txt").is_file());
    assert_eq!(
        jupiter_tests::files_under(&left_queue.join("in")),
        Vec::<std::path::PathBuf>::new()
    );
    for dir in ["work", "out"] {
        let left: Vec<_> = std::fs::read_dir(left_queue.join(dir))
            .expect("ls")
            .flatten()
            .collect();
        assert!(left.is_empty(), "{dir}/ is empty: {left:?}");
    }
    // Its folders and files wait in spare/ for the next inputs, to be
    // reused rather than created (jupiter_common::spares).
    let spare: Vec<_> = std::fs::read_dir(left_queue.join("spare"))
        .expect("spare/")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        spare.iter().any(|p| p.is_dir()) && spare.iter().any(|p| p.is_file()),
        "spare/ holds folders and files: {spare:?}"
    );

    // A replay (the input's next pass, after a node was lost) is not a
    // duplicate: the task runs again for it, as its own queue entry.
    let replayed = FileHeader {
        attempt: 1,
        ..header("d.txt", "split", 4)
    };
    let ack = client
        .push(tokio_stream::iter(chunks(replayed, b"x\ny\n")))
        .await
        .expect("the next pass is accepted")
        .into_inner();
    assert!(!ack.duplicate, "a replay is not a duplicate of the first pass");
    wait_for_file(
        &left_queue.join("finished/.r1.d.txt"),
        "the replayed pass ran and was retired",
    )
    .await;
    // The marker is there just before the worker counts the run.
    let status = wait_for_runs(&mut client, 2).await;
    assert_eq!((status.done, status.failed), (2, 0), "{status:?}");

    // At the join: a first pass that got `left`'s file but will never get
    // `right`'s (its node was lost) waits; the replay's first file retires
    // it, so it does not wait for ever, and its late files are duplicates.
    let join = &endpoints.workers["join"];
    let mut join_client =
        CirceWorkerClient::new(jupiter_common::serve::channel(&join.address).expect("channel"));
    // What `left` sent on for d.txt waits there for `right` already.
    let before = worker_status(&mut join_client).await.waiting;
    let from_left = |attempt| FileHeader {
        attempt,
        file_name: "e_L.txt".into(),
        ..header("e.txt", "left", 2)
    };
    join_client
        .push(tokio_stream::iter(chunks(from_left(0), b"L\n")))
        .await
        .expect("first pass, left's file");
    let waiting = worker_status(&mut join_client).await;
    assert_eq!(
        waiting.waiting,
        before + 1,
        "the first pass waits for right: {waiting:?}"
    );
    join_client
        .push(tokio_stream::iter(chunks(from_left(1), b"L\n")))
        .await
        .expect("replay, left's file");
    let join_queue = queue.join(&join.node).join("queues/join");
    wait_for_file(
        &join_queue.join("finished/e.txt"),
        "the superseded first pass was retired",
    )
    .await;
    let status = worker_status(&mut join_client).await;
    assert_eq!(
        status.waiting,
        before + 1,
        "only the replay waits now: {status:?}"
    );
    let late = FileHeader {
        file_name: "e_R.txt".into(),
        ..header("e.txt", "right", 2)
    };
    let ack = join_client
        .push(tokio_stream::iter(chunks(late, b"R\n")))
        .await
        .expect("a late file of the first pass")
        .into_inner();
    assert!(ack.duplicate, "a retired pass takes no more files");
    let inputs: Vec<_> = std::fs::read_dir(join_queue.join("in"))
        .expect("in/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("e.txt@"))
        .collect();
    assert_eq!(inputs, [".r1.e.txt@left@1"], "only the replay's files are queued");
    // So was d.txt's first pass at the join, when its replay came from left.
    assert!(join_queue.join("finished/d.txt").is_file());
    deployment.down().await.expect("down");
}

async fn worker_status(client: &mut CirceWorkerClient<jupiter_common::serve::Channel>) -> WorkerStatus {
    client
        .status(StatusRequest {})
        .await
        .expect("status")
        .into_inner()
}

/// The worker's status once it counts `runs` runs done or failed (or
/// after 20 s, as it is then).
async fn wait_for_runs(
    client: &mut CirceWorkerClient<jupiter_common::serve::Channel>,
    runs: u64,
) -> WorkerStatus {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = worker_status(client).await;
        if status.done + status.failed >= runs || tokio::time::Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Waits (at most 20 s) until `path` is a file: `what` happened.
async fn wait_for_file(path: &std::path::Path, what: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !path.is_file() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A new placement end to end over real gRPC: `join` gets a second worker
/// (on a node of its own), `left` and `right` learn its route for
/// placement 1, circe-home takes placement 1 → an input submitted before
/// runs `join` on the old worker, one submitted after on the new, each
/// result says which placement it followed, and a restarted `left` keeps
/// its routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_placement_takes_new_inputs_to_the_moved_task() {
    use jupiter_common::proto::circe::home::v1::{HomeStatusRequest, SetPlacementRequest};
    use jupiter_common::proto::circe::worker::v1::Routes;
    use jupiterctl::session::{self, Pace};
    use std::time::Duration;

    let sandbox = Sandbox::new();
    let app = App::load(&example("fanjoin")).expect("example loads");
    let deployment = sandbox.deploy_local(&app, 2, 4).await;
    let endpoints = deployment.summary.endpoints();
    let home = endpoints.circe_home.clone();
    let submit = |name: &'static str| {
        let home = home.clone();
        let input = example("fanjoin").join("inputs").join(name);
        async move {
            let (results, _) = session::submit_paced(
                &home,
                &[input],
                Pace::AllAtOnce,
                Duration::from_secs(60),
                false,
                std::future::pending(),
            )
            .await
            .expect("the input completes");
            assert!(results[0].ok, "{results:?}");
            results.into_iter().next().expect("one result")
        }
    };
    let join_node = |result: &jupiter_common::proto::circe::home::v1::InputResult| {
        let join = result
            .tasks
            .iter()
            .find(|t| t.task == "join")
            .expect("join reported");
        join.node.clone()
    };

    let before = submit("in1.txt").await;
    assert_eq!(before.placement, 0);
    assert_eq!(join_node(&before), endpoints.workers["join"].node);

    // join's worker of placement 1, on a node of its own.
    let task = app.task("join").expect("join").clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let new_join = format!("http://{}", listener.local_addr().expect("addr"));
    let config = circe_worker::Config {
        telemetry: jupiter_common::telemetry::Settings::off(jupiter_common::role::Role::CirceWorker),
        task,
        app_dir: app.dir.clone(),
        node: "elsewhere".into(),
        queue_dir: sandbox.path("join-p1"),
        limits: Default::default(),
        children: vec![],
        home: home.clone(),
        python: "python3".into(),
        fresh_interpreter: false,
    };
    let server = tokio::spawn(circe_worker::serve(config, listener, std::future::pending()));

    // A route for a task that is not a child is refused by name.
    let mut left = CirceWorkerClient::new(
        jupiter_common::serve::channel(&endpoints.workers["left"].address).expect("channel"),
    );
    let err = left
        .set_routes(Routes {
            placement: 1,
            children: [("split".to_string(), new_join.clone())].into(),
        })
        .await
        .expect_err("split is not left's child");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("has no child \"split\""),
        "{}",
        err.message()
    );
    for parent in ["left", "right"] {
        CirceWorkerClient::new(
            jupiter_common::serve::channel(&endpoints.workers[parent].address).expect("channel"),
        )
        .set_routes(Routes {
            placement: 1,
            children: [("join".to_string(), new_join.clone())].into(),
        })
        .await
        .expect("routes set");
    }
    let mut home_client = session::client(&home).await.expect("client");
    home_client
        .set_placement(SetPlacementRequest {
            placement: 1,
            ingress: Default::default(),
            reason: "test: join moved".into(),
        })
        .await
        .expect("placement 1");

    let after = submit("in2.txt").await;
    assert_eq!(after.placement, 1);
    assert_eq!(join_node(&after), "elsewhere");
    let expected = std::fs::read_dir(deployment.summary.output.join("in1.txt"))
        .expect("in1's outputs")
        .count();
    let got = std::fs::read_dir(deployment.summary.output.join("in2.txt"))
        .expect("in2's outputs")
        .count();
    assert_eq!(got, expected, "the moved join delivered the same outputs");

    // The routes outlive a restart of the worker that holds them.
    let mut deployment = deployment;
    deployment
        .restart("circe-worker left")
        .await
        .expect("left restarts");
    let third = submit("in3.txt").await;
    assert_eq!((third.placement, join_node(&third).as_str()), (1, "elsewhere"));

    let status = home_client
        .status(HomeStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.placements.len(), 1);
    let placed = &status.placements[0];
    assert_eq!((placed.placement, placed.inputs, placed.unfinished), (1, 2, 0));
    assert_eq!(placed.reason, "test: join moved");
    server.abort();
    deployment.down().await.expect("down");
}
