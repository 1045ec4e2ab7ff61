//! WAVE home: produces the mapping task -> node. HEFT and CPoP run here
//! over DRUPE's network and resource profile and the app's execution
//! profile ([`network`], [`offline`]); a distributed WAVE round is driven
//! from here and decided by the nodes' agents ([`wave`]); a static mapping
//! is checked and a seeded random one drawn over the nodes DRUPE knows
//! ([`mapping`]). The latest mapping is kept for `GetMapping`.

mod args;
pub mod greedy;
pub mod mapping;
pub mod network;
pub mod offline;
pub mod wave;

pub use args::Args;

use jupiter_common::cli::FlagError;
use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
use jupiter_common::proto::drupe::central::v1::ProfileRequest;
use jupiter_common::proto::wave::home::v1::wave_home_server::{WaveHome, WaveHomeServer};
use jupiter_common::proto::wave::home::v1::{
    AssignmentReply, AssignmentReport, FailureAck, FailureReport, GetMappingRequest, Mapping, ScheduleRequest,
};
use jupiter_common::serve::Channel;
use jupiter_common::serve::{self, ServeError};
use jupiter_common::sync::LockExt;
use jupiter_common::telemetry::Telemetry;
use offline::Algorithm;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status};

/// What wave-home needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// Spans and metrics: `--otlp-endpoint`, `--metrics-listen`.
    pub telemetry: jupiter_common::telemetry::Settings,
    /// drupe-central's URL: nodes and the profile come from there.
    pub central: String,
    /// The URL agents reach this wave-home at; `serve` defaults it to the
    /// listener's own address.
    pub advertise: Option<String>,
}

/// Everything that stops wave-home from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Telemetry(#[from] jupiter_common::telemetry::TelemetryError),
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error("drupe-central's address: {0}")]
    Central(#[source] tonic::transport::Error),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct Home {
    central: DrupeCentralClient<Channel>,
    central_url: String,
    /// Where agents reach this wave-home.
    advertise: String,
    rounds: Arc<wave::Rounds>,
    last: Arc<Mutex<Option<Mapping>>>,
    telemetry: Telemetry,
}

impl Home {
    /// `central` is drupe-central's URL, asked for the node list;
    /// `advertise` is this wave-home's URL as agents reach it.
    pub fn new(
        central: &str,
        advertise: &str,
        telemetry: Telemetry,
    ) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            central: DrupeCentralClient::new(serve::channel(central)?),
            central_url: central.to_string(),
            advertise: advertise.to_string(),
            rounds: Arc::default(),
            last: Arc::default(),
            telemetry,
        })
    }

    async fn known_nodes(&self) -> Result<Vec<String>, Status> {
        let profile = self
            .central
            .clone()
            .get_resource_profile(ProfileRequest {})
            .await
            .map_err(|e| Status::unavailable(format!("asking drupe-central for nodes: {}", e.message())))?;
        Ok(profile.into_inner().nodes.into_iter().map(|n| n.node).collect())
    }
}

impl Home {
    async fn network_mapping(
        &self,
        request: &ScheduleRequest,
        algorithm: Algorithm,
    ) -> Result<Mapping, Status> {
        let (network, resources) = network::drupe_profile(&mut self.central.clone()).await?;
        let refused = |e: network::NetworkError| match e {
            network::NetworkError::MissingLink { .. } | network::NetworkError::NoNodes => {
                Status::failed_precondition(e.to_string())
            }
            other => Status::invalid_argument(other.to_string()),
        };
        let mut mapping = network::schedule(request, algorithm, &network, &resources).map_err(refused)?;
        if !request.current.is_empty() {
            // The mapping in use, over the same snapshot: what a move would gain.
            let current = Mapping {
                assignments: request.current.clone(),
                ..Default::default()
            };
            mapping.current_makespan_secs =
                network::predict(request, &current, &network, &resources).map_err(refused)?;
        }
        Ok(mapping)
    }
}

#[tonic::async_trait]
impl WaveHome for Home {
    async fn schedule(&self, request: Request<ScheduleRequest>) -> Result<Response<Mapping>, Status> {
        let request = request.into_inner();
        let mapping = match request.algorithm.parse::<Algorithm>() {
            Ok(algorithm) => self.network_mapping(&request, algorithm).await?,
            Err(_) if request.algorithm.starts_with("wave-") => {
                let mut mapping = self
                    .rounds
                    .run(&request, &self.advertise, &self.central_url)
                    .await?;
                if request.algorithm == "wave-greedy" {
                    // Its agents worked from the profile: predict on the same data.
                    let (network, resources) = network::drupe_profile(&mut self.central.clone()).await?;
                    match network::predict(&request, &mapping, &network, &resources) {
                        Ok(makespan) => mapping.predicted_makespan_secs = makespan,
                        Err(e) => tracing::warn!(error = %e, "no makespan prediction for the WAVE mapping"),
                    }
                }
                mapping
            }
            Err(_) => {
                let nodes = if request.nodes.is_empty() {
                    self.known_nodes().await?
                } else {
                    request.nodes.clone()
                };
                mapping::compute(&request, &nodes).map_err(|e| Status::invalid_argument(e.to_string()))?
            }
        };
        *self.last.locked() = Some(mapping.clone());
        let metrics = self.telemetry.metrics();
        metrics.counter("jupiter_mappings_total", &[]).increment(1);
        tracing::info!(algorithm = %mapping.algorithm, ?mapping.assignments, "mapping ready");
        Ok(Response::new(mapping))
    }

    async fn report_assignment(
        &self,
        request: Request<AssignmentReport>,
    ) -> Result<Response<AssignmentReply>, Status> {
        let r = request.into_inner();
        let (node, appointed) = self.rounds.report(r.round, &r.task, &r.node)?;
        tracing::debug!(parent = %r.parent, task = %r.task, %node, appointed, "WAVE assignment");
        Ok(Response::new(AssignmentReply { node, appointed }))
    }

    async fn report_failure(&self, request: Request<FailureReport>) -> Result<Response<FailureAck>, Status> {
        let r = request.into_inner();
        tracing::warn!(task = %r.task, error = %r.error, "WAVE agent failed");
        self.rounds.fail(r.round, &r.task, &r.error);
        Ok(Response::new(FailureAck {}))
    }

    async fn get_mapping(&self, _request: Request<GetMappingRequest>) -> Result<Response<Mapping>, Status> {
        self.last
            .locked()
            .clone()
            .map(Response::new)
            .ok_or_else(|| Status::failed_precondition("no mapping has been computed yet"))
    }
}

/// Serves wave-home on `listener` until `shutdown`. It starts no
/// background task (a WAVE round runs inside its `Schedule` call), so
/// dropping the returned future stops it all.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let advertise = match config.advertise {
        Some(url) => url,
        None => serve::url_of(&listener).map_err(ServeError::Io)?,
    };
    let telemetry = Telemetry::start(&config.telemetry).await?;
    let home = Home::new(&config.central, &advertise, telemetry.clone()).map_err(Error::Central)?;
    let mut routes = RoutesBuilder::default();
    routes.add_service(WaveHomeServer::new(home));
    serve::serve(
        listener,
        &telemetry,
        routes,
        &[WaveHomeServer::<Home>::NAME],
        shutdown,
    )
    .await?;
    Ok(())
}
