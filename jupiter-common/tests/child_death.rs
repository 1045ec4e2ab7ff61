//! A real crash: a process that started a task with `child::spawn_task` is
//! SIGKILLed right after, and the task must die with it, every way a task
//! can be tied (clone, the default here; setpriv; the fork hook). The
//! parent is this very test binary, run again in a mode of its own.

use jupiter_common::child;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TEST: &str = "a_sigkilled_parent_takes_its_task_with_it";
/// Set in the copy of this test that plays the parent.
const PARENT: &str = "JUPITER_TEST_PLAY_PARENT";

#[tokio::test]
async fn a_sigkilled_parent_takes_its_task_with_it() {
    if std::env::var_os(PARENT).is_some() {
        return play_parent().await;
    }
    for how in ["default", "setpriv", "fork"] {
        let exe = std::env::current_exe().expect("this test binary");
        let mut parent = Command::new(exe)
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(PARENT, "1")
            .env(jupiter_common::env::CHILD_SPAWN, how)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the parent");
        let stdout = parent.stdout.take().expect("parent's stdout");
        let task: i32 = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            // The harness may have begun the line ("test NAME ... ").
            .find_map(|line| line.split("task pid ").nth(1).and_then(|p| p.trim().parse().ok()))
            .expect("the parent names its task's pid");
        assert!(alive(task), "{how}: the task runs before the crash");
        // SAFETY: kill(2) of the process this test started.
        assert_eq!(unsafe { libc::kill(parent.id() as i32, libc::SIGKILL) }, 0);
        parent.wait().expect("reap the parent");
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(task) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let outlived = alive(task);
        if outlived {
            // SAFETY: kill(2) of the orphan this test made.
            unsafe { libc::kill(task, libc::SIGKILL) };
        }
        assert!(!outlived, "{how}: task {task} outlived its SIGKILLed parent");
    }
}

/// Starts a long task as a worker would, names its pid, and waits to be killed.
async fn play_parent() {
    // Its stdout and stderr are pipes to this parent, not the test's.
    let mut command = child::TaskCommand::new("sleep");
    command.arg("600");
    let task = child::spawn_task(&command).expect("start the task");
    println!("task pid {}", task.id().expect("a running task has a pid"));
    tokio::time::sleep(Duration::from_secs(600)).await;
}

/// Running or sleeping: neither gone nor a zombie waiting to be reaped.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(')')?.1.split_whitespace().next()?.to_string();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}
