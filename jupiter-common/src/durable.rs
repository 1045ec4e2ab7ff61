//! Group commit for the queues' durability points. A worker makes a file
//! durable in two steps (its data, then the folder entry that names it),
//! and with many inputs in flight many such steps wait at once. Each
//! fsync also flushes the disk's cache, the slow part (on a virtual disk a
//! flush is an fsync on the host), so an fsync per step makes the disk's
//! flush rate the pipeline's throughput.
//!
//! Here every step that waits registers with its filesystem's committer,
//! one thread per filesystem in the process, naming the files and folders
//! it would fsync. The committer takes every step registered so far as one
//! round: a round of a step or two fsyncs their paths (nothing else is
//! written, so an idle worker's latency is an fsync's); a larger round runs
//! one `syncfs` (all of that filesystem's dirty data and metadata, one
//! flush) instead. Steps that come during a round wait for the next. A step
//! is durable once released, exactly as after its own fsyncs: what a
//! caller wrote before registering is written out by a round that starts
//! after it.
//!
//! The price of `syncfs`: it also writes whatever else is dirty on that
//! filesystem, so a process writing gigabytes beside the queues slows the
//! rounds. Queues on their own filesystem (a volume) avoid it.
//!
//! The order inside one `syncfs` is not defined, so a caller that needs
//! "data before name" (a rename must never point at a file whose data may
//! be lost) still waits twice: once for the data, once after the rename.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;

/// A step: the paths it needs synced, and where its round's result goes.
struct Waiter {
    paths: Vec<PathBuf>,
    done: tokio::sync::oneshot::Sender<Result<(), i32>>,
}

/// Rounds of at most this many paths fsync them one by one.
const SMALL_ROUND: usize = 2;

/// One committer thread per filesystem (by device id).
static COMMITTERS: Mutex<Option<HashMap<u64, mpsc::Sender<Waiter>>>> = Mutex::new(None);

/// Makes `paths` (files or folders, on one filesystem) durable, as an
/// fsync of each would: their data, and for a folder its entries.
pub async fn sync(paths: &[&Path]) -> io::Result<()> {
    let rx = register(paths)?;
    finish(rx.await)
}

/// [`sync`] from a blocking thread (never from an async task: it blocks).
pub fn sync_blocking(paths: &[&Path]) -> io::Result<()> {
    let rx = register(paths)?;
    finish(rx.blocking_recv())
}

fn finish(result: Result<Result<(), i32>, tokio::sync::oneshot::error::RecvError>) -> io::Result<()> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(errno)) => Err(io::Error::from_raw_os_error(errno)),
        Err(_) => Err(io::Error::other("the filesystem's committer stopped")),
    }
}

fn register(paths: &[&Path]) -> io::Result<tokio::sync::oneshot::Receiver<Result<(), i32>>> {
    let Some(path) = paths.first() else {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send(Ok(()));
        return Ok(rx);
    };
    let device = std::fs::metadata(path)?.dev();
    let (done, rx) = tokio::sync::oneshot::channel();
    let tx = Waiter {
        paths: paths.iter().map(|p| p.to_path_buf()).collect(),
        done,
    };
    let mut committers = COMMITTERS.lock().unwrap_or_else(|e| e.into_inner());
    let committers = committers.get_or_insert_with(HashMap::new);
    let waiter = match committers.get(&device) {
        Some(committer) => committer.send(tx).err().map(|e| e.0),
        None => Some(tx),
    };
    // No committer yet for this filesystem (or its thread is gone): start one.
    if let Some(tx) = waiter {
        let committer = start(path)?;
        committer
            .send(tx)
            .map_err(|_| io::Error::other("the filesystem's committer did not start"))?;
        committers.insert(device, committer);
    }
    Ok(rx)
}

/// Starts the committer of the filesystem holding `path`.
fn start(path: &Path) -> io::Result<mpsc::Sender<Waiter>> {
    // Any open file of the filesystem names it to syncfs; a folder can
    // always be opened read-only.
    let anchor = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(path)
    };
    let file = std::fs::File::open(anchor)?;
    let (tx, rx) = mpsc::channel::<Waiter>();
    std::thread::Builder::new()
        .name("jupiter-commit".into())
        .spawn(move || commit_rounds(&file, &rx))?;
    Ok(tx)
}

fn commit_rounds(file: &std::fs::File, rx: &mpsc::Receiver<Waiter>) {
    while let Ok(first) = rx.recv() {
        let mut round = vec![first];
        round.extend(rx.try_iter());
        let paths: usize = round.iter().map(|w| w.paths.len()).sum();
        if paths <= SMALL_ROUND {
            // Side by side: an idle worker waits for one fsync, not two.
            let results: Vec<Result<(), i32>> = std::thread::scope(|scope| {
                let fsyncs: Vec<Vec<_>> = round
                    .iter()
                    .map(|w| w.paths.iter().map(|p| scope.spawn(move || fsync(p))).collect())
                    .collect();
                fsyncs
                    .into_iter()
                    .map(|step| {
                        // The scope joins whatever a failure leaves unjoined.
                        step.into_iter()
                            .try_for_each(|f| f.join().unwrap_or(Err(libc::EIO)))
                    })
                    .collect()
            });
            for (waiter, result) in round.into_iter().zip(results) {
                let _ = waiter.done.send(result);
            }
        } else {
            let result = syncfs(file);
            for waiter in round {
                let _ = waiter.done.send(result);
            }
        }
    }
}

fn fsync(path: &Path) -> Result<(), i32> {
    let errno = |e: io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    std::fs::File::open(path)
        .map_err(errno)?
        .sync_all()
        .map_err(errno)
}

#[cfg(target_os = "linux")]
fn syncfs(file: &std::fs::File) -> Result<(), i32> {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a file descriptor this thread owns.
    let rc = unsafe { libc::syncfs(file.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
    }
}

#[cfg(not(target_os = "linux"))]
fn syncfs(_file: &std::fs::File) -> Result<(), i32> {
    // No syncfs: sync(2) covers every filesystem, this one included.
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_steps_share_rounds_and_all_are_released() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut steps = tokio::task::JoinSet::new();
        for i in 0..64 {
            let path = dir.path().join(format!("f{i}"));
            steps.spawn(async move {
                std::fs::write(&path, b"x")?;
                sync(&[&path]).await
            });
        }
        while let Some(step) = steps.join_next().await {
            step.expect("joined").expect("synced");
        }
        let path = dir.path().join("blocking");
        std::fs::write(&path, b"y").expect("write");
        tokio::task::spawn_blocking(move || sync_blocking(&[&path]))
            .await
            .expect("joined")
            .expect("synced");
    }

    #[tokio::test]
    async fn a_missing_path_is_an_error_not_a_hang() {
        let error = sync(&[Path::new("/nonexistent/jupiter/x")]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
