//! Driving `jupiterctl` as a user does, for the tests that run the real
//! binary: a command with the test's own state file, `status --json`, the
//! roles it lists and how the state file records them.

use jupiterctl::deployment::RoleInstance;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// `jupiterctl` with the state file `state`.
pub struct Cli {
    pub bin: PathBuf,
    pub state: PathBuf,
}

impl Cli {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .env("JUPITER_STATE", &self.state)
            .kill_on_drop(true);
        command
    }

    pub async fn status(&self) -> Option<Value> {
        let out = self
            .command(&["status", "--json"])
            .stderr(Stdio::null())
            .output()
            .await
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }
}

/// The pid `status --json` gives the role labelled like `label`
/// (`circe-home`, `circe-worker join`).
pub fn pid_of(status: &Value, label: &str) -> Option<u32> {
    roles(status)
        .into_iter()
        .find(|r| role_label(r) == label)
        .and_then(|r| r["pid"].as_u64())
        .map(|p| p as u32)
}

pub fn roles(status: &Value) -> Vec<Value> {
    status["roles"].as_array().cloned().unwrap_or_default()
}

/// How `status` names a role (`circe-home`, `circe-worker join`).
pub fn role_label(role: &Value) -> String {
    serde_json::from_value::<RoleInstance>(role.clone())
        .map(|r| r.label())
        .unwrap_or_default()
}

/// The roles as the state file records them now (what `status --json`
/// reports, without its health checks: fast enough to aim kills with).
pub fn recorded(cli: &Cli) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(&cli.state).ok()?).ok()
}

/// Waits until the state file shows `label` running as a process other
/// than `old` (the supervisor restarted it and `up` recorded it).
pub async fn wait_new_pid(cli: &Cli, label: &str, old: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = recorded(cli) {
            if let Some(pid) = pid_of(&status, label) {
                if pid != old {
                    return pid;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "{label} was not restarted within 20 s of its SIGKILL"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn wait_for_state(state: &Path, up: &mut tokio::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !state.exists() {
        if let Ok(Some(status)) = up.try_wait() {
            panic!("`jupiterctl up --processes` exited before the deployment was up: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the deployment was not up within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `jupiterctl up APP --processes` on 3 nodes mapped at random from
/// `seed`, with its work, output and state in `sandbox`; once it is up.
pub struct Up {
    pub cli: Cli,
    /// The `up` process (stays in the foreground with the roles).
    pub process: tokio::process::Child,
    pub work: PathBuf,
    pub output: PathBuf,
}

impl Up {
    pub async fn start(sandbox: &crate::Sandbox, app: &Path, seed: u64) -> Self {
        Self::start_with(sandbox, app, seed, &[]).await
    }

    /// [`Up::start`] with more flags for `up` (e.g. `--tls`).
    pub async fn start_with(sandbox: &crate::Sandbox, app: &Path, seed: u64, more: &[&str]) -> Self {
        let cli = Cli {
            bin: crate::jupiterctl_bin().await,
            state: sandbox.path("state.json"),
        };
        let work = sandbox.path("work");
        let output = sandbox.path("output");
        let up_log = std::fs::File::create(sandbox.path("up.log")).expect("log");
        let (app, seed) = (app.display().to_string(), seed.to_string());
        let (work_arg, output_arg) = (work.display().to_string(), output.display().to_string());
        let mut process = cli
            .command(
                &[
                    "up",
                    &app,
                    "--processes",
                    "--nodes",
                    "3",
                    "--scheduler",
                    "random",
                    "--seed",
                    &seed,
                    "--workdir",
                    &work_arg,
                    "--output",
                    &output_arg,
                ]
                .iter()
                .chain(more)
                .copied()
                .collect::<Vec<&str>>(),
            )
            .stdin(Stdio::null())
            .stderr(up_log)
            .spawn()
            .expect("jupiterctl up starts");
        wait_for_state(&cli.state, &mut process).await;
        Self {
            cli,
            process,
            work,
            output,
        }
    }
}

/// `jupiterctl down`, which must succeed, then waits (20 s at most) for
/// the `up` process to end.
pub async fn down(cli: &Cli, up: &mut tokio::process::Child) {
    let down = cli.command(&["down"]).output().await.expect("down runs");
    assert!(
        down.status.success(),
        "down: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    let _ = tokio::time::timeout(Duration::from_secs(20), up.wait()).await;
}
