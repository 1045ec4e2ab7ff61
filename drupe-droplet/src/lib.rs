//! DRUPE droplet: runs on every node. Answers latency probes and reports its
//! node's resources to drupe-central on an interval (which also registers
//! the node, so a scheduler knows it exists).

pub mod resources;

use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
use jupiter_common::proto::drupe::droplet::v1::drupe_droplet_server::{DrupeDroplet, DrupeDropletServer};
use jupiter_common::proto::drupe::droplet::v1::{EchoReply, EchoRequest, NodeResources, ResourcesRequest};
use jupiter_common::serve::{self, ServeError};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status};

/// What a droplet needs to know.
#[derive(Debug, Clone)]
pub struct DropletConfig {
    /// Name of the node this droplet profiles.
    pub node: String,
    /// drupe-central's URL (`http://host:port`).
    pub central: String,
    /// How often resources are reported.
    pub report_interval: Duration,
    /// The URL other droplets reach this one at (reported to central).
    pub advertise: String,
    /// Folder whose disk is this node's storage (reserved for disk reports).
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Droplet {
    config: DropletConfig,
}

impl Droplet {
    pub fn new(config: DropletConfig) -> Self {
        Self { config }
    }

    fn snapshot(&self) -> NodeResources {
        let mut r = resources::measure();
        r.node = self.config.node.clone();
        r.address = self.config.advertise.clone();
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

    async fn resources(
        &self,
        _request: Request<ResourcesRequest>,
    ) -> Result<Response<NodeResources>, Status> {
        Ok(Response::new(self.snapshot()))
    }
}

/// Reports to drupe-central forever: first at once, then every interval.
/// Failures are logged and retried on the next tick; central may start later.
async fn report_loop(droplet: Droplet) {
    let channel = match serve::channel(&droplet.config.central) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(central = %droplet.config.central, error = %e, "bad drupe-central address");
            return;
        }
    };
    let mut client = DrupeCentralClient::new(channel);
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

/// Serves the droplet on `listener` and reports to central until `shutdown`.
pub async fn serve(
    config: DropletConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let droplet = Droplet::new(config);
    let reporter = tokio::spawn(report_loop(droplet.clone()));
    let mut routes = RoutesBuilder::default();
    routes.add_service(DrupeDropletServer::new(droplet));
    let result = serve::serve(listener, routes, &[DrupeDropletServer::<Droplet>::NAME], shutdown).await;
    reporter.abort();
    result
}
