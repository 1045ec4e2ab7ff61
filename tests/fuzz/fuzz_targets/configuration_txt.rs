//! `App::load` of an app folder whose configuration.txt is the fuzzer's input: it may
//! refuse, never panic.
#![no_main]

mod app_dir;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = app_dir::app_dir("configuration_txt");
    std::fs::write(dir.join("configuration.txt"), data).expect("write configuration.txt");
    let _ = jupiter_common::app::App::load(&dir);
});
