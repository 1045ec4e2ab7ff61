//! Node lists: the emulated nodes of a deployment and what each may use.
//!
//! ```yaml
//! nodes:
//!   - name: edge0
//!     cpus: 0.5        # CPU share of every container of the node
//!     memory: 256MiB   # memory limit of every container of the node
//!   - name: cloud0
//!     cpus: 2
//!     memory: 2GiB
//! ```
//!
//! Without a list, `--nodes N` gives N nodes `node0..` with the defaults.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;

/// CPUs of a node when the list does not say.
pub const DEFAULT_CPUS: f64 = 1.0;
/// Memory of a node when the list does not say.
pub const DEFAULT_MEMORY: u64 = 512 * 1024 * 1024;
/// Docker refuses containers with less memory than this.
const MIN_MEMORY: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    pub name: String,
    pub cpus: f64,
    pub memory_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeListError {
    #[error("node list {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("node list {path}: {detail}")]
    Parse { path: String, detail: String },
    #[error("node list {path}: node {index} ({name:?}): {detail}")]
    Node {
        path: String,
        index: usize,
        name: String,
        detail: String,
    },
    #[error("node list {path}: lists no nodes")]
    Empty { path: String },
    #[error("--nodes must be at least 1")]
    NoNodes,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    nodes: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    cpus: Option<f64>,
    memory: Option<serde_yaml::Value>,
}

/// `count` identical nodes `node0..`.
pub fn uniform(count: usize) -> Result<Vec<NodeSpec>, NodeListError> {
    if count == 0 {
        return Err(NodeListError::NoNodes);
    }
    Ok((0..count)
        .map(|i| NodeSpec {
            name: format!("node{i}"),
            cpus: DEFAULT_CPUS,
            memory_bytes: DEFAULT_MEMORY,
        })
        .collect())
}

/// Reads a node list file.
pub fn load(path: &Path) -> Result<Vec<NodeSpec>, NodeListError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| NodeListError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text, &shown)
}

/// Parses a node list; `path` only names it in errors.
pub fn parse(text: &str, path: &str) -> Result<Vec<NodeSpec>, NodeListError> {
    let file: File = serde_yaml::from_str(text).map_err(|e| NodeListError::Parse {
        path: path.to_string(),
        detail: match e.location() {
            Some(l) => format!("line {} column {}: {e}", l.line(), l.column()),
            None => e.to_string(),
        },
    })?;
    if file.nodes.is_empty() {
        return Err(NodeListError::Empty { path: path.into() });
    }
    let mut seen = BTreeSet::new();
    let mut nodes = Vec::new();
    for (index, entry) in file.nodes.into_iter().enumerate() {
        let bad = |detail: String| NodeListError::Node {
            path: path.to_string(),
            index,
            name: entry.name.clone(),
            detail,
        };
        if !valid_name(&entry.name) {
            return Err(bad(
                "name: use lowercase letters, digits and '-', starting with a letter, at most 40 characters"
                    .into(),
            ));
        }
        if !seen.insert(entry.name.clone()) {
            return Err(bad("name: listed twice".into()));
        }
        let cpus = entry.cpus.unwrap_or(DEFAULT_CPUS);
        if !(cpus.is_finite() && cpus >= 0.01) {
            return Err(bad(format!(
                "cpus: {cpus} is not a positive number (at least 0.01)"
            )));
        }
        let memory_bytes = match &entry.memory {
            None => DEFAULT_MEMORY,
            Some(value) => parse_memory(value).map_err(|d| bad(format!("memory: {d}")))?,
        };
        nodes.push(NodeSpec {
            name: entry.name,
            cpus,
            memory_bytes,
        });
    }
    Ok(nodes)
}

/// Node names end up in container and DNS names.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name.len() <= 40
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

/// Why a `memory:` value is refused.
#[derive(Debug, thiserror::Error)]
enum MemoryError {
    #[error("{0} is not a size")]
    NotText(String),
    #[error("{0:?} is not a size (try 512MiB or 2GiB)")]
    NotANumber(String),
    #[error("{text:?}: unknown unit {unit:?} (use MiB or GiB)")]
    Unit { text: String, unit: String },
    #[error("{0:?} is below the 16MiB a container needs")]
    TooSmall(String),
}

/// `536870912`, `512MiB`, `512m`, `2GiB`, `2g` -> bytes.
fn parse_memory(value: &serde_yaml::Value) -> Result<u64, MemoryError> {
    let text = match value {
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::String(s) => s.trim().to_string(),
        other => return Err(MemoryError::NotText(format!("{other:?}"))),
    };
    let lower = text.to_ascii_lowercase();
    let (digits, unit) = match lower.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => lower.split_at(i),
        None => (lower.as_str(), ""),
    };
    let Ok(n) = digits.parse::<f64>() else {
        return Err(MemoryError::NotANumber(text));
    };
    let factor: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(MemoryError::Unit {
                unit: other.to_string(),
                text,
            })
        }
    };
    let bytes = (n * factor) as u64;
    if bytes < MIN_MEMORY {
        return Err(MemoryError::TooSmall(text));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpus_and_memory() {
        let nodes = parse(
            "nodes:\n  - name: edge0\n    cpus: 0.5\n    memory: 256MiB\n  - name: cloud0\n    cpus: 2\n    memory: 2g\n  - name: plain\n",
            "n.yaml",
        )
        .expect("valid");
        assert_eq!(nodes[0].cpus, 0.5);
        assert_eq!(nodes[0].memory_bytes, 256 << 20);
        assert_eq!(nodes[1].memory_bytes, 2 << 30);
        assert_eq!(nodes[2].cpus, DEFAULT_CPUS);
        assert_eq!(nodes[2].memory_bytes, DEFAULT_MEMORY);
    }

    #[test]
    fn errors_name_the_file_node_and_field() {
        let err = parse("nodes:\n  - name: a\n    memory: lots\n", "n.yaml").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("n.yaml") && text.contains("node 0") && text.contains("memory"),
            "{text}"
        );
        let err = parse("nodes:\n  - name: a\n  - name: a\n", "n.yaml").unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
        let err = parse("nodes:\n  - name: a\n    cpus: 0\n", "n.yaml").unwrap_err();
        assert!(err.to_string().contains("cpus"), "{err}");
        let err = parse("nodes:\n  - name: Bad_Name\n", "n.yaml").unwrap_err();
        assert!(err.to_string().contains("name:"), "{err}");
        let err = parse("nodes:\n  - name: a\n    gpus: 1\n", "n.yaml").unwrap_err();
        assert!(
            err.to_string().contains("line 3") && err.to_string().contains("gpus"),
            "{err}"
        );
        assert!(matches!(
            parse("nodes: []\n", "n.yaml"),
            Err(NodeListError::Empty { .. })
        ));
        assert!(matches!(uniform(0), Err(NodeListError::NoNodes)));
    }
}
