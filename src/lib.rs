//! fixbench: a reproducible benchmark harness for coding agents.
//!
//! The pipeline, one module per stage:
//! `problem` → `workdir` → `agent` → `grade` → `telemetry` → `store` → `report`,
//! driven by `runner` (one run) and `sweep` (a run per server configuration), under the
//! commands of `commands`. `layers` names the layers and tests that none imports upwards.
//!
//! The library is the binary's: only what the integration tests, examples and benchmarks
//! drive is public; the rest is `pub(crate)`, so the compiler reports what nothing uses.

pub(crate) mod agent;
pub(crate) mod author;
pub mod cli;
pub(crate) mod commands;
pub(crate) mod config;
pub(crate) mod diff;
pub(crate) mod doctor;
pub mod error;
pub(crate) mod exec;
pub mod exit_codes;
pub(crate) mod files;
pub(crate) mod grade;
pub(crate) mod host;
pub(crate) mod interrupt;
#[cfg(test)]
mod layers;
pub(crate) mod merge;
pub(crate) mod model;
pub(crate) mod problem;
pub(crate) mod progress;
pub(crate) mod report;
pub(crate) mod runner;
pub(crate) mod sandbox;
pub mod server;
pub(crate) mod settings;
pub mod store;
pub(crate) mod sweep;
pub mod telemetry;
pub(crate) mod text;
pub(crate) mod validate;
pub(crate) mod workdir;

/// The Python environments of problems' `requires`, which the integration tests make with real
/// uv.
pub use grade::environment;

/// Synthetic results stores, for the tests, examples and benchmarks (feature `synth`).
#[cfg(feature = "synth")]
pub use report::synth;
