//! The `jupiterctl` binary as a user meets it: bad apps get a clear error
//! naming the file and the line or field, and a non-zero exit; a good app
//! runs end to end; `up`, `submit`, `status` and `down` work across shells.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn jupiterctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_jupiterctl"))
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, text).expect("write");
}

fn executable(dir: &Path, name: &str) {
    write(
        dir,
        name,
        "#!/bin/sh\ncat \"$@\" > \"$JUPITER_OUTPUT_DIR/$JUPITER_INPUT_ID\"\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Runs `jupiterctl run` on an app folder and returns (exit ok, stderr).
fn run_app(app: &Path, out: &Path) -> Output {
    jupiterctl()
        .args(["run", "--quiet", "--output"])
        .arg(out)
        .arg(app)
        .output()
        .expect("jupiterctl runs")
}

/// The stdout of a command that must have succeeded (else both streams).
fn succeeded(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn assert_rejected(app: &Path, fragments: &[&str]) {
    let out = tempfile::tempdir().expect("tmp");
    let output = run_app(app, out.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "bad app must fail; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    for fragment in fragments {
        assert!(stderr.contains(fragment), "error mentions {fragment:?}: {stderr}");
    }
}

#[test]
fn bad_yaml_names_file_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    write(
        dir.path(),
        "app.yaml",
        "name: x\ntasks:\n  - name: a\n    command: [unclosed\n",
    );
    assert_rejected(dir.path(), &["app.yaml", "line"]);
}

#[test]
fn unknown_field_names_the_field() {
    let dir = tempfile::tempdir().expect("tmp");
    executable(dir.path(), "t.sh");
    write(
        dir.path(),
        "app.yaml",
        "tasks:\n  - name: a\n    comand: ./t.sh\n",
    );
    assert_rejected(dir.path(), &["app.yaml", "comand"]);
}

#[test]
fn unknown_child_names_the_field() {
    let dir = tempfile::tempdir().expect("tmp");
    executable(dir.path(), "t.sh");
    write(
        dir.path(),
        "app.yaml",
        "tasks:\n  - name: a\n    command: ./t.sh\n    children: [ghost]\n",
    );
    assert_rejected(dir.path(), &["app.yaml", "tasks[0].children[0]", "ghost"]);
}

#[test]
fn cycle_names_the_tasks() {
    let dir = tempfile::tempdir().expect("tmp");
    executable(dir.path(), "t.sh");
    write(
        dir.path(),
        "app.yaml",
        "tasks:\n  - name: in\n    command: ./t.sh\n    children: [a]\n  - name: a\n    command: ./t.sh\n    children: [b]\n  - name: b\n    command: ./t.sh\n    children: [a]\n",
    );
    assert_rejected(dir.path(), &["app.yaml", "cycle", "a -> b -> a"]);
}

#[test]
fn missing_program_names_the_task_and_path() {
    let dir = tempfile::tempdir().expect("tmp");
    write(
        dir.path(),
        "app.yaml",
        "tasks:\n  - name: a\n    command: ./nope.sh\n",
    );
    assert_rejected(dir.path(), &["app.yaml", "tasks[0].command", "nope.sh"]);
}

#[test]
fn legacy_app_without_its_script_names_it() {
    let dir = tempfile::tempdir().expect("tmp");
    write(
        dir.path(),
        "configuration.txt",
        "2\ntask0 1 false task1\ntask1 1 false home\n",
    );
    write(
        dir.path(),
        "scripts/task0.py",
        "def task(filename, pathin, pathout):\n    return []\n",
    );
    assert_rejected(dir.path(), &["task1.py"]);
}

#[test]
fn legacy_bad_configuration_names_the_line() {
    let dir = tempfile::tempdir().expect("tmp");
    write(
        dir.path(),
        "configuration.txt",
        "2\ntask0 1 false task1\ntask1 many false home\n",
    );
    write(dir.path(), "scripts/task0.py", "");
    write(dir.path(), "scripts/task1.py", "");
    assert_rejected(dir.path(), &["configuration.txt", "line 3"]);
}

#[test]
fn not_an_app_folder() {
    let dir = tempfile::tempdir().expect("tmp");
    assert_rejected(dir.path(), &["neither app.yaml nor configuration.txt"]);
    assert_rejected(&dir.path().join("missing"), &["missing", "not found"]);
}

#[test]
fn a_failing_task_fails_the_run_with_its_error() {
    let dir = tempfile::tempdir().expect("tmp");
    write(
        dir.path(),
        "fail.sh",
        "#!/bin/sh\necho 'disk on fire' >&2\nexit 3\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path().join("fail.sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    write(
        dir.path(),
        "app.yaml",
        "sample_inputs: [in.txt]\ntasks:\n  - name: boom\n    command: ./fail.sh\n",
    );
    write(dir.path(), "in.txt", "x\n");
    let out = tempfile::tempdir().expect("tmp");
    let output = run_app(dir.path(), out.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    assert!(
        stdout.contains("FAILED") && stdout.contains("disk on fire"),
        "{stdout}"
    );
}

#[test]
fn run_writes_outputs_and_exits_zero() {
    let out = tempfile::tempdir().expect("tmp");
    let output = run_app(&examples().join("chain"), out.path());
    let stdout = succeeded(&output);
    assert!(stdout.contains("3/3 inputs ok"), "{stdout}");
    assert!(out.path().join("in1.txt").join("in1.txt").is_file());
}

#[test]
fn a_relative_workdir_runs_original_python_tasks() {
    // The legacy runner and the queues live under --workdir while each
    // task runs in its own input folder: a relative path must not break it.
    let cwd = tempfile::tempdir().expect("tmp");
    let output = jupiterctl()
        .current_dir(cwd.path())
        .args(["run", "--quiet", "--workdir", "wd1", "--output", "out"])
        .arg(examples().join("dummy_app"))
        .output()
        .expect("jupiterctl runs");
    let stdout = succeeded(&output);
    assert!(stdout.contains("3/3 inputs ok"), "{stdout}");
    assert!(
        cwd.path().join("wd1").is_dir(),
        "the workdir is where it was asked"
    );
}

#[test]
fn runner_flags_reach_every_circe_worker_of_a_rendered_deployment() {
    let output = jupiterctl()
        .args([
            "render",
            "--fresh-interpreter",
            "--task-timeout",
            "2.5",
            "--max-calls",
            "100",
        ])
        .arg(examples().join("dummy_app"))
        .output()
        .expect("jupiterctl runs");
    let yaml = succeeded(&output);
    let mut workers = 0;
    for doc in serde_yaml::Deserializer::from_str(&yaml) {
        let object = serde_yaml::Value::deserialize(doc).expect("YAML");
        let containers = &object["spec"]["template"]["spec"]["containers"];
        let Some(env) = containers[0]["env"].as_sequence() else {
            continue;
        };
        let var = |name: &str| {
            env.iter()
                .find(|v| v["name"].as_str() == Some(name))
                .and_then(|v| v["value"].as_str())
                .map(str::to_string)
        };
        if var("JUPITER_TASK").is_none() {
            assert_eq!(var("JUPITER_TASK_TIMEOUT"), None, "only workers run tasks");
            continue;
        }
        workers += 1;
        assert_eq!(var("JUPITER_FRESH_INTERPRETER").as_deref(), Some("true"));
        assert_eq!(var("JUPITER_TASK_TIMEOUT").as_deref(), Some("2.5"));
        assert_eq!(var("JUPITER_MAX_CALLS").as_deref(), Some("100"));
    }
    assert_eq!(workers, 7, "one circe-worker per task of dummy_app");

    let output = jupiterctl()
        .args(["run", "--task-timeout", "0"])
        .arg(examples().join("dummy_app"))
        .output()
        .expect("jupiterctl runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("--task-timeout") && stderr.contains("expected a number of seconds > 0"),
        "{stderr}"
    );
}

/// `status --json` of the fanjoin app up on 3 local nodes, run by process `pid`.
fn status_json_describes_every_role(output: &Output, pid: u32) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("status --json prints JSON");
    let deployment = report["deployment"].as_str().expect("deployment id");
    assert!(deployment.starts_with("jupiter-fanjoin-"), "{report}");
    assert_eq!(report["backend"], "local");
    let app = examples().join("fanjoin").canonicalize().expect("example");
    assert_eq!(report["app"], app.to_str().expect("utf-8"));
    assert_eq!(report["scheduler"], "heft");
    assert!(
        report["predicted_makespan_secs"].as_f64().expect("a number") > 0.0,
        "{report}"
    );
    let mapping = report["mapping"].as_object().expect("mapping");
    let tasks: Vec<&str> = mapping.keys().map(String::as_str).collect();
    assert_eq!(tasks, ["join", "left", "right", "split"]);
    let roles = report["roles"].as_array().expect("roles");
    assert_eq!(roles.len(), 3 + 2 * 3 + 4, "{report}");
    for role in roles {
        for key in ["role", "node", "task", "url", "healthy"] {
            assert!(role.get(key).is_some(), "{key} in {role}");
        }
        assert_eq!(role["healthy"], true, "{role}");
        assert!(
            role["url"]
                .as_str()
                .expect("url")
                .starts_with("http://127.0.0.1:"),
            "{role}"
        );
        // Every role runs inside the `up` process; none in a container.
        assert_eq!(role["pid"], pid, "{role}");
        assert!(role.get("container").is_none(), "{role}");
    }
    for (task, node) in mapping {
        let worker = roles
            .iter()
            .find(|r| r["role"] == "circe-worker" && r["task"] == task.as_str())
            .unwrap_or_else(|| panic!("the worker of {task}"));
        assert_eq!(&worker["node"], node, "{task} runs on its node");
    }
    let droplets = roles.iter().filter(|r| r["role"] == "drupe-droplet").count();
    assert_eq!(droplets, 3);
    assert!(roles
        .iter()
        .any(|r| r["role"] == "circe-home" && r["node"].is_null()));
}

#[test]
fn serve_offers_every_role_with_its_binarys_own_help() {
    fn same_help<A: clap::Parser>(role: &str) {
        let output = jupiterctl()
            .args(["serve", role, "--help"])
            .output()
            .expect("jupiterctl runs");
        assert!(output.status.success(), "serve {role} --help");
        let shown = String::from_utf8(output.stdout).expect("utf-8");
        // What the role's binary prints: its `main` parses argv with the
        // same Args, which answers `--help` with this text.
        let binary = match A::try_parse_from([role, "--help"]) {
            Err(help) if help.kind() == clap::error::ErrorKind::DisplayHelp => help.render().to_string(),
            _ => panic!("{role} --help shows help"),
        };
        assert_eq!(
            shown.replace(&format!("jupiterctl serve {role}"), role),
            binary,
            "{role}"
        );
        assert!(
            binary.contains("--listen") && binary.contains("JUPITER_LISTEN"),
            "{binary}"
        );
    }
    same_help::<drupe_central::Args>("drupe-central");
    same_help::<drupe_droplet::Args>("drupe-droplet");
    same_help::<wave_home::Args>("wave-home");
    same_help::<wave_worker::Args>("wave-worker");
    same_help::<circe_home::Args>("circe-home");
    same_help::<circe_worker::Args>("circe-worker");
}

#[test]
fn up_submit_status_down() {
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("state.json");
    let mut up = jupiterctl()
        .env("JUPITER_STATE", &state)
        .args(["up", "--output"])
        .arg(tmp.path().join("out"))
        .arg(examples().join("fanjoin"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("up starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !state.exists() {
        assert!(Instant::now() < deadline, "up wrote no state file");
        assert!(up.try_wait().expect("wait").is_none(), "up exited early");
        std::thread::sleep(Duration::from_millis(20));
    }
    let cli = |args: &[&str]| {
        jupiterctl()
            .env("JUPITER_STATE", &state)
            .args(args)
            .output()
            .expect("runs")
    };

    let input = tmp.path().join("x1.txt");
    std::fs::write(&input, "one\ntwo\nthree\n").expect("input");
    let submit = cli(&["submit", input.to_str().expect("utf-8")]);
    let stdout = String::from_utf8_lossy(&submit.stdout);
    assert!(
        submit.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&submit.stderr)
    );
    assert!(stdout.contains("x1.txt") && stdout.contains("ok"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("out/x1.txt/x1.joined")).expect("output"),
        "L:one\nL:three\nR:two\n"
    );

    let again = cli(&["submit", input.to_str().expect("utf-8")]);
    assert!(!again.status.success(), "the same input id twice is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already submitted"));

    let status = cli(&["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success());
    for fragment in ["circe-worker join", "SERVING", "node0", "done 1", "MAPPING"] {
        assert!(text.contains(fragment), "status shows {fragment:?}:\n{text}");
    }
    status_json_describes_every_role(&cli(&["status", "--json"]), up.id());

    let down = cli(&["down"]);
    assert!(down.status.success(), "{}", String::from_utf8_lossy(&down.stderr));
    let exit = up.wait().expect("up ends");
    assert!(exit.success(), "up exits cleanly after down");
    assert!(!state.exists(), "state file removed");
    let after = cli(&["status"]);
    assert!(!after.status.success());
    assert!(String::from_utf8_lossy(&after.stderr).contains("no deployment is up"));
}

#[test]
fn down_of_an_impossible_kubernetes_name_says_so_before_asking_a_cluster() {
    let output = jupiterctl()
        .args(["down", "--kubernetes", "Bad_Name"])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()
        .expect("jupiterctl runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("\"Bad_Name\" is not usable in Kubernetes")
            && !stderr.contains("no Kubernetes cluster"),
        "{stderr}"
    );
}

#[test]
fn exec_profile_json_has_every_task_of_the_app() {
    let output = jupiterctl()
        .args(["exec-profile", "--json"])
        .arg(examples().join("chain"))
        .output()
        .expect("jupiterctl runs");
    let stdout = succeeded(&output);
    let profile: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    assert!(profile["speed"].as_f64().is_some_and(|s| s > 0.0), "{profile}");
    for task in ["upper", "number", "count"] {
        let t = &profile["tasks"][task];
        assert_eq!(t["source"], "measured", "{task}: {profile}");
        assert!(t["cost_secs"].as_f64().is_some(), "{task}: {profile}");
        assert!(t["output_bytes"].as_u64().is_some(), "{task}: {profile}");
    }
    // The table names the same tasks.
    let table = jupiterctl()
        .arg("exec-profile")
        .arg(examples().join("chain"))
        .output()
        .expect("jupiterctl runs");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("cost (s@1)") && table.contains("number"),
        "{table}"
    );
}

#[test]
fn exec_profile_help_teaches_and_a_missing_sample_is_named() {
    let help = jupiterctl()
        .args(["exec-profile", "--help"])
        .output()
        .expect("jupiterctl runs");
    let help = String::from_utf8_lossy(&help.stdout);
    for fragment in ["--profile-timeout", "--sample", "--json", "speed 1", "Examples:"] {
        assert!(help.contains(fragment), "help mentions {fragment:?}: {help}");
    }
    let output = jupiterctl()
        .args(["exec-profile", "--sample", "/nonexistent/in.txt"])
        .arg(examples().join("chain"))
        .output()
        .expect("jupiterctl runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("--sample /nonexistent/in.txt"), "{stderr}");
}

/// `jupiterctl run` of examples/chain with its state file (and so its
/// profile cache) in `state`, plus `extra` flags; returns stderr.
fn run_with_state(state: &Path, extra: &[&str]) -> String {
    let out = tempfile::tempdir().expect("tmp");
    let output = jupiterctl()
        .env("JUPITER_STATE", state.join("deployment.json"))
        .args(["run", "--quiet", "--scheduler", "heft", "--output"])
        .arg(out.path())
        .args(extra)
        .arg(examples().join("chain"))
        .output()
        .expect("jupiterctl runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    stderr
}

#[test]
fn the_second_run_of_an_app_uses_its_cached_profile() {
    let state = tempfile::tempdir().expect("tmp");
    let first = run_with_state(state.path(), &[]);
    assert!(
        first.contains("profiling 3 tasks on sample input in1.txt"),
        "{first}"
    );
    assert!(first.contains("execution profile: 3 measured"), "{first}");
    let cached: Vec<_> = std::fs::read_dir(state.path().join("profiles"))
        .expect("a profiles folder beside the state file")
        .collect();
    assert_eq!(cached.len(), 1, "one profile per app content");
    let second = run_with_state(state.path(), &[]);
    assert!(second.contains("execution profile: cached (app hash"), "{second}");
    assert!(!second.contains("profiling 3 tasks"), "{second}");
    let forced = run_with_state(state.path(), &["--reprofile"]);
    assert!(forced.contains("profiling 3 tasks"), "{forced}");
    let none = run_with_state(state.path(), &["--reprofile", "--profile-timeout", "0"]);
    assert!(none.contains("3 tasks were not profiled"), "{none}");
}
