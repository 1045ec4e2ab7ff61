//! A role's Prometheus metrics: its own registry (several roles can share
//! one process, as on the local backend, and each still has its own
//! `/metrics`), the catalogue of every metric Jupiter exports with what it
//! means, and the HTTP listener that serves them.

use crate::role::Role;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::task::AbortOnDropHandle;

const METADATA: Metadata<'static> = Metadata::new("jupiter", Level::INFO, None);

/// Bucket bounds of every seconds histogram: a millisecond task to a
/// two-minute input.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric Jupiter exports: its name, kind, labels, the roles that
/// export it and what it means (its `# HELP`).
#[derive(Debug, Clone, Copy)]
pub struct MetricDoc {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    /// Empty: every role.
    pub roles: &'static [Role],
    pub help: &'static str,
}

const fn doc(
    name: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    roles: &'static [Role],
    help: &'static str,
) -> MetricDoc {
    MetricDoc {
        name,
        kind,
        labels,
        roles,
        help,
    }
}

use Kind::{Counter as C, Gauge as G, Histogram as H};
const HOME: &[Role] = &[Role::CirceHome];
const WORKER: &[Role] = &[Role::CirceWorker];
const PUSHERS: &[Role] = &[Role::CirceHome, Role::CirceWorker];
const CENTRAL: &[Role] = &[Role::DrupeCentral];
const DROPLET: &[Role] = &[Role::DrupeDroplet];
const ALL: &[Role] = &[];

/// Every metric the roles export: the README's table and the dashboard's
/// test read it from here.
pub const CATALOG: &[MetricDoc] = &[
    doc(
        "jupiter_role_info",
        G,
        &["role", "node", "task", "deployment"],
        ALL,
        "Always 1; the labels say which role, node, task and deployment this is.",
    ),
    doc(
        "jupiter_role_start_time_seconds",
        G,
        &[],
        ALL,
        "When the role started (Unix seconds): a change is a restart.",
    ),
    doc(
        "jupiter_role_restarts_total",
        C,
        &[],
        ALL,
        "Times the role was started again after it died, where a supervisor restarts it (`--processes`).",
    ),
    doc(
        "jupiter_trace_spans_exported_total",
        C,
        &[],
        ALL,
        "Spans sent to the OTLP endpoint.",
    ),
    doc(
        "jupiter_trace_spans_dropped_total",
        C,
        &[],
        ALL,
        "Spans lost: the export queue was full or the endpoint refused or could not be reached.",
    ),
    doc(
        "jupiter_inputs_submitted_total",
        C,
        &[],
        HOME,
        "Inputs submitted to circe-home.",
    ),
    doc(
        "jupiter_inputs_done_total",
        C,
        &[],
        HOME,
        "Inputs whose every output was delivered.",
    ),
    doc(
        "jupiter_inputs_failed_total",
        C,
        &[],
        HOME,
        "Inputs that failed (a task failed or an output could not be sent).",
    ),
    doc(
        "jupiter_inputs_in_flight",
        G,
        &[],
        HOME,
        "Inputs submitted and not finished.",
    ),
    doc(
        "jupiter_input_makespan_seconds",
        H,
        &[],
        HOME,
        "End-to-end time of each input: submitted to last output delivered.",
    ),
    doc(
        "jupiter_task_runs_total",
        C,
        &["task", "node", "outcome"],
        WORKER,
        "Task runs, by outcome (ok, failed).",
    ),
    doc(
        "jupiter_task_run_seconds",
        H,
        &["task", "node"],
        WORKER,
        "How long the task's program ran for one input.",
    ),
    doc(
        "jupiter_task_queue_wait_seconds",
        H,
        &["task", "node"],
        WORKER,
        "From an input's files all being durable to the task starting on it.",
    ),
    doc(
        "jupiter_task_transfer_seconds",
        H,
        &["task", "node"],
        WORKER,
        "Time to stream one input's outputs to every child and have them acknowledged.",
    ),
    doc(
        "jupiter_queue_depth",
        G,
        &["task", "node"],
        WORKER,
        "Inputs waiting at the worker: files arriving, or complete and waiting for a slot.",
    ),
    doc(
        "jupiter_push_bytes_total",
        C,
        &["from", "to"],
        PUSHERS,
        "Bytes pushed from a task (or home) to a task (or home), acknowledged.",
    ),
    doc(
        "jupiter_push_retries_total",
        C,
        &["from", "to"],
        PUSHERS,
        "Pushes tried again after a failed attempt.",
    ),
    doc(
        "jupiter_link_bandwidth_bytes_per_second",
        G,
        &["from", "to"],
        CENTRAL,
        "Bandwidth DRUPE last measured on each link.",
    ),
    doc(
        "jupiter_link_rtt_seconds",
        G,
        &["from", "to"],
        CENTRAL,
        "Round-trip time DRUPE last measured on each link.",
    ),
    doc(
        "jupiter_probe_rounds_total",
        C,
        &[],
        CENTRAL,
        "DRUPE probe rounds completed.",
    ),
    doc(
        "jupiter_node_cpu_utilization",
        G,
        &["node"],
        DROPLET,
        "Share of the node's CPU in use (0 to 1).",
    ),
    doc(
        "jupiter_node_memory_used_bytes",
        G,
        &["node"],
        DROPLET,
        "Memory in use on the node.",
    ),
    doc(
        "jupiter_node_memory_total_bytes",
        G,
        &["node"],
        DROPLET,
        "Memory the node has.",
    ),
    doc(
        "jupiter_mappings_total",
        C,
        &[],
        &[Role::WaveHome],
        "Mappings wave-home computed.",
    ),
];

/// A role's metrics: cheap to clone, each handle records into the role's
/// own registry.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    Key::from_parts(
        name,
        labels
            .iter()
            .map(|(k, v)| Label::new(*k, v.to_string()))
            .collect::<Vec<_>>(),
    )
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(SECONDS_BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            // The bounds above are a valid, non-empty list.
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        for doc in CATALOG {
            let name = KeyName::from(doc.name);
            let help = doc.help.into();
            let unit = doc.name.ends_with("_seconds").then_some(Unit::Seconds);
            match doc.kind {
                Kind::Counter => recorder.describe_counter(name, unit, help),
                Kind::Gauge => recorder.describe_gauge(name, unit, help),
                Kind::Histogram => recorder.describe_histogram(name, unit, help),
            }
        }
        Self {
            recorder: Arc::new(recorder),
        }
    }

    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        self.recorder.register_counter(&key(name, labels), &METADATA)
    }

    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        self.recorder.register_gauge(&key(name, labels), &METADATA)
    }

    pub fn histogram(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Histogram {
        self.recorder.register_histogram(&key(name, labels), &METADATA)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }

    /// Folds recorded histogram samples into their buckets; the listener
    /// runs it now and then so an unscraped role does not grow.
    pub fn upkeep(&self) {
        self.recorder.handle().run_upkeep();
    }
}

/// How often the registry is tidied when nobody scrapes it.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Serves `GET /metrics` (any path, in fact) on `listener` until the
/// returned task is aborted.
pub fn serve(metrics: Metrics, listener: tokio::net::TcpListener) -> AbortOnDropHandle<()> {
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    AbortOnDropHandle::new(tokio::spawn(async move {
        let _upkeep = {
            let metrics = metrics.clone();
            AbortOnDropHandle::new(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(UPKEEP_INTERVAL).await;
                    metrics.upkeep();
                }
            }))
        };
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let metrics = metrics.clone();
                    async move {
                        let (status, body) = match request.uri().path() {
                            "/metrics" | "/" => (http::StatusCode::OK, metrics.render()),
                            other => (
                                http::StatusCode::NOT_FOUND,
                                format!("no {other} here: try /metrics\n"),
                            ),
                        };
                        http::Response::builder()
                            .status(status)
                            .header(
                                http::header::CONTENT_TYPE,
                                "text/plain; version=0.0.4; charset=utf-8",
                            )
                            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_is_named_and_described_once() {
        let mut names = std::collections::BTreeSet::new();
        for doc in CATALOG {
            assert!(doc.name.starts_with("jupiter_"), "{}", doc.name);
            assert!(names.insert(doc.name), "{} twice", doc.name);
            assert_eq!(
                doc.kind == Kind::Counter,
                doc.name.ends_with("_total"),
                "{}",
                doc.name
            );
        }
        let metrics = Metrics::new();
        metrics.counter("jupiter_inputs_done_total", &[]).increment(2);
        metrics
            .histogram("jupiter_task_run_seconds", &[("task", "t1"), ("node", "n0")])
            .record(0.003);
        let text = metrics.render();
        assert!(
            text.contains("# HELP jupiter_inputs_done_total Inputs whose every output was delivered."),
            "{text}"
        );
        assert!(text.contains("jupiter_inputs_done_total 2"), "{text}");
        assert!(
            text.contains("jupiter_task_run_seconds_bucket{task=\"t1\",node=\"n0\",le=\"0.005\"} 1"),
            "{text}"
        );
    }
}
