//! The bad-inputs corpus (`tests/bad_inputs/`): apps, node lists, mapping
//! files and offline scheduling problems that are wrong in one way each,
//! every one with the substrings its error message must contain.
//!
//! What it guards: a user's broken file is refused before anything runs,
//! never panics the parser, and the message (as `jupiterctl` prints it, the
//! whole chain of causes) says which file, which line or field, and what is
//! wrong. The corpus is walked, so a new case is one more folder or file:
//!
//! - `apps/<case>/`: a whole app folder, with `expected_error.txt` inside;
//! - `nodes/<case>.yaml` (`jupiterctl run --node-list`), `mappings/<case>.yaml`
//!   (`--mapping`), `problems/<case>.json` (`jupiterctl schedule --problem`),
//!   each with `<case>.expected` beside it.
//!
//! An expected file holds one substring per line; blank lines and lines
//! starting with `#` (the why of the case) are skipped. Besides its own
//! substrings every message must name the case (its folder or file name:
//! the path the user gave) and stay short enough to read.
//!
//! A handful of cases also go through the real `jupiterctl` binary, which
//! must exit non-zero with the message on stderr and no panic.

use jupiter_common::app::App;
use jupiter_common::error::explain;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The corpus must not shrink below this without someone noticing.
const MIN_CASES: usize = 40;

/// Longer messages are echoing the input back instead of pointing into it
/// (the very-long-line cases would otherwise print 100 kB).
const MAX_MESSAGE_CHARS: usize = 1500;

/// Which parser a case is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    App,
    NodeList,
    Mapping,
    Problem,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::App, Kind::NodeList, Kind::Mapping, Kind::Problem];

    /// The corpus folder holding this kind's cases.
    fn folder(self) -> &'static str {
        match self {
            Kind::App => "apps",
            Kind::NodeList => "nodes",
            Kind::Mapping => "mappings",
            Kind::Problem => "problems",
        }
    }

    /// Loads `path` through the library, as `jupiterctl` does, and returns
    /// the error as the user sees it; `Ok` is what the corpus must never get.
    fn load(self, path: &Path) -> Result<(), String> {
        match self {
            Kind::App => App::load(path).map(drop).map_err(|e| explain(&e)),
            Kind::NodeList => jupiterctl::node_list::load(path)
                .map(drop)
                .map_err(|e| explain(&e)),
            Kind::Mapping => jupiterctl::mapping_file::load(path)
                .map(drop)
                .map_err(|e| explain(&e)),
            Kind::Problem => wave_home::offline::Problem::load(path)
                .map(drop)
                .map_err(|e| explain(&e)),
        }
    }
}

/// One bad input and what its error must say.
#[derive(Debug)]
struct Case {
    kind: Kind,
    /// `apps/yaml_cycle`, `nodes/cpus_zero.yaml`: how failures are listed.
    label: String,
    /// The app folder or the file, as handed to the parser.
    input: PathBuf,
    /// The case's name (folder or file name), which the message must contain.
    name: String,
    expected: Vec<String>,
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bad_inputs")
}

/// The substrings of an expected file.
fn read_expected(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let wanted: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if wanted.is_empty() {
        // A case that asserts nothing would pass whatever the message says.
        return Err(format!("{}: no expected substring", path.display()));
    }
    Ok(wanted)
}

/// Every case of the corpus, sorted; problems with the corpus itself (a case
/// without its expected file, an expected file without its case) go to
/// `broken`, so they are listed with the failures rather than skipped.
fn cases(broken: &mut Vec<String>) -> Vec<Case> {
    let mut all = Vec::new();
    for kind in Kind::ALL {
        let dir = corpus().join(kind.folder());
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus folder {}: {e}", dir.display()))
            .map(|e| e.expect("corpus folder entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let file_name = path
                .file_name()
                .expect("a folder entry has a name")
                .to_string_lossy()
                .into_owned();
            let label = format!("{}/{file_name}", kind.folder());
            let expected_file = match kind {
                Kind::App => path.join("expected_error.txt"),
                _ if file_name.ends_with(".expected") => {
                    if !path.with_extension("yaml").exists() && !path.with_extension("json").exists() {
                        broken.push(format!("{label}: no input beside this expected file"));
                    }
                    continue;
                }
                _ => path.with_extension("expected"),
            };
            if kind == Kind::App && !path.is_dir() {
                broken.push(format!("{label}: an app case must be a folder"));
                continue;
            }
            match read_expected(&expected_file) {
                Ok(expected) => all.push(Case {
                    kind,
                    label,
                    input: path,
                    name: file_name,
                    expected,
                }),
                Err(e) => broken.push(format!("{label}: {e}")),
            }
        }
    }
    all
}

/// What is wrong with one case's outcome, if anything.
fn check(case: &Case) -> Option<String> {
    // A panic is the worst answer a parser can give: catch it, so it is
    // reported as this case's failure among the others.
    let outcome = std::panic::catch_unwind(|| case.kind.load(&case.input));
    let message = match outcome {
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Some(format!("panicked: {what}"));
        }
        Ok(Ok(())) => return Some("loaded without an error".into()),
        Ok(Err(message)) => message,
    };
    let mut missing: Vec<&str> = case
        .expected
        .iter()
        .map(String::as_str)
        .filter(|want| !message.contains(want))
        .collect();
    if !message.contains(&case.name) {
        missing.push(&case.name);
    }
    let chars = message.chars().count();
    if !missing.is_empty() || chars > MAX_MESSAGE_CHARS {
        let shown: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        return Some(format!(
            "missing {missing:?}{}\n    message: {shown}",
            if chars > MAX_MESSAGE_CHARS {
                format!(" and {chars} characters long (at most {MAX_MESSAGE_CHARS})")
            } else {
                String::new()
            }
        ));
    }
    None
}

#[test]
fn every_bad_input_is_refused_with_its_message() {
    let mut failures = Vec::new();
    let cases = cases(&mut failures);
    for case in &cases {
        if let Some(problem) = check(case) {
            failures.push(format!("{}: {problem}", case.label));
        }
    }
    let count = |kind| cases.iter().filter(|c| c.kind == kind).count();
    eprintln!(
        "{} bad inputs: {} apps, {} node lists, {} mapping files, {} problems",
        cases.len(),
        count(Kind::App),
        count(Kind::NodeList),
        count(Kind::Mapping),
        count(Kind::Problem)
    );
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs are not refused as expected:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        cases.len() >= MIN_CASES,
        "the corpus has {} cases, fewer than {MIN_CASES}",
        cases.len()
    );
}

/// The cases run through the binary, and the arguments that run each one.
/// `run` checks the app, the mapping and the node list before it deploys;
/// `--probe-interval 0` is refused only after all three, so should a case
/// ever load, `run` still stops there instead of deploying.
fn cli_args(case: &Case, output: &Path) -> Vec<String> {
    let input = case.input.display().to_string();
    let example = jupiter_tests::example("chain").display().to_string();
    let run = |app: &str, flags: &[&str]| {
        let mut args = vec!["run".to_string(), app.to_string()];
        args.extend(flags.iter().map(|f| f.to_string()));
        args.extend(["--probe-interval", "0", "--output"].map(String::from));
        args.push(output.display().to_string());
        args
    };
    match case.kind {
        Kind::App => run(&input, &[]),
        Kind::NodeList => run(&example, &["--node-list", &input]),
        Kind::Mapping => run(&example, &["--mapping", &input]),
        Kind::Problem => ["schedule", "--problem", &input, "--algorithm", "heft"]
            .map(String::from)
            .to_vec(),
    }
}

#[tokio::test]
async fn jupiterctl_refuses_bad_inputs() {
    const THROUGH_CLI: [&str; 7] = [
        "apps/yaml_unknown_child",
        "apps/legacy_wait_not_a_number",
        "apps/yaml_non_utf8",
        "nodes/bandwidth_mbps.yaml",
        "nodes/duplicate_node.yaml",
        "mappings/a_list.yaml",
        "problems/edge_cycle.json",
    ];
    let mut broken = Vec::new();
    let all = cases(&mut broken);
    let bin = jupiter_tests::jupiterctl_bin().await;
    let sandbox = jupiter_tests::Sandbox::new();
    let mut failures = Vec::new();
    for label in THROUGH_CLI {
        let case = all
            .iter()
            .find(|c| c.label == label)
            .unwrap_or_else(|| panic!("{label} is not in the corpus"));
        let args = cli_args(case, &sandbox.path("output"));
        let mut command = tokio::process::Command::new(&bin);
        command.args(&args).kill_on_drop(true);
        // The deployment flags read these too: the test's own arguments decide.
        for var in ["JUPITER_NODES", "JUPITER_NODE_LIST", "JUPITER_BACKEND"] {
            command.env_remove(var);
        }
        let out = tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .unwrap_or_else(|_| panic!("{label}: jupiterctl {args:?} still running after 60 s"))
            .expect("jupiterctl starts");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut problems = Vec::new();
        if out.status.success() {
            problems.push(format!("exited {}", out.status));
        }
        if stderr.contains("panicked") {
            problems.push("panicked".to_string());
        }
        let missing: Vec<&String> = case
            .expected
            .iter()
            .filter(|want| !stderr.contains(want.as_str()))
            .collect();
        if !missing.is_empty() {
            problems.push(format!("stderr lacks {missing:?}"));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{label}: jupiterctl {}: {}\n    stderr: {stderr}",
                args.join(" "),
                problems.join(", ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "jupiterctl on bad inputs:\n{}",
        failures.join("\n")
    );
}
