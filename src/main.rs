//! fixbench: a reproducible benchmark harness for coding agents.
//!
//! The pipeline, one module per stage:
//! problem → workdir → agent → grade → telemetry → store → report,
//! driven by `runner` (one run) and `sweep` (a run per server configuration).

mod agent;
mod cli;
mod config;
mod diff;
mod doctor;
mod error;
mod exit_codes;
mod grade;
mod host;
mod problem;
mod progress;
mod report;
mod runner;
mod sandbox;
mod server;
mod store;
mod sweep;
mod telemetry;
mod workdir;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match cli::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            error::exit_code_for(&err)
        }
    };
    std::process::exit(code);
}
