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
