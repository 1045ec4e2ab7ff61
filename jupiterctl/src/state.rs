//! The state file of a deployment started with `jupiterctl up`, so that
//! `submit`, `status` and `down` in another shell can find it again.
//! Location: `$JUPITER_STATE`, else `$HOME/.jupiter/deployment.json`. What
//! it holds is a [`DeploymentState`].

use crate::deployment::DeploymentState;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no deployment is up (no state file at {0}); start one with `jupiterctl up APP_DIR`")]
    NotUp(PathBuf),
    #[error("state file {path}: {detail}")]
    Bad { path: PathBuf, detail: String },
    #[error("a deployment is already up ({owner}, state file {path}); stop it with `jupiterctl down`")]
    AlreadyUp { owner: String, path: PathBuf },
    #[error("cannot locate the state file: set JUPITER_STATE or HOME")]
    NoLocation,
}

/// Where the state file lives.
pub fn default_path() -> Result<PathBuf, StateError> {
    if let Some(p) = std::env::var_os(jupiter_common::env::STATE) {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").ok_or(StateError::NoLocation)?;
    Ok(PathBuf::from(home).join(".jupiter").join("deployment.json"))
}

pub fn read(path: &Path) -> Result<DeploymentState, StateError> {
    let bad = |detail: String| StateError::Bad {
        path: path.to_path_buf(),
        detail,
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StateError::NotUp(path.to_path_buf()))
        }
        Err(e) => return Err(bad(e.to_string())),
    };
    serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))
}

/// Writes the state file atomically (a reader never sees half of it).
pub fn write(path: &Path, state: &DeploymentState) -> Result<(), StateError> {
    let bad = |detail: String| StateError::Bad {
        path: path.to_path_buf(),
        detail,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
    }
    let json = serde_json::to_vec_pretty(state).map_err(|e| bad(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json).map_err(|e| bad(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| bad(e.to_string()))
}

/// Removes the state file; one already gone is fine.
pub fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "removing the state file");
        }
    }
}
