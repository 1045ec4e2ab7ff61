//! CIRCE worker: one per task, on the task's node. Files arrive over gRPC
//! into a durable queue; as soon as every parent's output for an input is
//! there the task runs (several inputs may be in flight along the DAG); its
//! outputs stream to the children's workers, or to circe-home for an egress
//! task. A restart on the same queue directory picks up where it stopped.

mod args;
pub mod firing;
pub mod queue;
pub mod replay;
pub mod routes;
pub mod routing;
pub mod runner;
pub mod sender;
mod service;
pub mod warm;

pub use args::Args;

use jupiter_common::app::{AppError, TaskRunner, TaskSpec};
use jupiter_common::cli::FlagError;
use jupiter_common::clock::{ms_between, unix_nanos};
use jupiter_common::dirlock::{DirLock, LockError as DirLockError};
use jupiter_common::proto::circe::home::v1::circe_home_client::CirceHomeClient;
use jupiter_common::proto::circe::home::v1::TaskReport;
use jupiter_common::proto::circe::worker::v1::FileHeader;
use jupiter_common::serve::{self, ServeError};
use jupiter_common::sync::LockExt;
use jupiter_common::task::Tasks;
use jupiter_common::telemetry::propagation::{from_traceparent, traceparent};
use jupiter_common::telemetry::spans::at_unix_nanos;
use jupiter_common::telemetry::{OpenSpan, Telemetry};
use jupiter_common::transfer::push_until_acked;
use metrics::{Counter, Gauge, Histogram};
use opentelemetry::trace::{FutureExt as _, SpanKind, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};
use queue::{DoneRecord, Queue, HOME_SOURCE};
use routes::Routes;
use sender::Downstream;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The calls outputs go by, as their spans name them.
const PUSH_RPC: (&str, &str) = ("jupiter.circe.worker.v1.CirceWorker", "Push");
const DELIVER_RPC: (&str, &str) = ("jupiter.circe.home.v1.CirceHome", "Deliver");

/// A child task and where its worker listens.
#[derive(Debug, Clone)]
pub struct ChildEndpoint {
    pub task: String,
    pub address: String,
}

/// Everything one worker needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Spans and metrics: `--otlp-endpoint`, `--metrics-listen`.
    pub telemetry: jupiter_common::telemetry::Settings,
    pub task: TaskSpec,
    pub app_dir: PathBuf,
    pub node: String,
    pub queue_dir: PathBuf,
    /// What pushes may announce, and how many inputs may wait at once.
    pub limits: jupiter_common::limits::Limits,
    pub children: Vec<ChildEndpoint>,
    /// circe-home's URL: egress outputs and task reports go there.
    pub home: String,
    /// Python for legacy tasks.
    pub python: String,
    /// Python tasks: a new interpreter per input instead of warm ones, for
    /// every task (a task can also ask for it itself).
    pub fresh_interpreter: bool,
}

/// Everything that stops a worker from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Telemetry(#[from] jupiter_common::telemetry::TelemetryError),
    #[error("--app: {0}")]
    App(#[from] AppError),
    #[error("--task {task:?} is not in the app at {}", app.display())]
    UnknownTask { task: String, app: PathBuf },
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error("queue directory {dir}: {source}")]
    Queue { dir: PathBuf, source: std::io::Error },
    #[error("address: {0}")]
    Address(#[from] tonic::transport::Error),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Routes(#[from] routes::RoutesError),
    #[error("queue directory: {0}")]
    Lock(#[from] DirLockError),
}

/// How long a worker waits for another owner of its queue folder to let go.
const QUEUE_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Default)]
struct Counters {
    /// Inputs with some files, not complete yet.
    partial: HashSet<String>,
    /// When each partial input's first file came (this run of the worker):
    /// `--input-timeout` counts from it.
    waiting_since: HashMap<String, std::time::Instant>,
    /// Inputs complete, waiting for a free slot; value: when they became ready.
    ready_at: HashMap<String, i64>,
    scheduled: HashSet<String>,
    /// Latest producer timestamp seen per input (for the hop time; a
    /// restart forgets it, which only shortens the measured hop).
    produced_at: HashMap<String, i64>,
    /// The context of the call that brought each input's latest file: the
    /// parent of the input's task span.
    arrived_under: HashMap<String, Context>,
    running: u32,
    sending: u32,
    done: u64,
    failed: u64,
    /// Why the last file was refused, while the queue's disk is full.
    storage_full: Option<String>,
}

impl Counters {
    /// An input that stops waiting here without running (superseded by a
    /// replay, or past `--input-timeout`).
    fn forget_waiting(&mut self, input: &str) {
        self.partial.remove(input);
        self.waiting_since.remove(input);
        self.produced_at.remove(input);
        self.arrived_under.remove(input);
    }
}

/// The worker's shared state: its queue, its downstreams and its tasks.
pub(crate) struct Worker {
    config: Config,
    queue: Queue,
    sources: Vec<String>,
    /// Where outputs go, per placement.
    routes: Routes,
    home: CirceHomeClient<jupiter_common::serve::Channel>,
    legacy_runner: PathBuf,
    /// Warm interpreters of a legacy task (none with --fresh-interpreter).
    warm: Option<warm::Pool>,
    slots: Semaphore,
    counters: Mutex<Counters>,
    /// Task runs and deliveries: they end with the worker's server.
    tasks: Tasks,
    telemetry: Telemetry,
    /// The worker's histograms and counters, labelled once.
    timings: Timings,
    /// The queue folder is this worker's alone while it lives: held until
    /// the last of its tasks is gone (each holds the worker).
    _lock: DirLock,
}

/// This worker's per-task series.
struct Timings {
    run: Histogram,
    queue_wait: Histogram,
    transfer: Histogram,
    ok: Counter,
    failed: Counter,
    depth: Gauge,
}

impl Timings {
    fn new(telemetry: &Telemetry, task: &str, node: &str) -> Self {
        let m = telemetry.metrics();
        let labels = [("task", task), ("node", node)];
        let runs = |outcome| {
            m.counter(
                "jupiter_task_runs_total",
                &[labels[0], labels[1], ("outcome", outcome)],
            )
        };
        Self {
            run: m.histogram("jupiter_task_run_seconds", &labels),
            queue_wait: m.histogram("jupiter_task_queue_wait_seconds", &labels),
            transfer: m.histogram("jupiter_task_transfer_seconds", &labels),
            ok: runs("ok"),
            failed: runs("failed"),
            depth: m.gauge("jupiter_queue_depth", &labels),
        }
    }
}

impl Worker {
    fn new(mut config: Config, telemetry: Telemetry, lock: DirLock) -> Result<Arc<Self>> {
        let python_task = matches!(config.task.runner, TaskRunner::Python { .. });
        if python_task {
            config.python = runner::resolve_python(&config.python);
        }
        let queue_err = |source| Error::Queue {
            dir: config.queue_dir.clone(),
            source,
        };
        let queue = Queue::open(&config.queue_dir).map_err(queue_err)?;
        let legacy_runner = runner::install_legacy_runner(queue.root()).map_err(queue_err)?;
        let fresh = config.fresh_interpreter || config.task.fresh_interpreter;
        let warm = (python_task && !fresh).then(|| {
            warm::Pool::new(
                &config.python,
                &legacy_runner,
                &queue.tmp(),
                config.task.max_calls,
            )
        });
        let home = CirceHomeClient::new(serve::channel(&config.home)?);
        let downstream = if config.children.is_empty() {
            vec![Downstream::Home(home.clone())]
        } else {
            config
                .children
                .iter()
                .map(|c| Downstream::worker(&c.task, &c.address))
                .collect::<Result<_, tonic::transport::Error>>()?
        };
        let routes = Routes::open(&config.task.name, queue.root(), downstream)?;
        let sources = if config.task.parents.is_empty() {
            vec![HOME_SOURCE.to_string()]
        } else {
            config.task.parents.clone()
        };
        let timings = Timings::new(&telemetry, &config.task.name, &config.node);
        Ok(Arc::new(Self {
            _lock: lock,
            telemetry,
            timings,
            slots: Semaphore::new(config.task.parallelism.max(1)),
            config,
            queue,
            sources,
            routes,
            home,
            legacy_runner,
            warm,
            counters: Mutex::default(),
            tasks: Tasks::new(),
        }))
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.locked()
    }

    /// Inputs waiting here: files arriving, or complete and waiting for a slot.
    fn show_depth(&self, c: &Counters) {
        self.timings
            .depth
            .set((c.partial.len() + c.ready_at.len()) as f64);
    }

    fn spawn(self: &Arc<Self>, fut: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(fut);
    }

    /// Picks up what a previous run of this worker left in the queue.
    fn recover(self: &Arc<Self>) -> Result<()> {
        // A `tracing` span: in a worker's own process it is exported through
        // tracing-opentelemetry, like any `tracing` span of the roles.
        let _span = tracing::info_span!("recover queue", jupiter.task = %self.config.task.name).entered();
        let recovered = self.queue.recover().map_err(|source| Error::Queue {
            dir: self.config.queue_dir.clone(),
            source,
        })?;
        {
            let mut c = self.counters();
            c.done = recovered.finished;
            c.failed = recovered.failed;
        }
        if !recovered.pending.is_empty() || !recovered.to_send.is_empty() {
            tracing::info!(task = %self.config.task.name, pending = recovered.pending.len(),
                to_send = recovered.to_send.len(), "recovering queue");
        }
        for (input, record) in recovered.to_send {
            self.counters().scheduled.insert(input.clone());
            let worker = self.clone();
            self.spawn(async move { worker.deliver(input, record, OpenSpan::default()).await });
        }
        for input in recovered.pending {
            self.on_arrival(&input);
        }
        Ok(())
    }

    pub(crate) fn note_produced(&self, input: &str, at: i64) {
        let mut c = self.counters();
        if !c.scheduled.contains(input) {
            let entry = c.produced_at.entry(input.to_string()).or_insert(at);
            *entry = (*entry).max(at);
        }
    }

    /// Whether a file of `input` may come in: an input already here always
    /// may; a new one only while fewer than `--max-waiting-inputs` inputs
    /// wait for their parents' files.
    pub(crate) fn admit(&self, input: &str) -> Result<(), tonic::Status> {
        let c = self.counters();
        if c.partial.contains(input) || c.scheduled.contains(input) || c.ready_at.contains_key(input) {
            return Ok(());
        }
        self.config.limits.check_waiting(c.partial.len())
    }

    /// A file (or marker) for `input` is durable: run the task if it is complete.
    pub(crate) fn on_arrival(self: &Arc<Self>, input: &str) {
        if self.counters().scheduled.contains(input) || self.queue.is_closed(input) {
            return;
        }
        let (id, pass) = replay::split(input);
        if pass.attempt > 0 {
            self.drop_superseded(id, pass.attempt);
        }
        // Called in the Push call that brought the file: its span is the
        // parent of the input's task span.
        let cx = Context::current();
        if cx.span().span_context().is_valid() {
            self.counters().arrived_under.insert(input.to_string(), cx);
        }
        match self.queue.complete(input, &self.sources) {
            Ok(true) => {}
            Ok(false) => {
                let mut c = self.counters();
                c.partial.insert(input.to_string());
                c.waiting_since
                    .entry(input.to_string())
                    .or_insert_with(std::time::Instant::now);
                self.show_depth(&c);
                return;
            }
            Err(e) => {
                tracing::error!(task = %self.config.task.name, input, error = %e, "reading queue");
                return;
            }
        };
        let (produced_at, ready_at, parent);
        {
            let mut c = self.counters();
            if !c.scheduled.insert(input.to_string()) {
                return;
            }
            c.partial.remove(input);
            c.waiting_since.remove(input);
            let now = unix_nanos();
            c.ready_at.insert(input.to_string(), now);
            produced_at = c.produced_at.remove(input).unwrap_or(now);
            parent = c.arrived_under.remove(input).unwrap_or_default();
            ready_at = now;
            self.show_depth(&c);
        }
        let (id, pass) = replay::split(input);
        let span = self.telemetry.open(
            format!("task {}", self.config.task.name),
            SpanKind::Internal,
            &parent,
            at_unix_nanos(ready_at),
            vec![
                KeyValue::new("jupiter.input_id", id.to_string()),
                KeyValue::new("jupiter.task", self.config.task.name.clone()),
                KeyValue::new("jupiter.node", self.config.node.clone()),
                KeyValue::new("jupiter.attempt", i64::from(pass.attempt)),
                KeyValue::new("jupiter.placement", i64::from(pass.placement)),
            ],
        );
        let worker = self.clone();
        let input = input.to_string();
        self.spawn(async move { worker.process(input, produced_at, span).await });
    }

    /// A replay supersedes the input's earlier passes still waiting here
    /// for files (a parent of theirs was on the lost node): they are
    /// retired, so that they do not wait for ever, and their late files are
    /// duplicates. A pass already running or sending finishes (circe-home
    /// keeps the first copy of each output).
    fn drop_superseded(self: &Arc<Self>, id: &str, attempt: u32) {
        let stale: Vec<String> = {
            let mut c = self.counters();
            let stale: Vec<String> = c
                .partial
                .iter()
                .filter(|key| {
                    let (other, pass) = replay::split(key);
                    other == id && pass.attempt < attempt
                })
                .cloned()
                .collect();
            for key in &stale {
                c.forget_waiting(key);
            }
            self.show_depth(&c);
            stale
        };
        for key in stale {
            let worker = self.clone();
            self.spawn(async move {
                tracing::info!(task = %worker.config.task.name, input = %key, "a replay supersedes this waiting pass");
                if let Err(e) = worker.queue.finish(&key).await {
                    tracing::error!(input = %key, error = %e, "retiring a superseded pass");
                }
            });
        }
    }

    /// `--input-timeout`: fails, now and then, the inputs that have waited
    /// longer than it for their parents' files, naming what is missing.
    async fn expire_waiting(self: Arc<Self>, timeout: std::time::Duration) {
        let every = (timeout / 4).clamp(
            std::time::Duration::from_millis(50),
            std::time::Duration::from_secs(1),
        );
        loop {
            tokio::time::sleep(every).await;
            let expired: Vec<(String, std::time::Duration)> = {
                let mut c = self.counters();
                let expired: Vec<(String, std::time::Duration)> = c
                    .waiting_since
                    .iter()
                    .map(|(input, since)| (input.clone(), since.elapsed()))
                    .filter(|(_, waited)| *waited > timeout)
                    .collect();
                for (input, _) in &expired {
                    c.forget_waiting(input);
                }
                self.show_depth(&c);
                expired
            };
            for (input, waited) in expired {
                let missing = match self.queue.missing(&input, &self.sources) {
                    Ok(missing) => missing.join(", "),
                    Err(e) => format!("unknown ({e})"),
                };
                let error = format!(
                    "waited {:.1} s for its parents' files, past --input-timeout {:.1} s; missing: {missing}",
                    waited.as_secs_f64(),
                    timeout.as_secs_f64()
                );
                self.fail(&input, error, &OpenSpan::default()).await;
            }
        }
    }

    /// Runs the task for one complete input, then sends its outputs on.
    async fn process(self: Arc<Self>, input: String, produced_at: i64, span: OpenSpan) {
        let Ok(_slot) = self.slots.acquire().await else {
            return;
        };
        let started = unix_nanos();
        let ready_at = {
            let mut c = self.counters();
            c.running += 1;
            let ready_at = c.ready_at.remove(&input).unwrap_or(started);
            self.show_depth(&c);
            ready_at
        };
        let parent = span.context();
        let id = KeyValue::new("jupiter.input_id", replay::split(&input).0.to_string());
        self.telemetry.record(
            "queue wait",
            &parent,
            at_unix_nanos(ready_at),
            at_unix_nanos(started),
            vec![id.clone()],
        );
        let result = self.run(&input).await;
        let finished = unix_nanos();
        self.counters().running -= 1;
        drop(_slot);
        let exit = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        let run = self.telemetry.open(
            "run",
            SpanKind::Internal,
            &parent,
            at_unix_nanos(started),
            vec![KeyValue::new("jupiter.exit", exit.clone()), id],
        );
        if result.is_err() {
            run.fail(exit);
        }
        run.end_at(at_unix_nanos(finished));
        self.timings
            .queue_wait
            .record(ms_between(ready_at, started) / 1000.0);
        self.timings.run.record(ms_between(started, finished) / 1000.0);
        match result {
            Ok(outputs) => {
                let record = DoneRecord {
                    outputs,
                    produced_at: finished,
                    queue_wait_ms: ms_between(ready_at, started),
                    run_ms: ms_between(started, finished),
                    hop_ms: ms_between(produced_at, started),
                    started_at: started,
                    trace: traceparent(&parent),
                };
                if let Err(e) = self.queue.write_done(&input, &record).await {
                    self.fail(&input, format!("recording outputs: {e}"), &span).await;
                    return;
                }
                self.deliver(input, record, span).await;
            }
            Err(e) => self.fail(&input, e, &span).await,
        }
    }

    async fn run(&self, input: &str) -> Result<Vec<String>, runner::RunError> {
        let inputs = self
            .queue
            .input_files(input, &self.sources)
            .map_err(runner::RunError::Inputs)?;
        let dirs = runner::RunDirs {
            app_dir: &self.config.app_dir,
            work_dir: self.queue.work_dir(input),
            out_dir: self.queue.out_dir(input),
            legacy_runner: &self.legacy_runner,
            python: &self.config.python,
            warm: self.warm.as_ref(),
            result_file: self.queue.tmp().join(format!("{input}.result.json")),
            spares: self.queue.spares(),
        };
        // The task sees the input's id, whichever pass this is.
        let id = replay::split(input).0;
        let outputs = runner::run(&self.config.task, id, &inputs, &dirs).await?;
        routing::check(&outputs, &self.config.task.children, self.config.task.route).map_err(|source| {
            runner::RunError::Route {
                task: self.config.task.name.clone(),
                source,
            }
        })?;
        Ok(outputs)
    }

    async fn fail(&self, input: &str, error: impl ToString, span: &OpenSpan) {
        let error = error.to_string();
        self.timings.failed.increment(1);
        span.fail(error.clone());
        tracing::warn!(task = %self.config.task.name, input, %error, "task failed");
        if let Err(e) = self.queue.write_failed(input, &error).await {
            tracing::error!(input, error = %e, "recording failure");
        }
        self.counters().failed += 1;
        // Ended before the report goes, as in `deliver`.
        let context = span.context();
        span.end();
        let (id, pass) = replay::split(input);
        self.report(TaskReport {
            input_id: id.to_string(),
            task: self.config.task.name.clone(),
            node: self.config.node.clone(),
            error,
            attempt: pass.attempt,
            ..Default::default()
        })
        .with_context(context)
        .await;
    }

    /// Sends every output to every child it is routed to (or home), then
    /// reports and retires the input.
    async fn deliver(self: Arc<Self>, input: String, record: DoneRecord, span: OpenSpan) {
        self.counters().sending += 1;
        let started = unix_nanos();
        // A delivery resumed after a restart has no open task span: its
        // transfer goes under the kept one.
        let parent = match span.context() {
            cx if cx.span().span_context().is_valid() => cx,
            _ => from_traceparent(&record.trace),
        };
        let transfer = self.telemetry.open(
            "transfer",
            SpanKind::Internal,
            &parent,
            at_unix_nanos(started),
            vec![KeyValue::new(
                "jupiter.input_id",
                replay::split(&input).0.to_string(),
            )],
        );
        let under = transfer.context();
        let routed = if self.config.children.is_empty() {
            vec![record.outputs.iter().map(String::as_str).collect()]
        } else {
            // One list per child, in the order of the task's children.
            routing::route(
                &record.outputs,
                &self.config.task.children,
                self.config.task.route,
            )
        };
        let out_dir = self.queue.out_dir(&input);
        let (id, pass) = replay::split(&input);
        let mut sends = JoinSet::new();
        // The workers of the input's placement, in the task's children's order.
        for (target, files) in self.routes.of(pass.placement).into_iter().zip(routed) {
            let files: Vec<String> = files.into_iter().map(str::to_string).collect();
            let header = FileHeader {
                input_id: id.to_string(),
                attempt: pass.attempt,
                placement: pass.placement,
                from_task: self.config.task.name.clone(),
                file_name: String::new(),
                file_count: files.len() as u32,
                size: 0,
                produced_at_unix_nanos: record.produced_at,
            };
            let out_dir = out_dir.clone();
            let (worker, under) = (self.clone(), under.clone());
            sends.spawn(async move {
                let from = worker.config.task.name.as_str();
                let (to, rpc) = match &target {
                    sender::Downstream::Home(_) => ("home", DELIVER_RPC),
                    worker => (worker.name(), PUSH_RPC),
                };
                let push = worker.telemetry.push(&under, &header.input_id, from, to, rpc);
                let (mut bytes, mut retries) = (0, 0);
                let sent = async {
                    if files.is_empty() {
                        let (ack, tries) = target.push(header, None).await;
                        retries += tries;
                        return ack.map(|_| ());
                    }
                    for name in files {
                        let path = out_dir.join(&name);
                        let size = tokio::fs::metadata(&path)
                            .await
                            .map_err(|e| tonic::Status::internal(format!("output {name}: {e}")))?
                            .len();
                        let header = FileHeader {
                            file_name: name,
                            size,
                            ..header.clone()
                        };
                        let (ack, tries) = target.push(header, Some(path)).await;
                        retries += tries;
                        ack?;
                        bytes += size;
                    }
                    Ok(())
                }
                .with_context(push.context())
                .await;
                push.end(bytes, retries, sent.as_ref().err().map(tonic::Status::message));
                sent
            });
        }
        let mut error = None;
        while let Some(result) = sends.join_next().await {
            match result {
                Ok(Ok(())) => {}
                Ok(Err(status)) => error = Some(format!("sending outputs: {}", status.message())),
                Err(e) => error = Some(format!("sending outputs: {e}")),
            }
        }
        self.counters().sending -= 1;
        let sent = unix_nanos();
        if let Some(error) = error {
            transfer.fail(error.clone());
            transfer.end_at(at_unix_nanos(sent));
            self.fail(&input, error, &span).await;
            return;
        }
        transfer.end_at(at_unix_nanos(sent));
        self.timings.transfer.record(ms_between(started, sent) / 1000.0);
        self.timings.ok.increment(1);
        let report = TaskReport {
            input_id: replay::split(&input).0.to_string(),
            task: self.config.task.name.clone(),
            node: self.config.node.clone(),
            queue_wait_ms: record.queue_wait_ms,
            run_ms: record.run_ms,
            transfer_ms: ms_between(started, sent),
            hop_ms: record.hop_ms,
            error: String::new(),
            outputs: record.outputs.len() as u32,
            started_at_unix_nanos: record.started_at,
            sent_at_unix_nanos: started,
            attempt: replay::split(&input).1.attempt,
        };
        // Ended before the report goes: the last report lets the run
        // finish and the deployment stop, and a span ended after that could
        // miss the worker's last export.
        span.end_at(at_unix_nanos(sent));
        self.report(report).with_context(parent).await;
        if let Err(e) = self.queue.finish(&input).await {
            tracing::error!(input, error = %e, "retiring input");
        }
        let mut c = self.counters();
        c.done += 1;
        c.scheduled.remove(&input);
    }

    /// Reports to circe-home until it acknowledges: an input is complete
    /// only once every task reported, so a report is retried through a
    /// restart of circe-home like any push (the worker keeps the input's
    /// outputs until then, and a repeated report changes nothing).
    async fn report(&self, report: TaskReport) {
        let what = format!("report of {} for input {}", report.task, report.input_id);
        let sent = push_until_acked(&what, || {
            let mut home = self.home.clone();
            let report = report.clone();
            async move { home.report_task(report).await }
        })
        .await;
        if let Err(e) = sent {
            tracing::warn!(input = %report.input_id, error = %e.message(), "circe-home refused a report");
        }
    }
}

/// Runs a worker on `listener`: recovers its queue, then serves until
/// `shutdown`. Dropping the returned future (aborting its task) stops the
/// server and every task run and delivery at once, as a crash would; the
/// queue on disk lets a successor pick up from there.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let telemetry = Telemetry::start(&config.telemetry).await?;
    // A previous incarnation in this process (a restart) may still be
    // tearing its tasks down: its runs and sends must end before this one
    // recovers the queue they work on.
    let lock = DirLock::acquire(&config.queue_dir, QUEUE_LOCK_WAIT).await?;
    let worker = Worker::new(config, telemetry.clone(), lock)?;
    let _tasks = worker.tasks.close_on_drop();
    worker.recover()?;
    if let Some(timeout) = worker.config.limits.input_timeout {
        worker.spawn(worker.clone().expire_waiting(timeout));
    }
    service::serve(worker, listener, shutdown).await?;
    Ok(())
}
