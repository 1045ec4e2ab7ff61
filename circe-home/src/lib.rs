//! CIRCE home: takes inputs in (durably), feeds them to the ingress tasks'
//! workers, receives the egress tasks' outputs into the output folder and
//! records per input its makespan and per task its timings.

mod args;
mod journal;
mod ledger;

pub use args::Args;

use journal::{Delivered, Event, Failed, Journal, Replayed, Submitted};
use jupiter_common::app::AppError;
use jupiter_common::cli::FlagError;
use jupiter_common::clock::unix_nanos;
use jupiter_common::proto::circe::home::v1::circe_home_server::{CirceHome, CirceHomeServer};
use jupiter_common::proto::circe::home::v1::{
    HomeStatus, HomeStatusRequest, InputResult, ReplayAck, ReplayRequest, ReportAck, SubmitAck, TaskReport,
    WatchRequest,
};
use jupiter_common::proto::circe::worker::v1::circe_worker_client::CirceWorkerClient;
use jupiter_common::proto::circe::worker::v1::{FileChunk, FileHeader, PushAck};
use jupiter_common::serve::{self, ServeError};
use jupiter_common::sync::LockExt;
use jupiter_common::task::Tasks;
use jupiter_common::transfer::{
    check_name, file_chunks, push_until_acked, read_header, receive_durably, Origin,
};
use ledger::Ledger;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

/// An ingress task and its worker's URL.
#[derive(Debug, Clone)]
pub struct Ingress {
    pub task: String,
    pub address: String,
}

/// What circe-home needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where submitted inputs are kept until they are fed.
    pub data_dir: PathBuf,
    /// Where outputs land: `<output_dir>/<input id>/<file>`.
    pub output_dir: PathBuf,
    pub ingress: Vec<Ingress>,
    /// Tasks whose outputs come home.
    pub egress: Vec<String>,
    /// Every task of the app (an input is complete once each has reported).
    pub tasks: Vec<String>,
}

/// Everything that stops circe-home from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--app: {0}")]
    App(#[from] AppError),
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error("folder {dir}: {source}")]
    Dir { dir: PathBuf, source: std::io::Error },
    #[error("journal {path}: {source}")]
    Journal { path: PathBuf, source: std::io::Error },
    #[error("address: {0}")]
    Address(#[from] tonic::transport::Error),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Clone)]
pub struct Home {
    config: Arc<Config>,
    ingress: Vec<(String, CirceWorkerClient<Channel>)>,
    ledger: Arc<Mutex<Ledger>>,
    /// Every event of the ledger, kept so that a restart loses none.
    journal: Arc<Mutex<Journal>>,
    /// Inputs being fed to the ingress workers: they end with the server.
    feeds: Tasks,
}

impl Home {
    /// Creates the folders and the ingress workers' channels, so that a bad
    /// folder or address is reported before anything is served.
    pub fn new(config: Config) -> Result<Self> {
        for dir in [
            config.data_dir.join("inputs"),
            config.data_dir.join("tmp"),
            config.output_dir.clone(),
        ] {
            std::fs::create_dir_all(&dir).map_err(|source| Error::Dir { dir, source })?;
        }
        let ingress = config
            .ingress
            .iter()
            .map(|i| {
                Ok((
                    i.task.clone(),
                    CirceWorkerClient::new(serve::channel(&i.address)?),
                ))
            })
            .collect::<Result<_, tonic::transport::Error>>()?;
        let mut ledger = Ledger::new(config.egress.clone(), config.tasks.clone());
        let path = config.data_dir.join("journal");
        let (journal, events) = Journal::open(&path).map_err(|source| Error::Journal { path, source })?;
        let replayed = events.len();
        for event in events {
            apply(&mut ledger, event);
        }
        if replayed > 0 {
            let status = ledger.status();
            tracing::info!(
                events = replayed,
                submitted = status.submitted,
                done = status.done,
                failed = status.failed,
                "replayed the journal"
            );
        }
        Ok(Self {
            config: Arc::new(config),
            ingress,
            ledger: Arc::new(Mutex::new(ledger)),
            journal: Arc::new(Mutex::new(journal)),
            feeds: Tasks::new(),
        })
    }

    /// Journals `event`, then applies it to the ledger; an input it
    /// finishes no longer needs its kept copy.
    fn record(&self, event: Event) -> Result<(), Status> {
        {
            let mut journal = self.journal.locked();
            journal.append(event.clone()).map_err(|e| {
                Status::unavailable(format!("circe-home journal {}: {e}", journal.path().display()))
            })?;
        }
        let finished = apply(&mut self.ledger(), event);
        if let Some(input) = finished {
            let kept = self.config.data_dir.join("inputs").join(&input);
            if let Err(e) = std::fs::remove_file(&kept) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(input, error = %e, "removing the kept copy of a finished input");
                }
            }
        }
        Ok(())
    }

    /// Feeds again every input that was submitted and has not finished:
    /// after a restart, whatever the last incarnation was feeding. Workers
    /// drop what they already have.
    fn resume(&self) {
        let unfinished = self.ledger().unfinished();
        if !unfinished.is_empty() {
            tracing::info!(inputs = unfinished.len(), "feeding unfinished inputs again");
        }
        self.feed_again(unfinished);
    }

    /// Feeds `inputs` from their kept copies, each as its current pass.
    fn feed_again(&self, inputs: Vec<String>) {
        for input in inputs {
            let path = self.config.data_dir.join("inputs").join(&input);
            let size = match std::fs::metadata(&path) {
                Ok(meta) => meta.len(),
                Err(e) => {
                    let _ = self.record(Event::Failed(Failed {
                        input: input.clone(),
                        error: format!("its kept copy {} is gone: {e}", path.display()),
                    }));
                    continue;
                }
            };
            self.feeds.spawn(self.clone().feed(input, path, size));
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.locked()
    }

    /// Streams the input file, as its current pass, to every ingress
    /// worker until each acknowledges.
    async fn feed(self, input: String, path: PathBuf, size: u64) {
        let attempt = self.ledger().attempt(&input);
        let mut sends = tokio::task::JoinSet::new();
        for (task, client) in self.ingress.clone() {
            let header = FileHeader {
                input_id: input.clone(),
                from_task: String::new(),
                file_name: input.clone(),
                file_count: 1,
                size,
                produced_at_unix_nanos: unix_nanos(),
                attempt,
            };
            let path = path.clone();
            sends.spawn(async move {
                let what = format!("input {} to {task}", header.input_id);
                let pushed = push_until_acked(&what, || {
                    let mut client = client.clone();
                    let chunks = file_chunks(header.clone(), Some(path.clone()), Origin::Owned);
                    async move { client.push(chunks).await.map(|ack| ack.into_inner()) }
                })
                .await;
                (task, pushed)
            });
        }
        while let Some(joined) = sends.join_next().await {
            if let Ok((task, Err(status))) = joined {
                let failed = Event::Failed(Failed {
                    input: input.clone(),
                    error: format!("feeding {task}: {}", status.message()),
                });
                if let Err(e) = self.record(failed) {
                    tracing::error!(input, error = %e.message(), "recording a failed feed");
                }
            }
        }
    }
}

/// Applies one journalled event to the ledger; the input it finished, if
/// it finished one.
fn apply(ledger: &mut Ledger, event: Event) -> Option<String> {
    match event {
        Event::Submitted(s) => {
            ledger.start(&s.input, s.at_unix_nanos);
            None
        }
        Event::Delivered(d) => {
            let header = d.header.unwrap_or_default();
            let input = header.input_id.clone();
            ledger
                .delivered(&header, d.relative, d.at_unix_nanos)
                .then_some(input)
        }
        Event::Report(report) => {
            let input = report.input_id.clone();
            ledger.report(report).then_some(input)
        }
        Event::Failed(f) => {
            let input = f.input.clone();
            ledger.fail(&f.input, f.error).then_some(input)
        }
        Event::Replayed(r) => {
            ledger.replay(r.reason, r.at_unix_nanos);
            None
        }
    }
}

type ResultStream = Pin<Box<dyn Stream<Item = Result<InputResult, Status>> + Send>>;

#[tonic::async_trait]
impl CirceHome for Home {
    async fn submit(&self, request: Request<Streaming<FileChunk>>) -> Result<Response<SubmitAck>, Status> {
        let mut stream = request.into_inner();
        let header = read_header(&mut stream).await?;
        let input = if header.input_id.is_empty() {
            header.file_name.clone()
        } else {
            header.input_id.clone()
        };
        check_name("input_id", &input)?;
        if !self.ledger().reserve(&input) {
            return Err(Status::already_exists(format!(
                "input {input:?} was already submitted: every input needs its own file name"
            )));
        }
        let path = self.config.data_dir.join("inputs").join(&input);
        let received =
            receive_durably(&mut stream, header.size, &self.config.data_dir.join("tmp"), &path).await;
        let size = match received {
            Ok(size) => size,
            Err(status) => {
                self.ledger().release(&input);
                return Err(status);
            }
        };
        let submitted = Event::Submitted(Submitted {
            input: input.clone(),
            at_unix_nanos: unix_nanos(),
        });
        if let Err(status) = self.record(submitted) {
            self.ledger().release(&input);
            return Err(status);
        }
        self.feeds.spawn(self.clone().feed(input.clone(), path, size));
        Ok(Response::new(SubmitAck { input_id: input }))
    }

    async fn deliver(&self, request: Request<Streaming<FileChunk>>) -> Result<Response<PushAck>, Status> {
        let mut stream = request.into_inner();
        let header = read_header(&mut stream).await?;
        if !self.config.egress.contains(&header.from_task) {
            return Err(Status::invalid_argument(format!(
                "{:?} is not an egress task; only {:?} deliver home",
                header.from_task, self.config.egress
            )));
        }
        let mut ack = PushAck {
            duplicate: true,
            bytes: 0,
        };
        if header.file_count > 0 {
            let dest = self
                .config
                .output_dir
                .join(&header.input_id)
                .join(&header.file_name);
            if !dest.exists() {
                ack.bytes =
                    receive_durably(&mut stream, header.size, &self.config.data_dir.join("tmp"), &dest)
                        .await?;
                ack.duplicate = false;
            }
        }
        let relative = format!("{}/{}", header.input_id, header.file_name);
        self.record(Event::Delivered(Delivered {
            header: Some(header),
            relative,
            at_unix_nanos: unix_nanos(),
        }))?;
        Ok(Response::new(ack))
    }

    async fn report_task(&self, request: Request<TaskReport>) -> Result<Response<ReportAck>, Status> {
        let report = request.into_inner();
        check_name("input_id", &report.input_id)?;
        self.record(Event::Report(report))?;
        Ok(Response::new(ReportAck {}))
    }

    async fn replay(&self, request: Request<ReplayRequest>) -> Result<Response<ReplayAck>, Status> {
        let reason = request.into_inner().reason;
        self.record(Event::Replayed(Replayed {
            reason: reason.clone(),
            at_unix_nanos: unix_nanos(),
        }))?;
        let inputs = self.ledger().last_replayed();
        tracing::warn!(%reason, inputs = inputs.len(), "replaying every unfinished input as its next pass");
        self.feed_again(inputs.clone());
        Ok(Response::new(ReplayAck { inputs }))
    }

    async fn status(&self, _request: Request<HomeStatusRequest>) -> Result<Response<HomeStatus>, Status> {
        Ok(Response::new(self.ledger().status()))
    }

    type WatchResultsStream = ResultStream;

    async fn watch_results(&self, _request: Request<WatchRequest>) -> Result<Response<ResultStream>, Status> {
        // Subscribe before taking the snapshot so nothing falls in between;
        // a result in both is sent twice, and watchers key by input id.
        let (receiver, finished) = {
            let ledger = self.ledger();
            (ledger.subscribe(), ledger.finished())
        };
        let live = BroadcastStream::new(receiver).filter_map(|r| r.ok().map(Ok));
        let stream = tokio_stream::iter(finished.into_iter().map(Ok)).chain(live);
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Serves circe-home on `listener` until `shutdown`. Dropping the returned
/// future (aborting its task) also stops the feeds in progress, as a crash
/// would.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let home = Home::new(config)?;
    let _feeds = home.feeds.close_on_drop();
    home.resume();
    let mut routes = RoutesBuilder::default();
    routes.add_service(CirceHomeServer::new(home));
    serve::serve(listener, routes, &[CirceHomeServer::<Home>::NAME], shutdown).await?;
    Ok(())
}
