//! Watching a Docker deployment while inputs run through it. Role
//! containers carry the restart policy `on-failure`, so Docker itself
//! starts again a role whose process crashed. Docker leaves alone a
//! container stopped from outside (`docker kill`, `docker stop`: the
//! operator's decision as far as Docker is concerned), so the watch tells
//! the two losses apart:
//!
//! - some containers of a node (or of home) stopped: roles killed, which
//!   jupiterctl starts again on their volumes ([`Seen::Killed`]);
//! - every container of a node stopped: the node is lost, and the user is
//!   told which ([`Seen::Lost`]).

use super::engine::{Engine, EngineError};
use super::spec::{DEPLOYMENT_LABEL, NODE_LABEL};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How often the deployment's containers are looked at during a run.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// How long, at most, to wait for the rest of a failing node's containers
/// to go down before deciding what was lost.
const SETTLE_LIMIT: Duration = Duration::from_secs(5);
/// How long containers stay down, with others of their node running,
/// before they count as killed and are started again.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// What the watch saw go down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Containers stopped while others of their node (or of home) still
    /// run: start them again.
    Killed(Vec<String>),
    /// Whole nodes are down (`nodes`; all of home counts as no node),
    /// with their containers named in `report`.
    Lost { nodes: Vec<String>, report: String },
}

/// One container of the deployment as `docker ps -a` shows it.
#[derive(Debug, Clone)]
struct Container {
    /// Its node; None at home.
    node: Option<String>,
    state: String,
    status: String,
}

impl Container {
    /// Where it runs, for messages: `home` or `node NAME`.
    fn place(&self) -> String {
        self.node
            .as_ref()
            .map_or_else(|| "home".to_string(), |n| format!("node {n}"))
    }

    /// Not running and not being restarted by Docker's restart policy.
    fn down(&self) -> bool {
        self.state != "running" && self.state != "restarting"
    }
}

/// Polls the deployment's containers until some are down and no more go
/// down between two looks (a node going down takes its containers one by
/// one; at most [`SETTLE_LIMIT`]), then says what was lost.
pub async fn next_loss(engine: &Engine, id: &str, known_lost: &BTreeSet<String>) -> Seen {
    let mut down = 0;
    let mut first_seen = None;
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        let Ok(mut now) = containers(engine, id).await else {
            continue;
        };
        // Nodes already lost (and recovered from) stay as they are.
        now.retain(|_, c| !c.node.as_ref().is_some_and(|n| known_lost.contains(n)));
        let down_now = now.values().filter(|c| c.down()).count();
        if down_now == 0 {
            (down, first_seen) = (0, None);
            continue;
        }
        let started = *first_seen.get_or_insert_with(Instant::now);
        let settled = down > 0 && down_now <= down;
        down = down_now;
        if !(settled || started.elapsed() >= SETTLE_LIMIT) {
            continue;
        }
        match classify(&now) {
            lost @ Seen::Lost { .. } => return lost,
            // A node going down may pause between its containers: starting
            // one of them again would race its own stop. Killed only once
            // the same containers stayed down for a while.
            killed if started.elapsed() >= KILL_GRACE => return killed,
            _ => {}
        }
    }
}

/// Whole places down are lost; any other stopped container was killed.
fn classify(all: &BTreeMap<String, Container>) -> Seen {
    // node (None: home) -> (containers, containers down).
    let mut places: BTreeMap<Option<&str>, (usize, usize)> = BTreeMap::new();
    for c in all.values() {
        let entry = places.entry(c.node.as_deref()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(c.down());
    }
    let lost: BTreeMap<String, Container> = all
        .iter()
        .filter(|(_, c)| {
            let (all, down) = places[&c.node.as_deref()];
            c.down() && all == down
        })
        .map(|(n, c)| (n.clone(), c.clone()))
        .collect();
    if !lost.is_empty() {
        let mut nodes: Vec<String> = lost.values().filter_map(|c| c.node.clone()).collect();
        nodes.dedup();
        return Seen::Lost {
            nodes,
            report: describe_lost(&lost),
        };
    }
    Seen::Killed(
        all.iter()
            .filter(|(_, c)| c.down())
            .map(|(n, _)| n.clone())
            .collect(),
    )
}

/// Every container of deployment `id` by name.
async fn containers(engine: &Engine, id: &str) -> Result<BTreeMap<String, Container>, EngineError> {
    let filter = format!("label={DEPLOYMENT_LABEL}={id}");
    let format = format!("{{{{.Names}}}}\t{{{{.State}}}}\t{{{{.Status}}}}\t{{{{.Label \"{NODE_LABEL}\"}}}}");
    let text = engine
        .run(&["ps", "-a", "--filter", &filter, "--format", &format])
        .await?;
    let mut all = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        if let [name, state, status, node] = fields[..] {
            all.insert(
                name.to_string(),
                Container {
                    node: Some(node.to_string()).filter(|n| !n.is_empty()),
                    state: state.to_string(),
                    status: status.to_string(),
                },
            );
        }
    }
    Ok(all)
}

fn describe_lost(down: &BTreeMap<String, Container>) -> String {
    let mut by_place: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, c) in down {
        by_place
            .entry(c.place())
            .or_default()
            .push(format!("{name} ({})", c.status));
    }
    let parts: Vec<String> = by_place
        .into_iter()
        .map(|(place, containers)| format!("{place} is down: {}", containers.join(", ")))
        .collect();
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(place: &str, state: &str) -> Container {
        Container {
            node: place.strip_prefix("node ").map(str::to_string),
            state: state.into(),
            status: format!("{state} (137)"),
        }
    }

    #[test]
    fn a_killed_role_is_told_from_a_lost_node() {
        let mut all = BTreeMap::from([
            ("d-circe-home".to_string(), container("home", "exited")),
            ("d-drupe-central".to_string(), container("home", "running")),
            ("d-n1-task".to_string(), container("node n1", "exited")),
            ("d-n1-drupe-droplet".to_string(), container("node n1", "running")),
            ("d-n2-task".to_string(), container("node n2", "restarting")),
        ]);
        assert_eq!(
            classify(&all),
            Seen::Killed(vec!["d-circe-home".into(), "d-n1-task".into()])
        );
        all.insert("d-n1-drupe-droplet".into(), container("node n1", "exited"));
        match classify(&all) {
            Seen::Lost { nodes, report } => {
                assert_eq!(nodes, ["n1"]);
                assert!(
                    report.starts_with("node n1 is down: d-n1-drupe-droplet (exited (137)), d-n1-task"),
                    "{report}"
                );
                assert!(
                    !report.contains("circe-home"),
                    "a killed role is not a lost node: {report}"
                );
            }
            other => panic!("a node with every container down is lost: {other:?}"),
        }
    }
}
