//! `jupiterctl down`: stop the running deployment and remove everything it
//! made, whatever its backend.

use jupiterctl::deployment::Backend;
use jupiterctl::kubernetes::Kubernetes;
use jupiterctl::{config, state};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Delete this Kubernetes deployment (namespace jupiter-NAME) instead of
    /// the one in the state file.
    #[arg(long, value_name = "NAME")]
    pub kubernetes: Option<String>,
}

pub async fn execute(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(name) = &args.kubernetes {
        println!("{}", Kubernetes::by_name(name).await?.down().await?);
        return Ok(ExitCode::SUCCESS);
    }
    let path = state::default_path()?;
    let deployment = config::attach(&state::read(&path)?).await?;
    let said = deployment.down().await?;
    state::remove(&path);
    println!("{said}");
    Ok(ExitCode::SUCCESS)
}
