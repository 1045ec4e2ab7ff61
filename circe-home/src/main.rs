//! circe-home binary: feeds inputs, collects outputs and timings.

use anyhow::Context;
use clap::Parser;
use jupiter_common::app::App;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "CIRCE home: feeds inputs to an app's ingress tasks and collects the egress outputs"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "JUPITER_LISTEN", default_value = "0.0.0.0:7300")]
    listen: String,
    /// The app folder (app.yaml or an original Jupiter configuration.txt).
    #[arg(long, env = "JUPITER_APP")]
    app: PathBuf,
    /// URL of each ingress task's worker, as TASK=URL (repeat).
    #[arg(long = "ingress", env = "JUPITER_INGRESS", value_delimiter = ',', value_parser = jupiter_common::cli::parse_task_url)]
    ingress: Vec<(String, String)>,
    /// Where submitted inputs are kept.
    #[arg(long, env = "JUPITER_DATA_DIR", default_value = "/var/lib/jupiter/home")]
    data_dir: PathBuf,
    /// Where outputs are written (<output>/<input>/<file>).
    #[arg(long, env = "JUPITER_OUTPUT_DIR", default_value = "/var/lib/jupiter/output")]
    output: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    jupiter_common::telemetry::init(false);
    let args = Args::parse();
    let app = App::load(&args.app)?;
    let mut ingress = Vec::new();
    for task in app.ingress() {
        let address =
            jupiter_common::cli::url_for(&args.ingress, &task.name, "ingress").map_err(anyhow::Error::msg)?;
        ingress.push(circe_home::Ingress {
            task: task.name.clone(),
            address,
        });
    }
    let config = circe_home::HomeConfig {
        data_dir: args.data_dir,
        output_dir: args.output,
        ingress,
        egress: app.egress().iter().map(|t| t.name.clone()).collect(),
        tasks: app.tasks.iter().map(|t| t.name.clone()).collect(),
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, "circe-home listening");
    circe_home::serve(config, listener, jupiter_common::telemetry::shutdown_signal()).await?;
    Ok(())
}
