//! One input's path through the DAG as a tree for the terminal (`jupiterctl
//! trace`): the input, each task in the order it started, and under each its
//! queue wait, run and transfer, with offsets from the input's submission.
//! These are the timings circe-home records (and the OTLP spans carry), so a
//! user without Grafana sees the same picture.

use jupiter_common::proto::circe::home::v1::{InputResult, TaskReport};
use std::fmt::Write;

/// Milliseconds of `nanos` after `origin`, when both are known (0 is what a
/// worker that predates the timestamps reports).
fn offset_ms(nanos: i64, origin: i64) -> Option<f64> {
    (nanos != 0 && origin != 0).then(|| nanos.saturating_sub(origin) as f64 / 1e6)
}

/// Where a task's part of an input begins (its queue wait) and how long it
/// lasts (to the end of its run or of its transfer, whichever is later), in
/// Unix nanoseconds and milliseconds. Without timestamps: no start, and the
/// sum of its durations.
pub fn task_span(report: &TaskReport) -> (Option<i64>, f64) {
    let parts = report.queue_wait_ms + report.run_ms + report.transfer_ms;
    if report.started_at_unix_nanos == 0 {
        return (None, parts);
    }
    let begin = report.started_at_unix_nanos - (report.queue_wait_ms * 1e6) as i64;
    let run_end = report.started_at_unix_nanos as f64 + report.run_ms * 1e6;
    let sent_end = if report.sent_at_unix_nanos == 0 {
        run_end
    } else {
        report.sent_at_unix_nanos as f64 + report.transfer_ms * 1e6
    };
    (Some(begin), (run_end.max(sent_end) - begin as f64) / 1e6)
}

/// A task's reports in the order they started; those without timestamps
/// last, in the order circe-home has them.
pub fn in_start_order(result: &InputResult) -> Vec<&TaskReport> {
    let mut tasks: Vec<&TaskReport> = result.tasks.iter().collect();
    // A stable sort keeps circe-home's order among equal (or unknown) starts.
    tasks.sort_by_key(|t| task_span(t).0.unwrap_or(i64::MAX));
    tasks
}

/// A Unix-nanosecond timestamp as `2024-05-01 12:00:00.123 UTC` (no
/// time-zone database needed: the proleptic Gregorian calendar from days
/// since the epoch).
pub fn utc(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let millis = nanos.rem_euclid(1_000_000_000) / 1_000_000;
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03} UTC",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// One line of the tree before its columns are aligned.
struct Line {
    label: String,
    offset: Option<f64>,
    duration: Option<f64>,
    note: String,
}

/// The span tree of one input:
///
/// ```text
/// input in1.txt         +0.0 ms  152.3 ms  ok (submitted 2024-05-01 12:00:00.000 UTC)
/// ├─ task1 @node0       +1.2 ms   60.1 ms
/// │  ├─ queue wait      +1.2 ms    0.1 ms
/// │  ├─ run             +1.3 ms   55.0 ms
/// │  └─ transfer       +56.3 ms    5.0 ms
/// ```
///
/// Offsets are from the input's submission; `?` where a worker reported no
/// timestamps (it predates them).
pub fn render(result: &InputResult) -> String {
    let origin = result.submitted_at_unix_nanos;
    let status = if result.ok {
        "ok".to_string()
    } else {
        format!("FAILED: {}", result.error)
    };
    let submitted = if origin == 0 {
        String::new()
    } else {
        format!(" (submitted {})", utc(origin))
    };
    let mut lines = vec![Line {
        label: format!("input {}", result.input_id),
        offset: (origin != 0).then_some(0.0),
        duration: Some(result.makespan_ms),
        note: format!("{status}{submitted}"),
    }];
    let tasks = in_start_order(result);
    for (i, report) in tasks.iter().enumerate() {
        let last = i + 1 == tasks.len();
        let (branch, stem) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        let (begin, duration) = task_span(report);
        lines.push(Line {
            label: format!("{branch}{} @{}", report.task, report.node),
            offset: begin.and_then(|b| offset_ms(b, origin)),
            duration: Some(duration),
            note: if report.error.is_empty() {
                String::new()
            } else {
                "FAILED".to_string()
            },
        });
        let started = offset_ms(report.started_at_unix_nanos, origin);
        let mut parts = vec![
            (
                "queue wait",
                started.map(|s| s - report.queue_wait_ms),
                report.queue_wait_ms,
            ),
            ("run", started, report.run_ms),
            (
                "transfer",
                offset_ms(report.sent_at_unix_nanos, origin),
                report.transfer_ms,
            ),
        ];
        // A failed task has no transfer; it has an error to show instead.
        if !report.error.is_empty() {
            parts.pop();
        }
        let count = parts.len() + usize::from(!report.error.is_empty());
        for (j, (name, offset, duration)) in parts.into_iter().enumerate() {
            let twig = if j + 1 == count { "└─ " } else { "├─ " };
            lines.push(Line {
                label: format!("{stem}{twig}{name}"),
                offset,
                duration: Some(duration),
                note: String::new(),
            });
        }
        if !report.error.is_empty() {
            lines.push(Line {
                label: format!("{stem}└─ error"),
                offset: None,
                duration: None,
                note: report.error.clone(),
            });
        }
    }
    if tasks.is_empty() {
        lines.push(Line {
            label: "└─ (no task reported for this input)".to_string(),
            offset: None,
            duration: None,
            note: String::new(),
        });
    }
    align(&lines)
}

/// The lines with their label, offset and duration columns aligned.
fn align(lines: &[Line]) -> String {
    let offset_text = |l: &Line| match (l.offset, l.duration) {
        (Some(o), _) => format!("{o:+.1} ms"),
        (None, Some(_)) => "?".to_string(),
        (None, None) => String::new(),
    };
    let duration_text = |l: &Line| l.duration.map(|d| format!("{d:.1} ms")).unwrap_or_default();
    // Padding counts chars, and the tree's box-drawing characters are one each.
    let label_width = lines.iter().map(|l| l.label.chars().count()).max().unwrap_or(0);
    let offset_width = lines.iter().map(|l| offset_text(l).len()).max().unwrap_or(0);
    let duration_width = lines.iter().map(|l| duration_text(l).len()).max().unwrap_or(0);
    let mut out = String::new();
    for line in lines {
        let mut text = format!(
            "{:<label_width$}  {:>offset_width$}  {:>duration_width$}",
            line.label,
            offset_text(line),
            duration_text(line)
        );
        if !line.note.is_empty() {
            let _ = write!(text, "  {}", line.note);
        }
        let _ = writeln!(out, "{}", text.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000_000_000;
    const MS: i64 = 1_000_000;

    fn report(
        task: &str,
        node: &str,
        started: i64,
        qw: f64,
        run: f64,
        sent: i64,
        transfer: f64,
    ) -> TaskReport {
        TaskReport {
            input_id: "in1.txt".into(),
            task: task.into(),
            node: node.into(),
            queue_wait_ms: qw,
            run_ms: run,
            transfer_ms: transfer,
            started_at_unix_nanos: started,
            sent_at_unix_nanos: sent,
            ..Default::default()
        }
    }

    #[test]
    fn the_tree_lists_tasks_in_start_order_with_offsets_from_submission() {
        let result = InputResult {
            input_id: "in1.txt".into(),
            ok: true,
            makespan_ms: 152.3,
            submitted_at_unix_nanos: T0,
            tasks: vec![
                // Reported first, started second.
                report("task2", "node1", T0 + 70 * MS, 2.0, 80.0, T0 + 150 * MS, 2.0),
                report("task1", "node0", T0 + 2 * MS, 1.0, 55.0, T0 + 57 * MS, 5.0),
            ],
            ..Default::default()
        };
        let tree = render(&result);
        let expected = "\
input in1.txt       +0.0 ms  152.3 ms  ok (submitted 2023-11-14 22:13:20.000 UTC)
├─ task1 @node0     +1.0 ms   61.0 ms
│  ├─ queue wait    +1.0 ms    1.0 ms
│  ├─ run           +2.0 ms   55.0 ms
│  └─ transfer     +57.0 ms    5.0 ms
└─ task2 @node1    +68.0 ms   84.0 ms
   ├─ queue wait   +68.0 ms    2.0 ms
   ├─ run          +70.0 ms   80.0 ms
   └─ transfer    +150.0 ms    2.0 ms
";
        assert_eq!(tree, expected, "\n{tree}");
    }

    #[test]
    fn reports_without_timestamps_and_failures_still_make_a_tree() {
        let mut failed = report("task1", "node0", 0, 1.0, 2.0, 0, 0.0);
        failed.error = "exit status 1".into();
        let result = InputResult {
            input_id: "old.txt".into(),
            ok: false,
            error: "task1 failed".into(),
            makespan_ms: 9.0,
            tasks: vec![failed],
            ..Default::default()
        };
        let tree = render(&result);
        assert!(tree.starts_with("input old.txt"), "{tree}");
        assert!(tree.contains("FAILED: task1 failed"), "{tree}");
        assert!(tree.contains("└─ task1 @node0"), "{tree}");
        assert!(tree.contains("   ├─ queue wait  ?"), "{tree}");
        assert!(
            tree.contains("   └─ error") && tree.contains("exit status 1"),
            "{tree}"
        );
        assert!(!tree.contains("transfer"), "{tree}");
        let empty = render(&InputResult::default());
        assert!(empty.contains("no task reported"), "{empty}");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc(T0 + 123 * MS), "2023-11-14 22:13:20.123 UTC");
        assert_eq!(utc(951_782_400 * 1_000_000_000), "2000-02-29 00:00:00.000 UTC");
    }
}
