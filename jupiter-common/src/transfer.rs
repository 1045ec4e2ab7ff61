//! Files as gRPC chunk streams: the sending side turns a file into a stream
//! of `FileChunk`s (header first), the receiving side writes a stream into a
//! durable file (temporary name, fsync, rename, fsync of the directory) and
//! only then lets the caller acknowledge it.

use crate::proto::circe::worker::v1::{file_chunk::Kind, FileChunk, FileHeader};
use crate::spares::Spares;
use crate::sync::LockExt;
use bytes::Bytes;
use futures::Stream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tonic::Status;

/// Data bytes per chunk: large enough to amortise per-message costs, well
/// under the default 4 MiB gRPC message limit.
pub const CHUNK_SIZE: usize = 1024 * 1024;

/// Chunks read ahead of the network: reading the next chunks from disk
/// overlaps sending the current one.
const READ_AHEAD: usize = 4;

/// Whether Jupiter owns the file being sent, which decides how it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A file in Jupiter's own folders (a queue's outputs, circe-home's
    /// stored inputs) that nothing changes while it is sent: it is mapped
    /// into memory and its pages go to the network without a read copy.
    Owned,
    /// Any other file (a user's input): read with plain reads, so a file
    /// that shrinks while it is sent fails the transfer instead of the process.
    Foreign,
}

/// Files smaller than this are read even when owned: a map costs more.
const MAP_ABOVE: u64 = 256 * 1024;

/// The stream of chunks for one file: `header`, then its bytes. For an empty
/// marker (`header.file_count == 0`) pass `path = None`.
///
/// A blocking thread reads (or maps) the file and keeps up to READ_AHEAD
/// chunks ready. If the file cannot be read the stream ends early; the
/// receiver then sees fewer bytes than the header announced and refuses it.
pub fn file_chunks(
    header: FileHeader,
    path: Option<PathBuf>,
    origin: Origin,
) -> impl Stream<Item = FileChunk> + Send + 'static {
    let head = futures::stream::iter([chunk(Kind::Header(header))]);
    let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
    if let Some(path) = path {
        tokio::task::spawn_blocking(move || {
            let sent = match origin {
                Origin::Owned => map_chunks(&path, &tx),
                Origin::Foreign => read_chunks(&path, &tx),
            };
            if let Err(e) = sent {
                tracing::warn!(path = %path.display(), error = %e, "cannot read file to send");
            }
        });
    }
    futures::StreamExt::chain(head, tokio_stream::wrappers::ReceiverStream::new(rx))
}

fn map_chunks(path: &Path, tx: &tokio::sync::mpsc::Sender<FileChunk>) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    if file.metadata()?.len() < MAP_ABOVE {
        return read_chunks(path, tx);
    }
    // SAFETY: `Origin::Owned` files are Jupiter's own and are not modified
    // or truncated while they are sent (see `Origin`).
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&file)? };
    let all = Bytes::from_owner(map);
    let mut at = 0;
    while at < all.len() {
        let end = (at + CHUNK_SIZE).min(all.len());
        if tx.blocking_send(chunk(Kind::Data(all.slice(at..end)))).is_err() {
            // The receiver answered early (a duplicate) or went away.
            return Ok(());
        }
        at = end;
    }
    Ok(())
}

fn read_chunks(path: &Path, tx: &tokio::sync::mpsc::Sender<FileChunk>) -> std::io::Result<()> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    // Buffers come back once the encoder has copied them out, so a file of
    // any size touches READ_AHEAD + 1 buffers' worth of fresh pages at most.
    // A small file gets a buffer its size (one byte more, to see its end in
    // one read): zeroing a whole chunk for a few bytes costs more than
    // sending them.
    let size = file.metadata().map_or(CHUNK_SIZE as u64, |m| m.len());
    let pool = Pool::new(usize::try_from(size.saturating_add(1)).map_or(CHUNK_SIZE, |s| s.min(CHUNK_SIZE)));
    loop {
        let mut buf = pool.take();
        let capacity = buf.data.len();
        let mut filled = 0;
        while filled < capacity {
            match file.read(&mut buf.data[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(());
        }
        buf.len = filled;
        if tx
            .blocking_send(chunk(Kind::Data(Bytes::from_owner(buf))))
            .is_err()
        {
            // The receiver answered early (a duplicate) or went away.
            return Ok(());
        }
        if filled < capacity {
            return Ok(());
        }
    }
}

/// Recycled chunk buffers of one file being sent, all of one size.
#[derive(Clone)]
struct Pool(Arc<std::sync::Mutex<Vec<Box<[u8]>>>>, usize);

impl Pool {
    fn new(buffer_size: usize) -> Self {
        Self(Arc::default(), buffer_size.max(1))
    }

    fn take(&self) -> Pooled {
        let data = self
            .0
            .locked()
            .pop()
            .unwrap_or_else(|| vec![0u8; self.1].into_boxed_slice());
        Pooled {
            data,
            len: 0,
            pool: self.clone(),
        }
    }
}

struct Pooled {
    data: Box<[u8]>,
    len: usize,
    pool: Pool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        self.pool.0.locked().push(data);
    }
}

fn chunk(kind: Kind) -> FileChunk {
    FileChunk { kind: Some(kind) }
}

/// Reads the header that must open every file stream.
pub async fn read_header(stream: &mut tonic::Streaming<FileChunk>) -> Result<FileHeader, Status> {
    match stream.message().await? {
        Some(FileChunk {
            kind: Some(Kind::Header(header)),
        }) => {
            check_header(&header)?;
            Ok(header)
        }
        Some(_) => Err(Status::invalid_argument(
            "the first message of a file stream must be a header",
        )),
        None => Err(Status::invalid_argument("empty file stream")),
    }
}

/// The checks every file header passes before anything is written: each
/// name one safe path component, a file name whenever files are announced.
pub fn check_header(header: &FileHeader) -> Result<(), Status> {
    check_name("input_id", &header.input_id)?;
    if !header.file_name.is_empty() {
        check_name("file_name", &header.file_name)?;
    } else if header.file_count != 0 {
        return Err(Status::invalid_argument(
            "header.file_name is empty but file_count is not 0",
        ));
    }
    if !header.from_task.is_empty() {
        check_name("from_task", &header.from_task)?;
    }
    Ok(())
}

/// A name that becomes one path component: no separators, no `.`/`..`.
pub fn check_name(field: &str, name: &str) -> Result<(), Status> {
    if name.len() > crate::limits::MAX_NAME_LEN {
        return Err(Status::invalid_argument(format!(
            "header.{field} is {} bytes long, over the limit of {} bytes (one path component)",
            name.len(),
            crate::limits::MAX_NAME_LEN
        )));
    }
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.starts_with('.')
        || name.contains('/')
        || name.contains('\\')
        || name.contains('\0');
    if bad {
        return Err(Status::invalid_argument(format!(
            "header.{field} {name:?} is not a valid file name"
        )));
    }
    Ok(())
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn tmp_name(tmp_dir: &Path) -> PathBuf {
    tmp_dir.join(format!(
        "{}-{}.part",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A file received in full and synced, under a temporary name.
#[derive(Debug)]
pub struct Received {
    tmp: PathBuf,
    pub bytes: u64,
    spares: Spares,
}

impl Received {
    /// Renames the file to `dest` (whose folder must exist) and syncs the
    /// folder: from here on `dest` survives a crash, complete.
    pub async fn commit(self, dest: &Path) -> Result<u64, Status> {
        let renamed = match tokio::fs::rename(&self.tmp, dest).await {
            // `dest` is on another filesystem (an output folder away from
            // the data folder): copy it over durably, then rename there.
            Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => copy_across(&self.tmp, dest).await,
            renamed => renamed,
        };
        if let Err(e) = renamed {
            remove_quietly(&self.spares, self.tmp).await;
            return Err(io_status(e));
        }
        if let Some(parent) = dest.parent() {
            sync_dir(parent).await.map_err(io_status)?;
        }
        Ok(self.bytes)
    }

    pub async fn discard(self) {
        remove_quietly(&self.spares, self.tmp).await;
    }
}

/// Removes a temporary file, keeping its inode in `spares`; a failure
/// leaves it for the next start's wipe of the folder.
async fn remove_quietly(spares: &Spares, tmp: PathBuf) {
    let spares = spares.clone();
    let _ = tokio::task::spawn_blocking(move || spares.remove(&tmp)).await;
}

/// Writes the rest of `stream` (the data after the header) to a synced
/// temporary file in `tmp_dir`, checking it has exactly `expected_size`
/// bytes. The file is made on a spare inode from `spares` if it has one.
pub async fn receive_to_temp(
    stream: &mut tonic::Streaming<FileChunk>,
    expected_size: u64,
    tmp_dir: &Path,
    spares: &Spares,
) -> Result<Received, Status> {
    let tmp = tmp_name(tmp_dir);
    match write_synced(stream, expected_size, &tmp, spares).await {
        Ok(bytes) => Ok(Received {
            tmp,
            bytes,
            spares: spares.clone(),
        }),
        Err(status) => {
            remove_quietly(spares, tmp).await;
            Err(status)
        }
    }
}

/// Receives into `dest` durably: the data and `dest`'s folder are made
/// durable at the same time, then the file is renamed in. `dest` appears
/// complete or not at all.
pub async fn receive_durably(
    stream: &mut tonic::Streaming<FileChunk>,
    expected_size: u64,
    tmp_dir: &Path,
    dest: &Path,
) -> Result<u64, Status> {
    let folder = async {
        match dest.parent() {
            Some(parent) => create_dir_durably(parent).await.map_err(io_status),
            None => Ok(()),
        }
    };
    // What arrives here is kept (inputs, outputs): no spares to recycle.
    let spares = Spares::disabled();
    let (received, folder) = tokio::join!(receive_to_temp(stream, expected_size, tmp_dir, &spares), folder);
    let received = received?;
    if let Err(status) = folder {
        received.discard().await;
        return Err(status);
    }
    received.commit(dest).await
}

/// Writes the stream to `tmp` on a blocking thread fed through a short
/// channel: the network and the disk work at the same time, a small file
/// costs one thread hand-off, and large files start their write-back early
/// so that the final fsync is short.
async fn write_synced(
    stream: &mut tonic::Streaming<FileChunk>,
    expected_size: u64,
    tmp: &Path,
    spares: &Spares,
) -> Result<u64, Status> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(READ_AHEAD);
    let complete = Arc::new(AtomicBool::new(false));
    let drop_behind = expected_size >= DROP_BEHIND_FROM;
    let writer = {
        let tmp = tmp.to_path_buf();
        let (complete, spares) = (complete.clone(), spares.clone());
        tokio::task::spawn_blocking(move || {
            let file = spares.create_file(&tmp)?;
            write_chunks(file, rx, &complete, drop_behind)
        })
    };
    let received = forward(stream, expected_size, tx).await;
    complete.store(received.is_ok(), Ordering::Release);
    let written = writer
        .await
        .map_err(|e| Status::internal(format!("queue writer: {e}")))?
        .map_err(io_status);
    let received = received?;
    written?;
    Ok(received)
}

/// Moves data messages from the stream to the writer, checking the size.
async fn forward(
    stream: &mut tonic::Streaming<FileChunk>,
    expected_size: u64,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) -> Result<u64, Status> {
    let mut received = 0u64;
    while let Some(msg) = stream.message().await? {
        let Some(Kind::Data(data)) = msg.kind else {
            return Err(Status::invalid_argument("a second header inside a file stream"));
        };
        received += data.len() as u64;
        if received > expected_size {
            return Err(Status::invalid_argument(format!(
                "file is longer than the {expected_size} bytes announced"
            )));
        }
        if tx.send(data).await.is_err() {
            // The writer stopped: its error is reported by the caller.
            return Ok(received);
        }
    }
    if received != expected_size {
        return Err(Status::data_loss(format!(
            "file ended after {received} of {expected_size} bytes"
        )));
    }
    Ok(received)
}

/// Bytes written between write-back kicks of a large file.
const WRITEBACK_EVERY: u64 = 8 * 1024 * 1024;

/// Files at least this big are written "drop-behind": once a range is on
/// the disk its pages leave the page cache, so a transfer holds at most
/// DROP_LAG of the file in memory whatever its size. Without it, a 1 GiB
/// file takes 1 GiB of fresh page-cache pages: memory the kernel must find
/// (reclaim, dirty throttling, a container's memory limit) and, in a VM
/// whose free memory goes back to the host, pages the host must back anew
/// on first touch (measured here: writing 1 GiB into the cache took 0.3 s
/// with recycled pages, 2–2.7 s with fresh ones). Recycled pages cost the
/// same every time. Smaller files stay cached for the task that reads them.
const DROP_BEHIND_FROM: u64 = 128 * 1024 * 1024;

/// How far behind the write position pages are dropped: the disk gets this
/// long to write a range before the writer waits for it.
const DROP_LAG: u64 = 32 * 1024 * 1024;

fn write_chunks(
    mut file: std::fs::File,
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
    complete: &AtomicBool,
    mut drop_behind: bool,
) -> std::io::Result<()> {
    use std::io::Write;
    // Written up to `offset`; write-back started up to `kicked`; dropped
    // from the cache up to `dropped`.
    let (mut offset, mut kicked, mut dropped) = (0u64, 0u64, 0u64);
    while let Some(data) = rx.blocking_recv() {
        file.write_all(&data)?;
        offset += data.len() as u64;
        if offset - kicked >= WRITEBACK_EVERY {
            start_writeback(&file, kicked, offset - kicked);
            kicked = offset;
            if drop_behind && kicked - dropped >= DROP_LAG + WRITEBACK_EVERY {
                let upto = kicked - DROP_LAG;
                match drop_written(&file, dropped, upto - dropped) {
                    Ok(()) => dropped = upto,
                    // This filesystem cannot: keep the pages, as for a small file.
                    Err(e) if unsupported(&e) => drop_behind = false,
                    // A write error, which the final fsync might no longer
                    // report: the wait has consumed it.
                    Err(e) => return Err(e),
                }
            }
        }
    }
    // A partial file is thrown away: no point waiting for the disk.
    if complete.load(Ordering::Acquire) {
        file.sync_all()?;
    }
    Ok(())
}

/// Asks the kernel to start writing a range out now (Linux), so the fsync
/// at the end finds most of the file already on its way to the disk.
#[cfg(target_os = "linux")]
fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a file descriptor we own; failure is harmless.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &std::fs::File, _offset: u64, _len: u64) {}

/// Waits until a range is written out, then drops its pages from the page
/// cache (Linux). This is about memory only: the data is durable after the
/// final fsync, as for any file. A write error is returned here (the wait
/// reports it once, so it must not be ignored).
#[cfg(target_os = "linux")]
fn drop_written(file: &std::fs::File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: plain syscalls on a file descriptor we own.
    let waited = unsafe {
        libc::sync_file_range(
            fd,
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER,
        )
    };
    if waited != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // Clean pages only; failure leaves them cached, which is harmless.
    // SAFETY: as above.
    unsafe {
        libc::posix_fadvise(
            fd,
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::POSIX_FADV_DONTNEED,
        );
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn drop_written(_file: &std::fs::File, _offset: u64, _len: u64) -> std::io::Result<()> {
    Ok(())
}

/// An error saying the call is not available here, as opposed to an I/O error.
fn unsupported(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::Unsupported
        || matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS | libc::EINVAL | libc::ESPIPE | libc::EOPNOTSUPP)
        )
}

/// Creates `dir` and any missing ancestors so that they survive a crash:
/// each new entry's parent folder is synced. An existing `dir` costs a stat.
pub async fn create_dir_durably(dir: &Path) -> std::io::Result<()> {
    let mut missing = Vec::new();
    let mut cursor = Some(dir);
    while let Some(d) = cursor {
        if tokio::fs::metadata(d).await.is_ok() {
            break;
        }
        missing.push(d.to_path_buf());
        cursor = d.parent();
    }
    for d in missing.iter().rev() {
        match tokio::fs::create_dir(d).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    // Every new entry's parent, side by side; their order does not matter.
    let parents: Vec<&Path> = missing.iter().filter_map(|d| d.parent()).collect();
    crate::durable::sync(&parents).await?;
    Ok(())
}

/// Makes a rename inside `dir` durable.
pub async fn sync_dir(dir: &Path) -> std::io::Result<()> {
    crate::durable::sync(&[dir]).await
}

/// Moves `from` to `dest` on another filesystem: a synced copy under a
/// temporary name beside `dest`, renamed into place (the caller syncs the
/// folder), then `from` removed.
async fn copy_across(from: &Path, dest: &Path) -> std::io::Result<()> {
    let tmp = dest.with_extension(format!(
        "part{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let copied = async {
        tokio::fs::copy(from, &tmp).await?;
        crate::durable::sync(&[&tmp]).await?;
        tokio::fs::rename(&tmp, dest).await
    }
    .await;
    if copied.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
        return copied;
    }
    tokio::fs::remove_file(from).await
}

/// Writes `contents` to `dest` durably (temporary name, fsync, rename,
/// fsync of the folder).
pub async fn write_file_durably(dest: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_file(dest, contents, true, &Spares::disabled()).await
}

/// Writes `contents` to `dest` atomically (temporary name, rename) without
/// waiting for the disk: it survives a process crash, not a power cut. The
/// file is made on a spare inode from `spares` if it has one.
pub async fn write_file_atomically(dest: &Path, contents: &[u8], spares: &Spares) -> std::io::Result<()> {
    write_file(dest, contents, false, spares).await
}

async fn write_file(dest: &Path, contents: &[u8], sync: bool, spares: &Spares) -> std::io::Result<()> {
    let tmp = dest.with_extension(format!(
        "tmp{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    {
        let (tmp, contents, spares) = (tmp.clone(), contents.to_vec(), spares.clone());
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            spares.create_file(&tmp)?.write_all(&contents)
        })
        .await
        .map_err(std::io::Error::other)??;
    }
    if sync {
        crate::durable::sync(&[&tmp]).await?;
    }
    tokio::fs::rename(&tmp, dest).await?;
    match dest.parent() {
        Some(parent) if sync => sync_dir(parent).await,
        _ => Ok(()),
    }
}

/// Whether a failed call is one a retry cannot fix.
pub fn permanent(status: &Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::InvalidArgument
            | tonic::Code::FailedPrecondition
            | tonic::Code::PermissionDenied
            | tonic::Code::Unimplemented
    )
}

/// The first pause before retrying a push, and the longest: a receiver
/// back after a restart is reached within a second.
pub const PUSH_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(5);
pub const PUSH_RETRY_CAP: std::time::Duration = std::time::Duration::from_secs(1);

/// Calls `attempt` (one push of a file) until it is acknowledged, backing
/// off (capped, with jitter: [`crate::retry`]) between tries; gives up only on a [`permanent`] error. Receivers are
/// idempotent, so a retry after a lost acknowledgement is harmless.
pub async fn push_until_acked<T, F, Fut>(what: &str, attempt: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Status>>,
{
    push_counting_retries(what, attempt).await.0
}

/// [`push_until_acked`], also saying how many attempts failed before the
/// last one (retries, for spans and metrics).
pub async fn push_counting_retries<T, F, Fut>(what: &str, mut attempt: F) -> (Result<T, Status>, u32)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Status>>,
{
    let mut backoff = crate::retry::Backoff::new(PUSH_RETRY_FIRST, PUSH_RETRY_CAP);
    let mut attempts = 0u32;
    loop {
        match attempt().await {
            Ok(ack) => return (Ok(ack), attempts),
            Err(status) if permanent(&status) => return (Err(status), attempts),
            Err(status) => {
                attempts += 1;
                if attempts % 20 == 1 {
                    tracing::warn!(what, error = %status.message(), attempts, "push failed, retrying");
                }
                backoff.wait().await;
            }
        }
    }
}

/// How a refusal for a full disk begins (so a receiver can tell it apart).
pub const STORAGE_FULL: &str = "queue storage is full";

/// A storage error as a status: a full disk (or quota) is ResourceExhausted,
/// which senders retry; anything else is Internal.
pub fn io_status(e: std::io::Error) -> Status {
    let full = e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT));
    if full {
        return Status::resource_exhausted(format!(
            "{STORAGE_FULL} ({e}): the file was not kept; the sender retries until space is freed"
        ));
    }
    Status::internal(format!("queue storage: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file received into a data folder and committed to an output
    /// folder on another filesystem (tmpfs here) arrives whole, and the
    /// temporary file is gone.
    #[tokio::test]
    async fn commit_crosses_filesystems() {
        let shm = Path::new("/dev/shm");
        let data = tempfile::tempdir().expect("tempdir");
        let Ok(out) = tempfile::tempdir_in(shm) else {
            eprintln!("SKIPPED: no /dev/shm to commit across filesystems to");
            return;
        };
        use std::os::unix::fs::MetadataExt;
        let dev = |p: &Path| std::fs::metadata(p).expect("stat").dev();
        if dev(data.path()) == dev(out.path()) {
            eprintln!("SKIPPED: /dev/shm is on the same filesystem as the temporary folder");
            return;
        }
        let tmp = data.path().join("f.part");
        std::fs::write(&tmp, b"across").expect("write");
        let dest = out.path().join("f");
        let received = Received {
            tmp: tmp.clone(),
            bytes: 6,
            spares: Spares::disabled(),
        };
        assert_eq!(received.commit(&dest).await.expect("committed"), 6);
        assert_eq!(std::fs::read(&dest).expect("dest"), b"across");
        assert!(!tmp.exists());
        let left: Vec<_> = std::fs::read_dir(out.path()).expect("ls").collect();
        assert_eq!(left.len(), 1, "no temporary file left beside dest");
    }

    /// A file written drop-behind (its pages leave the cache as it goes) is
    /// complete and byte for byte what was sent.
    #[tokio::test]
    async fn drop_behind_keeps_every_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tmp = dir.path().join("f.part");
        let size = DROP_LAG as usize + 5 * WRITEBACK_EVERY as usize + 12_345;
        let data: Vec<u8> = (0..size).map(|i| (i * 7 + i / 4096) as u8).collect();
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(READ_AHEAD);
        let complete = Arc::new(AtomicBool::new(true));
        let writer = {
            let (tmp, complete) = (tmp.clone(), complete.clone());
            let file = std::fs::File::create(&tmp).expect("create");
            tokio::task::spawn_blocking(move || write_chunks(file, rx, &complete, true))
        };
        let all = Bytes::from(data.clone());
        for at in (0..size).step_by(CHUNK_SIZE - 1) {
            let end = (at + CHUNK_SIZE - 1).min(size);
            tx.send(all.slice(at..end)).await.expect("writer alive");
        }
        drop(tx);
        writer.await.expect("writer thread").expect("written");
        assert!(std::fs::read(&tmp).expect("read back") == data);
    }
}
