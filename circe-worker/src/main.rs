//! circe-worker binary: one per task, on the task's node.

use anyhow::Context;
use circe_worker::{ChildEndpoint, WorkerConfig};
use clap::Parser;
use jupiter_common::app::App;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "CIRCE worker: runs one task of an app on this node, with a durable input queue"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "JUPITER_LISTEN", default_value = "0.0.0.0:7301")]
    listen: String,
    /// The app folder.
    #[arg(long, env = "JUPITER_APP")]
    app: PathBuf,
    /// The task this worker runs.
    #[arg(long, env = "JUPITER_TASK")]
    task: String,
    /// Name of this node.
    #[arg(long, env = "JUPITER_NODE")]
    node: String,
    /// Durable queue folder (keep it across restarts).
    #[arg(long, env = "JUPITER_QUEUE_DIR", default_value = "/var/lib/jupiter/queue")]
    queue_dir: PathBuf,
    /// circe-home's URL.
    #[arg(long, env = "JUPITER_CIRCE_HOME", default_value = "http://circe-home:7300")]
    home: String,
    /// URL of each child's worker, as TASK=URL (repeat or comma-separate).
    #[arg(long = "child", env = "JUPITER_CHILDREN", value_delimiter = ',', value_parser = jupiter_common::cli::parse_task_url)]
    children: Vec<(String, String)>,
    /// Python for original Jupiter tasks.
    #[arg(long, env = "JUPITER_PYTHON", default_value = "python3")]
    python: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    jupiter_common::telemetry::init(false);
    let args = Args::parse();
    let app = App::load(&args.app)?;
    let task = app
        .task(&args.task)
        .with_context(|| format!("task {:?} is not in the app at {}", args.task, args.app.display()))?
        .clone();
    let mut children = Vec::new();
    for child in &task.children {
        let address =
            jupiter_common::cli::url_for(&args.children, child, "child").map_err(anyhow::Error::msg)?;
        children.push(ChildEndpoint {
            task: child.clone(),
            address,
        });
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(task = %task.name, node = %args.node, address = %listener.local_addr()?, "circe-worker listening");
    let config = WorkerConfig {
        task,
        app_dir: app.dir.clone(),
        node: args.node,
        queue_dir: args.queue_dir,
        children,
        home: args.home,
        python: args.python,
    };
    let handle = circe_worker::start(config, listener, jupiter_common::telemetry::shutdown_signal())?;
    handle.join().await?;
    Ok(())
}
