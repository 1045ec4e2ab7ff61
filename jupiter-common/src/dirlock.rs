//! One owner per data folder: a role takes an exclusive `flock` on
//! `FOLDER/.lock` before it touches what is inside, and holds it for its
//! life. A second role started on the same folder (a mistaken double start,
//! or a restart while the previous incarnation's tasks are still being torn
//! down) waits for the first to let go instead of working on the same files
//! at the same time. The kernel releases the lock when its holder dies,
//! however it dies, so a crash never leaves the folder locked.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The lock file's name inside the folder.
pub const LOCK_FILE: &str = ".lock";

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: std::fs::File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "{} is in use by another process or role (it holds {}); \
         waited {} s for it to let go",
        dir.display(),
        LOCK_FILE,
        waited.as_secs()
    )]
    InUse { dir: PathBuf, waited: Duration },
}

impl DirLock {
    /// Takes the lock on `dir` (created if missing), waiting up to `wait`
    /// for a holder to let go.
    pub async fn acquire(dir: &Path, wait: Duration) -> Result<DirLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // SAFETY: flock only acts on the descriptor `file` owns.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(DirLock { _file: file });
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::WouldBlock {
                return Err(io(e));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LockError::InUse {
                    dir: dir.to_path_buf(),
                    waited: wait,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second taker waits for the first to let go, and gets the lock
    /// then; one that waits too little is told who holds what.
    #[tokio::test]
    async fn a_second_owner_waits_for_the_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DirLock::acquire(dir.path(), Duration::ZERO).await.expect("first");
        let refused = DirLock::acquire(dir.path(), Duration::from_millis(50))
            .await
            .expect_err("held");
        assert!(refused.to_string().contains("is in use"), "{refused}");
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(first);
        });
        DirLock::acquire(dir.path(), Duration::from_secs(5))
            .await
            .expect("taken once the first let go");
        release.await.expect("release");
    }
}
