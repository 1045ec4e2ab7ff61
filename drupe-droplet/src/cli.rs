//! Command-line flags of drupe-droplet, shared by its binary and `jupiterctl serve`.

use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "JUPITER_LISTEN", default_value = "0.0.0.0:7101")]
    pub listen: String,
    /// Name of this node.
    #[arg(long, env = "JUPITER_NODE")]
    pub node: String,
    /// drupe-central's URL.
    #[arg(
        long,
        env = "JUPITER_DRUPE_CENTRAL",
        default_value = "http://drupe-central:7100"
    )]
    pub central: String,
    /// URL other droplets reach this one at (default: http://<node>:<port>).
    #[arg(long, env = "JUPITER_ADVERTISE")]
    pub advertise: Option<String>,
    /// Seconds between resource reports.
    #[arg(long, env = "JUPITER_REPORT_INTERVAL", default_value_t = 5.0)]
    pub interval: f64,
    /// Folder whose disk space is reported (the node's queue folder).
    #[arg(long, env = "JUPITER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Runs a droplet until Ctrl-C or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.interval > 0.0 && args.interval.is_finite(),
        "--interval must be a positive number of seconds, got {}",
        args.interval
    );
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let port = listener.local_addr()?.port();
    let config = crate::DropletConfig {
        advertise: args
            .advertise
            .unwrap_or_else(|| format!("http://{}:{port}", args.node)),
        node: args.node,
        central: args.central,
        report_interval: Duration::from_secs_f64(args.interval),
        data_dir: args.data_dir,
    };
    tracing::info!(node = %config.node, address = %listener.local_addr()?, "drupe-droplet listening");
    crate::serve(config, listener, jupiter_common::telemetry::shutdown_signal()).await?;
    Ok(())
}
