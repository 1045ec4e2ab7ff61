//! `jupiterctl render APP --backend kubernetes`: the manifests `up` would
//! apply, on stdout, without a cluster.

use jupiterctl::config::RenderArgs;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only `kubernetes` renders manifests.
    #[arg(long, value_enum, default_value = "kubernetes")]
    pub backend: Target,
    #[command(flatten)]
    pub render: RenderArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Kubernetes,
}

pub fn execute(args: Args) -> anyhow::Result<ExitCode> {
    let Target::Kubernetes = args.backend;
    print!("{}", args.render.render()?);
    Ok(ExitCode::SUCCESS)
}
