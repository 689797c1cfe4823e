//! `fixbench merge RUN...`: the runs of one plan's shards, made on any machines and copied
//! here, written as one run into the results folder; then its table (or its JSON record).

use anyhow::Result;

use super::ResultsArg;
use crate::merge;

#[derive(Debug, clap::Args)]
#[command(after_help = "Each RUN is a run folder (one holding run.json, e.g. copied from another \
machine), a folder of run folders (a downloaded results folder: every run in it), or a run of \
the results folder (`latest`, a run id).\n\n\
Exit status: 0 when the merged run is written; 2 when the runs were planned differently (the \
first difference is named), when one trial has two different records, or when trials of the \
plan are in none of the runs (unless --partial).")]
pub struct MergeArgs {
    /// The runs to merge: run folders, folders of run folders, or run ids
    #[arg(value_name = "RUN", required = true)]
    pub runs: Vec<String>,
    /// The merged run's id (letters, digits, `.`, `_`, `-`) [default: a new one]; an earlier
    /// merge of the same plan under that id is replaced
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    pub run_id: Option<String>,
    /// Merge even when trials of the plan are in none of the runs: they are listed in the
    /// merged run (`merged.missing`), which then reads as incomplete
    #[arg(long)]
    pub partial: bool,
    /// Print the merged run record as JSON on stdout instead of the table
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub results: ResultsArg,
}

pub fn command(args: MergeArgs) -> Result<i32> {
    let store = args.results.store()?;
    let run_id = match args.run_id {
        Some(id) => {
            crate::runner::check_run_id(&id)?;
            id
        }
        None => crate::store::new_run_id(chrono::Utc::now()),
    };
    let sources = merge::find(&args.runs, &store)?;
    let runs = merge::load(&sources)?;
    let merged = merge::merge(&sources, runs, run_id, args.partial)?;
    let file = merge::write(&store, &merged, &sources)?;
    let run = &merged.run;
    let m = run.merged.as_ref().expect("a merge");
    if args.json {
        println!("{}", serde_json::to_string_pretty(run)?);
    } else {
        print!("{}", crate::report::table::run_table(run));
    }
    eprintln!(
        "merged {} run(s): {} trial(s) of {}, {} duplicate(s) taken once, {} missing",
        m.runs.len(),
        run.trials.len(),
        run.plan.as_ref().map_or(0, |p| p.trials.len()),
        m.duplicates,
        m.missing.len()
    );
    if !m.missing.is_empty() {
        eprintln!(
            "warning: --partial: {} trial(s) of the plan are in no run: {}",
            m.missing.len(),
            m.missing.join(", ")
        );
    }
    eprintln!("results: {}", file.display());
    Ok(crate::exit_codes::OK)
}
