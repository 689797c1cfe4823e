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
    Validate(crate::commands::validate::ValidateArgs),
    /// Make a problem from a working repository: copy it, detect its layout, check its suite passes.
    New(crate::commands::new::NewArgs),
    /// Put bugs that the tests catch into a problem made by `new`, and draft its PROBLEM.md.
    Inject(crate::commands::inject::InjectArgs),
    /// Re-run the suite once per llama-server configuration of a sweep file.
    Sweep(crate::commands::sweep::SweepArgs),
    /// List the agent presets and built-ins, installed or not.
    Agents(crate::commands::agents::AgentsArgs),
    /// Show one stored run: its table and per-trial details.
    Show(crate::commands::show::ShowArgs),
    /// One line per stored run, newest first.
    History(crate::commands::history::HistoryArgs),
    /// Compare runs grouped by agent, model, quant, server or a label.
    Compare(crate::commands::compare::CompareArgs),
    /// Per problem and tag, the cheapest configuration that meets a resolve-rate bar, and what routing costs.
    Route(crate::commands::route::RouteArgs),
    /// The CI gate: fail when a run regressed against a baseline.
    Gate(crate::commands::gate::GateArgs),
    /// Save or list named baselines.
    Baseline(crate::commands::baseline::BaselineArgs),
    /// Join the runs of one plan's shards (`run --shard K/N`), made anywhere, into one run.
    Merge(crate::commands::merge::MergeArgs),
    /// Export a run as JUnit XML.
    Junit(crate::commands::junit::JunitArgs),
    /// Chart runs over time, grouped bars, or one trial's request timeline.
    Plot(crate::commands::plot::PlotArgs),
    /// Write one self-contained HTML report of runs: matrix, trials with diffs and transcripts, comparison, history.
    Report(crate::commands::report::ReportArgs),
    /// A recording proxy in front of llama-server, for watching any client.
    Proxy(crate::commands::proxy::ProxyArgs),
    /// Explain what is costing time on a llama-server, with the flag that fixes it.
    Doctor(crate::commands::doctor::DoctorArgs),
}

pub fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Run(args) => crate::commands::run::command(args),
        Command::Validate(args) => crate::commands::validate::command(args),
        Command::New(args) => crate::commands::new::command(args),
        Command::Inject(args) => crate::commands::inject::command(args),
        Command::Sweep(args) => crate::commands::sweep::command(args),
        Command::Agents(args) => crate::commands::agents::command(args),
        Command::Show(args) => crate::commands::show::command(args),
        Command::History(args) => crate::commands::history::command(args),
        Command::Compare(args) => crate::commands::compare::command(args),
        Command::Route(args) => crate::commands::route::command(args),
        Command::Gate(args) => crate::commands::gate::command(args),
        Command::Baseline(args) => crate::commands::baseline::command(args),
        Command::Merge(args) => crate::commands::merge::command(args),
        Command::Junit(args) => crate::commands::junit::command(args),
        Command::Plot(args) => crate::commands::plot::command(args),
        Command::Report(args) => crate::commands::report::command(args),
        Command::Proxy(args) => crate::commands::proxy::command(args),
        Command::Doctor(args) => crate::commands::doctor::command(args),
    }
}
