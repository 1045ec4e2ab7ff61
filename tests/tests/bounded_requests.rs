//! What a circe-worker accepts from the network is bounded: a push past a
//! limit is refused with a status naming the limit and its flag, and leaves
//! nothing in the queue; an input that waits too long for its parents fails
//! naming them; a full disk refuses files with ResourceExhausted, keeps no
//! partial file, and shows in the worker's status. A real worker on a real
//! socket, pushed to by a raw gRPC client.

use jupiter_common::app::App;
use jupiter_common::limits::Limits;
use jupiter_common::proto::circe::worker::v1::circe_worker_client::CirceWorkerClient;
use jupiter_common::proto::circe::worker::v1::file_chunk::Kind;
use jupiter_common::proto::circe::worker::v1::{FileChunk, FileHeader, StatusRequest, WorkerStatus};
use jupiter_common::role::Role;
use jupiter_common::telemetry::Settings;
use jupiter_tests::{example, Sandbox};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::Code;

type Client = CirceWorkerClient<jupiter_common::serve::Channel>;

fn chunks(header: FileHeader, data: &[u8]) -> Vec<FileChunk> {
    vec![
        FileChunk {
            kind: Some(Kind::Header(header)),
        },
        FileChunk {
            kind: Some(Kind::Data(data.to_vec().into())),
        },
    ]
}

fn header(input: &str, from: &str, size: u64) -> FileHeader {
    FileHeader {
        input_id: input.into(),
        from_task: from.into(),
        file_name: format!("{input}_{from}.txt"),
        file_count: 1,
        size,
        ..Default::default()
    }
}

/// The join task of `examples/fanjoin` (parents left and right) served on
/// `queue`, with `limits`; circe-home is a port nobody answers on.
async fn join_worker(queue: &Path, limits: Limits) -> (Client, tokio::task::JoinHandle<()>) {
    let app = App::load(&example("fanjoin")).expect("example loads");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let home = format!("http://{}", nobody.local_addr().expect("address"));
    drop(nobody);
    let config = circe_worker::Config {
        telemetry: Settings::off(Role::CirceWorker),
        task: app.task("join").expect("join").clone(),
        app_dir: app.dir.clone(),
        node: "n1".into(),
        queue_dir: queue.to_path_buf(),
        limits,
        children: vec![],
        home,
        python: "python3".into(),
        fresh_interpreter: false,
    };
    let server = tokio::spawn(async move {
        if let Err(e) = circe_worker::serve(config, listener, std::future::pending()).await {
            panic!("join worker: {e}");
        }
    });
    jupiter_common::serve::wait_healthy("join worker", &url, Duration::from_secs(20))
        .await
        .expect("the worker serves");
    let client = CirceWorkerClient::new(jupiter_common::serve::channel(&url).expect("channel"));
    (client, server)
}

async fn status(client: &Client) -> WorkerStatus {
    client
        .clone()
        .status(StatusRequest {})
        .await
        .expect("status")
        .into_inner()
}

/// Every file queued in `dir/in`, whatever folder it is in.
fn queued_files(dir: &Path) -> Vec<PathBuf> {
    jupiter_tests::files_under(&dir.join("in"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_past_a_limit_are_refused_naming_the_flag() {
    let sandbox = Sandbox::new();
    let queue = sandbox.path("queue");
    let limits = Limits {
        max_files_per_input: 100,
        max_file_size: 1000,
        max_waiting_inputs: 2,
        input_timeout: None,
    };
    let (client, server) = join_worker(&queue, limits).await;
    let push = |header: FileHeader, data: &'static [u8]| {
        let mut client = client.clone();
        async move { client.push(tokio_stream::iter(chunks(header, data))).await }
    };

    // The header seen with grpcurl: four billion files announced.
    let mut huge_count = header("a", "left", 3);
    huge_count.file_count = 4_000_000_000;
    let err = push(huge_count, b"abc").await.expect_err("too many files");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("--max-files-per-input"),
        "{}",
        err.message()
    );
    assert!(err.message().contains("4000000000"), "{}", err.message());

    let err = push(header("a", "left", 5000), b"abc")
        .await
        .expect_err("too big");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("--max-file-size"), "{}", err.message());

    let mut long_id = header("a", "left", 3);
    long_id.input_id = "x".repeat(300);
    let err = push(long_id, b"abc").await.expect_err("long input id");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("input_id") && err.message().contains("255"),
        "{}",
        err.message()
    );
    assert!(queued_files(&queue).is_empty(), "{:?}", queued_files(&queue));

    // Two inputs wait for their second parent; a third input is refused
    // (for now: ResourceExhausted is retried), the waiting ones still take
    // files.
    push(header("a", "left", 3), b"abc").await.expect("a from left");
    push(header("b", "left", 3), b"abc").await.expect("b from left");
    let err = push(header("c", "left", 3), b"abc")
        .await
        .expect_err("c must wait");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("--max-waiting-inputs 2"),
        "{}",
        err.message()
    );
    assert!(!jupiter_common::transfer::permanent(&err), "a sender retries it");
    push(header("a", "right", 3), b"abc").await.expect("a from right");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while status(&client).await.waiting > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a never left the waiting inputs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    push(header("c", "left", 3), b"abc")
        .await
        .expect("c now has room");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_waiting_past_the_timeout_fails_naming_its_missing_parents() {
    let sandbox = Sandbox::new();
    let queue = sandbox.path("queue");
    let limits = Limits {
        input_timeout: Some(Duration::from_millis(300)),
        ..Limits::DEFAULT
    };
    let (client, server) = join_worker(&queue, limits).await;
    client
        .clone()
        .push(tokio_stream::iter(chunks(header("lonely", "left", 3), b"abc")))
        .await
        .expect("left's file");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let failed = queue.join("failed");
    let record = loop {
        let found: Vec<PathBuf> = std::fs::read_dir(&failed)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        if let Some(path) = found.first() {
            break std::fs::read_to_string(path).expect("failure record");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the input never timed out"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(record.contains("--input-timeout"), "{record}");
    assert!(record.contains("missing: right (no files)"), "{record}");
    assert!(!record.contains("left"), "left sent its file: {record}");
    let s = status(&client).await;
    assert_eq!((s.waiting, s.failed), (0, 1));
    // A late file of the failed input is a duplicate, not a new wait.
    let ack = client
        .clone()
        .push(tokio_stream::iter(chunks(header("lonely", "right", 3), b"abc")))
        .await
        .expect("late file")
        .into_inner();
    assert!(ack.duplicate);
    server.abort();
}

/// A 1 MiB tmpfs as the queue: a file bigger than what is left is refused
/// with ResourceExhausted, leaves no partial file, and the worker's status
/// says its disk is full until a file fits again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_files_and_shows_in_status() {
    let sandbox = Sandbox::new();
    let queue = sandbox.path("queue");
    std::fs::create_dir_all(&queue).expect("queue folder");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1M", "tmpfs"])
        .arg(&queue)
        .status();
    if !matches!(mounted, Ok(s) if s.success()) {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root?)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(queue.clone());
    let (client, server) = join_worker(&queue, Limits::DEFAULT).await;

    static BIG: [u8; 2 << 20] = [7u8; 2 << 20];
    let err = client
        .clone()
        .push(tokio_stream::iter(chunks(
            header("big", "left", BIG.len() as u64),
            &BIG,
        )))
        .await
        .expect_err("2 MiB does not fit in 1 MiB");
    assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
    assert!(err.message().contains("full"), "{}", err.message());
    assert!(queued_files(&queue).is_empty(), "{:?}", queued_files(&queue));
    let tmp: Vec<_> = std::fs::read_dir(queue.join("tmp"))
        .expect("tmp")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "part"))
        .collect();
    assert!(tmp.is_empty(), "no partial file left: {tmp:?}");
    let s = status(&client).await;
    assert!(s.storage_full.contains("full"), "{s:?}");

    client
        .clone()
        .push(tokio_stream::iter(chunks(header("small", "left", 3), b"abc")))
        .await
        .expect("a small file fits");
    assert_eq!(status(&client).await.storage_full, "");
    server.abort();
    // The worker's files go before the mount does.
    tokio::time::sleep(Duration::from_millis(100)).await;
}
