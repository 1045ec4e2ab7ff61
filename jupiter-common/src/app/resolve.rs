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
    if let Some(path) = on_path(word.as_ref(), &std::env::var_os("PATH").unwrap_or_default()) {
        return Ok(path);
    }
    Err(ProgramError::NotOnPath { word: word_() })
}

/// The executable file `word` names in the folders of `path_var` (a
/// `PATH` value), made absolute; empty entries are skipped.
pub(crate) fn on_path(word: &std::ffi::OsStr, path_var: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .filter(|entry| !entry.as_os_str().is_empty())
        .map(|entry| entry.join(word))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|meta| meta.is_file() && is_executable(&meta))
        })
        .map(|candidate| {
            if candidate.is_absolute() {
                candidate
            } else {
                std::env::current_dir()
                    .map(|d| d.join(&candidate))
                    .unwrap_or(candidate)
            }
        })
}

#[cfg(unix)]
pub(crate) fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
pub(crate) fn is_executable(_meta: &std::fs::Metadata) -> bool {
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
