//! drupe-droplet's command line, for its binary and `jupiterctl serve
//! drupe-droplet`: the flags (each with a `JUPITER_*` fallback), checked
//! into a [`Config`] before anything is bound.

use crate::{Config, Error, Result};
use jupiter_common::cli::check_url;
use jupiter_common::env;
use jupiter_common::role::Role;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Parser, Debug, Clone)]
#[command(
    version,
    about = "DRUPE droplet: answers link probes, measures this node's links and reports its resources"
)]
pub struct Args {
    /// Address to listen on (HOST:PORT), or `fd:N` for a listening socket
    /// inherited as file descriptor N (a supervisor that keeps the port).
    #[arg(long, env = env::LISTEN, default_value_t = Role::DrupeDroplet.default_listen())]
    pub listen: String,
    #[command(flatten)]
    pub telemetry: jupiter_common::telemetry::TelemetryFlags,
    #[command(flatten)]
    pub tls: jupiter_common::tls::TlsFlags,
    /// Name of this node.
    #[arg(long, env = env::NODE)]
    pub node: String,
    /// drupe-central's URL.
    #[arg(long, env = env::DRUPE_CENTRAL, default_value_t = Role::DrupeCentral.default_url())]
    pub central: String,
    /// URL other droplets reach this one at (default: http://<node>:<port>).
    #[arg(long, env = env::ADVERTISE)]
    pub advertise: Option<String>,
    /// Seconds between resource reports.
    #[arg(long, env = env::REPORT_INTERVAL, default_value_t = 5.0)]
    pub interval: f64,
    /// Folder whose disk space is reported (the node's queue folder).
    #[arg(long, env = env::DATA_DIR)]
    pub data_dir: Option<PathBuf>,
    /// Measure this node's speed once, print it as JSON and exit (no other
    /// flag is needed; the drupe-droplet binary only).
    #[arg(long)]
    pub measure_speed: bool,
}

impl Args {
    /// The checked configuration.
    pub fn config(&self) -> Result<Config> {
        if self.measure_speed {
            return Err(Error::MeasureSpeed);
        }
        if !(self.interval > 0.0 && self.interval.is_finite()) {
            return Err(Error::Interval(self.interval));
        }
        check_url("central", &self.central)?;
        if let Some(advertise) = &self.advertise {
            check_url("advertise", advertise)?;
        }
        Ok(Config {
            telemetry: self
                .telemetry
                .settings(Role::DrupeDroplet, Some(&self.node), None)?,
            node: self.node.clone(),
            central: self.central.clone(),
            report_interval: Duration::from_secs_f64(self.interval),
            advertise: self.advertise.clone(),
            data_dir: self.data_dir.clone(),
        })
    }
}

jupiter_common::impl_role_args!(Args, Role::DrupeDroplet);

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(flags: &[&str]) -> Result<Config> {
        let args = ["drupe-droplet", "--node", "n1"].iter().chain(flags);
        Args::try_parse_from(args).unwrap().config()
    }

    #[test]
    fn defaults() {
        let args = Args::try_parse_from(["drupe-droplet", "--node", "n1"]).unwrap();
        assert_eq!(args.listen, "0.0.0.0:7101");
        let config = args.config().unwrap();
        assert_eq!(config.central, "http://drupe-central:7100");
        assert_eq!(config.report_interval, Duration::from_secs(5));
        assert_eq!(config.advertise, None);
    }

    #[test]
    fn bad_flags_are_named_with_their_value() {
        assert_eq!(
            config(&["--interval", "0"]).unwrap_err().to_string(),
            "--interval must be a positive number of seconds, got 0"
        );
        let error = config(&["--advertise", "http://n 1:7101"])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("--advertise \"http://n 1:7101\" is not a URL"),
            "{error}"
        );
    }
}
