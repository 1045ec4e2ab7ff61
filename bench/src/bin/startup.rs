//! Time from `jupiterctl up` to every role healthy, on the local backend and
//! on the Docker backend (images built beforehand: docker/build-images.sh).
//!
//! Each repetition deploys the app from scratch through the same library
//! call `jupiterctl up` makes, stops the clock when the call returns (every
//! role has answered its gRPC health check, DRUPE knows every node and the
//! mapping is in place), then tears the deployment down untimed.

use anyhow::{Context, Result};
use clap::Parser;
use jupiter_common::app::App;
use jupiterctl::deployment::{Backend, Deployment, PlacementRequest, Scheduler};
use jupiterctl::docker::{Docker, DockerConfig, Images};
use jupiterctl::local::{Local, LocalConfig};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Time from `jupiterctl up` to every role healthy, local and Docker backends")]
struct Args {
    /// The app deployed.
    #[arg(long, default_value = "examples/dummy_app")]
    app: PathBuf,
    /// Emulated nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Repetitions per backend and scheduler.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Backends to measure.
    #[arg(long, value_delimiter = ',', default_value = "local,docker")]
    backends: Vec<String>,
    /// Tag of the role images for the Docker backend.
    #[arg(long, default_value = "dev")]
    image_tag: String,
}

/// The backend `backend` names, its work and output folders under `root`.
async fn backend(backend: &str, app: &App, args: &Args, root: &std::path::Path) -> Result<Box<dyn Backend>> {
    Ok(match backend {
        "local" => Box::new(Local::new(
            &app.name,
            LocalConfig {
                otlp_endpoint: None,
                nodes: args.nodes,
                workdir: root.join("work"),
                output: root.join("output"),
                python: "python3".into(),
                runner: Default::default(),
                probe: Default::default(),
                processes: None,
                tls: false,
            },
        )),
        "docker" => Box::new(
            Docker::new(
                &app.name,
                DockerConfig {
                    otlp_endpoint: None,
                    nodes: jupiterctl::node_list::uniform(args.nodes)?,
                    images: Images {
                        prefix: "jupiter".into(),
                        tag: args.image_tag.clone(),
                    },
                    output: root.join("output").canonicalize()?,
                    probe: Default::default(),
                    runner: Default::default(),
                    tls: false,
                },
            )
            .await?,
        ),
        other => anyhow::bail!("unknown backend {other:?}: local or docker"),
    })
}

async fn once(name: &str, app: &App, args: &Args, scheduler: Scheduler) -> Result<Duration> {
    let root = tempfile::tempdir()?;
    std::fs::create_dir_all(root.path().join("output"))?;
    let request = PlacementRequest {
        scheduler,
        static_mapping: Default::default(),
        seed: 1,
        python: "python3".into(),
        profile: Default::default(),
        replan: Default::default(),
    };
    let started = Instant::now();
    let deployment = Deployment::up(backend(name, app, args, root.path()).await?, app, &request).await?;
    let took = started.elapsed();
    deployment.down().await?;
    Ok(took)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let app = App::load(&args.app).with_context(|| format!("app {}", args.app.display()))?;
    println!(
        "{:<8} {:<10} {:>5} {:>10} {:>10} {:>10} {:>10}",
        "BACKEND", "SCHEDULER", "NODES", "FIRST", "MEDIAN", "MIN", "MAX"
    );
    for backend in &args.backends {
        for scheduler in [Scheduler::Random, Scheduler::Heft] {
            let mut times = Vec::new();
            for _ in 0..args.reps {
                times.push(once(backend, &app, &args, scheduler).await?);
            }
            // The first repetition of a process is what one `jupiterctl up`
            // pays (finding Python behind its shim is remembered after it).
            let first = times[0];
            times.sort();
            println!(
                "{:<8} {:<10} {:>5} {:>8.0}ms {:>8.0}ms {:>8.0}ms {:>8.0}ms",
                backend,
                scheduler.name(),
                args.nodes,
                first.as_secs_f64() * 1000.0,
                times[times.len() / 2].as_secs_f64() * 1000.0,
                times[0].as_secs_f64() * 1000.0,
                times[times.len() - 1].as_secs_f64() * 1000.0
            );
        }
    }
    Ok(())
}
