//! Static mapping files: YAML (or JSON) `task: node` pairs.

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
    let text = std::fs::read_to_string(path).map_err(|source| MappingFileError::Read {
        path: shown.clone(),
        source,
    })?;
    serde_yaml::from_str(&text).map_err(|e| MappingFileError::Parse {
        path: shown,
        detail: match e.location() {
            Some(l) => format!("line {} column {}: {e}", l.line(), l.column()),
            None => e.to_string(),
        },
    })
}
