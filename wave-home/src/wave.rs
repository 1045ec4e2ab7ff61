//! Distributed WAVE, home side: wave-home places the ingress tasks (at
//! random, or for greedy where each would finish first), tells
//! their nodes' agents, and collects what the agents appoint for the
//! children, until every task has a node, an agent reports a failure, or
//! the round's time is up. Nothing waits on a sleep: agents are called
//! with retries until the deadline, and the round ends on the reports.

use crate::greedy;
use jupiter_common::proto::drupe::central::v1::drupe_central_client::DrupeCentralClient;
use jupiter_common::proto::wave::home::v1::{Mapping, ScheduleRequest};
use jupiter_common::proto::wave::worker::v1::wave_worker_client::WaveWorkerClient;
use jupiter_common::proto::wave::worker::v1::HostTaskRequest;
use jupiter_common::serve;
use jupiter_common::sync::LockExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tonic::Status;

/// One round in progress (only the latest round is kept).
#[derive(Debug, Default)]
struct Round {
    id: u64,
    assignments: BTreeMap<String, String>,
    failure: Option<String>,
}

#[derive(Debug, Default)]
pub struct Rounds {
    next: AtomicU64,
    current: Mutex<Round>,
    changed: Notify,
}

impl Rounds {
    fn round(&self) -> std::sync::MutexGuard<'_, Round> {
        self.current.locked()
    }

    /// An agent appointed `node` for `task`: the first report wins.
    pub fn report(&self, round: u64, task: &str, node: &str) -> Result<(String, bool), Status> {
        let mut r = self.round();
        if r.id != round {
            return Err(Status::failed_precondition(format!("round {round} is over")));
        }
        let (decided, appointed) = match r.assignments.get(task) {
            Some(existing) => (existing.clone(), false),
            None => {
                r.assignments.insert(task.to_string(), node.to_string());
                (node.to_string(), true)
            }
        };
        drop(r);
        self.changed.notify_waiters();
        Ok((decided, appointed))
    }

    pub fn fail(&self, round: u64, task: &str, error: &str) {
        let mut r = self.round();
        if r.id == round && r.failure.is_none() {
            r.failure = Some(format!("placing {task}: {error}"));
        }
        drop(r);
        self.changed.notify_waiters();
    }

    /// Runs a round: ingress tasks placed here, the rest by the agents.
    pub async fn run(&self, request: &ScheduleRequest, home: &str, central: &str) -> Result<Mapping, Status> {
        let mode = match request.algorithm.as_str() {
            "wave-random" => "random",
            "wave-greedy" => "greedy",
            other => return Err(Status::invalid_argument(format!("not a WAVE algorithm: {other}"))),
        };
        if request.workers.is_empty() {
            return Err(Status::invalid_argument(
                "WAVE needs the wave-worker of every node (workers)",
            ));
        }
        if request.tasks.is_empty() {
            return Err(Status::invalid_argument("the app has no tasks"));
        }
        let timeout = Duration::from_secs_f64(if request.timeout_secs > 0.0 {
            request.timeout_secs
        } else {
            30.0
        });
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        *self.round() = Round {
            id,
            ..Default::default()
        };
        let nodes: Vec<String> = request.workers.keys().cloned().collect();
        let mut rng = if request.seed == 0 {
            StdRng::from_entropy()
        } else {
            StdRng::seed_from_u64(request.seed)
        };
        let has_parent: std::collections::BTreeSet<&str> = request
            .tasks
            .iter()
            .flat_map(|t| t.children.iter().map(String::as_str))
            .collect();
        let deadline = tokio::time::Instant::now() + timeout;
        // Greedy places the ingress tasks as its agents place children: on
        // the node where each would finish first. Left to chance, one on
        // the slowest node drags its descendants there (each agent's choice
        // is local, and staying put saves a transfer).
        let profile = if mode == "greedy" {
            let channel = serve::channel(central)
                .map_err(|e| Status::invalid_argument(format!("drupe-central's address {central}: {e}")))?;
            Some(crate::network::drupe_profile(&mut DrupeCentralClient::new(channel)).await?)
        } else {
            None
        };
        let mut busy: BTreeMap<String, f64> = BTreeMap::new();
        let mut calls = Vec::new();
        for task in request
            .tasks
            .iter()
            .filter(|t| !has_parent.contains(t.name.as_str()))
        {
            let node = match &profile {
                Some((network, resources)) => {
                    let node = greedy::choose(None, &nodes, 0, task.cost, &busy, network, resources)
                        .ok_or_else(|| Status::unavailable("WAVE-greedy: DRUPE knows no reachable node"))?;
                    let speed = greedy::node_speed(resources, &node).unwrap_or(1.0);
                    *busy.entry(node.clone()).or_default() += task.cost / speed;
                    node
                }
                None => nodes.choose(&mut rng).cloned().unwrap_or_default(),
            };
            self.report(id, &task.name, &node)?;
            let call = HostTaskRequest {
                task: task.name.clone(),
                children: task.children.clone(),
                round: id,
                mode: mode.into(),
                tasks: request.tasks.clone(),
                workers: request.workers.clone(),
                home: home.to_string(),
                central: central.to_string(),
                seed: if request.seed == 0 {
                    0
                } else {
                    request.seed.wrapping_add(1)
                },
                timeout_secs: timeout.as_secs_f64(),
            };
            calls.push(host_task(request.workers[&node].clone(), node, call, deadline));
        }
        for result in futures::future::join_all(calls).await {
            if let Err(e) = result {
                self.fail(id, "an ingress task", &e.to_string());
            }
        }
        loop {
            let changed = self.changed.notified();
            {
                let r = self.round();
                if let Some(failure) = &r.failure {
                    return Err(Status::unavailable(format!("WAVE round failed: {failure}")));
                }
                if r.assignments.len() == request.tasks.len() {
                    return Ok(Mapping {
                        algorithm: request.algorithm.clone(),
                        assignments: r.assignments.clone().into_iter().collect(),
                        nodes,
                        predicted_makespan_secs: 0.0,
                        current_makespan_secs: 0.0,
                    });
                }
                if tokio::time::Instant::now() >= deadline {
                    let missing: Vec<&str> = request
                        .tasks
                        .iter()
                        .map(|t| t.name.as_str())
                        .filter(|t| !r.assignments.contains_key(*t))
                        .collect();
                    return Err(Status::deadline_exceeded(format!(
                        "WAVE round timed out after {timeout:?} with no node for {}",
                        missing.join(", ")
                    )));
                }
            }
            let _ = tokio::time::timeout_at(deadline, changed).await;
        }
    }
}

/// Why a node's agent did not take a task.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("wave-worker of {node} at {url}: {source}")]
    Address {
        node: String,
        url: String,
        source: tonic::transport::Error,
    },
    /// `last` is the agent's last refusal; `None`: it never answered.
    #[error(
        "the wave-worker of {node} at {url} did not take task {task}: {}",
        last.as_ref().map_or("no answer", Status::message)
    )]
    NotTaken {
        node: String,
        url: String,
        task: String,
        last: Option<Status>,
    },
}

/// Tells `node`'s agent it hosts a task, retrying until `deadline`: an agent
/// that starts late is waited for, one that never answers is named.
pub async fn host_task(
    url: String,
    node: String,
    request: HostTaskRequest,
    deadline: tokio::time::Instant,
) -> Result<(), HostError> {
    let channel = match serve::channel(&url) {
        Ok(channel) => channel,
        Err(source) => return Err(HostError::Address { node, url, source }),
    };
    let mut client = WaveWorkerClient::new(channel);
    let mut delay = Duration::from_millis(5);
    loop {
        let attempt = tokio::time::timeout_at(deadline, client.host_task(request.clone())).await;
        let last = match attempt {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(status)) => Some(status),
            Err(_) => None,
        };
        if tokio::time::Instant::now() + delay >= deadline {
            return Err(HostError::NotTaken {
                node,
                url,
                task: request.task,
                last,
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}
