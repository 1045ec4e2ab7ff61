//! Warm Python interpreters for original tasks: inputs reuse one
//! interpreter, and a task that raises, calls exit(), kills its interpreter
//! with os._exit or segfaults through ctypes fails only its own input, with
//! a clear message; the next input runs on a fresh interpreter.

use jupiter_common::app::App;
use jupiter_tests::{random, Sandbox};
use jupiterctl::run::RunOutcome;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// What the task does, by the input's content.
const TASK: &str = r#"import ctypes, os, sys
CALLS = 0

def task(filename, pathin, pathout):
    global CALLS
    CALLS += 1
    what = open(filename).read().strip()
    print("doing", what)
    if what == "raise":
        raise ValueError("boom in the task")
    if what == "exit":
        sys.exit(4)
    if what == "os_exit":
        os._exit(7)
    if what == "segv":
        ctypes.string_at(0)
    out = os.path.join(pathout, filename.split(".")[0] + "_t")
    with open(out, "w") as f:
        f.write("%d %d\n" % (os.getpid(), CALLS))
    return [out]
"#;

/// Inputs in the order they are sent (one at a time): name, content.
const INPUTS: &[(&str, &str)] = &[
    ("a1", "ok"),
    ("a2", "ok"),
    ("b1", "raise"),
    ("b2", "ok"),
    ("c1", "exit"),
    ("c2", "ok"),
    ("d1", "os_exit"),
    ("d2", "ok"),
    ("e1", "segv"),
    ("e2", "ok"),
];

fn app(dir: &Path) -> App {
    std::fs::write(dir.join("configuration.txt"), "1\nt 1 true home\n").expect("write");
    std::fs::create_dir_all(dir.join("scripts")).expect("mkdir");
    std::fs::write(dir.join("scripts/t.py"), TASK).expect("write");
    App::load(dir).expect("app loads")
}

async fn run(sandbox: &Sandbox, app: &App, fresh: bool) -> RunOutcome {
    let inputs = sandbox.path("inputs");
    std::fs::create_dir_all(&inputs).expect("mkdir");
    let mut files = Vec::new();
    for (name, what) in INPUTS {
        let path = inputs.join(format!("{name}.txt"));
        std::fs::write(&path, what).expect("write");
        files.push(path);
    }
    let mut config = sandbox.local_config(1);
    config.fresh_interpreter = fresh;
    jupiterctl::run::run(
        Box::new(jupiterctl::local::Local::new(&app.name, config)),
        app,
        &random(1),
        &files,
        jupiterctl::session::Pace::OneAtATime,
        Duration::from_secs(120),
        false,
    )
    .await
    .expect("run completes")
}

/// (pid, calls) written by each input that succeeded.
fn written(sandbox: &Sandbox) -> BTreeMap<String, (u32, u32)> {
    INPUTS
        .iter()
        .filter_map(|(name, _)| {
            let file = sandbox
                .path("output")
                .join(format!("{name}.txt"))
                .join(format!("{name}_t"));
            let text = std::fs::read_to_string(file).ok()?;
            let mut parts = text.split_whitespace().map(|p| p.parse::<u32>().expect("number"));
            Some((name.to_string(), (parts.next()?, parts.next()?)))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_fault_fails_its_own_input_and_the_next_gets_a_fresh_interpreter() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path());
    let sandbox = Sandbox::new();
    let outcome = run(&sandbox, &app, false).await;
    let errors: BTreeMap<String, String> = outcome
        .results
        .iter()
        .map(|r| (r.input_id.trim_end_matches(".txt").to_string(), r.error.clone()))
        .collect();
    let expect = [
        ("b1", "ValueError: boom in the task"),
        ("c1", "task t exited with 4"),
        ("d1", "the Python interpreter died during the call (exit code 7)"),
        ("e1", "killed by signal 11 (SIGSEGV)"),
    ];
    for (input, message) in expect {
        assert!(errors[input].contains(message), "{input}: {:?}", errors[input]);
        // What the task printed before it failed comes with the error.
        assert!(errors[input].contains("doing"), "{input}: {:?}", errors[input]);
    }
    let ok = written(&sandbox);
    assert_eq!(
        ok.keys().map(String::as_str).collect::<Vec<_>>(),
        ["a1", "a2", "b2", "c2", "d2", "e2"],
        "{errors:?}"
    );
    // Warm: a2 ran in a1's interpreter, its module imported once.
    assert_eq!(ok["a2"], (ok["a1"].0, 2));
    // After each failure a fresh interpreter, its module imported anew.
    let after: Vec<u32> = ["b2", "c2", "d2", "e2"].iter().map(|i| ok[*i].0).collect();
    for (input, (pid, calls)) in ["b2", "c2", "d2", "e2"].iter().map(|i| (i, ok[*i])) {
        assert_eq!(calls, 1, "{input} on a fresh interpreter");
        assert_ne!(pid, ok["a1"].0, "{input}");
    }
    let distinct: std::collections::BTreeSet<_> = after.iter().collect();
    assert_eq!(distinct.len(), 4, "one interpreter per failure: {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fresh_interpreter_starts_one_per_input() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path());
    let sandbox = Sandbox::new();
    let outcome = run(&sandbox, &app, true).await;
    assert_eq!(outcome.results.iter().filter(|r| r.ok).count(), 6);
    let ok = written(&sandbox);
    assert!(ok.values().all(|&(_, calls)| calls == 1), "{ok:?}");
    assert_ne!(ok["a1"].0, ok["a2"].0);
}
