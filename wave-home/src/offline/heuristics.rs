//! HEFT (Topcuoglu et al. 2002: upward rank, insertion-based earliest
//! finish time) and CPoP (same paper: critical path on its best processor,
//! the rest by earliest finish time).
//!
//! Both are list schedulers whose priorities rest on averages that the
//! literature defines in more than one way. Each runs with two of them and
//! keeps the shorter schedule (ties: the first):
//! - HEFT: the mean transfer cost over unordered node pairs with the same
//!   node included (SAGA's), then over distinct pairs only (the paper's).
//! - CPoP: the paper's ranks (the critical path pinned to its fastest
//!   node), then SAGA's (the downward rank also counts the task's own cost,
//!   so in practice only the entry task is pinned and the rest is ordered by
//!   that rank).

use super::schedule::{build, Schedule};
use super::Problem;

/// Average run time of each task over the nodes.
fn mean_exec(p: &Problem) -> Vec<f64> {
    let mean_inverse_speed = p.speeds.iter().map(|s| 1.0 / s).sum::<f64>() / p.nodes() as f64;
    p.costs.iter().map(|c| c * mean_inverse_speed).collect()
}

/// Expected seconds per unit of data between the two ends of an edge when
/// each end's node is unknown: the mean over the unordered pairs of nodes,
/// the same node included (where a transfer is free). This is SAGA's
/// average; the textbook one leaves out same-node pairs and so overstates
/// transfers, the more so the fewer nodes there are. For directed links the
/// two directions of a pair are averaged.
fn mean_inverse_bandwidth(p: &Problem) -> f64 {
    let n = p.nodes();
    p.inverse_bandwidth.iter().sum::<f64>() / (n * (n + 1)) as f64
}

/// The paper's mean: over ordered pairs of distinct nodes.
fn mean_inverse_bandwidth_distinct(p: &Problem) -> f64 {
    let n = p.nodes();
    if n < 2 {
        return 0.0;
    }
    p.inverse_bandwidth.iter().sum::<f64>() / (n * (n - 1)) as f64
}

fn shorter(a: Schedule, b: Schedule) -> Schedule {
    if b.makespan < a.makespan {
        b
    } else {
        a
    }
}

pub fn upward_ranks(p: &Problem, c: f64) -> Vec<f64> {
    let w = mean_exec(p);
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

pub fn downward_ranks(p: &Problem, c: f64) -> Vec<f64> {
    let w = mean_exec(p);
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
    let first = heft_with(p, mean_inverse_bandwidth(p));
    shorter(first, heft_with(p, mean_inverse_bandwidth_distinct(p)))
}

fn heft_with(p: &Problem, mean_comm: f64) -> Schedule {
    in_rank_order(p, mean_comm, &|timeline, placed, task| {
        best_node(p, timeline, placed, task)
    })
}

/// The schedule of a given mapping (`nodes[task]`): tasks in HEFT's order,
/// each as early as its inputs and its node allow. This is how long a
/// mapping made elsewhere (WAVE, static, random) is expected to take.
pub fn evaluate(p: &Problem, nodes: &[usize]) -> Schedule {
    in_rank_order(p, mean_inverse_bandwidth(p), &|timeline, placed, task| {
        let (start, finish) = place(p, timeline, placed, task, nodes[task]);
        (nodes[task], start, finish)
    })
}

type Pick<'a> = dyn Fn(&Timeline, &[(usize, f64, f64)], usize) -> (usize, f64, f64) + 'a;

/// Places tasks by decreasing upward rank, each where `pick` says.
fn in_rank_order(p: &Problem, mean_comm: f64, pick: &Pick<'_>) -> Schedule {
    let rank = upward_ranks(p, mean_comm);
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
        let (node, start, finish) = pick(&timeline, &placed, task);
        timeline.book(node, start, finish);
        placed[task] = (node, start, finish);
        done[task] = true;
    }
    build(p, &placed)
}

pub fn cpop(p: &Problem) -> Schedule {
    let c = mean_inverse_bandwidth(p);
    let up = upward_ranks(p, c);
    let down = downward_ranks(p, c);
    let paper: Vec<f64> = up.iter().zip(&down).map(|(u, d)| u + d).collect();
    let paper = cpop_with(p, &paper, CriticalPath::Follow);
    // SAGA's downward rank adds the task's own cost over the mean speed.
    let mean_speed = p.speeds.iter().sum::<f64>() / p.nodes() as f64;
    let mut saga_down = vec![0.0; p.tasks()];
    for &t in &p.topo {
        if !p.pred[t].is_empty() {
            let before = p.pred[t]
                .iter()
                .map(|&(q, d)| saga_down[q] + d * c)
                .fold(0.0, f64::max);
            saga_down[t] = before + p.costs[t] / mean_speed;
        }
    }
    let saga: Vec<f64> = up.iter().zip(&saga_down).map(|(u, d)| u + d).collect();
    shorter(paper, cpop_with(p, &saga, CriticalPath::AllClose))
}

/// Which tasks are on the critical path.
enum CriticalPath {
    /// From the top entry task, follow the successor of equal priority.
    Follow,
    /// Every task whose priority is (numerically) the top entry's.
    AllClose,
}

fn cpop_with(p: &Problem, priority: &[f64], critical: CriticalPath) -> Schedule {
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-8 + 1e-5 * b.abs();
    let entries: Vec<usize> = (0..p.tasks()).filter(|&t| p.pred[t].is_empty()).collect();
    let mut on_path = vec![false; p.tasks()];
    if let Some(&start) = entries
        .iter()
        .max_by(|&&a, &&b| priority[a].total_cmp(&priority[b]).then(b.cmp(&a)))
    {
        let length = priority[start];
        match critical {
            CriticalPath::Follow => {
                let mut task = start;
                on_path[task] = true;
                while let Some(&(next, _)) = p.succ[task]
                    .iter()
                    .filter(|&&(s, _)| close(priority[s], length))
                    .min_by_key(|&&(s, _)| s)
                {
                    task = next;
                    on_path[task] = true;
                }
            }
            CriticalPath::AllClose => {
                for (t, on) in on_path.iter_mut().enumerate() {
                    *on = close(priority[t], length);
                }
            }
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
    // Highest priority first; ties to the smaller task name (as SAGA does).
    let mut ready: std::collections::BinaryHeap<Ready> = entries
        .iter()
        .map(|&t| Ready {
            priority: priority[t],
            name: &p.task_names[t],
            task: t,
        })
        .collect();
    while let Some(Ready { task, .. }) = ready.pop() {
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
                ready.push(Ready {
                    priority: priority[s],
                    name: &p.task_names[s],
                    task: s,
                });
            }
        }
    }
    build(p, &placed)
}

/// A ready task in CPoP's queue.
struct Ready<'a> {
    priority: f64,
    name: &'a str,
    task: usize,
}

impl PartialEq for Ready<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Ready<'_> {}

impl PartialOrd for Ready<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ready<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.priority
            .total_cmp(&other.priority)
            .then_with(|| other.name.cmp(self.name))
    }
}
