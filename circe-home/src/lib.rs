//! CIRCE home: takes inputs in (durably), feeds them to the ingress tasks'
//! workers of the placement each follows, receives the egress tasks' outputs
//! into the output folder and records per input its makespan and per task
//! its timings.

mod args;
mod ingress;
mod journal;
mod ledger;

pub use args::Args;

use ingress::{IngressError, IngressTable};
use journal::{Delivered, Event, Failed, Journal, Placed, Replayed, Submitted};
use jupiter_common::app::AppError;
use jupiter_common::cli::FlagError;
use jupiter_common::clock::unix_nanos;
use jupiter_common::proto::circe::home::v1::circe_home_server::{CirceHome, CirceHomeServer};
use jupiter_common::proto::circe::home::v1::{
    HomeStatus, HomeStatusRequest, InputResult, ReplayAck, ReplayRequest, ReportAck, SetPlacementAck,
    SetPlacementRequest, SubmitAck, TaskReport, WatchRequest,
};
use jupiter_common::proto::circe::worker::v1::{FileChunk, FileHeader, PushAck};
use jupiter_common::serve::{self, ServeError};
use jupiter_common::sync::LockExt;
use jupiter_common::task::Tasks;
use jupiter_common::telemetry::spans::at_unix_nanos;
use jupiter_common::telemetry::{OpenSpan, Telemetry};
use jupiter_common::transfer::{
    check_name, file_chunks, push_counting_retries, read_header, receive_durably, Origin,
};
use ledger::Ledger;
use opentelemetry::trace::{FutureExt as _, SpanKind};
use opentelemetry::KeyValue;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status, Streaming};

/// The call that feeds an ingress worker, as its spans name it.
const PUSH_RPC: (&str, &str) = ("jupiter.circe.worker.v1.CirceWorker", "Push");

/// An ingress task and its worker's URL.
#[derive(Debug, Clone)]
pub struct Ingress {
    pub task: String,
    pub address: String,
}

/// What circe-home needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// Spans and metrics: `--otlp-endpoint`, `--metrics-listen`.
    pub telemetry: jupiter_common::telemetry::Settings,
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
    #[error(transparent)]
    Telemetry(#[from] jupiter_common::telemetry::TelemetryError),
    #[error("--app: {0}")]
    App(#[from] AppError),
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error("folder {dir}: {source}")]
    Dir { dir: PathBuf, source: std::io::Error },
    #[error("journal {path}: {source}")]
    Journal { path: PathBuf, source: std::io::Error },
    #[error("--ingress: {0}")]
    Ingress(#[from] IngressError),
    #[error("journal {path}: placement {placement}: {source}")]
    Placement {
        path: PathBuf,
        placement: u32,
        source: IngressError,
    },
    #[error(transparent)]
    Serve(#[from] ServeError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Clone)]
pub struct Home {
    config: Arc<Config>,
    /// Every placement's ingress workers. SetPlacement holds it from its
    /// check until the placement is journalled and its workers are added,
    /// and a feed takes its workers from it after reading the input's
    /// placement: so a feed never sees a placement without its workers.
    ingress: Arc<Mutex<IngressTable>>,
    ledger: Arc<Mutex<Ledger>>,
    /// Every event of the ledger, kept so that a restart loses none.
    journal: Arc<Mutex<Journal>>,
    /// Inputs being fed to the ingress workers: they end with the server.
    feeds: Tasks,
    telemetry: Telemetry,
    /// The span of each input in flight (the root of its trace), ended
    /// when the input finishes.
    spans: Arc<Mutex<HashMap<String, OpenSpan>>>,
}

impl Home {
    /// Creates the folders and the ingress workers' channels, so that a bad
    /// folder or address is reported before anything is served.
    pub fn new(config: Config, telemetry: Telemetry) -> Result<Self> {
        for dir in [
            config.data_dir.join("inputs"),
            config.data_dir.join("tmp"),
            config.output_dir.clone(),
        ] {
            std::fs::create_dir_all(&dir).map_err(|source| Error::Dir { dir, source })?;
        }
        let mut ingress = IngressTable::new(&config.ingress)?;
        let mut ledger = Ledger::new(config.egress.clone(), config.tasks.clone());
        let path = config.data_dir.join("journal");
        let (journal, events) = Journal::open(&path).map_err(|source| Error::Journal {
            path: path.clone(),
            source,
        })?;
        let replayed = events.len();
        for event in events {
            if let Event::Placed(placed) = &event {
                restore(&mut ingress, placed).map_err(|source| Error::Placement {
                    path: path.clone(),
                    placement: placed.placement,
                    source,
                })?;
            }
            apply(&mut ledger, event);
        }
        if replayed > 0 {
            let status = ledger.status();
            tracing::info!(
                events = replayed,
                submitted = status.submitted,
                done = status.done,
                failed = status.failed,
                placement = ledger.placement(),
                "replayed the journal"
            );
        }
        let metrics = telemetry.metrics();
        metrics
            .gauge("jupiter_inputs_in_flight", &[])
            .set(ledger.unfinished().len() as f64);
        // Every series from the start, at 0 until something happens: a
        // dashboard's rate() has something to read from the first scrape.
        for counter in [
            "jupiter_inputs_submitted_total",
            "jupiter_inputs_done_total",
            "jupiter_inputs_failed_total",
        ] {
            metrics.counter(counter, &[]).increment(0);
        }
        Ok(Self {
            config: Arc::new(config),
            ingress: Arc::new(Mutex::new(ingress)),
            ledger: Arc::new(Mutex::new(ledger)),
            journal: Arc::new(Mutex::new(journal)),
            feeds: Tasks::new(),
            telemetry,
            spans: Arc::default(),
        })
    }

    /// Journals `event`, then applies it to the ledger; an input it
    /// finishes no longer needs its kept copy.
    fn record(&self, event: Event) -> Result<(), Status> {
        let finished = {
            let mut journal = self.journal.locked();
            journal.append(event.clone()).map_err(|e| {
                Status::unavailable(format!("circe-home journal {}: {e}", journal.path().display()))
            })?;
            // Applied with the journal still held, so the ledger takes the
            // events in the journal's order: a replay then moves inputs to
            // the placement a restart would move them to.
            apply(&mut self.ledger(), event)
        };
        if let Some(input) = finished {
            self.finished(&input);
            let kept = self.config.data_dir.join("inputs").join(&input);
            if let Err(e) = std::fs::remove_file(&kept) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(input, error = %e, "removing the kept copy of a finished input");
                }
            }
        }
        Ok(())
    }

    /// Counts a finished input and ends its span where its makespan ends.
    fn finished(&self, input: &str) {
        let Some(result) = self.ledger().result(input).cloned() else {
            return;
        };
        let metrics = self.telemetry.metrics();
        metrics.gauge("jupiter_inputs_in_flight", &[]).decrement(1.0);
        if result.ok {
            metrics.counter("jupiter_inputs_done_total", &[]).increment(1);
            metrics
                .histogram("jupiter_input_makespan_seconds", &[])
                .record(result.makespan_ms / 1000.0);
        } else {
            metrics.counter("jupiter_inputs_failed_total", &[]).increment(1);
        }
        if let Some(span) = self.spans.locked().remove(input) {
            span.set(KeyValue::new("jupiter.ok", result.ok));
            span.set(KeyValue::new("jupiter.makespan_ms", result.makespan_ms));
            if result.ok {
                let end = result.submitted_at_unix_nanos + (result.makespan_ms * 1e6) as i64;
                span.end_at(at_unix_nanos(end));
            } else {
                span.fail(result.error.clone());
                span.end();
            }
        }
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
    /// worker of its placement until each acknowledges.
    async fn feed(self, input: String, path: PathBuf, size: u64) {
        let (attempt, placement) = {
            let ledger = self.ledger();
            (ledger.attempt(&input), ledger.placement_of(&input))
        };
        let Some(workers) = self.ingress.locked().workers(placement) else {
            // Cannot happen: a placement is given out only once its
            // workers are known (see `Home::ingress`).
            self.fail_feed(
                &input,
                format!("its placement {placement} has no ingress workers"),
            );
            return;
        };
        // Under the input's span; an input resumed after a restart of
        // circe-home starts a trace of its own.
        let parent = self
            .spans
            .locked()
            .get(&input)
            .map(OpenSpan::context)
            .unwrap_or_default();
        let mut sends = tokio::task::JoinSet::new();
        for worker in workers {
            let header = FileHeader {
                input_id: input.clone(),
                from_task: String::new(),
                file_name: input.clone(),
                file_count: 1,
                size,
                produced_at_unix_nanos: unix_nanos(),
                attempt,
                placement,
            };
            let ingress::Worker { task, url, client } = worker;
            let path = path.clone();
            let (telemetry, parent) = (self.telemetry.clone(), parent.clone());
            sends.spawn(async move {
                let what = format!("input {} to {task} at {url}", header.input_id);
                let push = telemetry.push(&parent, &header.input_id, "home", &task, PUSH_RPC);
                let (pushed, retries) = push_counting_retries(&what, || {
                    let mut client = client.clone();
                    let chunks = file_chunks(header.clone(), Some(path.clone()), Origin::Owned);
                    async move { client.push(chunks).await.map(|ack| ack.into_inner()) }
                })
                .with_context(push.context())
                .await;
                match &pushed {
                    Ok(ack) => push.end(ack.bytes, retries, None),
                    Err(status) => push.end(0, retries, Some(status.message())),
                }
                (task, pushed)
            });
        }
        while let Some(joined) = sends.join_next().await {
            if let Ok((task, Err(status))) = joined {
                self.fail_feed(&input, format!("feeding {task}: {}", status.message()));
            }
        }
    }

    fn fail_feed(&self, input: &str, error: String) {
        let failed = Event::Failed(Failed {
            input: input.to_string(),
            error,
        });
        if let Err(e) = self.record(failed) {
            tracing::error!(input, error = %e.message(), "recording a failed feed");
        }
    }

    /// Checks, journals and adds a new placement. The ingress table is held
    /// throughout, so that two calls cannot both take the same number and
    /// no input is given the new number before its workers are added.
    fn place(&self, request: SetPlacementRequest) -> Result<(), Status> {
        let SetPlacementRequest {
            placement,
            ingress,
            reason,
        } = request;
        let mut table = self.ingress.locked();
        if !is_new(&self.ledger(), placement, &ingress)? {
            return Ok(());
        }
        let workers = table
            .next(&ingress)
            .map_err(|e| Status::invalid_argument(format!("placement {placement}: {e}")))?;
        self.record(Event::Placed(Placed {
            placement,
            ingress,
            reason: reason.clone(),
            at_unix_nanos: unix_nanos(),
        }))?;
        table.add(workers);
        tracing::info!(placement, %reason, "new placement: inputs submitted from now on follow it");
        Ok(())
    }
}

/// Whether `placement` is the next one (true) or a repeat of the current
/// one with the same ingress workers (false: nothing to do); refused
/// otherwise.
fn is_new(ledger: &Ledger, placement: u32, ingress: &HashMap<String, String>) -> Result<bool, Status> {
    let current = ledger.placement();
    if placement == current + 1 {
        return Ok(true);
    }
    let next = current + 1;
    let moved = ledger.moved(placement).filter(|_| placement == current);
    match moved {
        Some(moved) if moved == ingress => Ok(false),
        Some(moved) => Err(Status::failed_precondition(format!(
            "placement {placement} is already set, with other ingress workers ({:?}); \
             the next placement is {next}",
            moved.iter().collect::<BTreeMap<_, _>>()
        ))),
        None => Err(Status::failed_precondition(format!(
            "placement {placement} asked, but the current placement is {current}: \
             only placement {next} can be set next"
        ))),
    }
}

/// Applies one journalled event to the ledger; the input it finished, if
/// it finished one.
fn apply(ledger: &mut Ledger, event: Event) -> Option<String> {
    match event {
        Event::Submitted(s) => {
            ledger.start(&s.input, s.at_unix_nanos, s.placement);
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
        Event::Placed(p) => {
            ledger.place(p.placement, p.ingress, p.reason, p.at_unix_nanos);
            None
        }
    }
}

/// Adds a journalled placement's ingress workers to the table, on a
/// restart. Only the placement after the latest is added, as the ledger
/// takes only that one: the two stay in step.
fn restore(table: &mut IngressTable, placed: &Placed) -> Result<(), IngressError> {
    if placed.placement == table.latest() + 1 {
        let workers = table.next(&placed.ingress)?;
        table.add(workers);
    }
    Ok(())
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
        jupiter_common::telemetry::spans::tag_input(&input);
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
        let at = unix_nanos();
        let submitted = Event::Submitted(Submitted {
            input: input.clone(),
            at_unix_nanos: at,
            placement: self.ledger().placement(),
        });
        if let Err(status) = self.record(submitted) {
            self.ledger().release(&input);
            return Err(status);
        }
        let metrics = self.telemetry.metrics();
        metrics
            .counter("jupiter_inputs_submitted_total", &[])
            .increment(1);
        metrics.gauge("jupiter_inputs_in_flight", &[]).increment(1.0);
        // The input's trace: under the Submit call, from the instant its
        // makespan starts to the one it ends.
        let span = self.telemetry.open(
            "input",
            SpanKind::Internal,
            &opentelemetry::Context::current(),
            at_unix_nanos(at),
            vec![KeyValue::new("jupiter.input_id", input.clone())],
        );
        self.spans.locked().insert(input.clone(), span);
        self.feeds.spawn(self.clone().feed(input.clone(), path, size));
        Ok(Response::new(SubmitAck { input_id: input }))
    }

    async fn deliver(&self, request: Request<Streaming<FileChunk>>) -> Result<Response<PushAck>, Status> {
        let mut stream = request.into_inner();
        let header = read_header(&mut stream).await?;
        jupiter_common::telemetry::spans::tag_input(&header.input_id);
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
        jupiter_common::telemetry::spans::tag_input(&report.input_id);
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

    async fn set_placement(
        &self,
        request: Request<SetPlacementRequest>,
    ) -> Result<Response<SetPlacementAck>, Status> {
        self.place(request.into_inner())?;
        Ok(Response::new(SetPlacementAck {}))
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
    let telemetry = Telemetry::start(&config.telemetry).await?;
    let home = Home::new(config, telemetry.clone())?;
    let _feeds = home.feeds.close_on_drop();
    home.resume();
    let mut routes = RoutesBuilder::default();
    routes.add_service(CirceHomeServer::new(home));
    serve::serve(
        listener,
        &telemetry,
        routes,
        &[CirceHomeServer::<Home>::NAME],
        shutdown,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_common::proto::circe::home::v1::circe_home_client::CirceHomeClient;
    use jupiter_common::proto::circe::worker::v1::circe_worker_server::{CirceWorker, CirceWorkerServer};
    use jupiter_common::proto::circe::worker::v1::{
        file_chunk::Kind, Routes, RoutesAck, StatusRequest, WorkerStatus,
    };
    use jupiter_common::role::Role;
    use jupiter_common::serve::Channel;
    use std::path::Path;
    use std::time::Duration;
    use tonic::Code;

    fn config(dir: &Path, ingress: &str) -> Config {
        Config {
            telemetry: jupiter_common::telemetry::Settings::off(jupiter_common::role::Role::CirceHome),
            data_dir: dir.join("data"),
            output_dir: dir.join("output"),
            ingress: vec![Ingress {
                task: "task0".into(),
                address: ingress.into(),
            }],
            egress: vec!["task0".into()],
            tasks: vec!["task0".into()],
        }
    }

    fn placement(placement: u32, moved: &[(&str, &str)]) -> SetPlacementRequest {
        SetPlacementRequest {
            placement,
            ingress: moved
                .iter()
                .map(|(t, u)| (t.to_string(), u.to_string()))
                .collect(),
            reason: format!("drift {placement}"),
        }
    }

    async fn set(home: &Home, request: SetPlacementRequest) -> Result<(), Status> {
        home.set_placement(Request::new(request)).await.map(|_| ())
    }

    /// The URL each ingress task's worker has under `placement`.
    fn urls(home: &Home, placement: u32) -> Vec<String> {
        let workers = home.ingress.locked().workers(placement).unwrap_or_default();
        workers
            .into_iter()
            .map(|w| format!("{}={}", w.task, w.url))
            .collect()
    }

    #[tokio::test]
    async fn set_placement_takes_only_the_next_one_and_known_ingress_tasks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::new(
            config(dir.path(), "http://w0:7301"),
            Telemetry::off(Role::CirceHome),
        )
        .expect("home");
        let error = set(&home, placement(2, &[("task0", "http://w1:7301")]))
            .await
            .expect_err("a skipped placement");
        assert_eq!(error.code(), Code::FailedPrecondition);
        assert_eq!(
            error.message(),
            "placement 2 asked, but the current placement is 0: only placement 1 can be set next"
        );
        let error = set(&home, placement(1, &[("task9", "http://w1:7301")]))
            .await
            .expect_err("an unknown task");
        assert_eq!(error.code(), Code::InvalidArgument);
        assert_eq!(
            error.message(),
            "placement 1: \"task9\" is not an ingress task of the app; its ingress tasks are [\"task0\"]"
        );
        let error = set(&home, placement(1, &[("task0", "http://w 1")]))
            .await
            .expect_err("a bad URL");
        assert_eq!(error.code(), Code::InvalidArgument);
        assert!(
            error
                .message()
                .starts_with("placement 1: ingress task task0: \"http://w 1\" is not a worker URL"),
            "{}",
            error.message()
        );
        assert_eq!(home.ledger().placement(), 0, "nothing refused is taken");
        set(&home, placement(1, &[("task0", "http://w1:7301")]))
            .await
            .expect("1");
        set(&home, placement(1, &[("task0", "http://w1:7301")]))
            .await
            .expect("1 again");
        let error = set(&home, placement(1, &[("task0", "http://w2:7301")]))
            .await
            .expect_err("1 with other workers");
        assert_eq!(error.code(), Code::FailedPrecondition);
        assert_eq!(
            error.message(),
            "placement 1 is already set, with other ingress workers ({\"task0\": \"http://w1:7301\"}); \
             the next placement is 2"
        );
        let error = set(&home, placement(0, &[])).await.expect_err("0");
        assert_eq!(error.code(), Code::FailedPrecondition);
        assert_eq!(urls(&home, 1), ["task0=http://w1:7301"]);
        let status = home.ledger().status();
        assert_eq!(status.placements.len(), 1);
        assert_eq!(status.placements[0].reason, "drift 1");
    }

    #[tokio::test]
    async fn a_restart_restores_the_placement_and_its_ingress_workers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::new(
            config(dir.path(), "http://w0:7301"),
            Telemetry::off(Role::CirceHome),
        )
        .expect("home");
        set(&home, placement(1, &[("task0", "http://w1:7301")]))
            .await
            .expect("1");
        drop(home);
        let home = Home::new(
            config(dir.path(), "http://w0:7301"),
            Telemetry::off(Role::CirceHome),
        )
        .expect("restarted home");
        assert_eq!(home.ledger().placement(), 1);
        assert_eq!(urls(&home, 0), ["task0=http://w0:7301"]);
        assert_eq!(urls(&home, 1), ["task0=http://w1:7301"]);
        set(&home, placement(1, &[("task0", "http://w1:7301")]))
            .await
            .expect("1 again after the restart");
        set(&home, placement(2, &[])).await.expect("2");
        assert_eq!(
            urls(&home, 2),
            ["task0=http://w1:7301"],
            "an unnamed task keeps its worker"
        );
    }

    /// A CirceWorker that takes every input and keeps its header.
    #[derive(Clone, Default)]
    struct FakeWorker {
        headers: Arc<Mutex<Vec<FileHeader>>>,
    }

    impl FakeWorker {
        /// Serves one on 127.0.0.1; it and its URL.
        async fn start() -> (Self, String) {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let url = serve::url_of(&listener).expect("url");
            let worker = Self::default();
            let mut routes = RoutesBuilder::default();
            routes.add_service(CirceWorkerServer::new(worker.clone()));
            let names = [CirceWorkerServer::<Self>::NAME];
            tokio::spawn(async move {
                let telemetry = Telemetry::off(Role::CirceWorker);
                serve::serve(listener, &telemetry, routes, &names, std::future::pending()).await
            });
            (worker, url)
        }

        /// Waits until it was fed `input`; the header it came with.
        async fn fed(&self, input: &str) -> FileHeader {
            let wait = async {
                loop {
                    if let Some(header) = self.headers.locked().iter().find(|h| h.input_id == input) {
                        return header.clone();
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(10), wait)
                .await
                .expect("fed in time")
        }

        fn inputs(&self) -> Vec<String> {
            self.headers.locked().iter().map(|h| h.input_id.clone()).collect()
        }
    }

    #[tonic::async_trait]
    impl CirceWorker for FakeWorker {
        async fn push(&self, request: Request<Streaming<FileChunk>>) -> Result<Response<PushAck>, Status> {
            let mut stream = request.into_inner();
            let header = read_header(&mut stream).await?;
            let mut bytes = 0;
            while let Some(chunk) = stream.message().await? {
                if let Some(Kind::Data(data)) = chunk.kind {
                    bytes += data.len() as u64;
                }
            }
            self.headers.locked().push(header);
            Ok(Response::new(PushAck {
                duplicate: false,
                bytes,
            }))
        }

        async fn status(&self, _request: Request<StatusRequest>) -> Result<Response<WorkerStatus>, Status> {
            Ok(Response::new(WorkerStatus::default()))
        }

        async fn set_routes(&self, _request: Request<Routes>) -> Result<Response<RoutesAck>, Status> {
            Ok(Response::new(RoutesAck {}))
        }
    }

    async fn submit(client: &mut CirceHomeClient<Channel>, dir: &Path, input: &str) {
        let path = dir.join(input);
        std::fs::write(&path, b"an input").expect("write");
        let header = FileHeader {
            input_id: input.into(),
            file_name: input.into(),
            file_count: 1,
            size: 8,
            ..FileHeader::default()
        };
        client
            .submit(file_chunks(header, Some(path), Origin::Foreign))
            .await
            .expect("submit");
    }

    #[tokio::test]
    async fn inputs_submitted_after_a_new_placement_go_to_its_ingress_worker() {
        let (old, old_url) = FakeWorker::start().await;
        let (new, new_url) = FakeWorker::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = serve::url_of(&listener).expect("url");
        let home = tokio::spawn(serve(
            config(dir.path(), &old_url),
            listener,
            std::future::pending(),
        ));
        let mut client = CirceHomeClient::new(serve::channel(&url).expect("channel"));
        submit(&mut client, dir.path(), "before").await;
        assert_eq!(old.fed("before").await.placement, 0);
        client
            .set_placement(placement(1, &[("task0", &new_url)]))
            .await
            .expect("set placement 1");
        submit(&mut client, dir.path(), "after").await;
        assert_eq!(new.fed("after").await.placement, 1);
        assert_eq!(old.inputs(), ["before"]);
        assert_eq!(new.inputs(), ["after"]);
        // A replay feeds the input still in flight on placement 0 again,
        // now under placement 1, to the new worker.
        let replayed = client
            .replay(ReplayRequest {
                reason: "node lost".into(),
            })
            .await
            .expect("replay")
            .into_inner();
        assert_eq!(replayed.inputs, ["after", "before"]);
        let header = new.fed("before").await;
        assert_eq!((header.placement, header.attempt), (1, 1));
        let status = client
            .status(HomeStatusRequest {})
            .await
            .expect("status")
            .into_inner();
        let counts: Vec<_> = status
            .placements
            .iter()
            .map(|p| (p.placement, p.inputs, p.unfinished))
            .collect();
        assert_eq!(counts, [(1, 2, 2)]);
        home.abort();
    }
}
