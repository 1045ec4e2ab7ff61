//! `jupiterctl exec-profile APP`: runs the app once on a sample input,
//! here, and prints each task's time, its cost normalised to speed 1 and
//! its output size, as a table or as JSON. What `up` does before a
//! network-aware scheduler maps the tasks; the Docker backend runs this
//! very command in a container limited like a node.

use jupiter_common::app::App;
use jupiterctl::config::ProfileTimeoutArg;
use jupiterctl::exec_profile::{self, report, ProfileOptions};
use std::path::PathBuf;
use std::process::ExitCode;

/// What `jupiterctl exec-profile --help` teaches (on the subcommand, whose
/// doc comment would otherwise be its only help).
pub const LONG_ABOUT: &str =
    "Runs the app once on a sample input, on this machine (or in the container it is \
started in), and prints per task: the seconds it took here, its cost (seconds on a node of speed 1: \
seconds × the speed measured here), the bytes it sends each child, and where the numbers come from \
(declared in app.yaml, measured, estimated because the timeout ran out or a parent failed, or failed \
with its error).\n\n\
Each task starts as soon as all its parents are done; independent tasks run side by side, at most as \
many at once as this place has CPUs (the floor of its cgroup CPU limit, else its cores), so that the \
times measure the tasks, not their contention.\n\n\
`up` and `run` take the same profile for heft, cpop and wave-greedy (on Docker, in a container with \
the CPU and memory of the fastest node) and cache it per app content; this command always measures.\n\n\
Examples:\n  jupiterctl exec-profile examples/chain\n  \
jupiterctl exec-profile examples/chain --json --sample my-input.txt --profile-timeout 120";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The app folder (app.yaml or configuration.txt).
    pub app: PathBuf,
    /// Print one JSON object (with the speed measured here) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The input to run the app on (default: the app's first sample input).
    #[arg(long, value_name = "FILE")]
    pub sample: Option<PathBuf>,
    #[command(flatten)]
    pub timeout: ProfileTimeoutArg,
    /// Python used for original Jupiter tasks.
    #[arg(long, env = jupiter_common::env::PYTHON, default_value = "python3")]
    pub python: String,
}

pub async fn execute(args: Args) -> anyhow::Result<ExitCode> {
    let app = App::load(&args.app)?;
    if let Some(sample) = &args.sample {
        anyhow::ensure!(sample.is_file(), "--sample {}: no such file", sample.display());
    }
    let options = ProfileOptions {
        python: args.python,
        timeout: args.timeout.duration()?,
        sample: args.sample,
        ..ProfileOptions::default()
    };
    if options.sample_of(&app).is_none() {
        eprintln!(
            "note: app {} has no sample input (give one with --sample FILE): every task is estimated",
            app.name
        );
    }
    let profile = exec_profile::measure_here(&app, &options).await?;
    report::print_guesses(&profile);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&profile)?);
    } else {
        eprintln!("{}", report::summary(&profile));
        print!("{}", report::table(&profile));
    }
    Ok(ExitCode::SUCCESS)
}
