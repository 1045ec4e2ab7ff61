//! The wave-worker binary: see [`wave_worker::Args`].

fn main() -> std::process::ExitCode {
    jupiter_common::role::main::<wave_worker::Args>()
}
