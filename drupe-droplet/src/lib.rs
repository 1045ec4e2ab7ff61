//! DRUPE droplet: runs on every node. Answers other droplets' probes
//! (echoes and payload streams), measures its own links when drupe-central
//! asks (central staggers the asks so probes never share a link), and
//! reports its node's resources on an interval, which also registers the
//! node. The reports carry the node's speed, from a short CPU benchmark
//! kept current by [`monitor`], and its own CPU use from its cgroup.

mod args;
pub mod cgroup;
mod monitor;
pub mod probe;
pub mod resources;
pub mod speed;

pub use args::Args;

use jupiter_common::cli::FlagError;
use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
use jupiter_common::proto::drupe::droplet::v1::drupe_droplet_server::{DrupeDroplet, DrupeDropletServer};
use jupiter_common::proto::drupe::droplet::v1::{
    EchoReply, EchoRequest, LinkMeasurement, NodeResources, Payload, ProbeRequest, ResourcesRequest, SinkAck,
};
use jupiter_common::serve::Channel;
use jupiter_common::serve::{self, ServeError};
use jupiter_common::telemetry::Telemetry;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::task::AbortOnDropHandle;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status};

/// What a droplet needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// Spans and metrics: `--otlp-endpoint`, `--metrics-listen`.
    pub telemetry: jupiter_common::telemetry::Settings,
    /// Name of the node this droplet profiles.
    pub node: String,
    /// drupe-central's URL (`http://host:port`).
    pub central: String,
    /// How often resources are reported.
    pub report_interval: Duration,
    /// The URL other droplets reach this one at (reported to central);
    /// `serve` defaults it to `http://<node>:<bound port>`.
    pub advertise: Option<String>,
    /// Folder whose disk is this node's storage (its free space is reported).
    pub data_dir: Option<PathBuf>,
}

/// Everything that stops a droplet from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Telemetry(#[from] jupiter_common::telemetry::TelemetryError),
    #[error("--interval must be a positive number of seconds, got {0}")]
    Interval(f64),
    #[error("--measure-speed is answered by the drupe-droplet binary: run `drupe-droplet --measure-speed`")]
    MeasureSpeed,
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error("drupe-central's address: {0}")]
    Central(#[source] tonic::transport::Error),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct Droplet {
    config: Config,
    /// The URL reported to central: the configured one or the default.
    advertise: String,
    /// The node's speed readings and own CPU use.
    monitor: monitor::Monitor,
    telemetry: Telemetry,
}

/// How long the first report waits for the first speed reading: it takes
/// ~0.25 s under a 0.25-CPU quota; past this the report goes out with
/// speed 0 ("not measured yet") rather than keep the node unregistered.
const FIRST_READING_WAIT: Duration = Duration::from_secs(3);

impl Droplet {
    /// A droplet reached at `advertise`.
    pub fn new(config: Config, advertise: String, telemetry: Telemetry) -> Self {
        Self {
            config,
            advertise,
            monitor: monitor::Monitor::new(),
            telemetry,
        }
    }

    fn snapshot(&self) -> NodeResources {
        let mut r = resources::measure(self.config.data_dir.as_deref());
        r.node = self.config.node.clone();
        r.address = self.advertise.clone();
        self.monitor.fill(&mut r);
        let metrics = self.telemetry.metrics();
        let node = [("node", r.node.as_str())];
        metrics
            .gauge("jupiter_node_cpu_utilization", &node)
            .set(r.cpu_load);
        metrics
            .gauge("jupiter_node_memory_used_bytes", &node)
            .set(r.memory_total_bytes.saturating_sub(r.memory_free_bytes) as f64);
        metrics
            .gauge("jupiter_node_memory_total_bytes", &node)
            .set(r.memory_total_bytes as f64);
        r
    }
}

#[tonic::async_trait]
impl DrupeDroplet for Droplet {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        Ok(Response::new(EchoReply {
            payload: request.into_inner().payload,
        }))
    }

    async fn sink(&self, request: Request<tonic::Streaming<Payload>>) -> Result<Response<SinkAck>, Status> {
        let mut stream = request.into_inner();
        let mut bytes = 0u64;
        while let Some(payload) = stream.message().await? {
            bytes += payload.data.len() as u64;
        }
        Ok(Response::new(SinkAck { bytes }))
    }

    async fn probe_link(&self, request: Request<ProbeRequest>) -> Result<Response<LinkMeasurement>, Status> {
        let request = request.into_inner();
        probe::validate(&request).map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Response::new(probe::probe(&self.config.node, &request).await))
    }

    async fn resources(
        &self,
        _request: Request<ResourcesRequest>,
    ) -> Result<Response<NodeResources>, Status> {
        Ok(Response::new(self.snapshot()))
    }
}

/// Reports to drupe-central forever: first at once, then every interval.
/// Failures are logged and retried on the next tick; central may start later.
async fn report_loop(droplet: Droplet, mut client: DrupeCentralClient<Channel>) {
    droplet.monitor.first_reading(FIRST_READING_WAIT).await;
    let mut retry = Duration::from_millis(10);
    loop {
        match client.report_resources(droplet.snapshot()).await {
            Ok(_) => {
                retry = Duration::from_millis(10);
                tokio::time::sleep(droplet.config.report_interval).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "resource report failed, retrying");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(droplet.config.report_interval);
            }
        }
    }
}

/// Serves the droplet on `listener` and reports to central until
/// `shutdown`. Dropping the returned future (aborting its task) stops the
/// reports at once, as a crash would.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let advertise = match &config.advertise {
        Some(url) => url.clone(),
        None => {
            let port = listener.local_addr().map_err(ServeError::Io)?.port();
            format!("http://{}:{port}", config.node)
        }
    };
    tracing::info!(node = %config.node, %advertise, "drupe-droplet serving");
    let telemetry = Telemetry::start(&config.telemetry).await?;
    let central = DrupeCentralClient::new(serve::channel(&config.central).map_err(Error::Central)?);
    let droplet = Droplet::new(config, advertise, telemetry.clone());
    let _speed = AbortOnDropHandle::new(tokio::spawn(droplet.monitor.clone().run()));
    let _reporter = AbortOnDropHandle::new(tokio::spawn(report_loop(droplet.clone(), central)));
    let mut routes = RoutesBuilder::default();
    routes.add_service(DrupeDropletServer::new(droplet));
    serve::serve(
        listener,
        &telemetry,
        routes,
        &[DrupeDropletServer::<Droplet>::NAME],
        shutdown,
    )
    .await?;
    Ok(())
}
