//! One CPU and memory budget per emulated node, shared by all its
//! containers. `--cpus` limits each container by itself, so a node of 0.25
//! CPUs running two tasks would have 0.5; a node is one machine, and HEFT
//! models it as one. Each node gets a parent cgroup holding the node's
//! limits, `/jupiter/<deployment>/<node>`, and its containers are started
//! under it with `--cgroup-parent` (they keep their own `--cpus` too, so a
//! droplet inside reads its node's share). `down` removes the folders.
//!
//! Offered where the engine uses the cgroupfs driver and jupiterctl may
//! write the cgroup file system (root); elsewhere every container keeps
//! only its own limits, and `up` says so once.

use crate::node_list::NodeSpec;
use std::io;
use std::path::{Path, PathBuf};

/// Where the cgroup file systems are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The CFS period the quotas are written against (the kernel's default).
const PERIOD_US: u64 = 100_000;

/// The cgroup layout of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One hierarchy per controller: `<root>/cpu/...`, `<root>/memory/...`.
    V1,
    /// One unified hierarchy: `<root>/...` with `cpu.max`, `memory.max`.
    V2,
}

impl Layout {
    /// The host's layout, from what is mounted under `root`.
    pub fn detect(root: &Path) -> Self {
        if root.join("cgroup.controllers").exists() {
            Layout::V2
        } else {
            Layout::V1
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("node {node}: setting its shared CPU and memory budget in {path}: {source}")]
pub struct CgroupError {
    pub node: String,
    pub path: PathBuf,
    pub source: io::Error,
}

/// The `--cgroup-parent` of `node`'s containers.
pub fn parent(deployment: &str, node: &str) -> String {
    format!("/jupiter/{deployment}/{node}")
}

/// The files to write for `node` under `root`: (path, contents), in order
/// (a v2 controller must be enabled in a folder's parent before use).
pub fn writes(layout: Layout, root: &Path, deployment: &str, node: &NodeSpec) -> Vec<(PathBuf, String)> {
    let quota = ((node.cpus * PERIOD_US as f64).round() as u64).max(1000);
    let relative = parent(deployment, &node.name);
    let relative = relative.trim_start_matches('/');
    match layout {
        Layout::V1 => {
            let cpu = root.join("cpu").join(relative);
            let memory = root.join("memory").join(relative);
            vec![
                (cpu.join("cpu.cfs_period_us"), PERIOD_US.to_string()),
                (cpu.join("cpu.cfs_quota_us"), quota.to_string()),
                (
                    memory.join("memory.limit_in_bytes"),
                    node.memory_bytes.to_string(),
                ),
            ]
        }
        Layout::V2 => {
            let mut files = Vec::new();
            let mut dir = root.to_path_buf();
            for part in Path::new(relative).components() {
                files.push((dir.join("cgroup.subtree_control"), "+cpu +memory".to_string()));
                dir = dir.join(part);
            }
            files.push((dir.join("cpu.max"), format!("{quota} {PERIOD_US}")));
            files.push((dir.join("memory.max"), node.memory_bytes.to_string()));
            files
        }
    }
}

/// Makes `node`'s parent cgroup with its limits under `root`; returns the
/// `--cgroup-parent` to start its containers with.
pub fn create(root: &Path, deployment: &str, node: &NodeSpec) -> Result<String, CgroupError> {
    let layout = Layout::detect(root);
    for (path, contents) in writes(layout, root, deployment, node) {
        let fail = |source| CgroupError {
            node: node.name.clone(),
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        std::fs::write(&path, &contents).map_err(fail)?;
    }
    Ok(parent(deployment, &node.name))
}

/// Removes every cgroup folder of `deployment` under `root` (after its
/// containers are gone: the kernel refuses to remove a busy cgroup).
/// Returns how many nodes' folders went, counted once across the v1
/// controllers (each mounts its own copy of the tree).
pub fn remove(root: &Path, deployment: &str) -> usize {
    let mut tops: Vec<PathBuf> = vec![root.join("jupiter").join(deployment)];
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            tops.push(entry.path().join("jupiter").join(deployment));
        }
    }
    let mut nodes = std::collections::BTreeSet::new();
    for top in tops.iter().filter(|t| t.is_dir()) {
        for entry in std::fs::read_dir(top).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) && remove_tree(&entry.path()) {
                nodes.insert(entry.file_name());
            }
        }
        let _ = std::fs::remove_dir(top);
        // The shared `/jupiter` folder goes once no deployment uses it.
        if let Some(jupiter) = top.parent() {
            let _ = std::fs::remove_dir(jupiter);
        }
    }
    nodes.len()
}

/// Cgroup folders are removed with rmdir, deepest first (their files are
/// the kernel's and cannot be deleted). Whether `dir` itself went.
fn remove_tree(dir: &Path) -> bool {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    std::fs::remove_dir(dir).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeSpec {
        let mut node = crate::node_list::uniform(1).expect("one node").remove(0);
        node.name = "edge0".into();
        node.cpus = 0.25;
        node.memory_bytes = 256 << 20;
        node
    }

    #[test]
    fn v1_writes_quota_and_memory_per_controller() {
        let files = writes(Layout::V1, Path::new("/cg"), "d1", &node());
        assert_eq!(
            files,
            vec![
                (
                    "/cg/cpu/jupiter/d1/edge0/cpu.cfs_period_us".into(),
                    "100000".into()
                ),
                ("/cg/cpu/jupiter/d1/edge0/cpu.cfs_quota_us".into(), "25000".into()),
                (
                    "/cg/memory/jupiter/d1/edge0/memory.limit_in_bytes".into(),
                    (256u64 << 20).to_string()
                ),
            ]
        );
    }

    #[test]
    fn v2_enables_the_controllers_down_the_path() {
        let files = writes(Layout::V2, Path::new("/cg"), "d1", &node());
        let paths: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        assert_eq!(
            paths,
            [
                "/cg/cgroup.subtree_control",
                "/cg/jupiter/cgroup.subtree_control",
                "/cg/jupiter/d1/cgroup.subtree_control",
                "/cg/jupiter/d1/edge0/cpu.max",
                "/cg/jupiter/d1/edge0/memory.max",
            ]
        );
        assert_eq!(files[3].1, "25000 100000");
    }

    #[test]
    fn create_and_remove_in_a_folder_standing_in_for_the_cgroup_root() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("cpu")).expect("cpu");
        std::fs::create_dir_all(root.path().join("memory")).expect("memory");
        let parent = create(root.path(), "d1", &node()).expect("created");
        assert_eq!(parent, "/jupiter/d1/edge0");
        let quota = root.path().join("cpu/jupiter/d1/edge0/cpu.cfs_quota_us");
        assert_eq!(std::fs::read_to_string(&quota).expect("quota"), "25000");
        // A real cgroup folder holds only kernel files, which vanish with
        // rmdir; here they are plain files, so clear them first.
        for (path, _) in writes(Layout::V1, root.path(), "d1", &node()) {
            std::fs::remove_file(path).expect("file");
        }
        assert_eq!(
            remove(root.path(), "d1"),
            1,
            "edge0, counted once over cpu and memory"
        );
        assert!(!root.path().join("cpu/jupiter").exists());
    }
}
