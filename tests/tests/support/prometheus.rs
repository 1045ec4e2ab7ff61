//! What the observability tests share: the metric names the roles export
//! (the interface the dashboard is checked against), the metric names a
//! PromQL expression selects, Debian's `prometheus`/`promtool` (installed
//! if missing), and a real Prometheus server with a few calls of its HTTP
//! API. Included by `#[path]` from observability_config.rs and
//! prometheus_scrape.rs.

#![allow(dead_code)] // each test file uses part of it

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The metrics the roles export, as fixed with the lead: counters with
/// their `_total`, histograms by their base name (see [`HISTOGRAMS`]).
/// A dashboard query may only name these.
pub const METRICS: &[&str] = &[
    // every role
    "jupiter_role_info",
    "jupiter_role_start_time_seconds",
    "jupiter_role_restarts_total",
    "jupiter_trace_spans_exported_total",
    "jupiter_trace_spans_dropped_total",
    // circe-home
    "jupiter_inputs_submitted_total",
    "jupiter_inputs_done_total",
    "jupiter_inputs_failed_total",
    "jupiter_inputs_in_flight",
    "jupiter_input_makespan_seconds",
    // circe-worker
    "jupiter_task_runs_total",
    "jupiter_task_run_seconds",
    "jupiter_task_queue_wait_seconds",
    "jupiter_task_transfer_seconds",
    "jupiter_queue_depth",
    "jupiter_push_bytes_total",
    "jupiter_push_retries_total",
    // drupe-central
    "jupiter_link_bandwidth_bytes_per_second",
    "jupiter_link_rtt_seconds",
    "jupiter_probe_rounds_total",
    // drupe-droplet
    "jupiter_node_cpu_utilization",
    "jupiter_node_memory_used_bytes",
    "jupiter_node_memory_total_bytes",
    // wave-home
    "jupiter_mappings_total",
];

/// The histograms among [`METRICS`]: Prometheus stores each as
/// `_bucket{le}`, `_sum` and `_count` series, never under the bare name.
pub const HISTOGRAMS: &[&str] = &[
    "jupiter_input_makespan_seconds",
    "jupiter_task_run_seconds",
    "jupiter_task_queue_wait_seconds",
    "jupiter_task_transfer_seconds",
];

/// Every series name a query can select: the plain metrics, and each
/// histogram's three.
pub fn series_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for m in METRICS {
        if HISTOGRAMS.contains(m) {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{m}{suffix}"));
            }
        } else {
            names.insert(m.to_string());
        }
    }
    names
}

/// PromQL words that are neither metrics nor functions.
const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "atan2",
    "inf",
    "nan",
];

/// PromQL's aggregation operators, which may take their `by (...)` before
/// the parenthesis (`sum by (le) (...)`).
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// The metric names `expr` selects: identifiers that are not functions,
/// keywords, label names (inside `{}` or a grouping's `()`), strings,
/// durations or numbers. Enough PromQL for dashboard queries; a form it
/// does not know shows up as an unexpected name, not as a silent pass.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // Whether the last word was a grouping keyword, whose `(...)` holds
    // label names.
    let mut grouping = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' && c != '`' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => {
                // Label matchers and ranges: skip to the close, strings
                // included (a `}` inside a matcher's value is a string's).
                let close = if c == '{' { '}' } else { ']' };
                i += 1;
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' || chars[i] == '\'' {
                        let quote = chars[i];
                        i += 1;
                        while i < chars.len() && chars[i] != quote {
                            if chars[i] == '\\' {
                                i += 1;
                            }
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if grouping => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
                grouping = false;
            }
            c if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) => {
                // A number (0.95, 1e3, 0x1f) or a duration (5m): one token.
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                let lower = word.to_ascii_lowercase();
                if ["by", "without", "on", "ignoring", "group_left", "group_right"].contains(&lower.as_str())
                {
                    grouping = true;
                } else if KEYWORDS.contains(&lower.as_str())
                    || AGGREGATIONS.contains(&lower.as_str())
                    || next == Some(&'(')
                {
                    // a keyword, or a function called
                } else {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// The root of the checkout.
pub fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn observability_dir() -> PathBuf {
    checkout().join("docker/observability")
}

/// Where Debian's package puts them.
pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const PROMTOOL: &str = "/usr/bin/promtool";

/// Debian's `prometheus` package (Prometheus and promtool), installed
/// with apt-get if it is not there yet (.ci/run installs it too; this is
/// for a developer's `cargo test`). Once per test binary.
pub fn ensure_installed() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        if Path::new(PROMETHEUS).exists() && Path::new(PROMTOOL).exists() {
            return;
        }
        eprintln!("installing Debian's prometheus package (prometheus, promtool)...");
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        // Without the recommended node exporter, which a machine that
        // starts services would run on 9100, drupe-central's metrics port.
        let install = ["install", "-y", "-q", "--no-install-recommends", "prometheus"];
        let installed = apt(&install) || (apt(&["update", "-q"]) && apt(&install));
        assert!(
            installed && Path::new(PROMTOOL).exists(),
            "could not install Debian's prometheus package: run `apt-get install -y prometheus` (as root)"
        );
    });
}

/// `promtool check config FILE`: its success and what it said.
pub fn promtool_check_config(file: &Path) -> (bool, String) {
    ensure_installed();
    let out = Command::new(PROMTOOL)
        .args(["check", "config"])
        .arg(file)
        .output()
        .expect("promtool runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// A free TCP port on the loopback (free when asked; nothing holds it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A Prometheus server of this test, on the loopback; killed when dropped,
/// a failed test's included.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus with `config`, its data and log in `dir`.
    pub fn start(config: &Path, dir: &Path) -> Prometheus {
        ensure_installed();
        let port = free_port();
        let log = dir.join("prometheus.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("prometheus starts");
        Prometheus { child, port, log }
    }

    /// What it logged so far (for a failure's message).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// GET `path` (with its query) of the HTTP API, as JSON; None until it
    /// answers.
    pub async fn get(&self, path: &str) -> Option<Value> {
        http_get_json(self.port, path).await
    }

    /// `/api/v1/query?query=EXPR`: the result vector, or the error text.
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let answer = self
            .get(&format!("/api/v1/query?query={}", url_encode(expr)))
            .await
            .ok_or("no answer")?;
        if answer["status"] != "success" {
            return Err(format!("{}: {}", answer["errorType"], answer["error"]));
        }
        Ok(answer["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// `/api/v1/targets`: the active targets.
    pub async fn targets(&self) -> Vec<Value> {
        self.get("/api/v1/targets")
            .await
            .and_then(|v| v["data"]["activeTargets"].as_array().cloned())
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET over HTTP/1.0 (no client library in this crate; Prometheus
/// answers and closes), its body parsed as JSON.
async fn http_get_json(port: u16, path: &str) -> Option<Value> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let request =
            format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8_lossy(&response);
        let (_, body) = text.split_once("\r\n\r\n")?;
        serde_json::from_str(body).ok()
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .ok()
        .flatten()
}

/// Percent-encodes everything but the unreserved characters.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every PromQL expression of the dashboard with a Prometheus data source,
/// with the panel's title, the dashboard's variables replaced by what
/// "All" means (`.*`) so Prometheus itself can run them.
pub fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or_default().to_string();
        for target in panel["targets"].as_array().into_iter().flatten() {
            let source = if target["datasource"].is_object() {
                &target["datasource"]
            } else {
                &panel["datasource"]
            };
            if source["type"] == "prometheus" {
                let expr = target["expr"].as_str().unwrap_or_default().to_string();
                out.push((title.clone(), expr));
            }
        }
    }
    out
}

/// Every panel, those inside rows included.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(panel);
        out.extend(panel["panels"].as_array().into_iter().flatten());
    }
    out
}

/// `expr` with the dashboard's variables as "All" selects them.
pub fn with_all_selected(expr: &str) -> String {
    expr.replace("$deployment", ".*").replace("$task", ".*")
}

pub fn dashboard() -> Value {
    let path = observability_dir().join("dashboards/jupiter.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard file"))
        .expect("dashboard JSON parses")
}
