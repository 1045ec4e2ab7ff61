//! Small helpers for the roles' command lines.

/// Parses a `TASK=URL` flag value.
pub fn parse_task_url(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .filter(|(task, url)| !task.is_empty() && !url.is_empty())
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .ok_or_else(|| format!("expected TASK=URL, got {s:?}"))
}

/// The URL given for `task` among `TASK=URL` values of `--flag`.
pub fn url_for(pairs: &[(String, String)], task: &str, flag: &str) -> Result<String, String> {
    pairs
        .iter()
        .find(|(t, _)| t == task)
        .map(|(_, url)| url.clone())
        .ok_or_else(|| format!("no --{flag} {task}=URL given for task {task}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_urls() {
        let pairs = vec![parse_task_url("a=http://x:1").unwrap()];
        assert_eq!(url_for(&pairs, "a", "child").unwrap(), "http://x:1");
        assert_eq!(
            url_for(&pairs, "b", "child").unwrap_err(),
            "no --child b=URL given for task b"
        );
        assert!(parse_task_url("nourl").is_err());
        assert!(parse_task_url("=http://x").is_err());
    }
}
