//! The state file of a deployment started with `jupiterctl up`, so that
//! `submit`, `status` and `down` in another shell can find it.
//! Location: `$JUPITER_STATE`, else `$HOME/.jupiter/deployment.json`.

use crate::local::{Endpoints, Summary};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeploymentState {
    pub pid: u32,
    pub backend: String,
    pub app: PathBuf,
    pub output: PathBuf,
    pub algorithm: String,
    #[serde(default)]
    pub predicted_makespan_secs: f64,
    pub mapping: BTreeMap<String, String>,
    pub endpoints: Endpoints,
    /// The Docker deployment's id, on the docker backend: its containers
    /// outlive the `up` process.
    #[serde(default)]
    pub docker: Option<String>,
    /// The Kubernetes deployment's name, on the kubernetes backend.
    #[serde(default)]
    pub kubernetes: Option<String>,
}

impl DeploymentState {
    /// What keeps the deployment alive, in words.
    pub fn owner(&self) -> String {
        match (&self.docker, &self.kubernetes) {
            (Some(id), _) => format!("Docker deployment {id}"),
            (_, Some(name)) => format!("Kubernetes deployment {name}"),
            _ => format!("pid {}", self.pid),
        }
    }

    /// The state of a deployment this process just brought up.
    pub fn of(backend: &str, app: PathBuf, summary: &Summary) -> Self {
        Self {
            pid: std::process::id(),
            backend: backend.into(),
            app,
            output: summary.output.clone(),
            algorithm: summary.algorithm.clone(),
            predicted_makespan_secs: summary.predicted_makespan_secs,
            mapping: summary.mapping.clone(),
            endpoints: summary.endpoints.clone(),
            docker: None,
            kubernetes: None,
        }
    }

    /// A deployment known only by circe-home's URL (no state file).
    pub fn remote(circe_home: &str) -> Self {
        Self {
            pid: 0,
            backend: "remote".into(),
            app: PathBuf::new(),
            output: PathBuf::from("(circe-home's output folder)"),
            algorithm: String::new(),
            predicted_makespan_secs: 0.0,
            mapping: BTreeMap::new(),
            endpoints: Endpoints {
                drupe_central: String::new(),
                wave_home: String::new(),
                circe_home: circe_home.to_string(),
                nodes: Vec::new(),
                workers: BTreeMap::new(),
            },
            docker: None,
            kubernetes: None,
        }
    }
}

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
    if let Some(p) = std::env::var_os("JUPITER_STATE") {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").ok_or(StateError::NoLocation)?;
    Ok(PathBuf::from(home).join(".jupiter").join("deployment.json"))
}

pub fn read(path: &Path) -> Result<DeploymentState, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StateError::NotUp(path.to_path_buf()))
        }
        Err(e) => {
            return Err(StateError::Bad {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| StateError::Bad {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

/// Whether the process that wrote a state file is still alive.
pub fn alive(pid: u32) -> bool {
    // Signal 0 checks existence without touching the process.
    // pid 0 would ask about our own process group: never a deployment.
    pid != 0 && unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// Writes the state file, refusing if a live deployment owns it.
pub fn write(path: &Path, state: &DeploymentState) -> Result<(), StateError> {
    let bad = |detail: String| StateError::Bad {
        path: path.to_path_buf(),
        detail,
    };
    if let Ok(existing) = read(path) {
        if existing.pid != state.pid && alive(existing.pid) {
            return Err(StateError::AlreadyUp {
                owner: existing.owner(),
                path: path.to_path_buf(),
            });
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
    }
    let json = serde_json::to_vec_pretty(state).map_err(|e| bad(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json).map_err(|e| bad(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| bad(e.to_string()))
}

/// Asks the deployment's process to stop (SIGTERM: its graceful path).
pub fn signal_stop(pid: u32) -> std::io::Result<()> {
    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
