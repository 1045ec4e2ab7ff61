//! drupe-central binary: serves the network and resource profile.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "DRUPE central: probes every link between droplets, fits transfer-time models, serves the profile"
)]
struct Cli {
    #[command(flatten)]
    args: drupe_central::cli::Args,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    jupiter_common::telemetry::init(false);
    drupe_central::cli::run(Cli::parse().args).await
}
