//! Watching a Docker deployment during a run: its containers have no
//! restart policy, so one that is not running is a role (or a whole node)
//! gone until someone starts it again, and the user is told which.

use super::engine::{Engine, EngineError};
use super::spec::{DEPLOYMENT_LABEL, NODE_LABEL};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often the deployment's containers are looked at during a run.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// How long, at most, to wait for the rest of a failing node's containers
/// to go down before telling the user.
const SETTLE_LIMIT: Duration = Duration::from_secs(5);

/// Polls the deployment's containers and resolves, with what the user
/// should know, once any of them is no longer running. A node going down
/// takes its containers one by one, so the report waits until no more go
/// down between two looks (at most [`SETTLE_LIMIT`]) and names them all.
pub async fn first_stopped(engine: &Engine, id: &str) -> String {
    let mut down = BTreeMap::new();
    let mut first_seen = None;
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        let Ok(now) = stopped_containers(engine, id).await else {
            continue;
        };
        let started = *first_seen.get_or_insert_with(Instant::now);
        let settled = !down.is_empty() && now.len() <= down.len();
        if !now.is_empty() {
            down = now;
        }
        if down.is_empty() {
            first_seen = None;
            continue;
        }
        if settled || started.elapsed() >= SETTLE_LIMIT {
            return describe_stopped(&down);
        }
    }
}

/// Every container of deployment `id` that is not running: name ->
/// (where it ran, its status).
async fn stopped_containers(
    engine: &Engine,
    id: &str,
) -> Result<BTreeMap<String, (String, String)>, EngineError> {
    let filter = format!("label={DEPLOYMENT_LABEL}={id}");
    let format = format!("{{{{.Names}}}}\t{{{{.State}}}}\t{{{{.Status}}}}\t{{{{.Label \"{NODE_LABEL}\"}}}}");
    let text = engine
        .run(&["ps", "-a", "--filter", &filter, "--format", &format])
        .await?;
    let mut down = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        if let [name, state, status, node] = fields[..] {
            if state != "running" {
                let place = if node.is_empty() {
                    "home".to_string()
                } else {
                    format!("node {node}")
                };
                down.insert(name.to_string(), (place, status.to_string()));
            }
        }
    }
    Ok(down)
}

fn describe_stopped(down: &BTreeMap<String, (String, String)>) -> String {
    let mut by_place: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, (place, status)) in down {
        by_place
            .entry(place)
            .or_default()
            .push(format!("{name} ({status})"));
    }
    let parts: Vec<String> = by_place
        .into_iter()
        .map(|(place, containers)| format!("{place} is down: {}", containers.join(", ")))
        .collect();
    format!(
        "{}. Inputs that pass through it cannot finish (recovering from a lost node is not implemented yet); \
         `jupiterctl down` removes the deployment, or `docker start` the containers to resume",
        parts.join("; ")
    )
}
