//! drupe-droplet binary: runs on every node.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "DRUPE droplet: answers link probes, measures this node's links and reports its resources"
)]
struct Cli {
    #[command(flatten)]
    args: drupe_droplet::cli::Args,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    jupiter_common::telemetry::init(false);
    drupe_droplet::cli::run(Cli::parse().args).await
}
