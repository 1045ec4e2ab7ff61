//! Warm Python interpreters for original tasks: inputs reuse one
//! interpreter, and a task that raises, calls exit(), kills its interpreter
//! with os._exit, segfaults through ctypes or hangs past --task-timeout
//! fails only its own input, with a clear message; the next input runs on
//! a fresh interpreter.

use jupiter_common::app::App;
use jupiter_tests::{random, Sandbox};
use jupiterctl::run::RunOutcome;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// What the task does, by the input's content.
const TASK: &str = r#"import ctypes, os, subprocess, sys, time
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
    if what.startswith("hang "):
        # A process of its own too: the timeout must end it as well.
        child = subprocess.Popen(["sleep", "300"])
        with open(what.split(" ", 1)[1], "w") as f:
            f.write(str(child.pid))
        sys.stdout.flush()
        time.sleep(300)
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
    ("f1", "hang"),
    ("f2", "ok"),
];

/// The timeout the hanging input runs into.
const TIMEOUT: Duration = Duration::from_secs(2);

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
        let what = match *what {
            "hang" => format!("hang {}", pid_file(sandbox).display()),
            what => what.to_string(),
        };
        std::fs::write(&path, what).expect("write");
        files.push(path);
    }
    let mut config = sandbox.local_config(1);
    config.runner.fresh_interpreter = fresh;
    config.runner.task_timeout = Some(TIMEOUT);
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

/// Where the hanging task writes the pid of the process it started.
fn pid_file(sandbox: &Sandbox) -> std::path::PathBuf {
    sandbox.path("sleep.pid")
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
        (
            "f1",
            "task t timed out: still running after its timeout of 2 s, so it was killed",
        ),
    ];
    for (input, message) in expect {
        assert!(errors[input].contains(message), "{input}: {:?}", errors[input]);
        // What the task printed before it failed comes with the error.
        assert!(errors[input].contains("doing"), "{input}: {:?}", errors[input]);
    }
    let ok = written(&sandbox);
    assert_eq!(
        ok.keys().map(String::as_str).collect::<Vec<_>>(),
        ["a1", "a2", "b2", "c2", "d2", "e2", "f2"],
        "{errors:?}"
    );
    jupiter_tests::assert_process_gone(&pid_file(&sandbox));
    // Warm: a2 ran in a1's interpreter, its module imported once.
    assert_eq!(ok["a2"], (ok["a1"].0, 2));
    // After each failure a fresh interpreter, its module imported anew.
    let after: Vec<u32> = ["b2", "c2", "d2", "e2", "f2"].iter().map(|i| ok[*i].0).collect();
    for (input, (pid, calls)) in ["b2", "c2", "d2", "e2", "f2"].iter().map(|i| (i, ok[*i])) {
        assert_eq!(calls, 1, "{input} on a fresh interpreter");
        assert_ne!(pid, ok["a1"].0, "{input}");
    }
    let distinct: std::collections::BTreeSet<_> = after.iter().collect();
    assert_eq!(distinct.len(), 5, "one interpreter per failure: {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fresh_interpreter_starts_one_per_input() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path());
    let sandbox = Sandbox::new();
    let outcome = run(&sandbox, &app, true).await;
    assert_eq!(outcome.results.iter().filter(|r| r.ok).count(), 7);
    let hung = outcome
        .results
        .iter()
        .find(|r| r.input_id == "f1.txt")
        .expect("f1");
    assert!(hung.error.contains("timed out"), "{}", hung.error);
    jupiter_tests::assert_process_gone(&pid_file(&sandbox));
    let ok = written(&sandbox);
    assert!(ok.values().all(|&(_, calls)| calls == 1), "{ok:?}");
    assert_ne!(ok["a1"].0, ok["a2"].0);
}
