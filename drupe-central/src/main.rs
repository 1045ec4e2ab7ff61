//! The drupe-central binary: see [`drupe_central::Args`].

fn main() -> std::process::ExitCode {
    jupiter_common::role::main::<drupe_central::Args>()
}
