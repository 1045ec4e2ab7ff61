//! jupiterctl: the one command a Jupiter user types.

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use jupiter_common::app::App;
use jupiterctl::docker::{self, engine::Engine, DockerDeployment, DockerOptions};
use jupiterctl::kubernetes::{self, cli::KubeArgs};
use jupiterctl::local::{Deployment, LocalOptions, Scheduler};
use jupiterctl::run::Target;
use jupiterctl::{mapping_file, node_list, report, run, session, state};
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
    /// Stop the running deployment (on Docker: remove every container,
    /// network and volume it made; on Kubernetes: delete its objects).
    Down(DownArgs),
    /// Print the manifests of an app's deployment (no cluster needed):
    /// `jupiterctl render APP --backend kubernetes > app.yaml`.
    Render {
        /// Only `kubernetes` renders manifests.
        #[arg(long, value_enum, default_value = "kubernetes")]
        backend: RenderBackend,
        #[command(flatten)]
        kube: KubeArgs,
    },
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
    DrupeCentral(drupe_central::Args),
    /// DRUPE droplet: answers probes and reports this node's resources.
    DrupeDroplet(drupe_droplet::Args),
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
    /// Where the roles run: `local` (every role in this process, on
    /// loopback), `docker` (every role in its own container, per node
    /// limited in CPU and memory; build the images first with
    /// docker/build-images.sh).
    #[arg(long, value_enum, env = "JUPITER_BACKEND", default_value = "local")]
    backend: Backend,
    /// Node list (YAML: `nodes: [{name, cpus, memory}]`) instead of --nodes:
    /// on Docker every container of a node gets its CPU and memory limits.
    #[arg(long, env = "JUPITER_NODE_LIST", conflicts_with = "nodes")]
    node_list: Option<PathBuf>,
    /// Image tag of the role images (Docker backend).
    #[arg(long, env = "JUPITER_IMAGE_TAG", default_value = "dev")]
    image_tag: String,
    /// Image name prefix: images are PREFIX/ROLE:TAG (Docker backend).
    #[arg(long, env = "JUPITER_IMAGE_PREFIX", default_value = "jupiter")]
    image_prefix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Backend {
    /// Every role inside this process on loopback ports (no Docker, no cluster).
    Local,
    /// Every role in its own container on a private Docker network.
    Docker,
    /// The cluster of the current kubeconfig context (up and down only;
    /// `render` prints the manifests, and takes more Kubernetes flags).
    Kubernetes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RenderBackend {
    Kubernetes,
}

#[derive(Args, Debug)]
struct DownArgs {
    /// Delete this Kubernetes deployment (namespace jupiter-NAME) instead of
    /// the one in the state file.
    #[arg(long, value_name = "NAME")]
    kubernetes: Option<String>,
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
    /// circe-home's URL, instead of the state file's (e.g. a
    /// `kubectl port-forward` to a Kubernetes deployment).
    #[arg(long, env = "JUPITER_CIRCE_HOME")]
    circe_home: Option<String>,
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
            eprintln!("error: {}", explain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each once: our errors already quote their
/// cause in their own message, which `{:#}` would repeat.
fn explain(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => run_cmd(args).await,
        Command::Up(args) => up_cmd(args).await,
        Command::Submit(args) => submit_cmd(args).await,
        Command::Status => status_cmd().await,
        Command::Down(args) => down_cmd(args).await,
        Command::Render {
            backend: RenderBackend::Kubernetes,
            kube,
        } => {
            print!("{}", kubernetes::cli::render_cmd(&kube)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Profile(args) => profile_cmd(args).await,
        Command::Schedule(args) => {
            let problem = wave_home::offline::Problem::load(&args.problem)?;
            let schedule = wave_home::offline::schedule(&problem, args.algorithm);
            println!("{}", serde_json::to_string_pretty(&schedule)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { role } => {
            match role {
                Role::DrupeCentral(args) => {
                    jupiter_common::role::run(args, jupiter_common::telemetry::shutdown_signal()).await?
                }
                Role::DrupeDroplet(args) => {
                    jupiter_common::role::run(args, jupiter_common::telemetry::shutdown_signal()).await?
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads the app and turns the flags into where and how to deploy.
fn prepare(args: &DeployArgs) -> anyhow::Result<(App, Target, Option<tempfile::TempDir>)> {
    let app = App::load(&args.app)?;
    let nodes = match &args.node_list {
        Some(path) => node_list::load(path)?,
        None => node_list::uniform(args.nodes)?,
    };
    let (scheduler, static_mapping) = mapping_file::resolve(
        &app.static_mapping,
        args.mapping.as_deref(),
        args.scheduler,
        |_| Scheduler::Heft,
    )?;
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
        nodes: nodes.len(),
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
                .map(|s| drupe_central::parse_size(s))
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::msg)?,
        },
    };
    let target = match args.backend {
        Backend::Local => {
            if args.node_list.is_some() {
                eprintln!(
                    "note: the local backend takes only the number of nodes from --node-list; \
                     CPU and memory limits apply on --backend docker"
                );
            }
            Target::Local(options)
        }
        Backend::Kubernetes => bail!(
            "`run` streams inputs from this machine, which needs circe-home reachable: on Kubernetes use \
             `jupiterctl up APP --backend kubernetes`, then `kubectl -n jupiter-NAME port-forward svc/circe-home 7300` \
             and `jupiterctl submit --circe-home http://127.0.0.1:7300 FILE...`"
        ),
        Backend::Docker => Target::Docker(DockerOptions {
            common: options,
            nodes,
            image_prefix: args.image_prefix.clone(),
            image_tag: args.image_tag.clone(),
        }),
    };
    Ok((app, target, temp))
}

fn describe(target: &Target) -> String {
    match target {
        Target::Local(o) => format!("{} local nodes", o.nodes),
        Target::Docker(o) => format!(
            "{} Docker nodes ({})",
            o.nodes.len(),
            o.nodes
                .iter()
                .map(|n| format!("{}: {} CPU, {} MiB", n.name, n.cpus, n.memory_bytes >> 20))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

async fn run_cmd(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (app, target, _temp) = prepare(&args.deploy)?;
    let order: Vec<String> = app.tasks.iter().map(|t| t.name.clone()).collect();
    let output = match &target {
        Target::Local(o) => o.output.clone(),
        Target::Docker(o) => o.common.output.clone(),
    };
    eprintln!(
        "deploying {} ({} tasks) on {}...",
        app.name,
        app.tasks.len(),
        describe(&target)
    );
    let outcome = run::run(
        app,
        &args.input,
        target,
        Duration::from_secs(args.timeout),
        !args.quiet,
    )
    .await?;
    println!(
        "up in {:.0} ms; mapping ({}): {}",
        outcome.summary.startup.as_secs_f64() * 1000.0,
        outcome.summary.algorithm,
        outcome
            .summary
            .mapping
            .iter()
            .map(|(t, n)| format!("{t}->{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if outcome.summary.predicted_makespan_secs > 0.0 {
        println!(
            "predicted makespan of one input: {:.1} ms",
            outcome.summary.predicted_makespan_secs * 1000.0
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
        let running = match &existing.docker {
            Some(id) => docker::exists(&Engine::connect().await?, id).await?,
            // A cluster deployment is there until `down` deletes it.
            None if existing.kubernetes.is_some() => true,
            None => state::alive(existing.pid),
        };
        if running {
            bail!(state::StateError::AlreadyUp {
                owner: existing.owner(),
                path: state_path
            });
        }
    }
    if args.backend == Backend::Kubernetes {
        return kube_up(&args, &state_path).await;
    }
    let (app, target, _temp) = prepare(&args)?;
    let app_dir = app.dir.clone();
    let described = describe(&target);
    let options = match target {
        Target::Local(options) => options,
        Target::Docker(options) => {
            eprintln!("deploying {} on {described}...", app.name);
            let deployment = DockerDeployment::up(app, options).await?;
            let mut state = state::DeploymentState::of("docker", app_dir, &deployment.summary);
            state.docker = Some(deployment.id.clone());
            state::write(&state_path, &state)?;
            eprintln!(
                "up on {} nodes in {:.0} ms as Docker deployment {} ({} containers); circe-home at {}",
                deployment.summary.endpoints.nodes.len(),
                deployment.summary.startup.as_secs_f64() * 1000.0,
                deployment.id,
                deployment.containers.len(),
                deployment.summary.endpoints.circe_home
            );
            eprintln!("submit inputs with `jupiterctl submit FILE...`; remove it with `jupiterctl down`");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let deployment = Deployment::up(app, options).await?;
    let state = state::DeploymentState::of("local", app_dir, &deployment.summary);
    state::write(&state_path, &state)?;
    eprintln!(
        "{} is up on {} nodes in {:.0} ms; circe-home at {}",
        deployment.app.name,
        deployment.summary.endpoints.nodes.len(),
        deployment.summary.startup.as_secs_f64() * 1000.0,
        deployment.summary.endpoints.circe_home
    );
    eprintln!("submit inputs with `jupiterctl submit FILE...`; stop with Ctrl-C or `jupiterctl down`");
    jupiter_common::telemetry::shutdown_signal().await;
    eprintln!("stopping...");
    deployment.down().await;
    let _ = std::fs::remove_file(&state_path);
    Ok(ExitCode::SUCCESS)
}

async fn submit_cmd(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let mut state = match &args.circe_home {
        Some(url) => state::DeploymentState::remote(url),
        None => state::read(&state::default_path()?)?,
    };
    if let Some(url) = &args.circe_home {
        state.endpoints.circe_home = url.clone();
    }
    let files = session::expand_inputs(&args.paths)?;
    if args.no_wait {
        let client = session::client(&state.endpoints.circe_home).await?;
        let ids = session::submit_all(&client, &files).await?;
        println!("submitted {} inputs: {}", ids.len(), ids.join(" "));
        return Ok(ExitCode::SUCCESS);
    }
    let broken = async {
        match &state.docker {
            Some(id) => match Engine::connect().await {
                Ok(engine) => docker::first_stopped(&engine, id).await,
                Err(_) => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    };
    let (results, wall) = session::submit_and_collect(
        &state.endpoints.circe_home,
        &files,
        Duration::from_secs(args.timeout),
        true,
        broken,
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
    if let Some(name) = &state.kubernetes {
        println!(
            "Kubernetes deployment {name} of {} (namespace jupiter-{name}), mapping ({}):",
            state.app.display(),
            state.algorithm
        );
        for (task, node) in &state.mapping {
            println!("  {task:<20} {node}");
        }
        println!("pods: kubectl -n jupiter-{name} get pods -o wide");
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", jupiterctl::status::render(&state).await);
    Ok(ExitCode::SUCCESS)
}

async fn down_cmd(args: DownArgs) -> anyhow::Result<ExitCode> {
    if let Some(name) = &args.kubernetes {
        kubernetes::cli::down_cmd(name).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let path = state::default_path()?;
    let state = state::read(&path)?;
    if let Some(name) = &state.kubernetes {
        kubernetes::cli::down_cmd(name).await?;
        std::fs::remove_file(&path).ok();
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(id) = &state.docker {
        let removed = docker::remove(&Engine::connect().await?, id).await?;
        std::fs::remove_file(&path).ok();
        println!("removed Docker deployment {id}: {removed}");
        return Ok(ExitCode::SUCCESS);
    }
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

/// `up --backend kubernetes`: the deployment flags as the Kubernetes
/// backend takes them; the node list names the nodes to use.
async fn kube_up(args: &DeployArgs, state_path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let nodes = match &args.node_list {
        Some(path) => node_list::load(path)?.into_iter().map(|n| n.name).collect(),
        None => Vec::new(),
    };
    // The Kubernetes flags `up` does not take keep their defaults.
    let mut kube = KubeArgs::defaults(&args.app)?;
    kube.nodes = nodes;
    kube.mapping = args.mapping.clone();
    kube.scheduler = args.scheduler;
    kube.seed = args.seed;
    kube.image_tag = args.image_tag.clone();
    kube.image_prefix = args.image_prefix.clone();
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes cluster configured (KUBECONFIG, ~/.kube/config or in-cluster)")?;
    let options = kubernetes::cli::up_with(client, &kube).await?;
    let name = options.deployment.clone();
    let service = |role: &str, port: u16| format!("http://{role}.jupiter-{name}.svc:{port}");
    let mut state = state::DeploymentState::remote(&service("circe-home", 7300));
    state.backend = "kubernetes".into();
    state.app = args.app.clone();
    state.algorithm = if args.mapping.is_some() || args.scheduler == Some(Scheduler::Static) {
        "static".into()
    } else {
        "random".into()
    };
    state.mapping = options.mapping.clone();
    state.endpoints.drupe_central = service("drupe-central", 7100);
    state.endpoints.wave_home = service("wave-home", 7200);
    state.kubernetes = Some(name.clone());
    state::write(state_path, &state)?;
    println!(
        "Kubernetes deployment {name} is up in namespace jupiter-{name}; \
         feed it with `kubectl -n jupiter-{name} port-forward svc/circe-home 7300` and \
         `jupiterctl submit --circe-home http://127.0.0.1:7300 FILE...`; remove it with `jupiterctl down`"
    );
    Ok(ExitCode::SUCCESS)
}
