//! circe-worker's command line: the flags (each with a `JUPITER_*`
//! fallback), checked into a [`Config`] (the app loaded, the task found,
//! every child given a URL) before anything is bound.

use crate::{ChildEndpoint, Config, Error, Result};
use jupiter_common::app::App;
use jupiter_common::cli::{check_url, parse_task_url, url_for, RunnerFlags};
use jupiter_common::env;
use jupiter_common::role::Role;
use std::path::PathBuf;

#[derive(clap::Parser, Debug, Clone)]
#[command(
    version,
    about = "CIRCE worker: runs one task of an app on this node, with a durable input queue"
)]
pub struct Args {
    /// Address to listen on (HOST:PORT), or `fd:N` for a listening socket
    /// inherited as file descriptor N (a supervisor that keeps the port).
    #[arg(long, env = env::LISTEN, default_value_t = Role::CirceWorker.default_listen())]
    pub listen: String,
    #[command(flatten)]
    pub telemetry: jupiter_common::telemetry::TelemetryFlags,
    #[command(flatten)]
    pub tls: jupiter_common::tls::TlsFlags,
    /// The app folder.
    #[arg(long, env = env::APP)]
    pub app: PathBuf,
    /// The task this worker runs.
    #[arg(long, env = env::TASK)]
    pub task: String,
    /// Name of this node.
    #[arg(long, env = env::NODE)]
    pub node: String,
    /// Durable queue folder (keep it across restarts).
    #[arg(long, env = env::QUEUE_DIR, default_value = "/var/lib/jupiter/queue")]
    pub queue_dir: PathBuf,
    /// circe-home's URL.
    #[arg(long, env = env::CIRCE_HOME, default_value_t = Role::CirceHome.default_url())]
    pub home: String,
    /// URL of each child's worker, as TASK=URL (repeat or comma-separate).
    #[arg(long = "child", env = env::CHILDREN, value_delimiter = ',', value_parser = parse_task_url)]
    pub children: Vec<(String, String)>,
    /// Python for original Jupiter tasks.
    #[arg(long, env = env::PYTHON, default_value = "python3")]
    pub python: String,
    #[command(flatten)]
    pub runner: RunnerFlags,
}

impl Args {
    /// The checked configuration: the app loads, holds the task, and every
    /// child of the task has a worker URL.
    pub fn config(&self) -> Result<Config> {
        let app = App::load(&self.app)?;
        let mut task = app
            .task(&self.task)
            .ok_or_else(|| Error::UnknownTask {
                task: self.task.clone(),
                app: app.dir.clone(),
            })?
            .clone();
        self.runner.apply(&mut task);
        let children = task
            .children
            .iter()
            .map(|child| {
                Ok(ChildEndpoint {
                    task: child.clone(),
                    address: url_for(&self.children, child, "child")?,
                })
            })
            .collect::<Result<_>>()?;
        check_url("home", &self.home)?;
        Ok(Config {
            telemetry: self
                .telemetry
                .settings(Role::CirceWorker, Some(&self.node), Some(&self.task))?,
            task,
            app_dir: app.dir,
            node: self.node.clone(),
            queue_dir: self.queue_dir.clone(),
            limits: self.runner.limits.limits(),
            children,
            home: self.home.clone(),
            python: self.python.clone(),
            fresh_interpreter: false,
        })
    }
}

jupiter_common::impl_role_args!(Args, Role::CirceWorker);

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    const APP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/dummy_app");

    fn config(task: &str, flags: &[&str]) -> Result<Config> {
        let args = ["circe-worker", "--app", APP, "--node", "n1", "--task", task];
        Args::try_parse_from(args.iter().chain(flags)).unwrap().config()
    }

    #[test]
    fn children_come_from_repeated_or_comma_separated_flags() {
        let config = config("task1", &["--child", "task4=http://w4:7301,task9=http://w9:7301"]).unwrap();
        assert_eq!(config.children.len(), 1);
        assert_eq!(config.children[0].address, "http://w4:7301");
        assert_eq!(config.home, "http://circe-home:7300");
        assert_eq!(config.queue_dir, PathBuf::from("/var/lib/jupiter/queue"));
    }

    #[test]
    fn bad_flags_are_named_with_their_value() {
        assert_eq!(
            config("task1", &[]).unwrap_err().to_string(),
            "no --child task4=URL given for task task4"
        );
        let error = config("ghost", &[]).unwrap_err().to_string();
        assert!(
            error.starts_with("--task \"ghost\" is not in the app at "),
            "{error}"
        );
        let error = config(
            "task1",
            &["--child", "task4=http://w4:7301", "--home", "http://h me"],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("--home \"http://h me\" is not a URL"),
            "{error}"
        );
    }
}
