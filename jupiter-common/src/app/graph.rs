//! The task graph: parents from children, cycle detection and a stable
//! topological order (petgraph).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use super::TaskSpec;

/// Graph whose node `i` is `tasks[i]`; edges parent -> child in children order.
/// Children that name no task are skipped (the loaders reject them first).
fn graph(tasks: &[TaskSpec]) -> DiGraph<usize, ()> {
    let mut g = DiGraph::with_capacity(tasks.len(), tasks.len());
    let index: HashMap<&str, NodeIndex> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), g.add_node(i)))
        .collect();
    for (i, t) in tasks.iter().enumerate() {
        for c in &t.children {
            if let Some(&ci) = index.get(c.as_str()) {
                g.add_edge(NodeIndex::new(i), ci, ());
            }
        }
    }
    g
}

/// Fills every task's `parents` (in file order) from the children lists.
pub(crate) fn fill_parents(tasks: &mut [TaskSpec]) {
    let parents: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            tasks
                .iter()
                .filter(|p| p.children.contains(&t.name))
                .map(|p| p.name.clone())
                .collect()
        })
        .collect();
    for (t, p) in tasks.iter_mut().zip(parents) {
        t.parents = p;
    }
}

/// A cycle, as task names with the first repeated last (`a b c a`), or None.
/// The cycle reported starts at the earliest task (in file order) on one.
pub(crate) fn find_cycle(tasks: &[TaskSpec]) -> Option<Vec<String>> {
    let g = graph(tasks);
    if toposort(&g, None).is_ok() {
        return None;
    }
    let cyclic: Vec<Vec<NodeIndex>> = tarjan_scc(&g)
        .into_iter()
        .filter(|scc| scc.len() > 1 || g.contains_edge(scc[0], scc[0]))
        .collect();
    let scc = cyclic.into_iter().min_by_key(|scc| scc.iter().min().copied())?;
    let members: HashSet<NodeIndex> = scc.iter().copied().collect();
    let start = *scc.iter().min()?;
    // Breadth-first from start back to start, inside the component, following
    // children in the order they are listed: the shortest such cycle.
    let mut prev: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    let mut last = None;
    'bfs: while let Some(n) = queue.pop_front() {
        for c in &tasks[g[n]].children {
            let Some(ci) = g.node_indices().find(|&i| tasks[g[i]].name == *c) else {
                continue;
            };
            if !members.contains(&ci) {
                continue;
            }
            if ci == start {
                last = Some(n);
                break 'bfs;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(ci) {
                e.insert(n);
                queue.push_back(ci);
            }
        }
    }
    let mut path = vec![start];
    let mut n = last?;
    while n != start {
        path.push(n);
        n = prev[&n];
    }
    path.push(start);
    let len = path.len();
    path[1..len - 1].reverse();
    Some(path.into_iter().map(|i| tasks[g[i]].name.clone()).collect())
}

/// Indices of `tasks` in a topological order; among the tasks ready at a
/// time, the earliest in the file comes first, so an app written in
/// dependency order keeps its file order. A cyclic (hand-built) task list
/// yields its acyclic prefix followed by the rest in file order.
pub(crate) fn topological_order(tasks: &[TaskSpec]) -> Vec<usize> {
    let g = graph(tasks);
    let mut indegree: Vec<usize> = g
        .node_indices()
        .map(|n| g.neighbors_directed(n, petgraph::Incoming).count())
        .collect();
    let mut ready: BinaryHeap<Reverse<usize>> = (0..tasks.len())
        .filter(|&i| indegree[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(tasks.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for c in g.neighbors(NodeIndex::new(i)) {
            indegree[c.index()] -= 1;
            if indegree[c.index()] == 0 {
                ready.push(Reverse(c.index()));
            }
        }
    }
    if order.len() < tasks.len() {
        let seen: HashSet<usize> = order.iter().copied().collect();
        order.extend((0..tasks.len()).filter(|i| !seen.contains(i)));
    }
    order
}
