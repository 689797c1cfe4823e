//! fixbench: a reproducible benchmark harness for coding agents.
//!
//! The pipeline, one module per stage:
//! `problem` → `workdir` → `agent` → `grade` → `telemetry` → `store` → `report`,
//! driven by `runner` (one run) and `sweep` (a run per server configuration).

pub mod agent;
pub mod cli;
pub mod commands;
pub mod config;
pub mod diff;
pub mod doctor;
pub mod error;
pub mod exec;
pub mod exit_codes;
pub mod files;
pub mod grade;
pub mod host;
pub mod interrupt;
pub mod layers;
pub mod model;
pub mod problem;
pub mod progress;
pub mod report;
pub mod runner;
pub mod sandbox;
pub mod server;
pub mod settings;
pub mod store;
pub mod sweep;
pub mod telemetry;
pub mod validate;
pub mod workdir;
