//! Apps of the original Python Jupiter, run unchanged: `configuration.txt`,
//! `scripts/<task>.py`, `sample_input/`.
//!
//! `configuration.txt` comes in two variants, told apart by whether the
//! second token of the task lines is an integer:
//! - Jupiter: line 1 the task count N, then N lines `task inputs_to_wait_for flag child...`;
//! - CIRCE: line 1 N, then N lines `task child...`, then optional `task node`
//!   lines (a static mapping).
//!
//! Children named `home`, `scheduler` or `datasink*` are the sink: the task is egress.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::error::{AppError, Location};
use super::{
    check_task_name, finish_graph, is_sink_name, resolve, text, App, AppFormat, Route, TaskRunner, TaskSpec,
};
use text::quote;

struct TaskLine<'a> {
    line: usize,
    name: &'a str,
    wait: Option<usize>,
    route: Route,
    children: Vec<&'a str>,
}

pub(crate) fn load(file: &Path, dir: &Path) -> Result<App, AppError> {
    let text = super::read_text(file)?;
    let err = |line: usize, msg: String| AppError::invalid(file, Location::line(line), msg);
    // (1-based line number, tokens) of every non-blank line.
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split_whitespace().collect::<Vec<_>>()))
        .filter(|(_, t)| !t.is_empty() && !t[0].starts_with('#'));

    let Some((count_line, count_tokens)) = lines.next() else {
        return Err(AppError::invalid(
            file,
            Location::default(),
            "file is empty: its first line must be the number of tasks",
        ));
    };
    let count = match count_tokens.as_slice() {
        [n] => n.parse::<usize>().ok().filter(|&n| n > 0),
        _ => None,
    }
    .ok_or_else(|| {
        err(
            count_line,
            format!(
                "the first line must be the number of tasks (a positive integer), got {}",
                quote(&count_tokens.join(" "))
            ),
        )
    })?;

    let task_lines: Vec<(usize, Vec<&str>)> = lines.by_ref().take(count).collect();
    if task_lines.len() < count {
        return Err(err(
            count_line,
            format!(
                "task count mismatch: line {count_line} announces {count} tasks but {} task line{} follow{}",
                task_lines.len(),
                if task_lines.len() == 1 { "" } else { "s" },
                if task_lines.len() == 1 { "s" } else { "" },
            ),
        ));
    }
    let jupiter = task_lines[0].1.get(1).is_some_and(|t| t.parse::<u64>().is_ok());
    let rest: Vec<(usize, Vec<&str>)> = lines.collect();
    // Jupiter: nothing may follow. Said first, since a miscounted file
    // would otherwise be refused for a child on a line past the count.
    if let (true, Some((line, _))) = (jupiter, rest.first()) {
        return Err(err(
            *line,
            format!(
                "task count mismatch: line {count_line} announces {count} tasks but more task lines follow"
            ),
        ));
    }

    let mut parsed: Vec<TaskLine> = Vec::with_capacity(count);
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (line, tokens) in &task_lines {
        let line = *line;
        let name = tokens[0];
        check_task_name(name).map_err(|e| err(line, e.to_string()))?;
        if let Some(prev) = seen.insert(name, line) {
            return Err(err(
                line,
                format!("duplicate task {} (already defined on line {prev})", quote(name)),
            ));
        }
        let (wait, route, children) = if jupiter {
            if tokens.len() < 3 {
                return Err(err(
                    line,
                    format!(
                        "expected `task inputs_to_wait_for flag child...` (like the lines above), got {}",
                        quote(&tokens.join(" "))
                    ),
                ));
            }
            let wait = tokens[1]
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    err(
                        line,
                        format!(
                            "task {}: inputs_to_wait_for must be a positive integer, got {}",
                            quote(name),
                            quote(tokens[1])
                        ),
                    )
                })?;
            // circe/original/monitor.py: `true` sends every output to every
            // child; anything else pairs outputs with children in order.
            let route = match tokens[2] {
                "true" => Route::All,
                "false" => Route::ByOrder,
                other => {
                    return Err(err(
                        line,
                        format!(
                            "task {}: flag (3rd field) must be true (every output to every child) \
                             or false (the i-th output to the i-th child), got {}",
                            quote(name),
                            quote(other)
                        ),
                    ))
                }
            };
            (Some(wait), route, tokens[3..].to_vec())
        } else {
            // No flag to follow: the suffix rule, as before.
            (None, Route::BySuffix, tokens[1..].to_vec())
        };
        parsed.push(TaskLine {
            line,
            name,
            wait,
            route,
            children,
        });
    }

    for t in &parsed {
        let sinks = t.children.iter().filter(|c| is_sink_name(c)).count();
        if sinks > 0 && sinks < t.children.len() {
            return Err(err(
                t.line,
                format!(
                    "task {} lists a sink (home) beside tasks: results go home only from tasks \
                     whose children are all sinks; give the home-bound outputs their own task",
                    quote(t.name)
                ),
            ));
        }
        for (j, c) in t.children.iter().enumerate() {
            if is_sink_name(c) {
                continue;
            }
            if !seen.contains_key(c) {
                return Err(err(
                    t.line,
                    format!("task {}: unknown child {}", quote(t.name), quote(c)),
                ));
            }
            if t.children[..j].contains(c) {
                return Err(err(
                    t.line,
                    format!("task {}: child {} listed twice", quote(t.name), quote(c)),
                ));
            }
        }
    }

    // CIRCE: `task node` lines (Jupiter's have been refused above).
    let mut static_mapping = BTreeMap::new();
    let mut mapped_on: HashMap<&str, usize> = HashMap::new();
    for (line, tokens) in rest {
        let [task, node] = tokens.as_slice() else {
            return Err(err(
                line,
                format!(
                    "expected a static mapping line `task node` after the {count} task lines, got {}",
                    quote(&tokens.join(" "))
                ),
            ));
        };
        if !seen.contains_key(task) {
            return Err(err(
                line,
                format!("static mapping of unknown task {}", quote(task)),
            ));
        }
        if let Some(prev) = mapped_on.insert(task, line) {
            return Err(err(
                line,
                format!("task {} already mapped on line {prev}", quote(task)),
            ));
        }
        static_mapping.insert(task.to_string(), node.to_string());
    }

    let mut tasks = Vec::with_capacity(count);
    for t in &parsed {
        let rel = format!("scripts/{}.py", t.name);
        let script = dir.join(&rel);
        if !script.is_file() {
            return Err(err(
                t.line,
                format!(
                    "task {}: script {rel} not found at {}",
                    quote(t.name),
                    script.display()
                ),
            ));
        }
        tasks.push(TaskSpec {
            name: t.name.to_owned(),
            runner: TaskRunner::Python {
                script,
                function: "task".to_string(),
            },
            parents: Vec::new(),
            children: t
                .children
                .iter()
                .filter(|c| !is_sink_name(c))
                .map(|c| c.to_string())
                .collect(),
            parallelism: 1,
            cost: None,
            output_bytes: None,
            route: t.route,
            wait_for: t.wait,
            timeout: None,
            fresh_interpreter: false,
            max_calls: None,
        });
    }
    finish_graph(file, &mut tasks)?;
    let sample_dir = dir.join("sample_input");
    let sample_inputs = if sample_dir.is_dir() {
        resolve::folder_files(&sample_dir).map_err(|e| AppError::io(&sample_dir, e))?
    } else {
        Vec::new()
    };

    Ok(App {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        dir: dir.to_path_buf(),
        format: AppFormat::Legacy,
        tasks,
        sample_inputs,
        static_mapping,
    })
}
