//! `fixbench history`: one line per stored run, newest first.

use anyhow::Result;

use super::ResultsArg;
use crate::report::history::{render, Line};
use crate::report::runs;

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Show only the newest N runs
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<usize>,
    /// Print the lines as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub results: ResultsArg,
}

pub fn command(args: HistoryArgs) -> Result<i32> {
    let store = args.results.store()?;
    let (loaded, skipped) = runs::load_all(&store, None)?;
    let mut lines: Vec<Line> = loaded.iter().map(Line::of).collect();
    lines.extend(skipped.iter().map(|s| Line::unreadable(&s.name, &s.reason)));
    // Newest first: run ids start with their start time.
    lines.sort_by(|a, b| b.run_id.cmp(&a.run_id));
    if let Some(n) = args.limit {
        lines.truncate(n);
    }
    runs::Skipped::warn_all(&skipped);
    if args.json {
        crate::report::emit(&(serde_json::to_string_pretty(&lines)? + "\n"))?;
    } else if lines.is_empty() {
        eprintln!("no runs in {} (start one with `fixbench run`)", store.root.display());
    } else {
        crate::report::emit(&render(&lines))?;
    }
    Ok(crate::exit_codes::OK)
}
