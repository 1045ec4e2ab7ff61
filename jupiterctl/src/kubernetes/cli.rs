//! The command-line surface of the Kubernetes backend, for the binary to
//! wire in: `render`, `up` and `down`. anyhow here, as in the binary; the
//! library underneath has typed errors.

use super::{cluster, mapping, names, KubeOptions, Resources, Wait};
use crate::local::Scheduler;
use crate::mapping_file;
use anyhow::Context;
use jupiter_common::app::App;
use std::path::PathBuf;
use std::time::Duration;

/// Nodes `render` maps onto when no `--nodes` is given (no cluster to ask).
pub const RENDER_NODES: [&str; 3] = ["node0", "node1", "node2"];

#[derive(clap::Args, Debug, Clone)]
pub struct KubeArgs {
    /// The app folder (app.yaml or configuration.txt).
    pub app: PathBuf,
    /// Nodes to use (comma list); droplets and wave-workers run only there.
    /// Default: for render node0,node1,node2; for up every Ready,
    /// schedulable node of the cluster.
    #[arg(long, value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// Static mapping file (YAML `task: node` lines); implies --scheduler static.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// static or random (default: static with a mapping, else random).
    /// heft/cpop/wave-* need drupe-central in the cluster: not yet.
    #[arg(long, value_enum)]
    pub scheduler: Option<Scheduler>,
    /// Seed of the random mapping. Fixed by default so that `up` again maps
    /// the same way; 0 draws a fresh one.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Images are PREFIX/<role>:TAG.
    #[arg(long, default_value = "dev")]
    pub image_tag: String,
    #[arg(long, default_value = "jupiter")]
    pub image_prefix: String,
    /// Always, IfNotPresent or Never.
    #[arg(long, default_value = "IfNotPresent")]
    pub image_pull_policy: String,
    /// Deployment name (namespace jupiter-NAME); default: from the app's name.
    #[arg(long)]
    pub deployment: Option<String>,
    /// OTLP endpoint every role sends traces to, as the pods reach it. Not
    /// taken from this shell's OTEL_EXPORTER_OTLP_ENDPOINT: that one is
    /// usually a localhost address, meaningless inside the cluster.
    #[arg(long)]
    pub otlp_endpoint: Option<String>,
    /// RUST_LOG of every role.
    #[arg(long, default_value = "info")]
    pub rust_log: String,
    /// CPU request of every container (Kubernetes quantity, e.g. 100m).
    #[arg(long, default_value = "50m")]
    pub cpu_request: String,
    #[arg(long, default_value = "64Mi")]
    pub memory_request: String,
    /// Limits: none by default.
    #[arg(long)]
    pub cpu_limit: Option<String>,
    #[arg(long)]
    pub memory_limit: Option<String>,
    /// up: how long to wait for every pod to be ready, in seconds (0: do not wait).
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

impl KubeArgs {
    /// Every flag at its default, for `app`: the defaults are declared
    /// once, on the flags above, and this reads them from there.
    pub fn defaults(app: &std::path::Path) -> Result<Self, clap::Error> {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            args: KubeArgs,
        }
        // `--` so that an app path starting with '-' is not read as a flag.
        let argv = [
            std::ffi::OsStr::new("jupiterctl"),
            std::ffi::OsStr::new("--"),
            app.as_os_str(),
        ];
        <Only as clap::Parser>::try_parse_from(argv).map(|only| only.args)
    }
}

/// The app, options and mapping over `nodes`, as render and up both need.
fn prepare(args: &KubeArgs, nodes: Vec<String>) -> anyhow::Result<(App, KubeOptions)> {
    let app = App::load(&args.app)?;
    let (scheduler, static_mapping) = mapping_file::resolve(
        &app.static_mapping,
        args.mapping.as_deref(),
        args.scheduler,
        mapping::default_scheduler,
    )?;
    let mapping = mapping::compute(&app, scheduler, &static_mapping, args.seed, &nodes)?;
    let mut options = KubeOptions::for_app(&app);
    if let Some(name) = &args.deployment {
        names::check_deployment(name)?;
        options.deployment = name.clone();
    }
    options.image_prefix = args.image_prefix.clone();
    options.image_tag = args.image_tag.clone();
    options.image_pull_policy = args.image_pull_policy.clone();
    // Restrict the per-node roles only to nodes the user named.
    options.nodes = args.nodes.clone();
    options.mapping = mapping;
    options.otlp_endpoint = args.otlp_endpoint.clone().filter(|e| !e.is_empty());
    options.rust_log = args.rust_log.clone();
    options.resources = resources(args);
    Ok((app, options))
}

fn resources(args: &KubeArgs) -> Resources {
    let pairs = |cpu: Option<&String>, memory: Option<&String>| {
        [("cpu", cpu), ("memory", memory)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.clone())))
            .collect()
    };
    Resources {
        requests: pairs(Some(&args.cpu_request), Some(&args.memory_request)),
        limits: pairs(args.cpu_limit.as_ref(), args.memory_limit.as_ref()),
    }
}

/// `jupiterctl render APP --backend kubernetes`: the deployment as
/// multi-document YAML, without a cluster.
pub fn render_cmd(args: &KubeArgs) -> anyhow::Result<String> {
    let nodes = if args.nodes.is_empty() {
        RENDER_NODES.iter().map(|n| n.to_string()).collect()
    } else {
        args.nodes.clone()
    };
    let (app, options) = prepare(args, nodes)?;
    let objects = super::render(&app, &options)?;
    super::to_yaml(&objects).context("writing the objects as YAML")
}

/// `jupiterctl up APP --backend kubernetes`: maps over the cluster's nodes,
/// applies, waits until every pod is ready.
pub async fn up_cmd(args: &KubeArgs) -> anyhow::Result<()> {
    let options = up_with(client().await?, args).await?;
    println!(
        "deployment {} is up in namespace {}",
        options.deployment,
        names::namespace(&options.deployment)
    );
    Ok(())
}

/// `up` with a given client (tests pass one that answers in-process);
/// returns the options it rendered with, mapping included.
pub async fn up_with(client: kube::Client, args: &KubeArgs) -> anyhow::Result<KubeOptions> {
    let available = cluster::nodes(&client).await?;
    let nodes = cluster::restrict(&available, &args.nodes)?;
    let (app, options) = prepare(args, nodes)?;
    let objects = super::render(&app, &options)?;
    eprintln!(
        "applying {} objects in namespace {}",
        objects.len(),
        names::namespace(&options.deployment)
    );
    for (task, node) in &options.mapping {
        eprintln!("  {task} -> {node}");
    }
    let wait = (args.timeout > 0).then(|| Wait {
        timeout: Duration::from_secs(args.timeout),
        ..Wait::default()
    });
    super::up(&client, &objects, wait.as_ref()).await?;
    Ok(options)
}

/// `jupiterctl down NAME --backend kubernetes`.
pub async fn down_cmd(deployment: &str) -> anyhow::Result<()> {
    super::down(&client().await?, deployment).await?;
    println!(
        "deployment {deployment} deleted (namespace {})",
        names::namespace(deployment)
    );
    Ok(())
}

/// The client of the current kubeconfig context (KUBECONFIG or
/// ~/.kube/config), or the in-cluster service account.
async fn client() -> anyhow::Result<kube::Client> {
    kube::Client::try_default()
        .await
        .context("no Kubernetes cluster configured (KUBECONFIG, ~/.kube/config or in-cluster)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_flags_defaults_even_for_a_dash_path() {
        let args = KubeArgs::defaults(std::path::Path::new("-app")).expect("defaults parse");
        assert_eq!(args.app, PathBuf::from("-app"));
        assert_eq!(args.image_pull_policy, "IfNotPresent");
        assert_eq!((args.seed, args.timeout), (1, 300));
        assert!(args.nodes.is_empty() && args.mapping.is_none() && args.cpu_limit.is_none());
    }
}
