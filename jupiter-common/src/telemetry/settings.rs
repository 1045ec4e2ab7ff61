//! What a role is told about telemetry: the flags every role shares
//! (`--otlp-endpoint`, `--metrics-listen`, `--deployment`), checked into
//! [`Settings`] before anything is bound.

use crate::cli::{check_url, FlagError};
use crate::env;
use crate::role::Role;

/// The telemetry flags of every role (flattened into its `Args`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TelemetryFlags {
    /// Send spans to this OTLP/gRPC endpoint (e.g. http://tempo:4317): one
    /// trace per input across every role. Unset: no spans leave the role.
    #[arg(long, env = env::OTLP_ENDPOINT, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics; `off` to
    /// serve none; `fd:N` for a listening socket inherited as descriptor N
    /// (used, not consumed: jupiterctl's local backend holds each role's
    /// metrics port this way for the deployment's life). Default: every
    /// interface, the role's gRPC port + 2000.
    #[arg(long, env = env::METRICS_LISTEN, value_name = "HOST:PORT")]
    pub metrics_listen: Option<String>,
    /// The deployment this role belongs to (the `jupiter.deployment`
    /// attribute of its spans and metrics).
    #[arg(long, env = env::DEPLOYMENT, default_value = "")]
    pub deployment: String,
}

/// Where a role's metrics listener is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsListen {
    /// No listener.
    Off,
    /// The role's default port: taken if free, else the role goes on
    /// without metrics (several roles of one process, as in tests).
    Default(String),
    /// An address given on purpose (`HOST:PORT` or `fd:N`): failing to
    /// bind it fails the role.
    At(String),
}

/// A role's checked telemetry settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub role: Role,
    pub otlp_endpoint: Option<String>,
    pub metrics: MetricsListen,
    pub deployment: String,
    pub node: Option<String>,
    pub task: Option<String>,
    /// Times a supervisor restarted this role (`JUPITER_RESTARTS`).
    pub restarts: u64,
}

impl Settings {
    /// No spans, no metrics listener: what tests and benchmarks that build
    /// a role's configuration by hand use.
    pub fn off(role: Role) -> Self {
        Self {
            role,
            otlp_endpoint: None,
            metrics: MetricsListen::Off,
            deployment: String::new(),
            node: None,
            task: None,
            restarts: 0,
        }
    }

    /// The `service.name` of the role's spans, e.g. `jupiter-circe-worker`.
    pub fn service_name(&self) -> String {
        format!("jupiter-{}", self.role.name())
    }
}

impl TelemetryFlags {
    /// The flags checked for `role`, running on `node` (per-node roles and
    /// workers) and `task` (workers).
    pub fn settings(
        &self,
        role: Role,
        node: Option<&str>,
        task: Option<&str>,
    ) -> Result<Settings, FlagError> {
        let otlp_endpoint = match self.otlp_endpoint.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(url) => {
                check_url("otlp-endpoint", url)?;
                Some(url.to_string())
            }
        };
        let metrics = match self.metrics_listen.as_deref().map(str::trim) {
            None | Some("") => MetricsListen::Default(format!("0.0.0.0:{}", role.metrics_port())),
            Some("off") => MetricsListen::Off,
            Some(address) => {
                if !address.starts_with("fd:")
                    && address
                        .rsplit_once(':')
                        .is_none_or(|(_, p)| p.parse::<u16>().is_err())
                {
                    return Err(FlagError::BadAddress {
                        flag: "metrics-listen".into(),
                        address: address.to_string(),
                    });
                }
                MetricsListen::At(address.to_string())
            }
        };
        Ok(Settings {
            role,
            otlp_endpoint,
            metrics,
            deployment: self.deployment.clone(),
            node: node.map(str::to_string),
            task: task.map(str::to_string),
            restarts: std::env::var(env::RESTARTS)
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(endpoint: Option<&str>, metrics: Option<&str>) -> TelemetryFlags {
        TelemetryFlags {
            otlp_endpoint: endpoint.map(str::to_string),
            metrics_listen: metrics.map(str::to_string),
            deployment: "d".into(),
        }
    }

    #[test]
    fn defaults_and_refusals_name_the_flag() {
        let s = flags(None, None)
            .settings(Role::CirceWorker, Some("n0"), Some("t"))
            .expect("valid");
        assert_eq!(s.metrics, MetricsListen::Default("0.0.0.0:9301".into()));
        assert_eq!(s.otlp_endpoint, None);
        assert_eq!(s.service_name(), "jupiter-circe-worker");
        let s = flags(Some("http://127.0.0.1:4317"), Some("off"))
            .settings(Role::CirceHome, None, None)
            .expect("valid");
        assert_eq!(s.metrics, MetricsListen::Off);
        assert_eq!(s.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4317"));
        let e = flags(Some("http://a b"), None)
            .settings(Role::CirceHome, None, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--otlp-endpoint \"http://a b\" is not a URL"),
            "{e}"
        );
        let e = flags(None, Some("localhost"))
            .settings(Role::CirceHome, None, None)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--metrics-listen \"localhost\" is not HOST:PORT (or `off`)");
    }
}
