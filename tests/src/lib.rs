//! Helpers shared by Jupiter's end-to-end tests: where the examples are,
//! deterministic inputs, deployment options in a private temporary folder,
//! and byte-exact checks of what reached the output folder.

pub mod cli;
pub mod docker;
pub mod expected;
pub mod grpcurl;
pub mod otlp;

use jupiter_common::app::App;
use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
use jupiter_common::proto::drupe::central::v1::{NetworkProfile, ProfileRequest};
use jupiter_common::serve::channel;
use jupiterctl::deployment::{Backend, Deployment, PlacementRequest, Scheduler};
use jupiterctl::local::{Local, LocalConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The release `jupiterctl` binary of this checkout, built (once per test
/// binary, cheap when nothing changed) into the target folder the image
/// builds use: tests that run it as a user would (`up --processes`,
/// `status --json`, `submit`) need the binary, not the library.
pub async fn jupiterctl_bin() -> PathBuf {
    static BUILT: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    BUILT.get_or_init(|| release_bin("jupiterctl")).await.clone()
}

/// The release binary `name` of this checkout's package of that name,
/// built like [`jupiterctl_bin`] (a role's own binary: `wave-home`, …).
pub async fn release_bin(name: &str) -> PathBuf {
    let status = tokio::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "-p", name, "--bin", name])
        .current_dir(checkout())
        .env("CARGO_TARGET_DIR", images_target())
        .status()
        .await
        .expect("cargo starts");
    assert!(status.success(), "building {name} failed");
    images_target().join("release").join(name)
}

/// The root of this checkout.
pub fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The target folder of the binaries tests run (and images hold): its own,
/// because the outer `cargo test` may hold the lock of the usual one.
pub fn images_target() -> PathBuf {
    checkout().join("target").join("images")
}

/// Every role of a deployment as (URL, the gRPC service it serves).
pub fn role_services(e: &jupiterctl::deployment::Endpoints) -> Vec<(String, &'static str)> {
    let mut roles = vec![
        (e.drupe_central.clone(), "jupiter.drupe.central.v1.DrupeCentral"),
        (e.wave_home.clone(), "jupiter.wave.home.v1.WaveHome"),
        (e.circe_home.clone(), "jupiter.circe.home.v1.CirceHome"),
    ];
    for node in &e.nodes {
        roles.push((
            node.drupe_droplet.clone(),
            "jupiter.drupe.droplet.v1.DrupeDroplet",
        ));
        roles.push((node.wave_worker.clone(), "jupiter.wave.worker.v1.WaveWorker"));
    }
    for worker in e.workers.values() {
        roles.push((worker.address.clone(), "jupiter.circe.worker.v1.CirceWorker"));
    }
    roles
}

/// A Jupiter service that a role serving `service` does not serve.
pub fn another_service(service: &str) -> &'static str {
    if service.contains("DrupeCentral") {
        "jupiter.circe.home.v1.CirceHome"
    } else {
        "jupiter.drupe.central.v1.DrupeCentral"
    }
}

/// Every file under `dir`, at any depth (none if `dir` is missing).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                all.extend(files_under(&path));
            } else {
                all.push(path);
            }
        }
    }
    all
}

/// Expected output files of one input: (file name, bytes).
pub type Expected = Vec<(String, Vec<u8>)>;

/// drupe-central's current network profile, asked over gRPC at `central`.
pub async fn network_profile(central: &str) -> NetworkProfile {
    DrupeCentralClient::new(channel(central).expect("channel"))
        .get_network_profile(ProfileRequest {})
        .await
        .expect("profile")
        .into_inner()
}

/// The folder of an example app shipped in `examples/`.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

/// A private folder for one test (queues, home data, outputs, inputs).
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("jupiter-test-")
                .tempdir()
                .expect("temporary folder"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A local deployment of `nodes` nodes whose queues, home data and
    /// outputs live in this sandbox.
    pub fn local_config(&self, nodes: usize) -> LocalConfig {
        LocalConfig {
            otlp_endpoint: None,
            nodes,
            workdir: self.path("work"),
            output: self.path("output"),
            python: "python3".into(),
            runner: Default::default(),
            probe: Default::default(),
            processes: None,
            tls: false,
        }
    }

    /// The local backend for `app` on `nodes` nodes in this sandbox.
    pub fn local(&self, app: &App, nodes: usize) -> Box<dyn Backend> {
        Box::new(Local::new(&app.name, self.local_config(nodes)))
    }

    /// Brings `app` up on `nodes` local nodes with a mapping drawn at
    /// random from `seed`.
    pub async fn deploy_local(&self, app: &App, nodes: usize, seed: u64) -> Deployment {
        Deployment::up(self.local(app, nodes), app, &random(seed))
            .await
            .expect("deploys")
    }

    /// Runs `app`'s sample inputs, all at once, on `nodes` local nodes
    /// mapped at random from `seed`; panics unless every input succeeds.
    pub async fn run_samples(&self, app: &App, nodes: usize, seed: u64) -> jupiterctl::run::RunOutcome {
        let outcome = self.run_samples_anyhow(app, nodes, seed).await;
        assert!(outcome.all_ok(), "{:?}", outcome.results);
        outcome
    }

    /// [`Sandbox::run_samples`], whether the inputs succeed or fail.
    pub async fn run_samples_anyhow(
        &self,
        app: &App,
        nodes: usize,
        seed: u64,
    ) -> jupiterctl::run::RunOutcome {
        jupiterctl::run::run(
            self.local(app, nodes),
            app,
            &random(seed),
            &[],
            jupiterctl::session::Pace::AllAtOnce,
            std::time::Duration::from_secs(120),
            false,
        )
        .await
        .expect("run completes")
    }

    /// Writes `count` distinct inputs named `{prefix}{i}{suffix}`, each a few
    /// lines that differ per input, and returns their folder.
    pub fn inputs(&self, count: usize, prefix: &str, suffix: &str) -> PathBuf {
        let dir = self.path("inputs");
        std::fs::create_dir_all(&dir).expect("inputs folder");
        for i in 0..count {
            let mut text = String::new();
            for line in 0..(3 + i % 5) {
                text.push_str(&format!("input {i} line {line}: lorem ipsum {}\n", i * 31 + line));
            }
            std::fs::write(dir.join(format!("{prefix}{i}{suffix}")), text).expect("write input");
        }
        dir
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

/// A mapping drawn at random from `seed`.
pub fn random(seed: u64) -> PlacementRequest {
    scheduled(Scheduler::Random, seed)
}

/// The scheduling `scheduler` with `seed`, no static mapping.
pub fn scheduled(scheduler: Scheduler, seed: u64) -> PlacementRequest {
    PlacementRequest {
        scheduler,
        static_mapping: BTreeMap::new(),
        seed,
        python: "python3".into(),
        profile: Default::default(),
        replan: Default::default(),
    }
}

/// Inputs with an output folder in `output` (circe-home's own data, in a
/// hidden folder, is not one).
pub fn finished(output: &Path) -> usize {
    std::fs::read_dir(output).map_or(0, |d| {
        d.flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count()
    })
}

/// Waits until at least `n` inputs have an output folder.
pub async fn wait_finished(output: &Path, n: usize) {
    while finished(output) < n {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Asserts that `<output>/<input>/` holds exactly the expected files, byte for byte.
pub fn assert_outputs(output: &Path, input: &str, expected: &Expected) {
    let dir = output.join(input);
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("output folder {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut wanted: Vec<String> = expected.iter().map(|(n, _)| n.clone()).collect();
    wanted.sort();
    assert_eq!(found, wanted, "output files of input {input}");
    for (name, bytes) in expected {
        let got = std::fs::read(dir.join(name)).expect("read output");
        assert!(
            got == *bytes,
            "output {input}/{name} differs:\n got: {:?}\nwant: {:?}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(bytes)
        );
    }
}

/// The expected outputs of every input file in `inputs`, by input id.
pub fn expected_for(inputs: &Path, model: fn(&str, &[u8]) -> Expected) -> BTreeMap<String, Expected> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(inputs).expect("inputs folder") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        let content = std::fs::read(&path).expect("read input");
        all.insert(name.clone(), model(&name, &content));
    }
    all
}

/// The process whose pid a task wrote to `pid_file` is gone (or a zombie
/// no one has reaped yet): a timeout killed what the task started.
pub fn assert_process_gone(pid_file: &Path) {
    let pid = std::fs::read_to_string(pid_file)
        .unwrap_or_else(|e| panic!("{}: the task did not start its process: {e}", pid_file.display()));
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    let state = stat.rsplit(')').next().unwrap_or("").split_whitespace().next();
    assert!(
        matches!(state, None | Some("Z")),
        "process {} outlived the task's timeout: {stat}",
        pid.trim()
    );
}
