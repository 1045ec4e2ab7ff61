//! The drupe-droplet binary: see [`drupe_droplet::Args`].

fn main() -> std::process::ExitCode {
    // Answered before the role's flags are parsed, so that it needs no
    // --node: a one-off measurement, e.g. inside a limited container.
    if std::env::args().skip(1).any(|a| a == "--measure-speed") {
        let speed = drupe_droplet::speed::measure();
        return match serde_json::to_string(&speed) {
            Ok(json) => {
                println!("{json}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    jupiter_common::role::main::<drupe_droplet::Args>()
}
