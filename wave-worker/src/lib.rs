//! WAVE worker: the scheduler's agent on every node. It is told which tasks
//! its node hosts and, in a distributed WAVE round, appoints nodes for their
//! children (see [`appoint`]).

pub mod appoint;
mod args;

pub use args::Args;

use jupiter_common::proto::wave::worker::v1::wave_worker_server::{WaveWorker, WaveWorkerServer};
use jupiter_common::proto::wave::worker::v1::{HostTaskReply, HostTaskRequest, InfoRequest, WorkerInfo};
use jupiter_common::serve::{self, ServeError};
use jupiter_common::sync::LockExt;
use jupiter_common::task::Tasks;
use jupiter_common::transfer::check_name;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status};

/// What a wave-worker needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// Spans and metrics: `--otlp-endpoint`, `--metrics-listen`.
    pub telemetry: jupiter_common::telemetry::Settings,
    /// The node this agent speaks for.
    pub node: String,
}

/// Everything that stops a wave-worker from serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Flag(#[from] jupiter_common::cli::FlagError),
    #[error(transparent)]
    Telemetry(#[from] jupiter_common::telemetry::TelemetryError),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct Agent {
    node: String,
    hosted: Arc<Mutex<BTreeSet<String>>>,
    /// Appointments in progress: they end with the agent's server.
    appointments: Tasks,
}

impl Agent {
    pub fn new(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            hosted: Arc::default(),
            appointments: Tasks::new(),
        }
    }
}

#[tonic::async_trait]
impl WaveWorker for Agent {
    async fn host_task(&self, request: Request<HostTaskRequest>) -> Result<Response<HostTaskReply>, Status> {
        let request = request.into_inner();
        check_name("task", &request.task)?;
        self.hosted.locked().insert(request.task.clone());
        if request.round > 0 {
            // Answer at once; the children are appointed in the background.
            self.appointments
                .spawn(appoint::appoint_children(self.node.clone(), request));
        }
        Ok(Response::new(HostTaskReply {
            node: self.node.clone(),
        }))
    }

    async fn info(&self, _request: Request<InfoRequest>) -> Result<Response<WorkerInfo>, Status> {
        Ok(Response::new(WorkerInfo {
            node: self.node.clone(),
            hosted_tasks: self.hosted.locked().iter().cloned().collect(),
        }))
    }
}

/// Serves the agent of `config.node` on `listener` until `shutdown`.
/// Dropping the returned future (aborting its task) also stops the
/// appointments in progress, as a crash would.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let telemetry = jupiter_common::telemetry::Telemetry::start(&config.telemetry).await?;
    let agent = Agent::new(config.node);
    let _appointments = agent.appointments.close_on_drop();
    let mut routes = RoutesBuilder::default();
    routes.add_service(WaveWorkerServer::new(agent));
    serve::serve(
        listener,
        &telemetry,
        routes,
        &[WaveWorkerServer::<Agent>::NAME],
        shutdown,
    )
    .await?;
    Ok(())
}
