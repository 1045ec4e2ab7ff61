//! The worker's durable queue on disk. Everything a restart needs is here:
//!
//! ```text
//! tmp/                         partial downloads (wiped on start)
//! in/<input>/<source>/<file>   files that arrived (source: parent task, or _home)
//! in/<input>/<source>.meta     how many files that source sends, when it produced them
//! work/<input>/                scratch for the task (legacy tasks get their inputs here)
//! out/<input>/<file>           the task's outputs
//! out/<input>.done             the task succeeded: which outputs, its timings
//! finished/<input>             every output acknowledged downstream; inputs are gone
//! failed/<input>               the task failed for this input (the error)
//! ```

use jupiter_common::transfer::write_file_durably;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// The directory name of files that came from circe-home (ingress tasks).
pub const HOME_SOURCE: &str = "_home";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceMeta {
    pub count: u32,
    pub produced_at: i64,
}

/// What a successful run left behind, kept until every child has it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DoneRecord {
    pub outputs: Vec<String>,
    pub produced_at: i64,
    pub queue_wait_ms: f64,
    pub run_ms: f64,
    pub hop_ms: f64,
}

#[derive(Debug, Clone)]
pub struct Queue {
    root: PathBuf,
}

impl Queue {
    /// Opens (creating) the queue at `root` and wipes partial downloads.
    pub fn open(root: &Path) -> io::Result<Self> {
        for dir in ["tmp", "in", "work", "out", "finished", "failed"] {
            std::fs::create_dir_all(root.join(dir))?;
        }
        for entry in std::fs::read_dir(root.join("tmp"))? {
            let _ = std::fs::remove_file(entry?.path());
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn source_dir(&self, input: &str, source: &str) -> PathBuf {
        self.root.join("in").join(input).join(source)
    }
    fn meta_path(&self, input: &str, source: &str) -> PathBuf {
        self.root.join("in").join(input).join(format!("{source}.meta"))
    }
    pub fn work_dir(&self, input: &str) -> PathBuf {
        self.root.join("work").join(input)
    }
    pub fn out_dir(&self, input: &str) -> PathBuf {
        self.root.join("out").join(input)
    }
    fn done_path(&self, input: &str) -> PathBuf {
        self.root.join("out").join(format!("{input}.done"))
    }
    fn finished_path(&self, input: &str) -> PathBuf {
        self.root.join("finished").join(input)
    }
    fn failed_path(&self, input: &str) -> PathBuf {
        self.root.join("failed").join(input)
    }

    /// The task already ran (or failed) for this input: late copies of its
    /// inputs are duplicates.
    pub fn is_closed(&self, input: &str) -> bool {
        self.done_path(input).exists()
            || self.finished_path(input).exists()
            || self.failed_path(input).exists()
    }

    /// Records once how many files `source` sends for `input`.
    pub async fn ensure_meta(&self, input: &str, source: &str, meta: &SourceMeta) -> io::Result<()> {
        let path = self.meta_path(input, source);
        if path.exists() {
            return Ok(());
        }
        tokio::fs::create_dir_all(self.source_dir(input, source)).await?;
        write_file_durably(&path, &serde_json::to_vec(meta)?).await
    }

    /// `Some(metas)` when every source has sent all it announced.
    pub fn complete(&self, input: &str, sources: &[String]) -> io::Result<Option<Vec<SourceMeta>>> {
        let mut metas = Vec::with_capacity(sources.len());
        for source in sources {
            let Ok(bytes) = std::fs::read(self.meta_path(input, source)) else {
                return Ok(None);
            };
            let meta: SourceMeta = serde_json::from_slice(&bytes)?;
            let have = count_files(&self.source_dir(input, source))?;
            if have < meta.count as usize {
                return Ok(None);
            }
            metas.push(meta);
        }
        Ok(Some(metas))
    }

    /// The input files of `input`, source by source in `sources` order,
    /// each source's files by name.
    pub fn input_files(&self, input: &str, sources: &[String]) -> io::Result<Vec<PathBuf>> {
        let mut all = Vec::new();
        for source in sources {
            all.extend(sorted_files(&self.source_dir(input, source))?);
        }
        Ok(all)
    }

    pub async fn write_done(&self, input: &str, record: &DoneRecord) -> io::Result<()> {
        write_file_durably(&self.done_path(input), &serde_json::to_vec(record)?).await
    }

    pub async fn write_failed(&self, input: &str, error: &str) -> io::Result<()> {
        write_file_durably(&self.failed_path(input), error.as_bytes()).await
    }

    /// Everything is downstream: mark the input finished and drop its files.
    pub async fn finish(&self, input: &str) -> io::Result<()> {
        write_file_durably(&self.finished_path(input), b"").await?;
        for dir in [
            self.root.join("in").join(input),
            self.work_dir(input),
            self.out_dir(input),
        ] {
            remove_dir_if_exists(&dir).await?;
        }
        match tokio::fs::remove_file(self.done_path(input)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// What a restarted worker must pick up again.
    pub fn recover(&self) -> io::Result<Recovered> {
        let mut recovered = Recovered::default();
        for entry in std::fs::read_dir(self.root.join("out"))? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(input) = name.strip_suffix(".done") {
                if self.finished_path(input).exists() {
                    continue;
                }
                let record: DoneRecord = serde_json::from_slice(&std::fs::read(&path)?)?;
                recovered.to_send.push((input.to_string(), record));
            }
        }
        for entry in std::fs::read_dir(self.root.join("in"))? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let Some(input) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !self.is_closed(&input) {
                recovered.pending.push(input);
            }
        }
        recovered.finished = std::fs::read_dir(self.root.join("finished"))?.count() as u64;
        recovered.failed = std::fs::read_dir(self.root.join("failed"))?.count() as u64;
        recovered.pending.sort();
        recovered.to_send.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(recovered)
    }
}

#[derive(Debug, Default)]
pub struct Recovered {
    /// Inputs with files that may be complete but have not run.
    pub pending: Vec<String>,
    /// Inputs whose task ran but whose outputs may not all be acknowledged.
    pub to_send: Vec<(String, DoneRecord)>,
    pub finished: u64,
    pub failed: u64,
}

fn count_files(dir: &Path) -> io::Result<usize> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_file()))
            .count()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Regular files directly in `dir`, sorted by name (missing dir: none).
pub fn sorted_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    files.push(entry.path());
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    files.sort();
    Ok(files)
}

async fn remove_dir_if_exists(dir: &Path) -> io::Result<()> {
    match tokio::fs::remove_dir_all(dir).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
