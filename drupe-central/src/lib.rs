//! DRUPE central: keeps the latest resource report of every node and serves
//! the resource profile. Link profiling is a later addition.

use jupiter_common::proto::drupe::central::v1::drupe_central_server::{DrupeCentral, DrupeCentralServer};
use jupiter_common::proto::drupe::central::v1::{ProfileRequest, ReportAck, ResourceProfile};
use jupiter_common::proto::drupe::droplet::v1::NodeResources;
use jupiter_common::serve::{self, ServeError};
use jupiter_common::transfer::check_name;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone, Default)]
pub struct Central {
    nodes: Arc<Mutex<BTreeMap<String, NodeResources>>>,
}

impl Central {
    fn nodes(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, NodeResources>> {
        // A poisoned map only means a reporter panicked mid-insert; the
        // data is still a map of complete reports.
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[tonic::async_trait]
impl DrupeCentral for Central {
    async fn report_resources(&self, request: Request<NodeResources>) -> Result<Response<ReportAck>, Status> {
        let report = request.into_inner();
        check_name("node", &report.node)?;
        self.nodes().insert(report.node.clone(), report);
        Ok(Response::new(ReportAck {}))
    }

    async fn get_resource_profile(
        &self,
        _request: Request<ProfileRequest>,
    ) -> Result<Response<ResourceProfile>, Status> {
        Ok(Response::new(ResourceProfile {
            nodes: self.nodes().values().cloned().collect(),
        }))
    }
}

/// Serves drupe-central on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let mut routes = RoutesBuilder::default();
    routes.add_service(DrupeCentralServer::new(Central::default()));
    serve::serve(listener, routes, &[DrupeCentralServer::<Central>::NAME], shutdown).await
}
