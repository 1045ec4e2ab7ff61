//! From the command line to a deployment. The flags of `run` and `up` are
//! declared once ([`DeployArgs`]) and checked once into a [`DeployConfig`]
//! (clap args, then `TryFrom`, then a validated config, as in Ballista's
//! scheduler): the app, the scheduling, and each backend's own options.
//! A config makes its backend; a state file's record finds one again.

use crate::deployment::{
    Backend, DeployError, Deployment, DeploymentState, PlacementRequest, ProbeOptions, ReplanOptions,
    Scheduler,
};
use crate::docker::{Docker, DockerConfig, Images};
use crate::exec_profile::ProfileOptions;
use crate::kubernetes::{KubeConfig, KubeError, KubeOptions, Kubernetes, Resources, Storage, Wait};
use crate::local::{Local, LocalConfig};
use crate::mapping_file::{self, MappingFileError};
use crate::node_list::{self, NodeListError, NodeSpec};
use jupiter_common::app::{App, AppError};
use jupiter_common::cli::RunnerFlags;
use jupiter_common::env;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Where the roles run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// Every role inside this process on loopback ports (no Docker, no cluster).
    Local,
    /// Every role in its own container on a private Docker network, per
    /// node limited in CPU and memory (build the images first with
    /// docker/build-images.sh).
    Docker,
    /// The cluster of the current kubeconfig context (`up`, `status` and
    /// `down`; `run` needs circe-home reachable).
    Kubernetes,
}

/// How tasks are mapped to nodes.
#[derive(clap::Args, Debug, Clone)]
pub struct MappingArgs {
    /// How tasks are mapped to nodes (default heft; static with --mapping;
    /// on Kubernetes static with a mapping, else random).
    #[arg(long, value_enum, env = env::SCHEDULER)]
    pub scheduler: Option<Scheduler>,
    /// Static mapping file (YAML `task: node` lines); implies --scheduler static.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Seed of the random mappings (0: a fresh one each time).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// How long the execution profile may take (`run`, `up`, `exec-profile`).
#[derive(clap::Args, Debug, Clone)]
pub struct ProfileTimeoutArg {
    /// Seconds the execution profile of a network-aware scheduler (heft,
    /// cpop, wave-greedy) may take; tasks not measured by then are
    /// estimated, and listed. 0: run nothing, estimate every task.
    #[arg(long, value_name = "SECS", default_value_t = crate::exec_profile::DEFAULT_TIMEOUT.as_secs_f64())]
    pub profile_timeout: f64,
}

impl ProfileTimeoutArg {
    /// The timeout, checked.
    pub fn duration(&self) -> Result<Duration, ConfigError> {
        Duration::try_from_secs_f64(self.profile_timeout)
            .map_err(|_| ConfigError::ProfileTimeout(self.profile_timeout))
    }
}

/// How `run` and `up` take the execution profile.
#[derive(clap::Args, Debug, Clone)]
pub struct ProfileArgs {
    #[command(flatten)]
    pub timeout: ProfileTimeoutArg,
    /// Measure the tasks again even if a cached profile of the very same
    /// app content exists (profiles are cached beside the state file, in
    /// profiles/<app hash>.json).
    #[arg(long)]
    pub reprofile: bool,
}

/// Which role images the containers run.
#[derive(clap::Args, Debug, Clone)]
pub struct ImageArgs {
    /// Tag of the role images (Docker and Kubernetes).
    #[arg(long, env = env::IMAGE_TAG, default_value = "dev")]
    pub image_tag: String,
    /// Image name prefix: images are PREFIX/ROLE:TAG (Docker and Kubernetes).
    #[arg(long, env = env::IMAGE_PREFIX, default_value = "jupiter")]
    pub image_prefix: String,
}

/// What only Kubernetes objects have.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Kubernetes")]
pub struct KubeFlags {
    /// Deployment name (namespace jupiter-NAME); default: from the app's name.
    #[arg(long)]
    pub deployment: Option<String>,
    /// Always, IfNotPresent or Never.
    #[arg(long, default_value = "IfNotPresent")]
    pub image_pull_policy: String,
    /// RUST_LOG of every role.
    #[arg(long, default_value = "info")]
    pub rust_log: String,
    /// CPU request of every container (Kubernetes quantity, e.g. 100m).
    #[arg(long, default_value = "50m")]
    pub cpu_request: String,
    /// Memory request of every container (e.g. 64Mi).
    #[arg(long, default_value = "64Mi")]
    pub memory_request: String,
    /// CPU limit of every container (none by default).
    #[arg(long)]
    pub cpu_limit: Option<String>,
    /// Memory limit of every container (none by default).
    #[arg(long)]
    pub memory_limit: Option<String>,
    /// StorageClass of the PersistentVolumeClaims (each circe-worker's
    /// queue, circe-home's records, drupe-central's store); default: the
    /// cluster's default class.
    #[arg(long, value_name = "NAME")]
    pub storage_class: Option<String>,
    /// Size of each circe-worker's queue claim (Kubernetes quantity).
    #[arg(long, default_value = "1Gi", value_name = "SIZE")]
    pub queue_size: String,
    /// Size of circe-home's claim (its records of every input, the outputs).
    #[arg(long, default_value = "1Gi", value_name = "SIZE")]
    pub home_size: String,
    /// Size of drupe-central's claim (the network and node profiles).
    #[arg(long, default_value = "256Mi", value_name = "SIZE")]
    pub drupe_size: String,
}

impl KubeFlags {
    /// The rendering options for `app` on `nodes` (empty: every node).
    pub fn options(
        &self,
        app: &App,
        images: &ImageArgs,
        nodes: Vec<String>,
    ) -> Result<KubeOptions, KubeError> {
        let mut options = KubeOptions::for_app(app);
        if let Some(name) = &self.deployment {
            crate::kubernetes::names::check_deployment(name)?;
            options.deployment = name.clone();
        }
        options.image_prefix = images.image_prefix.clone();
        options.image_tag = images.image_tag.clone();
        options.image_pull_policy = self.image_pull_policy.clone();
        options.nodes = nodes;
        options.rust_log = self.rust_log.clone();
        let pairs = |cpu: Option<&String>, memory: Option<&String>| -> BTreeMap<String, String> {
            [("cpu", cpu), ("memory", memory)]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.clone())))
                .collect()
        };
        options.resources = Resources {
            requests: pairs(Some(&self.cpu_request), Some(&self.memory_request)),
            limits: pairs(self.cpu_limit.as_ref(), self.memory_limit.as_ref()),
        };
        for (flag, size) in [
            ("--queue-size", &self.queue_size),
            ("--home-size", &self.home_size),
            ("--drupe-size", &self.drupe_size),
        ] {
            crate::kubernetes::names::check_quantity(flag, size)?;
        }
        if let Some(class) = &self.storage_class {
            crate::kubernetes::names::check_subdomain("--storage-class", class)?;
        }
        options.storage = Storage {
            class: self.storage_class.clone(),
            queue_size: self.queue_size.clone(),
            home_size: self.home_size.clone(),
            drupe_size: self.drupe_size.clone(),
        };
        Ok(options)
    }
}

/// The limits of the circe-workers on each node of a node list, from the
/// sizes it gives (`cpus` in millicores, `memory` in bytes); a node that
/// gives neither has none.
fn node_limits(nodes: &[(NodeSpec, node_list::Given)]) -> BTreeMap<String, BTreeMap<String, String>> {
    nodes
        .iter()
        .filter_map(|(node, given)| {
            let mut limits = BTreeMap::new();
            if given.cpus {
                let millis = (node.cpus * 1000.0).round() as u64;
                limits.insert("cpu".to_string(), format!("{millis}m"));
            }
            if given.memory {
                limits.insert("memory".to_string(), node.memory_bytes.to_string());
            }
            (!limits.is_empty()).then(|| (node.name.clone(), limits))
        })
        .collect()
}

/// The flags of `run` and `up`: what to deploy, where, and how.
#[derive(clap::Args, Debug, Clone)]
pub struct DeployArgs {
    /// The app folder: app.yaml, or an original Jupiter folder with configuration.txt.
    pub app: PathBuf,
    /// Where the roles run.
    #[arg(long, value_enum, env = env::BACKEND, default_value = "local")]
    pub backend: BackendKind,
    /// Number of emulated nodes.
    #[arg(long, env = env::NODES, default_value_t = 3)]
    pub nodes: usize,
    /// Node list (YAML: `nodes: [{name, cpus, memory, bandwidth, delay}]`)
    /// instead of --nodes: on Docker every container of a node gets its CPU
    /// and memory limits, and its link's bandwidth (e.g. 20Mbit) and delay
    /// (e.g. 40ms) both ways (needs root); on Kubernetes it names the
    /// cluster nodes to use, and the cpus and memory it gives become the
    /// limits of the circe-workers on each node.
    #[arg(long, env = env::NODE_LIST, conflicts_with = "nodes")]
    pub node_list: Option<PathBuf>,
    #[command(flatten)]
    pub mapping: MappingArgs,
    #[command(flatten)]
    pub profiling: ProfileArgs,
    /// Where outputs are written (<output>/<input>/<file>).
    #[arg(long, short, env = env::OUTPUT, default_value = "jupiter-output")]
    pub output: PathBuf,
    /// Local backend: keep queues and logs here instead of a temporary folder.
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Local backend: run each role as its own process (`jupiterctl serve
    /// ROLE`), restarted on its port and its data if it dies (any signal,
    /// any exit), with backoff if it keeps dying. Each role logs to
    /// WORKDIR/logs/; `status` shows every role's pid and restarts.
    #[arg(long)]
    pub processes: bool,
    /// Python used for original Jupiter tasks.
    #[arg(long, env = env::PYTHON, default_value = "python3")]
    pub python: String,
    #[command(flatten)]
    pub runner: RunnerFlags,
    /// Seconds between DRUPE probe rounds.
    #[arg(long, default_value_t = 30.0)]
    pub probe_interval: f64,
    /// DRUPE probe payload sizes (bytes, or with a KiB/MiB suffix).
    #[arg(long, value_delimiter = ',', default_value = "16KiB,128KiB")]
    pub probe_sizes: Vec<String>,
    /// DRUPE grows each link's largest payload until one transfer lasts this many seconds (0: off).
    #[arg(long, default_value_t = 0.02)]
    pub probe_min_secs: f64,
    /// The largest payload DRUPE's adaptive probing sends (bytes, or with a KiB/MiB suffix).
    #[arg(long, default_value = "64MiB")]
    pub probe_max_bytes: String,
    /// Map the tasks again while inputs run (heft and cpop, Docker backend)
    /// once a node's speed or a link's bandwidth has changed by more than
    /// this factor, either way, in two DRUPE readings in a row. New inputs
    /// take the new mapping, inputs in flight finish where they are. 0: never.
    #[arg(long, default_value_t = 2.0, value_name = "FACTOR")]
    pub replan_factor: f64,
    /// ...and only if the new mapping's predicted makespan is lower by more
    /// than this many percent.
    #[arg(long, default_value_t = 20.0, value_name = "PERCENT")]
    pub replan_gain: f64,
    /// Send every role's spans to this OTLP/gRPC endpoint (a collector,
    /// Tempo, Jaeger: e.g. http://127.0.0.1:4317): one trace per input
    /// across every role. Export is batched and never slows the inputs; a
    /// collector that cannot be reached only loses spans (counted in
    /// `jupiter_trace_spans_dropped_total`).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Mutual TLS between every role and from jupiterctl: a CA made for
    /// this deployment signs a certificate per role and one for you
    /// (`status --json` shows its files, for grpcurl); every server
    /// refuses plaintext and any client without a certificate of this CA.
    /// The default on --backend kubernetes; off on local and docker.
    #[arg(long, overrides_with = "no_tls")]
    pub tls: bool,
    /// Plaintext, also on Kubernetes: no role checks who calls it.
    #[arg(long, overrides_with = "tls")]
    pub no_tls: bool,
    #[command(flatten)]
    pub images: ImageArgs,
    #[command(flatten)]
    pub kube: KubeFlags,
    /// Seconds to wait for every pod to be ready (0: do not wait).
    #[arg(long, default_value_t = 300, help_heading = "Kubernetes")]
    pub ready_timeout: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error(transparent)]
    NodeList(#[from] NodeListError),
    #[error(transparent)]
    MappingFile(#[from] MappingFileError),
    #[error("node list {path}: node {node} sets bandwidth/delay, but bandwidth shaping is offered on the Docker backend only (--backend docker); drop those fields for --backend {backend}")]
    ShapingNeedsDocker {
        path: PathBuf,
        node: String,
        backend: &'static str,
    },
    #[error("--scheduler static needs --mapping FILE (or a `mapping:` in the app)")]
    StaticWithoutMapping,
    #[error("--profile-timeout must be 0 or a positive number of seconds, got {0}")]
    ProfileTimeout(f64),
    #[error("--probe-interval must be a positive number of seconds, got {0}")]
    ProbeInterval(f64),
    #[error("--probe-sizes: {0}")]
    ProbeSize(#[source] drupe_central::SizeError),
    #[error("--probe-min-secs must be between 0 and 60 seconds, got {0}")]
    ProbeMinSecs(f64),
    #[error("--replan-factor must be 0 (never map again) or above 1, got {0}")]
    ReplanFactor(f64),
    #[error("--replan-gain must be a percentage between 0 and 100, got {0}")]
    ReplanGain(f64),
    #[error("--probe-max-bytes: {0}")]
    ProbeMaxBytes(#[source] drupe_central::SizeError),
    #[error("output folder {dir}: {source}")]
    Output { dir: PathBuf, source: std::io::Error },
    #[error("creating a work folder: {0}")]
    Workdir(std::io::Error),
    #[error("--processes: finding the jupiterctl binary that serves the roles: {0}")]
    Program(std::io::Error),
    #[error(
        "--processes is for --backend local; on --backend {0} every role already is its own container or pod"
    )]
    ProcessesNeedLocal(&'static str),
    #[error(transparent)]
    Deploy(#[from] DeployError),
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("writing the objects as YAML: {0}")]
    Yaml(serde_yaml::Error),
    #[error(transparent)]
    Flag(#[from] jupiter_common::cli::FlagError),
}

/// A checked deployment: the app, the scheduling, and where it runs.
#[derive(Debug)]
pub struct DeployConfig {
    pub app: App,
    pub placement: PlacementRequest,
    pub backend: BackendConfig,
    /// The temporary work folder of a local deployment without --workdir,
    /// removed when this is dropped.
    pub temp: Option<tempfile::TempDir>,
}

/// Each backend's own options.
#[derive(Debug, Clone)]
pub enum BackendConfig {
    Local(LocalConfig),
    Docker(DockerConfig),
    Kubernetes(Box<KubeConfig>),
}

/// The scheduling flags checked against `app`; `offline` when only the
/// schedulers that need no profile can run (`render`, with no cluster).
pub fn placement(
    app: &App,
    args: &MappingArgs,
    python: &str,
    offline: bool,
) -> Result<PlacementRequest, ConfigError> {
    let (scheduler, static_mapping) = mapping_file::resolve(
        &app.static_mapping,
        args.mapping.as_deref(),
        args.scheduler,
        |m| match (offline, m.is_empty()) {
            (false, _) => Scheduler::Heft,
            (true, true) => Scheduler::Random,
            (true, false) => Scheduler::Static,
        },
    )?;
    if scheduler == Scheduler::Static && static_mapping.is_empty() {
        return Err(ConfigError::StaticWithoutMapping);
    }
    if offline && !scheduler.offline() {
        return Err(DeployError::SchedulerNeedsProfile(scheduler.name()).into());
    }
    Ok(PlacementRequest {
        scheduler,
        static_mapping,
        seed: args.seed,
        python: python.to_string(),
        profile: ProfileOptions {
            python: python.to_string(),
            ..ProfileOptions::default()
        },
        replan: ReplanOptions::default(),
    })
}

impl TryFrom<&DeployArgs> for DeployConfig {
    type Error = ConfigError;

    fn try_from(args: &DeployArgs) -> Result<Self, ConfigError> {
        let app = App::load(&args.app)?;
        let mut placement = placement(&app, &args.mapping, &args.python, false)?;
        placement.replan = replan(args)?;
        placement.profile.timeout = args.profiling.timeout.duration()?;
        placement.profile.reprofile = args.profiling.reprofile;
        placement.profile.cache_dir = crate::exec_profile::cache::default_dir();
        let sized: Vec<(NodeSpec, node_list::Given)> = match &args.node_list {
            Some(path) => node_list::load_given(path)?,
            None => node_list::uniform(args.nodes)?
                .into_iter()
                .map(|n| (n, Default::default()))
                .collect(),
        };
        let nodes: Vec<NodeSpec> = sized.iter().map(|(n, _)| n.clone()).collect();
        // Only the Docker backend can shape a node's link; elsewhere the
        // fields would be silently ignored, and the experiment wrong.
        if let (Some(path), Some(node)) = (&args.node_list, nodes.iter().find(|n| n.shaped())) {
            if args.backend != BackendKind::Docker {
                return Err(ConfigError::ShapingNeedsDocker {
                    path: path.clone(),
                    node: node.name.clone(),
                    backend: match args.backend {
                        BackendKind::Local => "local",
                        _ => "kubernetes",
                    },
                });
            }
        }
        match args.backend {
            BackendKind::Docker if args.processes => return Err(ConfigError::ProcessesNeedLocal("docker")),
            BackendKind::Kubernetes if args.processes => {
                return Err(ConfigError::ProcessesNeedLocal("kubernetes"))
            }
            _ => {}
        }
        let mut temp = None;
        let backend = match args.backend {
            BackendKind::Local => {
                if args.node_list.is_some() {
                    eprintln!(
                        "note: the local backend takes only the number of nodes from --node-list; \
                         CPU and memory limits apply on --backend docker"
                    );
                }
                let workdir = match &args.workdir {
                    Some(dir) => std::path::absolute(dir).map_err(ConfigError::Workdir)?,
                    None => {
                        let dir = tempfile::Builder::new()
                            .prefix("jupiter-")
                            .tempdir()
                            .map_err(ConfigError::Workdir)?;
                        temp.insert(dir).path().to_path_buf()
                    }
                };
                BackendConfig::Local(LocalConfig {
                    nodes: nodes.len(),
                    workdir,
                    output: output_folder(args)?,
                    python: args.python.clone(),
                    runner: args.runner.clone(),
                    probe: probe(args)?,
                    processes: match args.processes {
                        true => Some(std::env::current_exe().map_err(ConfigError::Program)?),
                        false => None,
                    },
                    otlp_endpoint: otlp_endpoint(args)?,
                    tls: args.tls_on(BackendKind::Local),
                })
            }
            BackendKind::Docker => BackendConfig::Docker(DockerConfig {
                nodes,
                images: Images {
                    prefix: args.images.image_prefix.clone(),
                    tag: args.images.image_tag.clone(),
                },
                output: output_folder(args)?,
                probe: probe(args)?,
                runner: args.runner.clone(),
                otlp_endpoint: otlp_endpoint(args)?,
                tls: args.tls_on(BackendKind::Docker),
            }),
            BackendKind::Kubernetes => {
                // Only a node list restricts the cluster's nodes.
                let named = match &args.node_list {
                    Some(_) => nodes.iter().map(|n| n.name.clone()).collect(),
                    None => Vec::new(),
                };
                let mut options = args.kube.options(&app, &args.images, named)?;
                options.node_limits = node_limits(&sized);
                options.runner = args.runner.clone();
                options.otlp_endpoint = otlp_endpoint(args)?;
                if args.tls_on(BackendKind::Kubernetes) {
                    let dir = crate::kubernetes::tls::dir(&options.deployment)?;
                    options.tls = Some(crate::kubernetes::KubeTls::Make { dir });
                }
                BackendConfig::Kubernetes(Box::new(KubeConfig {
                    options,
                    wait: (args.ready_timeout > 0).then(|| Wait {
                        timeout: Duration::from_secs(args.ready_timeout),
                        ..Wait::default()
                    }),
                    map_offline: placement.scheduler.offline(),
                }))
            }
        };
        Ok(DeployConfig {
            app,
            placement,
            backend,
            temp,
        })
    }
}

impl DeployArgs {
    /// Whether the roles on `backend` speak mutual TLS: `--tls` or
    /// `--no-tls` (the last given wins), else on Kubernetes only, whose
    /// nodes may sit on networks others reach.
    pub fn tls_on(&self, backend: BackendKind) -> bool {
        match (self.tls, self.no_tls) {
            (true, _) => true,
            (_, true) => false,
            _ => backend == BackendKind::Kubernetes,
        }
    }
}

/// The output folder, made if missing, as an absolute path (containers
/// bind-mount it).
fn output_folder(args: &DeployArgs) -> Result<PathBuf, ConfigError> {
    let bad = |source| ConfigError::Output {
        dir: args.output.clone(),
        source,
    };
    std::fs::create_dir_all(&args.output).map_err(bad)?;
    args.output.canonicalize().map_err(bad)
}

/// `--otlp-endpoint` (an empty OTEL_EXPORTER_OTLP_ENDPOINT is none).
/// Checked here, so a bad URL is one clear error, not every role failing.
fn otlp_endpoint(args: &DeployArgs) -> Result<Option<String>, ConfigError> {
    let endpoint = args.otlp_endpoint.clone().filter(|e| !e.trim().is_empty());
    if let Some(url) = &endpoint {
        jupiter_common::cli::check_url("otlp-endpoint", url)?;
    }
    Ok(endpoint)
}

fn replan(args: &DeployArgs) -> Result<ReplanOptions, ConfigError> {
    let factor = args.replan_factor;
    if !(factor == 0.0 || (factor > 1.0 && factor.is_finite())) {
        return Err(ConfigError::ReplanFactor(factor));
    }
    let gain = args.replan_gain;
    if !(gain > 0.0 && gain < 100.0) {
        return Err(ConfigError::ReplanGain(gain));
    }
    Ok(ReplanOptions {
        factor,
        gain: gain / 100.0,
    })
}

fn probe(args: &DeployArgs) -> Result<ProbeOptions, ConfigError> {
    if !(args.probe_interval > 0.0 && args.probe_interval.is_finite()) {
        return Err(ConfigError::ProbeInterval(args.probe_interval));
    }
    if !(0.0..=60.0).contains(&args.probe_min_secs) {
        return Err(ConfigError::ProbeMinSecs(args.probe_min_secs));
    }
    Ok(ProbeOptions {
        interval: Duration::from_secs_f64(args.probe_interval),
        sizes: args
            .probe_sizes
            .iter()
            .map(|s| drupe_central::parse_size(s))
            .collect::<Result<_, _>>()
            .map_err(ConfigError::ProbeSize)?,
        min_secs: args.probe_min_secs,
        max_bytes: drupe_central::parse_size(&args.probe_max_bytes).map_err(ConfigError::ProbeMaxBytes)?,
    })
}

impl BackendConfig {
    /// Where it deploys, in words.
    pub fn describe(&self) -> String {
        match self {
            BackendConfig::Local(c) => format!("{} local nodes", c.nodes),
            BackendConfig::Docker(c) => format!(
                "{} Docker nodes ({})",
                c.nodes.len(),
                c.nodes
                    .iter()
                    .map(|n| {
                        let mut text = format!("{}: {} CPU, {} MiB", n.name, n.cpus, n.memory_bytes >> 20);
                        if let Some(rate) = n.bandwidth_bits_per_sec {
                            text.push_str(&format!(", {} Mbit/s", rate as f64 / 1e6));
                        }
                        if let Some(delay) = n.delay {
                            text.push_str(&format!(", {delay:?} delay"));
                        }
                        text
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            BackendConfig::Kubernetes(c) => match c.options.nodes.as_slice() {
                [] => "the Kubernetes cluster's nodes".to_string(),
                nodes => format!("Kubernetes nodes {}", nodes.join(", ")),
            },
        }
    }

    /// The backend that deploys an app called `app_name` this way.
    pub async fn backend(self, app_name: &str) -> Result<Box<dyn Backend>, DeployError> {
        Ok(match self {
            BackendConfig::Local(c) => Box::new(Local::new(app_name, c)),
            BackendConfig::Docker(c) => Box::new(Docker::new(app_name, c).await?),
            BackendConfig::Kubernetes(c) => Box::new(Kubernetes::new(*c).await?),
        })
    }
}

/// The deployment a state file describes, found again.
/// Under `--tls`, this process then presents the user's certificate to
/// every server it calls (it is a client of this one deployment).
pub async fn attach(state: &DeploymentState) -> Result<Deployment, DeployError> {
    present_identity(state)?;
    let summary = state.summary().clone();
    let backend: Box<dyn Backend> = match state {
        DeploymentState::Local { pid, .. } => Box::new(Local::attach(*pid, &summary)),
        DeploymentState::Docker { network, setup, .. } => {
            Box::new(Docker::attach(network, &summary, setup.as_ref()).await?)
        }
        DeploymentState::Kubernetes { nodes, .. } => Box::new(Kubernetes::attach(nodes, &summary).await?),
    };
    // Where this process reaches the roles (on Kubernetes, the local
    // ends of its port-forwards).
    let summary = crate::deployment::Summary {
        roles: backend.roles(),
        ..summary
    };
    Ok(Deployment::attach(backend, summary))
}

/// Makes this process present the user's certificate of `state`'s
/// deployment to every server it calls, if the deployment speaks TLS: also
/// for a `--circe-home` given by hand (a port-forward).
pub fn present_identity(state: &DeploymentState) -> Result<(), DeployError> {
    if let Some(files) = &state.summary().tls {
        let identity = files
            .load()
            .map_err(|e| DeployError::backend(crate::tls::TlsError::Load(e)))?;
        jupiter_common::tls::use_everywhere(identity);
    }
    Ok(())
}

/// Nodes `render` maps onto when no `--nodes` is given (no cluster to ask).
pub const RENDER_NODES: [&str; 3] = ["node0", "node1", "node2"];

/// The flags of `render`: an app's Kubernetes manifests, without a cluster.
#[derive(clap::Args, Debug, Clone)]
pub struct RenderArgs {
    /// The app folder (app.yaml or configuration.txt).
    pub app: PathBuf,
    /// Nodes to map onto (comma list); the droplets and wave-workers are
    /// restricted to them. Default: node0,node1,node2, unrestricted.
    #[arg(long, value_delimiter = ',')]
    pub nodes: Vec<String>,
    #[command(flatten)]
    pub mapping: MappingArgs,
    #[command(flatten)]
    pub images: ImageArgs,
    #[command(flatten)]
    pub kube: KubeFlags,
    #[command(flatten)]
    pub runner: RunnerFlags,
    /// Every role sends its spans to this OTLP/gRPC endpoint (set as
    /// OTEL_EXPORTER_OTLP_ENDPOINT in each container).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Mutual TLS from the existing Secret NAME in the namespace: each pod
    /// mounts its own keys of it (ca.pem, ROLE.pem, ROLE-key.pem; README
    /// "mTLS on Kubernetes"). No Secret is rendered.
    #[arg(long, value_name = "NAME")]
    pub tls_secret: Option<String>,
}

impl RenderArgs {
    /// The deployment's objects as multi-document YAML, in apply order.
    pub fn render(&self) -> Result<String, ConfigError> {
        let app = App::load(&self.app)?;
        let request = placement(&app, &self.mapping, "python3", true)?;
        let nodes: Vec<String> = if self.nodes.is_empty() {
            RENDER_NODES.iter().map(|n| n.to_string()).collect()
        } else {
            self.nodes.clone()
        };
        let mapping = crate::deployment::placement::offline(&app, &request, &nodes)?;
        let mut options = self.kube.options(&app, &self.images, self.nodes.clone())?;
        options.mapping = mapping.assignments;
        options.runner = self.runner.clone();
        options.otlp_endpoint = self.otlp_endpoint.clone().filter(|e| !e.trim().is_empty());
        options.tls = self
            .tls_secret
            .clone()
            .map(|secret| crate::kubernetes::KubeTls::Existing { secret });
        let objects = crate::kubernetes::render(&app, &options)?;
        crate::kubernetes::to_yaml(&objects).map_err(ConfigError::Yaml)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An app of two tasks whose app.yaml maps both.
    fn mapped_app(dir: &std::path::Path) -> App {
        let script = dir.join("t.sh");
        std::fs::write(&script, "#!/bin/sh\n").expect("script");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::write(
            dir.join("app.yaml"),
            "tasks:\n  - {name: a, command: ./t.sh, children: [b]}\n  - {name: b, command: ./t.sh}\n\
             mapping: {a: n1, b: n0}\n",
        )
        .expect("app.yaml");
        App::load(dir).expect("app loads")
    }

    fn flags(scheduler: Option<Scheduler>) -> MappingArgs {
        MappingArgs {
            scheduler,
            mapping: None,
            seed: 1,
        }
    }

    /// `up APP_DIR --output DIR/out EXTRA...` as `up` checks it.
    fn deploy_config(dir: &std::path::Path, extra: &[&std::ffi::OsStr]) -> Result<DeployConfig, ConfigError> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: DeployArgs,
        }
        let output = dir.join("out");
        let mut argv: Vec<&std::ffi::OsStr> = vec!["up".as_ref(), dir.as_os_str()];
        argv.extend(["--output".as_ref(), output.as_os_str()]);
        argv.extend(extra);
        let cli = <Cli as clap::Parser>::try_parse_from(argv).expect("flags parse");
        DeployConfig::try_from(&cli.args)
    }

    #[test]
    fn shaped_node_lists_are_for_docker_only() {
        let dir = tempfile::tempdir().expect("tmp");
        mapped_app(dir.path());
        let list = dir.path().join("nodes.yaml");
        std::fs::write(
            &list,
            "nodes:\n  - {name: n0}\n  - {name: n1, bandwidth: 20Mbit, delay: 40ms}\n",
        )
        .expect("node list");
        let config = |backend: &str| {
            deploy_config(
                dir.path(),
                &[
                    "--backend".as_ref(),
                    backend.as_ref(),
                    "--node-list".as_ref(),
                    list.as_os_str(),
                ],
            )
        };
        for backend in ["local", "kubernetes"] {
            let err = config(backend).unwrap_err().to_string();
            assert!(
                err.contains("nodes.yaml")
                    && err.contains("node n1")
                    && err.contains("offered on the Docker backend only")
                    && err.contains(backend),
                "{err}"
            );
        }
        let docker = config("docker").expect("docker takes shaped nodes");
        assert!(docker
            .backend
            .describe()
            .contains("n1: 1 CPU, 512 MiB, 20 Mbit/s, 40ms delay"));
    }

    #[test]
    fn tls_is_the_default_on_kubernetes_only() {
        let dir = tempfile::tempdir().expect("tmp");
        mapped_app(dir.path());
        let tls = |extra: &[&str]| {
            let extra: Vec<&std::ffi::OsStr> = extra.iter().map(|a| a.as_ref()).collect();
            match deploy_config(dir.path(), &extra).expect("valid").backend {
                BackendConfig::Local(l) => l.tls,
                BackendConfig::Docker(d) => d.tls,
                BackendConfig::Kubernetes(k) => k.options.tls.is_some(),
            }
        };
        assert!(!tls(&[]) && tls(&["--tls"]));
        assert!(!tls(&["--backend", "docker"]) && tls(&["--backend", "docker", "--tls"]));
        assert!(tls(&["--backend", "kubernetes"]));
        assert!(!tls(&["--backend", "kubernetes", "--no-tls"]));
        assert!(
            tls(&["--backend", "kubernetes", "--no-tls", "--tls"]),
            "the last one wins"
        );
    }

    #[test]
    fn the_otlp_endpoint_reaches_the_backend_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().expect("tmp");
        mapped_app(dir.path());
        let config = |extra: &[&str]| {
            let extra: Vec<&std::ffi::OsStr> = extra.iter().map(|a| a.as_ref()).collect();
            deploy_config(dir.path(), &extra)
        };
        let endpoint = |c: DeployConfig| match c.backend {
            BackendConfig::Local(l) => l.otlp_endpoint,
            BackendConfig::Docker(d) => d.otlp_endpoint,
            BackendConfig::Kubernetes(k) => k.options.otlp_endpoint,
        };
        let set = config(&["--otlp-endpoint", "http://127.0.0.1:4317"]).expect("valid");
        assert_eq!(endpoint(set).as_deref(), Some("http://127.0.0.1:4317"));
        let docker = config(&["--backend", "docker", "--otlp-endpoint", "http://tempo:4317"]).expect("valid");
        assert_eq!(endpoint(docker).as_deref(), Some("http://tempo:4317"));
        assert_eq!(
            endpoint(config(&["--otlp-endpoint", ""]).expect("empty is none")),
            None
        );
        let err = config(&["--otlp-endpoint", "http://a b"])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--otlp-endpoint \"http://a b\" is not a URL"),
            "{err}"
        );
    }

    #[test]
    fn replan_flags_default_to_twice_and_a_fifth_and_refuse_nonsense_by_name() {
        let dir = tempfile::tempdir().expect("tmp");
        mapped_app(dir.path());
        let config = |extra: &[&str]| {
            let extra: Vec<&std::ffi::OsStr> = extra.iter().map(|a| a.as_ref()).collect();
            deploy_config(dir.path(), &extra)
        };
        let defaults = config(&[]).expect("defaults").placement.replan;
        assert_eq!(
            defaults,
            ReplanOptions {
                factor: 2.0,
                gain: 0.2
            }
        );
        let off = config(&["--replan-factor", "0"]).expect("off").placement.replan;
        assert!(!off.enabled());
        let set = config(&["--replan-factor", "3", "--replan-gain", "35"]).expect("set");
        assert_eq!(
            set.placement.replan,
            ReplanOptions {
                factor: 3.0,
                gain: 0.35
            }
        );
        let err = config(&["--replan-factor", "0.5"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "--replan-factor must be 0 (never map again) or above 1, got 0.5"
        );
        let err = config(&["--replan-gain", "120"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "--replan-gain must be a percentage between 0 and 100, got 120"
        );
    }

    #[test]
    fn the_apps_own_mapping_makes_the_offline_default_static() {
        let dir = tempfile::tempdir().expect("tmp");
        let app = mapped_app(dir.path());
        let request = placement(&app, &flags(None), "python3", true).expect("offline scheduling");
        assert_eq!(request.scheduler, Scheduler::Static);
        let nodes = ["n0".to_string(), "n1".to_string()];
        let placed = crate::deployment::placement::offline(&app, &request, &nodes).expect("mapped");
        // What `up` records as the deployment's scheduler.
        assert_eq!(placed.algorithm, "static");
        assert_eq!(placed.assignments["a"], "n1");
        // Elsewhere the default is HEFT, and offline refuses it by name.
        assert_eq!(
            placement(&app, &flags(None), "python3", false)
                .expect("online")
                .scheduler,
            Scheduler::Heft
        );
        let err = placement(&app, &flags(Some(Scheduler::Cpop)), "python3", true).unwrap_err();
        assert!(err.to_string().contains("--scheduler cpop"), "{err}");
    }
}
