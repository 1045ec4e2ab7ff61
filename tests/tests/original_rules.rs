//! Original-format apps run by the original's CIRCE rules: the ordered
//! example (order-paired routing, a 2-file join, a task called once per name
//! prefix) on 3 local nodes gives, byte for byte, what a direct run of its
//! functions under those rules gives (`tests/python/original_rules.py`).

use jupiter_common::app::App;
use jupiter_tests::{example, Sandbox};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every file under `dir`, by path relative to it.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("under dir").to_path_buf();
                files.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    files
}

/// The reference: each input through the app's functions, in one Python
/// process, by the original's rules.
fn reference(app: &App, reference: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/original_rules.py");
    for input in &app.sample_inputs {
        let name = input.file_name().expect("name");
        let status = std::process::Command::new("python3")
            .arg(&script)
            .arg(&app.dir)
            .arg(input)
            .arg(reference.join(name))
            .status()
            .expect("python3 runs");
        assert!(status.success(), "reference run of {}", input.display());
    }
    tree(reference)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ordered_example_matches_a_direct_run_under_the_original_rules() {
    let sandbox = Sandbox::new();
    let app = App::load(&example("ordered")).expect("example app loads");
    assert_eq!(app.sample_inputs.len(), 3);
    sandbox.run_samples(&app, 3, 11).await;
    let want = reference(&app, &sandbox.path("reference"));
    // Three per input: merge's join, and tally called once per prefix.
    assert_eq!(want.len(), 9, "{:?}", want.keys());
    let got = tree(&sandbox.path("output"));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the same files reach home"
    );
    for (path, bytes) in &want {
        assert_eq!(
            String::from_utf8_lossy(&got[path]),
            String::from_utf8_lossy(bytes),
            "{}",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_legacy_dummy_app_matches_a_direct_run_under_the_original_rules() {
    let sandbox = Sandbox::new();
    let app = App::load(&example("dummy_app")).expect("example app loads");
    sandbox.run_samples(&app, 3, 12).await;
    let want = reference(&app, &sandbox.path("reference"));
    assert_eq!(want.len(), app.sample_inputs.len());
    assert_eq!(tree(&sandbox.path("output")), want);
}

/// A legacy app in a temp folder: `configuration.txt` and one script per
/// task, each writing `outputs` files named `{prefix}_{task}{i}`.
fn legacy_app(dir: &Path, config: &str, tasks: &[(&str, usize)]) -> App {
    std::fs::write(dir.join("configuration.txt"), config).expect("write");
    std::fs::create_dir_all(dir.join("scripts")).expect("mkdir");
    std::fs::create_dir_all(dir.join("sample_input")).expect("mkdir");
    std::fs::write(dir.join("sample_input/x.txt"), "x\n").expect("write");
    for (task, outputs) in tasks {
        let script = format!(
            "import os\ndef task(filename, pathin, pathout):\n    \
             paths = [os.path.join(pathout, 'x_{task}%d' % i) for i in range({outputs})]\n    \
             [open(p, 'w').write('{task}') for p in paths]\n    return paths\n"
        );
        std::fs::write(dir.join(format!("scripts/{task}.py")), script).expect("write");
    }
    App::load(dir).expect("app loads")
}

/// Runs the app's one sample input and returns its error.
async fn failure(app: &App) -> String {
    let outcome = Sandbox::new().run_samples_anyhow(app, 2, 1).await;
    let result = &outcome.results[0];
    assert!(!result.ok, "the input must fail: {result:?}");
    result.error.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outputs_that_do_not_pair_with_the_children_fail_the_input_clearly() {
    let dir = tempfile::tempdir().expect("tmp");
    // a: flag false, two children, but one output.
    let app = legacy_app(
        dir.path(),
        "3\na 1 false b c\nb 1 true home\nc 1 true home\n",
        &[("a", 1), ("b", 1), ("c", 1)],
    );
    let error = failure(&app).await;
    assert!(
        error.contains("task a wrote 1 output(s) for 2 children") && error.contains("x_a0"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_short_of_its_inputs_to_wait_for_fails_the_input_clearly() {
    let dir = tempfile::tempdir().expect("tmp");
    // b waits for 2 files with one prefix but gets a's one.
    let app = legacy_app(
        dir.path(),
        "2\na 1 true b\nb 2 true home\n",
        &[("a", 1), ("b", 1)],
    );
    let error = failure(&app).await;
    assert!(
        error.contains("waits for 2 file(s) per name prefix") && error.contains("\"x\": 1 (x_a0)"),
        "{error}"
    );
}
