//! Static mapping files: YAML (or JSON) `task: node` pairs.

use crate::deployment::Scheduler;
use jupiter_common::app::text::{self, TextError};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum MappingFileError {
    #[error("mapping file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("mapping file {path}: {detail} (expected lines like `task0: node1`)")]
    Parse { path: String, detail: String },
}

pub fn load(path: &Path) -> Result<BTreeMap<String, String>, MappingFileError> {
    let shown = path.display().to_string();
    let text = text::read(path).map_err(|e| match e {
        TextError::Io(source) => MappingFileError::Read {
            path: shown.clone(),
            source,
        },
        TextError::NotUtf8(at) => MappingFileError::Parse {
            path: shown.clone(),
            detail: at.to_string(),
        },
    })?;
    serde_yaml::from_str(&text).map_err(|e| MappingFileError::Parse {
        path: shown,
        detail: text::yaml_error(&e),
    })
}

/// The scheduler and static mapping a user asked for: `--scheduler` wins, a
/// mapping file implies `static`, else `default` decides given the app's
/// own mapping (which a mapping file replaces).
pub fn resolve(
    app_mapping: &BTreeMap<String, String>,
    file: Option<&Path>,
    chosen: Option<Scheduler>,
    default: impl FnOnce(&BTreeMap<String, String>) -> Scheduler,
) -> Result<(Scheduler, BTreeMap<String, String>), MappingFileError> {
    let mapping = match file {
        Some(path) => load(path)?,
        None => app_mapping.clone(),
    };
    let scheduler = match (chosen, file) {
        (Some(s), _) => s,
        (None, Some(_)) => Scheduler::Static,
        (None, None) => default(&mapping),
    };
    Ok((scheduler, mapping))
}
