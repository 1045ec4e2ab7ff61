//! What circe-home knows of every input: when it came in, which egress
//! outputs arrived, each task's report, which placement it follows and how
//! it ended; and every placement so far.

use jupiter_common::clock::ms_between;
use jupiter_common::proto::circe::home::v1::{HomeStatus, InputResult, PlacementInfo, Recovery, TaskReport};
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
    /// The placement its current pass follows.
    placement: u32,
}

pub struct Ledger {
    egress: Vec<String>,
    tasks: Vec<String>,
    inputs: BTreeMap<String, Input>,
    finished: Vec<String>,
    results: broadcast::Sender<InputResult>,
    recoveries: Vec<Recovery>,
    /// Every placement after the first, oldest first: the one at index i
    /// is placement i + 1 (counts are filled in by `status`).
    placements: Vec<PlacementInfo>,
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
            placements: Vec::new(),
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

    /// Records a submitted input and the placement it was given.
    pub fn start(&mut self, input: &str, now: i64, placement: u32) {
        let entry = self.inputs.entry(input.to_string()).or_default();
        entry.submitted_at = Some(now);
        entry.placement = placement;
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
            if report.attempt < entry.attempt {
                // A pass a replay superseded (it may have lost files to the
                // retirement of superseded passes): the replayed pass decides.
                tracing::debug!(input, task = %report.task, error = %report.error, "a superseded pass failed");
                return false;
            }
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
            placement: entry.placement,
            submitted_at_unix_nanos: entry.submitted_at.unwrap_or_default(),
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
            placement: entry.placement,
            submitted_at_unix_nanos: entry.submitted_at.unwrap_or_default(),
        };
        self.publish(input, result);
        true
    }

    /// Raises the pass of every unfinished input, moves it to the current
    /// placement (its tasks may have moved since it started) and records
    /// why; the inputs, to be fed again.
    pub fn replay(&mut self, reason: String, at: i64) -> Vec<String> {
        let inputs = self.unfinished();
        let placement = self.placement();
        for input in &inputs {
            if let Some(entry) = self.inputs.get_mut(input) {
                entry.attempt += 1;
                entry.placement = placement;
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

    /// The placement `input` is fed under now.
    pub fn placement_of(&self, input: &str) -> u32 {
        self.inputs.get(input).map_or(0, |i| i.placement)
    }

    /// The placement new inputs follow: 0 until the first `place`.
    pub fn placement(&self) -> u32 {
        self.placements.len() as u32
    }

    /// Records placement `placement` (the ingress tasks it moved, and why);
    /// false, changing nothing, unless it is the one after the current.
    pub fn place(
        &mut self,
        placement: u32,
        ingress: HashMap<String, String>,
        reason: String,
        at: i64,
    ) -> bool {
        if placement != self.placement() + 1 {
            return false;
        }
        self.placements.push(PlacementInfo {
            placement,
            reason,
            at_unix_nanos: at,
            ingress,
            unfinished: 0,
            inputs: 0,
        });
        true
    }

    /// The ingress tasks `placement` moved (none for placement 0).
    pub fn moved(&self, placement: u32) -> Option<&HashMap<String, String>> {
        let index = placement.checked_sub(1)?;
        self.placements.get(index as usize).map(|p| &p.ingress)
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

    /// How `input` finished, if it did.
    pub fn result(&self, input: &str) -> Option<&InputResult> {
        self.inputs.get(input)?.result.as_ref()
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
            placements: self.placements_counted(),
        }
    }

    /// Every placement after the first, with how many submitted inputs
    /// follow it and how many of those have not finished.
    fn placements_counted(&self) -> Vec<PlacementInfo> {
        let mut placements = self.placements.clone();
        for input in self.inputs.values().filter(|i| i.submitted_at.is_some()) {
            let index = input.placement.checked_sub(1);
            let Some(info) = index.and_then(|i| placements.get_mut(i as usize)) else {
                continue;
            };
            info.inputs += 1;
            if input.result.is_none() {
                info.unfinished += 1;
            }
        }
        placements
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> Ledger {
        Ledger::new(vec!["egress".into()], vec!["egress".into()])
    }

    /// Submits `input` as circe-home does: under the current placement.
    fn submit(ledger: &mut Ledger, input: &str) {
        assert!(ledger.reserve(input));
        let placement = ledger.placement();
        ledger.start(input, 1, placement);
    }

    /// Delivers `input`'s one output and its one report; true if that
    /// finished it.
    fn finish(ledger: &mut Ledger, input: &str) -> bool {
        let header = FileHeader {
            input_id: input.into(),
            from_task: "egress".into(),
            file_name: "out".into(),
            file_count: 1,
            ..FileHeader::default()
        };
        ledger.delivered(&header, format!("{input}/out"), 2);
        ledger.report(TaskReport {
            input_id: input.into(),
            task: "egress".into(),
            ..TaskReport::default()
        })
    }

    fn place(ledger: &mut Ledger, placement: u32) -> bool {
        let ingress = HashMap::from([("ingress".to_string(), format!("http://w{placement}:7301"))]);
        ledger.place(placement, ingress, format!("drift {placement}"), 5)
    }

    /// Per placement after the first: (placement, inputs, unfinished).
    fn counts(ledger: &Ledger) -> Vec<(u32, u64, u64)> {
        let status = ledger.status();
        status
            .placements
            .iter()
            .map(|p| (p.placement, p.inputs, p.unfinished))
            .collect()
    }

    fn placement_of_result(ledger: &Ledger, input: &str) -> Option<u32> {
        let results = ledger.finished();
        results.iter().find(|r| r.input_id == input).map(|r| r.placement)
    }

    #[test]
    fn inputs_follow_the_placement_current_when_they_were_submitted() {
        let mut ledger = ledger();
        assert_eq!(ledger.placement(), 0);
        submit(&mut ledger, "a");
        assert!(place(&mut ledger, 1));
        submit(&mut ledger, "b");
        assert_eq!((ledger.placement_of("a"), ledger.placement_of("b")), (0, 1));
        assert!(finish(&mut ledger, "a"));
        assert!(finish(&mut ledger, "b"));
        assert_eq!(placement_of_result(&ledger, "a"), Some(0));
        assert_eq!(placement_of_result(&ledger, "b"), Some(1));
    }

    #[test]
    fn only_the_next_placement_is_taken() {
        let mut ledger = ledger();
        assert!(!place(&mut ledger, 0));
        assert!(!place(&mut ledger, 2));
        assert!(place(&mut ledger, 1));
        assert!(!place(&mut ledger, 1));
        assert_eq!(ledger.placement(), 1);
        assert_eq!(ledger.moved(0), None);
        assert_eq!(
            ledger.moved(1).and_then(|m| m.get("ingress")).map(String::as_str),
            Some("http://w1:7301")
        );
        assert_eq!(ledger.status().placements[0].reason, "drift 1");
    }

    #[test]
    fn a_replay_moves_unfinished_inputs_to_the_current_placement() {
        let mut ledger = ledger();
        submit(&mut ledger, "a");
        submit(&mut ledger, "b");
        assert!(finish(&mut ledger, "a"));
        assert!(place(&mut ledger, 1));
        assert_eq!(ledger.placement_of("b"), 0);
        assert_eq!(ledger.replay("node lost".into(), 3), ["b"]);
        assert_eq!((ledger.placement_of("b"), ledger.attempt("b")), (1, 1));
        assert_eq!(ledger.placement_of("a"), 0);
        assert!(ledger.fail("b", "boom".into()));
        assert_eq!(placement_of_result(&ledger, "a"), Some(0));
        assert_eq!(placement_of_result(&ledger, "b"), Some(1));
    }

    #[test]
    fn status_counts_the_inputs_of_each_placement_as_they_finish() {
        let mut ledger = ledger();
        submit(&mut ledger, "first");
        assert!(counts(&ledger).is_empty());
        assert!(place(&mut ledger, 1));
        submit(&mut ledger, "a");
        submit(&mut ledger, "b");
        assert!(place(&mut ledger, 2));
        submit(&mut ledger, "c");
        // Reserved but not (yet) submitted: follows nothing.
        assert!(ledger.reserve("d"));
        assert_eq!(counts(&ledger), [(1, 2, 2), (2, 1, 1)]);
        assert!(finish(&mut ledger, "a"));
        assert_eq!(counts(&ledger), [(1, 2, 1), (2, 1, 1)]);
        assert!(ledger.fail("c", "boom".into()));
        assert!(finish(&mut ledger, "first"));
        assert_eq!(counts(&ledger), [(1, 2, 1), (2, 1, 0)]);
    }

    #[test]
    fn a_failure_of_a_pass_a_replay_superseded_is_not_the_inputs() {
        let mut ledger = ledger();
        submit(&mut ledger, "a");
        assert_eq!(ledger.replay("node lost".into(), 3), vec!["a".to_string()]);
        assert_eq!(ledger.attempt("a"), 1);
        let failed = |attempt| TaskReport {
            input_id: "a".into(),
            task: "join".into(),
            error: "its files were retired".into(),
            attempt,
            ..TaskReport::default()
        };
        assert!(!ledger.report(failed(0)), "the superseded pass fails quietly");
        assert_eq!(ledger.status().failed, 0);
        assert!(finish(&mut ledger, "a"), "the replayed pass finishes it");
        assert!(ledger.status().results.iter().all(|r| r.ok));

        submit(&mut ledger, "b");
        let mut b = failed(0);
        b.input_id = "b".into();
        assert!(ledger.report(b), "the current pass's failure is the input's");
    }
}
