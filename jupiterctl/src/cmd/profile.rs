//! `jupiterctl profile [--json]`: what DRUPE measured, as matrices and a
//! node table, or as one JSON object.

use jupiterctl::{config, profile, state};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// drupe-central's URL (default: the running deployment's).
    #[arg(long, env = jupiter_common::env::DRUPE_CENTRAL)]
    pub central: Option<String>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub async fn execute(args: Args) -> anyhow::Result<ExitCode> {
    let central = match args.central {
        Some(url) => url,
        None => {
            let deployment = config::attach(&state::read(&state::default_path()?)?).await?;
            deployment.summary.endpoints().drupe_central
        }
    };
    let profile = profile::fetch(&central).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&profile)?);
    } else {
        print!("{}", profile::render(&profile));
    }
    Ok(ExitCode::SUCCESS)
}
