//! `jupiterctl run`: deploy, stream the inputs, print every input's
//! makespan and a per-task summary, tear down.

use jupiterctl::config::{BackendConfig, DeployArgs, DeployConfig};
use jupiterctl::report;
use jupiterctl::report_html::{self, DagTask, RunData};
use jupiterctl::session::Pace;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// Input file or folder (repeat). Default: the app's sample inputs.
    #[arg(long, short)]
    pub input: Vec<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Send the next input only after the previous one's result, so each
    /// runs alone and its makespan can be checked against the prediction
    /// (default: all at once, pipelined).
    #[arg(long)]
    pub one_at_a_time: bool,
    /// Also write one self-contained HTML page of the run here: the DAG
    /// with its mapping, a timeline per node of every input's queue waits,
    /// runs and transfers, the makespan histogram, predicted vs measured
    /// and the per-task table (e.g. `--report run.html`).
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
}

pub async fn execute(args: Args) -> anyhow::Result<ExitCode> {
    let config = DeployConfig::try_from(&args.deploy)?;
    if let Some(path) = &args.report {
        super::report::check_writable(path)?;
    }
    let app = &config.app;
    let order: Vec<String> = app.tasks.iter().map(|t| t.name.clone()).collect();
    eprintln!(
        "deploying {} ({} tasks) on {}...",
        app.name,
        app.tasks.len(),
        config.backend.describe()
    );
    let backend = config.backend.clone().backend(&app.name).await?;
    let outcome = jupiterctl::run::run(
        backend,
        app,
        &config.placement,
        &args.input,
        Pace::one_at_a_time(args.one_at_a_time),
        Duration::from_secs(args.timeout),
        !args.quiet,
    )
    .await?;
    let summary = &outcome.summary;
    println!(
        "up in {:.0} ms; mapping ({}): {}",
        summary.startup.as_secs_f64() * 1000.0,
        summary.scheduler,
        summary
            .mapping
            .iter()
            .map(|(t, n)| format!("{t}->{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if summary.predicted_makespan_secs > 0.0 {
        println!(
            "predicted makespan of one input: {:.1} ms",
            summary.predicted_makespan_secs * 1000.0
        );
    }
    println!();
    print!("{}", report::inputs_table(&outcome.results));
    println!();
    print!(
        "{}",
        report::tasks_table(&report::summarize(&outcome.results, &order))
    );
    println!();
    println!(
        "{}",
        report::makespan_line(&outcome.results, outcome.wall.as_secs_f64() * 1000.0)
    );
    if let Some(line) =
        report::prediction_line(&outcome.results, outcome.alone(), summary.predicted_makespan_secs)
    {
        println!("{line}");
    }
    match &config.backend {
        // The claims went with the deployment at the end of the run.
        BackendConfig::Kubernetes(_) => println!(
            "outputs were on circe-home's claim in namespace jupiter-{} and went with the deployment; to keep \
             them, `up` and `submit`, then `kubectl -n jupiter-{} cp circe-home-0:{} ./out` before `down`",
            summary.deployment,
            summary.deployment,
            summary.output.display()
        ),
        _ => println!("outputs in {}", summary.output.display()),
    }
    if let Some(path) = &args.report {
        let dag = DagTask::of_app(app);
        let html = report_html::render(&RunData {
            app: &app.name,
            backend: &config.backend.describe(),
            dag: &dag,
            summary,
            results: &outcome.results,
            wall_ms: outcome.wall.as_secs_f64() * 1000.0,
            alone: outcome.alone(),
        });
        super::report::write_page(path, &html)?;
    }
    Ok(super::exit(outcome.all_ok()))
}
