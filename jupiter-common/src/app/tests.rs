use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::*;

fn write(dir: &Path, rel: &str, content: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, content).unwrap();
    p
}

fn write_exec(dir: &Path, rel: &str) -> PathBuf {
    let p = write(dir, rel, "#!/bin/sh\ncat \"$@\"\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    p
}

/// A temp app with an executable `t.sh` and the given app.yaml.
fn yaml_app(yaml: &str) -> TempDir {
    let d = TempDir::new().unwrap();
    write_exec(d.path(), "t.sh");
    write(d.path(), "app.yaml", yaml);
    d
}

fn load_err(dir: &Path) -> String {
    let e = App::load(dir).expect_err("load should fail");
    e.to_string()
}

fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "error {msg:?} should contain {p:?}");
    }
}

fn names(ts: &[&TaskSpec]) -> Vec<String> {
    ts.iter().map(|t| t.name.clone()).collect()
}

const FANJOIN: &str = "\
sample_inputs: inputs
tasks:
  - name: split
    command: ./t.sh --x
    children: [left, right]
    parallelism: 2
  - name: left
    command: [\"./t.sh\", \"L\"]
    children:
      - join
  - name: right
    command: ./t.sh R
    children: [join]
  - name: join
    command: sh -c true
mapping: {split: node0, join: node2}
";

#[test]
fn loads_yaml_app() {
    let d = yaml_app(FANJOIN);
    write(d.path(), "inputs/b.txt", "b");
    write(d.path(), "inputs/a.txt", "a");
    write(d.path(), "inputs/.hidden", "x");
    let app = App::load(d.path()).unwrap();
    let dir = d.path().canonicalize().unwrap();
    assert_eq!(app.dir, dir);
    assert_eq!(app.format, AppFormat::Yaml);
    assert_eq!(app.name, dir.file_name().unwrap().to_str().unwrap());
    assert_eq!(
        names(&app.tasks.iter().collect::<Vec<_>>()),
        ["split", "left", "right", "join"]
    );
    let split = app.task("split").unwrap();
    assert_eq!(split.parallelism, 2);
    assert_eq!(split.children, ["left", "right"]);
    match &split.runner {
        TaskRunner::Command { program, args } => {
            assert_eq!(program, &dir.join("t.sh"));
            assert_eq!(args, &["--x"]);
        }
        r => panic!("{r:?}"),
    }
    match &app.task("join").unwrap().runner {
        TaskRunner::Command { program, args } => {
            assert!(program.is_absolute() && program.ends_with("sh"), "{program:?}");
            assert_eq!(args, &["-c", "true"]);
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(app.task("join").unwrap().parents, ["left", "right"]);
    assert_eq!(app.task("left").unwrap().parallelism, 1);
    assert_eq!(names(&app.ingress()), ["split"]);
    assert_eq!(names(&app.egress()), ["join"]);
    assert_eq!(
        names(&app.topological_order()),
        ["split", "left", "right", "join"]
    );
    assert_eq!(
        app.sample_inputs,
        [dir.join("inputs/a.txt"), dir.join("inputs/b.txt")]
    );
    assert_eq!(app.static_mapping.get("join").map(String::as_str), Some("node2"));
    assert!(app.task("nope").is_none());
}

#[test]
fn topological_order_is_stable_and_respects_edges() {
    let d = yaml_app(
        "name: x\ntasks:\n- name: c\n  command: ./t.sh\n- name: b\n  command: ./t.sh\n  children: [c]\n- name: a\n  command: ./t.sh\n  children: [b]\n- name: z\n  command: ./t.sh\n",
    );
    let app = App::load(d.path()).unwrap();
    assert_eq!(app.name, "x");
    assert_eq!(names(&app.topological_order()), ["a", "b", "c", "z"]);
    assert_eq!(names(&app.ingress()), ["a", "z"]);
    assert_eq!(names(&app.egress()), ["c", "z"]);
}

#[test]
fn sample_inputs_as_list() {
    let d = yaml_app("sample_inputs: [data/z.txt, other/a.txt]\ntasks:\n  - name: a\n    command: ./t.sh\n");
    write(d.path(), "data/z.txt", "z");
    write(d.path(), "other/a.txt", "a");
    let app = App::load(d.path()).unwrap();
    let dir = d.path().canonicalize().unwrap();
    assert_eq!(
        app.sample_inputs,
        [dir.join("other/a.txt"), dir.join("data/z.txt")]
    );
}

#[test]
fn yaml_unknown_field_has_line_column_and_path() {
    let d = yaml_app("tasks:\n  - name: a\n    command: ./t.sh\n  - name: b\n    comand: ./t.sh\n");
    let m = load_err(d.path());
    assert_has(
        &m,
        &["app.yaml: line 5 column 5: tasks[1]: unknown field `comand`, expected one of"],
    );
}

#[test]
fn yaml_route_is_by_suffix_unless_said_and_a_bad_one_is_named() {
    let d = yaml_app(
        "tasks:\n  - {name: a, command: ./t.sh, children: [b, c], route: by-order}\n  \
         - {name: b, command: ./t.sh, route: all}\n  - {name: c, command: ./t.sh}\n",
    );
    let app = App::load(d.path()).unwrap();
    let routes: Vec<Route> = app.tasks.iter().map(|t| t.route).collect();
    assert_eq!(routes, [Route::ByOrder, Route::All, Route::BySuffix]);
    assert!(app.tasks.iter().all(|t| t.wait_for.is_none()));
    let d = yaml_app("tasks:\n  - name: a\n    command: ./t.sh\n    route: sideways\n");
    let m = load_err(d.path());
    assert_has(
        &m,
        &[
            "app.yaml: line 4",
            "tasks[0].route: unknown variant `sideways`",
            "by-suffix",
            "by-order",
        ],
    );
}

#[test]
fn yaml_type_error_has_location() {
    let d = yaml_app("tasks:\n  - name: a\n    command: ./t.sh\n    parallelism: two\n");
    let m = load_err(d.path());
    assert_has(&m, &["app.yaml: line 4", "tasks[0].parallelism", "invalid type"]);
    let d = yaml_app("tasks:\n  - name: a\n    command: {x: 1}\n");
    assert_has(
        &load_err(d.path()),
        &[
            "app.yaml: line 3",
            "tasks[0].command",
            "a string or a list of strings",
        ],
    );
}

#[test]
fn yaml_syntax_error_has_line() {
    let d = yaml_app("tasks:\n  - name: a\n   command: [./t.sh\n");
    assert_has(&load_err(d.path()), &["app.yaml: line "]);
}

#[test]
fn yaml_missing_tasks_and_empty() {
    let d = yaml_app("name: x\n");
    assert_has(&load_err(d.path()), &["app.yaml", "missing field `tasks`"]);
    let d = yaml_app("# nothing\n\n");
    assert_has(&load_err(d.path()), &["app.yaml: file is empty"]);
    let d = yaml_app("name: x\ntasks: []\n");
    assert_has(&load_err(d.path()), &["app.yaml: tasks: no tasks", "(line 2)"]);
}

#[test]
fn yaml_unknown_child_with_line() {
    let yaml = "\
name: x
tasks:
  - name: a
    command: ./t.sh
    children: [b]
  - name: b
    command: ./t.sh
    children: [c]
  - name: c
    command: ./t.sh
    children:
      - foo
";
    let d = yaml_app(yaml);
    assert_has(
        &load_err(d.path()),
        &["app.yaml: tasks[2].children[0]: unknown task \"foo\" (line 12)"],
    );
}

#[test]
fn yaml_sink_child_gets_a_hint_and_duplicate_child() {
    let d = yaml_app("tasks:\n  - name: a\n    command: ./t.sh\n    children: [home]\n");
    assert_has(
        &load_err(d.path()),
        &[
            "tasks[0].children[0]: unknown task \"home\"",
            "egress",
            "(line 4)",
        ],
    );
    let d = yaml_app(
        "tasks:\n  - name: a\n    command: ./t.sh\n    children: [b, b]\n  - name: b\n    command: ./t.sh\n",
    );
    assert_has(
        &load_err(d.path()),
        &["tasks[0].children[1]: task \"b\" listed twice (line 4)"],
    );
}

#[test]
fn yaml_cycle_is_named_in_order() {
    let yaml = "tasks:
  - {name: s, command: ./t.sh, children: [a]}
  - {name: a, command: ./t.sh, children: [b]}
  - {name: b, command: ./t.sh, children: [c]}
  - {name: c, command: ./t.sh, children: [a, d]}
  - {name: d, command: ./t.sh}
";
    let d = yaml_app(yaml);
    assert_has(
        &load_err(d.path()),
        &["app.yaml: tasks form a cycle: a -> b -> c -> a"],
    );
    let d = yaml_app("tasks:\n  - {name: a, command: ./t.sh, children: [a]}\n");
    assert_has(&load_err(d.path()), &["app.yaml: tasks form a cycle: a -> a"]);
}

#[test]
fn yaml_program_errors() {
    let d = yaml_app("tasks:\n  - name: a\n    command: ./tasks/nope.sh x\n");
    let abs = d.path().canonicalize().unwrap().join("tasks/nope.sh");
    assert_has(
        &load_err(d.path()),
        &[&format!(
            "app.yaml: tasks[0].command: program \"./tasks/nope.sh\" not found at {} (line 3)",
            abs.display()
        )],
    );
    let d = yaml_app("tasks:\n  - name: a\n    command: ./data.txt\n");
    write(d.path(), "data.txt", "x");
    assert_has(
        &load_err(d.path()),
        &[
            "app.yaml: tasks[0].command: program \"./data.txt\" at",
            "not executable",
            "(line 3)",
        ],
    );
    let d = yaml_app("tasks:\n  - name: a\n    command: [no-such-program-jupiter, x]\n");
    assert_has(
        &load_err(d.path()),
        &[
            "app.yaml: tasks[0].command: program \"no-such-program-jupiter\" not found on PATH",
            "(line 3)",
        ],
    );
    let d = yaml_app("tasks:\n  - name: a\n    command: \"  \"\n");
    assert_has(
        &load_err(d.path()),
        &["app.yaml: tasks[0].command: empty command (line 3)"],
    );
}

#[test]
fn yaml_function_tasks_and_their_options() {
    let d = yaml_app(
        "tasks:\n  - name: a\n    function: scripts/f.py:detect\n    children: [b]\n    \
         fresh_interpreter: true\n    max_calls: 5\n    timeout: 2.5\n  \
         - name: b\n    function: scripts/f.py\n  - name: c\n    command: ./t.sh\n    timeout: 1\n",
    );
    write(d.path(), "scripts/f.py", "def detect(f, i, o): return []\n");
    let app = App::load(d.path()).unwrap();
    let dir = d.path().canonicalize().unwrap();
    let (a, b, c) = (&app.tasks[0], &app.tasks[1], &app.tasks[2]);
    match (&a.runner, &b.runner) {
        (
            TaskRunner::Python { script, function },
            TaskRunner::Python {
                script: script_b,
                function: function_b,
            },
        ) => {
            assert_eq!((script, function.as_str()), (&dir.join("scripts/f.py"), "detect"));
            assert_eq!(
                (script_b, function_b.as_str()),
                (&dir.join("scripts/f.py"), "task")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        (a.fresh_interpreter, a.max_calls, a.timeout),
        (true, Some(5), Some(std::time::Duration::from_millis(2500)))
    );
    assert_eq!((b.fresh_interpreter, b.max_calls, b.timeout), (false, None, None));
    assert!(matches!(c.runner, TaskRunner::Command { .. }));
    assert_eq!(c.timeout, Some(std::time::Duration::from_secs(1)));
}

#[test]
fn yaml_function_errors_name_the_field_and_line() {
    let cases = [
        (
            "tasks:\n  - name: a\n    command: ./t.sh\n    function: scripts/f.py:task\n",
            "tasks[0].function: give either `command:` (any executable) or `function:` (a Python function), not both (line 4)",
        ),
        (
            "tasks:\n  - name: a\n    children: []\n",
            "tasks[0].command: missing: give `command:` (any executable) or `function:`",
        ),
        (
            "tasks:\n  - name: a\n    function: scripts/f.py:2bad\n",
            "tasks[0].function: \"2bad\" is not a Python function name (expected SCRIPT.py:FUNCTION, e.g. scripts/detect.py:task) (line 3)",
        ),
        (
            "tasks:\n  - name: a\n    function: scripts/f.sh:task\n",
            "tasks[0].function: \"scripts/f.sh\" is not a Python file",
        ),
        (
            "tasks:\n  - name: a\n    function: ../f.py:task\n",
            "tasks[0].function: \"../f.py\" is outside the app folder",
        ),
        (
            "tasks:\n  - name: a\n    function: scripts/nope.py:task\n",
            "tasks[0].function: script \"scripts/nope.py\" not found at",
        ),
        (
            "tasks:\n  - name: a\n    command: ./t.sh\n    fresh_interpreter: true\n",
            "tasks[0].fresh_interpreter: applies to `function:` tasks only (a `command:` task is a new process per input) (line 4)",
        ),
        (
            "tasks:\n  - name: a\n    command: ./t.sh\n    max_calls: 3\n",
            "tasks[0].max_calls: applies to `function:` tasks only",
        ),
        (
            "tasks:\n  - name: a\n    function: scripts/f.py\n    max_calls: 0\n",
            "tasks[0].max_calls: must be at least 1 (line 4)",
        ),
        (
            "tasks:\n  - name: a\n    command: ./t.sh\n    timeout: 0\n",
            "tasks[0].timeout: must be a number of seconds > 0, got 0 (line 4)",
        ),
    ];
    for (yaml, expected) in cases {
        let d = yaml_app(yaml);
        write(d.path(), "scripts/f.py", "def task(f, i, o): return []\n");
        assert_has(&load_err(d.path()), &[expected]);
    }
}

#[test]
fn yaml_name_errors() {
    let d = yaml_app("tasks:\n  - name: a\n    command: ./t.sh\n  - name: b\n    command: ./t.sh\n  - name: a\n    command: ./t.sh\n");
    assert_has(
        &load_err(d.path()),
        &["app.yaml: tasks[2].name: duplicate task name \"a\" (already the name of tasks[0]) (line 6)"],
    );
    let d = yaml_app("tasks:\n  - command: ./t.sh\n    name: a b\n");
    assert_has(
        &load_err(d.path()),
        &["app.yaml: tasks[0].name: invalid task name \"a b\"", "(line 3)"],
    );
    let d = yaml_app("name: ''\ntasks:\n  - command: ./t.sh\n    name: a\n");
    assert_has(
        &load_err(d.path()),
        &["app.yaml: name: app name is empty (line 1)"],
    );
}

#[test]
fn yaml_parallelism_zero() {
    let d = yaml_app(
        "tasks:\n  - name: a\n    command: ./t.sh\n  - name: b\n    command: ./t.sh\n    parallelism: 0\n",
    );
    assert_has(
        &load_err(d.path()),
        &["app.yaml: tasks[1].parallelism: must be at least 1 (line 6)"],
    );
}

#[test]
fn yaml_mapping_unknown_task() {
    let d = yaml_app("tasks:\n  - name: a\n    command: ./t.sh\nmapping:\n  a: node0\n  zz: node1\n");
    assert_has(
        &load_err(d.path()),
        &["app.yaml: mapping.zz: unknown task \"zz\" (line 6)"],
    );
}

#[test]
fn yaml_sample_input_errors() {
    let d = yaml_app("tasks:\n  - name: a\n    command: ./t.sh\nsample_inputs: inputs\n");
    assert_has(
        &load_err(d.path()),
        &[
            "app.yaml: sample_inputs: folder \"inputs\" not found at",
            "(line 4)",
        ],
    );
    let d =
        yaml_app("tasks:\n  - name: a\n    command: ./t.sh\nsample_inputs:\n  - in/a.txt\n  - in/b.txt\n");
    write(d.path(), "in/a.txt", "a");
    assert_has(
        &load_err(d.path()),
        &[
            "app.yaml: sample_inputs[1]: file \"in/b.txt\" not found at",
            "(line 6)",
        ],
    );
    let d = yaml_app("tasks:\n  - name: a\n    command: ./t.sh\nsample_inputs: [x/a.txt, y/a.txt]\n");
    write(d.path(), "x/a.txt", "a");
    write(d.path(), "y/a.txt", "a");
    assert_has(
        &load_err(d.path()),
        &["app.yaml: sample_inputs[1]: file name of \"y/a.txt\"", "(line 4)"],
    );
}

#[test]
fn folder_errors() {
    let d = TempDir::new().unwrap();
    assert_has(
        &load_err(d.path()),
        &[&format!(
            "{} is not a Jupiter app: neither app.yaml nor configuration.txt found",
            d.path().display()
        )],
    );
    let missing = d.path().join("nope");
    assert_has(
        &load_err(&missing),
        &[&format!("{}: app folder not found", missing.display())],
    );
    let f = write(d.path(), "file", "x");
    assert_has(&load_err(&f), &[&format!("{}: not a folder", f.display())]);
}

#[test]
fn yaml_wins_over_configuration_txt() {
    let d = yaml_app("tasks:\n  - name: a\n    command: ./t.sh\n");
    write(d.path(), "configuration.txt", "garbage\n");
    assert_eq!(App::load(d.path()).unwrap().format, AppFormat::Yaml);
}

// ---- legacy ----

const DUMMY: &str = "7
task0 1 false task1 task3 task2 task4 
task1 1 false task4 
task2 1 false task5 task4 task6 
task3 1 false task5 task4 task6 
task4 4 false task6 
task5 2 false task6 
task6 4 false datasink1

";

fn legacy_app(config: &str, tasks: &[&str]) -> TempDir {
    let d = TempDir::new().unwrap();
    write(d.path(), "configuration.txt", config);
    for t in tasks {
        write(
            d.path(),
            &format!("scripts/{t}.py"),
            "def task(filename, pathin, pathout):\n    return []\n",
        );
    }
    d
}

const DUMMY_TASKS: [&str; 7] = ["task0", "task1", "task2", "task3", "task4", "task5", "task6"];

#[test]
fn loads_legacy_jupiter_app() {
    let d = legacy_app(DUMMY, &DUMMY_TASKS);
    write(d.path(), "sample_input/2b.ipsum", "b");
    write(d.path(), "sample_input/1a.ipsum", "a");
    let app = App::load(d.path()).unwrap();
    let dir = d.path().canonicalize().unwrap();
    assert_eq!(app.format, AppFormat::Legacy);
    assert_eq!(app.tasks.len(), 7);
    assert_eq!(
        app.task("task0").unwrap().children,
        ["task1", "task3", "task2", "task4"]
    );
    assert_eq!(
        app.task("task4").unwrap().parents,
        ["task0", "task1", "task2", "task3"]
    );
    assert_eq!(
        app.task("task6").unwrap().parents,
        ["task2", "task3", "task4", "task5"]
    );
    assert!(app.task("task6").unwrap().children.is_empty());
    assert_eq!(names(&app.ingress()), ["task0"]);
    assert_eq!(names(&app.egress()), ["task6"]);
    assert_eq!(names(&app.topological_order()), DUMMY_TASKS);
    match &app.task("task3").unwrap().runner {
        TaskRunner::Python { script, function } => {
            assert_eq!(script, &dir.join("scripts/task3.py"));
            assert_eq!(function, "task");
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(
        app.sample_inputs,
        [
            dir.join("sample_input/1a.ipsum"),
            dir.join("sample_input/2b.ipsum")
        ]
    );
    assert!(app.static_mapping.is_empty());
    assert!(app.tasks.iter().all(|t| t.parallelism == 1));
    // The flag is the route; the second column the files per call.
    let task0 = app.task("task0").unwrap();
    assert_eq!((task0.route, task0.wait_for), (Route::ByOrder, Some(1)));
    let task4 = app.task("task4").unwrap();
    assert_eq!((task4.route, task4.wait_for), (Route::ByOrder, Some(4)));
    let d = legacy_app("2\na 1 true b\nb 2 false home\n", &["a", "b"]);
    let app = App::load(d.path()).unwrap();
    assert_eq!(app.task("a").unwrap().route, Route::All);
    assert_eq!(app.task("b").unwrap().wait_for, Some(2));
}

#[test]
fn loads_legacy_circe_app_with_mapping() {
    let d = legacy_app(
        "3\na b c \nb c\nc scheduler\n\na node1\nb node2 \nc node1\n",
        &["a", "b", "c"],
    );
    let app = App::load(d.path()).unwrap();
    assert_eq!(app.task("c").unwrap().parents, ["a", "b"]);
    assert_eq!(names(&app.egress()), ["c"]);
    assert_eq!(app.static_mapping.len(), 3);
    assert_eq!(app.static_mapping["b"], "node2");
    // No flag in this variant: the suffix rule, and one call per input.
    assert!(app
        .tasks
        .iter()
        .all(|t| t.route == Route::BySuffix && t.wait_for.is_none()));
    assert!(app.sample_inputs.is_empty());
}

#[test]
fn legacy_errors() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("seven\n", &[], &["configuration.txt: line 1: the first line must be the number of tasks", "\"seven\""]),
        ("", &[], &["configuration.txt: file is empty"]),
        ("3\na 1 false b\nb 1 false home\n", &["a", "b"], &["configuration.txt: line 1: task count mismatch", "announces 3 tasks but 2 task lines follow"]),
        ("1\na 1 false home\nb 1 false home\n", &["a", "b"], &["configuration.txt: line 3: task count mismatch"]),
        ("2\na 1 false b\n\nb x false home\n", &["a", "b"], &["configuration.txt: line 4: task \"b\": inputs_to_wait_for must be a positive integer, got \"x\""]),
        ("2\na 1 false b\nb 0 false home\n", &["a", "b"], &["configuration.txt: line 3: task \"b\": inputs_to_wait_for"]),
        ("2\na 1 maybe b\nb 1 false home\n", &["a", "b"], &["configuration.txt: line 2: task \"a\": flag (3rd field) must be true (every output to every child) or false", "got \"maybe\""]),
        // monitor.py compares with 'true' exactly: "True" would silently route by order there.
        ("2\na 1 True b\nb 1 false home\n", &["a", "b"], &["configuration.txt: line 2: task \"a\": flag (3rd field)", "got \"True\""]),
        ("3\na 1 true b home\nb 1 false c\nc 1 false home\n", &["a", "b", "c"], &["configuration.txt: line 2: task \"a\" lists a sink (home) beside tasks"]),
        ("2\na 1 false b\nb 1\n", &["a", "b"], &["configuration.txt: line 3: expected `task inputs_to_wait_for flag child...`"]),
        ("2\na 1 false b c\nb 1 false home\n", &["a", "b"], &["configuration.txt: line 2: task \"a\": unknown child \"c\""]),
        ("2\na 1 false b\nb 1 false home\n", &["a"], &["configuration.txt: line 3: task \"b\": script scripts/b.py not found at"]),
        ("2\na 1 false home\na 1 false home\n", &["a"], &["configuration.txt: line 3: duplicate task \"a\" (already defined on line 2)"]),
        ("2\na 1 false b\nb 1 false a\n", &["a", "b"], &["configuration.txt: tasks form a cycle: a -> b -> a"]),
        ("2\na b\nb scheduler\na node1 extra\n", &["a", "b"], &["configuration.txt: line 4: expected a static mapping line `task node`"]),
        ("2\na b\nb scheduler\nz node1\n", &["a", "b"], &["configuration.txt: line 4: static mapping of unknown task \"z\""]),
        ("2\na b\nb scheduler\na n1\na n2\n", &["a", "b"], &["configuration.txt: line 5: task \"a\" already mapped on line 4"]),
    ];
    for (config, scripts, want) in cases {
        let d = legacy_app(config, scripts);
        let m = load_err(d.path());
        assert_has(&m, want);
        assert!(
            m.contains(&d.path().join("configuration.txt").display().to_string()),
            "{m}"
        );
    }
}

// ---- legacy runner ----

fn python() -> Option<&'static str> {
    let ok = std::process::Command::new("python3")
        .arg("-c")
        .arg("pass")
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some("python3")
}

type RunnerResult = (i32, String, String, Option<Vec<String>>);

/// Runs the legacy runner with every file in one call.
fn run_runner(d: &Path, script: &str, files: &[&str]) -> RunnerResult {
    run_runner_grouped(d, script, files.len().max(1), files)
}

fn run_runner_grouped(d: &Path, script: &str, wait: usize, files: &[&str]) -> RunnerResult {
    let runner = write(d, "runner/legacy_runner.py", LEGACY_RUNNER_PY);
    let script = write(d, "scripts/task3.py", script);
    std::fs::create_dir_all(d.join("in")).unwrap();
    let result = d.join("result.json");
    let _ = std::fs::remove_file(&result);
    let out = std::process::Command::new(python().unwrap())
        .arg(&runner)
        .arg(&script)
        .arg(d.join("in"))
        .arg(d.join("out"))
        .arg(&result)
        .arg(wait.to_string())
        .args(files)
        .output()
        .unwrap();
    let json = std::fs::read_to_string(&result)
        .ok()
        .map(|s| serde_json::from_str(&s).unwrap());
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        json,
    )
}

#[test]
fn legacy_runner_calls_the_task_once_per_group() {
    if python().is_none() {
        eprintln!("python3 not found: skipped");
        return;
    }
    let d = TempDir::new().unwrap();
    let d = d.path().canonicalize().unwrap();
    for name in ["a_1", "a_2", "b_1", "b_2"] {
        write(&d, &format!("in/{name}"), name);
    }
    let script = "import os
def task(filename, pathin, pathout):
    print(filename)
    out = os.path.join(pathout, filename[0].split('_')[0] + '_joined')
    open(out, 'w').write('+'.join(open(n).read() for n in filename))
    return [out]
";
    let (code, stdout, stderr, json) = run_runner_grouped(&d, script, 2, &["b_1", "b_2", "a_1", "a_2"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "['b_1', 'b_2']\n['a_1', 'a_2']");
    assert_eq!(
        json.unwrap(),
        [
            d.join("out/b_joined").display().to_string(),
            d.join("out/a_joined").display().to_string()
        ]
    );
    assert_eq!(
        std::fs::read_to_string(d.join("out/a_joined")).unwrap(),
        "a_1+a_2"
    );
}

#[test]
fn legacy_runner_runs_a_task() {
    if python().is_none() {
        eprintln!("python3 not found: skipped");
        return;
    }
    let d = TempDir::new().unwrap();
    let d = d.path().canonicalize().unwrap();
    write(&d, "in/1x_a.txt", "A");
    write(&d, "in/1x_b.txt", "B");
    write(&d, "scripts/helper.py", "X = 'helped'\n");
    let script = "import os, helper
def task(filename, pathin, pathout):
    print('me', os.path.basename(__file__), __name__, helper.X, type(filename).__name__)
    assert os.getcwd() == pathin.rstrip('/') and pathin.endswith('/') and pathout.endswith('/')
    names = filename if isinstance(filename, list) else [filename]
    data = ''.join(open(n).read() for n in names)
    out = os.path.join(pathout, '1x_task3.txt')
    open(out, 'w').write(data)
    open('rel.txt', 'w').write('r')
    return [out, 'rel.txt']
";
    let (code, stdout, stderr, json) = run_runner(&d, script, &["1x_a.txt", "1x_b.txt"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "me task3.py task3 helped list");
    assert_eq!(
        json.unwrap(),
        [
            d.join("out/1x_task3.txt").display().to_string(),
            d.join("in/rel.txt").display().to_string()
        ]
    );
    assert_eq!(std::fs::read_to_string(d.join("out/1x_task3.txt")).unwrap(), "AB");

    let (code, stdout, _, json) = run_runner(
        &d,
        "def task(filename, pathin, pathout):\n    print(type(filename).__name__)\n    return pathin + filename\n",
        &["1x_a.txt"],
    );
    assert_eq!((code, stdout.trim()), (0, "str"));
    assert_eq!(json.unwrap(), [d.join("in/1x_a.txt").display().to_string()]);
}

#[test]
fn legacy_runner_failures() {
    if python().is_none() {
        return;
    }
    let d = TempDir::new().unwrap();
    let d = d.path();
    write(d, "in/f.txt", "x");
    let (code, _, stderr, json) = run_runner(
        d,
        "def task(filename, pathin, pathout):\n    raise ValueError('boom')\n",
        &["f.txt"],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("Traceback") && stderr.contains("ValueError: boom"),
        "{stderr}"
    );
    assert!(json.is_none());
    let (code, _, stderr, json) = run_runner(
        d,
        "def task(filename, pathin, pathout):\n    return [pathout + 'nope.txt']\n",
        &["f.txt"],
    );
    assert_eq!(code, 3);
    assert!(stderr.contains("nope.txt"), "{stderr}");
    assert!(json.is_none());
    let (code, _, stderr, _) = run_runner(d, "x = 1\n", &["f.txt"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("defines no function task"), "{stderr}");
}

// ---- the example apps of the repository ----

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

#[test]
fn example_apps_load() {
    let chain = App::load(&example("chain")).unwrap();
    assert_eq!(names(&chain.topological_order()), ["upper", "number", "count"]);
    assert_eq!(chain.sample_inputs.len(), 3);
    let fanjoin = App::load(&example("fanjoin")).unwrap();
    assert_eq!(fanjoin.task("join").unwrap().parents, ["left", "right"]);
    assert_eq!(fanjoin.sample_inputs.len(), 3);
    let dummy = App::load(&example("dummy_app")).unwrap();
    assert_eq!(dummy.format, AppFormat::Legacy);
    assert_eq!(dummy.tasks.len(), 7);
    assert_eq!(names(&dummy.egress()), ["task6"]);
    assert_eq!(dummy.sample_inputs.len(), 3);
}
