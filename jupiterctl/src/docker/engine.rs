//! The Docker engine as jupiterctl drives it: through the `docker` command,
//! the one interface every Docker installation has (Docker Desktop, rootless,
//! a remote DOCKER_HOST), with the command and its stderr in every error.

use std::process::Stdio;
use tokio::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "the `docker` command is not installed or not on PATH ({0}); install Docker or use --backend local"
    )]
    Missing(std::io::Error),
    #[error("the Docker engine does not answer: {0}; start it (e.g. `systemctl start docker`) or use --backend local")]
    Down(String),
    #[error("`docker {command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
}

/// A handle on the local Docker engine.
#[derive(Debug, Clone)]
pub struct Engine {
    program: String,
}

impl Engine {
    /// Finds the engine and checks that it answers.
    pub async fn connect() -> Result<Self, EngineError> {
        let engine = Self {
            program: std::env::var(jupiter_common::env::DOCKER).unwrap_or_else(|_| "docker".into()),
        };
        let output = Command::new(&engine.program)
            .args(["version", "--format", "{{.Server.Version}}"])
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(EngineError::Missing)?;
        if !output.status.success() {
            return Err(EngineError::Down(
                String::from_utf8_lossy(&output.stderr).trim().to_string(),
            ));
        }
        Ok(engine)
    }

    /// Runs `docker ARGS...` and returns its trimmed stdout.
    pub async fn run<S: AsRef<str>>(&self, args: &[S]) -> Result<String, EngineError> {
        let output = Command::new(&self.program)
            .args(args.iter().map(AsRef::as_ref))
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(EngineError::Missing)?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
        } else {
            Err(EngineError::Failed {
                command: shown(args),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            })
        }
    }

    /// The ids of the objects of `kind` (container, network, volume) that
    /// carry `label`.
    pub async fn ids_with_label(&self, kind: Kind, label: &str) -> Result<Vec<String>, EngineError> {
        let filter = format!("label={label}");
        let args: Vec<&str> = match kind {
            Kind::Container => vec!["ps", "-aq", "--filter", &filter],
            Kind::Network => vec!["network", "ls", "-q", "--filter", &filter],
            Kind::Volume => vec!["volume", "ls", "-q", "--filter", &filter],
        };
        Ok(self
            .run(&args)
            .await?
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// Whether `image` is present locally.
    pub async fn has_image(&self, image: &str) -> bool {
        self.run(&["image", "inspect", "--format", "{{.Id}}", image])
            .await
            .is_ok()
    }

    /// The last lines a container logged, for error messages.
    pub async fn tail_logs(&self, container: &str, lines: usize) -> String {
        let output = Command::new(&self.program)
            .args(["logs", "--tail", &lines.to_string(), container])
            .stdin(Stdio::null())
            .output()
            .await;
        match output {
            Ok(o) => {
                let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                text.trim().to_string()
            }
            Err(e) => format!("(no logs: {e})"),
        }
    }
}

/// The kinds of objects a deployment makes.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Container,
    Network,
    Volume,
}

impl Kind {
    /// The `docker` command that removes objects of this kind, whose ids follow.
    pub fn remove_command(self) -> &'static [&'static str] {
        match self {
            // --volumes: a container's anonymous volumes go with it.
            Kind::Container => &["rm", "--force", "--volumes"],
            Kind::Network => &["network", "rm"],
            Kind::Volume => &["volume", "rm", "--force"],
        }
    }
}

fn shown<S: AsRef<str>>(args: &[S]) -> String {
    args.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" ")
}
