//! `jupiterctl`: deploys Jupiter's roles on a backend, streams inputs
//! through an app and reports. The library holds everything the binary does,
//! so tests and benchmarks drive the very same code.

pub mod docker;
pub mod exec_profile;
pub mod kubernetes;
pub mod local;
pub mod mapping_file;
pub mod node_list;
pub mod placement;
pub mod profile;
pub mod report;
pub mod run;
pub mod session;
pub mod state;
pub mod status;
