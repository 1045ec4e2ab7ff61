//! Child processes that do not outlive the process that started them: a
//! role killed with SIGKILL takes its task processes (and a killed
//! jupiterctl its supervised roles) with it, instead of leaving them to
//! write into a queue its successor is already using.
//!
//! The kernel does this with PR_SET_PDEATHSIG, which must be set in the
//! child before it runs the program. Three ways, fastest first:
//!
//! - **clone** ([`clone`]): the child is made as posix_spawn makes it,
//!   sharing the role's memory until its exec, and sets the signal itself.
//!   For task runs ([`spawn_task`]), where the cost is paid per input.
//! - **setpriv**: posix_spawn of `setpriv --pdeathsig KILL -- /bin/sh -c
//!   CHECK PARENT PROGRAM ARGS…`; `setpriv` sets the signal and the shell
//!   execs the program only if its parent is still PARENT, which closes
//!   the window in which the parent died before the signal was set. Costs
//!   two extra execs. For other children ([`command`]), which need a tokio
//!   `Command`.
//! - **fork**: a hook between fork and exec, which copies the page tables
//!   of the whole role, then every page it writes before the child's exec:
//!   dear in a process holding every role. The fallback.
//!
//! `JUPITER_CHILD_SPAWN=setpriv` or `=fork` asks for a slower way (to
//! compare them); a test kills parents right after a spawn, every way.

mod clone;

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;

use tokio::process::Command;

/// How task processes are tied to their starter on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tie {
    /// Made by clone(CLONE_VM | CLONE_VFORK), the signal set in the child.
    Clone,
    /// Through `setpriv` and a POSIX shell, started by posix_spawn.
    Setpriv,
    /// Through a hook between fork and exec.
    Fork,
}

/// Where util-linux installs `setpriv`.
const SETPRIV: [&str; 2] = ["/usr/bin/setpriv", "/bin/setpriv"];
/// The shell that checks the parent, then becomes the program.
const SH: &str = "/bin/sh";
/// Run by the shell with `$0` the parent's pid and `$@` the program and
/// its arguments.
const CHECK: &str = r#"[ "$PPID" = "$0" ] && exec "$@""#;

/// `JUPITER_CHILD_SPAWN`, read once.
fn asked() -> Option<&'static str> {
    static ASKED: OnceLock<Option<String>> = OnceLock::new();
    ASKED
        .get_or_init(|| std::env::var(crate::env::CHILD_SPAWN).ok())
        .as_deref()
}

/// The way task processes are tied here: clone where the kernel has
/// pidfd_open (5.3), unless `JUPITER_CHILD_SPAWN` asks for `setpriv` or
/// `fork`; setpriv if it runs with `--pdeathsig` (util-linux 2.33).
pub fn tie() -> Tie {
    static CLONE: OnceLock<bool> = OnceLock::new();
    let clone = match asked() {
        Some("setpriv" | "fork") => false,
        _ => *CLONE.get_or_init(clone::available),
    };
    if clone {
        Tie::Clone
    } else if setpriv().is_some() {
        Tie::Setpriv
    } else {
        Tie::Fork
    }
}

/// `setpriv` and the shell, if they work here and the fork is not asked for.
fn setpriv() -> Option<&'static (PathBuf, PathBuf)> {
    static SETPRIV_SH: OnceLock<Option<(PathBuf, PathBuf)>> = OnceLock::new();
    if asked() == Some("fork") {
        return None;
    }
    SETPRIV_SH
        .get_or_init(|| {
            let sh = Path::new(SH);
            executable(sh).ok()?;
            let setpriv = SETPRIV.iter().map(Path::new).find(|setpriv| {
                std::process::Command::new(setpriv)
                    .args(setpriv_args(sh))
                    .arg(setpriv)
                    .arg("--version")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|status| status.success())
            })?;
            Some((setpriv.to_path_buf(), sh.to_path_buf()))
        })
        .as_ref()
}

/// `setpriv`'s arguments that set the death signal, then have the shell
/// check the parent and exec the program and arguments that follow.
fn setpriv_args(sh: &Path) -> [OsString; 7] {
    [
        "--pdeathsig".into(),
        "KILL".into(),
        "--".into(),
        sh.into(),
        "-c".into(),
        CHECK.into(),
        std::process::id().to_string().into(),
    ]
}

/// A command for `program` whose process is SIGKILLed when the thread that
/// spawns it ends (by `setpriv`, or the fork hook). Spawn it from a
/// long-lived thread (a tokio runtime's workers, not `spawn_blocking`),
/// whose end is the process's end.
///
/// A program that cannot be found or run is an error here, as it would be
/// at spawn: `setpriv` would only find out after the spawn succeeded.
pub fn command(program: impl AsRef<OsStr>) -> io::Result<Command> {
    let program = program.as_ref();
    if let Some((setpriv, sh)) = setpriv() {
        // A relative path with a slash is relative to the folder the
        // command will be given, unknown here: such programs take the fork.
        if let Some(resolved) = resolve(program)? {
            let mut command = Command::new(setpriv);
            command.args(setpriv_args(sh)).arg(resolved);
            return Ok(command);
        }
    }
    let mut command = Command::new(program);
    die_with_parent(&mut command);
    Ok(command)
}

/// One run of a task: the program, its arguments, variables added to the
/// role's environment, and the folder it runs in.
#[derive(Debug, Clone, Default)]
pub struct TaskCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: Option<PathBuf>,
}

impl TaskCommand {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            ..Self::default()
        }
    }

    pub fn arg(&mut self, arg: impl Into<OsString>) -> &mut Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(&mut self, args: I) -> &mut Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> &mut Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn current_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.cwd = Some(dir.into());
        self
    }
}

/// A running task process: stdin from /dev/null, stdout and stderr piped,
/// leading its own process group, SIGKILLed if dropped before it ended,
/// and tied to the thread that started it.
pub enum TaskProcess {
    Cloned(clone::Tied),
    Spawned(tokio::process::Child),
}

/// Starts `task` the fastest way this machine has ([`tie`]). Call it on a
/// tokio runtime's worker thread (see [`command`]).
pub fn spawn_task(task: &TaskCommand) -> io::Result<TaskProcess> {
    if tie() == Tie::Clone {
        if let Some(path) = resolve(task.program.as_os_str())? {
            let cwd = task.cwd.as_deref();
            return clone::spawn(&path, &task.args, &task.env, cwd).map(TaskProcess::Cloned);
        }
    }
    let mut command = command(&task.program)?;
    command
        .args(&task.args)
        .envs(task.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = &task.cwd {
        command.current_dir(cwd);
    }
    command.spawn().map(TaskProcess::Spawned)
}

impl TaskProcess {
    /// Its pid, which is also its process group's id.
    pub fn id(&self) -> Option<u32> {
        match self {
            Self::Cloned(tied) => Some(tied.id()),
            Self::Spawned(child) => child.id(),
        }
    }

    /// Waits for it to end, with what it printed.
    pub async fn wait_with_output(self) -> io::Result<Output> {
        match self {
            Self::Cloned(tied) => tied.wait_with_output().await,
            Self::Spawned(child) => child.wait_with_output().await,
        }
    }
}

/// The executable file `program` names, looked up in `PATH` when it is a
/// bare name; `None` for a relative path with a slash.
fn resolve(program: &OsStr) -> io::Result<Option<PathBuf>> {
    let path = Path::new(program);
    if path.is_absolute() {
        return executable(path).map(|()| Some(path.to_path_buf()));
    }
    if path.components().count() > 1 || program.is_empty() {
        return Ok(None);
    }
    // execvp's own default when PATH is unset.
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    crate::app::resolve::on_path(program, &search)
        .map(Some)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
}

/// Fails as exec would on a missing or non-executable `path`.
fn executable(path: &Path) -> io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() && crate::app::resolve::is_executable(&meta) {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::EACCES))
    }
}

/// Makes the kernel SIGKILL the child when the thread that started it
/// ends, by a hook between fork and exec. For commands that need a hook
/// of their own anyway (the supervisor's descriptor passing); others take
/// [`command`].
pub fn die_with_parent(command: &mut Command) {
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork
    // and exec.
    unsafe {
        let parent = libc::getpid();
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before the line above took effect.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the parent process is gone"));
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_are_found_in_path_and_missing_ones_refused() {
        let sh = resolve(OsStr::new("sh")).unwrap().unwrap();
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{sh:?}");
        let missing = resolve(OsStr::new("no-such-program-jupiter")).unwrap_err();
        assert_eq!(missing.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(resolve(OsStr::new("./run.sh")).unwrap(), None);
        let absent = resolve(OsStr::new("/no/such/program")).unwrap_err();
        assert_eq!(absent.raw_os_error(), Some(libc::ENOENT));
        let plain = tempfile::NamedTempFile::new().unwrap();
        let not_exec = resolve(plain.path().as_os_str()).unwrap_err();
        assert_eq!(not_exec.raw_os_error(), Some(libc::EACCES));
    }

    #[test]
    fn the_fastest_way_is_taken_unless_a_slower_is_asked_for() {
        match asked() {
            None => assert_eq!(tie(), Tie::Clone, "this kernel has pidfd_open"),
            Some("setpriv") => assert_eq!(tie(), Tie::Setpriv),
            Some("fork") => assert_eq!(tie(), Tie::Fork),
            Some(_) => {}
        }
        if Path::new(SETPRIV[0]).exists() && asked() != Some("fork") {
            assert_eq!(setpriv().map(|(p, _)| p.as_path()), Some(Path::new(SETPRIV[0])));
        }
    }

    /// The child really has the death signal, whichever way it was set:
    /// its own /proc status cannot show it, so it asks the kernel itself.
    #[tokio::test]
    async fn the_child_carries_the_death_signal() {
        let python = resolve(OsStr::new("python3")).unwrap().unwrap();
        let mut cmd = command(&python).unwrap();
        cmd.args(["-c", PRINT_DEATH_SIGNAL]);
        let out = cmd.output().await.unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            libc::SIGKILL.to_string()
        );
    }

    const PRINT_DEATH_SIGNAL: &str = "import ctypes; s=ctypes.c_int(); \
         ctypes.CDLL(None).prctl(2, ctypes.byref(s)); print(s.value)";

    /// A task run gets what the task contract promises, the fast way.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_task_run_gets_its_arguments_variables_folder_and_pipes() {
        let dir = tempfile::tempdir().unwrap();
        let script = "import os, sys, ctypes; s=ctypes.c_int(); \
            ctypes.CDLL(None).prctl(2, ctypes.byref(s)); \
            print(s.value, os.getpgid(0) == os.getpid(), sys.argv[1:], os.environ['JUPITER_T'], \
            os.getcwd(), sys.stdin.read() == ''); \
            print('to stderr', file=sys.stderr); sys.exit(3)";
        let mut task = TaskCommand::new("python3");
        task.args(["-c", script, "a b", "c"])
            .env("JUPITER_T", "x=y")
            .current_dir(dir.path());
        let child = spawn_task(&task).unwrap();
        assert!(matches!(child, TaskProcess::Cloned(_)) || asked().is_some());
        let pid = child.id().unwrap();
        let out = child.wait_with_output().await.unwrap();
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        let cwd = dir.path().canonicalize().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("9 True ['a b', 'c'] x=y {} True", cwd.display())
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "to stderr");
        // Rust ignores SIGPIPE; the programs it starts must not (Python
        // would hide it, ignoring it itself).
        let mut sh = TaskCommand::new("sh");
        sh.args(["-c", "grep ^SigIgn: /proc/$$/status"]);
        let out = spawn_task(&sh).unwrap().wait_with_output().await.unwrap();
        let ignored = String::from_utf8_lossy(&out.stdout);
        let mask = u64::from_str_radix(ignored.trim().trim_start_matches("SigIgn:").trim(), 16).unwrap();
        assert_eq!(mask & (1 << (libc::SIGPIPE - 1)), 0, "{ignored}");
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "reaped");
        let missing = spawn_task(&TaskCommand::new("/no/such/task")).err().unwrap();
        assert_eq!(missing.raw_os_error(), Some(libc::ENOENT));
    }

    /// A run dropped before it ended (a timeout, a cancelled input) is
    /// killed and reaped, leaving no zombie.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_task_run_is_killed_and_reaped() {
        let mut task = TaskCommand::new("sleep");
        task.arg("600");
        let child = spawn_task(&task).unwrap();
        let pid = child.id().unwrap();
        drop(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(std::time::Instant::now() < deadline, "task {pid} still there");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
