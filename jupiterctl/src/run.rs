//! `jupiterctl run` as a function, on any backend: deploy, stream the
//! inputs, collect every result, tear down (also when the run fails).

use crate::deployment::{Backend, DeployError, Deployment, PlacementRequest, Summary};
use crate::session::{self, Pace, SessionError};
use jupiter_common::app::App;
use jupiter_common::proto::circe::home::v1::InputResult;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("deploying: {0}")]
    Deploy(#[from] DeployError),
    #[error(transparent)]
    Session(#[from] SessionError),
}

#[derive(Debug)]
pub struct RunOutcome {
    pub results: Vec<InputResult>,
    /// The deployment the inputs ran on.
    pub summary: Summary,
    /// From the first submission to the last result.
    pub wall: Duration,
    /// How the inputs were sent.
    pub pace: Pace,
}

impl RunOutcome {
    pub fn all_ok(&self) -> bool {
        self.results.iter().all(|r| r.ok)
    }

    /// Whether every input ran with no other in flight.
    pub fn alone(&self) -> bool {
        self.pace.alone(self.results.len())
    }
}

/// Deploys `app` on `backend`, streams `inputs` (files or folders; the
/// app's sample inputs when empty) through it at `pace` and takes it down
/// again.
pub async fn run(
    backend: Box<dyn Backend>,
    app: &App,
    request: &PlacementRequest,
    inputs: &[PathBuf],
    pace: Pace,
    timeout: Duration,
    progress: bool,
) -> Result<RunOutcome, RunError> {
    let files = if inputs.is_empty() {
        session::expand_inputs(&app.sample_inputs)?
    } else {
        session::expand_inputs(inputs)?
    };
    let mut deployment = Deployment::up(backend, app, request).await?;
    let home = deployment.summary.endpoints().circe_home;
    let result = session::submit_paced(&home, &files, pace, timeout, progress, deployment.stopped()).await;
    let summary = deployment.summary.clone();
    if let Err(e) = deployment.down().await {
        eprintln!("warning: taking deployment {} down: {e}", summary.deployment);
    }
    let (results, wall) = result?;
    Ok(RunOutcome {
        results,
        summary,
        wall,
        pace,
    })
}
