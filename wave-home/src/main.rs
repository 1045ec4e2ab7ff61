//! The wave-home binary: see [`wave_home::Args`].

fn main() -> std::process::ExitCode {
    jupiter_common::role::main::<wave_home::Args>()
}
