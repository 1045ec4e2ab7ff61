//! A real Prometheus (Debian's) scraping a real deployment: `jupiterctl up
//! examples/dummy_app --processes` in the background, its targets written
//! by docker/observability/targets.sh from `jupiterctl status --json` (the
//! way the README tells a user to scrape a local deployment), a 1 s scrape
//! interval, the sample inputs submitted; then, within 60 s, every target
//! is up, `jupiter_inputs_done_total` counts the inputs and
//! `jupiter_task_run_seconds_count` has a series for every task. Every
//! query of the Grafana dashboard is run against it too. Prometheus is
//! killed and the deployment brought down whatever happens.
//!
//! And the Docker half of docker/observability/prometheus.yml, the file
//! itself, against this machine's Docker engine: containers labelled as
//! jupiterctl labels a deployment's roles (stand-ins that only sleep: the
//! point is discovery, addresses and labels, not their metrics) become
//! targets at their address and their role's metrics port, others do not.

#[path = "support/prometheus.rs"]
mod prometheus;

use jupiter_common::app::App;
use jupiter_common::role::Role;
use jupiter_tests::cli::{down, roles, Cli, Up};
use jupiter_tests::docker::engine_or_skip;
use jupiter_tests::{example, Sandbox};
use jupiterctl::docker::engine::Engine;
use prometheus::{
    dashboard, dashboard_queries, observability_dir, promtool_check_config, with_all_selected, Prometheus,
};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How long Prometheus gets to see it all, once the inputs are done.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(60);

/// A Prometheus config for the targets in `targets/*.json` beside it,
/// scraped every second (the job of docker/observability/prometheus.yml
/// that scrapes local deployments, at a test's pace).
const CONFIG: &str = r#"
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: jupiter-files
    honor_labels: true
    file_sd_configs:
      - files: ["targets/*.json"]
        refresh_interval: 1s
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_every_role_of_a_real_deployment() {
    prometheus::ensure_installed();
    let sandbox = Sandbox::new();
    let app_dir = example("dummy_app");
    let app = App::load(&app_dir).expect("example app loads");
    let Up {
        cli, process: mut up, ..
    } = Up::start(&sandbox, &app_dir, 5).await;

    // Everything that can fail runs in its own task, so that the
    // deployment is brought down (and Prometheus killed, by its drop) even
    // when it panics; the panic is raised again after.
    let checks = {
        let bin = cli.bin.clone();
        let state = cli.state.clone();
        let dir = sandbox.path("prometheus");
        let app_dir = app_dir.clone();
        let tasks: BTreeSet<String> = app.tasks.iter().map(|t| t.name.clone()).collect();
        tokio::spawn(async move { scrape_and_check(Cli { bin, state }, &dir, &app_dir, tasks).await })
    };
    let outcome = checks.await;
    down(&cli, &mut up).await;
    if let Err(failed) = outcome {
        std::panic::resume_unwind(failed.into_panic());
    }
}

async fn scrape_and_check(cli: Cli, dir: &Path, app_dir: &Path, tasks: BTreeSet<String>) {
    let (bin, state) = (&cli.bin, &cli.state);
    let status = cli.status().await.expect("status --json answers");
    let listed = roles(&status);
    let without: Vec<String> = listed
        .iter()
        .filter(|r| r["metrics"].as_str().is_none_or(str::is_empty))
        .map(|r| {
            format!(
                "{} {}",
                r["role"],
                r["task"].as_str().or(r["node"].as_str()).unwrap_or("")
            )
        })
        .collect();
    assert!(
        without.is_empty(),
        "`status --json` gives no `metrics` URL for {} of its {} roles: {}",
        without.len(),
        listed.len(),
        without.join(", ")
    );

    // The targets, as a user makes them.
    std::fs::create_dir_all(dir.join("targets")).unwrap();
    let written = tokio::process::Command::new("bash")
        .arg(observability_dir().join("targets.sh"))
        .arg("--out")
        .arg(dir.join("targets/deployment.json"))
        .env("JUPITERCTL", bin)
        .env("JUPITER_STATE", state)
        .output()
        .await
        .expect("bash runs");
    assert!(
        written.status.success(),
        "targets.sh: {}",
        String::from_utf8_lossy(&written.stderr)
    );
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, CONFIG).unwrap();
    let (ok, said) = promtool_check_config(&config);
    assert!(ok, "{said}");
    let prometheus = Prometheus::start(&config, dir);

    // The sample inputs, through the CLI; done before the wait starts.
    let submitted = tokio::process::Command::new(bin)
        .arg("submit")
        .arg(app_dir.join("sample_input"))
        .args(["--timeout", "120"])
        .env("JUPITER_STATE", state)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("submit runs");
    let inputs = std::fs::read_dir(app_dir.join("sample_input")).unwrap().count();
    assert!(
        submitted.status.success(),
        "submit: {}{}",
        String::from_utf8_lossy(&submitted.stdout),
        String::from_utf8_lossy(&submitted.stderr)
    );

    let deadline = Instant::now() + SCRAPE_TIMEOUT;
    let mut seen = Seen::default();
    loop {
        seen = Seen::now(&prometheus, &seen).await;
        let up = seen.targets.len() == listed.len() && seen.targets.iter().all(|(_, health)| health == "up");
        if up && seen.done >= inputs as f64 && seen.tasks == tasks {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "within {SCRAPE_TIMEOUT:?}, Prometheus should scrape all {} roles (up), count {inputs} inputs done \
             and see jupiter_task_run_seconds_count for tasks {tasks:?}; it saw:\n\
             targets {:#?}\ninputs done {}\ntasks {:?}\n--- prometheus log ---\n{}",
            listed.len(),
            seen.targets,
            seen.done,
            seen.tasks,
            prometheus.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A few more scrapes, so that the rates the dashboard draws have two
    // samples of every series (a worker's appear with its first run).
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Every query of the dashboard is valid PromQL to this Prometheus.
    // Those that select nothing here are listed, not failed: a short run of
    // the dummy app may have no push retry or no failed run to show.
    let mut empty = Vec::new();
    for (title, expr) in dashboard_queries(&dashboard()) {
        let expr = with_all_selected(&expr);
        match prometheus.query(&expr).await {
            Ok(series) if series.is_empty() => empty.push(format!("{title}: {expr}")),
            Ok(_) => {}
            Err(e) => panic!("dashboard panel {title:?}: {expr}: {e}"),
        }
    }
    if !empty.is_empty() {
        eprintln!(
            "dashboard queries with no data in this run:\n  {}",
            empty.join("\n  ")
        );
    }
    // Prometheus is killed by its drop here.
}

/// What Prometheus shows at one moment.
#[derive(Default)]
struct Seen {
    /// (scrape URL, health) of every active target.
    targets: Vec<(String, String)>,
    done: f64,
    /// The tasks that have a jupiter_task_run_seconds_count series.
    tasks: BTreeSet<String>,
}

impl Seen {
    /// Asked again; what could not be asked stays as it was.
    async fn now(prometheus: &Prometheus, before: &Seen) -> Seen {
        let targets = prometheus
            .targets()
            .await
            .iter()
            .map(|t| {
                let health = t["health"].as_str().unwrap_or_default();
                let error = t["lastError"].as_str().unwrap_or_default();
                let health = if error.is_empty() {
                    health.to_string()
                } else {
                    format!("{health} ({error})")
                };
                (t["scrapeUrl"].as_str().unwrap_or_default().to_string(), health)
            })
            .collect();
        let done = match prometheus.query("sum(jupiter_inputs_done_total)").await {
            Ok(series) => series
                .first()
                .and_then(|s| s["value"][1].as_str())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0),
            Err(_) => before.done,
        };
        let tasks = match prometheus
            .query("count by (task) (jupiter_task_run_seconds_count)")
            .await
        {
            Ok(series) => series
                .iter()
                .filter_map(|s| s["metric"]["task"].as_str().map(str::to_string))
                .collect(),
            Err(_) => before.tasks.clone(),
        };
        Seen { targets, done, tasks }
    }
}

/// A container image holding only `/bin/sleep` and the libraries it
/// loads, from this machine (nothing can be pulled here); removed with
/// its containers and network when dropped.
struct StandIns {
    engine: Engine,
    image: String,
    network: String,
    containers: Vec<String>,
}

impl StandIns {
    async fn new(engine: Engine, id: &str) -> StandIns {
        let image = format!("jupiter-test-sleep:{id}");
        let made = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(
                r#"set -euo pipefail
                root="$(mktemp -d)"; trap 'rm -rf "$root"' EXIT
                for f in /bin/sleep $(ldd /bin/sleep | grep -o '/[^ ]*'); do
                  mkdir -p "$root$(dirname "$f")"; cp -L "$f" "$root$f"
                done
                tar -C "$root" -c . | docker import - "$1" >/dev/null"#,
            )
            .arg("bash")
            .arg(&image)
            .output()
            .await
            .expect("bash runs");
        assert!(
            made.status.success(),
            "a stand-in image from /bin/sleep: {}",
            String::from_utf8_lossy(&made.stderr)
        );
        let network = format!("{id}-net");
        engine
            .run(&["network", "create", &network])
            .await
            .expect("a network");
        StandIns {
            engine,
            image,
            network,
            containers: Vec::new(),
        }
    }

    /// Runs a stand-in called `name` with `labels`; its address on the
    /// network.
    async fn run(&mut self, name: &str, labels: &[(&str, &str)]) -> String {
        let mut args: Vec<String> = ["run", "--detach", "--name", name, "--network", &self.network]
            .map(str::to_string)
            .to_vec();
        for (key, value) in labels {
            args.extend(["--label".to_string(), format!("{key}={value}")]);
        }
        args.extend([self.image.clone(), "/bin/sleep".into(), "600".into()]);
        self.containers.push(name.to_string());
        self.engine.run(&args).await.expect("a stand-in container");
        let format = format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            self.network
        );
        self.engine
            .run(&["inspect", "--format", &format, name])
            .await
            .expect("its address")
    }
}

impl Drop for StandIns {
    fn drop(&mut self) {
        // Synchronous: this runs after a panic too, and the runtime may be
        // going away.
        let docker = |args: &[&str]| {
            let _ = std::process::Command::new("docker")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        let mut rm = vec!["rm", "--force"];
        rm.extend(self.containers.iter().map(String::as_str));
        docker(&rm);
        docker(&["network", "rm", &self.network]);
        docker(&["image", "rm", &self.image]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_discovery_finds_role_containers_at_their_metrics_ports() {
    let Some(engine) = engine_or_skip("docker_discovery_finds_role_containers_at_their_metrics_ports").await
    else {
        return;
    };
    if !Path::new("/var/run/docker.sock").exists() {
        eprintln!(
            "\n*** SKIPPING: prometheus.yml reads /var/run/docker.sock, which this engine does not use ***\n"
        );
        return;
    }
    prometheus::ensure_installed();
    let id = format!("jupiter-obs-{:06x}", std::process::id());
    let mut stand_ins = StandIns::new(engine, &id).await;
    // One container per role, labelled as jupiterctl labels a deployment's.
    let mut expected = BTreeSet::new();
    for role in Role::ALL {
        let name = format!("{id}-{role}");
        let mut labels = vec![
            ("io.jupiter.deployment", id.as_str()),
            ("io.jupiter.role", role.name()),
        ];
        if role != Role::DrupeCentral && role != Role::WaveHome && role != Role::CirceHome {
            labels.push(("io.jupiter.node", "node1"));
        }
        if role == Role::CirceWorker {
            labels.push(("io.jupiter.task", "task0"));
        }
        let address = stand_ins.run(&name, &labels).await;
        let node = labels
            .iter()
            .find(|(k, _)| *k == "io.jupiter.node")
            .map(|(_, v)| v.to_string());
        let task = labels
            .iter()
            .find(|(k, _)| *k == "io.jupiter.task")
            .map(|(_, v)| v.to_string());
        expected.insert((
            format!("http://{address}:{}/metrics", role.metrics_port()),
            role.name().to_string(),
            node,
            task,
            name,
        ));
    }
    // Not targets: a container with the role label only (the images carry
    // it: someone's `docker run` of one), and a role this config does not
    // know.
    stand_ins
        .run(&format!("{id}-by-hand"), &[("io.jupiter.role", "circe-home")])
        .await;
    stand_ins
        .run(
            &format!("{id}-unknown"),
            &[
                ("io.jupiter.deployment", id.as_str()),
                ("io.jupiter.role", "unknown-role"),
            ],
        )
        .await;

    // The repository's config as it is, beside an empty targets folder.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::copy(observability_dir().join("prometheus.yml"), &config).unwrap();
    let prometheus = Prometheus::start(&config, dir.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen: BTreeSet<_> = prometheus
            .targets()
            .await
            .iter()
            .filter(|t| t["labels"]["job"] == "jupiter-docker")
            .filter(|t| {
                let instance = t["labels"]["instance"].as_str().unwrap_or_default();
                instance.starts_with(&id) || t["labels"]["deployment"] == id.as_str()
            })
            .map(|t| {
                let label = |k: &str| t["labels"][k].as_str().map(str::to_string);
                (
                    t["scrapeUrl"].as_str().unwrap_or_default().to_string(),
                    label("role").unwrap_or_default(),
                    label("node"),
                    label("task"),
                    label("instance").unwrap_or_default(),
                )
            })
            .collect();
        if seen == expected {
            for (_, _, _, _, instance) in &seen {
                let target = prometheus
                    .targets()
                    .await
                    .into_iter()
                    .find(|t| t["labels"]["instance"] == instance.as_str())
                    .unwrap();
                assert_eq!(target["labels"]["deployment"], id.as_str(), "{target}");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus' Docker discovery should give exactly\n{expected:#?}\nit gives\n{seen:#?}\n--- log ---\n{}",
            prometheus.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
