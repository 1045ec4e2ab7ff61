//! `jupiterctl up`: deploy and record the deployment in the state file, so
//! that `submit`, `status` and `down` find it. A deployment whose roles
//! live in this process keeps it in the foreground until Ctrl-C or `down`.

use jupiterctl::config::{self, DeployArgs, DeployConfig};
use jupiterctl::deployment::{Backend, Deployment, Summary};
use jupiterctl::state::{self, StateError};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub deploy: DeployArgs,
}

pub async fn execute(args: Args) -> anyhow::Result<ExitCode> {
    let path = state::default_path()?;
    if let Ok(existing) = state::read(&path) {
        // A state file whose deployment is gone is stale, not in the way.
        if let Ok(found) = config::attach(&existing).await {
            if found.backend().exists().await {
                return Err(StateError::AlreadyUp {
                    owner: found.backend().describe(),
                    path,
                }
                .into());
            }
        }
    }
    let config = DeployConfig::try_from(&args.deploy)?;
    let app = &config.app;
    eprintln!("deploying {} on {}...", app.name, config.backend.describe());
    let backend = config.backend.clone().backend(&app.name).await?;
    let deployment = Deployment::up(backend, app, &config.placement).await?;
    let s = &deployment.summary;
    state::write(&path, &deployment.state())?;
    eprintln!(
        "{} is up on {} nodes in {:.0} ms as {}; circe-home at {}",
        app.name,
        s.nodes().len(),
        s.startup.as_secs_f64() * 1000.0,
        deployment.backend().describe(),
        s.endpoints().circe_home
    );
    if !deployment.backend().in_process() {
        eprintln!("submit inputs with `jupiterctl submit FILE...`; remove it with `jupiterctl down`");
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("submit inputs with `jupiterctl submit FILE...`; stop with Ctrl-C or `jupiterctl down`");
    let mut deployment = deployment;
    keep_state_current(&mut deployment, &path).await;
    eprintln!("stopping...");
    let result = deployment.down().await;
    state::remove(&path);
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Until SIGTERM or Ctrl-C: watches the deployment (a lost node is
/// recovered from here, where its roles run) and rewrites the state file
/// whenever a role or the mapping changes (a supervised process restarted
/// with a new pid, a task moved), so that `status` and `submit` in another
/// shell see the deployment as it runs now.
async fn keep_state_current(deployment: &mut Deployment, path: &std::path::Path) {
    let mut written = deployment.state();
    let sync = |summary: &Summary, backend: &dyn Backend| {
        let now = backend.state(Summary {
            roles: backend.roles(),
            ..summary.clone()
        });
        if now.summary().roles != written.summary().roles
            || now.summary().mapping != written.summary().mapping
        {
            if let Err(e) = state::write(path, &now) {
                tracing::warn!(error = %e, "updating the state file");
            }
            written = now;
        }
    };
    let stop = jupiter_common::telemetry::shutdown_signal();
    tokio::select! {
        () = stop => {}
        reason = deployment.stopped_with(sync) => {
            // What is left keeps serving as it can, until Ctrl-C or `down`.
            eprintln!("{reason}");
            jupiter_common::telemetry::shutdown_signal().await;
        }
    }
    deployment.summary.roles = deployment.backend().roles();
}
