//! `fixbench show RUN`: one stored run's table and per-trial details, or its JSON record.

use anyhow::Result;

use super::ResultsArg;
use crate::report::runs;
use crate::report::show::render;

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The run: a run id, `latest` or `latest~N`
    #[arg(value_name = "RUN_ID", default_value = "latest")]
    pub run: String,
    /// Print the run record as JSON instead
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub results: ResultsArg,
}

pub fn command(args: ShowArgs) -> Result<i32> {
    let store = args.results.store()?;
    let run = runs::load_one(&store, &args.run)?;
    if args.json {
        crate::report::emit(&(serde_json::to_string_pretty(&run)? + "\n"))?;
        return Ok(crate::exit_codes::OK);
    }
    crate::report::emit(&render(&run, &store.run_dir(&run.run_id)))?;
    Ok(crate::exit_codes::OK)
}
