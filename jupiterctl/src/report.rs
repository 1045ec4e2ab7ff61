//! What a user reads at the end of a run: every input with its makespan,
//! and per task the median and worst of its timings.

use jupiter_common::proto::circe::home::v1::InputResult;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Per-task timing summary over many inputs.
#[derive(Debug, Clone, Default)]
pub struct TaskSummary {
    pub task: String,
    pub node: String,
    pub runs: usize,
    pub queue_wait_ms: Vec<f64>,
    pub run_ms: Vec<f64>,
    pub transfer_ms: Vec<f64>,
    pub hop_ms: Vec<f64>,
}

pub fn median(values: &[f64]) -> f64 {
    percentile(values, 0.5)
}

pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Task summaries in `order` (the app's task order).
pub fn summarize(results: &[InputResult], order: &[String]) -> Vec<TaskSummary> {
    let mut by_task: BTreeMap<&str, TaskSummary> = BTreeMap::new();
    for report in results
        .iter()
        .flat_map(|r| &r.tasks)
        .filter(|t| t.error.is_empty())
    {
        let s = by_task.entry(&report.task).or_insert_with(|| TaskSummary {
            task: report.task.clone(),
            node: report.node.clone(),
            ..Default::default()
        });
        s.runs += 1;
        s.queue_wait_ms.push(report.queue_wait_ms);
        s.run_ms.push(report.run_ms);
        s.transfer_ms.push(report.transfer_ms);
        s.hop_ms.push(report.hop_ms);
    }
    order.iter().filter_map(|t| by_task.remove(t.as_str())).collect()
}

pub fn inputs_table(results: &[InputResult]) -> String {
    let width = results.iter().map(|r| r.input_id.len()).max().unwrap_or(5).max(5);
    let mut out = format!(
        "{:<width$}  {:>6}  {:>12}  {}\n",
        "INPUT", "STATUS", "MAKESPAN ms", "OUTPUTS / ERROR"
    );
    for r in results {
        let (status, detail) = if r.ok {
            ("ok", r.outputs.join(" "))
        } else {
            ("FAILED", r.error.clone())
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:>6}  {:>12.1}  {}",
            r.input_id, status, r.makespan_ms, detail
        );
    }
    out
}

pub fn tasks_table(summaries: &[TaskSummary]) -> String {
    let width = summaries.iter().map(|s| s.task.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:<width$}  {:<8}  {:>5}  {:>14}  {:>12}  {:>14}  {:>10}\n",
        "TASK", "NODE", "RUNS", "QUEUE WAIT ms", "RUN ms", "TRANSFER ms", "HOP ms"
    );
    for s in summaries {
        let _ = writeln!(
            out,
            "{:<width$}  {:<8}  {:>5}  {:>14}  {:>12}  {:>14}  {:>10.2}",
            s.task,
            s.node,
            s.runs,
            med_max(&s.queue_wait_ms),
            med_max(&s.run_ms),
            med_max(&s.transfer_ms),
            median(&s.hop_ms),
        );
    }
    out.push_str("(median/max over inputs; HOP = parent output written -> this task started, median)\n");
    out
}

fn med_max(values: &[f64]) -> String {
    let max = values.iter().cloned().fold(0.0, f64::max);
    format!("{:.1}/{:.1}", median(values), max)
}

pub fn makespan_line(results: &[InputResult], wall_ms: f64) -> String {
    let makespans: Vec<f64> = results.iter().filter(|r| r.ok).map(|r| r.makespan_ms).collect();
    let ok = makespans.len();
    format!(
        "{ok}/{} inputs ok in {:.2} s ({:.1} inputs/s); makespan median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        results.len(),
        wall_ms / 1000.0,
        results.len() as f64 / (wall_ms / 1000.0).max(1e-9),
        median(&makespans),
        percentile(&makespans, 0.95),
        makespans.iter().cloned().fold(0.0, f64::max),
    )
}

/// Measured against predicted makespan, over the inputs that ran alone
/// (the prediction is for one input on an otherwise idle deployment); None
/// without a prediction.
pub fn prediction_line(results: &[InputResult], alone: bool, predicted_secs: f64) -> Option<String> {
    if predicted_secs <= 0.0 {
        return None;
    }
    let predicted_ms = predicted_secs * 1000.0;
    let makespans: Vec<f64> = results.iter().filter(|r| r.ok).map(|r| r.makespan_ms).collect();
    if !alone || makespans.is_empty() {
        return Some(format!(
            "predicted makespan of one input {predicted_ms:.1} ms; no input ran alone to compare it with \
             (inputs were pipelined: send them with --one-at-a-time)"
        ));
    }
    let measured = median(&makespans);
    Some(format!(
        "inputs that ran alone: {}; measured makespan median {measured:.1} ms vs predicted {predicted_ms:.1} ms \
         ({:+.0}%)",
        makespans.len(),
        (measured / predicted_ms - 1.0) * 100.0
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(ms: f64) -> InputResult {
        InputResult {
            ok: true,
            makespan_ms: ms,
            ..Default::default()
        }
    }

    #[test]
    fn prediction_compares_the_median_of_lone_inputs() {
        let results = [ok(900.0), ok(1100.0), ok(1200.0)];
        let line = prediction_line(&results, true, 1.0).expect("a prediction");
        assert!(line.contains("inputs that ran alone: 3"), "{line}");
        assert!(
            line.contains("median 1100.0 ms vs predicted 1000.0 ms (+10%)"),
            "{line}"
        );
        let pipelined = prediction_line(&results, false, 1.0).expect("a prediction");
        assert!(pipelined.contains("--one-at-a-time"), "{pipelined}");
        assert_eq!(prediction_line(&results, true, 0.0), None);
    }
}
