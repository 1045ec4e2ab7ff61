//! A static mapping file (`--mapping`), read from disk as jupiterctl does:
//! loaded or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("jupiter-fuzz-mapping-{}.yaml", std::process::id()));
    std::fs::write(&path, data).expect("write the mapping file");
    let _ = jupiterctl::mapping_file::load(&path);
});
