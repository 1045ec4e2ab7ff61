//! `jupiterctl trace INPUT`: one finished input's span tree in the terminal
//! (see [`jupiterctl::trace_tree`]), from circe-home's results of a
//! deployment started with `jupiterctl up`.

use super::report::{home_results, HomeArgs};
use jupiterctl::trace_tree;
use std::process::ExitCode;

pub const LONG_ABOUT: &str = "\
Print one input's path through the DAG as a tree: the input (when it was submitted, its makespan, ok or \
failed), under it every task in the order it started with its node, and under each task its queue wait, \
run and transfer, each with its start as an offset from the input's submission and its duration. These \
are the timings circe-home records and the OTLP spans carry, so this is the trace without Grafana.

Example:
  jupiterctl up examples/dummy_app &
  jupiterctl submit examples/dummy_app/sample_input
  jupiterctl trace 1botnet.ipsum

  input 1botnet.ipsum     +0.0 ms  152.3 ms  ok (submitted 2024-05-01 12:00:00.000 UTC)
  ├─ task0 @node2         +1.2 ms   60.1 ms
  │  ├─ queue wait        +1.2 ms    0.1 ms
  │  ├─ run               +1.3 ms   55.0 ms
  │  └─ transfer         +56.3 ms    5.0 ms
  ...

An input is named by its id, the file name it was submitted as; only finished inputs have a trace.";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The input's id: the file name it was submitted as.
    pub input: String,
    #[command(flatten)]
    pub home: HomeArgs,
}

/// How many known ids an error about an unknown one lists.
const SHOWN_IDS: usize = 8;

pub async fn execute(args: Args) -> anyhow::Result<ExitCode> {
    let (_, results) = home_results(&args.home).await?;
    let Some(result) = results.iter().find(|r| r.input_id == args.input) else {
        let known: Vec<&str> = results.iter().map(|r| r.input_id.as_str()).collect();
        if known.is_empty() {
            anyhow::bail!(
                "no input `{}` in circe-home's results: no input has finished yet (submit some with \
                 `jupiterctl submit FILE...`)",
                args.input
            );
        }
        let more = known.len().saturating_sub(SHOWN_IDS);
        anyhow::bail!(
            "no input `{}` in circe-home's results ({} finished inputs; an id is the file name submitted, and \
             inputs still in flight have no trace yet); known: {}{}",
            args.input,
            known.len(),
            known[..known.len().min(SHOWN_IDS)].join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    };
    print!("{}", trace_tree::render(result));
    // The trace was shown: a failed input is in it, not an error of `trace`.
    Ok(ExitCode::SUCCESS)
}
