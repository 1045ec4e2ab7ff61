//! The certificates of a deployment with `--tls`: one CA per deployment,
//! made by `up`/`run`, which signs a certificate for every role and one for
//! the user, then forgets its key (nobody can mint another; new
//! certificates mean a new deployment).
//!
//! On disk, in one folder (mode 0700, every file 0600):
//!
//! ```text
//! ca.pem  client.pem  client-key.pem        the user's: grpcurl, jupiterctl
//! roles/<role>[-<node or task>]/{ca,cert,key}.pem   one role's
//! ```
//!
//! Each role gets only its own folder (mounted into its container on
//! Docker, its items of the Secret on Kubernetes).

use jupiter_common::role::Role;
use jupiter_common::tls::{Files, SERVER_NAME};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long the certificates are valid: a deployment lives far shorter.
const VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("making the deployment's certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Load(#[from] jupiter_common::tls::TlsError),
}

/// A role of a deployment that gets a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub role: Role,
    /// Its node (per-node roles) or task (workers).
    pub of: Option<String>,
    /// Other names it is reached at (containers, Services).
    pub names: Vec<String>,
}

impl Member {
    pub fn new(role: Role, of: Option<&str>) -> Self {
        Member {
            role,
            of: of.map(str::to_string),
            names: Vec::new(),
        }
    }

    /// `circe-worker-join`, `drupe-droplet-node0`, `wave-home`.
    pub fn id(&self) -> String {
        match &self.of {
            Some(of) => format!("{}-{of}", self.role),
            None => self.role.to_string(),
        }
    }
}

/// Where `up --tls` keeps the certificates of a deployment whose roles
/// outlive it (Docker, Kubernetes): beside the state file,
/// `<state folder>/<deployment>/tls/`, so that `status`, `submit` and
/// grpcurl find the user's files.
pub fn beside_state(deployment: &str) -> Result<PathBuf, crate::state::StateError> {
    let state = crate::state::default_path()?;
    let folder = state.parent().unwrap_or(Path::new("."));
    Ok(folder.join(deployment).join("tls"))
}

/// The files of one role's identity under a deployment's TLS folder.
pub fn role_files(dir: &Path, role: Role, of: Option<&str>) -> Files {
    Files::in_dir(&dir.join("roles").join(Member::new(role, of).id()))
}

/// The user's identity under a deployment's TLS folder.
pub fn client_files(dir: &Path) -> Files {
    Files {
        ca: dir.join("ca.pem"),
        cert: dir.join("client.pem"),
        key: dir.join("client-key.pem"),
    }
}

/// The members of a deployment whose per-node roles each have an identity
/// of their own (local, Docker): the three home roles, a droplet and a
/// wave-worker per node, a worker per task. `names(role, node)` gives the
/// other names a home or per-node role is reached at (its container's).
pub fn members_per_node(
    nodes: &[&str],
    tasks: &[&str],
    names: impl Fn(Role, Option<&str>) -> Vec<String>,
) -> Vec<Member> {
    let member = |role: Role, node: Option<&str>| Member {
        names: names(role, node),
        ..Member::new(role, node)
    };
    let mut members: Vec<Member> = [Role::DrupeCentral, Role::WaveHome, Role::CirceHome]
        .into_iter()
        .map(|role| member(role, None))
        .collect();
    for node in nodes {
        members.push(member(Role::DrupeDroplet, Some(node)));
        members.push(member(Role::WaveWorker, Some(node)));
    }
    // A worker may move: the name every certificate has covers it.
    members.extend(
        tasks
            .iter()
            .map(|task| Member::new(Role::CirceWorker, Some(task))),
    );
    members
}

/// [`make`], then the user's identity loaded, to present to the roles.
pub fn make_and_load(
    dir: &Path,
    deployment: &str,
    members: &[Member],
) -> Result<(Files, jupiter_common::tls::Identity), TlsError> {
    let client = make(dir, deployment, members)?;
    let identity = client.load()?;
    Ok((client, identity))
}

/// Makes a CA, a certificate for each of `members` and one for the user,
/// written under `dir`; returns the user's files.
pub fn make(dir: &Path, deployment: &str, members: &[Member]) -> Result<Files, TlsError> {
    let ca = Authority::new(deployment)?;
    private_dir(dir)?;
    let client = client_files(dir);
    write_private(&client.ca, ca.pem.as_bytes())?;
    let (cert, key) = ca.issue("user", &[], false)?;
    write_private(&client.cert, cert.as_bytes())?;
    write_private(&client.key, key.as_bytes())?;
    private_dir(&dir.join("roles"))?;
    for member in members {
        let id = member.id();
        let files = Files::in_dir(&dir.join("roles").join(&id));
        private_dir(&dir.join("roles").join(&id))?;
        let mut names = vec![id.clone(), member.role.name().to_string()];
        names.extend(member.names.iter().cloned());
        let (cert, key) = ca.issue(&id, &names, true)?;
        write_private(&files.ca, ca.pem.as_bytes())?;
        write_private(&files.cert, cert.as_bytes())?;
        write_private(&files.key, key.as_bytes())?;
    }
    Ok(client)
}

/// The deployment's CA, alive only while `make` runs.
struct Authority {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Authority {
    fn new(deployment: &str) -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(DnType::CommonName, format!("Jupiter CA of {deployment}"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        validity(&mut params);
        let key = KeyPair::generate()?;
        let pem = params.self_signed(&key)?.pem();
        Ok(Authority {
            issuer: Issuer::new(params, key),
            pem,
        })
    }

    /// A certificate and its key for `name`: a role's (server and client,
    /// valid for [`SERVER_NAME`], loopback and `names`) or the user's
    /// (client only).
    fn issue(&self, name: &str, names: &[String], server: bool) -> Result<(String, String), rcgen::Error> {
        let mut params = CertificateParams::new(Vec::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if server {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
            let mut sans = vec![
                SanType::DnsName(SERVER_NAME.try_into()?),
                SanType::DnsName("localhost".try_into()?),
                SanType::IpAddress([127, 0, 0, 1].into()),
                SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
            ];
            for name in names.iter().filter(|n| is_dns_name(n)) {
                let san = SanType::DnsName(name.as_str().try_into()?);
                if !sans.contains(&san) {
                    sans.push(san);
                }
            }
            params.subject_alt_names = sans;
        }
        validity(&mut params);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

fn validity(params: &mut CertificateParams) {
    let now = SystemTime::now();
    // A little back, for clocks a few minutes apart.
    params.not_before = (now - Duration::from_secs(3600)).into();
    params.not_after = (now + VALIDITY).into();
}

/// A name a certificate may carry: letters, digits and hyphens in dotted
/// labels (a name with `_` would make some verifiers refuse the whole
/// certificate).
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn private_dir(dir: &Path) -> Result<(), TlsError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| TlsError::Write {
            path: dir.to_path_buf(),
            source,
        })
}

/// Writes `bytes` to a new file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    write().map_err(|source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn every_file_is_private_and_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = dir.path().join("tls");
        let members = [
            Member::new(Role::CirceHome, None),
            Member {
                names: vec!["jd-node0-circe-worker-t_1".into(), "w.ns.svc".into()],
                ..Member::new(Role::CirceWorker, Some("t_1"))
            },
        ];
        let client = make(&tls, "d1", &members).expect("certificates");
        assert_eq!(client, client_files(&tls));
        client.load().expect("the user's identity loads");
        let worker = role_files(&tls, Role::CirceWorker, Some("t_1"));
        assert!(worker.cert.ends_with("roles/circe-worker-t_1/cert.pem"));
        worker.load().expect("a role's identity loads");
        for file in walk(&tls) {
            let mode = std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
            let want = if file.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode, want, "{}", file.display());
        }
        assert!(is_dns_name("w.ns.svc") && is_dns_name("circe-worker-t1"));
        assert!(!is_dns_name("t_1") && !is_dns_name("-a") && !is_dns_name("a..b"));
    }

    /// A role's certificate holds the names it is reached at, checked as
    /// rustls checks a server (the user's holds none: a client only).
    #[test]
    fn a_role_certificate_is_valid_for_its_names() {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, ServerName};
        let dir = tempfile::tempdir().expect("tempdir");
        let member = Member {
            names: vec!["jd-node0-circe-worker-t1".into(), "t_1".into()],
            ..Member::new(Role::CirceWorker, Some("t1"))
        };
        let client = make(dir.path(), "d1", &[member]).expect("certificates");
        let valid_for = |pem: &Path, name: &str| {
            let der = CertificateDer::from_pem_file(pem).expect("a PEM certificate");
            let cert = webpki::EndEntityCert::try_from(&der).expect("parses");
            let name = ServerName::try_from(name).expect("a name");
            cert.verify_is_valid_for_subject_name(&name).is_ok()
        };
        let role = role_files(dir.path(), Role::CirceWorker, Some("t1")).cert;
        for name in [
            SERVER_NAME,
            "localhost",
            "127.0.0.1",
            "::1",
            "circe-worker-t1",
            "circe-worker",
            "jd-node0-circe-worker-t1",
        ] {
            assert!(
                valid_for(&role, name),
                "the worker's certificate is valid for {name}"
            );
        }
        assert!(!valid_for(&role, "elsewhere.example"));
        assert!(
            !valid_for(&client.cert, SERVER_NAME),
            "the user's certificate is no server's"
        );
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut all = vec![dir.to_path_buf()];
        for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
            if entry.path().is_dir() {
                all.extend(walk(&entry.path()));
            } else {
                all.push(entry.path());
            }
        }
        all
    }
}
