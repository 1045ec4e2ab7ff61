//! The execution profile a network-aware scheduler needs: per task, its
//! cost (seconds on a node of speed 1) and the bytes it sends each child.
//!
//! Declared values in app.yaml (`cost`, `output_bytes`) win, field by
//! field. The rest is measured by running the app once on a sample input
//! ([`measure_here`]): every task starts as soon as all its parents are done
//! ([`dag`]), at most as many at once as the place has CPUs (else the times
//! would measure contention, not cost), within a timeout. What could not be
//! measured is estimated, and says so ([`Source`]); [`report`] tells the
//! user. A fully measured profile is cached per app content ([`cache`]), so
//! the next `up` of the same app starts at once ([`obtain`]).

pub mod cache;
pub mod dag;
pub mod estimate;
pub mod report;
mod tasks;

use jupiter_common::app::{App, TaskSpec};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where a task's numbers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Both `cost` and `output_bytes` are in app.yaml.
    Declared,
    /// Run on the sample input, this time.
    Measured,
    /// Measured by an earlier profile of the very same app content.
    Cached,
    /// Not measured (timeout, a parent failed, no sample input): a guess.
    Estimated,
    /// The task itself failed on the sample input: a guess, and the error.
    Failed,
}

impl Source {
    /// Whether the numbers are a guess.
    pub fn is_guess(self) -> bool {
        matches!(self, Source::Estimated | Source::Failed)
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Declared => "declared",
            Source::Measured => "measured",
            Source::Cached => "cached",
            Source::Estimated => "estimated",
            Source::Failed => "failed",
        })
    }
}

/// One task's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskProfile {
    /// Seconds on a node of speed 1 (HEFT's time on a node is cost / speed).
    pub cost_secs: f64,
    /// Bytes sent to each child per input.
    pub output_bytes: u64,
    pub source: Source,
    /// Wall-clock seconds the task took where it was profiled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Why it is a guess: the reason, or the task's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The profile of a whole app, and where and how it was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecProfile {
    pub app: String,
    /// The file name of the sample input it ran on (none: nothing ran).
    #[serde(default)]
    pub sample_input: Option<String>,
    /// Where it was measured, in words (this machine, a node's container, a cache).
    pub place: String,
    /// Speed of that place for one task; measured seconds × speed = cost.
    pub speed: f64,
    /// How many tasks ran at once there.
    pub slots: usize,
    pub timeout_secs: f64,
    /// How long profiling took.
    pub elapsed_secs: f64,
    /// Every task of the app, by name.
    pub tasks: BTreeMap<String, TaskProfile>,
}

impl ExecProfile {
    /// Whether every task is measured or declared: only such a profile is cached.
    pub fn complete(&self) -> bool {
        self.tasks.values().all(|t| !t.source.is_guess())
    }

    /// How many tasks come from `source`.
    pub fn count(&self, source: Source) -> usize {
        self.tasks.values().filter(|t| t.source == source).count()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("execution profiler: {0}")]
    Io(#[from] std::io::Error),
    #[error("sample input {path}: {source}")]
    Sample { path: PathBuf, source: std::io::Error },
    #[error("execution profile in {place}: {detail}")]
    Elsewhere { place: String, detail: String },
}

/// How a profile is taken.
#[derive(Debug, Clone)]
pub struct ProfileOptions {
    /// Python that runs original Jupiter tasks.
    pub python: String,
    /// The longest profiling may take; zero: take none, estimate everything.
    pub timeout: Duration,
    /// Measure again even if a cached profile exists.
    pub reprofile: bool,
    /// Where profiles are cached; none: no cache.
    pub cache_dir: Option<PathBuf>,
    /// The input to run on; none: the app's first sample input.
    pub sample: Option<PathBuf>,
    /// Tasks at once; none: the CPUs of the place it runs ([`slots_here`]).
    pub slots: Option<usize>,
}

/// What `run` and `up` profile with unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for ProfileOptions {
    fn default() -> Self {
        Self {
            python: "python3".into(),
            timeout: DEFAULT_TIMEOUT,
            reprofile: false,
            cache_dir: None,
            sample: None,
            slots: None,
        }
    }
}

impl ProfileOptions {
    /// The sample input profiling runs on.
    pub fn sample_of(&self, app: &App) -> Option<PathBuf> {
        self.sample.clone().or_else(|| app.sample_inputs.first().cloned())
    }
}

/// The speed of one task here, relative to one core of the reference
/// machine: a measured time t becomes the cost t × speed.
pub fn speed_here() -> f64 {
    // The droplets' own benchmark, so task costs and node speeds share a unit.
    drupe_droplet::speed::measure().per_thread
}

/// How many tasks may run at once here: the floor of the CPU limit of the
/// cgroup this process is in (the standard library reads it), else the
/// cores; at least 1.
pub fn slots_here() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The sample input's id: its file name, as circe-home would call it.
fn input_id(sample: &std::path::Path) -> String {
    sample
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Tasks whose numbers are not both declared, and every ancestor of theirs
/// (which must run to give them their inputs).
fn tasks_to_run(app: &App) -> BTreeSet<String> {
    let mut needed: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<&TaskSpec> = app.tasks.iter().filter(|t| !declared(t)).collect();
    while let Some(task) = stack.pop() {
        if needed.insert(task.name.clone()) {
            stack.extend(task.parents.iter().filter_map(|p| app.task(p)));
        }
    }
    needed
}

fn declared(task: &TaskSpec) -> bool {
    task.cost.is_some() && task.output_bytes.is_some()
}

/// Runs the app once on its sample input here, in this process, and
/// returns every task's profile: measured, declared, or said to be a guess.
pub async fn measure_here(app: &App, options: &ProfileOptions) -> Result<ExecProfile, ProfileError> {
    let started = Instant::now();
    // The benchmark blocks; probing may run beside it on this runtime.
    let speed = tokio::task::spawn_blocking(speed_here).await.unwrap_or(1.0);
    let slots = options.slots.unwrap_or_else(slots_here).max(1);
    let sample = options.sample_of(app);
    let needed = tasks_to_run(app);
    let order: Vec<&TaskSpec> = app
        .topological_order()
        .into_iter()
        .filter(|t| needed.contains(&t.name))
        .collect();
    let (outcomes, missing) = match &sample {
        Some(sample) if !order.is_empty() => {
            std::fs::metadata(sample).map_err(|source| ProfileError::Sample {
                path: sample.clone(),
                source,
            })?;
            let runner = tasks::Runner::new(app, &options.python, input_id(sample))?;
            let outcomes = dag::run(&order, sample, slots, options.timeout, |task, inputs| {
                runner.run(task, inputs)
            })
            .await;
            (outcomes, "not profiled")
        }
        Some(_) => (BTreeMap::new(), "not profiled"),
        None => (BTreeMap::new(), "no sample input to profile it with"),
    };
    Ok(ExecProfile {
        app: app.name.clone(),
        sample_input: sample.as_deref().map(input_id),
        place: "this machine".into(),
        speed,
        slots,
        timeout_secs: options.timeout.as_secs_f64(),
        elapsed_secs: started.elapsed().as_secs_f64(),
        tasks: estimate::profile_of(app, &outcomes, speed, options.timeout, missing),
    })
}

/// Every task estimated (or declared), for `why`: no profile could be taken.
pub fn all_estimated(app: &App, options: &ProfileOptions, why: &str) -> ExecProfile {
    ExecProfile {
        app: app.name.clone(),
        sample_input: options.sample_of(app).as_deref().map(input_id),
        place: "nowhere".into(),
        speed: 1.0,
        slots: 0,
        timeout_secs: options.timeout.as_secs_f64(),
        elapsed_secs: 0.0,
        tasks: estimate::profile_of(app, &BTreeMap::new(), 1.0, options.timeout, why),
    }
}

/// The profile `up` schedules with: declared, else cached, else measured by
/// `measure` (where the backend's tasks run), else estimated; says on
/// stderr which, and names every guess. Never fails: a guess is a worse
/// schedule, not a reason to refuse one.
pub async fn obtain<F, Fut>(app: &App, options: &ProfileOptions, measure: F) -> ExecProfile
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<ExecProfile, ProfileError>>,
{
    if app.tasks.iter().all(declared) {
        eprintln!("execution profile: every task's cost and output_bytes are declared in app.yaml");
        return all_estimated(app, options, "declared");
    }
    let Some(sample) = options.sample_of(app) else {
        let profile = all_estimated(app, options, "no sample input to profile it with");
        report::print_guesses(&profile);
        return profile;
    };
    let key = match &options.cache_dir {
        Some(dir) => match hash_off_runtime(app, &sample, &options.python).await {
            Ok(hash) => Some((dir.clone(), hash)),
            Err(e) => {
                eprintln!(
                    "warning: cannot hash app {} for the profile cache: {e}",
                    app.dir.display()
                );
                None
            }
        },
        None => None,
    };
    if let (Some((dir, hash)), false) = (&key, options.reprofile) {
        if let Some(profile) = cache::load(dir, hash, app) {
            eprintln!(
                "execution profile: cached (app hash {}…, {}); --reprofile measures again",
                &hash[..12],
                cache::path(dir, hash).display()
            );
            return profile;
        }
    }
    if options.timeout.is_zero() {
        let profile = all_estimated(app, options, "not profiled (--profile-timeout 0)");
        report::print_guesses(&profile);
        return profile;
    }
    let running = tasks_to_run(app).len();
    eprintln!(
        "profiling {running} task{} on sample input {} (timeout {:.0} s)...",
        if running == 1 { "" } else { "s" },
        input_id(&sample),
        options.timeout.as_secs_f64()
    );
    let profile = match measure().await {
        Ok(profile) => profile,
        Err(e) => {
            eprintln!("warning: {e}; every task counts as an estimate");
            all_estimated(app, options, "the profile could not be taken")
        }
    };
    report::print_guesses(&profile);
    eprintln!("{}", report::summary(&profile));
    if let Some((dir, hash)) = &key {
        if profile.complete() {
            if let Err(e) = cache::store(dir, hash, &profile) {
                eprintln!(
                    "warning: cannot cache the execution profile in {}: {e}",
                    dir.display()
                );
            }
        }
    }
    profile
}

/// [`cache::app_hash`] on a blocking thread: reading a large app folder
/// must not stall the probing that runs beside it.
async fn hash_off_runtime(app: &App, sample: &std::path::Path, python: &str) -> std::io::Result<String> {
    let (app, sample, python) = (app.clone(), sample.to_path_buf(), python.to_string());
    tokio::task::spawn_blocking(move || cache::app_hash(&app, &sample, &python))
        .await
        .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests;
