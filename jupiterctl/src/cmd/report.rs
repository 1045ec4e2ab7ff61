//! `jupiterctl report`: the HTML page of a run (see
//! [`jupiterctl::report_html`]) for a deployment started with `jupiterctl
//! up`, from every result circe-home has; and the writing of that page,
//! shared with `jupiterctl run --report`.

use anyhow::Context;
use jupiter_common::app::App;
use jupiter_common::proto::circe::home::v1::{HomeStatusRequest, InputResult};
use jupiterctl::deployment::DeploymentState;
use jupiterctl::report_html::{self, DagTask, RunData};
use jupiterctl::{config, session, state};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

pub const LONG_ABOUT: &str = "\
Write one self-contained HTML page (inline SVG, no script, nothing fetched: open it anywhere, mail it, \
attach it to an issue) picturing what a deployment started with `jupiterctl up` has run so far:

  - a header: app, backend, scheduler, inputs ok/failed, wall time, throughput;
  - the DAG, each task labelled with the node it was mapped to, in layers;
  - a timeline per node: for every input and task its queue wait, run and transfer as coloured bars
    (hover one for its input, task, node and durations);
  - the makespan histogram with median, p95 and max;
  - the predicted makespan and task costs against the measured ones;
  - the per-task summary table.

The timings are circe-home's (the same the OTLP spans carry), so no Grafana is needed.

Example:
  jupiterctl up examples/dummy_app &
  jupiterctl submit examples/dummy_app/sample_input
  jupiterctl report -o run.html      # then open run.html in a browser

`jupiterctl run APP --report run.html` writes the same page for a one-shot run.";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The page to write.
    #[arg(long, short, value_name = "PATH", default_value = "run.html")]
    pub output: PathBuf,
    #[command(flatten)]
    pub home: HomeArgs,
}

/// How `report` and `trace` find a deployment's circe-home.
#[derive(clap::Args, Debug, Clone)]
pub struct HomeArgs {
    /// The deployment's state file (default: $JUPITER_STATE, else
    /// ~/.jupiter/deployment.json, where `jupiterctl up` writes it).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// circe-home's URL, instead of the state file's (e.g. a `kubectl
    /// port-forward` to a Kubernetes deployment).
    #[arg(long, value_name = "URL", env = jupiter_common::env::CIRCE_HOME)]
    pub circe_home: Option<String>,
}

/// How long circe-home may take to answer: it answers at once when up.
const ASK_TIMEOUT: Duration = Duration::from_secs(20);

/// The deployment's record in its state file and every result its
/// circe-home has (finished inputs, ok or failed), oldest submission first.
pub async fn home_results(args: &HomeArgs) -> anyhow::Result<(DeploymentState, Vec<InputResult>)> {
    let path = match &args.state {
        Some(p) => p.clone(),
        None => state::default_path()?,
    };
    let recorded = state::read(&path)?;
    config::present_identity(&recorded)?;
    let circe_home = match &args.circe_home {
        Some(url) => url.clone(),
        None => {
            // Attached as `status` and `submit` do (on Kubernetes, through
            // a port-forward).
            let deployment = config::attach(&recorded).await?;
            deployment.summary.endpoints().circe_home
        }
    };
    let mut client = session::client(&circe_home).await?;
    let status = tokio::time::timeout(ASK_TIMEOUT, client.status(HomeStatusRequest {}))
        .await
        .with_context(|| format!("circe-home at {circe_home} did not answer within {ASK_TIMEOUT:?}"))?
        .with_context(|| format!("asking circe-home at {circe_home} for its results"))?
        .into_inner();
    let mut results = status.results;
    results.sort_by(|a, b| {
        (a.submitted_at_unix_nanos, &a.input_id).cmp(&(b.submitted_at_unix_nanos, &b.input_id))
    });
    Ok((recorded, results))
}

/// Fails unless the folder `path` would be written in exists: checked
/// before a run starts rather than after it ran for minutes.
pub fn check_writable(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        anyhow::ensure!(
            dir.is_dir(),
            "cannot write the report to {}: folder {} does not exist",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Writes `html` to `path` and says so on stderr.
pub fn write_page(path: &Path, html: &str) -> anyhow::Result<()> {
    std::fs::write(path, html).with_context(|| format!("writing the report to {}", path.display()))?;
    eprintln!("report written to {}", path.display());
    Ok(())
}

pub async fn execute(args: Args) -> anyhow::Result<ExitCode> {
    let (recorded, results) = home_results(&args.home).await?;
    let summary = recorded.summary();
    // The DAG's edges come from the app; a folder moved since `up` still
    // gets a page, with the mapped tasks and no edges.
    let (name, dag) = match App::load(&summary.app) {
        Ok(app) => (app.name.clone(), DagTask::of_app(&app)),
        Err(e) => {
            eprintln!(
                "warning: reading the app at {}: {e}; the DAG is drawn without its edges",
                summary.app.display()
            );
            let name = summary
                .app
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| summary.deployment.clone());
            (name, DagTask::of_mapping(&summary.mapping))
        }
    };
    if results.is_empty() {
        eprintln!("note: no input has finished yet; the page shows the DAG and mapping only");
    }
    let html = report_html::render(&RunData {
        app: &name,
        backend: recorded.backend(),
        dag: &dag,
        summary,
        results: &results,
        // Inputs were sent by other commands: their pace is read off the
        // timestamps.
        wall_ms: report_html::wall_ms(&results),
        alone: report_html::ran_alone(&results),
    });
    write_page(&args.output, &html)?;
    Ok(ExitCode::SUCCESS)
}
