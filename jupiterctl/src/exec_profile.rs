//! The execution profile a network-aware scheduler needs: per task, its run
//! time (seconds on a node of speed 1) and the bytes it sends each child.
//! Declared values in app.yaml (`cost`, `output_bytes`) win; the rest is
//! measured by running the app once on its first sample input, task by task
//! in topological order, through the same runner the workers use.

use circe_worker::runner::{self, RunDirs};
use jupiter_common::app::App;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskProfile {
    pub cost_secs: f64,
    pub output_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("execution profiler: {0}")]
    Io(#[from] std::io::Error),
    #[error("execution profiler: task {task} failed on sample input {input}: {error}")]
    Task {
        task: String,
        input: String,
        error: String,
    },
}

/// Profiles every task of `app`; `speed` is the local node's speed, so a
/// measured time t becomes the cost t × speed (seconds at speed 1).
pub async fn profile(
    app: &App,
    python: &str,
    speed: f64,
) -> Result<BTreeMap<String, TaskProfile>, ProfileError> {
    let declared = |t: &jupiter_common::app::TaskSpec| t.cost.zip(t.output_bytes);
    let mut profiles = BTreeMap::new();
    if app.tasks.iter().all(|t| declared(t).is_some()) {
        for t in &app.tasks {
            let (cost_secs, output_bytes) = declared(t).unwrap_or_default();
            profiles.insert(
                t.name.clone(),
                TaskProfile {
                    cost_secs,
                    output_bytes,
                },
            );
        }
        return Ok(profiles);
    }
    let Some(sample) = app.sample_inputs.first() else {
        tracing::warn!("no sample input to profile the tasks with: every task counts as 1 s with no output");
        for t in &app.tasks {
            profiles.insert(
                t.name.clone(),
                TaskProfile {
                    cost_secs: t.cost.unwrap_or(1.0),
                    output_bytes: t.output_bytes.unwrap_or(0),
                },
            );
        }
        return Ok(profiles);
    };
    let input_id = sample
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scratch = tempfile::Builder::new().prefix("jupiter-profile-").tempdir()?;
    let legacy = runner::install_legacy_runner(scratch.path())?;
    let python = runner::resolve_python(python);
    // Files each task received: task -> paths.
    let mut received: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for task in app.topological_order() {
        let inputs = if task.parents.is_empty() {
            vec![sample.clone()]
        } else {
            let mut files = received.remove(&task.name).unwrap_or_default();
            files.sort();
            files
        };
        let dirs = RunDirs {
            app_dir: &app.dir,
            work_dir: scratch.path().join("work").join(&task.name),
            out_dir: scratch.path().join("out").join(&task.name),
            legacy_runner: &legacy,
            python: &python,
        };
        let started = Instant::now();
        let outputs = runner::run(task, &input_id, &inputs, &dirs)
            .await
            .map_err(|e| ProfileError::Task {
                task: task.name.clone(),
                input: input_id.clone(),
                error: e.to_string(),
            })?;
        let seconds = started.elapsed().as_secs_f64();
        let routed = circe_worker::routing::route(&outputs, &task.children);
        let mut sent = 0u64;
        for (child, files) in task.children.iter().zip(&routed) {
            for file in files {
                let path = dirs.out_dir.join(file);
                sent += std::fs::metadata(&path)?.len();
                received.entry(child.clone()).or_default().push(path);
            }
        }
        let measured = TaskProfile {
            cost_secs: seconds * speed,
            output_bytes: if task.children.is_empty() {
                0
            } else {
                sent / task.children.len() as u64
            },
        };
        profiles.insert(
            task.name.clone(),
            TaskProfile {
                cost_secs: task.cost.unwrap_or(measured.cost_secs),
                output_bytes: task.output_bytes.unwrap_or(measured.output_bytes),
            },
        );
    }
    Ok(profiles)
}
