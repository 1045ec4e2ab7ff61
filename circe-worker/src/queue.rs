//! The worker's durable queue on disk. Everything a restart needs is here:
//!
//! ```text
//! tmp/                         partial downloads, interpreter logs (wiped on start)
//! in/<input>@<source>@<n>/<f>  files that arrived from a source (a parent task,
//!                              or _home) that sends n files for this input; flat,
//!                              so a new folder costs one mkdir and one fsync of in/
//! work/<input>/                scratch for the task (Python tasks: their inputs, linked)
//! out/<input>/<file>           the task's outputs
//! out/<input>.done             the task succeeded: which outputs, its timings
//!                              (atomic, not synced: the outputs themselves are
//!                              not synced either; after a power cut the task
//!                              simply runs again, and receivers drop duplicates)
//! finished/<input>             every output acknowledged downstream; inputs are gone
//!                              (the done record, renamed: on ext4 without a journal
//!                              each new file scans recently freed inodes, so the
//!                              queue creates as few as it can)
//! failed/<input>               the task failed for this input (the error)
//! spare/                       files and folders done with, reused for the next
//!                              ones (jupiter_common::spares: creating inodes is
//!                              what costs)
//! ```

use jupiter_common::spares::Spares;
use jupiter_common::transfer::{sync_dir, write_file_atomically, write_file_durably};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

/// The directory name of files that came from circe-home (ingress tasks).
pub const HOME_SOURCE: &str = "_home";

/// What a successful run left behind, kept until every child has it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DoneRecord {
    pub outputs: Vec<String>,
    pub produced_at: i64,
    pub queue_wait_ms: f64,
    pub run_ms: f64,
    pub hop_ms: f64,
    /// When the run started (Unix nanoseconds; 0 in records of older
    /// workers).
    #[serde(default)]
    pub started_at: i64,
    /// The task span's `traceparent` (empty when not traced): a transfer
    /// resumed after a restart stays in the input's trace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trace: String,
}

#[derive(Debug, Clone)]
pub struct Queue {
    root: PathBuf,
    spares: Spares,
}

impl Queue {
    /// Opens (creating) the queue at `root` and wipes partial downloads.
    pub fn open(root: &Path) -> io::Result<Self> {
        // Tasks run in other folders (legacy ones in their input folder):
        // every path handed to them must hold from anywhere.
        let root = std::path::absolute(root)?;
        for dir in ["tmp", "in", "work", "out", "finished", "failed"] {
            std::fs::create_dir_all(root.join(dir))?;
        }
        let spares = Spares::open(&root.join("spare"))?;
        for entry in std::fs::read_dir(root.join("tmp"))? {
            let _ = spares.remove(&entry?.path());
        }
        Ok(Self { root, spares })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Where the queue's files and folders come from and go back to.
    pub fn spares(&self) -> &Spares {
        &self.spares
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    /// The folder of `source`'s files for `input`; its name carries how many
    /// files the source sends, so one durable mkdir records the count.
    pub fn source_dir(&self, input: &str, source: &str, count: u32) -> PathBuf {
        self.root.join("in").join(format!("{input}@{source}@{count}"))
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

    /// Creates (durably) the folder of `source`'s files for `input`.
    pub async fn ensure_source_dir(&self, input: &str, source: &str, count: u32) -> io::Result<PathBuf> {
        let dir = self.source_dir(input, source, count);
        let created = {
            let (dir, spares) = (dir.clone(), self.spares.clone());
            tokio::task::spawn_blocking(move || match spares.create_dir(&dir) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            })
            .await
            .map_err(io::Error::other)??
        };
        if created {
            sync_dir(&self.root.join("in")).await?;
        }
        Ok(dir)
    }

    /// Every source folder in the queue: (input, source, count, folder).
    fn source_dirs(&self) -> io::Result<Vec<(String, String, u32, PathBuf)>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(self.root.join("in"))? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            // Task names hold no '@'; the input id may.
            let mut parts = name.rsplitn(3, '@');
            let (Some(count), Some(source), Some(input)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if let Ok(count) = count.parse() {
                found.push((input.to_string(), source.to_string(), count, entry.path()));
            }
        }
        Ok(found)
    }

    /// The sources that have a folder for `input`: source -> (count, folder).
    fn sources_of(&self, input: &str) -> io::Result<HashMap<String, (u32, PathBuf)>> {
        Ok(self
            .source_dirs()?
            .into_iter()
            .filter(|(i, ..)| i == input)
            .map(|(_, source, count, dir)| (source, (count, dir)))
            .collect())
    }

    /// Drops a source folder of an input that is already closed.
    pub async fn discard_source(&self, input: &str, source: &str, count: u32) -> io::Result<()> {
        self.remove(vec![self.source_dir(input, source, count)]).await
    }

    /// Whether every source has sent all the files it announced.
    pub fn complete(&self, input: &str, sources: &[String]) -> io::Result<bool> {
        let found = self.sources_of(input)?;
        for source in sources {
            let Some((count, dir)) = found.get(source) else {
                return Ok(false);
            };
            if count_files(dir)? < *count as usize {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The sources of `sources` that have not sent every file of `input`
    /// they announced, each said as "task2 (no files)" or "task3 (1 of 3
    /// files)"; circe-home is [`HOME_SOURCE`].
    pub fn missing(&self, input: &str, sources: &[String]) -> io::Result<Vec<String>> {
        let found = self.sources_of(input)?;
        let mut missing = Vec::new();
        for source in sources {
            let name = if source == HOME_SOURCE {
                "circe-home"
            } else {
                source.as_str()
            };
            match found.get(source) {
                None => missing.push(format!("{name} (no files)")),
                Some((count, dir)) => {
                    let have = count_files(dir)?;
                    if have < *count as usize {
                        missing.push(format!("{name} ({have} of {count} files)"));
                    }
                }
            }
        }
        Ok(missing)
    }

    /// The input files of `input`, source by source in `sources` order,
    /// each source's files by name.
    pub fn input_files(&self, input: &str, sources: &[String]) -> io::Result<Vec<PathBuf>> {
        let found = self.sources_of(input)?;
        let mut all = Vec::new();
        for source in sources {
            if let Some((_, dir)) = found.get(source) {
                all.extend(sorted_files(dir)?);
            }
        }
        Ok(all)
    }

    pub async fn write_done(&self, input: &str, record: &DoneRecord) -> io::Result<()> {
        write_file_atomically(&self.done_path(input), &serde_json::to_vec(record)?, &self.spares).await
    }

    pub async fn write_failed(&self, input: &str, error: &str) -> io::Result<()> {
        write_file_durably(&self.failed_path(input), error.as_bytes()).await
    }

    /// Everything is downstream: mark the input finished and drop its files.
    /// The done record becomes the mark (a rename: no file to create).
    pub async fn finish(&self, input: &str) -> io::Result<()> {
        let finished = self.finished_path(input);
        match tokio::fs::rename(self.done_path(input), &finished).await {
            Ok(()) => sync_dir(&self.root.join("finished")).await?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => write_file_durably(&finished, b"").await?,
            Err(e) => return Err(e),
        }
        let sources = self.sources_of(input)?.into_values().map(|(_, dir)| dir);
        self.remove(
            sources
                .chain([self.work_dir(input), self.out_dir(input)])
                .collect(),
        )
        .await
    }

    /// Removes folders (missing ones are fine), in one trip to a blocking
    /// thread, keeping what can be reused.
    async fn remove(&self, dirs: Vec<PathBuf>) -> io::Result<()> {
        let spares = self.spares.clone();
        tokio::task::spawn_blocking(move || dirs.iter().try_for_each(|dir| spares.remove(dir)))
            .await
            .map_err(io::Error::other)?
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
        let inputs: std::collections::BTreeSet<String> =
            self.source_dirs()?.into_iter().map(|(input, ..)| input).collect();
        recovered.pending = inputs.into_iter().filter(|i| !self.is_closed(i)).collect();
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
