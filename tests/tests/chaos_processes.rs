//! Real crashes under `jupiterctl up --processes`: every role its own
//! process, supervised. While `jupiterctl submit` streams 200 inputs
//! through the fan-out/join example, the test SIGKILLs circe-workers 20
//! times and circe-home twice, each at a random moment, finding their pids
//! with `jupiterctl status --json` as a user would. Every input must still
//! finish exactly once, with byte-exact outputs and nothing extra, and the
//! supervisor must have counted every restart.

use jupiter_tests::cli::{down, pid_of, recorded, role_label, roles, wait_new_pid, Up};
use jupiter_tests::{assert_outputs, example, expected, expected_for, Sandbox};
use jupiterctl::process;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_roles_come_back_and_every_input_finishes_exactly_once() {
    let sandbox = Sandbox::new();
    let inputs = big_inputs(&sandbox);
    let Up {
        cli,
        process: mut up,
        output,
        ..
    } = Up::start(&sandbox, &example("fanjoin"), 12).await;
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

    down(&cli, &mut up).await;
    for pid in roles(&status).iter().filter_map(|r| r["pid"].as_u64()) {
        assert!(!process::alive(pid as u32), "role process {pid} outlived `down`");
    }
}
