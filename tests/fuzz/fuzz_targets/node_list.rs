//! A node list (`--node-list`): parsed or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = jupiterctl::node_list::parse(text, "nodes.yaml");
    }
});
