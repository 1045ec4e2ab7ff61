//! Our HEFT and CPoP on a problem file, timed in-process: prints one JSON
//! object `{"makespan", "seconds"}` per algorithm, `seconds` being the
//! scheduler's run time alone (loading excluded), the median of `--reps`.

use anyhow::Result;
use clap::Parser;
use std::time::Instant;
use wave_home::offline::{schedule, Algorithm, Problem};

#[derive(Parser, Debug)]
#[command(about = "Time our offline schedulers on a problem file (see bench/saga/compare.sh)")]
struct Args {
    /// The problem file (jupiterctl schedule's format).
    #[arg(long)]
    problem: std::path::PathBuf,
    /// heft or cpop.
    #[arg(long)]
    algorithm: Algorithm,
    /// Repetitions; the median time is printed.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Also check the schedule against the model.
    #[arg(long)]
    check: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let problem = Problem::load(&args.problem)?;
    let mut times = Vec::new();
    let mut result = None;
    for _ in 0..args.reps.max(1) {
        let started = Instant::now();
        let s = schedule(&problem, args.algorithm);
        times.push(started.elapsed().as_secs_f64());
        result = Some(s);
    }
    let result = result.expect("at least one repetition");
    if args.check {
        result.validate(&problem)?;
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({"makespan": result.makespan, "seconds": times[times.len() / 2]})
    );
    Ok(())
}
