//! Task processes started the way posix_spawn starts them, by
//! `clone(CLONE_VM | CLONE_VFORK)`, which shares the role's memory until
//! the exec instead of copying it, but with the death signal set in the
//! child before the exec, which posix_spawn cannot do. No hook runs after
//! a fork of the whole role and no helper program is exec'd first.
//!
//! The child runs on a stack of its own inside the role's memory while the
//! calling thread waits (CLONE_VFORK), so everything it needs is prepared
//! before the clone and it calls only async-signal-safe functions: it must
//! not allocate, since another thread may hold the allocator's lock.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Output};
use tokio::io::unix::AsyncFd;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

/// The child's stack while it runs before its exec.
const STACK: usize = 64 * 1024;
/// Signals are numbered below this on Linux.
const NSIG: libc::c_int = 65;

/// Everything the child needs, made before the clone.
#[repr(C)]
struct Plan {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    parent: libc::pid_t,
    /// The signal mask to run the program with (the caller's).
    mask: libc::sigset_t,
    /// Set by a child that failed before its exec.
    errno: libc::c_int,
}

/// The child: reset signal handlers (it has its own copy of the table),
/// restore the mask, tie itself to its parent, check the parent is still
/// there, take its own process group and descriptors, and exec.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `Plan`, alive while the parent waits
    // for this child's exec or exit (CLONE_VFORK); only async-signal-safe
    // calls below.
    unsafe {
        let plan = &mut *(arg as *mut Plan);
        let fail = |plan: &mut Plan, errno: libc::c_int| -> ! {
            plan.errno = errno;
            libc::_exit(127)
        };
        let errno = || *libc::__errno_location();
        for signal in 1..NSIG {
            if signal == libc::SIGKILL || signal == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            // A handler is the role's code; SIGPIPE is ignored by Rust
            // programs but not by the programs they start (as std does).
            let handled = old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN;
            if handled || signal == libc::SIGPIPE {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &default, std::ptr::null_mut());
            }
        }
        if libc::pthread_sigmask(libc::SIG_SETMASK, &plan.mask, std::ptr::null_mut()) != 0 {
            fail(plan, errno());
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            fail(plan, errno());
        }
        // The parent died before the line above took effect.
        if libc::getppid() != plan.parent {
            fail(plan, libc::ESRCH);
        }
        if libc::setpgid(0, 0) != 0 {
            fail(plan, errno());
        }
        for (from, to) in [(plan.stdin, 0), (plan.stdout, 1), (plan.stderr, 2)] {
            if libc::dup2(from, to) < 0 {
                fail(plan, errno());
            }
        }
        if !plan.cwd.is_null() && libc::chdir(plan.cwd) != 0 {
            fail(plan, errno());
        }
        libc::execve(plan.path, plan.argv, plan.envp);
        fail(plan, errno())
    }
}

/// A task process started by [`spawn`]: its stdout and stderr are piped,
/// it leads its own process group, and it is SIGKILLed if dropped before
/// it was waited for.
pub struct Tied {
    pid: libc::pid_t,
    pidfd: Option<AsyncFd<OwnedFd>>,
    stdout: Option<pipe::Receiver>,
    stderr: Option<pipe::Receiver>,
    reaped: bool,
}

/// Starts `path` (absolute) with `args`, the role's environment plus
/// `env`, in `cwd`, stdin from /dev/null. Must run inside a tokio runtime.
pub fn spawn(
    path: &Path,
    args: &[OsString],
    env: &[(OsString, OsString)],
    cwd: Option<&Path>,
) -> io::Result<Tied> {
    let c = |s: &OsStr| {
        CString::new(s.as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{s:?} holds a NUL byte")))
    };
    let path_c = c(path.as_os_str())?;
    let mut argv_c = vec![path_c.clone()];
    for arg in args {
        argv_c.push(c(arg)?);
    }
    let mut vars: std::collections::BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    for (key, value) in env {
        vars.insert(key.clone(), value.clone());
    }
    let mut envp_c = Vec::with_capacity(vars.len());
    for (key, value) in &vars {
        let mut pair = key.clone();
        pair.push("=");
        pair.push(value);
        envp_c.push(c(&pair)?);
    }
    let cwd_c = cwd.map(|dir| c(dir.as_os_str())).transpose()?;
    let pointers = |strings: &[CString]| -> Vec<*const libc::c_char> {
        strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let (argv, envp) = (pointers(&argv_c), pointers(&envp_c));

    let (out_read, out_write) = pipe_pair()?;
    let (err_read, err_write) = pipe_pair()?;
    let null = std::fs::OpenOptions::new().read(true).open("/dev/null")?;
    // Made before the clone: turning them into tokio pipes cannot fail
    // after it, when a child would be left running.
    let stdout = pipe::Receiver::from_owned_fd(out_read)?;
    let stderr = pipe::Receiver::from_owned_fd(err_read)?;

    let mut plan = Plan {
        path: path_c.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: cwd_c.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
        stdin: null.as_raw_fd(),
        stdout: out_write.as_raw_fd(),
        stderr: err_write.as_raw_fd(),
        // SAFETY: getpid cannot fail.
        parent: unsafe { libc::getpid() },
        // SAFETY: a zeroed sigset_t is a valid value; it is filled below.
        mask: unsafe { std::mem::zeroed() },
        errno: 0,
    };
    let mut stack = vec![0u8; STACK];
    // The stack grows down from its end, 16-byte aligned.
    let top = (stack.as_mut_ptr() as usize + STACK) & !15;
    // SAFETY: the signal mask of this thread is blocked around the clone
    // (so no handler of the role runs on the child's stack) and restored;
    // the child reads only `plan` and the strings it points to, all alive
    // until the clone returns, which is after the child's exec or exit.
    let (pid, errno) = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut plan.mask);
        let pid = libc::clone(
            child_main,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &mut plan as *mut Plan as *mut libc::c_void,
        );
        let clone_error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &plan.mask, std::ptr::null_mut());
        if pid < 0 {
            return Err(clone_error);
        }
        (pid, std::ptr::read_volatile(&plan.errno))
    };
    drop((out_write, err_write, null, stack));
    let mut tied = Tied {
        pid,
        pidfd: None,
        stdout: Some(stdout),
        stderr: Some(stderr),
        reaped: false,
    };
    if errno != 0 {
        // It exited without running the program: reap it, report why.
        let _ = reap(pid, 0);
        tied.reaped = true;
        return Err(io::Error::from_raw_os_error(errno));
    }
    // SAFETY: pidfd_open of the child just made; a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor pidfd_open just returned, owned here only.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // SAFETY: the AsyncFd owns `fd`, which stays open as long as it does.
    let pidfd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) };
    tied.pidfd = Some(pidfd?);
    Ok(tied)
}

/// A pipe whose two ends close on exec (the child gets copies by dup2).
fn pipe_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors it is given on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both were just made and are owned here only.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Whether this kernel has pidfd_open (Linux 5.3), which [`Tied`] waits with.
pub fn available() -> bool {
    // SAFETY: pidfd_open of this very process; the descriptor is closed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: just opened, closed once.
    unsafe { libc::close(fd as RawFd) };
    true
}

impl Tied {
    /// The task's pid, which is also its process group.
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Waits for the task to exit.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        let Some(pidfd) = &self.pidfd else {
            return Err(io::Error::other("no pidfd to wait with"));
        };
        let status = wait(self.pid, pidfd).await?;
        self.reaped = true;
        Ok(status)
    }

    /// Waits for the task to exit, with everything it printed.
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        let (stdout, stderr) = (self.stdout.take(), self.stderr.take());
        let (out, err, status) = tokio::join!(drain(stdout), drain(stderr), self.wait());
        Ok(Output {
            status: status?,
            stdout: out?,
            stderr: err?,
        })
    }
}

/// All that `pipe` gives until its other ends are closed.
async fn drain(pipe: Option<pipe::Receiver>) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_end(&mut bytes).await?;
    }
    Ok(bytes)
}

/// `waitpid` of `pid` with `flags`; its status once it has exited.
fn reap(pid: libc::pid_t, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid of a child of this process.
        let got = unsafe { libc::waitpid(pid, &mut status, flags) };
        if got == pid {
            return Ok(Some(ExitStatus::from_raw(status)));
        }
        if got == 0 {
            return Ok(None);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Waits for `pid` to exit (its pidfd turns readable), then reaps it.
async fn wait(pid: libc::pid_t, pidfd: &AsyncFd<OwnedFd>) -> io::Result<ExitStatus> {
    loop {
        if let Some(status) = reap(pid, libc::WNOHANG)? {
            return Ok(status);
        }
        pidfd.readable().await?.clear_ready();
    }
}

impl Drop for Tied {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        let pid = self.pid;
        // SAFETY: kill(2) of this struct's own, not yet reaped, child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        // Reaped in the background: a drop must not wait.
        match (self.pidfd.take(), tokio::runtime::Handle::try_current()) {
            (Some(pidfd), Ok(runtime)) => {
                runtime.spawn(async move {
                    let _ = wait(pid, &pidfd).await;
                });
            }
            _ => {
                std::thread::spawn(move || reap(pid, 0));
            }
        }
    }
}
