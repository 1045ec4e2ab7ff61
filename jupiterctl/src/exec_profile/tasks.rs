//! Runs one task of the profile through the very runner the circe-workers
//! use, in a scratch folder of its own, and routes its outputs to its
//! children as a worker would.

use super::dag::Produced;
use circe_worker::runner::{self, RunDirs};
use jupiter_common::app::{App, TaskSpec};
use std::path::PathBuf;

/// Everything the tasks of one profile share.
pub struct Runner<'a> {
    app: &'a App,
    /// Removed with the runner.
    scratch: tempfile::TempDir,
    legacy: PathBuf,
    python: String,
    input_id: String,
}

impl<'a> Runner<'a> {
    pub fn new(app: &'a App, python: &str, input_id: String) -> std::io::Result<Self> {
        let scratch = tempfile::Builder::new().prefix("jupiter-profile-").tempdir()?;
        let legacy = runner::install_legacy_runner(scratch.path())?;
        Ok(Self {
            app,
            legacy,
            python: runner::resolve_python(python),
            scratch,
            input_id,
        })
    }

    /// Runs `task` on `inputs`; the error is the runner's, in words.
    pub async fn run(&self, task: &TaskSpec, inputs: Vec<PathBuf>) -> Result<Produced, String> {
        let dirs = RunDirs {
            app_dir: &self.app.dir,
            work_dir: self.scratch.path().join("work").join(&task.name),
            out_dir: self.scratch.path().join("out").join(&task.name),
            legacy_runner: &self.legacy,
            python: &self.python,
            // Each task runs once here: nothing to keep warm.
            warm: None,
            result_file: self.scratch.path().join(format!("{}.result.json", task.name)),
            spares: &jupiter_common::spares::Spares::disabled(),
        };
        let outputs = runner::run(task, &self.input_id, &inputs, &dirs)
            .await
            .map_err(|e| e.to_string())?;
        circe_worker::routing::check(&outputs, &task.children, task.route)
            .map_err(|e| format!("task {} {e}", task.name))?;
        let routed = circe_worker::routing::route(&outputs, &task.children, task.route);
        let mut produced = Produced::default();
        let mut sent = 0u64;
        for (child, files) in task.children.iter().zip(&routed) {
            let mut paths = Vec::new();
            for file in files {
                let path = dirs.out_dir.join(file);
                sent += std::fs::metadata(&path)
                    .map_err(|e| format!("output {}: {e}", path.display()))?
                    .len();
                paths.push(path);
            }
            produced.per_child.push((child.clone(), paths));
        }
        if !task.children.is_empty() {
            produced.output_bytes = sent / task.children.len() as u64;
        }
        Ok(produced)
    }
}
