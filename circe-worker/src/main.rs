//! The circe-worker binary: see [`circe_worker::Args`].

fn main() -> std::process::ExitCode {
    jupiter_common::role::main::<circe_worker::Args>()
}
