//! What a circe-worker accepts from the network, bounded: how many files a
//! producer may announce for one input, how big one file may be, how many
//! inputs may wait for their parents at once, and for how long. A request
//! past a limit is refused with a status that names the limit and the flag
//! that raises it, before anything is written.

use crate::env;
use std::time::Duration;
use tonic::Status;

/// Longest `input_id`, `from_task` or `file_name` in a file header (one
/// path component on every filesystem Jupiter writes to).
pub const MAX_NAME_LEN: usize = 255;

/// The limits' flags, shared by circe-worker and by jupiterctl's `run`/`up`
/// (which hand them to every worker, on every backend).
#[derive(clap::Args, Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LimitFlags {
    /// Files one producer may send a worker for one input (a larger
    /// `file_count` in a push is refused with InvalidArgument).
    #[arg(long, env = env::MAX_FILES_PER_INPUT, value_name = "N",
          default_value_t = Limits::DEFAULT.max_files_per_input,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_files_per_input: u32,
    /// Bytes one pushed file may have, with an optional K, M, G or T suffix
    /// (powers of 1024). A larger file is refused before it is written.
    #[arg(long, env = env::MAX_FILE_SIZE, value_name = "BYTES",
          default_value = "64G", value_parser = parse_size)]
    pub max_file_size: u64,
    /// Inputs a worker holds at once whose files are still arriving: past
    /// it, a push of a new input gets ResourceExhausted and its sender
    /// retries later.
    #[arg(long, env = env::MAX_WAITING_INPUTS, value_name = "N",
          default_value_t = Limits::DEFAULT.max_waiting_inputs,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_waiting_inputs: u32,
    /// Seconds an input may wait on a worker for its parents' files; past
    /// it the input fails, its missing parents named. Default: no limit.
    #[arg(long, env = env::INPUT_TIMEOUT, value_name = "SECS", value_parser = crate::cli::parse_secs)]
    pub input_timeout: Option<Duration>,
}

impl Default for LimitFlags {
    fn default() -> Self {
        let d = Limits::DEFAULT;
        LimitFlags {
            max_files_per_input: d.max_files_per_input,
            max_file_size: d.max_file_size,
            max_waiting_inputs: d.max_waiting_inputs,
            input_timeout: d.input_timeout,
        }
    }
}

impl LimitFlags {
    pub fn limits(&self) -> Limits {
        Limits {
            max_files_per_input: self.max_files_per_input,
            max_file_size: self.max_file_size,
            max_waiting_inputs: self.max_waiting_inputs,
            input_timeout: self.input_timeout,
        }
    }

    /// The limits that differ from the defaults, as (flag, variable, value):
    /// what jupiterctl passes a worker as flags (local) or variables
    /// (containers, pods).
    pub fn changed(&self) -> Vec<(&'static str, &'static str, String)> {
        let d = LimitFlags::default();
        let mut out = Vec::new();
        if self.max_files_per_input != d.max_files_per_input {
            out.push((
                "max-files-per-input",
                env::MAX_FILES_PER_INPUT,
                self.max_files_per_input.to_string(),
            ));
        }
        if self.max_file_size != d.max_file_size {
            out.push((
                "max-file-size",
                env::MAX_FILE_SIZE,
                self.max_file_size.to_string(),
            ));
        }
        if self.max_waiting_inputs != d.max_waiting_inputs {
            out.push((
                "max-waiting-inputs",
                env::MAX_WAITING_INPUTS,
                self.max_waiting_inputs.to_string(),
            ));
        }
        if let Some(timeout) = self.input_timeout {
            out.push((
                "input-timeout",
                env::INPUT_TIMEOUT,
                timeout.as_secs_f64().to_string(),
            ));
        }
        out
    }
}

/// A worker's checked limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_files_per_input: u32,
    pub max_file_size: u64,
    pub max_waiting_inputs: u32,
    pub input_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_files_per_input: 10_000,
        max_file_size: 64 << 30,
        max_waiting_inputs: 10_000,
        input_timeout: None,
    };

    /// A header's announced count and size, against the limits.
    pub fn check_header(&self, file_count: u32, size: u64) -> Result<(), Status> {
        if file_count > self.max_files_per_input {
            return Err(Status::invalid_argument(format!(
                "header.file_count {file_count} is over the limit of {} files per input per producer \
                 (the receiving worker's --max-files-per-input)",
                self.max_files_per_input
            )));
        }
        if size > self.max_file_size {
            return Err(Status::invalid_argument(format!(
                "header.size {size} bytes is over the limit of {} bytes per file \
                 (the receiving worker's --max-file-size)",
                self.max_file_size
            )));
        }
        Ok(())
    }

    /// A new input when `waiting` inputs already wait for their parents.
    pub fn check_waiting(&self, waiting: usize) -> Result<(), Status> {
        if waiting >= self.max_waiting_inputs as usize {
            return Err(Status::resource_exhausted(format!(
                "{waiting} inputs are already waiting for their parents' files on this worker, \
                 the limit (--max-waiting-inputs {}); try again later",
                self.max_waiting_inputs
            )));
        }
        Ok(())
    }
}

/// A size in bytes: a number with an optional K, M, G or T (×1024ⁿ; `B`,
/// `iB` and lower case accepted).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let digits = lower.trim_end_matches('b').trim_end_matches('i');
    let (number, shift) = match digits.chars().last() {
        Some('k') => (&digits[..digits.len() - 1], 10),
        Some('m') => (&digits[..digits.len() - 1], 20),
        Some('g') => (&digits[..digits.len() - 1], 30),
        Some('t') => (&digits[..digits.len() - 1], 40),
        _ => (digits, 0),
    };
    let bad = || format!("expected a size in bytes such as 1048576, 512M or 64G, got {s:?}");
    let n: u64 = number.trim().parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(bad());
    }
    n.checked_mul(1u64 << shift).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        limits: LimitFlags,
    }

    #[test]
    fn sizes_parse_with_suffixes_and_refuse_nonsense() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("64GiB"), Ok(64 << 30));
        assert_eq!(parse_size("2k"), Ok(2048));
        for bad in ["", "0", "-1", "12X", "G", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad:?} refused");
        }
    }

    #[test]
    fn headers_past_a_limit_are_refused_naming_the_flag() {
        let limits = Limits::DEFAULT;
        assert!(limits.check_header(10_000, 64 << 30).is_ok());
        let e = limits
            .check_header(4_000_000_000, 10)
            .expect_err("too many files");
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("--max-files-per-input"), "{}", e.message());
        let e = limits.check_header(1, (64 << 30) + 1).expect_err("too big");
        assert!(e.message().contains("--max-file-size"), "{}", e.message());
        let e = limits.check_waiting(10_000).expect_err("too many waiting");
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(e.message().contains("--max-waiting-inputs"), "{}", e.message());
    }

    #[test]
    fn only_changed_limits_are_handed_on() {
        let cli = Cli::parse_from(["w"]);
        assert_eq!(cli.limits, LimitFlags::default());
        assert!(cli.limits.changed().is_empty());
        let cli = Cli::parse_from(["w", "--max-file-size", "1M", "--input-timeout", "30"]);
        let changed = cli.limits.changed();
        assert_eq!(changed.len(), 2);
        assert_eq!(
            changed[0],
            ("max-file-size", env::MAX_FILE_SIZE, "1048576".to_string())
        );
        assert_eq!(cli.limits.limits().input_timeout, Some(Duration::from_secs(30)));
        assert!(Cli::try_parse_from(["w", "--max-files-per-input", "0"]).is_err());
    }
}
