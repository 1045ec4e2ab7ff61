//! `app.yaml`, the format of new apps:
//!
//! ```yaml
//! name: fanjoin            # optional, defaults to the folder name
//! sample_inputs: inputs    # a folder, or a list of files; optional
//! tasks:
//!   - name: split
//!     command: ./tasks/split.sh          # a string (split on whitespace) or a list
//!     children: [left, right]            # optional; none = egress
//!     parallelism: 2                     # optional, default 1
//!     cost: 0.5                          # optional: seconds on a node of speed 1
//!     output_bytes: 20000                # optional: bytes sent to each child
//!     route: by-suffix                   # optional: by-suffix (default), all, by-order
//!     timeout: 30                        # optional: seconds one run may take
//!   - name: detect
//!     function: scripts/detect.py:task   # instead of command: a Python function
//!     fresh_interpreter: false           # optional: a new interpreter per input
//!     max_calls: 1000                    # optional: replace the interpreter after N calls
//! mapping: {split: node0}                # optional static mapping task -> node
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::error::{AppError, Location};
use super::text::{quote, yaml_control_character};
use super::{
    check_task_name, finish_graph, is_sink_name, resolve, App, AppFormat, Route, TaskRunner, TaskSpec,
};

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of name, sample_inputs, tasks, mapping"
)]
struct RawApp {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    sample_inputs: Option<StrOrList>,
    tasks: Vec<RawTask>,
    #[serde(default)]
    mapping: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a task: a mapping of name, command or function, children, parallelism, cost, output_bytes, route, timeout, fresh_interpreter, max_calls"
)]
struct RawTask {
    name: String,
    #[serde(default)]
    command: Option<StrOrList>,
    #[serde(default)]
    function: Option<String>,
    #[serde(default)]
    children: Vec<String>,
    #[serde(default = "one")]
    parallelism: usize,
    #[serde(default)]
    cost: Option<f64>,
    #[serde(default)]
    output_bytes: Option<u64>,
    #[serde(default)]
    route: Route,
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(default)]
    fresh_interpreter: Option<bool>,
    #[serde(default)]
    max_calls: Option<u64>,
}

fn one() -> usize {
    1
}

/// A string or a list of strings (commands, sample inputs).
#[derive(Debug)]
enum StrOrList {
    Str(String),
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for StrOrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrOrList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StrOrList, E> {
                Ok(StrOrList::Str(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrOrList, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                Ok(StrOrList::List(v))
            }
        }
        d.deserialize_any(V)
    }
}

pub(crate) fn load(file: &Path, dir: &Path) -> Result<App, AppError> {
    let text = super::read_text(file)?;
    let lines = Lines::new(&text);
    let invalid = |field: String, line: Option<usize>, msg: String| {
        AppError::invalid(file, Location::field(field, line), msg)
    };
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(AppError::invalid(
            file,
            Location::default(),
            "file is empty: an app.yaml needs at least a `tasks:` list",
        ));
    }
    // The YAML parser names a control character by its byte offset only.
    if let Some((line, column, c)) = yaml_control_character(&text) {
        return Err(AppError::Syntax {
            file: file.to_path_buf(),
            line: Some(line),
            column: Some(column),
            message: format!("control character {c:?} is not allowed in YAML (is this a text file?)"),
        });
    }
    let raw: RawApp = serde_yaml::from_str(&text).map_err(|e| syntax_error(file, e))?;

    let name = match raw.name {
        Some(n) if n.trim().is_empty() => {
            return Err(invalid(
                "name".into(),
                lines.top_key("name"),
                "app name is empty".into(),
            ))
        }
        Some(n) => n,
        None => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    if raw.tasks.is_empty() {
        return Err(invalid(
            "tasks".into(),
            lines.top_key("tasks"),
            "no tasks: an app needs at least one".into(),
        ));
    }

    let mut first_index: HashMap<String, usize> = HashMap::new();
    for (i, t) in raw.tasks.iter().enumerate() {
        let at = || lines.task_key(i, "name").or(lines.task_line(i));
        check_task_name(&t.name).map_err(|e| invalid(format!("tasks[{i}].name"), at(), e.to_string()))?;
        if let Some(&j) = first_index.get(&t.name) {
            return Err(invalid(
                format!("tasks[{i}].name"),
                at(),
                format!(
                    "duplicate task name {} (already the name of tasks[{j}])",
                    quote(&t.name)
                ),
            ));
        }
        first_index.insert(t.name.clone(), i);
    }

    let mut tasks = Vec::with_capacity(raw.tasks.len());
    for (i, t) in raw.tasks.into_iter().enumerate() {
        if t.parallelism == 0 {
            return Err(invalid(
                format!("tasks[{i}].parallelism"),
                lines.task_key(i, "parallelism"),
                "must be at least 1".into(),
            ));
        }
        if let Some(cost) = t.cost {
            if !(cost.is_finite() && cost >= 0.0) {
                return Err(invalid(
                    format!("tasks[{i}].cost"),
                    lines.task_key(i, "cost"),
                    format!("must be a number of seconds >= 0, got {cost}"),
                ));
            }
        }
        let runner = runner(dir, i, &t, &lines).map_err(|(field, line, msg)| invalid(field, line, msg))?;
        let timeout = match t.timeout {
            None => None,
            Some(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => {
                Some(std::time::Duration::from_secs_f64(secs))
            }
            Some(secs) => {
                return Err(invalid(
                    format!("tasks[{i}].timeout"),
                    lines.task_key(i, "timeout"),
                    format!("must be a number of seconds > 0, got {secs}"),
                ))
            }
        };
        for (j, c) in t.children.iter().enumerate() {
            let field = format!("tasks[{i}].children[{j}]");
            let line = || {
                lines
                    .task_value_after(i, "children", c)
                    .or(lines.task_key(i, "children"))
            };
            if !first_index.contains_key(c.as_str()) {
                let hint = if is_sink_name(c) {
                    format!(
                        "; {} is a sink of the original format: leave `children` out for an egress task",
                        quote(c)
                    )
                } else {
                    String::new()
                };
                return Err(invalid(field, line(), format!("unknown task {}{hint}", quote(c))));
            }
            if t.children[..j].contains(c) {
                return Err(invalid(field, line(), format!("task {} listed twice", quote(c))));
            }
        }
        tasks.push(TaskSpec {
            name: t.name,
            runner,
            parents: Vec::new(),
            children: t.children,
            parallelism: t.parallelism,
            cost: t.cost,
            output_bytes: t.output_bytes,
            route: t.route,
            wait_for: None,
            timeout,
            fresh_interpreter: t.fresh_interpreter.unwrap_or(false),
            max_calls: t.max_calls,
        });
    }
    finish_graph(file, &mut tasks)?;

    let mut static_mapping = BTreeMap::new();
    for (task, node) in raw.mapping.unwrap_or_default() {
        let line = lines.section_token("mapping", &task).or(lines.top_key("mapping"));
        if !first_index.contains_key(task.as_str()) {
            return Err(invalid(
                format!("mapping.{task}"),
                line,
                format!("unknown task {}", quote(&task)),
            ));
        }
        if node.trim().is_empty() {
            return Err(invalid(format!("mapping.{task}"), line, "empty node name".into()));
        }
        static_mapping.insert(task, node);
    }

    let sample_inputs = match raw.sample_inputs {
        None => Vec::new(),
        Some(s) => sample_inputs(file, dir, s, &lines)?,
    };

    Ok(App {
        name,
        dir: dir.to_path_buf(),
        format: AppFormat::Yaml,
        tasks,
        sample_inputs,
        static_mapping,
    })
}

/// A semantic error: the field, its line, the message.
type FieldError = (String, Option<usize>, String);

/// What runs `tasks[i]`: its `command:`, or its `function:` (with the
/// fields only a Python function takes).
fn runner(dir: &Path, i: usize, t: &RawTask, lines: &Lines) -> Result<TaskRunner, FieldError> {
    let field = |key: &str| (format!("tasks[{i}].{key}"), lines.task_key(i, key));
    let error = |key: &str, msg: String| {
        let (field, line) = field(key);
        (field, line, msg)
    };
    match (&t.command, &t.function) {
        (Some(_), Some(_)) => Err(error(
            "function",
            "give either `command:` (any executable) or `function:` (a Python function), not both".into(),
        )),
        // Neither key is there to point at: the task's own first line.
        (None, None) => Err((
            format!("tasks[{i}].command"),
            lines.task_line(i),
            "missing: give `command:` (any executable) or `function:` (a Python function, e.g. scripts/detect.py:task)".into(),
        )),
        (Some(command), None) => {
            for key in ["fresh_interpreter", "max_calls"] {
                let set = match key {
                    "fresh_interpreter" => t.fresh_interpreter.is_some(),
                    _ => t.max_calls.is_some(),
                };
                if set {
                    return Err(error(
                        key,
                        "applies to `function:` tasks only (a `command:` task is a new process per input)".into(),
                    ));
                }
            }
            let words: Vec<String> = match command {
                StrOrList::Str(s) => s.split_whitespace().map(str::to_owned).collect(),
                StrOrList::List(l) => l.clone(),
            };
            let Some((first, args)) = words.split_first() else {
                return Err(error("command", "empty command".into()));
            };
            let program = resolve::program(dir, first).map_err(|e| error("command", e.to_string()))?;
            Ok(TaskRunner::Command {
                program,
                args: args.to_vec(),
            })
        }
        (None, Some(function)) => {
            if t.max_calls == Some(0) {
                return Err(error("max_calls", "must be at least 1".into()));
            }
            let (script, function) =
                parse_function(dir, function).map_err(|msg| error("function", msg))?;
            Ok(TaskRunner::Python { script, function })
        }
    }
}

/// `scripts/detect.py:task` (the function defaults to `task`): the
/// script, which must be a file in the app folder, and the function's name.
fn parse_function(dir: &Path, spec: &str) -> Result<(PathBuf, String), String> {
    let (path, function) = match spec.rsplit_once(':') {
        Some((path, function)) => (path, function),
        None => (spec, "task"),
    };
    let identifier = function
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && function.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !identifier {
        return Err(format!(
            "{function:?} is not a Python function name (expected SCRIPT.py:FUNCTION, e.g. scripts/detect.py:task)"
        ));
    }
    if !path.ends_with(".py") {
        return Err(format!(
            "{path:?} is not a Python file (expected SCRIPT.py:FUNCTION, e.g. scripts/detect.py:task)"
        ));
    }
    let script = resolve::normalize(&dir.join(path));
    if !script.starts_with(dir) {
        return Err(format!("{path:?} is outside the app folder"));
    }
    if !script.is_file() {
        return Err(format!("script {path:?} not found at {}", script.display()));
    }
    Ok((script, function.to_string()))
}

fn sample_inputs(file: &Path, dir: &Path, spec: StrOrList, lines: &Lines) -> Result<Vec<PathBuf>, AppError> {
    let line = lines.top_key("sample_inputs");
    match spec {
        StrOrList::Str(folder) => {
            let path = resolve::normalize(&dir.join(&folder));
            let at = || Location::field("sample_inputs", line);
            match std::fs::metadata(&path) {
                Err(_) => Err(AppError::invalid(
                    file,
                    at(),
                    format!("folder {folder:?} not found at {}", path.display()),
                )),
                Ok(m) if m.is_file() => Ok(vec![path]),
                Ok(_) => resolve::folder_files(&path).map_err(|e| {
                    AppError::invalid(file, at(), format!("cannot list {}: {e}", path.display()))
                }),
            }
        }
        StrOrList::List(names) => {
            let mut files: Vec<PathBuf> = Vec::with_capacity(names.len());
            for (k, n) in names.iter().enumerate() {
                let path = resolve::normalize(&dir.join(n));
                let at = Location::field(format!("sample_inputs[{k}]"), lines.after(line, n).or(line));
                if !path.is_file() {
                    return Err(AppError::invalid(
                        file,
                        at,
                        format!("file {n:?} not found at {}", path.display()),
                    ));
                }
                if let Some(j) = files.iter().position(|f| f.file_name() == path.file_name()) {
                    return Err(AppError::invalid(
                        file,
                        at,
                        format!("file name of {n:?} is also that of sample_inputs[{j}] (a file name is an input's id)"),
                    ));
                }
                files.push(path);
            }
            resolve::sort_by_file_name(&mut files);
            Ok(files)
        }
    }
}

/// `file: line L column C: path: message` from a serde_yaml error (its own
/// trailing ` at line L column C` moved to the front).
fn syntax_error(file: &Path, e: serde_yaml::Error) -> AppError {
    let mut message = e.to_string();
    let (line, column) = match e.location() {
        Some(l) => {
            let suffix = format!(" at line {} column {}", l.line(), l.column());
            if let Some(m) = message.strip_suffix(&suffix) {
                message = m.to_owned();
            }
            (Some(l.line()), Some(l.column()))
        }
        None => (None, None),
    };
    AppError::Syntax {
        file: file.to_path_buf(),
        line,
        column,
        message,
    }
}

/// Finds the lines (1-based) of keys and values in the YAML text, for the
/// messages of semantic errors. Best effort: block style is understood,
/// flow style yields `None` for task-level lookups.
struct Lines<'a> {
    lines: Vec<&'a str>,
    /// `[start, end)` (0-based line indices) of each item of `tasks:`.
    tasks: Vec<(usize, usize)>,
}

fn indent(l: &str) -> usize {
    l.len() - l.trim_start().len()
}

fn is_content(l: &str) -> bool {
    let t = l.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// `tok` occurs in `l` delimited by characters that cannot be part of a name.
fn contains_token(l: &str, tok: &str) -> bool {
    let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/');
    l.match_indices(tok).any(|(i, _)| {
        let before = l[..i].chars().next_back();
        let after = l[i + tok.len()..].chars().next();
        !before.is_some_and(name_char) && !after.is_some_and(name_char)
    })
}

/// The line is `key:` (possibly as `- key:`, the key possibly quoted).
fn is_key(l: &str, key: &str) -> bool {
    let t = l.trim_start();
    let t = t.strip_prefix('-').map(str::trim_start).unwrap_or(t);
    let (t, quote) = match t.chars().next() {
        Some(q @ ('"' | '\'')) => (&t[1..], Some(q)),
        _ => (t, None),
    };
    let Some(t) = t.strip_prefix(key) else {
        return false;
    };
    let t = match quote {
        Some(q) => match t.strip_prefix(q) {
            Some(t) => t,
            None => return false,
        },
        None => t,
    };
    t.strip_prefix(':')
        .is_some_and(|r| r.chars().next().is_none_or(char::is_whitespace))
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let lines: Vec<&str> = text.lines().collect();
        let mut me = Lines {
            lines,
            tasks: Vec::new(),
        };
        if let Some(t) = me.top_key("tasks") {
            me.tasks = me.items_after(t - 1);
        }
        me
    }

    fn items_after(&self, key_idx: usize) -> Vec<(usize, usize)> {
        let mut items: Vec<(usize, usize)> = Vec::new();
        let mut item_indent = None;
        let mut end = self.lines.len();
        for (i, l) in self.lines.iter().enumerate().skip(key_idx + 1) {
            if !is_content(l) {
                continue;
            }
            let ind = indent(l);
            let dash = l.trim_start().starts_with('-');
            let want = *item_indent.get_or_insert(ind);
            if ind < want || (ind == want && !dash) || (items.is_empty() && !dash) {
                end = i;
                break;
            }
            if ind == want {
                if let Some(last) = items.last_mut() {
                    last.1 = i;
                }
                items.push((i, self.lines.len()));
            }
        }
        if let Some(last) = items.last_mut() {
            last.1 = end;
        }
        items
    }

    /// Line of the top-level `key:`.
    fn top_key(&self, key: &str) -> Option<usize> {
        self.lines
            .iter()
            .position(|l| indent(l) == 0 && is_key(l, key))
            .map(|i| i + 1)
    }

    /// First line of `tasks[i]`.
    fn task_line(&self, i: usize) -> Option<usize> {
        self.tasks.get(i).map(|(s, _)| s + 1)
    }

    /// Line of `key:` inside `tasks[i]`.
    fn task_key(&self, i: usize, key: &str) -> Option<usize> {
        let (s, e) = *self.tasks.get(i)?;
        (s..e).find(|&k| is_key(self.lines[k], key)).map(|k| k + 1)
    }

    /// First line from `tasks[i].key` on (inside the task) holding `value`.
    fn task_value_after(&self, i: usize, key: &str, value: &str) -> Option<usize> {
        let (_, e) = *self.tasks.get(i)?;
        let from = self.task_key(i, key)? - 1;
        (from..e)
            .find(|&k| contains_token(self.lines[k], value))
            .map(|k| k + 1)
    }

    /// First line from (1-based) `line` on that holds `value`, within its
    /// top-level section.
    fn after(&self, line: Option<usize>, value: &str) -> Option<usize> {
        let from = line? - 1;
        self.lines
            .iter()
            .enumerate()
            .skip(from)
            .take_while(|(k, l)| *k == from || !is_content(l) || indent(l) > 0 || l.starts_with('-'))
            .find(|(_, l)| contains_token(l, value))
            .map(|(k, _)| k + 1)
    }

    /// Line holding `value` within the top-level section `key:`.
    fn section_token(&self, key: &str, value: &str) -> Option<usize> {
        self.after(self.top_key(key), value)
    }
}
