//! Warm Python interpreters for original Jupiter tasks: each imports the
//! task's script once and then runs input after input, instead of paying
//! for a new interpreter (40–90 ms) per input.
//!
//! The protocol is the legacy runner's `--serve` mode: over the
//! interpreter's stdin and stdout, each request and reply a 4-byte
//! big-endian length and a JSON object. An interpreter is used by one input
//! at a time; the pool keeps up to one per parallel slot. It is replaced
//! after any failed call (whatever the task left behind is gone), when it
//! dies, when a call outlasts the task's timeout, and after `max_calls`
//! calls if set. Each interpreter leads its own process group, so that
//! whatever a task started dies with it.

use jupiter_common::sync::LockExt;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// One call of the task for one input.
#[derive(Debug, Serialize)]
pub struct Call<'a> {
    pub script: &'a Path,
    pub function: &'a str,
    pub pathin: &'a Path,
    pub pathout: &'a Path,
    pub wait: usize,
    pub files: &'a [String],
}

/// What a call gave back.
#[derive(Debug)]
pub struct Reply {
    /// The runner's exit code (0: ok; see legacy_runner.py).
    pub code: i32,
    /// The output paths the task returned (absolute), when it succeeded.
    pub paths: Vec<PathBuf>,
    /// The end of what the call printed, when it failed.
    pub printed: String,
}

/// Why a call did not give an exit code.
#[derive(Debug, thiserror::Error)]
pub enum WarmError {
    #[error("cannot start {python}: {source}")]
    Spawn { python: String, source: std::io::Error },
    #[error(
        "the Python interpreter died during the call ({status}){}",
        with_printed(printed)
    )]
    Died { status: String, printed: String },
    #[error("still running after its timeout of {} s: the call and its interpreter were killed{}",
        after.as_secs_f64(), with_printed(printed))]
    TimedOut { after: Duration, printed: String },
    #[error("talking to the Python interpreter: {0}")]
    Io(#[from] std::io::Error),
    #[error("the Python interpreter's reply is not understood: {0}")]
    Reply(String),
}

fn with_printed(printed: &str) -> String {
    if printed.is_empty() {
        String::new()
    } else {
        format!(": {printed}")
    }
}

struct Interpreter {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    calls: u64,
    /// Its process group (its pid): kept after the child is reaped, as
    /// processes the task started may outlive it.
    group: Option<u32>,
    /// Gets what each call prints (truncated per call).
    log: PathBuf,
}

impl Interpreter {
    /// The last lines the current call printed.
    fn printed(&self) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        crate::runner::tail(&String::from_utf8_lossy(&text), 20)
    }
}

impl Drop for Interpreter {
    fn drop(&mut self) {
        if let Some(group) = self.group {
            kill_group(group);
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// SIGKILL to every process of a group (gone already: nothing to do).
pub(crate) fn kill_group(group: u32) {
    let Ok(group) = i32::try_from(group) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid
    // names a process group.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

/// The interpreters of one task.
pub struct Pool {
    python: String,
    runner: PathBuf,
    /// Where the interpreters' logs go.
    log_dir: PathBuf,
    max_calls: Option<u64>,
    idle: Mutex<Vec<Interpreter>>,
    started: std::sync::atomic::AtomicU64,
}

impl Pool {
    pub fn new(python: &str, runner: &Path, log_dir: &Path, max_calls: Option<u64>) -> Self {
        Self {
            python: python.to_string(),
            runner: runner.to_path_buf(),
            log_dir: log_dir.to_path_buf(),
            max_calls,
            idle: Mutex::new(Vec::new()),
            started: Default::default(),
        }
    }

    /// Runs `call` on an idle interpreter (a new one if none is idle). A
    /// call past `timeout` is abandoned and its interpreter killed.
    pub async fn call(&self, call: &Call<'_>, timeout: Option<Duration>) -> Result<Reply, WarmError> {
        let idle = self.idle.locked().pop();
        let mut interpreter = match idle {
            Some(i) => i,
            None => self.start()?,
        };
        // Dropped on any error, timeout or cancellation, which kills it.
        let reply = match timeout {
            None => exchange(&mut interpreter, call).await,
            Some(after) => match tokio::time::timeout(after, exchange(&mut interpreter, call)).await {
                Ok(reply) => reply,
                Err(_) => Err(WarmError::TimedOut {
                    after,
                    printed: String::new(),
                }),
            },
        };
        let mut reply = match reply {
            Ok(reply) => reply,
            Err(WarmError::Died { status, .. }) => {
                return Err(WarmError::Died {
                    status,
                    printed: interpreter.printed(),
                })
            }
            Err(WarmError::TimedOut { after, .. }) => {
                return Err(WarmError::TimedOut {
                    after,
                    printed: interpreter.printed(),
                })
            }
            Err(e) => return Err(e),
        };
        interpreter.calls += 1;
        let spent = self.max_calls.is_some_and(|max| interpreter.calls >= max);
        if reply.code != 0 {
            reply.printed = interpreter.printed();
        } else if !spent {
            self.idle.locked().push(interpreter);
        }
        Ok(reply)
    }

    fn start(&self) -> Result<Interpreter, WarmError> {
        let spawn = |source| WarmError::Spawn {
            python: self.python.clone(),
            source,
        };
        let mut command = jupiter_common::child::command(&self.python).map_err(spawn)?;
        command
            .arg("-u")
            .arg(&self.runner)
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(spawn)?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(WarmError::Reply("no pipes to the interpreter".into()));
        };
        let n = self.started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Interpreter {
            group: child.id(),
            log: self
                .log_dir
                .join(format!("python-{}-{n}.log", std::process::id())),
            child,
            stdin,
            stdout,
            calls: 0,
        })
    }
}

async fn exchange(interpreter: &mut Interpreter, call: &Call<'_>) -> Result<Reply, WarmError> {
    #[derive(Serialize)]
    struct Request<'a> {
        #[serde(flatten)]
        call: &'a Call<'a>,
        log: &'a Path,
    }
    let request = Request {
        call,
        log: &interpreter.log,
    };
    let body = serde_json::to_vec(&request).map_err(|e| WarmError::Reply(e.to_string()))?;
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    let sent = async {
        interpreter.stdin.write_all(&frame).await?;
        interpreter.stdin.flush().await?;
        let mut len = [0u8; 4];
        interpreter.stdout.read_exact(&mut len).await?;
        let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
        interpreter.stdout.read_exact(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    }
    .await;
    let reply = match sent {
        Ok(reply) => reply,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::BrokenPipe
            ) =>
        {
            let status = match interpreter.child.wait().await {
                Ok(status) => describe(status),
                Err(e) => e.to_string(),
            };
            return Err(WarmError::Died {
                status,
                printed: String::new(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    #[derive(serde::Deserialize)]
    struct Raw {
        code: i32,
        #[serde(default)]
        paths: Vec<PathBuf>,
    }
    let raw: Raw = serde_json::from_slice(&reply).map_err(|e| WarmError::Reply(e.to_string()))?;
    Ok(Reply {
        code: raw.code,
        paths: raw.paths,
        printed: String::new(),
    })
}

/// "exit code 3" or "killed by signal 11 (SIGSEGV)".
fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => {
            let name = match signal {
                6 => " (SIGABRT)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                15 => " (SIGTERM)",
                _ => "",
            };
            format!("killed by signal {signal}{name}")
        }
        _ => status.to_string(),
    }
}
