//! A picture of a run without Grafana: one self-contained HTML page (inline
//! CSS and SVG, no script, nothing fetched) with the run's header, the DAG
//! as the scheduler mapped it, a per-node Gantt chart of every input's queue
//! waits, runs and transfers, the makespan distribution, predicted against
//! measured times and the per-task summary. `jupiterctl run --report` and
//! `jupiterctl report` write it; [`render`] is pure, so it is tested on
//! made-up results.

use crate::deployment::Summary;
use crate::report::{self, median, percentile};
use crate::trace_tree::{task_span, utc};
use jupiter_common::app::App;
use jupiter_common::proto::circe::home::v1::InputResult;
use std::collections::BTreeMap;
use std::fmt::Write;

/// A task of the DAG as the page draws it.
#[derive(Debug, Clone, PartialEq)]
pub struct DagTask {
    pub name: String,
    pub children: Vec<String>,
}

impl DagTask {
    /// The app's tasks in file order, with their edges.
    pub fn of_app(app: &App) -> Vec<DagTask> {
        app.tasks
            .iter()
            .map(|t| DagTask {
                name: t.name.clone(),
                children: t.children.clone(),
            })
            .collect()
    }

    /// The mapped tasks without edges: what can still be drawn when the
    /// app's folder cannot be read any more.
    pub fn of_mapping(mapping: &BTreeMap<String, String>) -> Vec<DagTask> {
        mapping
            .keys()
            .map(|name| DagTask {
                name: name.clone(),
                children: Vec::new(),
            })
            .collect()
    }
}

/// Everything the page shows.
#[derive(Debug, Clone, Copy)]
pub struct RunData<'a> {
    /// The app's name.
    pub app: &'a str,
    /// Where it ran, in words (`3 local nodes`, `docker`).
    pub backend: &'a str,
    pub dag: &'a [DagTask],
    /// The deployment: scheduler, mapping, prediction, task costs.
    pub summary: &'a Summary,
    pub results: &'a [InputResult],
    /// From the first submission to the last result.
    pub wall_ms: f64,
    /// Whether every input ran with no other in flight (the prediction is
    /// for such an input).
    pub alone: bool,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The first submission (Unix nanoseconds) among `results`, if any carries one.
pub fn first_submission(results: &[InputResult]) -> Option<i64> {
    results
        .iter()
        .map(|r| r.submitted_at_unix_nanos)
        .filter(|&t| t != 0)
        .min()
}

/// From the first submission to the last result, as far as the results'
/// timestamps tell (0 without them): the wall time of a deployment whose
/// inputs were sent by someone else (`jupiterctl report`).
pub fn wall_ms(results: &[InputResult]) -> f64 {
    let Some(first) = first_submission(results) else {
        return 0.0;
    };
    results
        .iter()
        .filter(|r| r.submitted_at_unix_nanos != 0)
        .map(|r| (r.submitted_at_unix_nanos - first) as f64 / 1e6 + r.makespan_ms)
        .fold(0.0, f64::max)
}

/// Whether no two inputs were in flight at once, from their timestamps (a
/// result without one counts as overlapping, unless it is the only one).
pub fn ran_alone(results: &[InputResult]) -> bool {
    if results.len() <= 1 {
        return true;
    }
    if results.iter().any(|r| r.submitted_at_unix_nanos == 0) {
        return false;
    }
    let first = first_submission(results).unwrap_or_default();
    // Relative to the first submission: Unix milliseconds as f64 would
    // round away the sub-millisecond gaps between back-to-back inputs.
    let mut spans: Vec<(f64, f64)> = results
        .iter()
        .map(|r| {
            let start = (r.submitted_at_unix_nanos - first) as f64 / 1e6;
            (start, start + r.makespan_ms)
        })
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    // A microsecond of slack: makespans are rounded by circe-home.
    spans.windows(2).all(|w| w[1].0 >= w[0].1 - 0.001)
}

/// Milliseconds as people read them: `152.3 ms`, `12.35 s`.
fn duration(ms: f64) -> String {
    if ms.abs() >= 10_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.1} ms")
    }
}

/// A number without needless trailing zeros (axis labels).
fn short(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A step of 1, 2 or 5 times a power of ten that cuts `span` into about `target` parts.
fn tick_step(span: f64, target: f64) -> f64 {
    let raw = (span / target).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&step| raw <= step)
        .unwrap_or(10.0 * magnitude)
}

/// Colours of the nodes (boxes of the DAG), and of the Gantt bars.
const NODE_COLOURS: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
    "#bab0ac",
];
const QUEUE_COLOUR: &str = "#e8a33d";
const RUN_COLOUR: &str = "#3b6fd6";
const TRANSFER_COLOUR: &str = "#3aa35b";
const INPUT_COLOUR: &str = "#9aa0a6";

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px;color:#222;background:#fff}\
h1{margin:0 0 8px}h2{margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}\
dl.head{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:8px 0}dl.head dt{color:#666}dl.head dd{margin:0}\
table{border-collapse:collapse;font-size:14px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}\
th{background:#f4f4f4}td.l,th.l{text-align:left}p.note{color:#555;font-size:14px;max-width:1100px}\
svg{font-family:inherit;font-size:12px}svg text{fill:#222}.legend span{display:inline-block;margin-right:16px}\
.sw{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}\
.bad{color:#b00020}details{margin-top:8px}\
";

/// The whole page.
pub fn render(run: &RunData) -> String {
    let title = format!("Jupiter run: {}", run.app);
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    page.push_str(&header(run));
    page.push_str("<h2>The DAG and its mapping</h2>\n");
    page.push_str(&dag_svg(run.dag, &run.summary.mapping));
    page.push_str("<h2>Timeline per node</h2>\n");
    page.push_str(&gantt(run));
    page.push_str("<h2>Makespans</h2>\n");
    page.push_str(&histogram(run.results));
    page.push_str("<h2>Predicted and measured</h2>\n");
    page.push_str(&predicted(run));
    page.push_str("<h2>Per task</h2>\n");
    page.push_str(&summary_table(run));
    page.push_str(&inputs_list(run.results));
    page.push_str("</body>\n</html>\n");
    page
}

fn header(run: &RunData) -> String {
    let ok = run.results.iter().filter(|r| r.ok).count();
    let failed = run.results.len() - ok;
    let throughput = if run.wall_ms > 0.0 {
        format!(
            "{:.2} inputs/s",
            run.results.len() as f64 / (run.wall_ms / 1000.0)
        )
    } else {
        "unknown (no timestamps)".to_string()
    };
    let mut rows = vec![
        ("app", escape(run.app)),
        ("backend", escape(run.backend)),
        ("deployment", escape(&run.summary.deployment)),
        ("scheduler", escape(&run.summary.scheduler)),
        (
            "inputs",
            if failed == 0 {
                format!("{ok} ok, 0 failed")
            } else {
                format!("{ok} ok, <span class=\"bad\">{failed} failed</span>")
            },
        ),
        ("wall time", duration(run.wall_ms)),
        ("throughput", throughput),
    ];
    if let Some(first) = first_submission(run.results) {
        rows.push(("first input in", escape(&utc(first))));
    }
    if run.summary.placement > 0 {
        rows.push((
            "mapping",
            format!(
                "placement {} (mapped again after the profile drifted; the DAG shows the current one)",
                run.summary.placement
            ),
        ));
    }
    let mut out = String::from("<dl class=\"head\">\n");
    for (name, value) in rows {
        let _ = writeln!(out, "<dt>{name}</dt><dd>{value}</dd>");
    }
    out.push_str("</dl>\n");
    out
}

/// Each task's layer: the longest path to it from a source (a task without
/// parents). Edges to unknown tasks are ignored; a cycle (which a loaded
/// app cannot have) stops growing after as many rounds as there are tasks.
pub fn layers(dag: &[DagTask]) -> Vec<usize> {
    let index: BTreeMap<&str, usize> = dag
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let edges: Vec<(usize, usize)> = dag
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            t.children
                .iter()
                .filter_map(|c| index.get(c.as_str()))
                .map(move |&c| (i, c))
        })
        .collect();
    let mut layer = vec![0usize; dag.len()];
    for _ in 0..dag.len() {
        let mut changed = false;
        for &(parent, child) in &edges {
            if layer[child] < layer[parent] + 1 {
                layer[child] = layer[parent] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    layer
}

/// The colour of each node, in the order nodes are first met.
fn node_colours<'a>(nodes: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, &'static str> {
    let mut colours = BTreeMap::new();
    for node in nodes {
        let next = NODE_COLOURS[colours.len() % NODE_COLOURS.len()];
        colours.entry(node.to_string()).or_insert(next);
    }
    colours
}

fn dag_svg(dag: &[DagTask], mapping: &BTreeMap<String, String>) -> String {
    if dag.is_empty() {
        return "<p class=\"note\">No tasks to draw.</p>\n".to_string();
    }
    let layer = layers(dag);
    let depth = layer.iter().copied().max().unwrap_or(0) + 1;
    // Tasks per layer in app order, then each moved towards its parents'
    // mean position (one barycentre pass: fewer crossing edges).
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for (i, &l) in layer.iter().enumerate() {
        columns[l].push(i);
    }
    let mut row_of = vec![0.0f64; dag.len()];
    for column in columns.iter_mut() {
        let mut keyed: Vec<(f64, usize)> = column
            .iter()
            .enumerate()
            .map(|(pos, &task)| {
                let parents: Vec<f64> = dag
                    .iter()
                    .enumerate()
                    .filter(|(p, t)| layer[*p] < layer[task] && t.children.contains(&dag[task].name))
                    .map(|(p, _)| row_of[p])
                    .collect();
                let key = if parents.is_empty() {
                    pos as f64
                } else {
                    parents.iter().sum::<f64>() / parents.len() as f64
                };
                (key, task)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
        *column = keyed.into_iter().map(|(_, t)| t).collect();
        for (pos, &task) in column.iter().enumerate() {
            row_of[task] = pos as f64;
        }
    }
    let node_of = |task: &str| mapping.get(task).map(String::as_str).unwrap_or("?");
    let colours = node_colours(dag.iter().map(|t| node_of(&t.name)));
    let widest = dag
        .iter()
        .map(|t| t.name.chars().count().max(node_of(&t.name).chars().count() + 1))
        .max()
        .unwrap_or(4);
    let (box_w, box_h, gap_x, gap_y, margin) =
        ((widest as f64 * 7.5 + 24.0).max(96.0), 42.0, 72.0, 18.0, 16.0);
    let tallest = columns.iter().map(Vec::len).max().unwrap_or(1) as f64;
    let height = margin * 2.0 + tallest * box_h + (tallest - 1.0) * gap_y;
    let width = margin * 2.0 + depth as f64 * box_w + (depth as f64 - 1.0) * gap_x;
    let mut position = vec![(0.0f64, 0.0f64); dag.len()];
    for (l, column) in columns.iter().enumerate() {
        let used = column.len() as f64 * box_h + (column.len() as f64 - 1.0).max(0.0) * gap_y;
        let top = (height - used) / 2.0;
        for (pos, &task) in column.iter().enumerate() {
            position[task] = (
                margin + l as f64 * (box_w + gap_x),
                top + pos as f64 * (box_h + gap_y),
            );
        }
    }
    // Edges first, then boxes on a white ground: an edge that skips a
    // layer passes behind the boxes it crosses instead of through their text.
    let mut svg = format!(
        "<svg class=\"dag\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" aria-label=\"the app's DAG\">\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" \
         orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#666\"/></marker></defs>\n"
    );
    let index: BTreeMap<&str, usize> = dag
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    for (from, task) in dag.iter().enumerate() {
        for child in &task.children {
            let Some(&to) = index.get(child.as_str()) else {
                continue;
            };
            let (x1, y1) = (position[from].0 + box_w, position[from].1 + box_h / 2.0);
            let (x2, y2) = (position[to].0, position[to].1 + box_h / 2.0);
            let bend = (x2 - x1).abs() / 2.0;
            let _ = writeln!(
                svg,
                "<path class=\"edge\" d=\"M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}\" fill=\"none\" \
                 stroke=\"#888\" stroke-width=\"1.3\" marker-end=\"url(#arrow)\"><title>{} → {}</title></path>",
                x1 + bend,
                x2 - bend,
                escape(&task.name),
                escape(child)
            );
        }
    }
    for (i, task) in dag.iter().enumerate() {
        let (x, y) = position[i];
        let node = node_of(&task.name);
        let colour = colours.get(node).copied().unwrap_or(NODE_COLOURS[0]);
        let _ = writeln!(
            svg,
            "<g class=\"task\"><title>{name} on {node_text}</title>\
             <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{box_w:.1}\" height=\"{box_h:.1}\" rx=\"6\" fill=\"#fff\"/>\
             <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{box_w:.1}\" height=\"{box_h:.1}\" rx=\"6\" fill=\"{colour}\" \
             fill-opacity=\"0.22\" stroke=\"{colour}\" stroke-width=\"1.5\"/>\
             <text x=\"{cx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" font-weight=\"600\">{name}</text>\
             <text x=\"{cx:.1}\" y=\"{ny:.1}\" text-anchor=\"middle\" fill=\"#555\">@{node_text}</text></g>",
            name = escape(&task.name),
            node_text = escape(node),
            cx = x + box_w / 2.0,
            ty = y + 17.0,
            ny = y + 33.0,
        );
    }
    svg.push_str("</svg>\n<div class=\"legend\">");
    for (node, colour) in &colours {
        let _ = write!(
            svg,
            "<span><i class=\"sw\" style=\"background:{colour}\"></i>{}</span>",
            escape(node)
        );
    }
    svg.push_str("</div>\n<p class=\"note\">Layers are the longest path from a source; each box is a task and the node the scheduler mapped it to.</p>\n");
    svg
}

/// Where the Gantt chart's time axis starts (the first submission) and the
/// milliseconds it spans, or None when no result carries timestamps.
fn time_range(results: &[InputResult]) -> Option<(i64, f64)> {
    let starts = results
        .iter()
        .flat_map(|r| &r.tasks)
        .filter_map(|t| task_span(t).0);
    let origin = first_submission(results).or_else(|| starts.min())?;
    let mut end: f64 = 0.0;
    for r in results {
        if r.submitted_at_unix_nanos != 0 {
            end = end.max((r.submitted_at_unix_nanos - origin) as f64 / 1e6 + r.makespan_ms);
        }
        for t in &r.tasks {
            if let (Some(begin), length) = task_span(t) {
                end = end.max((begin - origin) as f64 / 1e6 + length);
            }
        }
    }
    Some((origin, end.max(0.001)))
}

/// The layout of the Gantt chart's plot: where time 0 is and how many
/// pixels a millisecond takes.
#[derive(Debug, Clone, Copy)]
struct Axis {
    origin: i64,
    left: f64,
    width: f64,
    span_ms: f64,
}

impl Axis {
    fn x_ms(&self, ms: f64) -> f64 {
        self.left + ms / self.span_ms * self.width
    }

    fn x(&self, nanos: i64) -> f64 {
        self.x_ms((nanos - self.origin) as f64 / 1e6)
    }

    fn w(&self, ms: f64) -> f64 {
        (ms / self.span_ms * self.width).max(0.0)
    }
}

/// Width of the Gantt chart's plot in pixels.
const PLOT_WIDTH: f64 = 1000.0;

fn gantt(run: &RunData) -> String {
    let Some((origin, span_ms)) = time_range(run.results) else {
        return "<p class=\"note\">No timeline: no result carries timestamps (no input finished yet, or the \
                workers predate them).</p>\n"
            .to_string();
    };
    // Rows: every node in the deployment's order, under it every task that
    // ran there (a task may have run on two nodes after a recovery), in
    // the app's order; tasks that never reported sit on their mapped node.
    let order: Vec<&str> = run.dag.iter().map(|t| t.name.as_str()).collect();
    let mut nodes: Vec<String> = run.summary.nodes();
    let mut pairs: Vec<(String, String)> = Vec::new();
    fn add(node: &str, task: &str, nodes: &mut Vec<String>, pairs: &mut Vec<(String, String)>) {
        if !nodes.iter().any(|n| n == node) {
            nodes.push(node.to_string());
        }
        if !pairs.iter().any(|(n, t)| n == node && t == task) {
            pairs.push((node.to_string(), task.to_string()));
        }
    }
    for report in run.results.iter().flat_map(|r| &r.tasks) {
        add(&report.node, &report.task, &mut nodes, &mut pairs);
    }
    for (task, node) in &run.summary.mapping {
        if !pairs.iter().any(|(_, t)| t == task) {
            add(node, task, &mut nodes, &mut pairs);
        }
    }
    let rank = |task: &str| order.iter().position(|t| *t == task).unwrap_or(usize::MAX);
    pairs.sort_by(|a, b| {
        let node = |n: &str| nodes.iter().position(|x| x == n).unwrap_or(usize::MAX);
        (node(&a.0), rank(&a.1), &a.1).cmp(&(node(&b.0), rank(&b.1), &b.1))
    });
    let char_w = 7.2;
    let node_w = nodes.iter().map(|n| n.chars().count()).max().unwrap_or(4) as f64 * char_w + 16.0;
    let task_w = pairs
        .iter()
        .map(|(_, t)| t.chars().count())
        .max()
        .unwrap_or(4)
        .max(6) as f64
        * char_w
        + 16.0;
    let (row_h, bar_h, top) = (18.0, 12.0, 28.0);
    let axis = Axis {
        origin,
        left: node_w + task_w + 8.0,
        width: PLOT_WIDTH,
        span_ms,
    };
    // One lane for the inputs (from submission to result), then the tasks.
    let rows = pairs.len() + 1;
    let height = top + rows as f64 * row_h + 12.0;
    let width = axis.left + axis.width + 24.0;
    let mut svg = format!(
        "<svg class=\"gantt\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" aria-label=\"timeline of every input per node\">\n"
    );
    // Bands alternate per node, so a node's tasks read as one group.
    let mut band_top = top + row_h;
    for (i, node) in nodes.iter().enumerate() {
        let count = pairs.iter().filter(|(n, _)| n == node).count();
        if count == 0 {
            continue;
        }
        let fill = if i % 2 == 0 { "#f6f8fb" } else { "#ffffff" };
        let _ = writeln!(
            svg,
            "<rect x=\"0\" y=\"{band_top:.1}\" width=\"{width:.0}\" height=\"{:.1}\" fill=\"{fill}\"/>\
             <text x=\"6\" y=\"{:.1}\" font-weight=\"600\">{}</text>",
            count as f64 * row_h,
            band_top + row_h / 2.0 + 4.0,
            escape(node)
        );
        band_top += count as f64 * row_h;
    }
    // The time axis: a grid line and label at every tick.
    let step = tick_step(span_ms, 10.0);
    let seconds = span_ms >= 5_000.0;
    let mut tick = 0.0;
    while tick <= span_ms + step * 1e-9 {
        let x = axis.x_ms(tick);
        let label = if seconds {
            format!("{} s", short(tick / 1000.0))
        } else {
            format!("{} ms", short(tick))
        };
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.2}\" y1=\"{:.1}\" x2=\"{x:.2}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{x:.2}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{label}</text>",
            top - 6.0,
            height - 10.0,
            top - 10.0
        );
        tick += step;
    }
    let _ = writeln!(
        svg,
        "<g class=\"plot\" data-left=\"{:.2}\" data-width=\"{:.2}\" data-span-ms=\"{span_ms:.3}\">",
        axis.left, axis.width
    );
    let _ = writeln!(
        svg,
        "<text x=\"6\" y=\"{:.1}\" font-weight=\"600\">inputs</text>",
        top + row_h / 2.0 + 4.0
    );
    let bar = |svg: &mut String, class: &str, colour: &str, x: f64, y: f64, ms: f64, title: &str| {
        let _ = writeln!(
            svg,
            "<rect class=\"{class}\" x=\"{x:.2}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{bar_h:.1}\" fill=\"{colour}\" \
             fill-opacity=\"0.8\"><title>{}</title></rect>",
            // Sub-pixel bars still show.
            axis.w(ms).max(0.6),
            escape(title)
        );
    };
    for r in run.results.iter().filter(|r| r.submitted_at_unix_nanos != 0) {
        let status = if r.ok { "ok" } else { "FAILED" };
        bar(
            &mut svg,
            "input",
            INPUT_COLOUR,
            axis.x(r.submitted_at_unix_nanos),
            top + (row_h - bar_h) / 2.0,
            r.makespan_ms,
            &format!(
                "input {}: submitted at +{}, makespan {}, {status}",
                r.input_id,
                duration((r.submitted_at_unix_nanos - origin) as f64 / 1e6),
                duration(r.makespan_ms)
            ),
        );
    }
    for (row, (node, task)) in pairs.iter().enumerate() {
        let y = top + (row + 1) as f64 * row_h;
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            node_w,
            y + row_h / 2.0 + 4.0,
            escape(task)
        );
        let y = y + (row_h - bar_h) / 2.0;
        for r in run.results {
            for t in r.tasks.iter().filter(|t| &t.task == task && &t.node == node) {
                let who = format!("input {} · {} @{}", r.input_id, t.task, t.node);
                if t.started_at_unix_nanos != 0 {
                    let start_ms = (t.started_at_unix_nanos - origin) as f64 / 1e6;
                    bar(
                        &mut svg,
                        "queue",
                        QUEUE_COLOUR,
                        axis.x_ms(start_ms - t.queue_wait_ms),
                        y,
                        t.queue_wait_ms,
                        &format!(
                            "{who}\nqueue wait {} from +{}",
                            duration(t.queue_wait_ms),
                            duration(start_ms - t.queue_wait_ms)
                        ),
                    );
                    let failed = if t.error.is_empty() {
                        String::new()
                    } else {
                        format!("\nFAILED: {}", t.error)
                    };
                    bar(
                        &mut svg,
                        "run",
                        RUN_COLOUR,
                        axis.x_ms(start_ms),
                        y,
                        t.run_ms,
                        &format!(
                            "{who}\nrun {} from +{}{failed}",
                            duration(t.run_ms),
                            duration(start_ms)
                        ),
                    );
                }
                if t.sent_at_unix_nanos != 0 {
                    let sent_ms = (t.sent_at_unix_nanos - origin) as f64 / 1e6;
                    bar(
                        &mut svg,
                        "transfer",
                        TRANSFER_COLOUR,
                        axis.x_ms(sent_ms),
                        y,
                        t.transfer_ms,
                        &format!(
                            "{who}\ntransfer {} from +{}",
                            duration(t.transfer_ms),
                            duration(sent_ms)
                        ),
                    );
                }
            }
        }
    }
    svg.push_str("</g>\n</svg>\n");
    let missing = run
        .results
        .iter()
        .flat_map(|r| &r.tasks)
        .filter(|t| t.started_at_unix_nanos == 0)
        .count();
    let _ = write!(
        svg,
        "<div class=\"legend\">{}{}{}{}</div>\n<p class=\"note\">Time from the first input's submission. \
         Queue wait: the input's files all durable → the task starts; run: the task's program; transfer: \
         streaming its outputs to every child until acknowledged. Hover a bar for its input, task, node and \
         durations.{}</p>\n",
        swatch(INPUT_COLOUR, "input in flight"),
        swatch(QUEUE_COLOUR, "queue wait"),
        swatch(RUN_COLOUR, "run"),
        swatch(TRANSFER_COLOUR, "transfer"),
        if missing > 0 {
            format!(
                " {missing} task reports carry no timestamps (their workers predate them) and are not drawn."
            )
        } else {
            String::new()
        }
    );
    svg
}

fn swatch(colour: &str, label: &str) -> String {
    format!(
        "<span><i class=\"sw\" style=\"background:{colour}\"></i>{}</span>",
        escape(label)
    )
}

fn histogram(results: &[InputResult]) -> String {
    let makespans: Vec<f64> = results.iter().filter(|r| r.ok).map(|r| r.makespan_ms).collect();
    if makespans.is_empty() {
        return "<p class=\"note\">No input finished successfully: no makespans to show.</p>\n".to_string();
    }
    let (min, max) = makespans
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &m| {
            (lo.min(m), hi.max(m))
        });
    let bins = ((makespans.len() as f64).sqrt().ceil() as usize).clamp(1, 30);
    let width_ms = ((max - min) / bins as f64).max(1e-9);
    let mut counts = vec![0usize; bins];
    for &m in &makespans {
        let bin = (((m - min) / width_ms) as usize).min(bins - 1);
        counts[bin] += 1;
    }
    let tallest = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let (plot_w, plot_h, left, top) = (560.0, 180.0, 40.0, 16.0);
    let (width, height) = (left + plot_w + 30.0, top + plot_h + 40.0);
    let x = |ms: f64| left + (ms - min) / (width_ms * bins as f64) * plot_w;
    let mut svg = format!(
        "<svg class=\"histogram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" aria-label=\"makespan histogram\">\n\
         <line x1=\"{left}\" y1=\"{base:.1}\" x2=\"{:.1}\" y2=\"{base:.1}\" stroke=\"#999\"/>\n",
        left + plot_w,
        base = top + plot_h
    );
    let bar_w = plot_w / bins as f64;
    for (i, &count) in counts.iter().enumerate() {
        let h = count as f64 / tallest * plot_h;
        let from = min + i as f64 * width_ms;
        let _ = writeln!(
            svg,
            "<rect class=\"bin\" x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{h:.2}\" fill=\"{RUN_COLOUR}\" \
             fill-opacity=\"0.75\"><title>{count} inputs from {} to {}</title></rect>",
            left + i as f64 * bar_w + 1.0,
            top + plot_h - h,
            (bar_w - 2.0).max(1.0),
            duration(from),
            duration(from + width_ms)
        );
    }
    let (med, p95) = (median(&makespans), percentile(&makespans, 0.95));
    for (value, label, colour) in [(med, "median", "#222"), (p95, "p95", "#b00020")] {
        let x = x(value);
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.2}\" y1=\"{top}\" x2=\"{x:.2}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-dasharray=\"4 3\">\
             <title>{label} {}</title></line><text x=\"{:.2}\" y=\"{:.1}\" fill=\"{colour}\">{label}</text>",
            top + plot_h,
            duration(value),
            x + 3.0,
            top + 10.0 + if label == "p95" { 14.0 } else { 0.0 }
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{left}\" y=\"{:.1}\" text-anchor=\"start\" fill=\"#555\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">makespan</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{}</text>",
        top + plot_h + 16.0,
        duration(min),
        left + plot_w,
        top + plot_h + 16.0,
        duration(max),
        left + plot_w / 2.0,
        top + plot_h + 32.0,
        left - 4.0,
        top + 10.0,
        tallest
    );
    svg.push_str("</svg>\n");
    let _ = writeln!(
        svg,
        "<p>{} inputs ok: makespan median <b>{}</b>, p95 <b>{}</b>, max <b>{}</b>.</p>",
        makespans.len(),
        duration(med),
        duration(p95),
        duration(max)
    );
    svg
}

fn predicted(run: &RunData) -> String {
    let mut out = String::new();
    let predicted_secs = run.summary.predicted_makespan_secs;
    match report::prediction_line(run.results, run.alone, predicted_secs) {
        Some(line) => {
            let _ = writeln!(out, "<p>{}</p>", escape(&line));
            let makespans: Vec<f64> = run
                .results
                .iter()
                .filter(|r| r.ok)
                .map(|r| r.makespan_ms)
                .collect();
            if !makespans.is_empty() {
                out.push_str(&comparison(
                    predicted_secs * 1000.0,
                    median(&makespans),
                    run.alone,
                ));
            }
        }
        None => {
            let _ = writeln!(
                out,
                "<p class=\"note\">The scheduler ({}) predicts no makespan: heft and cpop do, from the DRUPE \
                 profile and the tasks' costs.</p>",
                escape(&run.summary.scheduler)
            );
        }
    }
    if run.summary.costs.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"note\">No task costs: {} maps without them (heft, cpop and wave-greedy map with each \
             task's measured or declared cost).</p>",
            escape(&run.summary.scheduler)
        );
        return out;
    }
    let order: Vec<String> = run.dag.iter().map(|t| t.name.clone()).collect();
    let summaries = report::summarize(run.results, &order);
    out.push_str(
        "<table class=\"costs\">\n<tr><th class=\"l\">task</th><th class=\"l\">node</th>\
         <th>predicted cost ms<br>(one reference core)</th><th>predicted output bytes</th>\
         <th>measured run ms<br>(median)</th><th>measured / predicted</th></tr>\n",
    );
    for task in run.dag {
        let Some(cost) = run.summary.costs.get(&task.name) else {
            continue;
        };
        let measured = summaries
            .iter()
            .find(|s| s.task == task.name)
            .map(|s| median(&s.run_ms));
        let cost_ms = cost.cost_secs * 1000.0;
        let ratio = match measured {
            Some(m) if cost_ms > 0.0 => format!("{:.2}×", m / cost_ms),
            _ => "–".to_string(),
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{cost_ms:.1}</td><td>{}</td><td>{}</td><td>{ratio}</td></tr>",
            escape(&task.name),
            escape(run.summary.mapping.get(&task.name).map(String::as_str).unwrap_or("?")),
            cost.output_bytes,
            measured.map(|m| format!("{m:.1}")).unwrap_or_else(|| "–".to_string()),
        );
    }
    out.push_str(
        "</table>\n<p class=\"note\">A task's cost is its time on one core of the reference machine; the \
         scheduler expects cost / speed on a node of that speed, so a ratio away from 1 on a fast or slow node \
         is the node's speed, not an error.</p>\n",
    );
    out
}

/// Two bars: the predicted makespan of one input and the measured median.
fn comparison(predicted_ms: f64, measured_ms: f64, alone: bool) -> String {
    let longest = predicted_ms.max(measured_ms).max(1e-9);
    let (left, plot_w) = (210.0, 420.0);
    let measured_label = if alone {
        "measured median"
    } else {
        "measured median (pipelined)"
    };
    let mut svg = format!(
        "<svg class=\"comparison\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"64\" \
         viewBox=\"0 0 {:.0} 64\" role=\"img\" aria-label=\"predicted and measured makespan\">\n",
        left + plot_w + 110.0,
        left + plot_w + 110.0
    );
    for (i, (label, value, colour)) in [
        ("predicted", predicted_ms, "#b07aa1"),
        (measured_label, measured_ms, RUN_COLOUR),
    ]
    .into_iter()
    .enumerate()
    {
        let y = 6.0 + i as f64 * 28.0;
        let w = value / longest * plot_w;
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>\
             <rect x=\"{left}\" y=\"{y:.1}\" width=\"{w:.2}\" height=\"20\" fill=\"{colour}\" fill-opacity=\"0.8\">\
             <title>{label}: {}</title></rect><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            left - 6.0,
            y + 14.0,
            duration(value),
            left + w + 6.0,
            y + 14.0,
            duration(value)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn summary_table(run: &RunData) -> String {
    let order: Vec<String> = run.dag.iter().map(|t| t.name.clone()).collect();
    let summaries = report::summarize(run.results, &order);
    if summaries.is_empty() {
        return "<p class=\"note\">No task reported a successful run.</p>\n".to_string();
    }
    let mut out = String::from(
        "<table class=\"tasks\">\n<tr><th class=\"l\">task</th><th class=\"l\">node</th><th>runs</th>\
         <th>queue wait ms<br>median / max</th><th>run ms<br>median / max</th><th>transfer ms<br>median / max</th>\
         <th>hop ms<br>median</th></tr>\n",
    );
    let med_max = |values: &[f64]| {
        let max = values.iter().copied().fold(0.0, f64::max);
        format!("{:.1} / {max:.1}", median(values))
    };
    for s in &summaries {
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
            escape(&s.task),
            escape(&s.node),
            s.runs,
            med_max(&s.queue_wait_ms),
            med_max(&s.run_ms),
            med_max(&s.transfer_ms),
            median(&s.hop_ms)
        );
    }
    out.push_str(
        "</table>\n<p class=\"note\">Over every input the task ran for successfully. Hop: the latest parent's \
         output written → this task started.</p>\n",
    );
    out
}

fn inputs_list(results: &[InputResult]) -> String {
    if results.is_empty() {
        return String::new();
    }
    let failed: Vec<&InputResult> = results.iter().filter(|r| !r.ok).collect();
    let mut out = String::new();
    if !failed.is_empty() {
        out.push_str("<h2 class=\"bad\">Failed inputs</h2>\n<table class=\"failed\">\n<tr><th class=\"l\">input</th><th class=\"l\">error</th></tr>\n");
        for r in failed {
            let _ = writeln!(
                out,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                escape(&r.input_id),
                escape(&r.error)
            );
        }
        out.push_str("</table>\n");
    }
    let origin = first_submission(results);
    let _ = writeln!(
        out,
        "<details><summary>All {} inputs</summary>\n<table class=\"inputs\">\n<tr><th class=\"l\">input</th>\
         <th class=\"l\">status</th><th>submitted at</th><th>makespan</th><th class=\"l\">outputs</th></tr>",
        results.len()
    );
    for r in results {
        let at = match (origin, r.submitted_at_unix_nanos) {
            (Some(o), t) if t != 0 => format!("+{}", duration((t - o) as f64 / 1e6)),
            _ => "?".to_string(),
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{at}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            escape(&r.input_id),
            if r.ok { "ok" } else { "FAILED" },
            duration(r.makespan_ms),
            escape(&r.outputs.join(" "))
        );
    }
    out.push_str("</table>\n</details>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_common::proto::circe::home::v1::TaskReport;

    const T0: i64 = 1_700_000_000_000_000_000;
    const MS: i64 = 1_000_000;

    fn dag(edges: &[(&str, &[&str])]) -> Vec<DagTask> {
        edges
            .iter()
            .map(|(name, children)| DagTask {
                name: name.to_string(),
                children: children.iter().map(|c| c.to_string()).collect(),
            })
            .collect()
    }

    fn summary(mapping: &[(&str, &str)]) -> Summary {
        Summary {
            deployment: "jupiter-test-1".into(),
            scheduler: "heft".into(),
            predicted_makespan_secs: 0.018,
            mapping: mapping
                .iter()
                .map(|(t, n)| (t.to_string(), n.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn page(dag: &[DagTask], summary: &Summary, results: &[InputResult]) -> String {
        render(&RunData {
            app: "test-app",
            backend: "3 local nodes",
            dag,
            summary,
            results,
            wall_ms: wall_ms(results),
            alone: ran_alone(results),
        })
    }

    /// The attributes of the first `<rect class="CLASS" ...>`.
    fn rect(html: &str, class: &str) -> BTreeMap<String, f64> {
        let start = html
            .find(&format!("<rect class=\"{class}\""))
            .unwrap_or_else(|| panic!("a {class} bar in\n{html}"));
        let tag = &html[start..start + html[start..].find('>').expect("tag ends")];
        tag.split_whitespace()
            .filter_map(|part| part.split_once('='))
            .filter_map(|(k, v)| Some((k.to_string(), v.trim_matches('"').parse().ok()?)))
            .collect()
    }

    #[test]
    fn every_task_and_its_node_appear_in_layers() {
        let d = dag(&[
            ("a", &["b", "c"]),
            ("b", &["d"]),
            ("c", &["d"]),
            ("d", &[]),
            ("lonely", &[]),
        ]);
        assert_eq!(layers(&d), vec![0, 1, 1, 2, 0]);
        let s = summary(&[
            ("a", "node0"),
            ("b", "node1"),
            ("c", "node2"),
            ("d", "node0"),
            ("lonely", "node1"),
        ]);
        let html = page(&d, &s, &[]);
        for task in ["a", "b", "c", "d", "lonely"] {
            assert!(html.contains(&format!(">{task}</text>")), "{task} drawn");
        }
        assert!(html.contains(">@node2</text>"));
        assert_eq!(html.matches("class=\"edge\"").count(), 4);
        assert!(html.contains("No timeline"), "no results, no timeline");
        // Self-contained: nothing is fetched.
        assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("src="));
    }

    #[test]
    fn bars_sit_at_their_times_on_the_axis() {
        let d = dag(&[("t", &[])]);
        let s = summary(&[("t", "node0")]);
        // Submitted at 0; queue wait 8-10 ms, run 10-15, transfer 16-19;
        // result at 20 ms: the axis spans 20 ms.
        let results = [InputResult {
            input_id: "in1".into(),
            ok: true,
            makespan_ms: 20.0,
            submitted_at_unix_nanos: T0,
            tasks: vec![TaskReport {
                task: "t".into(),
                node: "node0".into(),
                queue_wait_ms: 2.0,
                run_ms: 5.0,
                transfer_ms: 3.0,
                started_at_unix_nanos: T0 + 10 * MS,
                sent_at_unix_nanos: T0 + 16 * MS,
                ..Default::default()
            }],
            ..Default::default()
        }];
        let html = page(&d, &s, &results);
        let (input, queue, run, transfer) = (
            rect(&html, "input"),
            rect(&html, "queue"),
            rect(&html, "run"),
            rect(&html, "transfer"),
        );
        let (left, width) = (input["x"], input["width"]);
        assert!(
            (width - PLOT_WIDTH).abs() < 0.01,
            "the input spans the axis: {input:?}"
        );
        let at = |ms: f64| left + ms / 20.0 * width;
        let near = |a: f64, b: f64| (a - b).abs() < 0.02;
        assert!(
            near(queue["x"], at(8.0)) && near(queue["width"], 2.0 / 20.0 * width),
            "{queue:?}"
        );
        assert!(
            near(run["x"], at(10.0)) && near(run["width"], 5.0 / 20.0 * width),
            "{run:?}"
        );
        assert!(
            near(transfer["x"], at(16.0)) && near(transfer["width"], 3.0 / 20.0 * width),
            "{transfer:?}"
        );
        assert!(html.contains("<title>input in1 · t @node0\nrun 5.0 ms from +10.0 ms</title>"));
        assert!(html.contains("1 ok, 0 failed"));
        assert!(
            html.contains("inputs that ran alone: 1"),
            "the prediction compared"
        );
    }

    #[test]
    fn text_is_escaped() {
        let evil = "<b>&\"x'";
        let d = dag(&[(evil, &[])]);
        let mut s = summary(&[(evil, "<node>")]);
        // TaskCost is the deployment model's own (not re-exported): made as
        // a state file would hold it.
        let cost = serde_json::json!({ "cost_secs": 0.01, "output_bytes": 10 });
        s.costs.insert(
            evil.to_string(),
            serde_json::from_value(cost).expect("a task cost"),
        );
        let results = [InputResult {
            input_id: "<script>alert(1)</script>".into(),
            ok: false,
            error: "a < b".into(),
            makespan_ms: 3.0,
            submitted_at_unix_nanos: T0,
            tasks: vec![TaskReport {
                task: evil.into(),
                node: "<node>".into(),
                run_ms: 1.0,
                started_at_unix_nanos: T0 + MS,
                ..Default::default()
            }],
            ..Default::default()
        }];
        let html = page(&d, &s, &results);
        assert!(!html.contains(evil) && !html.contains("<script") && !html.contains("<node>"));
        assert!(html.contains("&lt;b&gt;&amp;&quot;x&#39;"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("a &lt; b"));
    }

    #[test]
    fn results_without_timestamps_do_not_break_the_page() {
        let d = dag(&[("a", &["b"]), ("b", &[])]);
        let s = summary(&[("a", "node0"), ("b", "node1")]);
        let old = |id: &str| InputResult {
            input_id: id.into(),
            ok: true,
            makespan_ms: 12.0,
            tasks: vec![TaskReport {
                task: "a".into(),
                node: "node0".into(),
                run_ms: 4.0,
                ..Default::default()
            }],
            ..Default::default()
        };
        let results = [old("x"), old("y")];
        assert_eq!(wall_ms(&results), 0.0);
        assert!(!ran_alone(&results));
        let html = page(&d, &s, &results);
        assert!(html.contains("No timeline"));
        assert!(html.contains("unknown (no timestamps)"));
        assert!(html.contains("inputs were pipelined"));
        // Some with and some without: the old ones are skipped, named in a note.
        let mut mixed = results.to_vec();
        mixed[0].submitted_at_unix_nanos = T0;
        mixed[0].tasks[0].started_at_unix_nanos = T0 + MS;
        let html = page(&d, &s, &mixed);
        assert!(html.contains("class=\"run\""));
        assert!(html.contains("1 task reports carry no timestamps"));
        assert!(
            !html.contains("class=\"transfer\""),
            "no sent_at, no transfer bar"
        );
    }

    #[test]
    fn overlap_tells_pipelined_from_alone() {
        let at = |start_ms: i64, makespan_ms: f64| InputResult {
            ok: true,
            makespan_ms,
            submitted_at_unix_nanos: T0 + start_ms * MS,
            ..Default::default()
        };
        assert!(ran_alone(&[at(0, 10.0), at(10, 5.0), at(30, 1.0)]));
        assert!(!ran_alone(&[at(0, 10.0), at(5, 5.0)]));
        assert_eq!(wall_ms(&[at(0, 10.0), at(30, 1.0)]), 31.0);
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(20.0, 10.0), 2.0);
        assert_eq!(tick_step(152.3, 10.0), 20.0);
        assert!((tick_step(0.7, 10.0) - 0.1).abs() < 1e-12);
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(20.0), "20");
    }
}
