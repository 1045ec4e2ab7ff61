//! circe-home's command line: the flags (each with a `JUPITER_*`
//! fallback), checked into a [`Config`] (the app loaded, every ingress
//! task given a URL) before anything is bound.

use crate::{Config, Ingress, Result};
use jupiter_common::app::App;
use jupiter_common::cli::{parse_task_url, url_for};
use jupiter_common::env;
use jupiter_common::role::Role;
use std::path::PathBuf;

#[derive(clap::Parser, Debug, Clone)]
#[command(
    version,
    about = "CIRCE home: feeds inputs to an app's ingress tasks and collects the egress outputs"
)]
pub struct Args {
    /// Address to listen on (HOST:PORT), or `fd:N` for a listening socket
    /// inherited as file descriptor N (a supervisor that keeps the port).
    #[arg(long, env = env::LISTEN, default_value_t = Role::CirceHome.default_listen())]
    pub listen: String,
    #[command(flatten)]
    pub telemetry: jupiter_common::telemetry::TelemetryFlags,
    #[command(flatten)]
    pub tls: jupiter_common::tls::TlsFlags,
    /// The app folder (app.yaml or an original Jupiter configuration.txt).
    #[arg(long, env = env::APP)]
    pub app: PathBuf,
    /// URL of each ingress task's worker, as TASK=URL (repeat).
    #[arg(long = "ingress", env = env::INGRESS, value_delimiter = ',', value_parser = parse_task_url)]
    pub ingress: Vec<(String, String)>,
    /// Where submitted inputs are kept.
    #[arg(long, env = env::DATA_DIR, default_value = "/var/lib/jupiter/home")]
    pub data_dir: PathBuf,
    /// Where outputs are written (<output>/<input>/<file>).
    #[arg(long, env = env::OUTPUT_DIR, default_value = "/var/lib/jupiter/output")]
    pub output: PathBuf,
}

impl Args {
    /// The checked configuration: the app loads and every ingress task has
    /// a worker URL.
    pub fn config(&self) -> Result<Config> {
        let app = App::load(&self.app)?;
        let ingress = app
            .ingress()
            .into_iter()
            .map(|task| {
                Ok(Ingress {
                    task: task.name.clone(),
                    address: url_for(&self.ingress, &task.name, "ingress")?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Config {
            telemetry: self.telemetry.settings(Role::CirceHome, None, None)?,
            data_dir: self.data_dir.clone(),
            output_dir: self.output.clone(),
            ingress,
            egress: app.egress().iter().map(|t| t.name.clone()).collect(),
            tasks: app.tasks.iter().map(|t| t.name.clone()).collect(),
        })
    }
}

jupiter_common::impl_role_args!(Args, Role::CirceHome);

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    const APP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/dummy_app");

    fn config(flags: &[&str]) -> Result<Config> {
        let args = ["circe-home", "--app", APP].iter().chain(flags);
        Args::try_parse_from(args).unwrap().config()
    }

    #[test]
    fn every_ingress_task_needs_a_url() {
        let config = config(&["--ingress", "task0=http://w0:7301"]).unwrap();
        assert_eq!(config.ingress.len(), 1);
        assert_eq!(config.ingress[0].address, "http://w0:7301");
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/jupiter/home"));
        assert_eq!(
            self::config(&[]).unwrap_err().to_string(),
            "no --ingress task0=URL given for task task0"
        );
        let error = self::config(&["--ingress", "task0=http://w 0"])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("--ingress \"http://w 0\" is not a URL"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_app_is_named() {
        let args = Args::try_parse_from(["circe-home", "--app", "/no/such/app"]).unwrap();
        assert_eq!(args.listen, "0.0.0.0:7300");
        let error = args.config().unwrap_err().to_string();
        assert!(error.starts_with("--app: /no/such/app"), "{error}");
    }
}
