//! Spare files and folders: a queue hands the ones it is done with to a
//! pool beside it instead of deleting them, and takes new ones from there
//! (a rename) instead of creating them.
//!
//! Why: every input leaves a handful of files and folders behind on each
//! hop, created and deleted within milliseconds. On ext4 without a journal
//! (common on VMs and scratch disks, and the test machines' disk) creating
//! an inode scans past every inode the group freed in the last minute, and
//! under a pipelined run that scan took about a fifth of all CPU time. A
//! recycled inode is never freed, so nothing is scanned. On any other
//! filesystem it costs a rename where there was a create, and saves an
//! unlink.
//!
//! A spare is never part of a queue's state: a crash at any point leaves at
//! worst a spare more or fewer. Only files with one link are kept (a
//! hard-linked file is still in use elsewhere), emptied as they go in, so a
//! spare holds an inode and no data; at most [`MAX_SPARES`] of each kind.
//! The pool keeps a surplus on purpose: a task's own outputs are new files,
//! and deleting the surplus would poison inode allocation again (ext4
//! skips an inode for a minute after it is freed, five if its block is
//! still dirty).

use crate::sync::LockExt;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Spares kept per kind (files, folders); the rest are deleted. Empty
/// inodes cost nothing but their place in the inode table.
pub const MAX_SPARES: usize = 65_536;

/// A pool of spare files and folders in one folder; cheap to clone. Every
/// path it creates or removes must be on the pool's filesystem (a rename
/// across filesystems fails and it falls back to a plain create).
#[derive(Debug, Clone)]
pub struct Spares {
    inner: Option<Arc<Pool>>,
}

#[derive(Debug)]
struct Pool {
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    next: u64,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    File,
    Dir,
}

impl State {
    fn of(&mut self, kind: Kind) -> &mut Vec<PathBuf> {
        match kind {
            Kind::File => &mut self.files,
            Kind::Dir => &mut self.dirs,
        }
    }
}

impl Spares {
    /// No pool: creates create, removes remove.
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// The pool in `dir` (created if missing), with the spares a previous
    /// run left there.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut state = State::default();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let number = name
                .to_str()
                .and_then(|n| n.get(1..))
                .and_then(|n| n.parse::<u64>().ok());
            state.next = state.next.max(number.map_or(0, |n| n + 1));
            let kind = entry.file_type()?;
            if kind.is_dir() {
                state.dirs.push(entry.path());
            } else if kind.is_file() {
                state.files.push(entry.path());
            }
        }
        Ok(Self {
            inner: Some(Arc::new(Pool {
                dir: dir.to_path_buf(),
                state: Mutex::new(state),
            })),
        })
    }

    /// How many spare (files, folders) the pool holds.
    pub fn len(&self) -> (usize, usize) {
        self.inner.as_ref().map_or((0, 0), |p| {
            let s = p.state.locked();
            (s.files.len(), s.dirs.len())
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }

    /// `File::create(path)`, on a spare inode if there is one.
    pub fn create_file(&self, path: &Path) -> io::Result<File> {
        if let Some(spare) = self.take(Kind::File) {
            if std::fs::rename(&spare, path).is_ok() {
                return File::options().write(true).truncate(true).open(path);
            }
        }
        File::create(path)
    }

    /// `std::fs::create_dir(path)` (an error if it exists), on a spare
    /// folder if there is one.
    pub fn create_dir(&self, path: &Path) -> io::Result<()> {
        if let Some(spare) = self.take(Kind::Dir) {
            match rename_noreplace(&spare, path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    self.keep(spare, Kind::Dir);
                    return Err(e);
                }
                // Gone, or a filesystem that cannot: create it plainly.
                Err(_) => {}
            }
        }
        std::fs::create_dir(path)
    }

    /// Removes `path` (a file, or a folder and everything in it; missing is
    /// fine), keeping what can be reused.
    pub fn remove(&self, path: &Path) -> io::Result<()> {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(path)? {
                self.remove(&entry?.path())?;
            }
            if !self.give(path, Kind::Dir) {
                remove_missing_ok(std::fs::remove_dir(path))?;
            }
        } else {
            let reusable = meta.is_file() && meta.nlink() == 1 && (meta.len() == 0 || empty(path));
            if !(reusable && self.give(path, Kind::File)) {
                remove_missing_ok(std::fs::remove_file(path))?;
            }
        }
        Ok(())
    }

    fn take(&self, kind: Kind) -> Option<PathBuf> {
        self.inner.as_ref()?.state.locked().of(kind).pop()
    }

    fn keep(&self, spare: PathBuf, kind: Kind) {
        if let Some(pool) = &self.inner {
            pool.state.locked().of(kind).push(spare);
        }
    }

    /// Moves `path` into the pool; false if the pool is full (or off) or
    /// the move failed.
    fn give(&self, path: &Path, kind: Kind) -> bool {
        let Some(pool) = &self.inner else {
            return false;
        };
        let spare = {
            let mut state = pool.state.locked();
            if state.of(kind).len() >= MAX_SPARES {
                return false;
            }
            state.next += 1;
            let tag = match kind {
                Kind::File => 'f',
                Kind::Dir => 'd',
            };
            pool.dir.join(format!("{tag}{}", state.next))
        };
        if std::fs::rename(path, &spare).is_err() {
            return false;
        }
        self.keep(spare, kind);
        true
    }
}

/// Frees a file's blocks (its inode stays): a spare holds no data.
fn empty(path: &Path) -> bool {
    File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(0))
        .is_ok()
}

fn remove_missing_ok(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`).
#[cfg(target_os = "linux")]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: two valid NUL-terminated paths, relative to the working
    // directory as for any path call.
    let done = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn rename_noreplace(_from: &Path, _to: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn ino(path: &Path) -> u64 {
        std::fs::symlink_metadata(path).expect("stat").ino()
    }

    #[test]
    fn a_removed_folder_and_its_file_are_reused_empty() {
        let root = tempfile::tempdir().expect("tempdir");
        let spares = Spares::open(&root.path().join("spare")).expect("open");
        let (dir, file) = (root.path().join("a"), root.path().join("a/f"));
        spares.create_dir(&dir).expect("mkdir");
        std::fs::write(&file, b"old contents").expect("write");
        let (dir_ino, file_ino) = (ino(&dir), ino(&file));
        spares.remove(&dir).expect("remove");
        assert!(!dir.exists());
        assert_eq!(spares.len(), (1, 1));

        let new_dir = root.path().join("b");
        spares.create_dir(&new_dir).expect("mkdir again");
        assert_eq!(ino(&new_dir), dir_ino, "the folder's inode is reused");
        assert_eq!(
            std::fs::read_dir(&new_dir).expect("ls").count(),
            0,
            "and it is empty"
        );
        let new_file = new_dir.join("g");
        spares
            .create_file(&new_file)
            .expect("create")
            .write_all(b"new")
            .expect("write");
        assert_eq!(ino(&new_file), file_ino, "the file's inode is reused");
        assert_eq!(std::fs::read(&new_file).expect("read"), b"new", "truncated first");
        assert!(spares.is_empty());
    }

    #[test]
    fn a_file_with_another_link_is_unlinked_not_reused() {
        let root = tempfile::tempdir().expect("tempdir");
        let spares = Spares::open(&root.path().join("spare")).expect("open");
        let (file, link) = (root.path().join("f"), root.path().join("link"));
        std::fs::write(&file, b"shared").expect("write");
        std::fs::hard_link(&file, &link).expect("link");
        spares.remove(&link).expect("remove the link");
        assert_eq!(spares.len(), (0, 0));
        spares.create_file(&root.path().join("other")).expect("create");
        assert_eq!(
            std::fs::read(&file).expect("read"),
            b"shared",
            "the other link is untouched"
        );
        // Now alone, it may be reused.
        spares.remove(&file).expect("remove");
        assert_eq!(spares.len(), (1, 0));
    }

    #[test]
    fn spares_hold_no_data() {
        let root = tempfile::tempdir().expect("tempdir");
        let spare_dir = root.path().join("spare");
        let spares = Spares::open(&spare_dir).expect("open");
        let big = root.path().join("big");
        std::fs::write(&big, vec![7u8; 3 << 20]).expect("write");
        spares.remove(&big).expect("remove");
        assert!(!big.exists());
        assert_eq!(spares.len(), (1, 0));
        for entry in std::fs::read_dir(&spare_dir).expect("ls") {
            assert_eq!(entry.expect("entry").metadata().expect("stat").len(), 0);
        }
    }

    #[test]
    fn create_dir_refuses_an_existing_folder_and_keeps_its_spare() {
        let root = tempfile::tempdir().expect("tempdir");
        let spares = Spares::open(&root.path().join("spare")).expect("open");
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        std::fs::create_dir(&a).expect("mkdir");
        std::fs::create_dir(&b).expect("mkdir");
        spares.remove(&a).expect("remove");
        let err = spares.create_dir(&b).expect_err("b exists");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(spares.len(), (0, 1), "the spare stays in the pool");
    }

    #[test]
    fn missing_paths_are_fine_and_a_reopened_pool_keeps_its_spares() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("spare");
        let spares = Spares::open(&dir).expect("open");
        spares
            .remove(&root.path().join("nothing"))
            .expect("missing is fine");
        for name in ["x", "y"] {
            std::fs::create_dir(root.path().join(name)).expect("mkdir");
            spares.remove(&root.path().join(name)).expect("remove");
        }
        let reopened = Spares::open(&dir).expect("reopen");
        assert_eq!(reopened.len(), (0, 2));
        // New names do not collide with the ones already there.
        std::fs::create_dir(root.path().join("z")).expect("mkdir");
        reopened.remove(&root.path().join("z")).expect("remove");
        assert_eq!(reopened.len(), (0, 3));
        assert_eq!(std::fs::read_dir(&dir).expect("ls").count(), 3);
    }

    #[test]
    fn a_disabled_pool_creates_and_deletes() {
        let root = tempfile::tempdir().expect("tempdir");
        let spares = Spares::disabled();
        let dir = root.path().join("a");
        spares.create_dir(&dir).expect("mkdir");
        spares.create_file(&dir.join("f")).expect("create");
        spares.remove(&dir).expect("remove");
        assert!(!dir.exists());
        assert_eq!(std::fs::read_dir(root.path()).expect("ls").count(), 0);
    }
}
