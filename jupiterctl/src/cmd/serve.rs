//! `jupiterctl serve ROLE`: one role as a server in this process, with the
//! very flags (and `--help`) of the role's own binary.

use jupiter_common::role::{self, RoleArgs};
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum Role {
    DrupeCentral(drupe_central::Args),
    DrupeDroplet(drupe_droplet::Args),
    WaveHome(wave_home::Args),
    WaveWorker(wave_worker::Args),
    CirceHome(circe_home::Args),
    CirceWorker(circe_worker::Args),
}

impl Role {
    /// Whether the role was given an OTLP endpoint.
    pub fn exports_spans(&self) -> bool {
        let flags = match self {
            Role::DrupeCentral(args) => args.telemetry(),
            Role::DrupeDroplet(args) => args.telemetry(),
            Role::WaveHome(args) => args.telemetry(),
            Role::WaveWorker(args) => args.telemetry(),
            Role::CirceHome(args) => args.telemetry(),
            Role::CirceWorker(args) => args.telemetry(),
        };
        flags
            .otlp_endpoint
            .as_deref()
            .is_some_and(|e| !e.trim().is_empty())
    }
}

pub async fn execute(role: Role) -> anyhow::Result<ExitCode> {
    match role {
        Role::DrupeCentral(args) => serve(args).await,
        Role::DrupeDroplet(args) => serve(args).await,
        Role::WaveHome(args) => serve(args).await,
        Role::WaveWorker(args) => serve(args).await,
        Role::CirceHome(args) => serve(args).await,
        Role::CirceWorker(args) => serve(args).await,
    }
}

async fn serve<A: RoleArgs>(args: A) -> anyhow::Result<ExitCode> {
    role::run(args, jupiter_common::telemetry::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
