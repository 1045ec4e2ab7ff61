//! The six roles, defined once: each role's name, default port, scope and
//! image, plus the one way every
//! role process runs (parse its flags, bind, log, serve until SIGTERM or
//! Ctrl-C). The role binaries, `jupiterctl serve ROLE`, the Docker and
//! Kubernetes backends and the Helm chart's tests all read them from here.

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::process::ExitCode;
use tokio::net::TcpListener;

/// One of Jupiter's six roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    DrupeCentral,
    WaveHome,
    CirceHome,
    DrupeDroplet,
    WaveWorker,
    CirceWorker,
}

/// Where a role runs in a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Once per deployment, at home.
    Home,
    /// Once on every node.
    Node,
    /// Once per task, on the task's node.
    Task,
}

impl Role {
    /// Home roles first, then the per-node ones, then the workers: the
    /// order in which a deployment starts them.
    pub const ALL: [Role; 6] = [
        Role::DrupeCentral,
        Role::WaveHome,
        Role::CirceHome,
        Role::DrupeDroplet,
        Role::WaveWorker,
        Role::CirceWorker,
    ];

    /// The role's name: its binary, image, container and Service name.
    pub const fn name(self) -> &'static str {
        match self {
            Role::DrupeCentral => "drupe-central",
            Role::WaveHome => "wave-home",
            Role::CirceHome => "circe-home",
            Role::DrupeDroplet => "drupe-droplet",
            Role::WaveWorker => "wave-worker",
            Role::CirceWorker => "circe-worker",
        }
    }

    /// The gRPC port the role listens on unless told otherwise.
    pub const fn port(self) -> u16 {
        match self {
            Role::DrupeCentral => 7100,
            Role::DrupeDroplet => 7101,
            Role::WaveHome => 7200,
            Role::WaveWorker => 7201,
            Role::CirceHome => 7300,
            Role::CirceWorker => 7301,
        }
    }

    /// The port of the role's Prometheus `/metrics` listener unless told
    /// otherwise: its gRPC port + 2000 (9100, 9101, 9200, 9201, 9300, 9301).
    pub const fn metrics_port(self) -> u16 {
        self.port() + 2000
    }

    pub const fn scope(self) -> Scope {
        match self {
            Role::DrupeCentral | Role::WaveHome | Role::CirceHome => Scope::Home,
            Role::DrupeDroplet | Role::WaveWorker => Scope::Node,
            Role::CirceWorker => Scope::Task,
        }
    }

    /// The default of `--listen`: every interface, the role's port.
    pub fn default_listen(self) -> String {
        format!("0.0.0.0:{}", self.port())
    }

    /// The URL a home role has where roles reach each other by name (a
    /// container or a Service called like the role): the default of the
    /// flags that point at it.
    pub fn default_url(self) -> String {
        format!("http://{}:{}", self.name(), self.port())
    }

    /// The role's image: `<prefix>/<name>:<tag>`.
    pub fn image(self, prefix: &str, tag: &str) -> String {
        format!("{prefix}/{}:{tag}", self.name())
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A role's command line: its flags (each with a `JUPITER_*` fallback),
/// checked into a configuration, and its server. The role's binary and
/// `jupiterctl serve ROLE` both run it through [`run`].
pub trait RoleArgs: clap::Parser + Send + 'static {
    const ROLE: Role;
    /// What the role's `serve` takes.
    type Config: Send + 'static;
    /// The role's one error type (bad flags included).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The address to listen on (`--listen`).
    fn listen(&self) -> &str;

    /// `--otlp-endpoint`, `--metrics-listen`, `--deployment`.
    fn telemetry(&self) -> &crate::telemetry::TelemetryFlags;

    /// `--tls-ca`, `--tls-cert`, `--tls-key`.
    fn tls(&self) -> &crate::tls::TlsFlags;

    /// The checked configuration; bad flags are reported before anything
    /// is bound.
    fn config(&self) -> Result<Self::Config, Self::Error>;

    /// Serves on `listener` until `shutdown` resolves.
    fn serve(
        config: Self::Config,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Implements [`RoleArgs`] for a role crate's `Args` the one way every role
/// does: `--listen` from its `listen` field, the checked configuration
/// from its inherent `Args::config`, and the crate's own `Config`, `Error`
/// and `serve`. A role crate writes `jupiter_common::impl_role_args!(Args,
/// Role::WaveWorker);` next to its `Args`.
#[macro_export]
// `crate` here is the invoking role crate on purpose: its Config, Error, serve.
#[allow(clippy::crate_in_macro_def)]
macro_rules! impl_role_args {
    ($args:ty, $role:expr) => {
        impl $crate::role::RoleArgs for $args {
            const ROLE: $crate::role::Role = $role;
            type Config = crate::Config;
            type Error = crate::Error;

            fn listen(&self) -> &str {
                &self.listen
            }

            fn telemetry(&self) -> &$crate::telemetry::TelemetryFlags {
                &self.telemetry
            }

            fn tls(&self) -> &$crate::tls::TlsFlags {
                &self.tls
            }

            fn config(&self) -> ::std::result::Result<crate::Config, crate::Error> {
                <$args>::config(self)
            }

            fn serve(
                config: crate::Config,
                listener: ::tokio::net::TcpListener,
                shutdown: impl ::std::future::Future<Output = ()> + Send + 'static,
            ) -> impl ::std::future::Future<Output = ::std::result::Result<(), crate::Error>> + Send {
                crate::serve(config, listener, shutdown)
            }
        }
    };
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("binding {address}: {source}")]
    Bind { address: String, source: std::io::Error },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Role(Box<dyn std::error::Error + Send + Sync>),
}

/// Checks the flags, binds `--listen`, logs where the role listens and
/// serves until `shutdown`. With `--tls-*` the whole process (the role's
/// server and every channel it opens) speaks only mutual TLS.
pub async fn run<A: RoleArgs>(
    args: A,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let boxed = |e: A::Error| RunError::Role(Box::new(e));
    let config = args.config().map_err(boxed)?;
    if let Some(identity) = args.tls().load()? {
        crate::tls::use_everywhere(identity);
    }
    let address = args.listen().to_string();
    let listener = listen(&address).await.map_err(|source| RunError::Bind {
        address: address.clone(),
        source,
    })?;
    let bound = listener
        .local_addr()
        .map_err(|source| RunError::Bind { address, source })?;
    let tls = if crate::tls::for_listener(bound).is_some() {
        "mutual TLS"
    } else {
        "plaintext"
    };
    tracing::info!(role = %A::ROLE, address = %bound, %tls, "listening");
    A::serve(config, listener, shutdown).await.map_err(boxed)
}

/// The listener `--listen` names: `HOST:PORT` is bound here; `fd:N` is a
/// listening socket inherited as file descriptor N from a supervisor that
/// holds the port across restarts (`jupiterctl run --processes`), so
/// clients that connect while the role restarts wait in its backlog
/// instead of being refused.
pub async fn listen(address: &str) -> std::io::Result<TcpListener> {
    match address.strip_prefix("fd:") {
        Some(fd) => adopt(listening_fd(fd)?),
        None => TcpListener::bind(address).await,
    }
}

/// Like [`listen`], but an inherited `fd:N` is duplicated rather than
/// owned: the role can be started again on it in the same process (the
/// local backend keeps a role's metrics socket across the role's
/// restarts, so its port is never free for another to take).
pub async fn listen_shared(address: &str) -> std::io::Result<TcpListener> {
    let Some(fd) = address.strip_prefix("fd:") else {
        return TcpListener::bind(address).await;
    };
    let fd = listening_fd(fd)?;
    // SAFETY: F_DUPFD_CLOEXEC only reads `fd` and returns a new descriptor.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if copy < 0 {
        return Err(std::io::Error::last_os_error());
    }
    adopt(copy)
}

/// The descriptor `fd:N` names, if it is a listening socket: anything else
/// is refused before it is owned (and closed) as one.
fn listening_fd(number: &str) -> std::io::Result<std::os::fd::RawFd> {
    let fd: std::os::fd::RawFd = number.parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "fd:N needs a file descriptor number",
        )
    })?;
    let mut accepting: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `accepting`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut accepting as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if accepting == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("file descriptor {fd} is not a listening socket"),
        ));
    }
    Ok(fd)
}

/// Owns a listening socket checked by [`listening_fd`] (or a copy of one).
fn adopt(fd: std::os::fd::RawFd) -> std::io::Result<TcpListener> {
    use std::os::fd::FromRawFd;
    // SAFETY: fd is an open listening socket that this process was given
    // (or made) to own.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

/// The whole `main` of a role binary: parse the flags, log to stderr, run
/// until SIGTERM or Ctrl-C; on error print it with its causes and exit 1.
/// `ROLE probe [FLAGS]` instead checks the role serving here (see [`probe`]).
pub fn main<A: RoleArgs>() -> ExitCode {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let probing = argv.get(1).is_some_and(|a| a == "probe");
    if probing {
        argv.remove(1);
    }
    let args = A::parse_from(argv);
    if !probing {
        crate::telemetry::init_role(args.telemetry().otlp_endpoint.is_some());
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if probing {
        return match runtime.block_on(probe(&args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{} is not healthy: {e}", A::ROLE);
                ExitCode::FAILURE
            }
        };
    }
    match runtime.block_on(run(args, crate::telemetry::shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", crate::error::explain(&e));
            ExitCode::FAILURE
        }
    }
}

/// Asks the role that serves at `--listen` on this host (a wildcard
/// address read as loopback) for its health, once, presenting the role's
/// own certificate under `--tls-*`: Ok if it says SERVING. Kubernetes runs
/// it as the exec probe of a pod that speaks only mutual TLS, since the
/// kubelet's own gRPC probe presents no certificate.
pub async fn probe<A: RoleArgs>(args: &A) -> Result<(), String> {
    if let Some(identity) = args.tls().load().map_err(|e| e.to_string())? {
        crate::tls::use_everywhere(identity);
    }
    let url = probe_url(args.listen())?;
    crate::serve::wait_healthy(A::ROLE.name(), &url, std::time::Duration::ZERO)
        .await
        .map_err(|e| e.last)
}

/// The URL `probe` asks for a role listening at `listen`.
fn probe_url(listen: &str) -> Result<String, String> {
    if listen.starts_with("fd:") {
        return Err(format!(
            "--listen {listen}: an inherited socket has no address to probe"
        ));
    }
    let addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|_| format!("--listen {listen:?} is not HOST:PORT"))?;
    let ip = match addr.ip() {
        ip if ip.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
        ip => ip,
    };
    Ok(format!("http://{}", std::net::SocketAddr::new(ip, addr.port())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_asks_loopback_for_a_wildcard_listener() {
        assert_eq!(probe_url("0.0.0.0:7301").as_deref(), Ok("http://127.0.0.1:7301"));
        assert_eq!(probe_url("[::]:7100").as_deref(), Ok("http://127.0.0.1:7100"));
        assert_eq!(probe_url("10.0.0.5:1").as_deref(), Ok("http://10.0.0.5:1"));
        assert!(probe_url("fd:3").is_err() && probe_url("nowhere").is_err());
    }

    #[test]
    fn names_parse_back_and_ports_are_distinct() {
        let mut ports = std::collections::BTreeSet::new();
        for role in Role::ALL {
            assert!(ports.insert(role.port()), "{role} shares its port");
            assert_eq!(
                serde_json::to_value(role).ok(),
                Some(serde_json::Value::String(role.name().into()))
            );
        }
        assert_eq!(Role::DrupeCentral.default_url(), "http://drupe-central:7100");
        assert_eq!(Role::CirceWorker.default_listen(), "0.0.0.0:7301");
        assert_eq!(Role::WaveHome.image("jupiter", "dev"), "jupiter/wave-home:dev");
    }
}
