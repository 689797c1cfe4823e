//! `fixbench compare RUN...`: runs side by side, grouped by agent, model, quant, server or a label.

use anyhow::Result;

use super::ResultsArg;
use crate::report::compare::Comparison;
use crate::report::format::{self, FormatKind};
use crate::report::group::GroupBy;
use crate::report::runs;

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The runs to compare: run ids, `latest`, `latest~1`, …
    #[arg(value_name = "RUN_ID", required = true)]
    pub runs: Vec<String>,
    /// What a column group is: agent, model, quant, server, run or label:KEY
    #[arg(long, value_name = "GROUPING", default_value = "agent")]
    pub by: GroupBy,
    /// The output format
    #[arg(long, value_enum, default_value_t = FormatKind::Table)]
    pub format: FormatKind,
    /// The k of pass@k [default: the repeats per run, the fewest any run has]
    #[arg(long, value_name = "K")]
    pub k: Option<u32>,
    /// The group the deltas are taken against, by its key as the table's header shows it after
    /// `GROUPING=` (`oracle` for `agent=oracle`) [default: the first group to appear]
    #[arg(long, value_name = "GROUP")]
    pub against: Option<String>,
    #[command(flatten)]
    pub results: ResultsArg,
}

pub fn command(args: CompareArgs) -> Result<i32> {
    let store = args.results.store()?;
    // Every run named must be read: a comparison missing one side would mislead.
    let runs = runs::load_each(&store, &args.runs)?;
    let cmp = Comparison::build(&runs, &args.by, args.k, args.against.as_deref())?;
    crate::report::emit(&format::formatter(args.format).render(&cmp)?)?;
    Ok(crate::exit_codes::OK)
}
