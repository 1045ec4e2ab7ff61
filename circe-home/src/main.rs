//! The circe-home binary: see [`circe_home::Args`].

fn main() -> std::process::ExitCode {
    jupiter_common::role::main::<circe_home::Args>()
}
