//! The command line: one subcommand per job. Each subcommand's flags live beside its code.

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "fixbench",
    version,
    about = "A reproducible benchmark harness for coding agents against local llama-server models"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run agents on the problems and grade what they leave behind.
    Run(crate::runner::RunArgs),
    /// Check that every problem is sound: starter at baseline, reference passes, each bug caught.
    Validate(crate::validate::ValidateArgs),
    /// Re-run the suite once per llama-server configuration of a sweep file.
    Sweep(crate::sweep::SweepArgs),
    /// List the agent presets and built-ins, installed or not.
    Agents(crate::agent::presets::AgentsArgs),
    /// Show one stored run: its table and per-trial details.
    Show(crate::report::show::ShowArgs),
    /// One line per stored run, newest first.
    History(crate::report::history::HistoryArgs),
    /// Compare runs grouped by agent, model, quant, server or a label.
    Compare(crate::report::compare::CompareArgs),
    /// The CI gate: fail when a run regressed against a baseline.
    Gate(crate::report::gate::GateArgs),
    /// Save or list named baselines.
    Baseline(crate::report::baseline::BaselineArgs),
    /// Export a run as JUnit XML.
    Junit(crate::report::junit::JunitArgs),
    /// Chart runs over time, grouped bars, or one trial's request timeline.
    Plot(crate::report::plot::PlotArgs),
    /// A recording proxy in front of llama-server, for watching any client.
    Proxy(crate::telemetry::proxy::ProxyArgs),
    /// Explain what is costing time on a llama-server, with the flag that fixes it.
    Doctor(crate::doctor::DoctorArgs),
}

pub fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Run(args) => crate::runner::command(args),
        Command::Validate(args) => crate::validate::command(args),
        Command::Sweep(args) => crate::sweep::command(args),
        Command::Agents(args) => crate::agent::presets::command(args),
        Command::Show(args) => crate::report::show::command(args),
        Command::History(args) => crate::report::history::command(args),
        Command::Compare(args) => crate::report::compare::command(args),
        Command::Gate(args) => crate::report::gate::command(args),
        Command::Baseline(args) => crate::report::baseline::baseline_command(args),
        Command::Junit(args) => crate::report::junit::command(args),
        Command::Plot(args) => crate::report::plot::command(args),
        Command::Proxy(args) => crate::telemetry::proxy::command(args),
        Command::Doctor(args) => crate::doctor::command(args),
    }
}
