//! WAVE worker: the scheduler's agent on every node. It is told which tasks
//! its node hosts and, in a distributed WAVE round, appoints nodes for their
//! children (see [`appoint`]).

pub mod appoint;

use jupiter_common::proto::wave::worker::v1::wave_worker_server::{WaveWorker, WaveWorkerServer};
use jupiter_common::proto::wave::worker::v1::{HostTaskReply, HostTaskRequest, InfoRequest, WorkerInfo};
use jupiter_common::serve::{self, ServeError};
use jupiter_common::transfer::check_name;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct Agent {
    node: String,
    hosted: Arc<Mutex<BTreeSet<String>>>,
}

impl Agent {
    pub fn new(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            hosted: Arc::default(),
        }
    }
}

#[tonic::async_trait]
impl WaveWorker for Agent {
    async fn host_task(&self, request: Request<HostTaskRequest>) -> Result<Response<HostTaskReply>, Status> {
        let request = request.into_inner();
        check_name("task", &request.task)?;
        self.hosted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(request.task.clone());
        if request.round > 0 {
            // Answer at once; the children are appointed in the background.
            tokio::spawn(appoint::appoint_children(self.node.clone(), request));
        }
        Ok(Response::new(HostTaskReply {
            node: self.node.clone(),
        }))
    }

    async fn info(&self, _request: Request<InfoRequest>) -> Result<Response<WorkerInfo>, Status> {
        Ok(Response::new(WorkerInfo {
            node: self.node.clone(),
            hosted_tasks: self
                .hosted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned()
                .collect(),
        }))
    }
}

/// Serves the agent of `node` on `listener` until `shutdown`.
pub async fn serve(
    node: &str,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let mut routes = RoutesBuilder::default();
    routes.add_service(WaveWorkerServer::new(Agent::new(node)));
    serve::serve(listener, routes, &[WaveWorkerServer::<Agent>::NAME], shutdown).await
}
