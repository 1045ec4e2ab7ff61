//! drupe-central binary: serves the network and resource profile.

use anyhow::Context;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "DRUPE central: collects node profiles from every drupe-droplet and serves them over gRPC"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "JUPITER_LISTEN", default_value = "0.0.0.0:7100")]
    listen: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    jupiter_common::telemetry::init(false);
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, "drupe-central listening");
    drupe_central::serve(listener, jupiter_common::telemetry::shutdown_signal()).await?;
    Ok(())
}
