//! drupe-central's durable store: an embedded redb database holding the
//! latest resources of every node, the latest profile of every link, and
//! the history of every update, so a restarted central serves what it knew.

use jupiter_common::proto::drupe::central::v1::{LinkProfile, ProfileUpdate};
use jupiter_common::proto::drupe::droplet::v1::NodeResources;
use prost::Message;
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::Path;

const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new("nodes");
const LINKS: TableDefinition<&str, &[u8]> = TableDefinition::new("links");
const HISTORY: TableDefinition<u64, &[u8]> = TableDefinition::new("history");

/// History rows kept; older ones are dropped as new ones come.
const HISTORY_LIMIT: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("profile database {path}: {detail}")]
    Open { path: String, detail: String },
    #[error("profile database: {0}")]
    Io(String),
    #[error("profile database holds an unreadable record: {0}")]
    Corrupt(#[from] prost::DecodeError),
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

pub struct Store {
    db: Database,
    next_history: u64,
}

/// What the store held when it was opened.
#[derive(Debug, Default)]
pub struct Loaded {
    pub nodes: Vec<NodeResources>,
    pub links: Vec<LinkProfile>,
    pub history: u64,
}

fn link_key(from: &str, to: &str) -> String {
    format!("{from}\u{0}{to}")
}

impl Store {
    pub fn open(path: &Path) -> Result<(Self, Loaded), StoreError> {
        let open_err = |detail: String| StoreError::Open {
            path: path.display().to_string(),
            detail,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        }
        let db = Database::create(path).map_err(|e| open_err(e.to_string()))?;
        // Create the tables on first use so that reads never miss them.
        let txn = db.begin_write().map_err(io)?;
        {
            txn.open_table(NODES).map_err(io)?;
            txn.open_table(LINKS).map_err(io)?;
            txn.open_table(HISTORY).map_err(io)?;
        }
        txn.commit().map_err(io)?;

        let mut loaded = Loaded::default();
        let read = db.begin_read().map_err(io)?;
        for row in read.open_table(NODES).map_err(io)?.iter().map_err(io)? {
            let (_, value) = row.map_err(io)?;
            loaded.nodes.push(NodeResources::decode(value.value())?);
        }
        for row in read.open_table(LINKS).map_err(io)?.iter().map_err(io)? {
            let (_, value) = row.map_err(io)?;
            loaded.links.push(LinkProfile::decode(value.value())?);
        }
        let history = read.open_table(HISTORY).map_err(io)?;
        let next_history = match history.last().map_err(io)? {
            Some((key, _)) => key.value() + 1,
            None => 0,
        };
        loaded.history = history.len().map_err(io)?;
        drop(history);
        drop(read);
        Ok((Self { db, next_history }, loaded))
    }

    /// Records updates (latest state and history) in one transaction.
    pub fn record(&mut self, updates: &[ProfileUpdate]) -> Result<(), StoreError> {
        use jupiter_common::proto::drupe::central::v1::profile_update::Update;
        let txn = self.db.begin_write().map_err(io)?;
        {
            let mut nodes = txn.open_table(NODES).map_err(io)?;
            let mut links = txn.open_table(LINKS).map_err(io)?;
            let mut history = txn.open_table(HISTORY).map_err(io)?;
            for update in updates {
                match &update.update {
                    Some(Update::Node(n)) => {
                        nodes
                            .insert(n.node.as_str(), n.encode_to_vec().as_slice())
                            .map_err(io)?;
                    }
                    Some(Update::Link(l)) => {
                        let key = link_key(&l.from, &l.to);
                        links
                            .insert(key.as_str(), l.encode_to_vec().as_slice())
                            .map_err(io)?;
                    }
                    None => continue,
                }
                history
                    .insert(self.next_history, update.encode_to_vec().as_slice())
                    .map_err(io)?;
                if self.next_history >= HISTORY_LIMIT {
                    history.remove(self.next_history - HISTORY_LIMIT).map_err(io)?;
                }
                self.next_history += 1;
            }
        }
        txn.commit().map_err(io)
    }

    /// The last `limit` history rows, oldest first.
    pub fn history(&self, limit: usize) -> Result<Vec<ProfileUpdate>, StoreError> {
        let read = self.db.begin_read().map_err(io)?;
        let table = read.open_table(HISTORY).map_err(io)?;
        let mut rows = Vec::new();
        for row in table.iter().map_err(io)?.rev().take(limit) {
            let (_, value) = row.map_err(io)?;
            rows.push(ProfileUpdate::decode(value.value())?);
        }
        rows.reverse();
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_common::proto::drupe::central::v1::profile_update::Update;

    #[test]
    fn survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("central.redb");
        let (mut store, loaded) = Store::open(&path).unwrap();
        assert!(loaded.nodes.is_empty() && loaded.links.is_empty());
        let link = LinkProfile {
            from: "a".into(),
            to: "b".into(),
            reachable: true,
            bandwidth_bytes_per_sec: 5e6,
            ..Default::default()
        };
        let node = NodeResources {
            node: "a".into(),
            cpu_count: 4,
            ..Default::default()
        };
        store
            .record(&[
                ProfileUpdate {
                    update: Some(Update::Link(link.clone())),
                },
                ProfileUpdate {
                    update: Some(Update::Node(node.clone())),
                },
            ])
            .unwrap();
        drop(store);
        let (store, loaded) = Store::open(&path).unwrap();
        assert_eq!(loaded.links, vec![link]);
        assert_eq!(loaded.nodes, vec![node]);
        assert_eq!(loaded.history, 2);
        assert_eq!(store.history(10).unwrap().len(), 2);
    }
}
