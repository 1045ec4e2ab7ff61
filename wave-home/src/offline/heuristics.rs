//! HEFT (Topcuoglu et al. 2002: upward rank, insertion-based earliest
//! finish time) and CPoP (same paper: critical path on its best processor,
//! the rest by earliest finish time).

use super::schedule::{build, Schedule};
use super::Problem;

/// Average run time of each task over the nodes.
fn mean_exec(p: &Problem) -> Vec<f64> {
    let mean_inverse_speed = p.speeds.iter().map(|s| 1.0 / s).sum::<f64>() / p.nodes() as f64;
    p.costs.iter().map(|c| c * mean_inverse_speed).collect()
}

/// Average seconds per unit of data over the ordered pairs of distinct nodes.
fn mean_inverse_bandwidth(p: &Problem) -> f64 {
    let n = p.nodes();
    if n < 2 {
        return 0.0;
    }
    p.inverse_bandwidth.iter().sum::<f64>() / (n * (n - 1)) as f64
}

pub fn upward_ranks(p: &Problem) -> Vec<f64> {
    let w = mean_exec(p);
    let c = mean_inverse_bandwidth(p);
    let mut rank = vec![0.0; p.tasks()];
    for &t in p.topo.iter().rev() {
        let tail = p.succ[t]
            .iter()
            .map(|&(s, d)| d * c + rank[s])
            .fold(0.0, f64::max);
        rank[t] = w[t] + tail;
    }
    rank
}

pub fn downward_ranks(p: &Problem) -> Vec<f64> {
    let w = mean_exec(p);
    let c = mean_inverse_bandwidth(p);
    let mut rank = vec![0.0; p.tasks()];
    for &t in &p.topo {
        rank[t] = p.pred[t]
            .iter()
            .map(|&(q, d)| rank[q] + w[q] + d * c)
            .fold(0.0, f64::max);
    }
    rank
}

/// Busy intervals of every node, kept sorted, with insertion-based search.
struct Timeline {
    slots: Vec<Vec<(f64, f64)>>,
}

impl Timeline {
    fn new(nodes: usize) -> Self {
        Self {
            slots: vec![Vec::new(); nodes],
        }
    }

    /// Earliest start >= `ready` of a `duration`-long run on `node`, in a
    /// gap between booked runs or after the last one.
    fn earliest_start(&self, node: usize, ready: f64, duration: f64) -> f64 {
        let slots = &self.slots[node];
        // The first booked run that ends after `ready` is where gaps start to matter.
        let first = slots.partition_point(|&(_, end)| end <= ready);
        let mut candidate = ready;
        for &(start, end) in &slots[first..] {
            if candidate + duration <= start {
                return candidate;
            }
            candidate = candidate.max(end);
        }
        candidate
    }

    fn book(&mut self, node: usize, start: f64, end: f64) {
        let slots = &mut self.slots[node];
        // By (start, end): a zero-length run at another's start goes first,
        // so the ends stay sorted too (earliest_start relies on it).
        let at = slots.partition_point(|&(s, e)| s < start || (s == start && e <= end));
        slots.insert(at, (start, end));
    }
}

/// When `task`'s inputs can all be on `node`.
fn ready_time(p: &Problem, placed: &[(usize, f64, f64)], task: usize, node: usize) -> f64 {
    p.pred[task]
        .iter()
        .map(|&(q, d)| {
            let (qn, _, qend) = placed[q];
            qend + p.comm(d, qn, node)
        })
        .fold(0.0, f64::max)
}

/// (start, finish) of `task` on `node` with insertion.
fn place(
    p: &Problem,
    timeline: &Timeline,
    placed: &[(usize, f64, f64)],
    task: usize,
    node: usize,
) -> (f64, f64) {
    let duration = p.exec(task, node);
    let start = timeline.earliest_start(node, ready_time(p, placed, task, node), duration);
    (start, start + duration)
}

/// The node with the earliest finish; ties go to the lower index.
fn best_node(
    p: &Problem,
    timeline: &Timeline,
    placed: &[(usize, f64, f64)],
    task: usize,
) -> (usize, f64, f64) {
    let mut best = (0, f64::INFINITY, f64::INFINITY);
    for node in 0..p.nodes() {
        let (start, finish) = place(p, timeline, placed, task, node);
        if finish < best.2 {
            best = (node, start, finish);
        }
    }
    best
}

pub fn heft(p: &Problem) -> Schedule {
    let rank = upward_ranks(p);
    // Decreasing upward rank is a topological order whenever costs are
    // positive; with zero costs ties could break it, so ties go to the
    // earlier task in topological order.
    let mut position = vec![0; p.tasks()];
    for (i, &t) in p.topo.iter().enumerate() {
        position[t] = i;
    }
    let mut order: Vec<usize> = (0..p.tasks()).collect();
    order.sort_by(|&a, &b| rank[b].total_cmp(&rank[a]).then(position[a].cmp(&position[b])));
    let mut placed = vec![(usize::MAX, 0.0, 0.0); p.tasks()];
    let mut timeline = Timeline::new(p.nodes());
    let mut done = vec![false; p.tasks()];
    // Guard against an order that is not topological (zero-cost ties).
    let mut pending = std::collections::VecDeque::from(order);
    while let Some(task) = pending.pop_front() {
        if p.pred[task].iter().any(|&(q, _)| !done[q]) {
            pending.push_back(task);
            continue;
        }
        let (node, start, finish) = best_node(p, &timeline, &placed, task);
        timeline.book(node, start, finish);
        placed[task] = (node, start, finish);
        done[task] = true;
    }
    build(p, &placed)
}

pub fn cpop(p: &Problem) -> Schedule {
    let up = upward_ranks(p);
    let down = downward_ranks(p);
    let priority: Vec<f64> = up.iter().zip(&down).map(|(u, d)| u + d).collect();
    let tolerance = |x: f64| 1e-9 * (1.0 + x.abs());
    // The critical path: from the entry task of highest priority, follow
    // the successor whose priority equals the path's length.
    let entries: Vec<usize> = (0..p.tasks()).filter(|&t| p.pred[t].is_empty()).collect();
    let mut on_path = vec![false; p.tasks()];
    if let Some(&start) = entries
        .iter()
        .max_by(|&&a, &&b| priority[a].total_cmp(&priority[b]).then(b.cmp(&a)))
    {
        let length = priority[start];
        let mut task = start;
        on_path[task] = true;
        while let Some(&(next, _)) = p.succ[task]
            .iter()
            .filter(|&&(s, _)| (priority[s] - length).abs() <= tolerance(length))
            .min_by_key(|&&(s, _)| s)
        {
            task = next;
            on_path[task] = true;
        }
    }
    // The critical-path processor runs the whole path fastest.
    let path_cost: f64 = (0..p.tasks()).filter(|&t| on_path[t]).map(|t| p.costs[t]).sum();
    let cp_node = (0..p.nodes())
        .min_by(|&a, &b| {
            (path_cost / p.speeds[a])
                .total_cmp(&(path_cost / p.speeds[b]))
                .then(a.cmp(&b))
        })
        .unwrap_or(0);

    let mut placed = vec![(usize::MAX, 0.0, 0.0); p.tasks()];
    let mut timeline = Timeline::new(p.nodes());
    let mut waiting: Vec<usize> = p.pred.iter().map(Vec::len).collect();
    let mut ready: Vec<usize> = entries;
    while !ready.is_empty() {
        let (i, _) = ready
            .iter()
            .enumerate()
            .max_by(|(_, &a), (_, &b)| priority[a].total_cmp(&priority[b]).then(b.cmp(&a)))
            .unwrap_or((0, &0));
        let task = ready.swap_remove(i);
        let (node, start, finish) = if on_path[task] {
            let (s, f) = place(p, &timeline, &placed, task, cp_node);
            (cp_node, s, f)
        } else {
            best_node(p, &timeline, &placed, task)
        };
        timeline.book(node, start, finish);
        placed[task] = (node, start, finish);
        for &(s, _) in &p.succ[task] {
            waiting[s] -= 1;
            if waiting[s] == 0 {
                ready.push(s);
            }
        }
    }
    build(p, &placed)
}
