//! jupiterctl: the one command a Jupiter user types. The subcommands live
//! in [`cmd`]; everything they drive is the `jupiterctl` library.

mod cmd;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    // A served role logs (and traces) like its own binary; the CLI itself
    // stays quiet.
    match cli.command.served_otlp_endpoint() {
        Some(export) => jupiter_common::telemetry::init_role(export),
        None => jupiter_common::telemetry::init(true),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.command.execute()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", jupiter_common::error::explain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
