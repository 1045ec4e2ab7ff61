//! wave-home's command line: the flags (each with a `JUPITER_*` fallback),
//! checked into a [`Config`] before anything is bound.

use crate::{Config, Result};
use jupiter_common::cli::check_url;
use jupiter_common::env;
use jupiter_common::role::Role;

#[derive(clap::Parser, Debug, Clone)]
#[command(
    version,
    about = "WAVE home: maps an app's tasks to nodes (HEFT, CPoP or distributed WAVE over DRUPE's profile, a static mapping, or a seeded random one)"
)]
pub struct Args {
    /// Address to listen on (HOST:PORT), or `fd:N` for a listening socket
    /// inherited as file descriptor N (a supervisor that keeps the port).
    #[arg(long, env = env::LISTEN, default_value_t = Role::WaveHome.default_listen())]
    pub listen: String,
    #[command(flatten)]
    pub telemetry: jupiter_common::telemetry::TelemetryFlags,
    #[command(flatten)]
    pub tls: jupiter_common::tls::TlsFlags,
    /// URL agents reach this wave-home at (default: the listening address).
    #[arg(long, env = env::ADVERTISE)]
    pub advertise: Option<String>,
    /// drupe-central's URL.
    #[arg(long, env = env::DRUPE_CENTRAL, default_value_t = Role::DrupeCentral.default_url())]
    pub central: String,
}

impl Args {
    /// The checked configuration.
    pub fn config(&self) -> Result<Config> {
        check_url("central", &self.central)?;
        if let Some(advertise) = &self.advertise {
            check_url("advertise", advertise)?;
        }
        Ok(Config {
            telemetry: self.telemetry.settings(Role::WaveHome, None, None)?,
            central: self.central.clone(),
            advertise: self.advertise.clone(),
        })
    }
}

jupiter_common::impl_role_args!(Args, Role::WaveHome);

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_and_bad_urls() {
        let args = Args::try_parse_from(["wave-home"]).unwrap();
        assert_eq!(args.listen, "0.0.0.0:7200");
        let config = args.config().unwrap();
        assert_eq!(config.central, "http://drupe-central:7100");
        assert_eq!(config.advertise, None);
        let args = Args::try_parse_from(["wave-home", "--central", "http://a b"]).unwrap();
        let error = args.config().unwrap_err().to_string();
        assert!(
            error.starts_with("--central \"http://a b\" is not a URL"),
            "{error}"
        );
    }
}
