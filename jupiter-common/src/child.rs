//! Child processes that do not outlive the process that started them: a
//! role killed with SIGKILL takes its task processes (and a killed
//! jupiterctl its supervised roles) with it, instead of leaving them to
//! write into a queue its successor is already using.

/// Makes the kernel SIGKILL the child when the thread that started it
/// ends (PR_SET_PDEATHSIG). Start children from long-lived threads (a
/// tokio runtime's workers, not `spawn_blocking`), whose end is the
/// process's end.
pub fn die_with_parent(command: &mut tokio::process::Command) {
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
