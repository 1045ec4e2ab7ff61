//! app.yaml's `function:` tasks: Python functions with the original's
//! contract in warm interpreters, a task that asks for a fresh interpreter
//! per input, one whose interpreter is replaced every `max_calls` calls,
//! and a `command:` task killed (with what it started) past its `timeout:`.

use jupiter_common::app::App;
use jupiter_tests::{random, Sandbox};
use std::path::Path;
use std::time::Duration;

const APP_YAML: &str = r#"
tasks:
  - name: warm
    function: scripts/stamp.py:warm
    children: [fresh, recycled]
    route: all
  - name: fresh
    function: scripts/stamp.py:fresh
    fresh_interpreter: true
    children: [join]
  - name: recycled
    function: scripts/stamp.py:recycled
    max_calls: 2
    children: [join]
  - name: join
    command: ./join.sh
    timeout: 1
"#;

/// Each function copies its input and adds a line: its name, its
/// interpreter's pid and how many calls that interpreter has made.
const STAMP_PY: &str = r#"import os
CALLS = 0

def stamp(name, filename, pathout):
    global CALLS
    CALLS += 1
    text = open(filename).read()
    out = os.path.join(pathout, "%s_%s" % (filename.split(".")[0], name))
    with open(out, "w") as f:
        f.write(text + "%s %d %d\n" % (name, os.getpid(), CALLS))
    return out

def warm(filename, pathin, pathout):
    return stamp("warm", filename, pathout)

def fresh(filename, pathin, pathout):
    return stamp("fresh", filename, pathout)

def recycled(filename, pathin, pathout):
    return stamp("recycled", filename, pathout)
"#;

/// Joins its two inputs; hangs on an input named *hang*, with a process of
/// its own whose pid it leaves in the app folder (its working directory).
const JOIN_SH: &str = r#"#!/bin/sh
case "$JUPITER_INPUT_ID" in
*hang*)
    sleep 300 &
    echo $! > sleep.pid
    wait
    ;;
esac
cat "$@" > "$JUPITER_OUTPUT_DIR/joined"
"#;

/// Sent one at a time, in this order.
const INPUTS: &[&str] = &["i0", "i1", "i2", "i3", "i4hang", "i5"];

fn app(dir: &Path) -> App {
    std::fs::create_dir_all(dir.join("scripts")).expect("mkdir");
    std::fs::write(dir.join("app.yaml"), APP_YAML).expect("write");
    std::fs::write(dir.join("scripts/stamp.py"), STAMP_PY).expect("write");
    std::fs::write(dir.join("join.sh"), JOIN_SH).expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("join.sh"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    App::load(dir).expect("app loads")
}

/// (pid, calls) of `task`'s line in an input's joined output.
type Stamps = std::collections::BTreeMap<String, (u32, u32)>;

fn stamps(text: &str) -> Stamps {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let task = words.next()?.to_string();
            let pid = words.next()?.parse().ok()?;
            let calls = words.next()?.parse().ok()?;
            Some((task, (pid, calls)))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn function_tasks_run_warm_fresh_or_recycled_and_a_hung_command_is_killed() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path());
    let sandbox = Sandbox::new();
    let inputs = sandbox.path("inputs");
    std::fs::create_dir_all(&inputs).expect("mkdir");
    let files: Vec<_> = INPUTS
        .iter()
        .map(|name| {
            let path = inputs.join(format!("{name}.txt"));
            std::fs::write(&path, format!("{name}\n")).expect("write");
            path
        })
        .collect();
    let outcome = jupiterctl::run::run(
        sandbox.local(&app, 2),
        &app,
        &random(3),
        &files,
        jupiterctl::session::Pace::OneAtATime,
        Duration::from_secs(120),
        false,
    )
    .await
    .expect("run completes");

    let hung = outcome
        .results
        .iter()
        .find(|r| r.input_id == "i4hang.txt")
        .expect("the hanging input has a result");
    assert!(!hung.ok);
    assert!(
        hung.error
            .contains("task join timed out: still running after its timeout of 1 s, so it was killed"),
        "{}",
        hung.error
    );
    jupiter_tests::assert_process_gone(&dir.path().join("sleep.pid"));

    let mut per_input = Vec::new();
    for name in INPUTS.iter().filter(|n| !n.contains("hang")) {
        let file = sandbox.path("output").join(format!("{name}.txt")).join("joined");
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // join got fresh's copy, then recycled's: parents in file order.
        let tasks: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap_or("")).collect();
        assert_eq!(
            tasks,
            [*name, "warm", "fresh", *name, "warm", "recycled"],
            "{text}"
        );
        per_input.push(stamps(
            &text
                .lines()
                .filter(|l| !l.starts_with("i"))
                .collect::<Vec<_>>()
                .join("\n"),
        ));
    }
    // i0 i1 i2 i3 i5 (i4 ran the functions too, then hung in join).
    let calls = |task: &str| per_input.iter().map(|s| s[task].1).collect::<Vec<_>>();
    let pids = |task: &str| per_input.iter().map(|s| s[task].0).collect::<Vec<_>>();
    assert_eq!(
        calls("warm"),
        [1, 2, 3, 4, 6],
        "one warm interpreter for every input"
    );
    assert!(pids("warm").windows(2).all(|w| w[0] == w[1]));
    assert_eq!(calls("fresh"), [1, 1, 1, 1, 1], "a new interpreter per input");
    let fresh = pids("fresh");
    assert!(fresh.windows(2).all(|w| w[0] != w[1]), "{fresh:?}");
    assert_eq!(calls("recycled"), [1, 2, 1, 2, 2], "replaced after 2 calls");
    let recycled = pids("recycled");
    assert_eq!(recycled[0], recycled[1]);
    assert_ne!(recycled[1], recycled[2]);
    assert_eq!(recycled[2], recycled[3]);
    assert_ne!(recycled[3], recycled[4]);
}
