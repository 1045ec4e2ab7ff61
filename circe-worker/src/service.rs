//! The worker's gRPC face: `Push` writes arriving files into the queue (and
//! acknowledges only once they are durable), `Status` reports counters.

use crate::queue::HOME_SOURCE;
use crate::routes::RoutesError;
use crate::Worker;
use jupiter_common::proto::circe::worker::v1::circe_worker_server::{CirceWorker, CirceWorkerServer};
use jupiter_common::proto::circe::worker::v1::{
    FileChunk, PushAck, Routes, RoutesAck, StatusRequest, WorkerStatus,
};
use jupiter_common::serve::{self, ServeError};
use jupiter_common::transfer::{io_status, read_header, receive_to_temp};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status, Streaming};

struct Service(Arc<Worker>);

impl Service {
    /// One pushed file into the queue: checked, limited, written durably.
    async fn receive(&self, mut stream: Streaming<FileChunk>) -> Result<Response<PushAck>, Status> {
        let worker = &self.0;
        let header = read_header(&mut stream).await?;
        jupiter_common::telemetry::spans::tag_input(&header.input_id);
        let source = if header.from_task.is_empty() {
            HOME_SOURCE
        } else {
            header.from_task.as_str()
        };
        if !worker.sources.iter().any(|s| s == source) {
            return Err(Status::invalid_argument(format!(
                "task {:?} does not take input from {}",
                worker.config.task.name,
                if source == HOME_SOURCE {
                    "circe-home (it is not an ingress task)".to_string()
                } else {
                    format!("{source:?}")
                }
            )));
        }
        // Each pass of an input is its own entry in the queue.
        let pass = crate::replay::Pass {
            attempt: header.attempt,
            placement: header.placement,
        };
        let key = crate::replay::key(&header.input_id, pass);
        let input = key.as_str();
        let duplicate = |bytes| {
            Ok(Response::new(PushAck {
                duplicate: true,
                bytes,
            }))
        };
        if worker.queue.is_closed(input) {
            return duplicate(0);
        }
        worker
            .config
            .limits
            .check_header(header.file_count, header.size)?;
        worker.admit(input)?;
        worker.note_produced(input, header.produced_at_unix_nanos);
        let count = header.file_count;
        if count == 0 {
            worker
                .queue
                .ensure_source_dir(input, source, 0)
                .await
                .map_err(io_status)?;
            worker.on_arrival(input);
            return Ok(Response::new(PushAck {
                duplicate: false,
                bytes: 0,
            }));
        }
        let dest = worker
            .queue
            .source_dir(input, source, count)
            .join(&header.file_name);
        if dest.exists() {
            worker.on_arrival(input);
            return duplicate(0);
        }
        // The data and the folder become durable at the same time.
        let tmp = worker.queue.tmp();
        let (received, folder) = tokio::join!(
            receive_to_temp(&mut stream, header.size, &tmp, worker.queue.spares()),
            worker.queue.ensure_source_dir(input, source, count)
        );
        let received = match received {
            Ok(received) => received,
            Err(status) => {
                // Leave no empty folder behind for a file that never came.
                let _ = tokio::fs::remove_dir(worker.queue.source_dir(input, source, count)).await;
                return Err(status);
            }
        };
        if let Err(e) = folder {
            received.discard().await;
            return Err(io_status(e));
        }
        let written = received.commit(&dest).await?;
        // The input may have been retired while this copy was arriving
        // (finish marks, then deletes): a late copy is a duplicate.
        if worker.queue.is_closed(input) {
            worker
                .queue
                .discard_source(input, source, count)
                .await
                .map_err(io_status)?;
            return duplicate(0);
        }
        worker.on_arrival(input);
        Ok(Response::new(PushAck {
            duplicate: false,
            bytes: written,
        }))
    }
}

/// A push refused because the queue's disk is full (see [`io_status`]).
fn is_storage_full(status: &Status) -> bool {
    status.code() == tonic::Code::ResourceExhausted
        && status
            .message()
            .starts_with(jupiter_common::transfer::STORAGE_FULL)
}

#[tonic::async_trait]
impl CirceWorker for Service {
    async fn push(&self, request: Request<Streaming<FileChunk>>) -> Result<Response<PushAck>, Status> {
        let result = self.receive(request.into_inner()).await;
        // What `status` says about this worker's disk: full since the last
        // refused file, fine again once a file is written.
        match &result {
            Err(status) if is_storage_full(status) => {
                tracing::warn!(task = %self.0.config.task.name, node = %self.0.config.node,
                    error = %status.message(), "queue storage full: refusing files");
                self.0.counters().storage_full = Some(status.message().to_string());
            }
            Ok(ack) if ack.get_ref().bytes > 0 => self.0.counters().storage_full = None,
            _ => {}
        }
        result
    }

    async fn set_routes(&self, request: Request<Routes>) -> Result<Response<RoutesAck>, Status> {
        let Routes { placement, children } = request.into_inner();
        let children: BTreeMap<String, String> = children.into_iter().collect();
        self.0
            .routes
            .set(placement, children.clone())
            .await
            .map_err(|e| match e {
                RoutesError::File { .. } | RoutesError::Corrupt { .. } => Status::unavailable(e.to_string()),
                _ => Status::invalid_argument(e.to_string()),
            })?;
        tracing::info!(task = %self.0.config.task.name, placement, ?children, "routes set");
        Ok(Response::new(RoutesAck {}))
    }

    async fn status(&self, _request: Request<StatusRequest>) -> Result<Response<WorkerStatus>, Status> {
        let worker = &self.0;
        let c = worker.counters();
        Ok(Response::new(WorkerStatus {
            task: worker.config.task.name.clone(),
            node: worker.config.node.clone(),
            waiting: (c.partial.len() + c.ready_at.len()) as u32,
            running: c.running,
            sending: c.sending,
            done: c.done,
            failed: c.failed,
            storage_full: c.storage_full.clone().unwrap_or_default(),
        }))
    }
}

pub(crate) async fn serve(
    worker: Arc<Worker>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let mut routes = RoutesBuilder::default();
    let telemetry = worker.telemetry.clone();
    routes.add_service(CirceWorkerServer::new(Service(worker)));
    serve::serve(
        listener,
        &telemetry,
        routes,
        &[CirceWorkerServer::<Service>::NAME],
        shutdown,
    )
    .await
}
