//! WAVE home: produces the mapping task -> node. For now it accepts a static
//! mapping or draws a random one over the nodes DRUPE knows; network-aware
//! algorithms plug in here later.

pub mod mapping;
pub mod network;
pub mod offline;

use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
use jupiter_common::proto::drupe::central::v1::ProfileRequest;
use jupiter_common::proto::wave::home::v1::wave_home_server::{WaveHome, WaveHomeServer};
use jupiter_common::proto::wave::home::v1::{GetMappingRequest, Mapping, ScheduleRequest};
use jupiter_common::serve::{self, ServeError};
use offline::Algorithm;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct Home {
    central: DrupeCentralClient<Channel>,
    last: Arc<Mutex<Option<Mapping>>>,
}

impl Home {
    /// `central` is drupe-central's URL, asked for the node list.
    pub fn new(central: &str) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            central: DrupeCentralClient::new(serve::channel(central)?),
            last: Arc::default(),
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
        let mut central = self.central.clone();
        let unavailable = |e: Status| Status::unavailable(format!("asking drupe-central: {}", e.message()));
        let network = central
            .get_network_profile(ProfileRequest {})
            .await
            .map_err(unavailable)?
            .into_inner();
        let resources = central
            .get_resource_profile(ProfileRequest {})
            .await
            .map_err(unavailable)?
            .into_inner();
        network::schedule(request, algorithm, &network, &resources).map_err(|e| match e {
            network::NetworkError::MissingLink { .. } | network::NetworkError::NoNodes => {
                Status::failed_precondition(e.to_string())
            }
            other => Status::invalid_argument(other.to_string()),
        })
    }
}

#[tonic::async_trait]
impl WaveHome for Home {
    async fn schedule(&self, request: Request<ScheduleRequest>) -> Result<Response<Mapping>, Status> {
        let request = request.into_inner();
        let mapping = match request.algorithm.parse::<Algorithm>() {
            Ok(algorithm) => self.network_mapping(&request, algorithm).await?,
            Err(_) => {
                let nodes = if request.nodes.is_empty() {
                    self.known_nodes().await?
                } else {
                    request.nodes.clone()
                };
                mapping::compute(&request, &nodes).map_err(|e| Status::invalid_argument(e.to_string()))?
            }
        };
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(mapping.clone());
        tracing::info!(algorithm = %mapping.algorithm, ?mapping.assignments, "mapping ready");
        Ok(Response::new(mapping))
    }

    async fn get_mapping(&self, _request: Request<GetMappingRequest>) -> Result<Response<Mapping>, Status> {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .map(Response::new)
            .ok_or_else(|| Status::failed_precondition("no mapping has been computed yet"))
    }
}

/// Serves wave-home on `listener` until `shutdown`.
pub async fn serve(
    central: &str,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let home = Home::new(central)?;
    let mut routes = RoutesBuilder::default();
    routes.add_service(WaveHomeServer::new(home));
    serve::serve(listener, routes, &[WaveHomeServer::<Home>::NAME], shutdown).await
}
