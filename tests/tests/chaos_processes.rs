//! Real crashes under `jupiterctl up --processes`: every role its own
//! process, supervised. While `jupiterctl submit` streams 200 inputs
//! through the fan-out/join example, the test SIGKILLs circe-workers 20
//! times and circe-home twice, each at a random moment, finding their pids
//! with `jupiterctl status --json` as a user would. Every input must still
//! finish exactly once, with byte-exact outputs and nothing extra, and the
//! supervisor must have counted every restart.

use jupiter_tests::{assert_outputs, example, expected, expected_for, jupiterctl_bin, Sandbox};
use jupiterctl::deployment::RoleInstance;
use jupiterctl::process;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;

const INPUTS: usize = 200;
const WORKER_KILLS: usize = 20;
/// Kills (by number) that go to circe-home instead of a worker.
const HOME_KILLS: [usize; 2] = [6, 15];

/// 200 inputs of 2,000 lines each (about 70 KiB), so that tasks run and
/// files travel for long enough to be interrupted.
fn big_inputs(sandbox: &Sandbox) -> PathBuf {
    let dir = sandbox.path("inputs");
    std::fs::create_dir_all(&dir).expect("inputs folder");
    for i in 0..INPUTS {
        let text: String = (0..2000)
            .map(|line| format!("input {i} line {line}: lorem ipsum {}\n", i * 7919 + line))
            .collect();
        std::fs::write(dir.join(format!("in{i}.txt")), text).expect("write input");
    }
    dir
}

struct Cli {
    bin: PathBuf,
    state: PathBuf,
}

impl Cli {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .env("JUPITER_STATE", &self.state)
            .kill_on_drop(true);
        command
    }

    async fn status(&self) -> Option<Value> {
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
fn pid_of(status: &Value, label: &str) -> Option<u32> {
    roles(status)
        .into_iter()
        .find(|r| role_label(r) == label)
        .and_then(|r| r["pid"].as_u64())
        .map(|p| p as u32)
}

fn roles(status: &Value) -> Vec<Value> {
    status["roles"].as_array().cloned().unwrap_or_default()
}

/// How `status` names a role (`circe-home`, `circe-worker join`).
fn role_label(role: &Value) -> String {
    serde_json::from_value::<RoleInstance>(role.clone())
        .map(|r| r.label())
        .unwrap_or_default()
}

/// The roles as the state file records them now (what `status --json`
/// reports, without its health checks: fast enough to aim kills with).
fn recorded(cli: &Cli) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(&cli.state).ok()?).ok()
}

/// Waits until the state file shows `label` running as a process other
/// than `old` (the supervisor restarted it and `up` recorded it).
async fn wait_new_pid(cli: &Cli, label: &str, old: u32) -> u32 {
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

async fn wait_for_state(state: &Path, up: &mut tokio::process::Child) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_roles_come_back_and_every_input_finishes_exactly_once() {
    let sandbox = Sandbox::new();
    let inputs = big_inputs(&sandbox);
    let cli = Cli {
        bin: jupiterctl_bin().await,
        state: sandbox.path("state.json"),
    };
    let work = sandbox.path("work");
    let output = sandbox.path("output");
    let up_log = std::fs::File::create(sandbox.path("up.log")).expect("log");
    let mut up = cli
        .command(&[
            "up",
            &example("fanjoin").display().to_string(),
            "--processes",
            "--nodes",
            "3",
            "--scheduler",
            "random",
            "--seed",
            "12",
            "--workdir",
            &work.display().to_string(),
            "--output",
            &output.display().to_string(),
        ])
        .stdin(Stdio::null())
        .stderr(up_log)
        .spawn()
        .expect("jupiterctl up starts");
    wait_for_state(&cli.state, &mut up).await;
    let status = cli.status().await.expect("status --json answers");
    let all = roles(&status);
    assert!(
        all.iter()
            .all(|r| r["pid"].as_u64().is_some() && r["restarts"] == 0),
        "every role is a process of its own, not yet restarted: {all:?}"
    );
    let pids: std::collections::BTreeSet<u64> = all.iter().filter_map(|r| r["pid"].as_u64()).collect();
    assert_eq!(pids.len(), all.len(), "one process per role");
    let workers: Vec<String> = all
        .iter()
        .filter(|r| r["role"] == "circe-worker")
        .map(role_label)
        .collect();
    assert_eq!(workers.len(), 4, "{workers:?}");

    let mut submit = cli
        .command(&["submit", &inputs.display().to_string(), "--timeout", "400"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("jupiterctl submit starts");

    let submitted = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    // (role, pid) of every kill.
    let mut killed: Vec<(String, u32)> = Vec::new();
    for kill in 0..WORKER_KILLS + HOME_KILLS.len() {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(10..120))).await;
        // Aim at roles whose current incarnation is alive (its restart
        // recorded); several may be down at once.
        let (label, pid) = loop {
            let status = recorded(&cli).expect("the state file reads");
            let dead = |pid: &u32| killed.iter().any(|(_, p)| p == pid);
            let candidates: Vec<(String, u32)> = if HOME_KILLS.contains(&kill) {
                vec!["circe-home".to_string()]
            } else {
                workers.clone()
            }
            .into_iter()
            .filter_map(|label| pid_of(&status, &label).map(|pid| (label, pid)))
            .filter(|(_, pid)| !dead(pid))
            .collect();
            if !candidates.is_empty() {
                break candidates[rng.gen_range(0..candidates.len())].clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // SAFETY: kill(2) of a role process this test's deployment runs.
        let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        assert_eq!(rc, 0, "SIGKILL {label} (pid {pid})");
        eprintln!("kill {kill}: {label} (pid {pid}) at {:?}", submitted.elapsed());
        killed.push((label, pid));
    }
    assert!(
        matches!(submit.try_wait(), Ok(None)),
        "every kill happened while inputs were in flight (submit was still waiting after {:?})",
        submitted.elapsed()
    );
    // Each killed role is running again, as a new process.
    for (label, pid) in &killed {
        wait_new_pid(&cli, label, *pid).await;
    }

    let finished = tokio::time::timeout(Duration::from_secs(420), submit.wait_with_output())
        .await
        .expect("submit finished within 420 s")
        .expect("submit ran");
    eprintln!("submit done after {:?}", submitted.elapsed());
    let stdout = String::from_utf8_lossy(&finished.stdout);
    assert!(
        finished.status.success(),
        "submit failed ({}):\n{stdout}\n{}",
        finished.status,
        String::from_utf8_lossy(&finished.stderr)
    );
    assert!(
        stdout.contains(&format!("{INPUTS}/{INPUTS} inputs ok")),
        "every input ok, each once:\n{stdout}"
    );

    // Byte-exact outputs for every input, and no folder for anything else.
    let want = expected_for(&inputs, expected::fanjoin);
    for (input, files) in &want {
        assert_outputs(&output, input, files);
    }
    let produced = std::fs::read_dir(&output)
        .expect("output folder")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
        .count();
    assert_eq!(produced, INPUTS, "one output folder per input, nothing extra");

    // Every kill was a restart the supervisor counted.
    let status = cli.status().await.expect("status --json answers");
    let restarts: u64 = roles(&status).iter().filter_map(|r| r["restarts"].as_u64()).sum();
    assert_eq!(restarts as usize, killed.len(), "restarts counted: {status}");
    let home = roles(&status)
        .into_iter()
        .find(|r| r["role"] == "circe-home")
        .expect("circe-home");
    assert_eq!(home["restarts"], HOME_KILLS.len() as u64);
    assert!(
        home["log"].as_str().is_some_and(|l| Path::new(l).exists()),
        "each role logs to a file of its own: {home}"
    );

    let down = cli.command(&["down"]).output().await.expect("down runs");
    assert!(
        down.status.success(),
        "down: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    let _ = tokio::time::timeout(Duration::from_secs(20), up.wait()).await;
    for pid in roles(&status).iter().filter_map(|r| r["pid"].as_u64()) {
        assert!(!process::alive(pid as u32), "role process {pid} outlived `down`");
    }
}
