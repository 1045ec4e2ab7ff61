//! Mapping again when the profile drifts, while inputs run:
//!
//! 1. [`Readings`] follows each node's speed and each link's bandwidth in
//!    DRUPE's profile; a change by more than `--replan-factor`, either way,
//!    seen in two readings in a row, is a drift (one reading could be a
//!    blip: a probe that met the pipeline's own traffic);
//! 2. wave-home maps the app again over the current profile with the
//!    deployment's scheduler (heft or cpop), and predicts the makespan of
//!    the mapping in use over the same profile;
//! 3. if the new mapping is predicted faster by more than `--replan-gain`,
//!    it becomes the next placement: the backend starts the moved tasks'
//!    workers beside the old ones, the parents that stay learn where
//!    inputs of the new placement go (`SetRoutes`), and circe-home gives
//!    the new placement to every input submitted from then on
//!    (`SetPlacement`). Inputs in flight finish on the placement they
//!    started with; the old workers are removed once none is left.
//!
//! The baseline is the profile the current mapping was made over (at the
//! latest, the first reading this watch saw); it moves to the current
//! readings after every drift, taken or not, so one change is weighed once.

use super::{placement, Backend, DeployError, Deployment, Summary};
use jupiter_common::app::App;
use jupiter_common::proto::circe::home::v1::circe_home_client::CirceHomeClient;
use jupiter_common::proto::circe::home::v1::{HomeStatusRequest, SetPlacementRequest};
use jupiter_common::proto::circe::worker::v1::circe_worker_client::CirceWorkerClient;
use jupiter_common::proto::circe::worker::v1::Routes;
use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
use jupiter_common::proto::drupe::central::v1::{NetworkProfile, ResourceProfile};
use jupiter_common::proto::wave::home::v1::wave_home_client::WaveHomeClient;
use jupiter_common::proto::wave::home::v1::ScheduleRequest;
use jupiter_common::role::Role;
use jupiter_common::serve;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How often the profile and circe-home are looked at.
const POLL: Duration = Duration::from_secs(2);

/// One thing DRUPE measures, by name: `node N speed`, `link A -> B bandwidth`.
type Metric = String;

/// A drift: a metric's baseline and its latest reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub metric: Metric,
    pub before: f64,
    pub after: f64,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (before, after, unit) = if self.metric.ends_with("bandwidth") {
            (self.before * 8e-6, self.after * 8e-6, " Mbit/s")
        } else {
            (self.before, self.after, "")
        };
        write!(f, "{} {before:.3}{unit} -> {after:.3}{unit}", self.metric)
    }
}

/// Every metric's baseline and its last two readings.
#[derive(Debug, Default)]
pub struct Readings {
    baseline: BTreeMap<Metric, f64>,
    /// (when measured, value), newest last; at most two.
    recent: BTreeMap<Metric, Vec<(i64, f64)>>,
}

impl Readings {
    /// Takes in a reading of `metric` measured at `at` (a reading seen
    /// before is ignored); the first of a metric is its baseline.
    pub fn observe(&mut self, metric: &str, at: i64, value: f64) {
        if !(value.is_finite() && value > 0.0) {
            return;
        }
        self.baseline.entry(metric.to_string()).or_insert(value);
        let recent = self.recent.entry(metric.to_string()).or_default();
        if recent.last().is_some_and(|(last, _)| *last >= at) {
            return;
        }
        recent.push((at, value));
        if recent.len() > 2 {
            recent.remove(0);
        }
    }

    /// The metrics whose last two readings both differ from the baseline
    /// by more than `factor`, the same way.
    pub fn drifted(&self, factor: f64) -> Vec<Change> {
        let mut changes = Vec::new();
        for (metric, recent) in &self.recent {
            let (Some(&before), [(_, a), (_, b)]) = (self.baseline.get(metric), recent.as_slice()) else {
                continue;
            };
            let (ra, rb) = (a / before, b / before);
            if (ra > factor && rb > factor) || (ra * factor < 1.0 && rb * factor < 1.0) {
                changes.push(Change {
                    metric: metric.clone(),
                    before,
                    after: *b,
                });
            }
        }
        changes
    }

    /// The latest readings become the baseline.
    pub fn rebase(&mut self) {
        for (metric, recent) in &self.recent {
            if let Some((_, value)) = recent.last() {
                self.baseline.insert(metric.clone(), *value);
            }
        }
    }

    /// Reads the reachable nodes' speeds and links' bandwidths of a profile.
    fn observe_profile(&mut self, network: &NetworkProfile, resources: &ResourceProfile) {
        for node in resources.nodes.iter().filter(|n| n.reachable) {
            self.observe(
                &format!("node {} speed", node.node),
                node.speed_measured_at_unix_millis,
                node.speed,
            );
        }
        for link in network.links.iter().filter(|l| l.reachable) {
            self.observe(
                &format!("link {} -> {} bandwidth", link.from, link.to),
                link.measured_at_unix_millis,
                link.bandwidth_bytes_per_sec,
            );
        }
    }
}

/// A new mapping worth taking.
#[derive(Debug, Clone)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub mapping: BTreeMap<String, String>,
    /// Predicted makespans of one input over the drifted profile.
    pub current_secs: f64,
    pub new_secs: f64,
    pub noticed: Instant,
}

impl Plan {
    /// The predicted gain, as a fraction of the current makespan.
    pub fn gain(&self) -> f64 {
        1.0 - self.new_secs / self.current_secs
    }
}

/// One re-mapping, as `run` and `status` report it.
#[derive(Debug, Clone)]
pub struct Replanned {
    pub placement: u32,
    pub reason: String,
    /// task -> (old node, new node).
    pub moved: BTreeMap<String, (String, String)>,
    pub noticed: Instant,
    /// From noticing the drift to new inputs taking the new placement.
    pub took: Duration,
}

/// What the watch found.
pub(super) enum Event {
    /// The profile drifted and a new mapping is worth taking.
    Move(Plan),
    /// No input of a placement before this one is left: the workers it
    /// superseded can go.
    Drained(u32),
}

/// Watches a deployment's profile for drift and its superseded workers
/// for the end of their inputs.
#[derive(Default)]
pub(super) struct Watch {
    readings: Readings,
    /// Placements whose superseded workers still run.
    pub(super) draining: BTreeSet<u32>,
}

impl Watch {
    /// Whether drift is watched for on this deployment at all.
    fn watches_drift(summary: &Summary, backend: &dyn Backend) -> bool {
        summary.replan.enabled()
            && matches!(summary.scheduler.as_str(), "heft" | "cpop")
            && backend.adds_placements()
    }

    /// Resolves with the next thing to act on; never, where there is
    /// nothing to watch. Cancel-safe: the readings live in `self`.
    pub(super) async fn next(&mut self, summary: &Summary, backend: &dyn Backend) -> Event {
        let drift = Self::watches_drift(summary, backend);
        if !drift && self.draining.is_empty() {
            return std::future::pending().await;
        }
        let endpoints = summary.endpoints();
        loop {
            tokio::time::sleep(POLL).await;
            if let Some(&placement) = self.draining.first() {
                if drained(&endpoints.circe_home, placement).await {
                    self.draining.remove(&placement);
                    return Event::Drained(placement);
                }
            }
            if !drift {
                continue;
            }
            let Ok(profile) = profile(&endpoints.drupe_central).await else {
                continue;
            };
            self.readings.observe_profile(&profile.0, &profile.1);
            let changes = self.readings.drifted(summary.replan.factor);
            if changes.is_empty() {
                continue;
            }
            self.readings.rebase();
            match evaluate(summary, backend, changes).await {
                Ok(Some(plan)) => return Event::Move(plan),
                Ok(None) => {}
                Err(e) => {
                    eprintln!("the profile drifted, but mapping again failed: {e}; keeping the mapping")
                }
            }
        }
    }
}

/// drupe-central's current profile (what wave-home maps over).
async fn profile(central: &str) -> Result<(NetworkProfile, ResourceProfile), tonic::Status> {
    let channel = serve::channel(central).map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    wave_home::network::drupe_profile(&mut DrupeCentralClient::new(channel)).await
}

/// Whether circe-home has no unfinished input of a placement before `placement`.
async fn drained(home: &str, placement: u32) -> bool {
    let Ok(channel) = serve::channel(home) else {
        return false;
    };
    let Ok(status) = CirceHomeClient::new(channel).status(HomeStatusRequest {}).await else {
        return false;
    };
    let status = status.into_inner();
    let later: u64 = status
        .placements
        .iter()
        .filter(|p| p.placement >= placement)
        .map(|p| p.unfinished)
        .sum();
    status.in_flight <= later
}

/// Maps the app again over the drifted profile; the plan if it is worth
/// taking, else says why not.
async fn evaluate(
    summary: &Summary,
    backend: &dyn Backend,
    changes: Vec<Change>,
) -> Result<Option<Plan>, DeployError> {
    let noticed = Instant::now();
    let what: Vec<String> = changes.iter().map(Change::to_string).collect();
    eprintln!(
        "the profile drifted ({}); mapping again with {}...",
        what.join(", "),
        summary.scheduler
    );
    let app = App::load(&summary.app)?;
    let request = ScheduleRequest {
        algorithm: summary.scheduler.clone(),
        tasks: placement::tasks_again(&app, summary, backend).await,
        current: summary.mapping.clone().into_iter().collect(),
        ..Default::default()
    };
    let mapping = WaveHomeClient::new(serve::channel(&summary.endpoints().wave_home)?)
        .schedule(request)
        .await
        .map_err(DeployError::Schedule)?
        .into_inner();
    let plan = Plan {
        changes,
        mapping: mapping.assignments.into_iter().collect(),
        current_secs: mapping.current_makespan_secs,
        new_secs: mapping.predicted_makespan_secs,
        noticed,
    };
    let worth =
        plan.mapping != summary.mapping && plan.current_secs > 0.0 && plan.gain() > summary.replan.gain;
    if !worth {
        tracing::info!(
            current_ms = plan.current_secs * 1000.0,
            new_ms = plan.new_secs * 1000.0,
            "the profile drifted; keeping the mapping"
        );
        eprintln!(
            "keeping the mapping: the new one is predicted at {:.0} ms against {:.0} ms now ({:+.0}%, {} needed)",
            plan.new_secs * 1000.0,
            plan.current_secs * 1000.0,
            -plan.gain() * 100.0,
            format_args!("-{:.0}%", summary.replan.gain * 100.0),
        );
        return Ok(None);
    }
    Ok(Some(plan))
}

/// Takes `plan` as the deployment's next placement (see the module comment).
pub(super) async fn apply(deployment: &mut Deployment, plan: Plan) -> Result<Replanned, DeployError> {
    let summary = &deployment.summary;
    let app = App::load(&summary.app)?;
    let placement = summary.placement + 1;
    let moved: BTreeMap<String, (String, String)> = plan
        .mapping
        .iter()
        .filter_map(|(task, new)| {
            let old = summary.mapping.get(task)?;
            (old != new).then(|| (task.clone(), (old.clone(), new.clone())))
        })
        .collect();
    let moves: BTreeMap<String, String> = moved
        .iter()
        .map(|(t, (_, new))| (t.clone(), new.clone()))
        .collect();
    let urls = deployment.backend.add_placement(&app, &moves, placement).await?;
    // The parents that stay send the new placement's inputs to the moved
    // children; the moved tasks' new workers know from their flags.
    let roles = deployment.backend.roles();
    for task in app.tasks.iter().filter(|t| !moves.contains_key(&t.name)) {
        let children: BTreeMap<String, String> = task
            .children
            .iter()
            .filter_map(|c| Some((c.clone(), urls.get(c)?.clone())))
            .collect();
        if children.is_empty() {
            continue;
        }
        let worker = roles
            .iter()
            .find(|r| r.role == Role::CirceWorker && r.task.as_ref() == Some(&task.name))
            .ok_or_else(|| DeployError::NoSuchRole {
                what: format!("circe-worker {}", task.name),
            })?;
        CirceWorkerClient::new(serve::channel(&worker.url)?)
            .set_routes(Routes {
                placement,
                children: children.into_iter().collect(),
            })
            .await
            .map_err(|status| DeployError::Replan {
                what: format!("telling {}'s worker where placement {placement} goes", task.name),
                status,
            })?;
    }
    let what: Vec<String> = moved
        .iter()
        .map(|(task, (old, new))| format!("{task} {old} -> {new}"))
        .collect();
    let drift: Vec<String> = plan.changes.iter().map(Change::to_string).collect();
    let reason = format!(
        "{} drifted; moved {} ({}: predicted {:.0} ms, was {:.0} ms)",
        drift.join(", "),
        what.join(", "),
        summary.scheduler,
        plan.new_secs * 1000.0,
        plan.current_secs * 1000.0,
    );
    let ingress = app
        .ingress()
        .iter()
        .filter_map(|t| Some((t.name.clone(), urls.get(&t.name)?.clone())))
        .collect();
    CirceHomeClient::new(serve::channel(&summary.endpoints().circe_home)?)
        .set_placement(SetPlacementRequest {
            placement,
            ingress,
            reason: reason.clone(),
        })
        .await
        .map_err(|status| DeployError::Replan {
            what: format!("giving circe-home placement {placement}"),
            status,
        })?;
    let took = plan.noticed.elapsed();
    tracing::info!(placement, %reason, took_ms = took.as_millis() as u64, "mapped again after the profile drifted");
    eprintln!(
        "new inputs take placement {placement} ({:.1} s after the drift was seen): {reason}",
        took.as_secs_f64()
    );
    deployment.summary.mapping = plan.mapping;
    deployment.summary.placement = placement;
    deployment.summary.predicted_makespan_secs = plan.new_secs;
    deployment.summary.roles = deployment.backend.roles();
    Ok(Replanned {
        placement,
        reason,
        moved,
        noticed: plan.noticed,
        took,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_counts_once_two_readings_in_a_row_pass_the_factor() {
        let mut r = Readings::default();
        r.observe("link a -> b bandwidth", 1, 100.0);
        r.observe("link a -> b bandwidth", 2, 90.0);
        assert!(r.drifted(2.0).is_empty());
        // One low reading is a blip.
        r.observe("link a -> b bandwidth", 3, 20.0);
        assert!(r.drifted(2.0).is_empty());
        // The same reading again (no new measurement) is not a second one.
        r.observe("link a -> b bandwidth", 3, 20.0);
        assert!(r.drifted(2.0).is_empty());
        r.observe("link a -> b bandwidth", 4, 30.0);
        let changes = r.drifted(2.0);
        assert_eq!(
            changes,
            vec![Change {
                metric: "link a -> b bandwidth".into(),
                before: 100.0,
                after: 30.0
            }]
        );
        // Weighed once: after the rebase the same level is no drift.
        r.rebase();
        r.observe("link a -> b bandwidth", 5, 25.0);
        assert!(r.drifted(2.0).is_empty());
    }

    #[test]
    fn both_ways_count_but_not_mixed_and_not_at_the_factor() {
        let mut r = Readings::default();
        for (at, v) in [(1, 1.0), (2, 2.5), (3, 2.6)] {
            r.observe("node n speed", at, v);
        }
        assert_eq!(r.drifted(2.0).len(), 1, "faster by 2.5x");
        let mut r = Readings::default();
        for (at, v) in [(1, 1.0), (2, 3.0), (3, 0.3)] {
            r.observe("node n speed", at, v);
        }
        assert!(r.drifted(2.0).is_empty(), "one up, one down");
        let mut r = Readings::default();
        for (at, v) in [(1, 1.0), (2, 0.5), (3, 0.5)] {
            r.observe("node n speed", at, v);
        }
        assert!(
            r.drifted(2.0).is_empty(),
            "exactly the factor is not more than it"
        );
        r.observe("node n speed", 4, 0.0);
        assert!(r.drifted(2.0).is_empty(), "a zero (not measured) is no reading");
    }

    #[test]
    fn a_change_reads_in_units() {
        let change = Change {
            metric: "link a -> b bandwidth".into(),
            before: 12.5e6,
            after: 125e3,
        };
        assert_eq!(
            change.to_string(),
            "link a -> b bandwidth 100.000 Mbit/s -> 1.000 Mbit/s"
        );
    }
}
