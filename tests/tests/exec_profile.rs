//! The execution profile with real processes: independent tasks run side
//! by side (two tasks of 1 s each take about 1 s, not 2), a task that exits
//! 1 is reported as failed with its error and its child as estimated, and
//! on Docker the profile is taken in a container limited like the fastest
//! node (skipped loudly without an engine).

use jupiter_common::app::App;
use jupiter_tests::docker::{engine_or_skip, ensure_images, test_tag, three_nodes};
use jupiterctl::docker::{DockerConfig, Images};
use jupiterctl::exec_profile::{self, ProfileOptions, Source};
use std::path::Path;
use std::time::{Duration, Instant};

/// An app in `dir` from its app.yaml and scripts (name, body), with one
/// sample input.
fn app(dir: &Path, yaml: &str, scripts: &[(&str, &str)]) -> App {
    use std::os::unix::fs::PermissionsExt;
    for (name, body) in scripts {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::create_dir_all(dir.join("inputs")).expect("inputs");
    std::fs::write(dir.join("inputs/in1.txt"), "hello\n").expect("sample");
    std::fs::write(dir.join("app.yaml"), yaml).expect("app.yaml");
    App::load(dir).expect("app loads")
}

/// Copies its input to its output, after a second.
const SLEEPY: &str = "sleep 1; cat \"$@\" > \"$JUPITER_OUTPUT_DIR/$JUPITER_TASK\"";

#[tokio::test]
async fn independent_tasks_are_profiled_side_by_side() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(
        dir.path(),
        "name: two\nsample_inputs: inputs\ntasks:\n  - {name: left, command: ./sleepy.sh}\n  \
         - {name: right, command: ./sleepy.sh}\n",
        &[("sleepy.sh", SLEEPY)],
    );
    let options = ProfileOptions {
        // Two slots whatever this machine has: the point is the DAG.
        slots: Some(2),
        ..Default::default()
    };
    let started = Instant::now();
    let profile = exec_profile::measure_here(&app, &options)
        .await
        .expect("profiled");
    let took = started.elapsed().as_secs_f64();
    assert!(took < 1.8, "two 1 s tasks in parallel took {took:.2} s");
    for task in ["left", "right"] {
        let t = &profile.tasks[task];
        assert_eq!(t.source, Source::Measured, "{task}: {t:?}");
        let seconds = t.seconds.expect("measured seconds");
        assert!((0.9..1.7).contains(&seconds), "{task} took {seconds} s");
        assert!((t.cost_secs - seconds * profile.speed).abs() < 1e-9, "normalised");
    }
    assert!(profile.complete());
}

#[tokio::test]
async fn a_task_that_exits_1_is_reported_failed_with_its_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(
        dir.path(),
        "name: broken\nsample_inputs: inputs\ntasks:\n  - {name: first, command: ./ok.sh, children: [bad]}\n  \
         - {name: bad, command: ./bad.sh, children: [after]}\n  - {name: after, command: ./ok.sh}\n",
        &[
            ("ok.sh", "cat \"$@\" > \"$JUPITER_OUTPUT_DIR/$JUPITER_TASK\""),
            ("bad.sh", "echo 'cannot parse the frame' >&2; exit 1"),
        ],
    );
    let profile = exec_profile::measure_here(&app, &ProfileOptions::default())
        .await
        .expect("a failing task is a report, not an error");
    assert_eq!(profile.tasks["first"].source, Source::Measured);
    let bad = &profile.tasks["bad"];
    assert_eq!(bad.source, Source::Failed, "{bad:?}");
    assert!(
        bad.note
            .as_deref()
            .unwrap_or("")
            .contains("cannot parse the frame"),
        "its error: {bad:?}"
    );
    let after = &profile.tasks["after"];
    assert_eq!(after.source, Source::Estimated, "{after:?}");
    assert!(
        after.note.as_deref().unwrap_or("").contains("task bad failed"),
        "{after:?}"
    );
    let warnings = exec_profile::report::guesses(&profile).join("\n");
    assert!(
        warnings.contains("warning: task bad failed while profiling on sample input in1.txt")
            && warnings.contains("cannot parse the frame"),
        "{warnings}"
    );
    assert!(!profile.complete(), "never cached");
}

#[tokio::test]
async fn the_timeout_bounds_a_slow_task_and_estimates_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(
        dir.path(),
        "name: slow\nsample_inputs: inputs\ntasks:\n  - {name: quick, command: ./ok.sh, children: [slow]}\n  \
         - {name: slow, command: ./slow.sh}\n",
        &[
            ("ok.sh", "cat \"$@\" > \"$JUPITER_OUTPUT_DIR/$JUPITER_TASK\""),
            ("slow.sh", "exec sleep 30"),
        ],
    );
    let options = ProfileOptions {
        timeout: Duration::from_millis(1500),
        ..Default::default()
    };
    let started = Instant::now();
    let profile = exec_profile::measure_here(&app, &options)
        .await
        .expect("profiled");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the timeout"
    );
    assert_eq!(profile.tasks["quick"].source, Source::Measured);
    let slow = &profile.tasks["slow"];
    assert_eq!(slow.source, Source::Estimated, "{slow:?}");
    assert!(slow.note.as_deref().unwrap_or("").contains("timeout"), "{slow:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_profiles_in_a_container_limited_like_the_fastest_node() {
    let Some(engine) = engine_or_skip("docker_profiles_in_a_container_limited_like_the_fastest_node").await
    else {
        return;
    };
    ensure_images().await;
    let app = App::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/chain")).expect("chain");
    let config = DockerConfig {
        otlp_endpoint: None,
        nodes: three_nodes(),
        images: Images {
            prefix: "jupiter".into(),
            tag: test_tag(),
        },
        output: std::env::temp_dir(),
        probe: Default::default(),
        runner: Default::default(),
        tls: false,
    };
    let id = format!("jupiter-test-exec-profile-{}", std::process::id());
    let profile =
        jupiterctl::docker::profile::in_container(&engine, &id, &config, &app, &ProfileOptions::default())
            .await
            .expect("profiled in a container");
    assert!(
        profile.place.contains("cloud0"),
        "the fastest node: {}",
        profile.place
    );
    // 1.5 CPUs: one task at a time in there.
    assert_eq!(
        profile.slots, 1,
        "the container's CPU limit, not the host's cores"
    );
    for task in &app.tasks {
        assert_eq!(
            profile.tasks[&task.name].source,
            Source::Measured,
            "{}",
            task.name
        );
    }
}
