//! `jupiterctl status [--json]`: the running deployment, as text or as one
//! JSON object for scripts.

use jupiterctl::{config, state, status};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one JSON object (deployment, backend, app, scheduler,
    /// predicted_makespan_secs, mapping, roles, placement, recoveries,
    /// replans) instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub async fn execute(args: Args) -> anyhow::Result<ExitCode> {
    let deployment = config::attach(&state::read(&state::default_path()?)?).await?;
    let health = deployment.health().await;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&status::report(
                &deployment,
                &health,
                status::history(&deployment).await
            ))?
        );
    } else {
        print!("{}", status::render(&deployment, &health).await);
    }
    Ok(ExitCode::SUCCESS)
}
