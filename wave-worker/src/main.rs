//! wave-worker binary: the scheduler's agent on a node.

use anyhow::Context;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(version, about = "WAVE worker: the scheduler's agent on one node")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "JUPITER_LISTEN", default_value = "0.0.0.0:7201")]
    listen: String,
    /// Name of this node.
    #[arg(long, env = "JUPITER_NODE")]
    node: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    jupiter_common::telemetry::init(false);
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(node = %args.node, address = %listener.local_addr()?, "wave-worker listening");
    wave_worker::serve(&args.node, listener, jupiter_common::telemetry::shutdown_signal()).await?;
    Ok(())
}
