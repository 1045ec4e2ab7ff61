//! Streaming inputs through a deployment: submit files to circe-home, follow
//! the results as they finish, with a progress bar while inputs are in flight.

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use jupiter_common::proto::circe::home::v1::circe_home_client::CirceHomeClient;
use jupiter_common::proto::circe::home::v1::{InputResult, WatchRequest};
use jupiter_common::proto::circe::worker::v1::FileHeader;
use jupiter_common::retry::Backoff;
use jupiter_common::serve;
use jupiter_common::serve::Channel;
use jupiter_common::transfer::{file_chunks, Origin};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How many submissions are in the air at once.
const SUBMIT_CONCURRENCY: usize = 16;
/// How long a submission keeps retrying while circe-home cannot be reached
/// (it restarts within seconds when supervised).
const SUBMIT_PATIENCE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("input {path}: {source}")]
    Input { path: String, source: std::io::Error },
    #[error("no inputs: give --input PATH (a file or a folder), or add sample inputs to the app")]
    NoInputs,
    #[error("inputs {first} and {second} have the same file name; an input's file name is its id")]
    DuplicateName { first: String, second: String },
    #[error("submitting {path}: {message}")]
    Submit { path: String, message: String },
    #[error("following results from circe-home: {0}")]
    Watch(String),
    #[error("timed out after {waited:?} with {missing} of {total} inputs unfinished")]
    Timeout {
        waited: Duration,
        missing: usize,
        total: usize,
    },
    #[error("the deployment broke while inputs were in flight ({finished} of {total} finished): {reason}")]
    Broken {
        reason: String,
        finished: usize,
        total: usize,
    },
    #[error("address: {0}")]
    Address(#[from] tonic::transport::Error),
}

/// Expands files and folders (every regular file inside, sorted) into input files.
pub fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SessionError> {
    let mut files = Vec::new();
    for path in paths {
        let err = |source| SessionError::Input {
            path: path.display().to_string(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(err)?;
        if meta.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(err)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        return Err(SessionError::NoInputs);
    }
    let mut seen: BTreeMap<String, &PathBuf> = BTreeMap::new();
    for file in &files {
        let name = input_id(file);
        if let Some(first) = seen.insert(name, file) {
            return Err(SessionError::DuplicateName {
                first: first.display().to_string(),
                second: file.display().to_string(),
            });
        }
    }
    Ok(files)
}

/// An input's id: its file name.
pub fn input_id(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub async fn client(circe_home: &str) -> Result<CirceHomeClient<Channel>, SessionError> {
    Ok(CirceHomeClient::new(serve::channel(circe_home)?))
}

/// Submits every file; returns the ids in order.
pub async fn submit_all(
    client: &CirceHomeClient<Channel>,
    files: &[PathBuf],
) -> Result<Vec<String>, SessionError> {
    let submissions = futures::stream::iter(files.iter().cloned().map(|path| {
        let mut client = client.clone();
        async move {
            let fail = |message: String| SessionError::Submit {
                path: path.display().to_string(),
                message,
            };
            let size = tokio::fs::metadata(&path)
                .await
                .map_err(|e| fail(e.to_string()))?
                .len();
            let header = FileHeader {
                input_id: input_id(&path),
                file_name: input_id(&path),
                file_count: 1,
                size,
                ..Default::default()
            };
            let deadline = tokio::time::Instant::now() + SUBMIT_PATIENCE;
            let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
            let mut retried = false;
            loop {
                let chunks = file_chunks(header.clone(), Some(path.clone()), Origin::Foreign);
                match client.submit(chunks).await {
                    Ok(ack) => return Ok(ack.into_inner().input_id),
                    // An earlier attempt got through before circe-home went away.
                    Err(s) if retried && s.code() == tonic::Code::AlreadyExists => {
                        return Ok(header.input_id.clone())
                    }
                    Err(s) if transient(&s) && tokio::time::Instant::now() < deadline => {
                        retried = true;
                        backoff.wait().await;
                    }
                    Err(s) => return Err(fail(s.message().to_string())),
                }
            }
        }
    }))
    .buffered(SUBMIT_CONCURRENCY);
    submissions
        .collect::<Vec<Result<String, SessionError>>>()
        .await
        .into_iter()
        .collect()
}

/// Whether a failed call may succeed if tried again: circe-home was
/// unreachable or went away in the middle (a restart), as opposed to
/// refusing the request.
fn transient(status: &tonic::Status) -> bool {
    use tonic::Code::*;
    matches!(
        status.code(),
        Unavailable | Unknown | Cancelled | Aborted | DeadlineExceeded | Internal
    )
}

/// circe-home's stream of finished inputs, which follows circe-home
/// through a restart: when the stream breaks it subscribes again, and the
/// new stream starts with every input finished so far (circe-home replays
/// its journal), so no result is missed; callers key results by input id.
pub struct Results {
    client: CirceHomeClient<Channel>,
    stream: tonic::Streaming<InputResult>,
}

impl Results {
    /// The next result; reconnects for as long as it is awaited.
    async fn next(&mut self, bar: &ProgressBar) -> Result<InputResult, SessionError> {
        loop {
            match self.stream.next().await {
                Some(Ok(result)) => return Ok(result),
                Some(Err(status)) if !transient(&status) => {
                    return Err(SessionError::Watch(status.message().to_string()))
                }
                _ => {}
            }
            bar.set_message("(circe-home unreachable: reconnecting)");
            tracing::info!("circe-home's result stream broke; subscribing again");
            let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
            loop {
                backoff.wait().await;
                match self.client.watch_results(WatchRequest {}).await {
                    Ok(stream) => {
                        self.stream = stream.into_inner();
                        break;
                    }
                    Err(status) if !transient(&status) => {
                        return Err(SessionError::Watch(status.message().to_string()))
                    }
                    Err(_) => {}
                }
            }
            bar.set_message("");
        }
    }
}

/// Follows circe-home's results until every id in `wanted` has finished.
/// Subscribe (call this) before submitting so no result is missed.
pub async fn watch(client: &CirceHomeClient<Channel>) -> Result<Results, SessionError> {
    let stream = client
        .clone()
        .watch_results(WatchRequest {})
        .await
        .map_err(|s| SessionError::Watch(s.message().to_string()))?
        .into_inner();
    Ok(Results {
        client: client.clone(),
        stream,
    })
}

/// Waits for the results of `wanted`, until `timeout` or until `broken`
/// resolves with the reason the deployment can no longer finish them.
pub async fn collect(
    mut results_stream: Results,
    wanted: &[String],
    timeout: Duration,
    progress: bool,
    broken: impl std::future::Future<Output = String>,
) -> Result<Vec<InputResult>, SessionError> {
    let mut broken = std::pin::pin!(broken);
    let bar = if progress {
        let bar = ProgressBar::new(wanted.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} inputs {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut missing: BTreeSet<&str> = wanted.iter().map(String::as_str).collect();
    let mut results: BTreeMap<String, InputResult> = BTreeMap::new();
    let mut failed = 0;
    let deadline = tokio::time::Instant::now() + timeout;
    while !missing.is_empty() {
        let next = tokio::select! {
            next = tokio::time::timeout_at(deadline, results_stream.next(&bar)) => next,
            reason = &mut broken => {
                bar.abandon();
                return Err(SessionError::Broken {
                    reason,
                    finished: results.len(),
                    total: wanted.len(),
                });
            }
        };
        let result = match next {
            Err(_) => {
                bar.abandon();
                return Err(SessionError::Timeout {
                    waited: timeout,
                    missing: missing.len(),
                    total: wanted.len(),
                });
            }
            Ok(Err(e)) => {
                bar.abandon();
                return Err(e);
            }
            Ok(Ok(result)) => result,
        };
        if missing.remove(result.input_id.as_str()) {
            if !result.ok {
                failed += 1;
                bar.set_message(format!("({failed} failed)"));
            }
            bar.inc(1);
            results.insert(result.input_id.clone(), result);
        }
    }
    bar.finish_and_clear();
    Ok(wanted.iter().filter_map(|id| results.remove(id)).collect())
}

/// How inputs are sent: all at once (pipelined; the throughput case), or
/// one at a time, the next after the previous result (each input then runs
/// alone, so its makespan can be compared with the predicted one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pace {
    #[default]
    AllAtOnce,
    OneAtATime,
}

impl Pace {
    pub fn one_at_a_time(yes: bool) -> Self {
        if yes {
            Self::OneAtATime
        } else {
            Self::AllAtOnce
        }
    }

    /// Whether every input of `count` ran with no other input in flight.
    pub fn alone(self, count: usize) -> bool {
        self == Self::OneAtATime || count == 1
    }
}

/// Submits `files` to circe-home at `address` and waits for their results:
/// (results in `files` order, time from the first submission to the last result).
/// `broken` resolves if the deployment can no longer finish them
/// (`std::future::pending()` when nothing watches it).
pub async fn submit_and_collect(
    address: &str,
    files: &[PathBuf],
    timeout: Duration,
    progress: bool,
    broken: impl std::future::Future<Output = String>,
) -> Result<(Vec<InputResult>, Duration), SessionError> {
    submit_paced(address, files, Pace::AllAtOnce, timeout, progress, broken).await
}

/// [`submit_and_collect`] at the given pace; `timeout` bounds the whole.
pub async fn submit_paced(
    address: &str,
    files: &[PathBuf],
    pace: Pace,
    timeout: Duration,
    progress: bool,
    broken: impl std::future::Future<Output = String>,
) -> Result<(Vec<InputResult>, Duration), SessionError> {
    let client = client(address).await?;
    let started = std::time::Instant::now();
    if pace == Pace::AllAtOnce {
        // Watch first so that no result falls before the subscription.
        let results = watch(&client).await?;
        let ids = submit_all(&client, files).await?;
        let results = collect(results, &ids, timeout, progress, broken).await?;
        return Ok((results, started.elapsed()));
    }
    let mut broken = std::pin::pin!(broken);
    let mut results = Vec::with_capacity(files.len());
    for (i, file) in files.iter().enumerate() {
        if progress {
            eprint!("\rinput {}/{}: {}", i + 1, files.len(), input_id(file));
        }
        let left = timeout.saturating_sub(started.elapsed());
        let stream = watch(&client).await?;
        let ids = submit_all(&client, std::slice::from_ref(file)).await?;
        let mut one = collect(stream, &ids, left, false, &mut broken).await?;
        results.append(&mut one);
    }
    if progress {
        eprintln!();
    }
    Ok((results, started.elapsed()))
}
