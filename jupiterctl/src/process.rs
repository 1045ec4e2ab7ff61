//! Other processes of this machine, as jupiterctl watches and stops them:
//! is a pid alive, and asking one to stop.

use std::time::{Duration, Instant};

/// Whether process `pid` is alive. A zombie (exited, not yet reaped by its
/// parent) is not: it runs nothing any more.
pub fn alive(pid: u32) -> bool {
    // pid 0 would ask about our own process group: never a deployment.
    // Signal 0 checks existence without touching the process.
    if pid == 0 || unsafe { libc::kill(pid as libc::pid_t, 0) } != 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z"),
        Err(_) => true,
    }
}

/// Asks process `pid` to stop (SIGTERM: its graceful path).
pub fn signal_stop(pid: u32) -> std::io::Result<()> {
    signal(pid, libc::SIGTERM)
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: i32) -> std::io::Result<()> {
    // SAFETY: kill(2) takes any pid and signal; it only reports an error.
    if unsafe { libc::kill(pid as libc::pid_t, signal) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Waits until `pid` has exited, at most `limit`; whether it did.
pub async fn wait_gone(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stopped_child_is_gone_even_before_it_is_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep starts");
        let pid = child.id();
        assert!(alive(pid));
        signal_stop(pid).expect("signal");
        // Not reaped yet: a zombie, which counts as gone.
        assert!(wait_gone(pid, Duration::from_secs(5)).await);
        let _ = child.wait();
        assert!(!alive(pid));
        assert!(!alive(0));
    }
}
