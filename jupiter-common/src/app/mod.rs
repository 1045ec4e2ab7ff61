//! The application format: an app is a folder with either `app.yaml` (new
//! apps, see [`yaml`]) or an original-Jupiter `configuration.txt` with
//! `scripts/<task>.py` (see [`legacy`]). [`App::load`] reads and validates
//! either into the same [`App`].

mod error;
mod graph;
mod legacy;
pub(crate) mod resolve;
#[cfg(test)]
mod tests;
pub mod text;
mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use error::{AppError, Location};

/// The Python shim that runs an original-Jupiter task:
/// `python3 legacy_runner.py SCRIPT PATHIN PATHOUT RESULT_JSON WAIT FILE...`.
pub const LEGACY_RUNNER_PY: &str = include_str!("legacy_runner.py");

/// File name of a new-format app description.
pub const APP_YAML: &str = "app.yaml";
/// File name of an original-Jupiter app description.
pub const CONFIGURATION_TXT: &str = "configuration.txt";

#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    /// Absolute, canonical app folder.
    pub dir: PathBuf,
    pub format: AppFormat,
    /// In file order.
    pub tasks: Vec<TaskSpec>,
    /// Absolute paths, sorted by file name (a file's name is its input id).
    pub sample_inputs: Vec<PathBuf>,
    /// Task -> node; empty if none given.
    pub static_mapping: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppFormat {
    Yaml,
    Legacy,
}

#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub name: String,
    pub runner: TaskRunner,
    /// Every task with an edge into this one, in the order tasks appear in the file.
    pub parents: Vec<String>,
    /// Tasks only (sinks such as home/datasink1/scheduler are not children).
    pub children: Vec<String>,
    /// How many inputs this task may run at once (>= 1).
    pub parallelism: usize,
    /// Declared run time in seconds on a node of speed 1 (for schedulers);
    /// `None`: measured by the execution profiler.
    pub cost: Option<f64>,
    /// Declared bytes this task sends to each child per input; `None`: measured.
    pub output_bytes: Option<u64>,
    /// Which child gets which output.
    pub route: Route,
    /// Original apps: `inputs_to_wait_for`, the files (with one name prefix)
    /// that make one call of `task()`; `None`: one call with every file.
    pub wait_for: Option<usize>,
    /// The longest one run may take: past it the run (and a Python task's
    /// interpreter) is killed and that input fails. `None`: no limit.
    pub timeout: Option<std::time::Duration>,
    /// Python tasks: a new interpreter for every input instead of a warm one.
    pub fresh_interpreter: bool,
    /// Python tasks: a warm interpreter is replaced after this many calls.
    pub max_calls: Option<u64>,
}

/// Which child gets which of a task's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    /// An output whose stem ends in `_<child>` goes to that child only;
    /// every other output to every child (app.yaml's default).
    #[default]
    BySuffix,
    /// Every output to every child (an original app's flag `true`).
    All,
    /// The i-th output written goes to the i-th child, in the order the
    /// children are listed; names play no part (an original app's flag
    /// `false`). The outputs must be one per child, or a multiple of that.
    ByOrder,
}

#[derive(Debug, Clone)]
pub enum TaskRunner {
    /// Any executable. A first word containing '/' is relative to the app
    /// folder; otherwise it was found on PATH. `program` is absolute.
    Command { program: PathBuf, args: Vec<String> },
    /// A Python function with the original Jupiter's contract,
    /// `function(filename, pathin, pathout)` returning the output paths it
    /// wrote: an original task (`scripts/<task>.py`, function `task`) or an
    /// app.yaml `function:` task. Run through [`LEGACY_RUNNER_PY`], in warm
    /// interpreters unless the task asks for a fresh one per input.
    Python { script: PathBuf, function: String },
}

impl App {
    /// Loads the app in `dir`: `app.yaml` if present, else `configuration.txt`.
    pub fn load(dir: &Path) -> Result<App, AppError> {
        let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => AppError::DirNotFound {
                path: dir.to_path_buf(),
            },
            _ => AppError::io(dir, e),
        })?;
        if !meta.is_dir() {
            return Err(AppError::NotADir {
                path: dir.to_path_buf(),
            });
        }
        let canonical = dir.canonicalize().map_err(|e| AppError::io(dir, e))?;
        let yaml_file = dir.join(APP_YAML);
        let legacy_file = dir.join(CONFIGURATION_TXT);
        if yaml_file.is_file() {
            yaml::load(&yaml_file, &canonical)
        } else if legacy_file.is_file() {
            legacy::load(&legacy_file, &canonical)
        } else {
            Err(AppError::NotAnApp {
                dir: dir.to_path_buf(),
            })
        }
    }

    pub fn task(&self, name: &str) -> Option<&TaskSpec> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// Tasks with no parents (they receive the inputs), in file order.
    pub fn ingress(&self) -> Vec<&TaskSpec> {
        self.tasks.iter().filter(|t| t.parents.is_empty()).collect()
    }

    /// Tasks with no children (their outputs go home), in file order.
    pub fn egress(&self) -> Vec<&TaskSpec> {
        self.tasks.iter().filter(|t| t.children.is_empty()).collect()
    }

    /// Every task after all its parents; ties broken by file order.
    pub fn topological_order(&self) -> Vec<&TaskSpec> {
        graph::topological_order(&self.tasks)
            .into_iter()
            .map(|i| &self.tasks[i])
            .collect()
    }
}

/// The text of an app's description file; bytes that are not UTF-8 are a
/// syntax error at their line and column.
fn read_text(file: &Path) -> Result<String, AppError> {
    text::read(file).map_err(|e| match e {
        text::TextError::Io(e) => AppError::io(file, e),
        text::TextError::NotUtf8(at) => AppError::Syntax {
            file: file.to_path_buf(),
            line: Some(at.line),
            column: Some(at.column),
            message: at.problem(),
        },
    })
}

/// Checks shared by both formats once the tasks are parsed: fills parents,
/// rejects cycles.
fn finish_graph(file: &Path, tasks: &mut [TaskSpec]) -> Result<(), AppError> {
    if let Some(cycle) = graph::find_cycle(tasks) {
        return Err(AppError::Cycle {
            file: file.to_path_buf(),
            tasks: cycle,
        });
    }
    graph::fill_parents(tasks);
    Ok(())
}

/// A sink name of the original formats (`home`, `scheduler`, `datasink*`).
pub(crate) fn is_sink_name(name: &str) -> bool {
    name == "home" || name == "scheduler" || name.starts_with("datasink")
}

/// Why a task name is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TaskNameError {
    #[error("task name is empty")]
    Empty,
    #[error(
        "invalid task name {}: {bad:?} not allowed (use letters, digits, '_', '-', '.')",
        text::quote(name)
    )]
    Invalid { name: String, bad: char },
}

/// Task names end up in file names, routing suffixes and service names.
pub(crate) fn check_task_name(name: &str) -> Result<(), TaskNameError> {
    if name.is_empty() {
        return Err(TaskNameError::Empty);
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(TaskNameError::Invalid {
            name: name.to_string(),
            bad,
        });
    }
    Ok(())
}
