//! `jupiterctl run` as a function: deploy on a backend, stream the inputs,
//! collect every result, tear down (also when the run fails).

use crate::docker::{DockerDeployment, DockerError, DockerOptions};
use crate::local::{DeployError, Deployment, LocalOptions, Summary};
use crate::session::{self, SessionError};
use jupiter_common::app::App;
use jupiter_common::proto::circe::home::v1::InputResult;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("deploying: {0}")]
    Deploy(#[from] DeployError),
    #[error("deploying on Docker: {0}")]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// Where a run deploys.
#[derive(Debug, Clone)]
pub enum Target {
    Local(LocalOptions),
    Docker(DockerOptions),
}

#[derive(Debug)]
pub struct RunOutcome {
    pub results: Vec<InputResult>,
    /// The deployment the inputs ran on.
    pub summary: Summary,
    /// From the first submission to the last result.
    pub wall: Duration,
}

impl RunOutcome {
    pub fn all_ok(&self) -> bool {
        self.results.iter().all(|r| r.ok)
    }
}

pub async fn run(
    app: App,
    inputs: &[PathBuf],
    target: Target,
    timeout: Duration,
    progress: bool,
) -> Result<RunOutcome, RunError> {
    let files = if inputs.is_empty() {
        session::expand_inputs(&app.sample_inputs)?
    } else {
        session::expand_inputs(inputs)?
    };
    let (summary, result) = match target {
        Target::Local(options) => {
            let deployment = Deployment::up(app, options).await?;
            let result = stream(
                &deployment.summary,
                &files,
                timeout,
                progress,
                std::future::pending(),
            )
            .await;
            let summary = deployment.summary.clone();
            deployment.down().await;
            (summary, result)
        }
        Target::Docker(options) => {
            let deployment = DockerDeployment::up(app, options).await?;
            let result = stream(
                &deployment.summary,
                &files,
                timeout,
                progress,
                deployment.first_stopped(),
            )
            .await;
            let summary = deployment.summary.clone();
            let id = deployment.id.clone();
            if let Err(e) = deployment.down().await {
                eprintln!("warning: removing Docker deployment {id}: {e}");
            }
            (summary, result)
        }
    };
    let (results, wall) = result?;
    Ok(RunOutcome {
        results,
        summary,
        wall,
    })
}

async fn stream(
    summary: &Summary,
    files: &[PathBuf],
    timeout: Duration,
    progress: bool,
    broken: impl std::future::Future<Output = String>,
) -> Result<(Vec<InputResult>, Duration), SessionError> {
    session::submit_and_collect(&summary.endpoints.circe_home, files, timeout, progress, broken).await
}
