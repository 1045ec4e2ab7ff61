//! Helpers of the Docker backend's tests: find the engine (or skip loudly),
//! build the role images from this checkout once per test binary, and
//! options for a deployment in a test's sandbox.

use jupiter_common::app::App;
use jupiterctl::deployment::Backend;
use jupiterctl::docker::engine::Engine;
use jupiterctl::docker::{Docker, DockerConfig, Images};
use jupiterctl::node_list::NodeSpec;
use std::path::Path;
use tokio::sync::OnceCell;

/// The tag test images are built under, apart from a user's `dev` images:
/// `test`, or `$JUPITER_TEST_TAG` so that two checkouts testing at once on
/// one engine do not overwrite each other's images.
pub fn test_tag() -> String {
    std::env::var("JUPITER_TEST_TAG").unwrap_or_else(|_| "test".into())
}

/// The engine, or None after saying loudly why the test is skipped.
pub async fn engine_or_skip(test: &str) -> Option<Engine> {
    match Engine::connect().await {
        Ok(engine) => Some(engine),
        Err(e) => {
            eprintln!("\n*** SKIPPING {test}: no Docker engine here ({e}) ***\n");
            None
        }
    }
}

/// Builds `jupiter/<role>:test` from this checkout (base image included),
/// once per test binary; cheap when nothing changed.
pub async fn ensure_images() {
    static BUILT: OnceCell<()> = OnceCell::const_new();
    BUILT
        .get_or_init(|| async {
            let root = crate::checkout();
            let tag = test_tag();
            eprintln!("building the role images (docker/build-images.sh {tag})...");
            let status = tokio::process::Command::new("bash")
                .arg(root.join("docker/build-images.sh"))
                .arg(&tag)
                .env("CARGO_TARGET_DIR", crate::images_target())
                .status()
                .await
                .expect("docker/build-images.sh starts");
            assert!(status.success(), "docker/build-images.sh {tag} failed");
        })
        .await;
}

/// `docker inspect` of one field of a container (a Go template).
pub async fn inspect(engine: &Engine, container: &str, format: &str) -> String {
    engine
        .run(&["inspect", "--format", format, container])
        .await
        .expect("docker inspect")
}

/// The names of every running container of deployment `id` on `node`.
pub async fn node_containers(engine: &Engine, id: &str, node: &str) -> Vec<String> {
    let filter_node = format!("label=io.jupiter.node={node}");
    let filter_dep = format!("label=io.jupiter.deployment={id}");
    engine
        .run(&[
            "ps",
            "--format",
            "{{.Names}}",
            "--filter",
            &filter_dep,
            "--filter",
            &filter_node,
        ])
        .await
        .expect("the node's containers")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Three nodes that really differ in CPU and memory.
pub fn three_nodes() -> Vec<NodeSpec> {
    [("edge0", 0.5, 256), ("edge1", 1.0, 384), ("cloud0", 1.5, 768)]
        .into_iter()
        .map(|(name, cpus, mib)| NodeSpec {
            name: name.into(),
            cpus,
            memory_bytes: mib << 20,
            bandwidth_bits_per_sec: None,
            delay: None,
        })
        .collect()
}

/// The Docker backend for `app` over `nodes`, with the test images;
/// outputs in the sandbox.
pub async fn backend(sandbox: &crate::Sandbox, app: &App, nodes: Vec<NodeSpec>) -> Box<dyn Backend> {
    backend_probing(sandbox, app, nodes, Default::default()).await
}

/// [`backend`] with DRUPE probing as `probe` says.
pub async fn backend_probing(
    sandbox: &crate::Sandbox,
    app: &App,
    nodes: Vec<NodeSpec>,
    probe: jupiterctl::deployment::ProbeOptions,
) -> Box<dyn Backend> {
    let output = sandbox.path("output");
    std::fs::create_dir_all(&output).expect("output folder");
    let config = DockerConfig {
        otlp_endpoint: None,
        nodes,
        images: Images {
            prefix: "jupiter".into(),
            tag: test_tag(),
        },
        output: output.canonicalize().expect("output folder"),
        probe,
        runner: Default::default(),
        tls: false,
    };
    Box::new(Docker::new(&app.name, config).await.expect("the engine answers"))
}

/// The release `jupiterctl` that [`ensure_images`] built from this checkout.
pub fn jupiterctl_binary() -> std::path::PathBuf {
    crate::images_target().join("release").join("jupiterctl")
}

/// Runs the release `jupiterctl ARGS…` with the sandbox's state file and
/// the test images: whether it succeeded, and its stdout then stderr.
pub fn cli(sandbox: &crate::Sandbox, args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(jupiterctl_binary())
        .args(args)
        .env("JUPITER_STATE", sandbox.path("state.json"))
        .env("JUPITER_IMAGE_TAG", test_tag())
        .output()
        .expect("jupiterctl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Removes deployment `id` when dropped, so a failing test leaves nothing
/// behind in the engine (a passing one has already run `down`, and this
/// finds nothing).
pub struct Teardown(pub String);

impl Drop for Teardown {
    fn drop(&mut self) {
        let id = self.0.clone();
        // Drop cannot await, and the test's runtime may be the one dropping:
        // `down`'s own removal runs on a runtime of its own thread.
        let removal = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let engine = Engine::connect().await?;
                jupiterctl::docker::remove(&engine, &id).await?;
                anyhow::Ok(())
            })
        });
        if let Ok(Err(e)) = removal.join() {
            eprintln!("teardown of {}: {e}", self.0);
        }
    }
}

/// Checks that each node's shared cgroup holds its CPU quota, where the
/// engine uses the cgroupfs driver on cgroup v1 and the tests run as root
/// (the only setting where `up` makes them). Whether it could check.
pub async fn assert_node_cgroups(engine: &Engine, deployment: &str, nodes: &[NodeSpec]) -> bool {
    let driver = engine
        .run(&["info", "--format", "{{.CgroupDriver}} {{.CgroupVersion}}"])
        .await
        .unwrap_or_default();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if driver.trim() != "cgroupfs 1" || !root {
        eprintln!("*** not checking the nodes' shared cgroups: driver {driver:?}, root {root} ***");
        return false;
    }
    for node in nodes {
        let quota = Path::new("/sys/fs/cgroup/cpu/jupiter")
            .join(deployment)
            .join(&node.name)
            .join("cpu.cfs_quota_us");
        let read = std::fs::read_to_string(&quota).unwrap_or_else(|e| panic!("{}: {e}", quota.display()));
        let want = (node.cpus * 100_000.0).round() as u64;
        assert_eq!(read.trim(), want.to_string(), "{}", quota.display());
    }
    true
}

/// Checks that no cgroup folder of `deployment` is left in any controller.
pub fn assert_no_node_cgroups(deployment: &str) {
    let root = Path::new("/sys/fs/cgroup");
    let mut tops = vec![root.join("jupiter").join(deployment)];
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        tops.push(entry.path().join("jupiter").join(deployment));
    }
    for top in tops {
        assert!(!top.exists(), "{} left after down", top.display());
    }
}
