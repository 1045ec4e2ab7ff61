//! Mutual TLS: the certificate a process presents and the CA it trusts.
//!
//! A role started with `--tls-ca/--tls-cert/--tls-key` (the `JUPITER_TLS_*`
//! variables on Docker and Kubernetes) speaks only mutual TLS: its server
//! refuses any client without a certificate signed by the deployment's CA,
//! and every channel it opens presents its own certificate and accepts only
//! a server with one from that CA. URLs keep their `http://` form in flags
//! and state files; a channel to a server this process has TLS for speaks
//! TLS whatever the scheme says, so no address anywhere needs rewriting.
//!
//! Clients check a server's certificate against [`SERVER_NAME`], which every
//! role certificate carries beside the names and addresses the role is
//! reached at: a container's address is known only once it runs and a moved
//! worker answers at a new one, while what makes a server a member of the
//! deployment is the CA's signature (one CA per deployment, its key
//! discarded once the certificates are made).
//!
//! One process may hold the roles of several deployments (jupiterctl's local
//! backend runs them in process; tests run deployments side by side), so
//! identities are kept per address: the one to serve with on a listener's
//! address, the one to present to a server's. A role in a process of its own
//! sets one for everything ([`use_everywhere`]).

use crate::env;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Identity as Keys, ServerTlsConfig};

/// The name every role certificate holds and every client expects.
pub const SERVER_NAME: &str = "jupiter";

/// How long a server waits for a client to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The flags that turn a role's mutual TLS on: all three, or none.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFlags {
    /// The deployment's CA certificate (PEM). With --tls-cert and
    /// --tls-key the role speaks only mutual TLS: clients need a
    /// certificate from this CA, and servers must have one.
    #[arg(long, env = env::TLS_CA, value_name = "PEM", requires_all = ["tls_cert", "tls_key"])]
    pub tls_ca: Option<PathBuf>,
    /// This role's certificate (PEM), signed by the CA.
    #[arg(long, env = env::TLS_CERT, value_name = "PEM", requires_all = ["tls_ca", "tls_key"])]
    pub tls_cert: Option<PathBuf>,
    /// This role's private key (PEM).
    #[arg(long, env = env::TLS_KEY, value_name = "PEM", requires_all = ["tls_ca", "tls_cert"])]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{flag} {}: {source}", path.display())]
    Read {
        flag: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{flag} {}: no PEM `{expected}` block in it", path.display())]
    NotPem {
        flag: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("--tls-ca, --tls-cert and --tls-key go together; {missing} is missing")]
    Incomplete { missing: &'static str },
}

/// A CA to trust and a certificate with its key to present, as PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    pub ca: Vec<u8>,
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never a key in a log line.
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

impl TlsFlags {
    /// The files these flags name, read and checked; `None` without TLS.
    pub fn load(&self) -> Result<Option<Identity>, TlsError> {
        let (ca, cert, key) = match (&self.tls_ca, &self.tls_cert, &self.tls_key) {
            (None, None, None) => return Ok(None),
            (Some(ca), Some(cert), Some(key)) => (ca, cert, key),
            (None, _, _) => return Err(TlsError::Incomplete { missing: "--tls-ca" }),
            (_, None, _) => {
                return Err(TlsError::Incomplete {
                    missing: "--tls-cert",
                })
            }
            (_, _, None) => return Err(TlsError::Incomplete { missing: "--tls-key" }),
        };
        Ok(Some(Identity {
            ca: read_pem("--tls-ca", ca, "CERTIFICATE")?,
            cert: read_pem("--tls-cert", cert, "CERTIFICATE")?,
            key: read_pem("--tls-key", key, "PRIVATE KEY")?,
        }))
    }

    /// The flags naming `files`, as a role's command line takes them.
    pub fn args(files: &Files) -> Vec<String> {
        vec![
            "--tls-ca".into(),
            files.ca.display().to_string(),
            "--tls-cert".into(),
            files.cert.display().to_string(),
            "--tls-key".into(),
            files.key.display().to_string(),
        ]
    }
}

/// Where one identity's three files are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Files {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Files {
    /// The files `ca.pem`, `cert.pem` and `key.pem` in `dir`.
    pub fn in_dir(dir: &Path) -> Files {
        Files {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    pub fn load(&self) -> Result<Identity, TlsError> {
        let flags = TlsFlags {
            tls_ca: Some(self.ca.clone()),
            tls_cert: Some(self.cert.clone()),
            tls_key: Some(self.key.clone()),
        };
        flags
            .load()
            .map(|identity| identity.expect("all three files are named"))
    }
}

fn read_pem(flag: &'static str, path: &Path, label: &'static str) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        flag,
        path: path.to_path_buf(),
        source,
    })?;
    let begins = |text: &str| {
        text.lines()
            .any(|l| l.starts_with("-----BEGIN ") && l.contains(label))
    };
    if !std::str::from_utf8(&bytes).is_ok_and(begins) {
        return Err(TlsError::NotPem {
            flag,
            path: path.to_path_buf(),
            expected: label,
        });
    }
    Ok(bytes)
}

impl Identity {
    /// A server that requires a client certificate from the CA.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Keys::from_pem(&self.cert, &self.key))
            .client_ca_root(Certificate::from_pem(&self.ca))
            .timeout(HANDSHAKE_TIMEOUT)
    }

    /// A client that presents the certificate and accepts only a server
    /// whose certificate the CA signed for [`SERVER_NAME`].
    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .identity(Keys::from_pem(&self.cert, &self.key))
            .domain_name(SERVER_NAME)
            .assume_http2(true)
    }
}

#[derive(Default)]
struct Registry {
    everywhere: Option<Arc<Identity>>,
    listeners: HashMap<SocketAddr, Arc<Identity>>,
    servers: HashMap<String, Arc<Identity>>,
}

static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(Default::default);

fn registry() -> std::sync::RwLockReadGuard<'static, Registry> {
    REGISTRY.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn registry_mut() -> std::sync::RwLockWriteGuard<'static, Registry> {
    REGISTRY.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Serves every listener and dials every server with `identity`: for a
/// process that is one role (or one client) of one deployment.
pub fn use_everywhere(identity: Identity) {
    registry_mut().everywhere = Some(Arc::new(identity));
}

/// Serves the listener bound at `addr` with `identity`.
pub fn serve_as(addr: SocketAddr, identity: Arc<Identity>) {
    registry_mut().listeners.insert(addr, identity);
}

/// Presents `identity` to the server at `url` (`http://HOST:PORT`, or
/// just `HOST:PORT`).
pub fn dial_as(url: &str, identity: Arc<Identity>) {
    registry_mut()
        .servers
        .insert(authority(url).to_string(), identity);
}

/// Forgets what [`serve_as`] and [`dial_as`] were told for `urls`, when
/// the deployment they belong to is gone (a later one may get the ports).
pub fn forget(urls: &[String]) {
    let mut registry = registry_mut();
    for url in urls {
        let authority = authority(url);
        registry.servers.remove(authority);
        if let Ok(addr) = authority.parse::<SocketAddr>() {
            registry.listeners.remove(&addr);
        }
    }
}

/// The identity to serve with on `addr`, if its server speaks TLS.
pub fn for_listener(addr: SocketAddr) -> Option<Arc<Identity>> {
    let registry = registry();
    registry
        .listeners
        .get(&addr)
        .or(registry.everywhere.as_ref())
        .cloned()
}

/// The identity to present to the server at `url`, if it speaks TLS.
pub fn for_server(url: &str) -> Option<Arc<Identity>> {
    let registry = registry();
    registry
        .servers
        .get(authority(url))
        .or(registry.everywhere.as_ref())
        .cloned()
}

/// `HOST:PORT` of a URL.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_go_together_and_files_must_be_pem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "not a key").expect("write");
        let flags = TlsFlags {
            tls_ca: Some(ca.clone()),
            tls_cert: None,
            tls_key: None,
        };
        assert_eq!(
            flags.load().expect_err("incomplete").to_string(),
            "--tls-ca, --tls-cert and --tls-key go together; --tls-cert is missing"
        );
        let flags = TlsFlags {
            tls_ca: Some(ca.clone()),
            tls_cert: Some(ca.clone()),
            tls_key: Some(key.clone()),
        };
        assert_eq!(
            flags.load().expect_err("not a key").to_string(),
            format!("--tls-key {}: no PEM `PRIVATE KEY` block in it", key.display())
        );
        let gone = dir.path().join("gone.pem");
        let flags = TlsFlags {
            tls_ca: Some(gone.clone()),
            ..flags
        };
        assert!(flags
            .load()
            .expect_err("missing")
            .to_string()
            .starts_with(&format!("--tls-ca {}: ", gone.display())));
        assert_eq!(TlsFlags::default().load().expect("no TLS"), None);
    }

    #[test]
    fn identities_are_kept_per_address() {
        let one = Arc::new(Identity {
            ca: b"ca".to_vec(),
            cert: b"one".to_vec(),
            key: b"k".to_vec(),
        });
        dial_as("http://127.0.0.1:1", one.clone());
        serve_as("127.0.0.1:1".parse().expect("addr"), one.clone());
        assert_eq!(for_server("http://127.0.0.1:1/x"), Some(one.clone()));
        assert_eq!(for_server("127.0.0.1:1"), Some(one.clone()));
        assert_eq!(for_server("http://127.0.0.1:2"), None);
        assert_eq!(for_listener("127.0.0.1:1".parse().expect("addr")), Some(one));
        forget(&["http://127.0.0.1:1".to_string()]);
        assert_eq!(for_server("http://127.0.0.1:1"), None);
        assert_eq!(for_listener("127.0.0.1:1".parse().expect("addr")), None);
    }
}
