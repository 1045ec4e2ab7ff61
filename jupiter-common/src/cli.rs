//! Small helpers for the roles' command lines.

use tonic::transport::Endpoint;

/// A flag value that cannot be used; the message names the flag and the value.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    #[error("expected TASK=URL, got {0:?}")]
    NotTaskUrl(String),
    #[error("no --{flag} {task}=URL given for task {task}")]
    NoUrlFor { flag: String, task: String },
    #[error("--{flag} {url:?} is not a URL: {source}")]
    BadUrl {
        flag: String,
        url: String,
        source: tonic::transport::Error,
    },
    #[error("--{flag} {address:?} is not HOST:PORT (or `off`)")]
    BadAddress { flag: String, address: String },
}

/// Parses a `TASK=URL` flag value.
pub fn parse_task_url(s: &str) -> Result<(String, String), FlagError> {
    s.split_once('=')
        .filter(|(task, url)| !task.is_empty() && !url.is_empty())
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .ok_or_else(|| FlagError::NotTaskUrl(s.to_string()))
}

/// The URL given for `task` among `TASK=URL` values of `--flag`, checked
/// with [`check_url`].
pub fn url_for(pairs: &[(String, String)], task: &str, flag: &str) -> Result<String, FlagError> {
    let url = pairs
        .iter()
        .find(|(t, _)| t == task)
        .map(|(_, url)| url.clone())
        .ok_or_else(|| FlagError::NoUrlFor {
            flag: flag.to_string(),
            task: task.to_string(),
        })?;
    check_url(flag, &url)?;
    Ok(url)
}

/// Fails for a `--flag` URL that [`crate::serve::channel`] would refuse,
/// so that it is reported with its flag before the role binds its port.
pub fn check_url(flag: &str, url: &str) -> Result<(), FlagError> {
    match Endpoint::from_shared(url.to_string()) {
        Ok(_) => Ok(()),
        Err(source) => Err(FlagError::BadUrl {
            flag: flag.to_string(),
            url: url.to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_urls() {
        let pairs = vec![parse_task_url("a=http://x:1").unwrap()];
        assert_eq!(url_for(&pairs, "a", "child").unwrap(), "http://x:1");
        assert_eq!(
            url_for(&pairs, "b", "child").unwrap_err().to_string(),
            "no --child b=URL given for task b"
        );
        assert!(parse_task_url("nourl").is_err());
        assert!(parse_task_url("=http://x").is_err());
        assert_eq!(
            parse_task_url("nourl").unwrap_err().to_string(),
            "expected TASK=URL, got \"nourl\""
        );
    }

    #[test]
    fn bad_urls_name_their_flag() {
        assert!(check_url("central", "http://drupe-central:7100").is_ok());
        let error = check_url("central", "http://bad host").unwrap_err().to_string();
        assert!(
            error.starts_with("--central \"http://bad host\" is not a URL"),
            "{error}"
        );
        let pairs = vec![parse_task_url("a=http://x y").unwrap()];
        assert!(matches!(
            url_for(&pairs, "a", "child"),
            Err(FlagError::BadUrl { .. })
        ));
    }
}

/// How tasks run, for what an app does not say itself (an original app has
/// no place for a timeout): defaults that a task's own `timeout:`,
/// `max_calls:` and `fresh_interpreter:` in app.yaml override.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunnerFlags {
    /// Python tasks (original apps, app.yaml `function:`): a new interpreter
    /// for every input, as the original did, instead of warm interpreters
    /// that import each script once and call it input after input.
    #[arg(long, env = crate::env::FRESH_INTERPRETER)]
    pub fresh_interpreter: bool,
    /// Seconds one run of a task may take, for tasks without their own
    /// `timeout:`. A run past it is killed (a Python task's interpreter too,
    /// the next input gets a new one) and only that input fails.
    #[arg(long, env = crate::env::TASK_TIMEOUT, value_name = "SECS", value_parser = parse_secs)]
    pub task_timeout: Option<std::time::Duration>,
    /// Python tasks: replace each warm interpreter after this many calls
    /// (for scripts that leak), unless the task sets its own `max_calls:`.
    #[arg(long, env = crate::env::MAX_CALLS, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_calls: Option<u64>,
    /// What a worker accepts from the network.
    #[command(flatten)]
    #[serde(default)]
    pub limits: crate::limits::LimitFlags,
}

impl RunnerFlags {
    /// Fills in what `task` leaves unset.
    pub fn apply(&self, task: &mut crate::app::TaskSpec) {
        task.timeout = task.timeout.or(self.task_timeout);
        task.max_calls = task.max_calls.or(self.max_calls);
        task.fresh_interpreter |= self.fresh_interpreter;
    }

    /// The variables that give a circe-worker these flags (containers, pods).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut vars = Vec::new();
        if self.fresh_interpreter {
            vars.push((crate::env::FRESH_INTERPRETER, "true".to_string()));
        }
        if let Some(timeout) = self.task_timeout {
            vars.push((crate::env::TASK_TIMEOUT, timeout.as_secs_f64().to_string()));
        }
        if let Some(max) = self.max_calls {
            vars.push((crate::env::MAX_CALLS, max.to_string()));
        }
        vars.extend(
            self.limits
                .changed()
                .into_iter()
                .map(|(_, var, value)| (var, value)),
        );
        vars
    }
}

/// A number of seconds > 0 (a `--…-timeout` flag).
pub fn parse_secs(s: &str) -> Result<std::time::Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => {
            Ok(std::time::Duration::from_secs_f64(secs))
        }
        _ => Err(format!("expected a number of seconds > 0, got {s:?}")),
    }
}
