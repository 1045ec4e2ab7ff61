//! Each role of a local deployment as the command line of its binary (its
//! flags, without `--listen`). The same arguments configure a role served
//! inside this process (parsed here by the role's own `Args`) and a role
//! run as its own process (`jupiterctl serve ROLE ARGS…`), so the two
//! modes cannot drift apart.

use super::LocalConfig;
use jupiter_common::app::App;
use jupiter_common::cli::RunnerFlags;
use jupiter_common::role::Role;
use std::collections::BTreeMap;
use std::path::Path;

/// A role's flags.
#[derive(Debug, Clone)]
pub struct RoleCommand {
    pub role: Role,
    pub args: Vec<String>,
}

impl RoleCommand {
    fn new(role: Role) -> Self {
        Self {
            role,
            args: Vec::new(),
        }
    }

    fn flag(mut self, name: &str, value: impl ToString) -> Self {
        self.args.push(format!("--{name}"));
        self.args.push(value.to_string());
        self
    }

    fn switch(mut self, name: &str, on: bool) -> Self {
        if on {
            self.args.push(format!("--{name}"));
        }
        self
    }

    /// Where the role sends spans and serves metrics, and the deployment
    /// it belongs to.
    pub fn telemetry(self, metrics_listen: &str, otlp_endpoint: Option<&str>, deployment: &str) -> Self {
        let command = self
            .flag("metrics-listen", metrics_listen)
            .flag("deployment", deployment);
        match otlp_endpoint {
            Some(endpoint) => command.flag("otlp-endpoint", endpoint),
            None => command,
        }
    }

    /// `jupiterctl serve ROLE ARGS…`
    pub fn serve_args(&self) -> Vec<String> {
        let mut args = vec!["serve".to_string(), self.role.name().to_string()];
        args.extend(self.args.iter().cloned());
        args
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

pub fn drupe_central(config: &LocalConfig) -> RoleCommand {
    let sizes: Vec<String> = config.probe.sizes.iter().map(u64::to_string).collect();
    RoleCommand::new(Role::DrupeCentral)
        .flag("db", path(&config.workdir.join("drupe").join("central.redb")))
        .flag("probe-interval", config.probe.interval.as_secs_f64())
        .flag("probe-sizes", sizes.join(","))
        .flag("probe-min-secs", config.probe.min_secs)
        .flag("probe-max-bytes", config.probe.max_bytes)
        // Every node is on this host's CPU: parallel probes would share it.
        .switch("probe-sequential", true)
}

pub fn wave_home(central: &str) -> RoleCommand {
    RoleCommand::new(Role::WaveHome).flag("central", central)
}

/// A node's droplet, which advertises the port it got: droplets probe
/// each other.
pub fn drupe_droplet(config: &LocalConfig, node: &str, central: &str, url: &str) -> RoleCommand {
    RoleCommand::new(Role::DrupeDroplet)
        .flag("node", node)
        .flag("central", central)
        .flag("advertise", url)
        .flag("interval", 5)
        .flag("data-dir", path(&config.workdir))
}

pub fn wave_worker(node: &str) -> RoleCommand {
    RoleCommand::new(Role::WaveWorker).flag("node", node)
}

/// The queue folder of `task` on `node`.
pub fn queue_dir(config: &LocalConfig, node: &str, task: &str) -> std::path::PathBuf {
    config.workdir.join("nodes").join(node).join("queues").join(task)
}

/// `task`'s worker on `node`; `urls` gives every task's worker URL.
pub fn circe_worker(
    config: &LocalConfig,
    app: &App,
    task: &str,
    node: &str,
    urls: &BTreeMap<String, String>,
    home: &str,
) -> RoleCommand {
    let mut command = RoleCommand::new(Role::CirceWorker)
        .flag("app", path(&app.dir))
        .flag("task", task)
        .flag("node", node)
        .flag("queue-dir", path(&queue_dir(config, node, task)))
        .flag("home", home)
        .flag("python", &config.python);
    let children = app.task(task).map(|t| t.children.clone()).unwrap_or_default();
    for child in children {
        if let Some(url) = urls.get(&child) {
            command = command.flag("child", format!("{child}={url}"));
        }
    }
    runner_flags(command, &config.runner)
}

fn runner_flags(command: RoleCommand, runner: &RunnerFlags) -> RoleCommand {
    let mut command = command.switch("fresh-interpreter", runner.fresh_interpreter);
    if let Some(timeout) = runner.task_timeout {
        command = command.flag("task-timeout", timeout.as_secs_f64());
    }
    if let Some(max) = runner.max_calls {
        command = command.flag("max-calls", max);
    }
    for (flag, _, value) in runner.limits.changed() {
        command = command.flag(flag, value);
    }
    command
}

pub fn circe_home(config: &LocalConfig, app: &App, urls: &BTreeMap<String, String>) -> RoleCommand {
    let mut command = RoleCommand::new(Role::CirceHome)
        .flag("app", path(&app.dir))
        .flag("data-dir", path(&config.workdir.join("home")))
        .flag("output", path(&config.output));
    for task in app.ingress() {
        if let Some(url) = urls.get(&task.name) {
            command = command.flag("ingress", format!("{}={url}", task.name));
        }
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::ProbeOptions;
    use jupiter_common::role::RoleArgs;

    const APP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/dummy_app");

    fn config() -> LocalConfig {
        LocalConfig {
            otlp_endpoint: None,
            tls: false,
            nodes: 2,
            workdir: "/w".into(),
            output: "/out".into(),
            python: "python3".into(),
            runner: RunnerFlags {
                fresh_interpreter: true,
                task_timeout: Some(std::time::Duration::from_secs(7)),
                max_calls: Some(3),
                limits: jupiter_common::limits::LimitFlags {
                    max_file_size: 1 << 20,
                    ..Default::default()
                },
            },
            probe: ProbeOptions::default(),
            processes: None,
        }
    }

    fn parse<A: RoleArgs>(command: &RoleCommand) -> A {
        assert_eq!(command.role, A::ROLE);
        A::try_parse_from(std::iter::once("x".to_string()).chain(command.args.clone()))
            .unwrap_or_else(|e| panic!("{} parses its flags: {e}", command.role))
    }

    /// Every command parses with its role's own flags into the
    /// configuration a deployment needs.
    #[test]
    fn every_role_parses_its_command() {
        let config = config();
        let app = App::load(Path::new(APP)).expect("example loads");
        let central = parse::<drupe_central::Args>(&drupe_central(&config))
            .config()
            .expect("central config");
        assert_eq!(central.probe_sizes, [16 * 1024, 128 * 1024]);
        assert!(central.probe_sequential);
        assert_eq!(central.probe_interval, std::time::Duration::from_secs(30));
        parse::<wave_home::Args>(&wave_home("http://c:1"))
            .config()
            .expect("wave-home");
        let droplet =
            parse::<drupe_droplet::Args>(&drupe_droplet(&config, "node1", "http://c:1", "http://d:2"))
                .config()
                .expect("droplet");
        assert_eq!(droplet.advertise.as_deref(), Some("http://d:2"));
        parse::<wave_worker::Args>(&wave_worker("node1"))
            .config()
            .expect("wave-worker");
        let urls: BTreeMap<String, String> = app
            .tasks
            .iter()
            .map(|t| (t.name.clone(), format!("http://{}:1", t.name)))
            .collect();
        let worker = parse::<circe_worker::Args>(&circe_worker(
            &config,
            &app,
            "task1",
            "node1",
            &urls,
            "http://h:1",
        ))
        .config()
        .expect("worker");
        assert_eq!(worker.children[0].address, "http://task4:1");
        assert_eq!(worker.queue_dir, Path::new("/w/nodes/node1/queues/task1"));
        assert_eq!(worker.task.timeout, Some(std::time::Duration::from_secs(7)));
        assert_eq!(worker.task.max_calls, Some(3));
        assert!(worker.task.fresh_interpreter);
        assert_eq!(worker.limits.max_file_size, 1 << 20);
        let home = parse::<circe_home::Args>(&circe_home(&config, &app, &urls))
            .config()
            .expect("home");
        assert_eq!(home.ingress[0].address, "http://task0:1");
        assert_eq!(home.data_dir, Path::new("/w/home"));
        assert_eq!(
            circe_home(&config, &app, &urls).serve_args()[..2],
            ["serve".to_string(), "circe-home".to_string()]
        );
    }
}
