//! Compiles `proto/` with the pure-Rust `protox` compiler, so that a fresh
//! machine needs no system `protoc`, and keeps the encoded descriptor set for
//! server reflection.

use prost::Message;
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "jupiter/circe/worker/worker.proto",
    "jupiter/circe/home/home.proto",
    "jupiter/wave/home/home.proto",
    "jupiter/wave/worker/worker.proto",
    "jupiter/drupe/droplet/droplet.proto",
    "jupiter/drupe/central/central.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../proto");
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("jupiter_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .bytes(".jupiter.circe.worker.v1.FileChunk.data")
        .bytes(".jupiter.drupe.droplet.v1.Payload.data")
        .compile_fds(fds)?;
    Ok(())
}
