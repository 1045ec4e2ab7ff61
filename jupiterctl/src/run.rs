//! `jupiterctl run` as a function: deploy locally, stream the inputs,
//! collect every result, tear down.

use crate::local::{DeployError, Deployment, LocalOptions};
use crate::session::{self, SessionError};
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
    pub mapping: std::collections::BTreeMap<String, String>,
    pub algorithm: String,
    pub predicted_makespan_secs: f64,
    pub startup: Duration,
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
    options: LocalOptions,
    timeout: Duration,
    progress: bool,
) -> Result<RunOutcome, RunError> {
    let files = if inputs.is_empty() {
        session::expand_inputs(&app.sample_inputs)?
    } else {
        session::expand_inputs(inputs)?
    };
    let deployment = Deployment::up(app, options).await?;
    let result =
        session::submit_and_collect(&deployment.endpoints.circe_home, &files, timeout, progress).await;
    let mapping = deployment.mapping.clone();
    let algorithm = deployment.algorithm.clone();
    let predicted_makespan_secs = deployment.predicted_makespan_secs;
    let startup = deployment.startup;
    deployment.down().await;
    let (results, wall) = result?;
    Ok(RunOutcome {
        results,
        mapping,
        algorithm,
        predicted_makespan_secs,
        startup,
        wall,
    })
}
