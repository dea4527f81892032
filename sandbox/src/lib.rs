//! VaporForge container side: the `vf-sandbox` control server, the `vf-agent` runner and the fake `claude`.

pub mod agent;
pub mod config;
pub mod error;
pub mod fake_claude;
mod legacy_ws;
pub mod lines;
pub mod processes;
pub mod server;
pub mod workspace;

pub use config::Config;
pub use error::Error;
pub use server::run;
