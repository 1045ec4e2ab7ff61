//! `jupiterctl`: deploys Jupiter's roles on a backend, streams inputs
//! through an app and reports. The library holds everything the binary does
//! (the binary is its command line, in `cmd/`), so tests and benchmarks
//! drive the very same code.
//!
//! The layers, each importing only those below it: [`deployment`] (the
//! model, the `Backend` trait, placement) → the backends [`local`],
//! [`docker`], [`kubernetes`] → [`config`] (flags to a backend) → the
//! commands. [`session`], [`report`], [`profile`], [`node_list`] and the
//! other leaves import none of them ([`report_html`] reads the deployment
//! model's `Summary`, nothing more).

pub mod config;
pub mod deployment;
pub mod docker;
pub mod exec_profile;
pub mod kubernetes;
pub mod local;
pub mod mapping_file;
pub mod node_list;
pub mod process;
pub mod profile;
pub mod report;
pub mod report_html;
pub mod run;
pub mod session;
pub mod state;
pub mod status;
pub mod tls;
pub mod trace_tree;
