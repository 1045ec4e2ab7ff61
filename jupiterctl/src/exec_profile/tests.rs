//! The profiler's rules without real tasks: DAG order and parallel starts,
//! estimates on timeout, loud failures, and the cache's hits and misses.

use super::dag::{self, Outcome, Produced};
use super::*;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// An app in `dir` whose tasks (name, children, extra yaml) all run `t.sh`.
fn app(dir: &Path, tasks: &[(&str, &[&str], &str)]) -> App {
    let script = dir.join("t.sh");
    std::fs::write(&script, "#!/bin/sh\n").expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::create_dir_all(dir.join("inputs")).expect("inputs");
    std::fs::write(dir.join("inputs/x.txt"), "x").expect("sample");
    let mut yaml = String::from("name: t\nsample_inputs: inputs\ntasks:\n");
    for (name, children, extra) in tasks {
        yaml.push_str(&format!(
            "  - {{name: {name}, command: ./t.sh, children: [{}]{extra}}}\n",
            children.join(", ")
        ));
    }
    std::fs::write(dir.join("app.yaml"), yaml).expect("app.yaml");
    App::load(dir).expect("app loads")
}

/// a -> {b, c} -> d
fn diamond(dir: &Path) -> App {
    app(
        dir,
        &[
            ("a", &["b", "c"], ""),
            ("b", &["d"], ""),
            ("c", &["d"], ""),
            ("d", &[], ""),
        ],
    )
}

/// What [`fake`] returns for a task.
type FakeRun<'a> = std::pin::Pin<Box<dyn Future<Output = Result<Produced, String>> + 'a>>;

/// A fake run that sleeps `secs(task)`, fails where `fails(task)`, and logs
/// "start X" / "end X"; each child gets one file named after the task.
fn fake<'a>(
    log: Arc<Mutex<Vec<String>>>,
    secs: impl Fn(&str) -> f64 + 'a,
    fails: impl Fn(&str) -> bool + 'a,
) -> impl FnMut(&'a TaskSpec, Vec<PathBuf>) -> FakeRun<'a> + 'a {
    move |task, inputs| {
        let log = log.clone();
        let wait = secs(&task.name);
        let fail = fails(&task.name);
        Box::pin(async move {
            log.lock()
                .expect("log")
                .push(format!("start {} {}", task.name, inputs.len()));
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            log.lock().expect("log").push(format!("end {}", task.name));
            if fail {
                return Err(format!("{} exited with exit status: 1: boom", task.name));
            }
            Ok(Produced {
                per_child: task
                    .children
                    .iter()
                    .map(|c| (c.clone(), vec![PathBuf::from(&task.name)]))
                    .collect(),
                output_bytes: 10,
            })
        })
    }
}

/// Runs every task of `app` through [`dag::run`] with [`fake`] tasks:
/// the outcomes, and the log of starts and ends.
async fn run_fake(
    app: &App,
    slots: usize,
    timeout: Duration,
    secs: impl Fn(&str) -> f64,
    fails: impl Fn(&str) -> bool,
) -> (BTreeMap<String, Outcome>, Vec<String>) {
    let order = app.topological_order();
    let log = Arc::new(Mutex::new(Vec::new()));
    let outcomes = dag::run(
        &order,
        Path::new("x"),
        slots,
        timeout,
        fake(log.clone(), secs, fails),
    )
    .await;
    let log = log.lock().expect("log").clone();
    (outcomes, log)
}

/// A profile of `tasks` taken on sample input x.txt, as `measure` makes one.
fn taken(tasks: BTreeMap<String, TaskProfile>, speed: f64, timeout_secs: f64) -> ExecProfile {
    ExecProfile {
        app: "t".into(),
        sample_input: Some("x.txt".into()),
        place: "here".into(),
        speed,
        slots: 2,
        timeout_secs,
        elapsed_secs: 0.1,
        tasks,
    }
}

fn position(log: &[String], entry: &str) -> usize {
    log.iter()
        .position(|l| l.starts_with(entry))
        .unwrap_or_else(|| panic!("{entry} in {log:?}"))
}

#[tokio::test]
async fn independent_tasks_start_together_and_a_join_waits_for_both() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = diamond(dir.path());
    let started = Instant::now();
    let (outcomes, log) = run_fake(&app, 2, Duration::from_secs(10), |_| 0.2, |_| false).await;
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        outcomes.values().all(|o| matches!(o, Outcome::Ran { .. })),
        "{outcomes:?}"
    );
    // b and c both start before either ends: side by side.
    assert!(position(&log, "start b") < position(&log, "end b"));
    assert!(position(&log, "start c") < position(&log, "end b"), "{log:?}");
    assert!(position(&log, "start b") < position(&log, "end c"), "{log:?}");
    // d only after both, with both parents' files.
    assert!(position(&log, "start d") > position(&log, "end b"));
    assert!(position(&log, "start d") > position(&log, "end c"));
    assert!(log.contains(&"start d 2".to_string()), "{log:?}");
    assert!(log.contains(&"start a 1".to_string()), "the sample: {log:?}");
    // Three levels of 0.2 s, not four tasks in a row.
    assert!(elapsed < 0.75, "took {elapsed:.2} s");
}

#[tokio::test]
async fn one_slot_runs_one_task_at_a_time() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = diamond(dir.path());
    let (_, log) = run_fake(&app, 1, Duration::from_secs(10), |_| 0.01, |_| false).await;
    for pair in log.chunks(2) {
        let task = pair[0].split(' ').nth(1).expect("name");
        assert_eq!(pair[1], format!("end {task}"), "never two at once: {log:?}");
    }
}

#[tokio::test]
async fn the_timeout_estimates_what_did_not_finish_and_says_so() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = diamond(dir.path());
    let started = Instant::now();
    // a and b are quick, c hangs: d is never reached.
    let slow_c = |t: &str| if t == "c" { 30.0 } else { 0.05 };
    let (outcomes, _) = run_fake(&app, 2, Duration::from_millis(400), slow_c, |_| false).await;
    assert!(started.elapsed() < Duration::from_secs(2), "bounded");
    assert!(
        matches!(outcomes["c"], Outcome::OutOfTime { ran: Some(r) } if r > 0.2),
        "{outcomes:?}"
    );
    assert_eq!(outcomes["d"], Outcome::OutOfTime { ran: None });
    let profiles = estimate::profile_of(&app, &outcomes, 2.0, Duration::from_millis(400), "?");
    assert_eq!(profiles["a"].source, Source::Measured);
    assert_eq!(profiles["d"].source, Source::Estimated);
    // d: the median of a and b (speed 2: about 0.1 s each), not 1 s.
    assert!(profiles["d"].cost_secs < 0.5, "{:?}", profiles["d"]);
    // c ran 0.35 s before being cut: at least that, normalised.
    assert!(profiles["c"].cost_secs >= 0.6, "{:?}", profiles["c"]);
    assert!(profiles["c"].note.as_deref().unwrap_or("").contains("timeout"));
    let profile = taken(profiles, 2.0, 0.4);
    let warnings = report::guesses(&profile).join("\n");
    assert!(warnings.contains("2 tasks were not profiled"), "{warnings}");
    assert!(
        warnings.contains("  c: ") && warnings.contains("  d: "),
        "{warnings}"
    );
    assert!(!profile.complete());
}

#[tokio::test]
async fn a_failing_task_is_named_with_its_error_and_its_descendants_estimated() {
    let dir = tempfile::tempdir().expect("tmp");
    // b fails; c still runs; d (child of b) is estimated; e declared.
    let app = app(
        dir.path(),
        &[
            ("a", &["b", "c"], ""),
            ("b", &["d"], ""),
            ("c", &[], ""),
            ("d", &[], ", cost: 7.5"),
        ],
    );
    let (outcomes, _) = run_fake(&app, 2, Duration::from_secs(10), |_| 0.01, |t| t == "b").await;
    assert!(matches!(outcomes["c"], Outcome::Ran { .. }), "{outcomes:?}");
    assert_eq!(outcomes["d"], Outcome::Skipped { parent: "b".into() });
    let profiles = estimate::profile_of(&app, &outcomes, 1.0, Duration::from_secs(10), "?");
    assert_eq!(profiles["b"].source, Source::Failed);
    assert!(profiles["b"].note.as_deref().unwrap_or("").contains("boom"));
    // Never the silent 1 s: the median of what ran (about 10 ms).
    assert!(profiles["b"].cost_secs < 0.5, "{:?}", profiles["b"]);
    // A declared cost wins even for an estimated task.
    assert_eq!(profiles["d"].source, Source::Estimated);
    assert_eq!(profiles["d"].cost_secs, 7.5);
    assert!(profiles["d"]
        .note
        .as_deref()
        .unwrap_or("")
        .contains("task b failed"));
    let profile = taken(profiles, 1.0, 10.0);
    let warnings = report::guesses(&profile).join("\n");
    assert!(
        warnings.contains("warning: task b failed while profiling on sample input x.txt: b exited"),
        "{warnings}"
    );
    assert!(warnings.contains("it counts as an estimated"), "{warnings}");
    assert!(warnings.contains("  d: 7.5 s"), "{warnings}");
    let table = report::table(&profile);
    assert!(table.contains("failed (b exited"), "{table}");
}

#[test]
fn only_undeclared_tasks_and_their_ancestors_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(
        dir.path(),
        &[
            ("a", &["b"], ", cost: 1, output_bytes: 2"),
            ("b", &["c"], ""),
            ("c", &[], ", cost: 1, output_bytes: 0"),
        ],
    );
    let run: Vec<String> = tasks_to_run(&app).into_iter().collect();
    assert_eq!(run, ["a", "b"]);
}

/// A measured profile of every task of `app`, as a backend would return.
fn measured(app: &App) -> ExecProfile {
    ExecProfile {
        app: app.name.clone(),
        sample_input: Some("x.txt".into()),
        place: "here".into(),
        speed: 1.0,
        slots: 1,
        timeout_secs: 60.0,
        elapsed_secs: 0.0,
        tasks: app
            .tasks
            .iter()
            .map(|t| {
                let profile = TaskProfile {
                    cost_secs: 3.0,
                    output_bytes: 4,
                    source: Source::Measured,
                    seconds: Some(3.0),
                    note: None,
                };
                (t.name.clone(), profile)
            })
            .collect(),
    }
}

#[tokio::test]
async fn the_cache_hits_for_the_same_content_and_misses_for_changed_content() {
    let dir = tempfile::tempdir().expect("tmp");
    let cache = tempfile::tempdir().expect("cache");
    let app = diamond(dir.path());
    let options = ProfileOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..Default::default()
    };
    let calls = std::cell::Cell::new(0);
    let measure = || async {
        calls.set(calls.get() + 1);
        Ok(measured(&app))
    };
    let first = obtain(&app, &options, measure).await;
    assert_eq!((calls.get(), first.count(Source::Measured)), (1, 4));
    // Same content: no run, every task cached with the same numbers.
    let again = obtain(&app, &options, measure).await;
    assert_eq!(calls.get(), 1, "a hit runs nothing");
    assert_eq!(again.count(Source::Cached), 4);
    assert_eq!(again.tasks["b"].cost_secs, 3.0);
    // --reprofile measures again.
    let forced = ProfileOptions {
        reprofile: true,
        ..options.clone()
    };
    obtain(&app, &forced, measure).await;
    assert_eq!(calls.get(), 2);
    // A changed script is another app.
    std::fs::write(dir.path().join("t.sh"), "#!/bin/sh\necho changed\n").expect("edit");
    obtain(&app, &options, measure).await;
    assert_eq!(calls.get(), 3, "changed content misses");
    // So is a changed sample input.
    std::fs::write(dir.path().join("inputs/x.txt"), "y").expect("edit");
    obtain(&app, &options, measure).await;
    assert_eq!(calls.get(), 4);
    obtain(&app, &options, measure).await;
    assert_eq!(calls.get(), 4, "and is cached in turn");
}

#[tokio::test]
async fn guesses_are_not_cached_and_a_zero_timeout_runs_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let cache = tempfile::tempdir().expect("cache");
    let app = diamond(dir.path());
    let options = ProfileOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..Default::default()
    };
    let calls = std::cell::Cell::new(0);
    let partial = || async {
        calls.set(calls.get() + 1);
        let mut p = measured(&app);
        if let Some(d) = p.tasks.get_mut("d") {
            d.source = Source::Estimated;
        }
        Ok(p)
    };
    obtain(&app, &options, partial).await;
    obtain(&app, &options, partial).await;
    assert_eq!(calls.get(), 2, "an incomplete profile is not cached");
    let zero = ProfileOptions {
        timeout: Duration::ZERO,
        ..options.clone()
    };
    let profile = obtain(&app, &zero, partial).await;
    assert_eq!(calls.get(), 2, "--profile-timeout 0 runs nothing");
    assert_eq!(profile.count(Source::Estimated), 4);
    assert_eq!(profile.tasks["a"].cost_secs, estimate::FALLBACK_COST_SECS);
    // A backend that cannot profile leaves estimates, not an error.
    let broken = obtain(&app, &options, || async {
        Err(ProfileError::Elsewhere {
            place: "a container".into(),
            detail: "no image".into(),
        })
    })
    .await;
    assert_eq!(broken.count(Source::Estimated), 4);
}
