//! jupiterctl: the one command a Jupiter user types.

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use jupiter_common::app::App;
use jupiterctl::local::{Deployment, LocalOptions, Scheduler};
use jupiterctl::{mapping_file, report, run, session, state};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Jupiter: run a DAG of tasks across (emulated) nodes, pipelined, with every input's end-to-end time",
    long_about = "Jupiter deploys an app (a DAG of tasks) over nodes: DRUPE profiles the nodes, WAVE maps tasks to \
nodes, CIRCE runs one worker per task and streams every input through the DAG.\n\n\
Quick start:\n  jupiterctl run examples/dummy_app            # 3 emulated nodes, sample inputs, outputs in ./jupiter-output\n  \
jupiterctl up examples/fanjoin &               # stay up\n  jupiterctl submit my-input.txt                 # from another shell\n  \
jupiterctl status\n  jupiterctl down"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Deploy, stream the inputs through the app, write every output, print timings, tear down.
    Run(RunArgs),
    /// Deploy and stay up until Ctrl-C or `jupiterctl down`.
    Up(DeployArgs),
    /// Send input files to the running deployment and wait for their results.
    Submit(SubmitArgs),
    /// Roles, nodes, mapping, queue depths and done/failed counts of the running deployment.
    Status,
    /// Stop the running deployment.
    Down,
    /// The network and resource profile DRUPE measured: link matrix (bandwidth,
    /// latency, age) and node resources.
    Profile(ProfileArgs),
    /// Schedule a task graph offline (HEFT or CPoP) and print the schedule as JSON.
    Schedule(ScheduleArgs),
    /// Run one role as a server in this process (what containers and
    /// multi-machine set-ups start): drupe-central or drupe-droplet.
    Serve {
        #[command(subcommand)]
        role: Role,
    },
}

#[derive(Args, Debug)]
struct ProfileArgs {
    /// drupe-central's URL (default: the running deployment's).
    #[arg(long, env = "JUPITER_DRUPE_CENTRAL")]
    central: Option<String>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
#[command(
    after_help = "The problem file (JSON):\n  {\"nodes\": [{\"name\": \"n0\", \"speed\": 2.0}],\n   \"links\": [{\"from\": \"n0\", \"to\": \"n1\", \"bandwidth\": 5.0}],\n   \"tasks\": [{\"name\": \"t0\", \"cost\": 10.0}],\n   \"edges\": [{\"from\": \"t0\", \"to\": \"t1\", \"data\": 3.0}]}\n\nA task runs cost / speed on a node; an edge between two different nodes takes data / bandwidth (a link listed in one direction serves both); on the same node it is free."
)]
struct ScheduleArgs {
    /// The problem file.
    #[arg(long)]
    problem: PathBuf,
    /// heft or cpop.
    #[arg(long, default_value = "heft")]
    algorithm: wave_home::offline::Algorithm,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// DRUPE central: probes links, fits models, serves the profile.
    DrupeCentral(drupe_central::cli::Args),
    /// DRUPE droplet: answers probes and reports this node's resources.
    DrupeDroplet(drupe_droplet::cli::Args),
}

#[derive(Args, Debug)]
struct DeployArgs {
    /// The app folder: app.yaml, or an original Jupiter folder with configuration.txt.
    app: PathBuf,
    /// Number of emulated nodes.
    #[arg(long, env = "JUPITER_NODES", default_value_t = 3)]
    nodes: usize,
    /// How tasks are mapped to nodes (default heft; static with --mapping).
    #[arg(long, value_enum, env = "JUPITER_SCHEDULER")]
    scheduler: Option<Scheduler>,
    /// Static mapping file (YAML `task: node` lines); implies --scheduler static.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// Seed of the random mapping (0: a fresh one each time).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where outputs are written (<output>/<input>/<file>).
    #[arg(long, short, env = "JUPITER_OUTPUT", default_value = "jupiter-output")]
    output: PathBuf,
    /// Keep queues and logs here instead of a temporary folder.
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Python used for original Jupiter tasks.
    #[arg(long, env = "JUPITER_PYTHON", default_value = "python3")]
    python: String,
    /// Seconds between DRUPE probe rounds.
    #[arg(long, default_value_t = 30.0)]
    probe_interval: f64,
    /// DRUPE probe payload sizes (bytes, or with a KiB/MiB suffix).
    #[arg(long, value_delimiter = ',', default_value = "16KiB,128KiB")]
    probe_sizes: Vec<String>,
    /// Backend: only `local` (every role in this process, on loopback) for now.
    #[arg(long, default_value = "local")]
    backend: String,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    deploy: DeployArgs,
    /// Input file or folder (repeat). Default: the app's sample inputs.
    #[arg(long, short)]
    input: Vec<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct SubmitArgs {
    /// Input files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Return once submitted, without waiting for results.
    #[arg(long)]
    no_wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A served role logs like its own binary; the CLI itself stays quiet.
    jupiter_common::telemetry::init(!matches!(cli.command, Command::Serve { .. }));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => run_cmd(args).await,
        Command::Up(args) => up_cmd(args).await,
        Command::Submit(args) => submit_cmd(args).await,
        Command::Status => status_cmd().await,
        Command::Down => down_cmd().await,
        Command::Profile(args) => profile_cmd(args).await,
        Command::Schedule(args) => {
            let problem = wave_home::offline::Problem::load(&args.problem)?;
            let schedule = wave_home::offline::schedule(&problem, args.algorithm);
            println!("{}", serde_json::to_string_pretty(&schedule)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { role } => {
            match role {
                Role::DrupeCentral(args) => drupe_central::cli::run(args).await?,
                Role::DrupeDroplet(args) => drupe_droplet::cli::run(args).await?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads the app and turns the flags into deployment options.
fn prepare(args: &DeployArgs) -> anyhow::Result<(App, LocalOptions, Option<tempfile::TempDir>)> {
    if args.backend != "local" {
        bail!(
            "--backend {}: only the `local` backend exists so far",
            args.backend
        );
    }
    let app = App::load(&args.app)?;
    let static_mapping = match &args.mapping {
        Some(path) => mapping_file::load(path)?,
        None => app.static_mapping.clone(),
    };
    let scheduler = match (args.scheduler, &args.mapping) {
        (Some(s), _) => s,
        (None, Some(_)) => Scheduler::Static,
        (None, None) => Scheduler::Heft,
    };
    if scheduler == Scheduler::Static && static_mapping.is_empty() {
        bail!("--scheduler static needs --mapping FILE (or a `mapping:` in the app)");
    }
    let (workdir, temp) = match &args.workdir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("jupiter-")
                .tempdir()
                .context("creating a work folder")?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating output folder {}", args.output.display()))?;
    let output = args
        .output
        .canonicalize()
        .with_context(|| format!("output folder {}", args.output.display()))?;
    let options = LocalOptions {
        nodes: args.nodes,
        scheduler,
        static_mapping,
        seed: args.seed,
        workdir,
        output,
        python: args.python.clone(),
        probe: jupiterctl::local::ProbeOptions {
            interval: {
                anyhow::ensure!(
                    args.probe_interval > 0.0 && args.probe_interval.is_finite(),
                    "--probe-interval must be a positive number of seconds, got {}",
                    args.probe_interval
                );
                Duration::from_secs_f64(args.probe_interval)
            },
            sizes: args
                .probe_sizes
                .iter()
                .map(|s| drupe_central::cli::parse_size(s))
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::msg)?,
        },
    };
    Ok((app, options, temp))
}

async fn run_cmd(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (app, options, _temp) = prepare(&args.deploy)?;
    let order: Vec<String> = app.tasks.iter().map(|t| t.name.clone()).collect();
    let output = options.output.clone();
    eprintln!(
        "deploying {} ({} tasks) on {} local nodes...",
        app.name,
        app.tasks.len(),
        options.nodes
    );
    let outcome = run::run(
        app,
        &args.input,
        options,
        Duration::from_secs(args.timeout),
        !args.quiet,
    )
    .await?;
    println!(
        "mapping ({}): {}",
        outcome.algorithm,
        outcome
            .mapping
            .iter()
            .map(|(t, n)| format!("{t}->{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if outcome.predicted_makespan_secs > 0.0 {
        println!(
            "predicted makespan of one input: {:.1} ms",
            outcome.predicted_makespan_secs * 1000.0
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
    println!("outputs in {}", output.display());
    Ok(if outcome.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn up_cmd(args: DeployArgs) -> anyhow::Result<ExitCode> {
    let state_path = state::default_path()?;
    if let Ok(existing) = state::read(&state_path) {
        if state::alive(existing.pid) {
            bail!(state::StateError::AlreadyUp {
                pid: existing.pid,
                path: state_path
            });
        }
    }
    let (app, options, _temp) = prepare(&args)?;
    let app_dir = app.dir.clone();
    let deployment = Deployment::up(app, options).await?;
    let state = state::DeploymentState {
        pid: std::process::id(),
        backend: "local".into(),
        app: app_dir,
        output: deployment.output.clone(),
        algorithm: deployment.algorithm.clone(),
        predicted_makespan_secs: deployment.predicted_makespan_secs,
        mapping: deployment.mapping.clone(),
        endpoints: deployment.endpoints.clone(),
    };
    state::write(&state_path, &state)?;
    eprintln!(
        "{} is up on {} nodes in {:.0} ms; circe-home at {}",
        deployment.app.name,
        deployment.endpoints.nodes.len(),
        deployment.startup.as_secs_f64() * 1000.0,
        deployment.endpoints.circe_home
    );
    eprintln!("submit inputs with `jupiterctl submit FILE...`; stop with Ctrl-C or `jupiterctl down`");
    jupiter_common::telemetry::shutdown_signal().await;
    eprintln!("stopping...");
    deployment.down().await;
    let _ = std::fs::remove_file(&state_path);
    Ok(ExitCode::SUCCESS)
}

async fn submit_cmd(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let state = state::read(&state::default_path()?)?;
    let files = session::expand_inputs(&args.paths)?;
    if args.no_wait {
        let client = session::client(&state.endpoints.circe_home).await?;
        let ids = session::submit_all(&client, &files).await?;
        println!("submitted {} inputs: {}", ids.len(), ids.join(" "));
        return Ok(ExitCode::SUCCESS);
    }
    let (results, wall) = session::submit_and_collect(
        &state.endpoints.circe_home,
        &files,
        Duration::from_secs(args.timeout),
        true,
    )
    .await?;
    print!("{}", report::inputs_table(&results));
    println!("{}", report::makespan_line(&results, wall.as_secs_f64() * 1000.0));
    println!("outputs in {}", state.output.display());
    Ok(if results.iter().all(|r| r.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn status_cmd() -> anyhow::Result<ExitCode> {
    let state = state::read(&state::default_path()?)?;
    print!("{}", jupiterctl::status::render(&state).await);
    Ok(ExitCode::SUCCESS)
}

async fn down_cmd() -> anyhow::Result<ExitCode> {
    let path = state::default_path()?;
    let state = state::read(&path)?;
    if !state::alive(state.pid) {
        std::fs::remove_file(&path).ok();
        println!(
            "the deployment (pid {}) was not running; removed its stale state file",
            state.pid
        );
        return Ok(ExitCode::SUCCESS);
    }
    state::signal_stop(state.pid).with_context(|| format!("signalling pid {}", state.pid))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while path.exists() && state::alive(state.pid) {
        if std::time::Instant::now() > deadline {
            bail!("the deployment (pid {}) did not stop within 20 s", state.pid);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn profile_cmd(args: ProfileArgs) -> anyhow::Result<ExitCode> {
    let central = match args.central {
        Some(url) => url,
        None => state::read(&state::default_path()?)?.endpoints.drupe_central,
    };
    let profile = jupiterctl::profile::fetch(&central)
        .await
        .map_err(anyhow::Error::msg)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&profile)?);
    } else {
        print!("{}", jupiterctl::profile::render(&profile));
    }
    Ok(ExitCode::SUCCESS)
}
