//! Telemetry shared by every binary and role: logs to stderr, and per
//! role the traces it exports over OTLP (one trace per input across every
//! role, [`propagation`]) and the Prometheus metrics it serves
//! ([`metrics`]). Each role has its own [`Telemetry`] (its own
//! `service.name`, registry and listener), also when several roles share
//! one process as on the local backend.

pub mod export;
pub mod metrics;
pub mod propagation;
pub mod settings;
pub mod spans;

pub use self::metrics::Metrics;
pub use settings::{MetricsListen, Settings, TelemetryFlags};
pub use spans::OpenSpan;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use opentelemetry_sdk::Resource;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// How long a stopping role waits for its last spans to be sent: with the
/// server's own 2 s for open calls, within the 5 s a supervisor gives a
/// role between SIGTERM and SIGKILL.
const FLUSH_LIMIT: Duration = Duration::from_secs(2);

type Base = tracing_subscriber::layer::Layered<EnvFilter, tracing_subscriber::Registry>;
type OtelLayer = tracing_opentelemetry::OpenTelemetryLayer<Base, Tracer>;

/// Set up by a role's own binary (one role per process) that exports
/// spans: the `tracing-opentelemetry` layer its [`Telemetry`] fills in
/// with the role's tracer once it has one, so that the role's `tracing`
/// spans go out as OTLP spans too.
static TRACING_LAYER: OnceLock<tracing_subscriber::reload::Handle<Option<OtelLayer>, Base>> = OnceLock::new();

/// Logs to stderr, filtered by `RUST_LOG` (default `info`, or `warn` when
/// `quiet`, as `jupiterctl` wants so its tables stay readable).
pub fn init(quiet: bool) {
    init_with(quiet, false);
}

/// [`init`] for a role's own binary; with `export` (an OTLP endpoint is
/// set), the role's `tracing` spans also become OTLP spans through
/// `tracing-opentelemetry`, once [`Telemetry::start`] has the role's tracer.
pub fn init_role(export: bool) {
    init_with(false, export);
}

fn init_with(quiet: bool, export: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let otel = export.then(|| {
        let (layer, handle) = tracing_subscriber::reload::Layer::new(None::<OtelLayer>);
        let _ = TRACING_LAYER.set(handle);
        layer
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(logs)
        .try_init();
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("--metrics-listen {address}: {source}")]
    MetricsListen { address: String, source: std::io::Error },
    #[error("--otlp-endpoint {endpoint}: {message}")]
    Exporter { endpoint: String, message: String },
}

/// A role's tracer, metrics and metrics listener. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    tracer: Option<Tracer>,
    provider: Option<SdkTracerProvider>,
    queue: Option<export::QueueProcessor>,
    metrics: Metrics,
    metrics_addr: Option<SocketAddr>,
    _listener: Option<tokio_util::task::AbortOnDropHandle<()>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("role", &self.settings.role)
            .field("otlp_endpoint", &self.settings.otlp_endpoint)
            .field("metrics_addr", &self.metrics_addr)
            .finish()
    }
}

impl Telemetry {
    /// Telemetry that records metrics (served nowhere) and traces nothing.
    pub fn off(role: crate::role::Role) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings: Settings::off(role),
                tracer: None,
                provider: None,
                queue: None,
                metrics: Metrics::new(),
                metrics_addr: None,
                _listener: None,
            }),
        }
    }

    /// Starts the role's exporter (an OTLP endpoint set) and metrics
    /// listener (not `off`). Call inside the role's runtime.
    pub async fn start(settings: &Settings) -> Result<Self, TelemetryError> {
        let metrics = Metrics::new();
        let mut info: Vec<(&'static str, &str)> = vec![
            ("role", settings.role.name()),
            ("deployment", &settings.deployment),
        ];
        info.push(("node", settings.node.as_deref().unwrap_or("")));
        info.push(("task", settings.task.as_deref().unwrap_or("")));
        metrics.gauge("jupiter_role_info", &info).set(1.0);
        metrics.gauge("jupiter_role_start_time_seconds", &[]).set(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64(),
        );
        metrics
            .counter("jupiter_role_restarts_total", &[])
            .absolute(settings.restarts);
        let exported = metrics.counter("jupiter_trace_spans_exported_total", &[]);
        let dropped = metrics.counter("jupiter_trace_spans_dropped_total", &[]);

        let (tracer, provider, queue) = match &settings.otlp_endpoint {
            None => (None, None, None),
            Some(endpoint) => {
                let (tracer, provider, queue) = tracer(settings, endpoint, exported, dropped)?;
                (Some(tracer), Some(provider), Some(queue))
            }
        };

        let (metrics_addr, listener) = match &settings.metrics {
            MetricsListen::Off => (None, None),
            MetricsListen::Default(address) | MetricsListen::At(address) => {
                match listen_metrics(address, matches!(settings.metrics, MetricsListen::At(_))).await {
                    Ok(listener) => {
                        let addr = listener.local_addr().ok();
                        (addr, Some(self::metrics::serve(metrics.clone(), listener)))
                    }
                    Err(source) if matches!(settings.metrics, MetricsListen::At(_)) => {
                        return Err(TelemetryError::MetricsListen {
                            address: address.clone(),
                            source,
                        })
                    }
                    Err(e) => {
                        tracing::warn!(address = %address, error = %e, "no metrics listener: the default port is taken");
                        (None, None)
                    }
                }
            }
        };
        if let Some(addr) = metrics_addr {
            tracing::info!(role = %settings.role, address = %addr, "metrics at /metrics");
        }
        Ok(Self {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                tracer,
                provider,
                queue,
                metrics,
                metrics_addr,
                _listener: listener,
            }),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The role's tracer; None when it exports no spans.
    pub fn tracer(&self) -> Option<&Tracer> {
        self.inner.tracer.as_ref()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Where the metrics listener is bound.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.inner.metrics_addr
    }

    /// Sends the spans still queued (waiting at most two seconds): a role
    /// calls it on its way out (SIGTERM, Ctrl-C, `down`).
    pub async fn flush(&self) {
        if let Some(queue) = &self.inner.queue {
            queue.flush(FLUSH_LIMIT).await;
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Our processor's shutdown is immediate; this only marks the
            // provider shut so no span starts after.
            let _ = provider.shutdown();
        }
    }
}

/// Binds the metrics listener; an address given on purpose is tried for
/// a while when taken (the role's previous run may still be letting go
/// of it after a restart).
async fn listen_metrics(address: &str, insist: bool) -> std::io::Result<tokio::net::TcpListener> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        match crate::role::listen_shared(address).await {
            Err(e)
                if insist
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// The role's tracer provider over the OTLP exporter, its spans going
/// through a bounded queue.
fn tracer(
    settings: &Settings,
    endpoint: &str,
    exported: ::metrics::Counter,
    dropped: ::metrics::Counter,
) -> Result<(Tracer, SdkTracerProvider, export::QueueProcessor), TelemetryError> {
    use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
    use opentelemetry_sdk::trace::SpanExporter as _;
    let mut attributes = vec![
        KeyValue::new("jupiter.role", settings.role.name()),
        KeyValue::new("jupiter.deployment", settings.deployment.clone()),
    ];
    if let Some(node) = &settings.node {
        attributes.push(KeyValue::new("jupiter.node", node.clone()));
    }
    if let Some(task) = &settings.task {
        attributes.push(KeyValue::new("jupiter.task", task.clone()));
    }
    let resource = Resource::builder_empty()
        .with_service_name(settings.service_name())
        .with_attributes(attributes)
        .build();
    let channel = crate::serve::plain_channel(endpoint).map_err(|e| TelemetryError::Exporter {
        endpoint: endpoint.to_string(),
        message: e.to_string(),
    })?;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_channel(channel)
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| TelemetryError::Exporter {
            endpoint: endpoint.to_string(),
            message: e.to_string(),
        })?;
    exporter.set_resource(&resource);
    let (processor, sender) = export::queue(exported, dropped);
    let flush = processor.clone();
    tokio::spawn(sender.run(exporter));
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("jupiter");
    if let Some(layer) = TRACING_LAYER.get() {
        let _ = layer.modify(|l| *l = Some(tracing_opentelemetry::layer().with_tracer(tracer.clone())));
    }
    Ok((tracer, provider, flush))
}

/// Resolves when the process gets Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
