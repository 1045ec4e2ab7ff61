//! `App::load` of an app folder whose app.yaml is the fuzzer's input: it may
//! refuse, never panic.
#![no_main]

mod app_dir;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = app_dir::app_dir("app_yaml");
    std::fs::write(dir.join("app.yaml"), data).expect("write app.yaml");
    let _ = jupiter_common::app::App::load(&dir);
});
