//! The drupe-droplet binary: see [`drupe_droplet::Args`].

fn main() -> std::process::ExitCode {
    jupiter_common::role::main::<drupe_droplet::Args>()
}
