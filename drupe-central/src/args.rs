//! drupe-central's command line, for its binary and `jupiterctl serve
//! drupe-central`: the flags (each with a `JUPITER_*` fallback), checked
//! into a [`Config`] before anything is bound.

use crate::{Config, Error, Result};
use jupiter_common::env;
use jupiter_common::role::Role;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Parser, Debug, Clone)]
#[command(
    version,
    about = "DRUPE central: probes every link between droplets, fits transfer-time models, serves the profile"
)]
pub struct Args {
    /// Address to listen on (HOST:PORT), or `fd:N` for a listening socket
    /// inherited as file descriptor N (a supervisor that keeps the port).
    #[arg(long, env = env::LISTEN, default_value_t = Role::DrupeCentral.default_listen())]
    pub listen: String,
    #[command(flatten)]
    pub telemetry: jupiter_common::telemetry::TelemetryFlags,
    #[command(flatten)]
    pub tls: jupiter_common::tls::TlsFlags,
    /// The embedded profile database (created if missing; keep it across restarts).
    #[arg(
        long,
        env = env::DRUPE_DB,
        default_value = "/var/lib/jupiter/drupe/central.redb"
    )]
    pub db: PathBuf,
    /// Seconds between probe rounds.
    #[arg(long, env = env::PROBE_INTERVAL, default_value_t = 60.0)]
    pub probe_interval: f64,
    /// Payload sizes sent over every link each round: bytes, or with a KiB/MiB suffix.
    #[arg(
        long,
        env = env::PROBE_SIZES,
        value_delimiter = ',',
        default_value = "64KiB,256KiB,1MiB"
    )]
    pub probe_sizes: Vec<String>,
    /// Adaptive probing: each link's largest payload doubles until one
    /// transfer lasts this many seconds (and 10 round trips); 0 turns it off.
    #[arg(long, env = env::PROBE_MIN_SECS, default_value_t = 0.02)]
    pub probe_min_secs: f64,
    /// The largest payload adaptive probing sends: bytes, or with a KiB/MiB suffix (at most 1 GiB).
    #[arg(long, env = env::PROBE_MAX_BYTES, default_value = "64MiB")]
    pub probe_max_bytes: String,
    /// Probe one link at a time: for nodes that share one host (containers
    /// on one engine, local processes), where parallel probes share the CPU.
    #[arg(long, env = env::PROBE_SEQUENTIAL)]
    pub probe_sequential: bool,
    /// Transfers of each size per link and round (the fastest counts).
    #[arg(long, env = env::PROBE_REPEATS, default_value_t = 2)]
    pub probe_repeats: u32,
    /// Echoes per link for the round-trip time (the median is kept).
    #[arg(long, env = env::PROBE_ECHOES, default_value_t = 5)]
    pub echoes: u32,
    /// Seconds after which one link probe fails.
    #[arg(long, env = env::PROBE_TIMEOUT, default_value_t = 30.0)]
    pub probe_timeout: f64,
    /// Seconds without a resource report after which a node is unreachable.
    #[arg(long, env = env::UNREACHABLE_AFTER, default_value_t = 15.0)]
    pub unreachable_after: f64,
}

/// A probe size that [`parse_size`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("probe size {0:?} is not a number of bytes")]
    NotANumber(String),
    #[error("probe size {size:?}: unknown unit {unit:?} (use bytes, KiB or MiB)")]
    UnknownUnit { size: String, unit: String },
    #[error("probe size {0:?} must be between 1 byte and 1 GiB")]
    OutOfRange(String),
}

/// `65536`, `64KiB`, `64k`, `1MiB`, `1m` -> bytes.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let (digits, unit) = match lower.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => lower.split_at(i),
        None => (lower.as_str(), ""),
    };
    let n: u64 = digits.parse().map_err(|_| SizeError::NotANumber(t.to_string()))?;
    let factor = match unit {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1024,
        "m" | "mib" | "mb" => 1024 * 1024,
        _ => {
            return Err(SizeError::UnknownUnit {
                size: t.to_string(),
                unit: unit.to_string(),
            })
        }
    };
    match n.checked_mul(factor) {
        Some(bytes) if bytes > 0 && bytes <= 1 << 30 => Ok(bytes),
        _ => Err(SizeError::OutOfRange(t.to_string())),
    }
}

fn seconds(flag: &'static str, value: f64) -> Result<Duration> {
    if value > 0.0 && value.is_finite() {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(Error::Seconds { flag, value })
    }
}

impl Args {
    /// The checked configuration.
    pub fn config(&self) -> Result<Config> {
        let probe_sizes = self
            .probe_sizes
            .iter()
            .map(|s| parse_size(s))
            .collect::<Result<Vec<_>, _>>()?;
        if probe_sizes.is_empty() {
            return Err(Error::NoProbeSizes);
        }
        if !(0.0..=60.0).contains(&self.probe_min_secs) {
            return Err(Error::ProbeMinSecs(self.probe_min_secs));
        }
        let probe_max_bytes = parse_size(&self.probe_max_bytes).map_err(Error::ProbeMaxBytes)?;
        Ok(Config {
            telemetry: self.telemetry.settings(Role::DrupeCentral, None, None)?,
            db: self.db.clone(),
            probe_min_secs: self.probe_min_secs,
            probe_max_bytes,
            probe_sequential: self.probe_sequential,
            probe_interval: seconds("probe-interval", self.probe_interval)?,
            probe_sizes,
            probe_repeats: self.probe_repeats.max(1),
            echoes: self.echoes.max(1),
            probe_timeout: seconds("probe-timeout", self.probe_timeout)?,
            unreachable_after: seconds("unreachable-after", self.unreachable_after)?,
        })
    }
}

jupiter_common::impl_role_args!(Args, Role::DrupeCentral);

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("2m"), Ok(2 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12parsecs")
            .unwrap_err()
            .to_string()
            .contains("unknown unit"));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn defaults_make_the_default_config() {
        let args = Args::try_parse_from(["drupe-central"]).unwrap();
        assert_eq!(args.listen, "0.0.0.0:7100");
        let config = args.config().unwrap();
        let default = Config::new(args.db.clone());
        assert_eq!(config.probe_sizes, default.probe_sizes);
        assert_eq!(config.probe_interval, default.probe_interval);
        assert_eq!(config.probe_timeout, default.probe_timeout);
        assert_eq!(config.unreachable_after, default.unreachable_after);
        assert_eq!(
            (config.probe_repeats, config.echoes),
            (default.probe_repeats, default.echoes)
        );
        assert_eq!(
            (config.probe_min_secs, config.probe_max_bytes),
            (default.probe_min_secs, default.probe_max_bytes)
        );
    }

    #[test]
    fn bad_flags_are_named_with_their_value() {
        let error = |flags: &[&str]| {
            let args =
                Args::try_parse_from(std::iter::once("drupe-central").chain(flags.iter().copied())).unwrap();
            args.config().unwrap_err().to_string()
        };
        assert_eq!(
            error(&["--probe-interval", "0"]),
            "--probe-interval must be a positive number of seconds, got 0"
        );
        assert_eq!(
            error(&["--probe-sizes", "64KiB,lots"]),
            "--probe-sizes: probe size \"lots\" is not a number of bytes"
        );
        assert_eq!(
            error(&["--probe-min-secs=-1"]),
            "--probe-min-secs must be between 0 and 60 seconds, got -1"
        );
        assert_eq!(
            error(&["--probe-max-bytes", "2048MiB"]),
            "--probe-max-bytes: probe size \"2048MiB\" must be between 1 byte and 1 GiB"
        );
        assert_eq!(
            error(&["--unreachable-after=-1"]),
            "--unreachable-after must be a positive number of seconds, got -1"
        );
    }
}
