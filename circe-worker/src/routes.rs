//! Where this worker's outputs go, per placement. The flags give the
//! routes of every placement until `SetRoutes` says otherwise: after the
//! profile drifted and some children moved, the inputs of the new
//! placement go to the children's new workers, while inputs in flight
//! (an earlier placement) still go where they started. A placement's
//! routes name only the children that moved; the routes of the highest
//! placement at or below an input's that name a child win.
//!
//! The table is kept in `routes.json` at the queue's root, written durably
//! before `SetRoutes` is acknowledged, so a restarted worker routes the
//! same way.

use crate::sender::Downstream;
use jupiter_common::sync::LockExt;
use jupiter_common::transfer::write_file_durably;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// placement -> child task -> its worker's URL.
type Table = BTreeMap<u32, BTreeMap<String, String>>;

/// (placement, child task) -> a client of the child's worker.
type Clients = BTreeMap<(u32, String), Downstream>;

/// Why routes were refused or could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum RoutesError {
    #[error("placement 0 is the one the worker's --child flags give; routes start at placement 1")]
    FirstPlacement,
    #[error("task {task:?} has no child {child:?} (its children: {children})")]
    NotAChild {
        task: String,
        child: String,
        children: String,
    },
    #[error("child {child}: URL {url:?}: {source}")]
    BadUrl {
        child: String,
        url: String,
        source: tonic::transport::Error,
    },
    #[error("routes file {path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("routes file {path} is not readable JSON: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// The routes of every placement.
pub struct Routes {
    task: String,
    path: PathBuf,
    /// The flags' routes, in the task's children's order (or circe-home).
    default: Vec<Downstream>,
    /// The routes set since: the file's table is read off them.
    set: Mutex<Clients>,
}

impl Routes {
    /// The routes kept in `root`'s `routes.json` over `default`.
    pub fn open(task: &str, root: &Path, default: Vec<Downstream>) -> Result<Self, RoutesError> {
        let path = root.join("routes.json");
        let table: Table = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| RoutesError::Corrupt {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Table::new(),
            Err(source) => return Err(RoutesError::File { path, source }),
        };
        let clients = clients(&table)?;
        Ok(Self {
            task: task.to_string(),
            path,
            default,
            set: Mutex::new(clients),
        })
    }

    /// Where the outputs of an input of `placement` go, one per child in
    /// the task's order (or circe-home alone).
    pub fn of(&self, placement: u32) -> Vec<Downstream> {
        let set = self.set.locked();
        self.default
            .iter()
            .map(|target| {
                let Downstream::Worker { task, .. } = target else {
                    return target.clone();
                };
                set.range((0, task.clone())..=(placement, task.clone()))
                    .rfind(|((_, child), _)| child == task)
                    .map_or_else(|| target.clone(), |(_, d)| d.clone())
            })
            .collect()
    }

    /// Sets `children`'s routes from `placement` on, durably.
    pub async fn set(&self, placement: u32, children: BTreeMap<String, String>) -> Result<(), RoutesError> {
        if placement == 0 {
            return Err(RoutesError::FirstPlacement);
        }
        let known: Vec<&str> = self.default.iter().map(Downstream::name).collect();
        if let Some(child) = children.keys().find(|c| !known.contains(&c.as_str())) {
            return Err(RoutesError::NotAChild {
                task: self.task.clone(),
                child: child.clone(),
                children: known.join(", "),
            });
        }
        let mut clients = self.set.locked().clone();
        for (child, url) in children {
            let target = worker(&child, &url)?;
            clients.insert((placement, child), target);
        }
        let json = serde_json::to_vec_pretty(&table_of(&clients)).map_err(|source| RoutesError::Corrupt {
            path: self.path.clone(),
            source,
        })?;
        write_file_durably(&self.path, &json)
            .await
            .map_err(|source| RoutesError::File {
                path: self.path.clone(),
                source,
            })?;
        *self.set.locked() = clients;
        Ok(())
    }
}

/// A client per route of `table`.
fn clients(table: &Table) -> Result<Clients, RoutesError> {
    let mut clients = BTreeMap::new();
    for (placement, children) in table {
        for (child, url) in children {
            clients.insert((*placement, child.clone()), worker(child, url)?);
        }
    }
    Ok(clients)
}

/// The table of the routes `clients` go to, as the file keeps it.
fn table_of(clients: &Clients) -> Table {
    let mut table = Table::new();
    for ((placement, child), target) in clients {
        table
            .entry(*placement)
            .or_default()
            .insert(child.clone(), target.url().to_string());
    }
    table
}

/// `child`'s worker at `url`.
fn worker(child: &str, url: &str) -> Result<Downstream, RoutesError> {
    Downstream::worker(child, url).map_err(|source| RoutesError::BadUrl {
        child: child.to_string(),
        url: url.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(task: &str, url: &str) -> Downstream {
        Downstream::worker(task, url).expect("url")
    }

    fn names(targets: &[Downstream]) -> Vec<String> {
        targets
            .iter()
            .map(|t| format!("{}@{}", t.name(), t.url()))
            .collect()
    }

    #[tokio::test]
    async fn each_placement_takes_the_latest_route_at_or_below_it_and_a_restart_keeps_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let default = || vec![worker("b", "http://b0:1"), worker("c", "http://c0:1")];
        let routes = Routes::open("a", dir.path(), default()).expect("opens");
        routes
            .set(2, [("b".to_string(), "http://b2:1".to_string())].into())
            .await
            .expect("set 2");
        routes
            .set(3, [("c".to_string(), "http://c3:1".to_string())].into())
            .await
            .expect("set 3");
        let expect = |routes: &Routes| {
            assert_eq!(names(&routes.of(0)), ["b@http://b0:1", "c@http://c0:1"]);
            assert_eq!(names(&routes.of(1)), ["b@http://b0:1", "c@http://c0:1"]);
            assert_eq!(names(&routes.of(2)), ["b@http://b2:1", "c@http://c0:1"]);
            assert_eq!(names(&routes.of(7)), ["b@http://b2:1", "c@http://c3:1"]);
        };
        expect(&routes);
        let again = Routes::open("a", dir.path(), default()).expect("reopens");
        expect(&again);
    }

    #[tokio::test]
    async fn bad_routes_are_refused_by_name_and_change_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let routes = Routes::open("a", dir.path(), vec![worker("b", "http://b0:1")]).expect("opens");
        let e = routes
            .set(1, [("z".to_string(), "http://z:1".to_string())].into())
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "task \"a\" has no child \"z\" (its children: b)");
        let e = routes
            .set(0, [("b".to_string(), "http://b:1".to_string())].into())
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("placement 0 is the one"), "{e}");
        let e = routes
            .set(1, [("b".to_string(), "not a url".to_string())].into())
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("child b: URL \"not a url\""), "{e}");
        assert_eq!(names(&routes.of(5)), ["b@http://b0:1"]);
        assert!(!dir.path().join("routes.json").exists());
    }
}
