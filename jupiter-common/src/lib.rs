//! Code that every Jupiter role shares: the generated gRPC types, the app
//! format, the six roles and how each runs, the way a role serves (health +
//! reflection + graceful shutdown), the background tasks that end with a
//! role, file streaming and small utilities.

pub mod app;
pub mod child;
pub mod cli;
pub mod clock;
pub mod connection;
pub mod dirlock;
pub mod durable;
pub mod env;
pub mod error;
pub mod limits;
pub mod proto;
pub mod retry;
pub mod role;
pub mod serve;
pub mod spares;
pub mod sync;
pub mod task;
pub mod telemetry;
pub mod tls;
pub mod transfer;
