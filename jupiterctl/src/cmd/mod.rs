//! The subcommands of `jupiterctl`, one module each (as mini-redis's
//! `cmd/`): its flags and what it does, written against the deployment
//! model, never against one backend.

pub mod down;
pub mod exec_profile;
pub mod profile;
pub mod render;
pub mod report;
pub mod run;
pub mod schedule;
pub mod serve;
pub mod status;
pub mod submit;
pub mod trace;
pub mod up;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Jupiter: run a DAG of tasks across (emulated) nodes, pipelined, with every input's end-to-end time",
    long_about = "Jupiter deploys an app (a DAG of tasks) over nodes: DRUPE profiles the nodes, WAVE maps tasks to \
nodes, CIRCE runs one worker per task and streams every input through the DAG.\n\n\
Quick start:\n  jupiterctl run examples/dummy_app            # 3 emulated nodes, sample inputs, outputs in ./jupiter-output\n  \
jupiterctl up examples/fanjoin &               # stay up\n  jupiterctl submit my-input.txt                 # from another shell\n  \
jupiterctl status\n  jupiterctl report -o run.html                  # a picture of the run\n  \
jupiterctl down"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Deploy, stream the inputs through the app, write every output, print timings, tear down.
    Run(run::Args),
    /// Deploy and keep the deployment up (local: until Ctrl-C or `jupiterctl down`).
    Up(up::Args),
    /// Send input files to the running deployment and wait for their results.
    Submit(submit::Args),
    /// Roles and their health, nodes, mapping, queue depths and counts of the running deployment.
    Status(status::Args),
    /// Stop the running deployment and remove everything it made.
    Down(down::Args),
    /// Write one self-contained HTML page of the running deployment's inputs so far:
    /// DAG, timeline per node, makespans, predicted vs measured, per-task table.
    #[command(long_about = report::LONG_ABOUT)]
    Report(report::Args),
    /// Print one finished input's span tree: every task with its queue wait,
    /// run and transfer, as offsets from the input's submission.
    #[command(long_about = trace::LONG_ABOUT)]
    Trace(trace::Args),
    /// Print the manifests of an app's deployment (no cluster needed):
    /// `jupiterctl render APP --backend kubernetes > app.yaml`.
    Render(render::Args),
    /// The network and resource profile DRUPE measured: link matrix (bandwidth,
    /// latency, age) and node resources.
    Profile(profile::Args),
    /// Run an app once on a sample input here and print each task's time,
    /// normalised cost and output bytes (what heft, cpop and wave-greedy map with).
    #[command(long_about = exec_profile::LONG_ABOUT)]
    ExecProfile(exec_profile::Args),
    /// Schedule a task graph offline (HEFT or CPoP) and print the schedule as JSON.
    Schedule(schedule::Args),
    /// Run one role as a server in this process, with the same flags as the
    /// role's own binary (what containers and multi-machine set-ups start).
    Serve {
        #[command(subcommand)]
        role: serve::Role,
    },
}

impl Command {
    /// For a command that serves a role (which logs like its binary):
    /// whether it exports spans.
    pub fn served_otlp_endpoint(&self) -> Option<bool> {
        match self {
            Command::Serve { role } => Some(role.exports_spans()),
            _ => None,
        }
    }

    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Run(args) => run::execute(args).await,
            Command::Up(args) => up::execute(args).await,
            Command::Submit(args) => submit::execute(args).await,
            Command::Status(args) => status::execute(args).await,
            Command::Down(args) => down::execute(args).await,
            Command::Report(args) => report::execute(args).await,
            Command::Trace(args) => trace::execute(args).await,
            Command::Render(args) => render::execute(args),
            Command::Profile(args) => profile::execute(args).await,
            Command::ExecProfile(args) => exec_profile::execute(args).await,
            Command::Schedule(args) => schedule::execute(args),
            Command::Serve { role } => serve::execute(role).await,
        }
    }
}

/// Success when `ok`, else failure.
fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
