//! Code that every Jupiter role shares: the generated gRPC types, the app
//! format, the way a role serves (health + reflection + graceful shutdown),
//! file streaming and small utilities.

pub mod app;
pub mod cli;
pub mod clock;
pub mod proto;
pub mod serve;
pub mod telemetry;
pub mod transfer;
