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
//!     bandwidth: 200Mbit  # rate of the node's link, each way (Docker only)
//!     delay: 40ms         # one-way delay of the node's link (Docker, netem)
//! ```
//!
//! `bandwidth` is bits per second: a plain number, or with `bit`, `kbit`,
//! `Mbit` or `Gbit` (any case; decimal, as tc counts). `Mbps`-style units are
//! refused: tc reads `mbps` as megabytes per second, everyone else as
//! megabits, and a silent factor of 8 is worse than an error. `delay` needs
//! a unit, `ms` or `s`.
//!
//! Without a list, `--nodes N` gives N nodes `node0..` with the defaults.

use jupiter_common::app::text::{self, quote, TextError};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// CPUs of a node when the list does not say.
pub const DEFAULT_CPUS: f64 = 1.0;
/// Memory of a node when the list does not say.
pub const DEFAULT_MEMORY: u64 = 512 * 1024 * 1024;
/// Docker refuses containers with less memory than this.
const MIN_MEMORY: u64 = 16 * 1024 * 1024;
/// Below this a link cannot carry even DRUPE's probes in their timeout.
const MIN_BANDWIDTH: u64 = 100_000;
/// Above this tbf's token arithmetic (and a veth) stops meaning anything.
const MAX_BANDWIDTH: u64 = 100_000_000_000;
/// A longer delay would starve every timeout of the roles.
const MAX_DELAY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeSpec {
    pub name: String,
    pub cpus: f64,
    pub memory_bytes: u64,
    /// Rate of the node's link, each way; None: unshaped.
    pub bandwidth_bits_per_sec: Option<u64>,
    /// One-way delay of the node's link, each way; None: none added.
    pub delay: Option<Duration>,
}

impl NodeSpec {
    /// Whether its link is emulated (bandwidth or delay set).
    pub fn shaped(&self) -> bool {
        self.bandwidth_bits_per_sec.is_some() || self.delay.is_some()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeListError {
    #[error("node list {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("node list {path}: {detail}")]
    Parse { path: String, detail: String },
    #[error("node list {path}: node {index} ({}): {detail}", quote(name))]
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
#[serde(deny_unknown_fields, expecting = "a mapping with a `nodes:` list")]
struct File {
    nodes: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a node: a mapping of name, cpus, memory, bandwidth, delay"
)]
struct Entry {
    name: String,
    cpus: Option<f64>,
    memory: Option<serde_yaml::Value>,
    bandwidth: Option<serde_yaml::Value>,
    delay: Option<serde_yaml::Value>,
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
            bandwidth_bits_per_sec: None,
            delay: None,
        })
        .collect())
}

/// Which sizes a node list entry gives, rather than leaves to the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Given {
    pub cpus: bool,
    pub memory: bool,
}

/// Reads a node list file.
pub fn load(path: &Path) -> Result<Vec<NodeSpec>, NodeListError> {
    Ok(load_given(path)?.into_iter().map(|(node, _)| node).collect())
}

/// Reads a node list file, with which sizes each node gives (on
/// Kubernetes only given sizes become limits).
pub fn load_given(path: &Path) -> Result<Vec<(NodeSpec, Given)>, NodeListError> {
    let shown = path.display().to_string();
    let text = text::read(path).map_err(|e| match e {
        TextError::Io(source) => NodeListError::Read {
            path: shown.clone(),
            source,
        },
        TextError::NotUtf8(at) => NodeListError::Parse {
            path: shown.clone(),
            detail: at.to_string(),
        },
    })?;
    parse_given(&text, &shown)
}

/// Parses a node list; `path` only names it in errors.
pub fn parse(text: &str, path: &str) -> Result<Vec<NodeSpec>, NodeListError> {
    Ok(parse_given(text, path)?
        .into_iter()
        .map(|(node, _)| node)
        .collect())
}

fn parse_given(text: &str, path: &str) -> Result<Vec<(NodeSpec, Given)>, NodeListError> {
    let syntax = |detail: String| NodeListError::Parse {
        path: path.to_string(),
        detail,
    };
    // The YAML parser names a control character by its byte offset only.
    if let Some((line, column, c)) = text::yaml_control_character(text) {
        return Err(syntax(format!(
            "line {line} column {column}: control character {c:?} is not allowed in YAML (is this a text file?)"
        )));
    }
    let file: File = serde_yaml::from_str(text).map_err(|e| syntax(text::yaml_error(&e)))?;
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
        let bandwidth_bits_per_sec = match &entry.bandwidth {
            None => None,
            Some(value) => Some(parse_bandwidth(value).map_err(|d| bad(format!("bandwidth: {d}")))?),
        };
        let delay = match &entry.delay {
            None => None,
            Some(value) => Some(parse_delay(value).map_err(|d| bad(format!("delay: {d}")))?),
        };
        let given = Given {
            cpus: entry.cpus.is_some(),
            memory: entry.memory.is_some(),
        };
        let node = NodeSpec {
            name: entry.name,
            cpus,
            memory_bytes,
            bandwidth_bits_per_sec,
            delay,
        };
        nodes.push((node, given));
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
    NotText(&'static str),
    #[error("{} is not a size (try 512MiB or 2GiB)", quote(.0))]
    NotANumber(String),
    #[error("{}: unknown unit {} (use MiB or GiB)", quote(text), quote(unit))]
    Unit { text: String, unit: String },
    #[error("{} is below the 16MiB a container needs", quote(.0))]
    TooSmall(String),
}

/// `536870912`, `512MiB`, `512m`, `2GiB`, `2g` -> bytes.
fn parse_memory(value: &serde_yaml::Value) -> Result<u64, MemoryError> {
    let text = match value {
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::String(s) => s.trim().to_string(),
        other => return Err(MemoryError::NotText(kind(other))),
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

/// What a YAML value that is not a scalar is, in the user's words.
fn kind(value: &serde_yaml::Value) -> &'static str {
    match value {
        serde_yaml::Value::Null => "an empty value",
        serde_yaml::Value::Bool(_) => "true/false",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a mapping",
        serde_yaml::Value::Tagged(_) => "a tagged value",
        serde_yaml::Value::Number(_) | serde_yaml::Value::String(_) => "a scalar",
    }
}

/// The text of a scalar YAML value, numbers included.
fn scalar_text(value: &serde_yaml::Value) -> Option<String> {
    match value {
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::String(s) => Some(s.trim().to_string()),
        _ => None,
    }
}

/// `"20Mbit"` -> (20.0, "mbit"); `"5e6"` -> (5e6, "").
fn number_and_unit(text: &str) -> Option<(f64, String)> {
    let lower = text.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    // A plain number may be written 5e6 (YAML does).
    if let Ok(n) = lower.parse::<f64>() {
        return Some((n, String::new()));
    }
    Some((digits.parse::<f64>().ok()?, unit.trim().to_string()))
}

/// Why a `bandwidth:` value is refused.
#[derive(Debug, thiserror::Error)]
enum BandwidthError {
    #[error("{0} is not a rate (try 20Mbit)")]
    NotText(&'static str),
    #[error("{} is not a rate (try 20Mbit, 500kbit or 1Gbit)", quote(.0))]
    NotANumber(String),
    #[error(
        "{}: {unit:?} is ambiguous (tc reads it as bytes per second, most people as bits); write {suggest}",
        quote(text)
    )]
    Ambiguous {
        text: String,
        unit: String,
        suggest: String,
    },
    #[error("{}: unknown unit {} (use bit, kbit, Mbit or Gbit)", quote(text), quote(unit))]
    Unit { text: String, unit: String },
    #[error("{} is out of range (100kbit to 100Gbit)", quote(.0))]
    Range(String),
}

/// `20Mbit`, `500kbit`, `1gbit`, `20000000` -> bits per second.
fn parse_bandwidth(value: &serde_yaml::Value) -> Result<u64, BandwidthError> {
    let text = scalar_text(value).ok_or_else(|| BandwidthError::NotText(kind(value)))?;
    let (n, unit) = number_and_unit(&text).ok_or_else(|| BandwidthError::NotANumber(text.clone()))?;
    let factor: f64 = match unit.as_str() {
        "" | "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "bps" | "kbps" | "mbps" | "gbps" | "b/s" | "kb/s" | "mb/s" | "gb/s" => {
            return Err(BandwidthError::Ambiguous {
                suggest: format!(
                    "{n}{}",
                    match unit.chars().next() {
                        Some('k') => "kbit",
                        Some('m') => "Mbit",
                        Some('g') => "Gbit",
                        _ => "bit",
                    }
                ),
                text,
                unit,
            })
        }
        _ => return Err(BandwidthError::Unit { text, unit }),
    };
    let bits = n * factor;
    if !(bits.is_finite() && (MIN_BANDWIDTH as f64..=MAX_BANDWIDTH as f64).contains(&bits)) {
        return Err(BandwidthError::Range(text));
    }
    Ok(bits.round() as u64)
}

/// Why a `delay:` value is refused.
#[derive(Debug, thiserror::Error)]
enum DelayError {
    #[error("{0} is not a duration (try 40ms)")]
    NotText(&'static str),
    #[error("{} is not a duration (try 40ms or 0.2s)", quote(.0))]
    NotANumber(String),
    #[error("{} needs a unit: ms or s", quote(.0))]
    NoUnit(String),
    #[error("{}: unknown unit {} (use ms or s)", quote(text), quote(unit))]
    Unit { text: String, unit: String },
    #[error("{} is out of range (more than 0, at most 10s)", quote(.0))]
    Range(String),
}

/// `40ms`, `0.2s` -> a duration.
fn parse_delay(value: &serde_yaml::Value) -> Result<Duration, DelayError> {
    let text = scalar_text(value).ok_or_else(|| DelayError::NotText(kind(value)))?;
    let (n, unit) = number_and_unit(&text).ok_or_else(|| DelayError::NotANumber(text.clone()))?;
    let secs = match unit.as_str() {
        "" => return Err(DelayError::NoUnit(text)),
        "ms" => n / 1e3,
        "s" => n,
        _ => return Err(DelayError::Unit { text, unit }),
    };
    if !(secs.is_finite() && secs > 0.0 && secs <= MAX_DELAY.as_secs_f64()) {
        return Err(DelayError::Range(text));
    }
    Ok(Duration::from_secs_f64(secs))
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

    #[test]
    fn reads_bandwidth_and_delay() {
        let nodes = parse(
            "nodes:\n  - {name: edge0, cpus: 0.5, memory: 256MiB, bandwidth: 20Mbit}\n  \
             - {name: cloud0, cpus: 1.5, memory: 1GiB, bandwidth: 200Mbit, delay: 40ms}\n  \
             - {name: a, bandwidth: 500KBIT, delay: 0.25s}\n  - {name: b, bandwidth: 1gbit}\n  \
             - {name: c, bandwidth: 5000000}\n  - {name: d, bandwidth: 1.5 Mbit}\n  - {name: e}\n",
            "n.yaml",
        )
        .expect("valid");
        let rates: Vec<Option<u64>> = nodes.iter().map(|n| n.bandwidth_bits_per_sec).collect();
        assert_eq!(
            rates,
            [
                Some(20_000_000),
                Some(200_000_000),
                Some(500_000),
                Some(1_000_000_000),
                Some(5_000_000),
                Some(1_500_000),
                None
            ]
        );
        assert_eq!(nodes[0].delay, None);
        assert_eq!(nodes[1].delay, Some(Duration::from_millis(40)));
        assert_eq!(nodes[2].delay, Some(Duration::from_millis(250)));
        assert!(nodes[0].shaped() && !nodes[6].shaped());
        assert_eq!(nodes[1].memory_bytes, 1 << 30);
    }

    #[test]
    fn bad_bandwidth_and_delay_name_node_and_field() {
        for (value, want) in [
            ("bandwidth: 20Mbps", "ambiguous"),
            ("bandwidth: 20MBps", "write 20Mbit"),
            ("bandwidth: 20M", "unknown unit"),
            ("bandwidth: fast", "not a rate"),
            ("bandwidth: 10bit", "out of range"),
            ("bandwidth: [1]", "not a rate"),
            ("delay: 40", "needs a unit"),
            ("delay: 40min", "unknown unit"),
            ("delay: 0ms", "out of range"),
            ("delay: 11s", "out of range"),
        ] {
            let text = format!("nodes:\n  - name: ok\n  - name: edge1\n    {value}\n");
            let err = parse(&text, "n.yaml").unwrap_err().to_string();
            let field = value.split(':').next().unwrap_or_default();
            assert!(
                err.contains("n.yaml")
                    && err.contains("node 1 (\"edge1\")")
                    && err.contains(&format!("{field}: "))
                    && err.contains(want),
                "{value}: {err}"
            );
        }
    }
}
