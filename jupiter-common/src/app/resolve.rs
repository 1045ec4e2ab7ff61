//! Resolving task programs and listing sample inputs.

use std::path::{Component, Path, PathBuf};

/// Why a command's program cannot run; the message part of the app's error
/// (which adds the file and field).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProgramError {
    #[error("program {word:?} not found at {}", path.display())]
    Missing { word: String, path: PathBuf },
    #[error("program {word:?} at {} is not a file", path.display())]
    NotAFile { word: String, path: PathBuf },
    #[error("program {word:?} at {} is not executable (chmod +x it)", path.display())]
    NotExecutable { word: String, path: PathBuf },
    #[error("program {word:?} not found on PATH (to run a file of the app, write it with a '/', e.g. \"./{word}\")")]
    NotOnPath { word: String },
}

/// Resolves a command's first word: with a '/', relative to the app folder
/// (must exist and be executable); otherwise looked up on PATH.
pub(crate) fn program(app_dir: &Path, word: &str) -> Result<PathBuf, ProgramError> {
    let word_ = || word.to_string();
    if word.contains('/') {
        let path = normalize(&app_dir.join(word));
        let Ok(meta) = std::fs::metadata(&path) else {
            return Err(ProgramError::Missing { word: word_(), path });
        };
        if !meta.is_file() {
            return Err(ProgramError::NotAFile { word: word_(), path });
        }
        if !is_executable(&meta) {
            return Err(ProgramError::NotExecutable { word: word_(), path });
        }
        return Ok(path);
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    for entry in std::env::split_paths(&path_var) {
        if entry.as_os_str().is_empty() {
            continue;
        }
        let candidate = entry.join(word);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && is_executable(&meta) {
                return Ok(if candidate.is_absolute() {
                    candidate
                } else {
                    std::env::current_dir()
                        .map(|d| d.join(&candidate))
                        .unwrap_or(candidate)
                });
            }
        }
    }
    Err(ProgramError::NotOnPath { word: word_() })
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    true
}

/// Drops `.` components and folds `..` lexically (no symlink resolution, so
/// a symlinked program keeps its name).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Every regular file (symlinks followed) in `dir`, hidden files (`.name`)
/// excepted, sorted by file name.
pub(crate) fn folder_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if std::fs::metadata(&path).map(|m| m.is_file()).unwrap_or(false) {
            files.push(path);
        }
    }
    sort_by_file_name(&mut files);
    Ok(files)
}

pub(crate) fn sort_by_file_name(files: &mut [PathBuf]) {
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()).then_with(|| a.cmp(b)));
}
