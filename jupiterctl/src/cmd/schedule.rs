//! `jupiterctl schedule`: HEFT or CPoP on a problem file, offline.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "The problem file (JSON):\n  {\"nodes\": [{\"name\": \"n0\", \"speed\": 2.0}],\n   \"links\": [{\"from\": \"n0\", \"to\": \"n1\", \"bandwidth\": 5.0}],\n   \"tasks\": [{\"name\": \"t0\", \"cost\": 10.0}],\n   \"edges\": [{\"from\": \"t0\", \"to\": \"t1\", \"data\": 3.0}]}\n\nA task runs cost / speed on a node; an edge between two different nodes takes data / bandwidth (a link listed in one direction serves both); on the same node it is free."
)]
pub struct Args {
    /// The problem file.
    #[arg(long)]
    pub problem: PathBuf,
    /// heft or cpop.
    #[arg(long, default_value = "heft")]
    pub algorithm: wave_home::offline::Algorithm,
}

pub fn execute(args: Args) -> anyhow::Result<ExitCode> {
    let problem = wave_home::offline::Problem::load(&args.problem)?;
    let schedule = wave_home::offline::schedule(&problem, args.algorithm);
    println!("{}", serde_json::to_string_pretty(&schedule)?);
    Ok(ExitCode::SUCCESS)
}
