//! `fixbench report [RUN...]`: one self-contained HTML file of runs (matrix, trials with diffs
//! and transcripts, comparison, history), for a browser, offline.

use std::path::PathBuf;

use anyhow::Result;

use super::ResultsArg;
use crate::report::group::GroupBy;
use crate::report::html::{self, Options};
use crate::report::runs;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The runs to report: run ids, `latest`, `latest~1`, … [default: latest]
    #[arg(value_name = "RUN_ID")]
    pub runs: Vec<String>,
    /// The HTML file to write
    #[arg(long, short = 'o', value_name = "FILE", default_value = "report.html")]
    pub output: PathBuf,
    /// What a matrix column is: agent, model, quant, server, run or label:KEY
    #[arg(long, value_name = "GROUPING", default_value = "agent")]
    pub by: GroupBy,
    /// The store's last N runs the history charts cover (0: none)
    #[arg(long, value_name = "N", default_value_t = html::DEFAULT_HISTORY)]
    pub history: usize,
    /// The transcript the page embeds, in MiB, shared out between its trials (each at most
    /// 256 KiB; the first turn always): raise it for a big report you will read closely
    #[arg(long, value_name = "MIB", default_value_t = html::DEFAULT_BUDGET_MIB)]
    pub transcript_budget: usize,
    #[command(flatten)]
    pub results: ResultsArg,
}

pub fn command(args: ReportArgs) -> Result<i32> {
    let store = args.results.store()?;
    let names = if args.runs.is_empty() { vec!["latest".to_string()] } else { args.runs.clone() };
    // Every run named must be read: a report missing one would mislead.
    let runs = runs::load_each(&store, &names)?;
    let opts =
        Options { by: args.by, history: args.history, banner: None, transcript_budget: args.transcript_budget << 20 };
    let written = html::write(&store, &runs, &opts, &args.output)?;
    println!("{}", written.summary());
    Ok(crate::exit_codes::OK)
}
