//! `--processes`: a role as its own OS process (`jupiterctl serve ROLE …`),
//! kept running. The supervisor holds the role's listening socket and hands
//! it to every incarnation as file descriptor 3 (`--listen fd:3`), so a
//! restarted role answers on the same port, and clients that connect while
//! it is down wait in the socket's backlog instead of being refused. Its
//! metrics socket is held the same way, on descriptor 4, so no other
//! program can take that port between two incarnations.
//!
//! A process that ends while the deployment runs (any signal, any exit
//! code) is started again at once; one that keeps dying soon after it
//! starts is started again after a growing pause. Five exits (or deaths by
//! any signal but SIGKILL, which comes from outside) in a row within two
//! seconds of starting are a crash loop: the deployment reports it (a role
//! that cannot start will not start by retrying; with `--processes` its
//! node is lost), and the supervisor keeps trying anyway.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use jupiter_common::sync::LockExt;

/// The descriptor a role process finds its listening socket on.
pub const LISTEN_FD: i32 = 3;
/// The descriptor a role process finds its metrics socket on.
pub const METRICS_FD: i32 = 4;
/// A process that lived this long was healthy: its next death restarts it
/// at once again.
const STABLE: Duration = Duration::from_secs(2);
/// The longest pause between two starts of a process that keeps dying.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Deaths within [`EARLY`] of starting, in a row, that make a crash loop.
const CRASH_LOOP: u32 = 5;
const EARLY: Duration = Duration::from_secs(2);
/// How long a stopping role has between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A role that stopped for good, or keeps crashing: which, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleStop {
    /// The role's label (`circe-worker join`, `drupe-droplet node1`).
    pub label: String,
    /// The node it ran on, if it runs on one.
    pub node: Option<String>,
    pub reason: String,
}

/// Every role stop of a deployment, in order (a log, never shortened).
pub type Stops = Arc<watch::Sender<Vec<RoleStop>>>;

/// What is known of a supervised role process now.
#[derive(Debug, Clone, Default)]
pub struct ProcessState {
    /// The running incarnation, if one runs.
    pub pid: Option<u32>,
    /// How many times it was started again.
    pub restarts: u32,
    /// How the last incarnation ended.
    pub last_exit: Option<String>,
}

/// One role process and the task that keeps it running.
pub struct Supervised {
    state: Arc<Mutex<ProcessState>>,
    /// Changes each time an incarnation starts.
    started: watch::Receiver<u32>,
    pub log: PathBuf,
    /// None once waited for.
    task: Option<JoinHandle<()>>,
    /// Stops this role alone (a child of the deployment's shutdown).
    own: CancellationToken,
}

/// What a supervisor starts: the program, its arguments (without
/// `--listen`), the socket and the log file.
pub struct Launch {
    pub label: String,
    /// The node the role runs on, for its stops.
    pub node: Option<String>,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub listener: OwnedFd,
    /// The metrics socket, handed over as [`METRICS_FD`] (the role is told
    /// `--metrics-listen fd:4` by whoever built `args`).
    pub metrics: Option<OwnedFd>,
    pub log: PathBuf,
}

/// The `--metrics-listen` value of a supervised role given a metrics socket.
pub fn metrics_flag() -> String {
    format!("fd:{METRICS_FD}")
}

impl Supervised {
    /// Starts `launch` and keeps it running until `shutdown` (or
    /// [`Supervised::stop`]); a crash loop is added to `stops`.
    pub fn start(launch: Launch, shutdown: &CancellationToken, stops: Stops) -> Self {
        let state = Arc::new(Mutex::new(ProcessState::default()));
        let (started_tx, started) = watch::channel(0);
        let log = launch.log.clone();
        let own = shutdown.child_token();
        let task = tokio::spawn(keep_running(
            launch,
            state.clone(),
            started_tx,
            own.clone(),
            stops,
        ));
        Self {
            state,
            started,
            log,
            task: Some(task),
            own,
        }
    }

    /// Stops this role for good (SIGTERM, then SIGKILL after a grace).
    pub async fn stop(&mut self) {
        self.own.cancel();
        self.stopped().await;
    }

    pub fn state(&self) -> ProcessState {
        self.state.locked().clone()
    }

    /// Kills the running incarnation (SIGKILL: a real crash) and waits
    /// until the supervisor has started the next one; its pid.
    pub async fn kill_and_wait_restart(&mut self) -> std::io::Result<u32> {
        let seen = *self.started.borrow_and_update();
        if let Some(pid) = self.state().pid {
            crate::process::signal(pid, libc::SIGKILL)?;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while *self.started.borrow_and_update() == seen {
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, self.started.changed()).await.is_err() {
                return Err(std::io::Error::other(
                    "the role was not started again within 30 s",
                ));
            }
        }
        self.state()
            .pid
            .ok_or_else(|| std::io::Error::other("the role exited again at once"))
    }

    /// Waits for the supervisor to have stopped its process (at once if
    /// it was waited for already).
    pub async fn stopped(&mut self) {
        if let Some(task) = self.task.as_mut() {
            let _ = task.await;
            self.task = None;
        }
    }
}

async fn keep_running(
    launch: Launch,
    state: Arc<Mutex<ProcessState>>,
    started: watch::Sender<u32>,
    shutdown: CancellationToken,
    stops: Stops,
) {
    let mut backoff = Duration::ZERO;
    let mut early_deaths = 0;
    let mut incarnation = 0;
    loop {
        let began = Instant::now();
        let mut killed = false;
        let restarted = state.locked().restarts;
        let exit = match spawn(&launch, restarted) {
            Ok(mut child) => {
                state.locked().pid = child.id();
                incarnation += 1;
                started.send_replace(incarnation);
                tokio::select! {
                    status = child.wait() => {
                        killed = was_killed(&status);
                        describe(status)
                    }
                    () = shutdown.cancelled() => {
                        stop(&mut child).await;
                        state.locked().pid = None;
                        return;
                    }
                }
            }
            Err(e) => format!("could not start: {e}"),
        };
        let lived = began.elapsed();
        let restarts = {
            let mut s = state.locked();
            s.pid = None;
            s.restarts += 1;
            s.last_exit = Some(exit.clone());
            s.restarts
        };
        if shutdown.is_cancelled() {
            return;
        }
        if lived >= STABLE {
            backoff = Duration::ZERO;
        } else {
            backoff = (backoff * 2).clamp(Duration::from_millis(100), MAX_BACKOFF);
        }
        // SIGKILL comes from outside (an operator, a test, a chaos tool):
        // the role is started again like any other, but such deaths do not
        // make a crash loop, which means the role cannot start by itself.
        early_deaths = match (lived < EARLY, killed) {
            (false, _) => 0,
            (true, true) => early_deaths,
            (true, false) => early_deaths + 1,
        };
        tracing::warn!(
            role = %launch.label,
            exit = %exit,
            restarts,
            after_ms = backoff.as_millis() as u64,
            "role process ended; starting it again"
        );
        // Again every five early deaths: a stop the deployment set aside
        // (a node already recovered from) costs nothing to say twice.
        if early_deaths > 0 && early_deaths % CRASH_LOOP == 0 {
            let reason = format!(
                "{} keeps exiting within {} s of starting ({exit}); its log is {}",
                launch.label,
                EARLY.as_secs(),
                launch.log.display()
            );
            stops.send_modify(|stops| {
                stops.push(RoleStop {
                    label: launch.label.clone(),
                    node: launch.node.clone(),
                    reason,
                })
            });
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Starts one incarnation: its own process group (a Ctrl-C meant for
/// jupiterctl is not also delivered to it), killed if jupiterctl dies, the
/// socket on [`LISTEN_FD`], output appended to the log.
fn spawn(launch: &Launch, restarts: u32) -> std::io::Result<tokio::process::Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&launch.log)?;
    let mut command = tokio::process::Command::new(&launch.program);
    command
        .args(&launch.args)
        .arg("--listen")
        .arg(format!("fd:{LISTEN_FD}"))
        // Log files are read as text, not through a terminal.
        .env("NO_COLOR", "1")
        // The role exports it as `jupiter_role_restarts_total`.
        .env(jupiter_common::env::RESTARTS, restarts.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .kill_on_drop(true);
    jupiter_common::child::die_with_parent(&mut command);
    let mut handed = vec![(launch.listener.as_raw_fd(), LISTEN_FD)];
    if let Some(metrics) = &launch.metrics {
        handed.push((metrics.as_raw_fd(), METRICS_FD));
    }
    // SAFETY: only async-signal-safe calls (fcntl, dup2, close) between
    // fork and exec, on a vector allocated before the fork.
    unsafe {
        command.pre_exec(move || place_fds(&handed));
    }
    command.spawn()
}

/// Puts each `(from, to)` descriptor at `to`, without close-on-exec. Every
/// source is first copied above the targets, so one source sitting on
/// another's target is not clobbered. Runs between fork and exec.
fn place_fds(handed: &[(libc::c_int, libc::c_int)]) -> std::io::Result<()> {
    const ABOVE: libc::c_int = 10;
    let mut copies = [0 as libc::c_int; 2];
    let copies = &mut copies[..handed.len().min(2)];
    for (copy, (from, _)) in copies.iter_mut().zip(handed) {
        // SAFETY: F_DUPFD reads `from` and returns a new descriptor.
        *copy = unsafe { libc::fcntl(*from, libc::F_DUPFD, ABOVE) };
        if *copy < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    for (copy, (_, to)) in copies.iter().zip(handed) {
        // SAFETY: dup2 and close only act on descriptors this child owns;
        // dup2 leaves the target without close-on-exec.
        unsafe {
            if libc::dup2(*copy, *to) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(*copy);
        }
    }
    Ok(())
}

/// SIGTERM (the role's graceful path), then SIGKILL after a grace period.
async fn stop(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = crate::process::signal_stop(pid);
    }
    if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

/// Whether the process was SIGKILLed.
fn was_killed(status: &std::io::Result<ExitStatus>) -> bool {
    use std::os::unix::process::ExitStatusExt;
    matches!(status, Ok(s) if s.signal() == Some(libc::SIGKILL))
}

fn describe(status: std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal} ({})", signal_name(signal)),
            _ => s.to_string(),
        },
        Err(e) => format!("lost track of it: {e}"),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A supervised `sh -c SCRIPT`: the supervisor appends `--listen fd:3`,
    /// which the shell takes as its `$0` and `$1`.
    fn launch(dir: &std::path::Path, script: &str) -> (Launch, std::net::SocketAddr) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let launch = Launch {
            label: "test-role".into(),
            node: None,
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            listener: listener.into(),
            metrics: None,
            log: dir.join("role.log"),
        };
        (launch, addr)
    }

    async fn wait_for_pid(process: &Supervised) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(pid) = process.state().pid {
                return pid;
            }
            assert!(Instant::now() < deadline, "the role process started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_role_comes_back_within_a_second_on_the_same_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marks = dir.path().join("fd3");
        // Each incarnation records what its fd 3 is, then runs.
        let script = format!("readlink /proc/$$/fd/3 >> {}; exec sleep 30", marks.display());
        let (launch, _) = launch(dir.path(), &script);
        let shutdown = CancellationToken::new();
        let (stops, reported) = watch::channel(Vec::new());
        let mut process = Supervised::start(launch, &shutdown, Arc::new(stops));
        let first = wait_for_pid(&process).await;
        let killed_at = Instant::now();
        let second = process.kill_and_wait_restart().await.expect("restarted");
        let took = killed_at.elapsed();
        assert_ne!(first, second, "a new process");
        assert!(took < Duration::from_secs(1), "restarted in {took:?}");
        let state = process.state();
        assert_eq!(state.restarts, 1);
        assert_eq!(state.last_exit.as_deref(), Some("killed by signal 9 (SIGKILL)"));
        // Both incarnations got the same listening socket as fd 3.
        let deadline = Instant::now() + Duration::from_secs(5);
        let seen = loop {
            let seen = std::fs::read_to_string(&marks).unwrap_or_default();
            if seen.lines().count() >= 2 || Instant::now() > deadline {
                break seen;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let lines: Vec<&str> = seen.lines().collect();
        assert_eq!(lines.len(), 2, "{seen}");
        assert!(lines[0].starts_with("socket:["), "fd 3 is a socket: {seen}");
        assert_eq!(lines[0], lines[1], "the same socket across restarts");
        // SIGKILLs from outside, however quick, are no crash loop.
        for _ in 0..5 {
            process.kill_and_wait_restart().await.expect("restarted");
        }
        assert_eq!(process.state().restarts, 6);
        assert!(reported.borrow().is_empty(), "{:?}", reported.borrow());
        let last = wait_for_pid(&process).await;
        shutdown.cancel();
        process.stopped().await;
        assert!(!crate::process::alive(second), "stopped with the deployment");
        assert!(!crate::process::alive(last), "stopped with the deployment");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_role_that_keeps_dying_backs_off_and_is_reported_as_a_crash_loop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (launch, _) = launch(dir.path(), "echo bad flags >&2; exit 3");
        let shutdown = CancellationToken::new();
        let (stops, mut reported) = watch::channel(Vec::new());
        let started = Instant::now();
        let mut process = Supervised::start(launch, &shutdown, Arc::new(stops));
        let reason = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(stop) = reported.borrow_and_update().first().cloned() {
                    assert_eq!(stop.label, "test-role");
                    return stop.reason;
                }
                reported.changed().await.expect("supervisor alive");
            }
        })
        .await
        .expect("a crash loop is reported");
        let took = started.elapsed();
        assert!(reason.contains("test-role keeps exiting"), "{reason}");
        assert!(reason.contains("exit status 3"), "{reason}");
        assert!(reason.contains("role.log"), "names its log: {reason}");
        // Five deaths: restarts after 0, 100, 200 and 400 ms at least.
        assert!(took >= Duration::from_millis(700), "backed off: {took:?}");
        let log = std::fs::read_to_string(dir.path().join("role.log")).expect("log");
        assert!(log.lines().filter(|l| *l == "bad flags").count() >= 5, "{log}");
        shutdown.cancel();
        process.stopped().await;
    }
}
