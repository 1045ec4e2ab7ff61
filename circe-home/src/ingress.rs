//! Which worker circe-home feeds an input to for each ingress task, per
//! placement. The first placement's workers come from the flags; each later
//! placement names only the ingress tasks that moved, and the others keep
//! the worker they had, so an input of placement p goes, for task t, to the
//! worker of the highest placement q <= p that names t.

use crate::Ingress;
use jupiter_common::proto::circe::worker::v1::circe_worker_client::CirceWorkerClient;
use jupiter_common::serve;
use jupiter_common::serve::Channel;
use std::collections::HashMap;

/// An ingress task's worker under some placement.
#[derive(Debug, Clone)]
pub struct Worker {
    pub task: String,
    pub url: String,
    pub client: CirceWorkerClient<Channel>,
}

/// What stops a placement's ingress workers from being set.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("{task:?} is not an ingress task of the app; its ingress tasks are {known:?}")]
    Unknown { task: String, known: Vec<String> },
    #[error("ingress task {task}: {url:?} is not a worker URL: {source}")]
    BadUrl {
        task: String,
        url: String,
        source: tonic::transport::Error,
    },
}

/// Every placement's ingress workers.
#[derive(Debug)]
pub struct IngressTable {
    /// Placement 0's, in the app's order of ingress tasks.
    first: Vec<Worker>,
    /// Placement i + 1's at index i, each with every ingress task.
    later: Vec<Vec<Worker>>,
}

impl IngressTable {
    /// The table with the first placement only; channels connect lazily.
    pub fn new(ingress: &[Ingress]) -> Result<Self, IngressError> {
        let first = ingress
            .iter()
            .map(|i| worker(&i.task, &i.address))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            first,
            later: Vec::new(),
        })
    }

    /// The latest placement it knows.
    pub fn latest(&self) -> u32 {
        self.later.len() as u32
    }

    /// The workers inputs of `placement` are fed to; None for a placement
    /// not set yet.
    pub fn workers(&self, placement: u32) -> Option<Vec<Worker>> {
        match placement.checked_sub(1) {
            None => Some(self.first.clone()),
            Some(index) => self.later.get(index as usize).cloned(),
        }
    }

    /// The workers of the placement after the latest, which moves the
    /// ingress tasks in `moved` to new URLs: checked and built, but not
    /// added (see [`Self::add`]) so that nothing changes until it is durable.
    pub fn next(&self, moved: &HashMap<String, String>) -> Result<Vec<Worker>, IngressError> {
        let latest = self.later.last().unwrap_or(&self.first);
        let mut named: Vec<&String> = moved.keys().collect();
        // Sorted, so that the same request is refused with the same task.
        named.sort();
        if let Some(task) = named.into_iter().find(|t| !latest.iter().any(|w| &&w.task == t)) {
            return Err(IngressError::Unknown {
                task: task.clone(),
                known: latest.iter().map(|w| w.task.clone()).collect(),
            });
        }
        latest
            .iter()
            .map(|w| match moved.get(&w.task) {
                Some(url) => worker(&w.task, url),
                None => Ok(w.clone()),
            })
            .collect()
    }

    /// Adds the workers [`Self::next`] built as the next placement.
    pub fn add(&mut self, workers: Vec<Worker>) {
        self.later.push(workers);
    }
}

fn worker(task: &str, url: &str) -> Result<Worker, IngressError> {
    let channel = serve::channel(url).map_err(|source| IngressError::BadUrl {
        task: task.to_string(),
        url: url.to_string(),
        source,
    })?;
    Ok(Worker {
        task: task.to_string(),
        url: url.to_string(),
        client: CirceWorkerClient::new(channel),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> IngressTable {
        let ingress = ["a", "b"].map(|task| Ingress {
            task: task.into(),
            address: format!("http://{task}0:7301"),
        });
        IngressTable::new(&ingress).expect("table")
    }

    fn moved(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(t, u)| (t.to_string(), u.to_string()))
            .collect()
    }

    fn urls(table: &IngressTable, placement: u32) -> Option<Vec<String>> {
        let workers = table.workers(placement)?;
        Some(
            workers
                .into_iter()
                .map(|w| format!("{}={}", w.task, w.url))
                .collect(),
        )
    }

    #[tokio::test]
    async fn a_task_keeps_its_worker_until_a_placement_moves_it() {
        let mut table = table();
        assert_eq!(table.latest(), 0);
        let one = table.next(&moved(&[("b", "http://b1:7301")])).expect("next");
        assert_eq!(table.latest(), 0, "next adds nothing");
        assert_eq!(urls(&table, 1), None);
        table.add(one);
        let two = table.next(&moved(&[("a", "http://a2:7301")])).expect("next");
        table.add(two);
        assert_eq!(table.latest(), 2);
        assert_eq!(
            urls(&table, 0).expect("0"),
            ["a=http://a0:7301", "b=http://b0:7301"]
        );
        assert_eq!(
            urls(&table, 1).expect("1"),
            ["a=http://a0:7301", "b=http://b1:7301"]
        );
        assert_eq!(
            urls(&table, 2).expect("2"),
            ["a=http://a2:7301", "b=http://b1:7301"]
        );
        assert_eq!(urls(&table, 3), None);
    }

    #[tokio::test]
    async fn unknown_tasks_and_bad_urls_are_named() {
        let table = table();
        let error = table
            .next(&moved(&[("z", "http://z:1"), ("y", "http://y:1")]))
            .expect_err("unknown")
            .to_string();
        assert_eq!(
            error,
            "\"y\" is not an ingress task of the app; its ingress tasks are [\"a\", \"b\"]"
        );
        let error = table
            .next(&moved(&[("a", "http://a 1")]))
            .expect_err("bad url")
            .to_string();
        assert!(
            error.starts_with("ingress task a: \"http://a 1\" is not a worker URL"),
            "{error}"
        );
    }
}
