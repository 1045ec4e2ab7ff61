//! drupe-droplet binary: runs on every node.

use anyhow::Context;
use clap::Parser;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "DRUPE droplet: answers probes and reports this node's resources to drupe-central"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "JUPITER_LISTEN", default_value = "0.0.0.0:7101")]
    listen: String,
    /// Name of this node.
    #[arg(long, env = "JUPITER_NODE")]
    node: String,
    /// drupe-central's URL.
    #[arg(
        long,
        env = "JUPITER_DRUPE_CENTRAL",
        default_value = "http://drupe-central:7100"
    )]
    central: String,
    /// URL other droplets reach this one at (default: http://<node>:<port>).
    #[arg(long, env = "JUPITER_ADVERTISE")]
    advertise: Option<String>,
    /// Seconds between resource reports.
    #[arg(long, env = "JUPITER_REPORT_INTERVAL", default_value_t = 5.0)]
    interval: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    jupiter_common::telemetry::init(false);
    let args = Args::parse();
    anyhow::ensure!(
        args.interval > 0.0,
        "--interval must be positive, got {}",
        args.interval
    );
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let port = listener.local_addr()?.port();
    let config = drupe_droplet::DropletConfig {
        advertise: args
            .advertise
            .unwrap_or_else(|| format!("http://{}:{port}", args.node)),
        node: args.node,
        central: args.central,
        report_interval: Duration::from_secs_f64(args.interval),
        data_dir: None,
    };
    tracing::info!(node = %config.node, address = %listener.local_addr()?, "drupe-droplet listening");
    drupe_droplet::serve(config, listener, jupiter_common::telemetry::shutdown_signal()).await?;
    Ok(())
}
