//! wave-home binary: computes the mapping task -> node.

use anyhow::Context;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "WAVE home: maps an app's tasks to nodes (static or random; nodes come from drupe-central)"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "JUPITER_LISTEN", default_value = "0.0.0.0:7200")]
    listen: String,
    /// URL agents reach this wave-home at (default: the listening address).
    #[arg(long, env = "JUPITER_ADVERTISE")]
    advertise: Option<String>,
    /// drupe-central's URL.
    #[arg(
        long,
        env = "JUPITER_DRUPE_CENTRAL",
        default_value = "http://drupe-central:7100"
    )]
    central: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    jupiter_common::telemetry::init(false);
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, "wave-home listening");
    wave_home::serve(
        &args.central,
        args.advertise,
        listener,
        jupiter_common::telemetry::shutdown_signal(),
    )
    .await?;
    Ok(())
}
