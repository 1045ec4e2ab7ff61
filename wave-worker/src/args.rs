//! wave-worker's command line: the flags (each with a `JUPITER_*`
//! fallback), turned into a [`Config`].

use crate::{Config, Result};
use jupiter_common::env;
use jupiter_common::role::Role;

#[derive(clap::Parser, Debug, Clone)]
#[command(version, about = "WAVE worker: the scheduler's agent on one node")]
pub struct Args {
    /// Address to listen on (HOST:PORT), or `fd:N` for a listening socket
    /// inherited as file descriptor N (a supervisor that keeps the port).
    #[arg(long, env = env::LISTEN, default_value_t = Role::WaveWorker.default_listen())]
    pub listen: String,
    #[command(flatten)]
    pub telemetry: jupiter_common::telemetry::TelemetryFlags,
    #[command(flatten)]
    pub tls: jupiter_common::tls::TlsFlags,
    /// Name of this node.
    #[arg(long, env = env::NODE)]
    pub node: String,
}

impl Args {
    /// The configuration: every value of these flags is usable.
    pub fn config(&self) -> Result<Config> {
        Ok(Config {
            telemetry: self
                .telemetry
                .settings(Role::WaveWorker, Some(&self.node), None)?,
            node: self.node.clone(),
        })
    }
}

jupiter_common::impl_role_args!(Args, Role::WaveWorker);

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults() {
        let args = Args::try_parse_from(["wave-worker", "--node", "n1"]).unwrap();
        assert_eq!(args.listen, "0.0.0.0:7201");
        assert_eq!(args.config().unwrap().node, "n1");
        assert!(
            Args::try_parse_from(["wave-worker"]).is_err(),
            "--node is required"
        );
    }
}
