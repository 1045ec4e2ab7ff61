//! Runs a task for one input: any executable (the README's task contract) or
//! a Python function (an original Jupiter task, or app.yaml's `function:`)
//! through the legacy shim. A run past the task's timeout is killed with
//! every process it started.

use jupiter_common::app::{TaskRunner, TaskSpec, LEGACY_RUNNER_PY};
use jupiter_common::child::TaskCommand;
use jupiter_common::env;
use jupiter_common::sync::LockExt;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("listing inputs: {0}")]
    Inputs(std::io::Error),
    #[error("cannot start {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("task {task} exited with {status}: {stderr}")]
    Failed {
        task: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("task {task} failed: {stderr}")]
    Python { task: String, stderr: String },
    #[error("task {task}: {source}")]
    Warm {
        task: String,
        source: crate::warm::WarmError,
    },
    #[error("task {task} timed out: still running after its timeout of {} s, so it was killed{}",
        after.as_secs_f64(), if log.is_empty() { String::new() } else { format!("; it printed: {log}") })]
    TimedOut {
        task: String,
        after: std::time::Duration,
        log: String,
    },
    #[error("task {task}: {what}")]
    Output { task: String, what: String },
    #[error("task {task} {source}")]
    Route {
        task: String,
        source: crate::routing::RouteError,
    },
    #[error("task {task}: preparing its files: {source}")]
    Io { task: String, source: std::io::Error },
}

/// Where a run reads and writes.
pub struct RunDirs<'a> {
    pub app_dir: &'a Path,
    pub work_dir: PathBuf,
    pub out_dir: PathBuf,
    /// The legacy shim's file (written once per worker).
    pub legacy_runner: &'a Path,
    pub python: &'a str,
    /// Warm interpreters for Python tasks; `None`: one process per input.
    pub warm: Option<&'a crate::warm::Pool>,
    /// Where a Python task's one-shot runner lists the paths it returned.
    pub result_file: PathBuf,
    /// Where the run's folders come from and go back to.
    pub spares: &'a jupiter_common::spares::Spares,
}

/// Runs `task` on `inputs` and returns the names of its outputs in `out_dir`.
pub async fn run(
    task: &TaskSpec,
    input_id: &str,
    inputs: &[PathBuf],
    dirs: &RunDirs<'_>,
) -> Result<Vec<String>, RunError> {
    match &task.runner {
        TaskRunner::Command { program, args } => {
            let (work_dir, out_dir) = (dirs.work_dir.clone(), dirs.out_dir.clone());
            let spares = dirs.spares.clone();
            blocking(task, move || fresh_dirs(&spares, &[&work_dir, &out_dir])).await?;
            let mut cmd = TaskCommand::new(program);
            cmd.args(args)
                .args(inputs)
                .current_dir(dirs.app_dir)
                .env(env::OUTPUT_DIR, &dirs.out_dir)
                .env(env::INPUT_ID, input_id)
                .env(env::TASK, &task.name)
                .env(env::WORK_DIR, &dirs.work_dir);
            execute(task, program, cmd).await?;
            let outputs = crate::queue::sorted_files(&dirs.out_dir).map_err(|source| RunError::Io {
                task: task.name.clone(),
                source,
            })?;
            Ok(outputs.iter().filter_map(|p| file_name(p)).collect())
        }
        TaskRunner::Python { script, function } => {
            run_python(task, script, function, input_id, inputs, dirs).await
        }
    }
}

/// Runs `f` on a blocking thread; its I/O errors are the task's.
async fn blocking<T: Send + 'static>(
    task: &TaskSpec,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, RunError> {
    let io = |source| RunError::Io {
        task: task.name.clone(),
        source,
    };
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io(std::io::Error::other(e)))?
        .map_err(io)
}

/// Empty folders: a rerun after a crash starts from clean ones.
fn fresh_dirs(spares: &jupiter_common::spares::Spares, dirs: &[&Path]) -> std::io::Result<()> {
    for dir in dirs {
        spares.remove(dir)?;
        match spares.create_dir(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(dir)?,
            created => created?,
        }
    }
    Ok(())
}

/// Why the inputs cannot be laid side by side.
enum LayOut {
    Io(std::io::Error),
    Nameless(PathBuf),
    Twice(String),
}

/// Links every input into `pathin` (copies where a link fails), in the
/// order they arrived; returns their names in that order.
fn lay_out(inputs: &[PathBuf], pathin: &Path) -> Result<Vec<String>, LayOut> {
    let mut names = Vec::with_capacity(inputs.len());
    for input in by_time(inputs) {
        let name = file_name(&input).ok_or_else(|| LayOut::Nameless(input.clone()))?;
        let link = pathin.join(&name);
        if std::fs::hard_link(&input, &link).is_err() {
            if link.exists() {
                return Err(LayOut::Twice(name));
            }
            std::fs::copy(&input, &link).map_err(LayOut::Io)?;
        }
        names.push(name);
    }
    Ok(names)
}

async fn run_python(
    task: &TaskSpec,
    script: &Path,
    function: &str,
    input_id: &str,
    inputs: &[PathBuf],
    dirs: &RunDirs<'_>,
) -> Result<Vec<String>, RunError> {
    let output = |what: String| RunError::Output {
        task: task.name.clone(),
        what,
    };
    // Original tasks expect every input side by side in one folder: the
    // work folder, which holds nothing else (every file a queue creates and
    // deletes costs; see the README's "How files move"). One trip to a
    // blocking thread prepares everything.
    let pathin = dirs.work_dir.clone();
    let laid = {
        let (out_dir, pathin) = (dirs.out_dir.clone(), pathin.clone());
        let (inputs, spares) = (inputs.to_vec(), dirs.spares.clone());
        blocking(task, move || {
            fresh_dirs(&spares, &[&pathin, &out_dir])?;
            Ok(lay_out(&inputs, &pathin))
        })
        .await?
    };
    let names = match laid {
        Ok(names) => names,
        Err(LayOut::Io(source)) => {
            return Err(RunError::Io {
                task: task.name.clone(),
                source,
            })
        }
        Err(LayOut::Nameless(input)) => {
            return Err(output(format!("input {} has no file name", input.display())))
        }
        Err(LayOut::Twice(name)) => {
            return Err(output(format!(
                "two parents sent a file named {name:?} for input {input_id}"
            )))
        }
    };
    // One call of task() per group of inputs_to_wait_for files; without
    // it (or with nothing to group), one call with every file.
    let (wait, calls) = match task.wait_for {
        Some(wait) if !names.is_empty() => {
            let calls = crate::firing::groups(&names, wait).map_err(|e| output(e.to_string()))?;
            (wait, calls.concat())
        }
        _ => (names.len(), names),
    };
    if let Some(pool) = dirs.warm {
        let call = crate::warm::Call {
            script,
            function,
            pathin: &pathin,
            pathout: &dirs.out_dir,
            wait,
            files: &calls,
        };
        let reply = match pool.call(&call, task.timeout).await {
            Ok(reply) => reply,
            Err(crate::warm::WarmError::TimedOut { after, printed }) => {
                return Err(RunError::TimedOut {
                    task: task.name.clone(),
                    after,
                    log: printed,
                })
            }
            Err(source) => {
                return Err(RunError::Warm {
                    task: task.name.clone(),
                    source,
                })
            }
        };
        if reply.code != 0 {
            return Err(RunError::Python {
                task: task.name.clone(),
                stderr: reply.printed,
            });
        }
        return returned_outputs(task, &reply.paths, dirs).await;
    }
    // Not in pathin, where the task would see it.
    let result = dirs.result_file.clone();
    let mut cmd = TaskCommand::new(dirs.python);
    cmd.arg(dirs.legacy_runner);
    if function != "task" {
        cmd.arg("--function").arg(function);
    }
    cmd.arg(script)
        .arg(&pathin)
        .arg(&dirs.out_dir)
        .arg(&result)
        .arg(wait.to_string())
        .args(&calls)
        .current_dir(&pathin)
        .env(env::INPUT_ID, input_id)
        .env(env::TASK, &task.name);
    execute(task, Path::new(dirs.python), cmd).await?;
    let returned = tokio::fs::read(&result).await.map_err(|source| RunError::Io {
        task: task.name.clone(),
        source,
    })?;
    // It lives in the queue's tmp folder, which is only wiped at start.
    let _ = tokio::fs::remove_file(&result).await;
    let returned: Vec<PathBuf> = serde_json::from_slice(&returned).map_err(|e| RunError::Output {
        task: task.name.clone(),
        what: format!("the legacy shim's result is not a list of paths: {e}"),
    })?;
    returned_outputs(task, &returned, dirs).await
}

/// The outputs a Python task returned, brought into the output folder, in the order they were written.
async fn returned_outputs(
    task: &TaskSpec,
    returned: &[PathBuf],
    dirs: &RunDirs<'_>,
) -> Result<Vec<String>, RunError> {
    let io = |source| RunError::Io {
        task: task.name.clone(),
        source,
    };
    let mut outputs = Vec::new();
    // The order they were written in, which is the order the original's
    // file watcher saw them closed (and by-order routing pairs them in).
    for path in by_time(returned) {
        let name = file_name(&path).ok_or_else(|| RunError::Output {
            task: task.name.clone(),
            what: format!("returned path {} has no file name", path.display()),
        })?;
        // Outputs written outside pathout are still outputs: bring them in.
        if path.parent() != Some(dirs.out_dir.as_path()) {
            tokio::fs::copy(&path, dirs.out_dir.join(&name))
                .await
                .map_err(io)?;
        }
        if !outputs.contains(&name) {
            outputs.push(name);
        }
    }
    Ok(outputs)
}

async fn execute(task: &TaskSpec, program: &Path, cmd: TaskCommand) -> Result<(), RunError> {
    // Its own process group, so a timeout ends whatever the task started;
    // tied to this worker (`child`), so a SIGKILL ends it too.
    let child = jupiter_common::child::spawn_task(&cmd).map_err(|source| RunError::Spawn {
        program: program.display().to_string(),
        source,
    })?;
    let mut group = GroupGuard(child.id());
    let output = match task.timeout {
        None => child.wait_with_output().await,
        Some(after) => match tokio::time::timeout(after, child.wait_with_output()).await {
            Ok(output) => output,
            Err(_) => {
                return Err(RunError::TimedOut {
                    task: task.name.clone(),
                    after,
                    log: String::new(),
                })
            }
        },
    }
    .map_err(|source| RunError::Io {
        task: task.name.clone(),
        source,
    })?;
    // It ended by itself: what it left running in the background is its own.
    group.0 = None;
    if !output.stdout.is_empty() {
        tracing::debug!(task = %task.name, stdout = %String::from_utf8_lossy(&output.stdout), "task output");
    }
    if output.status.success() {
        return Ok(());
    }
    Err(RunError::Failed {
        task: task.name.clone(),
        status: output.status,
        stderr: tail(&String::from_utf8_lossy(&output.stderr), 20),
    })
}

/// Kills a run's process group unless the run ended by itself (a timeout,
/// or the worker stopping, drops it while it runs).
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            crate::warm::kill_group(group);
        }
    }
}

/// `paths` ordered by modification time, oldest first; ties (and files
/// that cannot be read) keep their order.
fn by_time(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut timed: Vec<(Option<std::time::SystemTime>, &PathBuf)> = paths
        .iter()
        .map(|p| (std::fs::metadata(p).and_then(|m| m.modified()).ok(), p))
        .collect();
    timed.sort_by_key(|(t, _)| *t);
    timed.into_iter().map(|(_, p)| p.clone()).collect()
}

fn file_name(path: &Path) -> Option<String> {
    path.file_name()?.to_str().map(str::to_string)
}

/// The last `lines` lines of `text`, trimmed.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Writes the legacy shim next to the queue, once per worker start.
pub fn install_legacy_runner(queue_root: &Path) -> std::io::Result<PathBuf> {
    let path = queue_root.join("legacy_runner.py");
    std::fs::write(&path, LEGACY_RUNNER_PY)?;
    Ok(path)
}

/// The interpreter behind `python` (often a slow shell shim such as
/// pyenv's), asked once per process so each task run starts the real
/// binary directly and many workers in one process do not each pay for
/// starting the shim.
pub fn resolve_python(python: &str) -> String {
    static RESOLVED: std::sync::Mutex<BTreeMap<String, String>> = std::sync::Mutex::new(BTreeMap::new());
    let mut resolved = RESOLVED.locked();
    resolved
        .entry(python.to_string())
        .or_insert_with(|| ask_python(python))
        .clone()
}

fn ask_python(python: &str) -> String {
    std::process::Command::new(python)
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| python.to_string())
}
