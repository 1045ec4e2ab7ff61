//! Recovering from a lost node, the same way on every backend that can
//! start a worker elsewhere:
//!
//! 1. the tasks mapped to the lost nodes are mapped again, over the
//!    surviving nodes, with the deployment's scheduler (heft and cpop over
//!    the current DRUPE profile, the WAVE schedulers through the survivors'
//!    agents; static and random mappings draw among the survivors);
//! 2. the backend starts their workers there, reachable at the old names
//!    (parents and circe-home keep pushing where they did);
//! 3. circe-home replays every unfinished input as its next pass, from the
//!    copy it keeps of each input until its outputs are delivered; workers
//!    keep each pass apart, circe-home keeps the first copy of each output.
//!
//! Tasks on surviving nodes stay where they are: their queues hold the
//! work in flight.

use super::placement;
use super::{DeployError, Deployment, Scheduler};
use jupiter_common::app::App;
use jupiter_common::proto::circe::home::v1::circe_home_client::CirceHomeClient;
use jupiter_common::proto::circe::home::v1::ReplayRequest;
use jupiter_common::serve;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One recovery, as `run` and `status` report it.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// Why, and what moved where.
    pub reason: String,
    /// task -> (old node, new node).
    pub moved: BTreeMap<String, (String, String)>,
    /// Inputs circe-home fed again.
    pub replayed: Vec<String>,
    /// When the loss was noticed.
    pub noticed: Instant,
    /// From noticing the loss to the inputs being fed again.
    pub took: Duration,
}

pub(super) async fn recover(
    deployment: &mut Deployment,
    lost: &[String],
    report: &str,
) -> Result<(), DeployError> {
    let started = Instant::now();
    let summary = &deployment.summary;
    let app = App::load(&summary.app)?;
    let moving: Vec<String> = summary
        .mapping
        .iter()
        .filter(|(_, node)| lost.contains(node))
        .map(|(task, _)| task.clone())
        .collect();
    if moving.is_empty() {
        eprintln!("{report}; no task ran there, nothing to move");
        return Ok(());
    }
    let survivors: Vec<String> = summary
        .nodes()
        .into_iter()
        .filter(|n| !lost.contains(n))
        .collect();
    if survivors.is_empty() {
        return Err(DeployError::NoSurvivors {
            tasks: moving.join(", "),
        });
    }
    eprintln!(
        "{report}; moving {} to the surviving nodes ({})...",
        moving.join(", "),
        survivors.join(", ")
    );
    let remapped = placement::remap(&app, summary, &survivors, deployment.backend.as_ref()).await?;
    let mut moves = BTreeMap::new();
    let mut moved = BTreeMap::new();
    let mut assignments = summary.mapping.clone();
    for task in &moving {
        let new = remapped.node_of(task)?.to_string();
        let old = assignments.insert(task.clone(), new.clone()).unwrap_or_default();
        moves.insert(task.clone(), new.clone());
        moved.insert(task.clone(), (old, new));
    }
    deployment.backend.move_tasks(&app, &moves).await?;
    deployment.summary.mapping = assignments;
    deployment.summary.roles = deployment.backend.roles();
    let what: Vec<String> = moved
        .iter()
        .map(|(task, (old, new))| format!("{task} {old} -> {new}"))
        .collect();
    let reason = format!("{report}; moved {} ({})", what.join(", "), remapped.algorithm);
    let home = deployment.summary.endpoints().circe_home;
    let replayed = CirceHomeClient::new(serve::channel(&home)?)
        .replay(ReplayRequest {
            reason: reason.clone(),
        })
        .await
        .map_err(DeployError::Replay)?
        .into_inner()
        .inputs;
    let took = started.elapsed();
    eprintln!(
        "recovered in {:.1} s: moved {}; replaying {} unfinished inputs",
        took.as_secs_f64(),
        what.join(", "),
        replayed.len()
    );
    deployment.recoveries.push(Recovered {
        reason,
        moved,
        replayed,
        noticed: started,
        took,
    });
    Ok(())
}

/// The scheduler a deployment was mapped with, from its summary's name.
pub(super) fn scheduler_of(name: &str) -> Scheduler {
    <Scheduler as clap::ValueEnum>::from_str(name, true).unwrap_or(Scheduler::Random)
}
