//! What circe-home knows of every input: when it came in, which egress
//! outputs arrived, each task's report, and how it ended.

use jupiter_common::clock::ms_between;
use jupiter_common::proto::circe::home::v1::{HomeStatus, InputResult, Recovery, TaskReport};
use jupiter_common::proto::circe::worker::v1::FileHeader;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tokio::sync::broadcast;

#[derive(Debug, Default)]
struct Egress {
    expected: Option<u32>,
    files: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct Input {
    submitted_at: Option<i64>,
    egress: HashMap<String, Egress>,
    outputs: BTreeSet<String>,
    reports: BTreeMap<String, TaskReport>,
    last_delivery: i64,
    result: Option<InputResult>,
    /// Its current pass: 0, raised by each replay.
    attempt: u32,
}

pub struct Ledger {
    egress: Vec<String>,
    tasks: Vec<String>,
    inputs: BTreeMap<String, Input>,
    finished: Vec<String>,
    results: broadcast::Sender<InputResult>,
    recoveries: Vec<Recovery>,
}

impl Ledger {
    pub fn new(egress: Vec<String>, tasks: Vec<String>) -> Self {
        Self {
            egress,
            tasks,
            inputs: BTreeMap::new(),
            finished: Vec::new(),
            results: broadcast::channel(65536).0,
            recoveries: Vec::new(),
        }
    }

    /// Claims an input id; false if it is taken.
    pub fn reserve(&mut self, input: &str) -> bool {
        if self.inputs.contains_key(input) {
            return false;
        }
        self.inputs.insert(input.to_string(), Input::default());
        true
    }

    pub fn release(&mut self, input: &str) {
        self.inputs.remove(input);
    }

    pub fn start(&mut self, input: &str, now: i64) {
        self.inputs.entry(input.to_string()).or_default().submitted_at = Some(now);
    }

    /// Records an egress output; true if that completed the input.
    pub fn delivered(&mut self, header: &FileHeader, relative: String, now: i64) -> bool {
        let entry = self.inputs.entry(header.input_id.clone()).or_default();
        let egress = entry.egress.entry(header.from_task.clone()).or_default();
        egress.expected = Some(header.file_count);
        if header.file_count > 0 && egress.files.insert(header.file_name.clone()) {
            entry.outputs.insert(relative);
        }
        entry.last_delivery = entry.last_delivery.max(now);
        self.settle(&header.input_id)
    }

    /// Records a task's report; true if that finished the input.
    pub fn report(&mut self, report: TaskReport) -> bool {
        let input = report.input_id.clone();
        let entry = self.inputs.entry(input.clone()).or_default();
        if !report.error.is_empty() && entry.result.is_none() {
            let error = format!("task {} on {}: {}", report.task, report.node, report.error);
            entry.reports.insert(report.task.clone(), report);
            return self.fail(&input, error);
        }
        entry.reports.insert(report.task.clone(), report);
        self.settle(&input)
    }

    /// Fails an input that has not finished; true if it had not.
    pub fn fail(&mut self, input: &str, error: String) -> bool {
        let entry = self.inputs.entry(input.to_string()).or_default();
        if entry.result.is_some() {
            return false;
        }
        let result = InputResult {
            input_id: input.to_string(),
            ok: false,
            makespan_ms: 0.0,
            outputs: entry.outputs.iter().cloned().collect(),
            error,
            tasks: entry.reports.values().cloned().collect(),
        };
        self.publish(input, result);
        true
    }

    /// Done once every egress task delivered all it announced and every
    /// task reported its timings.
    fn settle(&mut self, input: &str) -> bool {
        let Some(entry) = self.inputs.get(input) else {
            return false;
        };
        if entry.result.is_some() {
            return false;
        }
        let delivered = self.egress.iter().all(|task| {
            entry
                .egress
                .get(task)
                .is_some_and(|e| e.expected.is_some_and(|n| e.files.len() >= n as usize))
        });
        let reported = self.tasks.iter().all(|t| entry.reports.contains_key(t));
        if !(delivered && reported) {
            return false;
        }
        let result = InputResult {
            input_id: input.to_string(),
            ok: true,
            makespan_ms: entry
                .submitted_at
                .map_or(0.0, |s| ms_between(s, entry.last_delivery)),
            outputs: entry.outputs.iter().cloned().collect(),
            error: String::new(),
            tasks: entry.reports.values().cloned().collect(),
        };
        self.publish(input, result);
        true
    }

    /// Raises the pass of every unfinished input and records why; the
    /// inputs, to be fed again.
    pub fn replay(&mut self, reason: String, at: i64) -> Vec<String> {
        let inputs = self.unfinished();
        for input in &inputs {
            if let Some(entry) = self.inputs.get_mut(input) {
                entry.attempt += 1;
            }
        }
        self.recoveries.push(Recovery {
            reason,
            at_unix_nanos: at,
            inputs: inputs.clone(),
        });
        inputs
    }

    /// The inputs the latest replay fed again.
    pub fn last_replayed(&self) -> Vec<String> {
        self.recoveries
            .last()
            .map(|r| r.inputs.clone())
            .unwrap_or_default()
    }

    /// The pass `input` is fed as now.
    pub fn attempt(&self, input: &str) -> u32 {
        self.inputs.get(input).map_or(0, |i| i.attempt)
    }

    /// Inputs submitted that have not finished, in id order: what a
    /// restarted circe-home feeds again.
    pub fn unfinished(&self) -> Vec<String> {
        self.inputs
            .iter()
            .filter(|(_, i)| i.submitted_at.is_some() && i.result.is_none())
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn publish(&mut self, input: &str, result: InputResult) {
        if let Some(entry) = self.inputs.get_mut(input) {
            entry.result = Some(result.clone());
        }
        self.finished.push(input.to_string());
        let _ = self.results.send(result);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<InputResult> {
        self.results.subscribe()
    }

    pub fn finished(&self) -> Vec<InputResult> {
        self.finished
            .iter()
            .filter_map(|i| self.inputs.get(i)?.result.clone())
            .collect()
    }

    pub fn status(&self) -> HomeStatus {
        let results = self.finished();
        let done = results.iter().filter(|r| r.ok).count() as u64;
        let failed = results.len() as u64 - done;
        let submitted = self.inputs.values().filter(|i| i.submitted_at.is_some()).count() as u64;
        HomeStatus {
            submitted,
            done,
            failed,
            in_flight: submitted.saturating_sub(done + failed),
            results,
            recoveries: self.recoveries.clone(),
        }
    }
}
