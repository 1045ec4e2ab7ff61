//! Profiles kept per app content, so that the next `up` of the same app
//! need not run it again: `<dir>/<hash>.json`, where the hash covers every
//! file of the app folder (sorted relative paths and bytes), the sample
//! input and the Python that runs original tasks. Costs are normalised to
//! speed 1, so a profile holds wherever it was measured. Only complete
//! profiles are stored; a missing, unreadable or stale file is a miss.

use super::{ExecProfile, Source};
use jupiter_common::app::App;
use ring::digest::{Context, SHA256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bumped when what a cached profile means changes.
const VERSION: &[u8] = b"jupiter-exec-profile-v1";

/// The cache folder beside the state file at `state_file`.
pub fn dir_beside(state_file: &Path) -> Option<PathBuf> {
    state_file.parent().map(|dir| dir.join("profiles"))
}

/// The cache folder beside the state file `up` and `run` use; none where
/// there is no place for one.
pub fn default_dir() -> Option<PathBuf> {
    crate::state::default_path().ok().and_then(|p| dir_beside(&p))
}

/// Where the profile of the app whose hash is `hash` is kept.
pub fn path(dir: &Path, hash: &str) -> PathBuf {
    dir.join(format!("{hash}.json"))
}

/// The app's content hash (hex SHA-256).
pub fn app_hash(app: &App, sample: &Path, python: &str) -> std::io::Result<String> {
    let mut files = Vec::new();
    walk(&app.dir, &app.dir, &mut files)?;
    files.sort();
    let mut hash = Context::new(&SHA256);
    // Every part length-prefixed: no two contents hash alike by shifting bytes.
    let mut part = |bytes: &[u8]| {
        hash.update(&(bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    part(VERSION);
    part(python.as_bytes());
    for (relative, full) in &files {
        part(relative.as_bytes());
        part(&std::fs::read(full)?);
    }
    part(sample.to_string_lossy().as_bytes());
    part(&std::fs::read(sample)?);
    Ok(hash
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Every file under `dir` as (path relative to `root`, path). Links to
/// files count as their target; links to folders are not followed (they
/// may loop).
fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(root, &path, files)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            files.push((relative.to_string_lossy().into_owned(), path));
        }
    }
    Ok(())
}

/// The cached profile of `app`, its tasks marked cached; None when there
/// is none that covers every task of the app.
pub fn load(dir: &Path, hash: &str, app: &App) -> Option<ExecProfile> {
    let file = path(dir, hash);
    let bytes = std::fs::read(&file).ok()?;
    let mut profile: ExecProfile = match serde_json::from_slice(&bytes) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("warning: ignoring cached profile {}: {e}", file.display());
            return None;
        }
    };
    if !profile.complete() || app.tasks.iter().any(|t| !profile.tasks.contains_key(&t.name)) {
        return None;
    }
    for task in profile.tasks.values_mut() {
        if task.source == Source::Measured {
            task.source = Source::Cached;
        }
    }
    profile.place = format!("cache ({}, measured in {})", file.display(), profile.place);
    Some(profile)
}

/// Keeps `profile` (complete) for the app whose hash is `hash`; written
/// whole or not at all, so a concurrent `up` never reads half of it.
pub fn store(dir: &Path, hash: &str, profile: &ExecProfile) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let file = path(dir, hash);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(&serde_json::to_vec_pretty(profile).map_err(std::io::Error::other)?)?;
    tmp.persist(&file).map_err(|e| e.error)?;
    Ok(file)
}
